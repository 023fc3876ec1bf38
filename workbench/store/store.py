"""The persistent vector store: a folder of immutable segments named by an atomic manifest."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
from numpy.typing import NDArray

from .._validation import (
    DTYPES,
    METRICS,
    QUANTIZED,
    check_choice,
    check_positive_int,
)
from ..embed import Embedder, Fingerprint, from_fingerprint
from ..errors import (
    CorruptStoreError,
    DimensionMismatchError,
    InvalidInputError,
    ModelMismatchError,
    ReadOnlyStoreError,
)
from ._lock import WriterLock
from ._read import ReadMixin
from ._write import WriteMixin, _fingerprint_of, _same
from .manifest import (
    SEGMENTS_DIR,
    Manifest,
    SegmentEntry,
    list_generations,
    manifest_path,
    read_manifest,
    require_store,
    verify_files,
    write_manifest,
)
from .segment import LoadedSegment, load_segment, read_meta, read_tombstones, write_tombstones

#: Generations whose files survive garbage collection (so an earlier one can still be opened).
KEEP_GENERATIONS = 3
def _describe(fp: Fingerprint | None) -> str:
    return "no recorded model" if fp is None else fp.describe()


class Store(ReadMixin, WriteMixin):
    """A persistent collection of vectors with Parquet metadata and a usearch index.

    Use :meth:`create` or :meth:`open`; the store is a context manager. Writes (``add``,
    ``upsert``, ``delete``, ``compact``) are atomic commits, grouped with :meth:`transaction`.
    A store opened with ``readonly=True`` works on the snapshot it opened (see :meth:`refresh`).
    """

    def __init__(
        self, root: Path, manifest: Manifest, *, readonly: bool, lock: WriterLock | None,
        embedder: Embedder | None, verify: bool,
    ) -> None:
        self.path = root
        self.readonly = readonly
        self._lock = lock
        self._embedder = embedder
        self._verify = verify
        self._committed = manifest
        self._manifest = manifest
        self._segs: dict[str, LoadedSegment] = {}
        self._txn_depth = 0
        self._pending: list[Path] = []
        self._txn_segs: dict[str, LoadedSegment] = {}
        self._closed = False
        self._load_segments(manifest, verify=verify)
        self._rebuild()

    # ------------------------------------------------------------------ creation / opening
    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        *,
        embedder: Embedder | None = None,
        dim: int | None = None,
        metric: str = "cos",
        dtype: str = "f16",
        model: Fingerprint | str | None = None,
        connectivity: int = 16,
        expansion_add: int = 128,
        expansion_search: int = 64,
        exact_threshold: int = 4096,
    ) -> Store:
        """Create an empty store at `path` and open it for writing.

        Parameters
        ----------
        path : path-like
            A folder that does not exist yet, or an empty one.
        embedder : Embedder, optional
            Embeds text columns and text queries; its fingerprint is recorded.
        dim : int, optional
            Vector dimension, required for a vectors-only store (no embedder).
        metric : {"cos", "ip", "l2sq"}
            Distance; ``cos`` is ``1 - cosine``, ``ip`` is ``1 - dot``.
        dtype : {"f32", "f16", "bf16", "i8", "b1"}
            Index precision; ``vectors.npy`` always keeps float32. ``i8`` and ``b1`` (one sign
            bit per dimension, hamming distance, 32x smaller than f32) need ``metric="cos"``
            and re-rank their candidates with the full-precision vectors by default.
        model : Fingerprint or str, optional
            For a vectors-only store: the model that made the vectors, checked on ``add``.
        connectivity, expansion_add, expansion_search : int
            HNSW parameters (usearch's M, efConstruction, ef).
        exact_threshold : int
            Segments with at most this many live rows are searched exactly.

        Raises
        ------
        InvalidInputError
            Unknown metric or dtype, missing `dim`, or `path` already holds data.
        DimensionMismatchError
            `dim` disagrees with the embedder.
        """
        root = Path(path)
        check_choice(metric, METRICS, name="metric")
        check_choice(dtype, DTYPES, name="dtype")
        if dtype in QUANTIZED and metric != "cos":
            raise InvalidInputError(
                f"dtype: {dtype!r} needs metric='cos', got metric={metric!r} "
                f"({QUANTIZED[dtype]}); use dtype='f16'"
            )
        fp = embedder.fingerprint if embedder is not None else _fingerprint_of(model)
        if embedder is not None:
            if dim is not None and dim != embedder.dim:
                raise DimensionMismatchError(
                    f"dim: expected {embedder.dim} (the embedder's dimension), got {dim}"
                )
            dim = embedder.dim
        if dim is None:
            raise InvalidInputError("dim: expected the vector dimension when no embedder is given")
        dim = check_positive_int(dim, name="dim")
        params = {
            "connectivity": check_positive_int(connectivity, name="connectivity"),
            "expansion_add": check_positive_int(expansion_add, name="expansion_add"),
            "expansion_search": check_positive_int(expansion_search, name="expansion_search"),
            "exact_threshold": check_positive_int(exact_threshold, name="exact_threshold"),
            "cos_as_ip": int(metric == "cos"),
        }
        if list_generations(root):
            raise InvalidInputError(f"path: expected a new folder, but a store exists at {root}")
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            raise InvalidInputError(f"path: expected a new or empty folder, got {root}")
        (root / SEGMENTS_DIR).mkdir(parents=True, exist_ok=True)
        lock = WriterLock(root / "LOCK")
        lock.acquire()
        manifest = Manifest(
            generation=0, dim=dim, metric=metric, dtype=dtype,
            model=None if fp is None else fp.to_dict(), index_params=params,
        )
        try:
            write_manifest(root, manifest)
        except BaseException:
            lock.release()
            raise
        return cls(root, manifest, readonly=False, lock=lock, embedder=embedder, verify=False)

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        readonly: bool = False,
        embedder: Embedder | None = None,
        generation: int | None = None,
        verify: bool = True,
    ) -> Store:
        """Open an existing store.

        Parameters
        ----------
        path : path-like
            The store folder.
        readonly : bool
            Open a snapshot for reading, without the writer lock (never blocks).
        embedder : Embedder, optional
            Must match the recorded model; by default the built-in embedder is rebuilt from it.
        generation : int, optional
            Open an earlier generation (read-only), e.g. after damage to the newest one.
        verify : bool
            Check every file's CRC-32 (sizes are always checked).

        Raises
        ------
        NotAStoreError, StoreLockedError, CorruptStoreError, ModelMismatchError
        """
        root = Path(path)
        gens = require_store(root)
        if generation is not None and not readonly:
            raise InvalidInputError(
                "generation: an earlier generation opens read-only; pass readonly=True"
            )
        lock = None
        if not readonly:
            lock = WriterLock(root / "LOCK")
            lock.acquire()
        try:
            manifest = cls._read_snapshot(root, gens, generation, verify=verify)
            fp = Fingerprint.from_dict(manifest.model) if manifest.model else None
            if embedder is not None:
                if embedder.dim != manifest.dim:
                    raise DimensionMismatchError(
                        f"embedder: expected dimension {manifest.dim} (the store's), got "
                        f"{embedder.dim} from {embedder.fingerprint.describe()}"
                    )
                if fp is not None and not _same(fp, embedder.fingerprint):
                    raise ModelMismatchError(
                        f"embedder: the store holds vectors of {fp.describe()}, "
                        f"got {embedder.fingerprint.describe()}"
                    )
            elif fp is not None:
                embedder = from_fingerprint(fp)
            store = cls(root, manifest, readonly=readonly, lock=lock, embedder=embedder,
                        verify=verify)
            if lock is not None:
                store._gc()
            return store
        except BaseException:
            if lock is not None:
                lock.release()
            raise

    @staticmethod
    def _read_snapshot(
        root: Path, gens: list[int], generation: int | None, *, verify: bool
    ) -> Manifest:
        if generation is not None:
            if generation not in gens:
                raise InvalidInputError(
                    f"generation: expected one of the kept generations {sorted(gens)}, "
                    f"got {generation}"
                )
            m = read_manifest(manifest_path(root, generation))
            verify_files(root, m, checksums=verify)
            return m
        # A writer may commit and collect old files while we read: retry on the newer one.
        for attempt in range(5):
            m = read_manifest(manifest_path(root, gens[0]))
            try:
                verify_files(root, m, checksums=verify)
                return m
            except CorruptStoreError:
                newer = list_generations(root)
                if attempt == 4 or not newer or newer[0] == gens[0]:
                    raise
                gens = newer
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ properties
    @property
    def dim(self) -> int:
        """Vector dimension."""
        return self._manifest.dim

    @property
    def metric(self) -> str:
        """Distance metric."""
        return self._manifest.metric

    @property
    def dtype(self) -> str:
        """Index dtype."""
        return self._manifest.dtype

    @property
    def generation(self) -> int:
        """Number of the committed generation this handle sees."""
        return self._committed.generation

    @property
    def model(self) -> Fingerprint | None:
        """Fingerprint of the model that made the vectors, if recorded."""
        m = self._manifest.model
        return Fingerprint.from_dict(m) if m else None

    @property
    def embedder(self) -> Embedder | None:
        """The embedder used for text columns and text queries."""
        return self._embedder

    @property
    def index_params(self) -> dict[str, int]:
        """HNSW and search parameters."""
        return dict(self._manifest.index_params)

    @property
    def expansion_search(self) -> int:
        """HNSW search breadth (ef) used by this handle; setting it is not persisted."""
        return self._manifest.index_params["expansion_search"]

    @expansion_search.setter
    def expansion_search(self, value: int) -> None:
        value = check_positive_int(value, name="expansion_search")
        params = {**self._manifest.index_params, "expansion_search": value}
        self._manifest = replace(self._manifest, index_params=params)
        self._committed = replace(self._committed, index_params=params)
        for seg in self._segs.values():
            seg.index.expansion_search = value

    @property
    def segments(self) -> pl.DataFrame:
        """One row per segment: id, rows, deleted, live, bytes."""
        segs = self._manifest.segments
        return pl.DataFrame(
            {
                "segment": [s.id for s in segs],
                "rows": [s.rows for s in segs],
                "deleted": [s.deleted for s in segs],
                "live": [s.live for s in segs],
                "bytes": [sum(f.size for f in s.files()) for s in segs],
            },
            schema={"segment": pl.Utf8, "rows": pl.Int64, "deleted": pl.Int64, "live": pl.Int64,
                    "bytes": pl.Int64},
        )

    def __len__(self) -> int:
        return self._live.height

    def __repr__(self) -> str:
        mode = "readonly" if self.readonly else "writer"
        return (
            f"Store({str(self.path)!r}, rows={len(self)}, dim={self.dim}, metric={self.metric!r}, "
            f"dtype={self.dtype!r}, generation={self.generation}, segments="
            f"{len(self._manifest.segments)}, model={_describe(self.model)!r}, {mode})"
        )

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Release the writer lock (a pending transaction is rolled back)."""
        if self._closed:
            return
        if self._txn_depth:
            self._rollback()
        if self._lock is not None:
            self._lock.release()
        self._closed = True

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            if self._lock is not None:
                self._lock.release()

    def refresh(self) -> Store:
        """Move a read-only handle to the newest committed generation."""
        if not self.readonly:
            return self
        m = self._read_snapshot(self.path, require_store(self.path), None, verify=self._verify)
        if m.generation != self._committed.generation:
            self._load_segments(m, verify=self._verify)
            self._committed = self._manifest = m
            self._rebuild()
        return self

    # ------------------------------------------------------------------ internal state
    def _load_segments(self, manifest: Manifest, *, verify: bool) -> None:
        seg_dir = self.path / SEGMENTS_DIR
        segs: dict[str, LoadedSegment] = {}
        for entry in manifest.segments:
            old = self._segs.get(entry.id)
            if old is not None and old.entry == entry:
                segs[entry.id] = old
                continue
            if (old is not None and old.entry.index == entry.index
                    and old.entry.vectors == entry.vectors):
                # Immutable index and vectors kept (a delete or a metadata-only update): reload
                # only the file that changed.
                meta = old.meta if old.entry.meta == entry.meta else read_meta(seg_dir, entry)
                tombs = (old.tombstones if old.entry.tombstones == entry.tombstones
                         else read_tombstones(seg_dir, entry))
                segs[entry.id] = replace(old, entry=entry, meta=meta, tombstones=tombs)
                continue
            segs[entry.id] = load_segment(
                seg_dir, entry, dim=manifest.dim, metric=manifest.metric, dtype=manifest.dtype,
                params=manifest.index_params,
            )
        self._segs = segs

    def _rebuild(self) -> None:
        frames = []
        for i, entry in enumerate(self._manifest.segments):
            seg = self._segs[entry.id]
            f = seg.meta.with_columns(
                pl.lit(i, dtype=pl.UInt32).alias("_seg"),
                pl.int_range(seg.meta.height, dtype=pl.UInt32).alias("_row"),
            )
            if seg.tombstones.size:
                f = f.filter(~pl.col("key").is_in(pl.Series(seg.tombstones).implode()))
            frames.append(f)
        if frames:
            live = pl.concat(frames, how="diagonal_relaxed").sort("key")
        else:
            live = pl.DataFrame(
                schema={"key": pl.UInt64, "id": pl.Utf8, "_seg": pl.UInt32, "_row": pl.UInt32}
            )
        self._live = live
        self._live_keys = live.get_column("key").to_numpy()

    def _check_writable(self) -> None:
        if self._closed:
            raise InvalidInputError("store: this handle is closed; open the store again")
        if self.readonly:
            raise ReadOnlyStoreError(
                f"store: opened with readonly=True; reopen {self.path} without it to write"
            )

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Store]:
        """Group several writes into one atomic commit.

        Examples
        --------
        >>> with store.transaction():  # doctest: +SKIP
        ...     store.add(df1, vectors=v1)
        ...     store.delete(["old"])
        """
        self._check_writable()
        if self._txn_depth == 0:
            self._txn_segs = dict(self._segs)
            self._pending = []
        self._txn_depth += 1
        try:
            yield self
        except BaseException:
            self._txn_depth -= 1
            if self._txn_depth == 0:
                self._rollback()
            raise
        self._txn_depth -= 1
        if self._txn_depth == 0:
            self._commit()

    def _rollback(self) -> None:
        for p in self._pending:
            p.unlink(missing_ok=True)
        self._pending = []
        self._txn_depth = 0
        self._manifest = self._committed
        self._segs = self._txn_segs
        self._rebuild()

    def _commit(self) -> None:
        if self._manifest == self._committed:
            return
        new = replace(self._manifest, generation=self._committed.generation + 1)
        try:
            write_manifest(self.path, new)
        except BaseException:
            self._rollback()
            raise
        self._committed = self._manifest = new
        self._pending = []
        self._gc()

    def _gc(self) -> None:
        """Delete manifests beyond the kept generations and files none of them names."""
        gens = list_generations(self.path)
        referenced: set[str] = set()
        for g in gens[:KEEP_GENERATIONS]:
            try:
                referenced |= read_manifest(manifest_path(self.path, g)).referenced()
            except CorruptStoreError:
                return  # cannot tell which files a damaged manifest needs: keep everything
        for g in gens[KEEP_GENERATIONS:]:
            manifest_path(self.path, g).unlink(missing_ok=True)
        for p in self.path.iterdir():
            if p.name.endswith(".tmp"):
                p.unlink(missing_ok=True)
        seg_dir = self.path / SEGMENTS_DIR
        for p in seg_dir.iterdir():
            if p.name not in referenced:
                if p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)

    def _stage_segment(self, entry: SegmentEntry) -> None:
        seg_dir = self.path / SEGMENTS_DIR
        self._pending += [seg_dir / f.name for f in entry.files()]
        m = self._manifest
        self._segs[entry.id] = load_segment(
            seg_dir, entry, dim=m.dim, metric=m.metric, dtype=m.dtype, params=m.index_params
        )
        self._manifest = replace(m, segments=(*m.segments, entry))

    def _stage_per_segment(
        self, rows: pl.DataFrame,
        change: Callable[[SegmentEntry, LoadedSegment, pl.DataFrame],
                         tuple[SegmentEntry, LoadedSegment, Path] | None],
    ) -> None:
        """Stage one new file per segment touched by `rows` (live rows with ``_seg``).

        ``change(entry, seg, part)`` writes the segment's new file and returns its new entry,
        loaded segment and the file's path, or None to drop the whole segment.
        """
        entries = list(self._manifest.segments)
        drop: set[str] = set()
        for (seg_ord,), part in rows.group_by(["_seg"]):
            entry = entries[int(seg_ord)]  # type: ignore[call-overload]
            changed = change(entry, self._segs[entry.id], part.drop("_seg"))
            if changed is None:
                drop.add(entry.id)
                continue
            new_entry, new_seg, written = changed
            self._pending.append(written)
            entries[int(seg_ord)] = new_entry  # type: ignore[call-overload]
            self._segs[entry.id] = new_seg
        entries = [e for e in entries if e.id not in drop]
        self._manifest = replace(self._manifest, segments=tuple(entries))
        self._rebuild()

    def _stage_tombstones(self, keys: NDArray[np.uint64]) -> None:
        """Mark live `keys` deleted (one new tombstone file per touched segment)."""
        if keys.size == 0:
            return
        seg_dir = self.path / SEGMENTS_DIR

        def tombstone(
            entry: SegmentEntry, seg: LoadedSegment, part: pl.DataFrame
        ) -> tuple[SegmentEntry, LoadedSegment, Path] | None:
            tomb = np.union1d(seg.tombstones, part.get_column("key").to_numpy()).astype(np.uint64)
            if tomb.size >= entry.rows:
                return None  # every row deleted: the segment goes
            fe = write_tombstones(seg_dir, entry.id, tomb)
            new_entry = replace(entry, tombstones=fe, deleted=int(tomb.size))
            return new_entry, replace(seg, entry=new_entry, tombstones=tomb), seg_dir / fe.name

        rows = self._live.filter(pl.col("key").is_in(pl.Series(keys, dtype=pl.UInt64).implode()))
        self._stage_per_segment(rows.select("key", "_seg"), tombstone)
