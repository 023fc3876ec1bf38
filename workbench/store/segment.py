"""Segments: an immutable usearch index, full-precision vectors and Parquet metadata.

A segment is written once (temporary names, fsync, rename) and never modified; deletions are
recorded as a separate tombstone file named by the manifest.
"""

from __future__ import annotations

# torch (and onnxruntime) before usearch, whichever module loads first (see _preload)
from .. import _preload  # noqa: F401  # isort: skip

import contextlib
import mmap
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray
from tqdm.auto import tqdm
from usearch.index import Index

from .._atomic import write_atomic, write_npy_atomic
from ..errors import CorruptStoreError
from .manifest import FileEntry, SegmentEntry

# usearch spawns its own threads per call; chunks this large keep both cores busy while letting
# the progress bar move on big batches.
ADD_CHUNK = 16_384


def new_segment_id() -> str:
    """A fresh random segment id."""
    return f"seg-{uuid.uuid4().hex[:16]}"


def cos_as_ip(metric: str, params: dict[str, int]) -> bool:
    """Whether a cosine store's index holds unit vectors under ``ip``.

    usearch's ``ip`` kernel ran 1.35-1.4x faster than ``cos`` on the same graph (100k x 384,
    f16) with the same neighbours; ``1 - ip`` of unit vectors is the cosine distance.
    """
    return metric == "cos" and bool(params.get("cos_as_ip", 0))


def unit(x: NDArray[np.float32]) -> NDArray[np.float32]:
    """Rows scaled to unit length (zero rows left as they are)."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def signs(x: NDArray[np.float32]) -> NDArray[np.uint8]:
    """Rows as packed sign bits (``x > 0``), the input of a ``b1`` (hamming) index."""
    return np.packbits(np.asarray(x) > 0, axis=1)


def index_form(metric: str, dtype: str, params: dict[str, int]) -> str:
    """How vectors enter this store's index: ``"signs"`` (b1), ``"unit"`` (cos as ip), ``"raw"``."""
    if dtype == "b1":
        return "signs"
    return "unit" if cos_as_ip(metric, params) else "raw"


def to_index_form(x: NDArray[np.float32], form: str) -> NDArray[Any]:
    """Vectors (or queries) as the index takes them (see :func:`index_form`)."""
    if form == "signs":
        return signs(x)
    return unit(x) if form == "unit" else x


def make_index(dim: int, *, metric: str, dtype: str, params: dict[str, int]) -> Index:
    """An empty usearch index with the store's parameters.

    A ``b1`` index holds one sign bit per dimension under the hamming metric (for ``cos`` and
    ``ip`` stores): its order only proposes candidates, which search always re-ranks with the
    full-precision vectors.
    """
    index_metric = "ip" if cos_as_ip(metric, params) else metric
    if dtype == "b1":
        index_metric = "hamming"
    return Index(
        ndim=dim,
        metric=index_metric,
        dtype=dtype,
        connectivity=params["connectivity"],
        expansion_add=params["expansion_add"],
        expansion_search=params["expansion_search"],
    )


def build_index(
    keys: NDArray[np.uint64],
    vectors: NDArray[np.float32],
    *,
    metric: str,
    dtype: str,
    params: dict[str, int],
    progress: bool = True,
) -> Index:
    """Build a usearch HNSW index over `vectors` with `keys`."""
    index = make_index(vectors.shape[1], metric=metric, dtype=dtype, params=params)
    vectors = to_index_form(vectors, index_form(metric, dtype, params))
    n = len(keys)
    if n <= ADD_CHUNK:
        index.add(keys, vectors)
        return index
    with tqdm(total=n, desc="indexing", unit="vec", disable=not progress) as bar:
        for start in range(0, n, ADD_CHUNK):
            stop = min(start + ADD_CHUNK, n)
            index.add(keys[start:stop], vectors[start:stop])
            bar.update(stop - start)
    return index


def write_segment(
    seg_dir: Path,
    keys: NDArray[np.uint64],
    vectors: NDArray[np.float32],
    meta: pl.DataFrame,
    *,
    metric: str,
    dtype: str,
    params: dict[str, int],
    progress: bool = True,
    index: Index | None = None,
) -> SegmentEntry:
    """Write a new segment durably and return its manifest entry.

    On any failure (or interrupt) no file of the segment is left behind.
    """
    seg_id = new_segment_id()
    if index is None:
        index = build_index(keys, vectors, metric=metric, dtype=dtype, params=params,
                            progress=progress)
    paths = {
        "index": seg_dir / f"{seg_id}.index.usearch",
        "vectors": seg_dir / f"{seg_id}.vectors.npy",
        "meta": seg_dir / f"{seg_id}.meta.parquet",
    }
    try:
        written = {
            "index": write_atomic(paths["index"], lambda p: index.save(str(p))),
            "vectors": write_npy_atomic(paths["vectors"], vectors),
            "meta": write_atomic(paths["meta"], lambda p: _write_parquet(meta, p)),
        }
    except BaseException:
        for p in paths.values():
            with contextlib.suppress(OSError):
                p.unlink(missing_ok=True)
        raise
    files = {role: FileEntry(name=paths[role].name, size=size, crc32=crc)
             for role, (size, crc) in written.items()}
    return SegmentEntry(id=seg_id, rows=len(keys), **files)


