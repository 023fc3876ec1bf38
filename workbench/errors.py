"""Errors raised by workbench.

Every error derives from :class:`WorkbenchError`, so ``except wb.errors.WorkbenchError`` catches
anything the library raises on purpose. Messages name the argument at fault and what was expected.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "CorruptStoreError",
    "DimensionMismatchError",
    "DuplicateIdError",
    "EmptyInputError",
    "InvalidInputError",
    "MissingColumnError",
    "MissingDependencyError",
    "ModelMismatchError",
    "NotAStoreError",
    "ReadOnlyStoreError",
    "StoreLockedError",
    "StoreWriteError",
    "UnknownIdError",
    "WorkbenchError",
]


class WorkbenchError(Exception):
    """Base class of every error raised by workbench."""


class InvalidInputError(WorkbenchError, ValueError):
    """An argument has the wrong type, shape, value or content."""


class EmptyInputError(InvalidInputError):
    """An input that must hold at least one item is empty."""


class DuplicateIdError(InvalidInputError):
    """Ids repeat inside a batch, or an id to add is already in the store."""


class UnknownIdError(InvalidInputError, KeyError):
    """One or more ids are not in the store."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class MissingColumnError(InvalidInputError, KeyError):
    """A column named by an argument does not exist."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ModelMismatchError(WorkbenchError):
    """Vectors or an embedder do not match the model the store was built with."""


class DimensionMismatchError(ModelMismatchError, InvalidInputError):
    """Vectors have a different dimension than the store or embedder expects."""


class StoreLockedError(WorkbenchError):
    """Another process holds the store's writer lock."""


class ReadOnlyStoreError(WorkbenchError):
    """A write was attempted on a store opened with ``readonly=True``."""


class NotAStoreError(InvalidInputError, FileNotFoundError):
    """A path does not hold a workbench store."""


class CorruptStoreError(WorkbenchError):
    """A store file is truncated, altered or unreadable.

    Attributes
    ----------
    path : pathlib.Path or None
        The damaged file.
    """

    def __init__(self, message: str, *, path: str | Path | None = None) -> None:
        super().__init__(message)
        self.path = Path(path) if path is not None else None


class StoreWriteError(WorkbenchError, OSError):
    """Writing a store file failed (disk full, I/O error, file too large, permissions).

    The store is left as it was before the call, unless :attr:`committed` is true: then the
    new generation was already published (its manifest renamed into place) and only a later
    step failed, such as the folder's fsync that makes the rename durable.

    Attributes
    ----------
    path : pathlib.Path or None
        The file being written.
    committed : bool
        Whether the commit took effect despite the error.
    """

    def __init__(
        self, message: str, *, path: str | Path | None = None, committed: bool = False,
        errno: int | None = None,
    ) -> None:
        super().__init__(message)
        self.path = Path(path) if path is not None else None
        self.committed = committed
        self.errno = errno

    def __str__(self) -> str:  # OSError would format errno and filename its own way
        return str(self.args[0]) if self.args else ""


class MissingDependencyError(WorkbenchError, ImportError):
    """An optional dependency needed by a feature is not installed."""
