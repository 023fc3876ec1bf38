"""The store's public segment API: one generation's segments and live rows, read-only.

Everything above ``store/`` (the analyses, the compression lab, the distributed layer) reads
the store through this module and :class:`~workbench.store.Store`; the underscored modules of
``store/`` are imported by ``store/`` alone (a test checks it).

A :class:`StoreView` is one committed generation: its manifest, its segments (each a
:class:`SegmentView` with keys, live mask, memory-mapped full-precision vectors, metadata and a
per-segment search) and its live rows as a polars frame carrying each row's place
(:data:`ROW_COLUMNS`: segment ordinal and row in that segment). It never changes, whatever is
committed meanwhile; :meth:`Store.view` gives the handle's current one, :meth:`StoreView.open`
opens one from a folder without the writer lock (a worker on another node), optionally only
some of its segments.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from .._atomic import crc32_file
from .._validation import check_positive_int
from ..embed import Fingerprint
from ..errors import CorruptStoreError, InvalidInputError
from . import _read, _search
from ._snapshot import HIDDEN, Snapshot, load_segments, with_search_breadth
from .manifest import (
    SEGMENTS_DIR,
    Manifest,
    SegmentEntry,
    manifest_path,
    read_manifest,
    require_store,
    verify_files,
)
from .segment import LoadedSegment

__all__ = [
    "B1_RESCORE",
    "DEFAULT_RESCORE",
    "ROW_COLUMNS",
    "SegmentView",
    "StoreView",
    "exact_topk",
    "isin_sorted",
    "merge_topk",
    "rescore_factor",
]

#: The columns of :meth:`StoreView.rows` that place a row: segment ordinal (u32, position in
#: the manifest) and row within that segment (u32).
ROW_COLUMNS: tuple[str, str] = HIDDEN
#: Candidates per result re-ranked with full-precision vectors when rescoring (``b1``: more).
DEFAULT_RESCORE = _read.DEFAULT_RESCORE
B1_RESCORE = _read.B1_RESCORE


def rescore_factor(rescore: bool | int | None, dtype: str) -> int:
    """The re-ranking factor of ``Store.search(rescore=...)`` on `dtype` (0: none)."""
    return _read._rescore_factor(rescore, dtype)


def merge_topk(
    parts: list[tuple[NDArray[np.uint64], NDArray[np.float32]]], k: int, nq: int
) -> tuple[NDArray[np.uint64], NDArray[np.float32]]:
    """Merge per-segment ``(keys, distances)`` into one top-`k`, as the store does.

    ``inf`` marks an empty slot; the sort is stable (ties keep part order).
    """
    return _search.merge_topk(parts, k, nq)


def exact_topk(
    queries: NDArray[np.float32], vectors: NDArray[np.float32], k: int, *, metric: str,
    norms: NDArray[np.float32] | None = None,
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Brute-force top-`k` row positions and distances ``(q, k)``, padded ``-1`` / ``inf``."""
    return _search.exact_topk(queries, vectors, k, metric=metric, norms=norms)


def isin_sorted(values: NDArray[np.uint64], sorted_set: NDArray[np.uint64]) -> NDArray[np.bool_]:
    """Elementwise membership of `values` in the sorted array `sorted_set`."""
    return _search._isin_sorted(values, sorted_set)


@dataclass(frozen=True, eq=False)
class SegmentView:
    """One segment of a generation: immutable index, vectors and metadata, plus tombstones.

    Attributes
    ----------
    ordinal : int
        Position in the manifest (the ``_seg`` value of its rows in :meth:`StoreView.rows`).
    metric : str
        The store's metric (for :meth:`search`).
    """

    ordinal: int
    metric: str
    _seg: LoadedSegment

    @property
    def id(self) -> str:
        """Segment id (``seg-`` and 16 hex digits)."""
        return self._seg.entry.id

    @property
    def entry(self) -> SegmentEntry:
        """The manifest's entry: files, sizes, checksums, rows, deleted."""
        return self._seg.entry

    @property
    def rows(self) -> int:
        """Rows written, deleted ones included."""
        return self._seg.entry.rows

    @property
    def live(self) -> int:
        """Rows not deleted."""
        return self._seg.entry.live

    @property
    def keys(self) -> NDArray[np.uint64]:
        """Keys of all rows (sorted; deleted ones included)."""
        return self._seg.keys

    @property
    def vectors(self) -> NDArray[np.float32]:
        """Full-precision vectors ``(rows, dim)``, memory-mapped read-only."""
        return self._seg.vectors

    @property
    def meta(self) -> pl.DataFrame:
        """Metadata of all rows (``key``, ``id``, user columns; deleted rows included)."""
        return self._seg.meta

    @property
    def tombstones(self) -> NDArray[np.uint64]:
        """Sorted deleted keys."""
        return self._seg.tombstones

    def live_mask(self) -> NDArray[np.bool_]:
        """Boolean mask of the rows not deleted."""
        return self._seg.live_mask()

    def norms(self) -> NDArray[np.float32]:
        """L2 norms of all rows' vectors (computed once)."""
        return self._seg.norms()

    def search(
        self,
        queries: NDArray[np.float32],
        k: int,
        *,
        rows: NDArray[np.int64] | None = None,
        allowed: NDArray[np.uint64] | None = None,
        exact: bool = False,
        rescore: int = 0,
    ) -> tuple[NDArray[np.uint64], NDArray[np.float32]]:
        """Top-`k` live keys and distances ``(q, k)`` (``inf`` where fewer) in this segment.

        Parameters
        ----------
        queries : numpy.ndarray (q, dim) float32
        k : int
        rows : numpy.ndarray of int64, optional
            Exact search over these live rows only.
        allowed : numpy.ndarray of uint64, optional
            Sorted keys the HNSW search may answer with (a pushed-down filter).
        exact : bool
            Brute force over the full-precision vectors.
        rescore : int
            Re-rank ``k * rescore`` HNSW candidates exactly (see :func:`rescore_factor`).
        """
        if exact or rows is not None:
            return _search.segment_exact(self._seg, queries, k, metric=self.metric, rows=rows)
        n_allowed = None if allowed is None else int(allowed.size)
        return _search.segment_ann(self._seg, queries, k, metric=self.metric, allowed=allowed,
                                   n_allowed=n_allowed, rescore_factor=rescore)


