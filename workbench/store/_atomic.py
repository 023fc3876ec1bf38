"""Durable file writes: write to a temporary name, fsync, rename, fsync the directory."""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

CHUNK = 1 << 22


def fsync_path(path: Path) -> None:
    """fsync a file or a directory (a directory's fsync makes renames in it durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)



def tmp_name(final: Path) -> Path:
    return final.with_name(f"{final.name}.{os.getpid()}.tmp")


def write_atomic(final: Path, writer: Callable[[Path], None]) -> None:
    """Call ``writer(tmp)``, fsync the result and rename it to `final` (fsyncing the folder)."""
    tmp = tmp_name(final)
    try:
        writer(tmp)
        fsync_path(tmp)
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_path(final.parent)


def write_bytes_atomic(final: Path, data: bytes) -> None:
    write_atomic(final, lambda p: p.write_bytes(data))


def write_npy_atomic(final: Path, arr: np.ndarray) -> None:
    """Durably write `arr` as a ``.npy`` file (no pickle)."""

    def save(path: Path) -> None:
        with open(path, "wb") as f:
            np.save(f, arr, allow_pickle=False)

    write_atomic(final, save)


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
