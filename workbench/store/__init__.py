"""The persistent store: usearch segments, full-precision vectors, Parquet metadata."""

from __future__ import annotations

from .keys import KeyArray
from .manifest import FileEntry, Manifest, SegmentEntry
from .store import KEEP_GENERATIONS, Store
from .view import ROW_COLUMNS, SegmentView, StoreView

__all__ = [
    "KEEP_GENERATIONS",
    "ROW_COLUMNS",
    "FileEntry",
    "KeyArray",
    "Manifest",
    "SegmentEntry",
    "SegmentView",
    "Store",
    "StoreView",
]
