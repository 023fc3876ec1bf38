"""Durable file writes: write to a temporary name, fsync, rename, fsync the directory.

Every filesystem call a write path makes goes through :data:`OPS` (write, fsync, rename,
directory fsync), so the fault-injection tests can make the n-th call fail, or raise
``KeyboardInterrupt`` before or after it, in the spirit of SQLite's I/O-error tests.
Failures come out as :class:`~workbench.errors.StoreWriteError` naming the file.
"""

from __future__ import annotations

import contextlib
import errno as errno_codes
import os
import shutil
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .errors import StoreWriteError

CHUNK = 1 << 22


class FileOps:
    """The filesystem calls of the store's write paths, in one place."""

    def write(self, path: Path, writer: Callable[[Path], None]) -> None:
        """Create `path` with `writer` (usearch, NumPy or Parquet write the bytes)."""
        writer(path)

    def fsync(self, path: Path) -> None:
        """Flush a file's data to the device."""
        _fsync(path)

    def replace(self, src: Path, dst: Path) -> None:
        """Atomically rename `src` over `dst`."""
        os.replace(src, dst)

    def fsync_dir(self, path: Path) -> None:
        """Make renames in a folder durable."""
        _fsync(path)


#: The active file operations (tests swap in a faulty subclass).
OPS = FileOps()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def tmp_name(final: Path) -> Path:
    return final.with_name(f"{final.name}.{os.getpid()}.tmp")


def write_error(path: Path, exc: BaseException, *, committed: bool = False,
                what: str = "writing") -> StoreWriteError:
    """A :class:`StoreWriteError` for a failed write of `path`, with the device's free space.

    usearch and NumPy report a full disk without an errno ("Failed to serialize into stream",
    "768000 requested and 501249 written"), so the free space is what tells the user why.
    """
    free = ""
    with contextlib.suppress(OSError):
        free = f"; {shutil.disk_usage(path.parent).free:,} bytes free on that device"
    code = getattr(exc, "errno", None)
    reason = (f"{errno_codes.errorcode.get(code, code)}: {exc}" if isinstance(code, int)
              else f"{type(exc).__name__}: {exc}")
    tail = (" The commit itself took effect (its manifest was renamed into place)."
            if committed else " The store is unchanged.")
    return StoreWriteError(f"{what} {path} failed ({reason}{free}).{tail}", path=path,
                           committed=committed, errno=code if isinstance(code, int) else None)


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


def write_atomic(final: Path, writer: Callable[[Path], None], *,
                 keep_on_error: bool = False) -> tuple[int, str]:
    """Call ``writer(tmp)``, fsync it, rename it to `final`, fsync the folder.

    Returns the size and CRC-32 of what was written (read back from the file before the
    rename). On any failure the temporary file is removed, and so is `final` if the rename
    had happened, unless `keep_on_error` (the manifest: there the rename is the commit, and
    the caller decides). Errors other than ``KeyboardInterrupt``-like ones become
    :class:`StoreWriteError`.
    """
    tmp = tmp_name(final)
    renamed = False
    try:
        OPS.write(tmp, writer)
        size, crc = tmp.stat().st_size, crc32_file(tmp)
        OPS.fsync(tmp)
        OPS.replace(tmp, final)
        renamed = True
        OPS.fsync_dir(final.parent)
    except BaseException as exc:
        _unlink_quietly(tmp)
        if renamed and not keep_on_error:
            _unlink_quietly(final)
        if isinstance(exc, Exception) and not isinstance(exc, StoreWriteError):
            raise write_error(final, exc) from exc
        raise
    return size, crc


def write_bytes_atomic(final: Path, data: bytes, *, keep_on_error: bool = False) -> None:
    write_atomic(final, lambda p: p.write_bytes(data), keep_on_error=keep_on_error)


def write_npy_atomic(final: Path, arr: np.ndarray) -> tuple[int, str]:
    """Durably write `arr` as a ``.npy`` file (no pickle)."""

    def save(path: Path) -> None:
        with open(path, "wb") as f:
            np.save(f, arr, allow_pickle=False)

    return write_atomic(final, save)


def crc32_file(path: Path) -> str:
    """CRC-32 of a file as 8 hex digits (2 GB/s here, twice sha256: checked at every open)."""
    crc = 0
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        while True:
            n = f.readinto(buf)
            if not n:
                break
            crc = zlib.crc32(view[:n], crc)
    return f"{crc & 0xFFFFFFFF:08x}"


def crc32_bytes(data: bytes) -> str:
    return f"{zlib.crc32(data) & 0xFFFFFFFF:08x}"
