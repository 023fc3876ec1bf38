"""Segments: an immutable usearch index, full-precision vectors and Parquet metadata.

A segment is written once (temporary names, fsync, rename) and never modified; deletions are
recorded as a separate tombstone file named by the manifest.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray
from tqdm.auto import tqdm
from usearch.index import Index

from ..errors import CorruptStoreError
from ._atomic import write_atomic, write_npy_atomic
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
    """Write a new segment durably and return its manifest entry."""
    seg_id = new_segment_id()
    if index is None:
        index = build_index(keys, vectors, metric=metric, dtype=dtype, params=params,
                            progress=progress)
    paths = {
        "index": seg_dir / f"{seg_id}.index.usearch",
        "vectors": seg_dir / f"{seg_id}.vectors.npy",
        "meta": seg_dir / f"{seg_id}.meta.parquet",
    }
    written: list[Path] = []
    try:
        write_atomic(paths["index"], lambda p: index.save(str(p)))
        written.append(paths["index"])
        write_npy_atomic(paths["vectors"], vectors)
        written.append(paths["vectors"])
        write_atomic(paths["meta"], lambda p: meta.write_parquet(p, statistics=True))
        written.append(paths["meta"])
    except BaseException:
        for p in written:
            p.unlink(missing_ok=True)
        raise
    return SegmentEntry(
        id=seg_id,
        rows=len(keys),
        index=FileEntry.of(paths["index"]),
        vectors=FileEntry.of(paths["vectors"]),
        meta=FileEntry.of(paths["meta"]),
    )


def write_meta(seg_dir: Path, seg_id: str, meta: pl.DataFrame) -> FileEntry:
    """Durably write a new metadata file for an existing segment (metadata-only update)."""
    path = seg_dir / f"{seg_id}.meta-{uuid.uuid4().hex[:8]}.parquet"
    write_atomic(path, lambda p: meta.write_parquet(p, statistics=True))
    return FileEntry.of(path)


def write_tombstones(seg_dir: Path, seg_id: str, keys: NDArray[np.uint64]) -> FileEntry:
    """Durably write a segment's full, sorted tombstone set to a new file."""
    path = seg_dir / f"{seg_id}.tomb-{uuid.uuid4().hex[:8]}.npy"
    write_npy_atomic(path, np.sort(keys.astype(np.uint64)))
    return FileEntry.of(path)


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
        """L2 norms of the vectors (computed once)."""
        if self._norms is None:
            self._norms = np.linalg.norm(self.vectors, axis=1).astype(np.float32)
        return self._norms

    def live_mask(self) -> NDArray[np.bool_]:
        """Boolean mask of rows not deleted."""
        if self.tombstones.size == 0:
            return np.ones(self.entry.rows, dtype=bool)
        return ~np.isin(self.keys, self.tombstones)


def load_segment(
    seg_dir: Path, entry: SegmentEntry, *, dim: int, metric: str, dtype: str,
    params: dict[str, int],
) -> LoadedSegment:
    """Open a segment's files; every failure is a :class:`CorruptStoreError` naming the file."""
    p_index = seg_dir / entry.index.name
    p_vec = seg_dir / entry.vectors.name
    try:
        vectors = np.load(p_vec, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise CorruptStoreError(f"vectors file {p_vec} is unreadable: {exc}", path=p_vec) from exc
    if vectors.shape != (entry.rows, dim) or vectors.dtype != np.float32:
        raise CorruptStoreError(
            f"vectors file {p_vec}: expected float32 ({entry.rows}, {dim}), "
            f"got {vectors.dtype} {vectors.shape}",
            path=p_vec,
        )
    meta = read_meta(seg_dir, entry)
    index = make_index(dim, metric=metric, dtype=dtype, params=params)
    try:
        index.view(str(p_index))
    except Exception as exc:  # usearch raises RuntimeError/ValueError
        raise CorruptStoreError(f"index file {p_index} is unreadable: {exc}", path=p_index) from exc
    if len(index) != entry.rows:
        raise CorruptStoreError(
            f"index file {p_index}: expected {entry.rows} vectors, holds {len(index)}",
            path=p_index,
        )
    index.expansion_search = params["expansion_search"]
    return LoadedSegment(entry=entry, index=index, vectors=vectors, meta=meta,
                         tombstones=read_tombstones(seg_dir, entry),
                         form=index_form(metric, dtype, params))


def read_meta(seg_dir: Path, entry: SegmentEntry) -> pl.DataFrame:
    """A segment's metadata file (``key``, ``id``, user columns), checked against `entry`."""
    p_meta = seg_dir / entry.meta.name
    try:
        meta = pl.read_parquet(p_meta)
    except Exception as exc:  # polars raises ComputeError/OSError for damaged files
        raise CorruptStoreError(
            f"metadata file {p_meta} is unreadable: {exc}", path=p_meta
        ) from exc
    if meta.height != entry.rows or "key" not in meta.columns or "id" not in meta.columns:
        raise CorruptStoreError(
            f"metadata file {p_meta}: expected {entry.rows} rows with key and id columns",
            path=p_meta,
        )
    return meta


def read_tombstones(seg_dir: Path, entry: SegmentEntry) -> NDArray[np.uint64]:
    """The sorted deleted keys of a segment (empty without a tombstone file)."""
    if entry.tombstones is None:
        return np.empty(0, dtype=np.uint64)
    path = seg_dir / entry.tombstones.name
    try:
        return np.load(path, allow_pickle=False).astype(np.uint64)
    except (OSError, ValueError) as exc:
        raise CorruptStoreError(f"tombstone file {path} is unreadable: {exc}", path=path) from exc
