"""The persistent store: usearch segments, full-precision vectors, Parquet metadata."""

from __future__ import annotations

from .manifest import FileEntry, Manifest, SegmentEntry
from .store import KEEP_GENERATIONS, Store

__all__ = ["KEEP_GENERATIONS", "FileEntry", "Manifest", "SegmentEntry", "Store"]