def _write_parquet(meta: pl.DataFrame, path: Path) -> None:
    meta.write_parquet(path, statistics=True)


def write_meta(seg_dir: Path, seg_id: str, meta: pl.DataFrame) -> FileEntry:
    """Durably write a new metadata file for an existing segment (metadata-only update)."""
    path = seg_dir / f"{seg_id}.meta-{uuid.uuid4().hex[:8]}.parquet"
    size, crc = write_atomic(path, lambda p: _write_parquet(meta, p))
    return FileEntry(name=path.name, size=size, crc32=crc)


def write_tombstones(seg_dir: Path, seg_id: str, keys: NDArray[np.uint64]) -> FileEntry:
    """Durably write a segment's full, sorted tombstone set to a new file."""
    path = seg_dir / f"{seg_id}.tomb-{uuid.uuid4().hex[:8]}.npy"
    size, crc = write_npy_atomic(path, np.sort(keys.astype(np.uint64)))
    return FileEntry(name=path.name, size=size, crc32=crc)


def release_pages(array: Any) -> None:
    """Drop a memory-mapped array's resident pages from this process (``MADV_DONTNEED``).

    A full pass over a mapped ``vectors.npy`` (norms, LSH codes) would otherwise keep every page
    it read mapped and resident in the process (1.5 GB at 1M x 384); the kernel's page cache
    keeps them for the next read. A no-op for in-memory arrays and where madvise is missing.
    """
    mm = getattr(array, "_mmap", None)
    if mm is None or not hasattr(mmap, "MADV_DONTNEED"):
        return
    with contextlib.suppress(OSError, ValueError):
        mm.madvise(mmap.MADV_DONTNEED)


@dataclass
class LoadedSegment:
    """A segment opened for reading: the index is memory-mapped (usearch ``view``)."""

    entry: SegmentEntry
    index: Index
    vectors: NDArray[np.float32]
    meta: pl.DataFrame
    tombstones: NDArray[np.uint64]
    form: str = "raw"  # how queries enter the index: see index_form
    _norms: NDArray[np.float32] | None = field(default=None, repr=False)

    @property
    def keys(self) -> NDArray[np.uint64]:
        """Keys of all rows, deleted ones included."""
        return self.meta.get_column("key").to_numpy()

    def norms(self) -> NDArray[np.float32]:
        """L2 norms of the vectors (computed once, in chunks, releasing the mapped pages)."""
        if self._norms is None:
            out = np.empty(self.vectors.shape[0], dtype=np.float32)
            for lo in range(0, out.size, 65_536):
                out[lo:lo + 65_536] = np.linalg.norm(self.vectors[lo:lo + 65_536], axis=1)
                release_pages(self.vectors)
            self._norms = out
        return self._norms

    def norms_of(self, rows: NDArray[np.int64]) -> NDArray[np.float32]:
        """Norms of `rows` (a few rows of a large segment: no pass over its file)."""
        if self._norms is not None or rows.size * 8 >= self.vectors.shape[0]:
            return self.norms()[rows]
        uniq, inv = np.unique(rows, return_inverse=True)
        return np.linalg.norm(self.vectors[uniq], axis=1).astype(np.float32)[inv]

    def live_mask(self) -> NDArray[np.bool_]:
        """Boolean mask of rows not deleted."""
        if self.tombstones.size == 0:
            return np.ones(self.entry.rows, dtype=bool)
        return ~np.isin(self.keys, self.tombstones)


def load_segment(
    seg_dir: Path, entry: SegmentEntry, *, dim: int, metric: str, dtype: str,
    params: dict[str, int],
) -> LoadedSegment:
    """Open a segment's files; every failure is a :class:`CorruptStoreError` naming the file.

    Cheap structural checks run on every open, with or without ``verify``: shapes and dtypes,
    the index header (dimension, count, scalar kind) and that the index holds exactly the
    segment's keys, so a damaged file cannot make search return a key the store lacks.
    """
    p_index = seg_dir / entry.index.name
    p_vec = seg_dir / entry.vectors.name
    try:
        vectors = np.load(p_vec, mmap_mode="r", allow_pickle=False)
    except Exception as exc:  # a damaged .npy header raises ValueError, TokenError, EOFError...
        raise CorruptStoreError(f"vectors file {p_vec} is unreadable: {exc}", path=p_vec) from exc
    if vectors.shape != (entry.rows, dim) or vectors.dtype != np.float32:
        raise CorruptStoreError(
            f"vectors file {p_vec}: expected float32 ({entry.rows}, {dim}), "
            f"got {vectors.dtype} {vectors.shape}",
            path=p_vec,
        )
    meta = read_meta(seg_dir, entry)
    index = _view_index(p_index, entry, dim=dim, metric=metric, dtype=dtype, params=params)
    keys = meta.get_column("key").to_numpy()
    try:
        index_keys = np.sort(np.asarray(index.keys, dtype=np.uint64))
    except Exception as exc:  # usearch raises RuntimeError/ValueError on a damaged file
        raise CorruptStoreError(f"index file {p_index} is unreadable: {exc}",
                                path=p_index) from exc
    if not np.array_equal(index_keys, keys):
        raise CorruptStoreError(
            f"index file {p_index}: its keys differ from the segment's metadata keys",
            path=p_index,
        )
    return LoadedSegment(entry=entry, index=index, vectors=vectors, meta=meta,
                         tombstones=read_tombstones(seg_dir, entry, keys=keys),
                         form=index_form(metric, dtype, params))