class StoreView:
    """One committed generation of a store, read-only (see the module docstring).

    Get one with :meth:`Store.view` or :meth:`StoreView.open`.
    """

    def __init__(self, snapshot: Snapshot, path: Path) -> None:
        self._s = snapshot
        self.path = Path(path)

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        generation: int | None = None,
        segments: Iterable[str] | None = None,
        verify: bool = True,
    ) -> StoreView:
        """Open one generation of the store at `path` (the newest by default), without a lock.

        Parameters
        ----------
        path : path-like
            The store folder (on a shared filesystem for workers on other nodes).
        generation : int, optional
            The generation to open; it must still be kept.
        segments : iterable of str, optional
            Open only these segments (ids of the generation); the view then holds their rows
            only. A search actor maps its share of a store this way.
        verify : bool
            Check each file's CRC-32 before mapping it. A file verified once on this node
            (same path, size, checksum, modification time and inode) is not read again: the
            result is remembered in a per-node folder under the temporary directory, so actors
            that share a node share the work. Sizes, headers and index keys are always checked.

        Raises
        ------
        NotAStoreError, CorruptStoreError
        InvalidInputError
            A segment id that the generation does not name, or a generation not kept.
        """
        root = Path(path)
        gens = require_store(root)
        if generation is None:
            generation = gens[0]
        elif generation not in gens:
            raise InvalidInputError(
                f"generation: expected one of the kept generations {sorted(gens)}, got "
                f"{generation}"
            )
        m = read_manifest(manifest_path(root, generation))
        if segments is not None:
            wanted = list(segments)
            named = {e.id: e for e in m.segments}
            unknown = [w for w in wanted if w not in named]
            if unknown:
                raise InvalidInputError(
                    f"segments: expected ids of generation {generation}'s segments, got "
                    f"{unknown[:3]}"
                )
            keep = set(wanted)
            m = replace(m, segments=tuple(e for e in m.segments if e.id in keep))
        _verify(root, m, checksums=verify)
        return cls(Snapshot.build(m, load_segments(root, m), check=True), root)

    # ------------------------------------------------------------------ properties
    @property
    def snapshot(self) -> Snapshot:
        """The store's internal snapshot object (for ``store/`` itself)."""
        return self._s

    @property
    def manifest(self) -> Manifest:
        """The generation's manifest."""
        return self._s.manifest

    @property
    def generation(self) -> int:
        """Generation number."""
        return self._s.manifest.generation

    @property
    def dim(self) -> int:
        """Vector dimension."""
        return self._s.manifest.dim

    @property
    def metric(self) -> str:
        """Distance metric."""
        return self._s.manifest.metric

    @property
    def dtype(self) -> str:
        """Index dtype."""
        return self._s.manifest.dtype

    @property
    def index_params(self) -> dict[str, int]:
        """HNSW and search parameters."""
        return dict(self._s.manifest.index_params)

    @property
    def model(self) -> Fingerprint | None:
        """Fingerprint of the model that made the vectors, if recorded."""
        m = self._s.manifest.model
        return Fingerprint.from_dict(m) if m else None

    @property
    def schema(self) -> dict[str, pl.DataType]:
        """Metadata columns and types (``key``, ``id`` and the user's columns)."""
        return self._s.schema

    @property
    def segments(self) -> tuple[SegmentView, ...]:
        """The segments, in manifest order."""
        metric = self.metric
        return tuple(SegmentView(i, metric, self._s.segs[e.id])
                     for i, e in enumerate(self._s.manifest.segments))

    def segment(self, ordinal: int) -> SegmentView:
        """The segment at manifest position `ordinal` (a ``_seg`` value)."""
        return SegmentView(int(ordinal), self.metric, self._s.seg(int(ordinal)))

    def __len__(self) -> int:
        return self._s.live.height

    def __repr__(self) -> str:
        return (f"StoreView({str(self.path)!r}, generation={self.generation}, rows={len(self)}, "
                f"segments={len(self._s.manifest.segments)})")

    # ------------------------------------------------------------------ rows and vectors
    @property
    def live_keys(self) -> NDArray[np.uint64]:
        """Sorted keys of the live rows."""
        return self._s.live_keys

    def rows(self, where: Any = None) -> pl.DataFrame:
        """Live rows sorted by key: ``key``, ``id``, metadata, and :data:`ROW_COLUMNS`.

        Raises
        ------
        MissingColumnError, InvalidInputError
            `where` names a missing column or is not a polars expression.
        """
        return self._s.live if where is None else _read._filter(self._s, where)

    def frame(self, where: Any = None) -> pl.DataFrame:
        """As :meth:`rows` without :data:`ROW_COLUMNS`."""
        return self.rows(where).drop(*HIDDEN)

    def vectors(self, rows: pl.DataFrame) -> NDArray[np.float32]:
        """Full-precision vectors of `rows` (a frame with :data:`ROW_COLUMNS`), in order."""
        return _read._gather(self._s, rows)

    def unit_vectors(self, rows: pl.DataFrame, *, chunk: int = 32_768
                     ) -> Iterator[tuple[int, NDArray[np.float32]]]:
        """`rows`' vectors at unit length, `chunk` rows at a time: ``(first row, vectors)``.

        Mapped pages are released after each chunk.
        """
        return _read.iter_unit_vectors(self._s, rows, chunk)

    def positions(self, keys: NDArray[np.uint64]) -> tuple[NDArray[np.uint32], NDArray[np.int64]]:
        """Segment ordinals and rows of live `keys`.

        Raises
        ------
        InvalidInputError
            A key that is not live in this generation.
        """
        keys = np.asarray(keys, dtype=np.uint64)
        pos, ok = _read.live_positions(self._s, keys)
        if not ok.all():
            raise InvalidInputError(
                f"keys: expected live keys of generation {self.generation}, "
                f"{int((~ok).sum())} are not (first {int(keys[~ok][0])})"
            )
        live = self._s.live
        return (live.get_column("_seg").to_numpy()[pos],
                live.get_column("_row").to_numpy()[pos].astype(np.int64))

    # ------------------------------------------------------------------ search
    def knn(
        self,
        queries: NDArray[np.float32],
        k: int,
        *,
        allowed: pl.DataFrame | None = None,
        exact: bool = False,
        rescore: int = 0,
    ) -> tuple[NDArray[np.uint64], NDArray[np.float32]]:
        """Top-`k` keys and distances ``(q, k)`` over this generation, as ``Store.search``.

        ``inf`` marks slots where fewer were found.

        `allowed` (rows of :meth:`rows`, e.g. filtered) restricts the answers; without it `k`
        must not exceed the live rows. `rescore` is a factor (:func:`rescore_factor`).
        """
        k = check_positive_int(k, name="k")
        return _read.knn(self._s, queries, k, allowed=allowed, exact=exact,
                         rescore_factor=rescore)

    def result_frame(self, keys: NDArray[np.uint64], dist: NDArray[np.float32]) -> pl.DataFrame:
        """Top-k `keys` / `dist` ``(q, k)`` as the frame that ``Store.search`` returns."""
        return _read._result_frame(self._s, keys, dist)

    def with_search_breadth(self, expansion: int) -> StoreView:
        """The same generation over private index views searching with breadth `expansion`.

        Every other user's breadth (ef) stays as it is.
        """
        return StoreView(with_search_breadth(self.path, self._s, int(expansion)), self.path)


# ---------------------------------------------------------------------- verification memo
def _marker_dir() -> Path:
    return Path(tempfile.gettempdir()) / f"workbench-verified-{os.getuid()}"


def _marker(p: Path, crc: str) -> Path | None:
    try:
        st = p.stat()
    except OSError:
        return None
    token = f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}|{crc}"
    return _marker_dir() / hashlib.sha1(token.encode()).hexdigest()


def _verify(root: Path, m: Manifest, *, checksums: bool) -> None:
    """Sizes of every file of `m`, and CRC-32s once per node per file version."""
    verify_files(root, m, checksums=False)
    if not checksums:
        return
    seg_dir = root / SEGMENTS_DIR
    for seg in m.segments:
        for f in seg.files():
            p = seg_dir / f.name
            mark = _marker(p, f.crc32)
            if mark is not None and mark.exists():
                continue
            if crc32_file(p) != f.crc32:
                raise CorruptStoreError(
                    f"file {p} fails its CRC-32 check (expected {f.crc32}): the file was altered",
                    path=p,
                )
            if mark is not None:
                with contextlib.suppress(OSError):
                    mark.parent.mkdir(parents=True, exist_ok=True)
                    mark.touch()
