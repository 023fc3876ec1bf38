"""Locate the real evaluation datasets in ``../shared/data`` (never copied into the project).

Tests and benchmarks read them through :func:`shared_data_path`, which raises
:class:`~workbench.errors.MissingDataError`-style errors the test suite turns into clean skips.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import WorkbenchError

__all__ = ["EvalDataMissingError", "shared_data_dir", "shared_data_path"]


class EvalDataMissingError(WorkbenchError, FileNotFoundError):
    """The shared evaluation data (or one file of it) is not on this machine."""


def shared_data_dir() -> Path:
    """The evaluation data folder: ``$WORKBENCH_SHARED_DATA`` or ``<project>/../shared/data``.

    Raises
    ------
    EvalDataMissingError
        The folder does not exist.
    """
    env = os.environ.get("WORKBENCH_SHARED_DATA")
    candidates = [Path(env)] if env else []
    project = Path(__file__).resolve().parent.parent
    candidates += [project.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"]
    for c in candidates:
        if c.is_dir():
            return c
    raise EvalDataMissingError(
        "shared data: expected the evaluation datasets in ../shared/data (or "
        "$WORKBENCH_SHARED_DATA); not found"
    )


def shared_data_path(*parts: str) -> Path:
    """Path of one dataset file or folder, e.g. ``shared_data_path("ann", "fmnistsmall_gt.npy")``.

    Raises
    ------
    EvalDataMissingError
        The folder or the file is absent.
    """
    p = shared_data_dir().joinpath(*parts)
    if not p.exists():
        raise EvalDataMissingError(f"shared data: expected {p}; not found")
    return p