def _view_index(
    path: Path, entry: SegmentEntry, *, dim: int, metric: str, dtype: str,
    params: dict[str, int],
) -> Index:
    """Memory-map an index file after checking its header against the manifest."""
    try:
        head = Index.metadata(str(path))
    except Exception as exc:  # usearch raises RuntimeError/ValueError
        raise CorruptStoreError(f"index file {path} is unreadable: {exc}", path=path) from exc
    want = make_index(dim, metric=metric, dtype=dtype, params=params)
    got = (None if head is None else
           (head.get("dimensions"), head.get("count_present"), head.get("count_deleted"),
            head.get("kind_scalar"), head.get("kind_metric")))
    expected = (dim, entry.rows, 0, want.dtype, want.metric)
    if got != expected:
        raise CorruptStoreError(
            f"index file {path}: header (dimensions, count, deleted, scalar, metric) is {got}, "
            f"expected {expected}",
            path=path,
        )
    try:
        want.view(str(path))
    except Exception as exc:  # usearch raises RuntimeError/ValueError
        raise CorruptStoreError(f"index file {path} is unreadable: {exc}", path=path) from exc
    if len(want) != entry.rows or want.ndim != dim:
        raise CorruptStoreError(
            f"index file {path}: expected {entry.rows} vectors of dimension {dim}, holds "
            f"{len(want)} of {want.ndim}",
            path=path,
        )
    want.expansion_search = params["expansion_search"]
    return want


def read_meta(seg_dir: Path, entry: SegmentEntry) -> pl.DataFrame:
    """A segment's metadata file (``key``, ``id``, user columns), checked against `entry`."""
    p_meta = seg_dir / entry.meta.name
    try:
        meta = pl.read_parquet(p_meta)
    except Exception as exc:  # polars raises ComputeError/OSError for damaged files
        raise CorruptStoreError(
            f"metadata file {p_meta} is unreadable: {exc}", path=p_meta
        ) from exc
    schema = meta.schema
    if (meta.height != entry.rows or schema.get("key") != pl.UInt64
            or schema.get("id") != pl.Utf8):
        raise CorruptStoreError(
            f"metadata file {p_meta}: expected {entry.rows} rows with key (u64) and id (str) "
            f"columns, got {meta.height} rows of {dict(schema)}",
            path=p_meta,
        )
    keys = meta.get_column("key")
    if keys.null_count() or meta.get_column("id").null_count() or (
        meta.height > 1 and not bool((keys.diff().drop_nulls() > 0).all())
    ):
        raise CorruptStoreError(
            f"metadata file {p_meta}: keys must be strictly increasing, keys and ids non-null",
            path=p_meta,
        )
    return meta


def read_tombstones(
    seg_dir: Path, entry: SegmentEntry, *, keys: NDArray[np.uint64] | None = None
) -> NDArray[np.uint64]:
    """The sorted deleted keys of a segment (empty without a tombstone file).

    With `keys` (the segment's, sorted), the tombstones must be `entry.deleted` of them.
    """
    if entry.tombstones is None:
        return np.empty(0, dtype=np.uint64)
    path = seg_dir / entry.tombstones.name
    try:
        tomb = np.load(path, allow_pickle=False)
    except Exception as exc:  # a damaged .npy header raises ValueError, TokenError, EOFError...
        raise CorruptStoreError(f"tombstone file {path} is unreadable: {exc}", path=path) from exc
    if tomb.ndim != 1 or tomb.dtype != np.uint64 or tomb.size != entry.deleted or (
        tomb.size > 1 and not (np.diff(tomb.astype(np.int64, copy=False)) != 0).all()
    ):
        raise CorruptStoreError(
            f"tombstone file {path}: expected {entry.deleted} distinct uint64 keys, got "
            f"{tomb.dtype} {tomb.shape}",
            path=path,
        )
    tomb = np.sort(tomb)
    if keys is not None and not np.isin(tomb, keys).all():
        raise CorruptStoreError(f"tombstone file {path}: names keys outside its segment",
                                path=path)
    return tomb
