"""The persistent vector store: a folder of immutable segments named by an atomic manifest."""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from .. import _atomic
from .._atomic import write_error
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
    DuplicateIdError,
    InvalidInputError,
    ModelMismatchError,
    ReadOnlyStoreError,
    StoreWriteError,
)
from ._lock import WriterLock
from ._read import ReadMixin
from ._schema import evolve
from ._snapshot import Snapshot, load_segments
from ._write import WriteMixin, _fingerprint_of, _same
from .manifest import (
    SEGMENTS_DIR,
    STAGING_DIR,
    Manifest,
    SegmentEntry,
    list_generations,
    manifest_path,
    read_manifest,
    require_store,
    verify_files,
    write_manifest,
)
from .segment import LoadedSegment, load_segment, read_meta, write_tombstones

if TYPE_CHECKING:
    from .view import StoreView

#: Generations whose files survive garbage collection (so an earlier one can still be opened).
KEEP_GENERATIONS = 3
#: How long a reader keeps moving on to newer generations while a writer collects the files
#: of the one it was opening (each retry needs the writer to have committed again).
READ_RETRY_SECONDS = 60.0


def _describe(fp: Fingerprint | None) -> str:
    return "no recorded model" if fp is None else fp.describe()


class Store(ReadMixin, WriteMixin):
    """A persistent collection of vectors with Parquet metadata and a usearch index.

    Use :meth:`create` or :meth:`open`; the store is a context manager. Writes (``add``,
    ``upsert``, ``update``, ``delete``, ``compact``) are atomic commits, grouped with
    :meth:`transaction`. A store opened with ``readonly=True`` works on the snapshot it opened
    (see :meth:`refresh`).

    A handle may be shared by threads: every read works on one committed snapshot, swapped
    in whole by each commit; writes from several threads take turns (a transaction holds the
    handle's write lock until it ends), and only the thread inside a transaction sees its
    uncommitted changes.
    """

    def __init__(
        self, root: Path, snapshot: Snapshot, *, readonly: bool, lock: WriterLock | None,
        embedder: Embedder | None, verify: bool,
    ) -> None:
        self.path = root
        self.readonly = readonly
        self._lock = lock
        self._embedder = embedder
        self._verify = verify
        self._committed = snapshot
        self._staged: Snapshot | None = None
        self._owner: int | None = None
        self._wlock = threading.RLock()
        self._refreshing = threading.Lock()
        self._pending: list[Path] = []
        self._closed = False
        self._broken: str | None = None

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
            write_manifest(root, manifest, keep_on_error=False)
        except BaseException:
            lock.release()
            raise
        return cls(root, Snapshot.build(manifest, {}), readonly=False, lock=lock,
                   embedder=embedder, verify=False)

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
            Check every file's CRC-32. Sizes, shapes, index headers and index keys are always
            checked; with ``verify=False`` a damaged HNSW graph can crash the process inside
            usearch, so pass it only for files you trust.

        Raises
        ------
        NotAStoreError, StoreLockedError, CorruptStoreError, ModelMismatchError
        """
        root = Path(path)
        require_store(root)
        if generation is not None and not readonly:
            raise InvalidInputError(
                "generation: an earlier generation opens read-only; pass readonly=True"
            )
        lock = None
        if not readonly:
            lock = WriterLock(root / "LOCK")
            lock.acquire()
        try:
            snap = cls._read_snapshot(root, generation, verify=verify)
            manifest = snap.manifest
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
            store = cls(root, snap, readonly=readonly, lock=lock, embedder=embedder,
                        verify=verify)
            if lock is not None:
                store._gc()
                # segments of a job that ended without committing them (the writer holding
                # the lock is the only one that stages)
                shutil.rmtree(root / STAGING_DIR, ignore_errors=True)
            return store
        except BaseException:
            if lock is not None:
                lock.release()
            raise

    @staticmethod
    def _read_snapshot(
        root: Path, generation: int | None, *, verify: bool,
        reuse: Mapping[str, LoadedSegment] | None = None,
    ) -> Snapshot:
        """Read, verify and load one generation (the newest when `generation` is None).

        A writer in another process may commit and collect the files of the generation being
        read at any moment: then a newer generation exists, and the reader moves on to it.
        A failure with no newer generation is real damage and is raised.
        """
        if generation is not None:
            gens = require_store(root)
            if generation not in gens:
                raise InvalidInputError(
                    f"generation: expected one of the kept generations {sorted(gens)}, "
                    f"got {generation}"
                )
            return Store._load_generation(root, generation, verify=verify, reuse=reuse)
        deadline = time.monotonic() + READ_RETRY_SECONDS
        while True:
            newest = require_store(root)[0]
            try:
                return Store._load_generation(root, newest, verify=verify, reuse=reuse)
            except CorruptStoreError:
                now = list_generations(root)
                if not now or now[0] <= newest or time.monotonic() > deadline:
                    raise

    @staticmethod
    def _load_generation(
        root: Path, generation: int, *, verify: bool,
        reuse: Mapping[str, LoadedSegment] | None,
    ) -> Snapshot:
        m = read_manifest(manifest_path(root, generation))
        verify_files(root, m, checksums=verify)
        return Snapshot.build(m, load_segments(root, m, reuse), check=True)

    # ------------------------------------------------------------------ properties
    def _snap(self) -> Snapshot:
        """The state this thread sees: its own transaction's, else the committed one."""
        staged = self._staged
        if staged is not None and self._owner == threading.get_ident():
            return staged
        return self._committed

    @property
    def _manifest(self) -> Manifest:
        return self._snap().manifest

    @property
    def dim(self) -> int:
        """Vector dimension."""
        return self._committed.manifest.dim

    @property
    def metric(self) -> str:
        """Distance metric."""
        return self._committed.manifest.metric

    @property
    def dtype(self) -> str:
        """Index dtype."""
        return self._committed.manifest.dtype

    @property
    def generation(self) -> int:
        """Number of the committed generation this handle sees."""
        return self._committed.manifest.generation

    @property
    def model(self) -> Fingerprint | None:
        """Fingerprint of the model that made the vectors, if recorded."""
        m = self._committed.manifest.model
        return Fingerprint.from_dict(m) if m else None

    @property
    def embedder(self) -> Embedder | None:
        """The embedder used for text columns and text queries."""
        return self._embedder

    @property
    def index_params(self) -> dict[str, int]:
        """HNSW and search parameters."""
        return dict(self._snap().manifest.index_params)

    @property
    def expansion_search(self) -> int:
        """HNSW search breadth (ef) used by this handle."""
        return self._snap().manifest.index_params["expansion_search"]

    @expansion_search.setter
    def expansion_search(self, value: int) -> None:
        value = check_positive_int(value, name="expansion_search")
        with self._wlock:
            params = {**self._committed.manifest.index_params, "expansion_search": value}
            for seg in self._committed.segs.values():
                seg.index.expansion_search = value
            self._committed = self._committed.with_params(params)
            if self._staged is not None:
                for seg in self._staged.segs.values():
                    seg.index.expansion_search = value
                self._staged = self._staged.with_params(params)

    @property
    def segments(self) -> pl.DataFrame:
        """One row per segment: id, rows, deleted, live, bytes."""
        segs = self._snap().manifest.segments
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
        return self._snap().live.height

    def __repr__(self) -> str:
        mode = "readonly" if self.readonly else "writer"
        return (
            f"Store({str(self.path)!r}, rows={len(self)}, dim={self.dim}, metric={self.metric!r}, "
            f"dtype={self.dtype!r}, generation={self.generation}, segments="
            f"{len(self._snap().manifest.segments)}, model={_describe(self.model)!r}, {mode})"
        )

    # ------------------------------------------------------------------ public segment API
    def view(self) -> StoreView:
        """The generation this handle sees, read-only.

        A :class:`~workbench.store.view.StoreView` (segments, live rows, per-segment search);
        it never changes under the caller.
        """
        from .view import StoreView

        return StoreView(self._snap(), self.path)

    @property
    def layout(self) -> dict[str, Any]:
        """What a worker needs to write segments for this store.

        For :func:`workbench.store.segment.write_segment`: ``dim``, ``metric``, ``dtype``,
        ``params`` (the index parameters), ``model`` (fingerprint dict or None) and
        ``next_key`` (the first key not yet used). Workers write into a folder from
        :meth:`staging_folder`.
        """
        m = self._snap().manifest
        return {"dim": m.dim, "metric": m.metric, "dtype": m.dtype,
                "params": dict(m.index_params),
                "model": None if m.model is None else dict(m.model), "next_key": m.next_key}

    def staging_folder(self) -> Path:
        """A new folder in the store for segments written elsewhere until they are committed.

        Files in ``segments/`` that no manifest names are collected after every commit, so
        segments in flight wait here instead; :meth:`commit_segments` moves them in. The next
        writer open removes staging folders left by a job that died.
        """
        self._check_writable()
        folder = self.path / STAGING_DIR / uuid.uuid4().hex[:16]
        folder.mkdir(parents=True)
        return folder

    def commit_segments(self, entries: Sequence[SegmentEntry], *,
                        next_key: int | None = None,
                        staging: str | os.PathLike[str] | None = None) -> int:
        """Commit segments written elsewhere (another process or node) in one commit.

        Each segment's files must lie in `staging` (a folder from :meth:`staging_folder`) or
        in ``segments/``, written with :func:`workbench.store.segment.write_segment` using
        :attr:`layout`, with keys that no live or committed row uses. Their sizes and CRC-32s
        are checked, their metadata must fit the store's schema, and their ids must be new;
        otherwise nothing is committed and the store stays as it was (the files are then left
        for the next writer open to collect).

        Parameters
        ----------
        entries : sequence of SegmentEntry
            What :func:`~workbench.store.segment.write_segment` returned for each segment.
        next_key : int, optional
            The first key the writers did not use (at least one past each segment's last
            key, which is the default).
        staging : path-like, optional
            The folder the files are in; they are moved into ``segments/`` by the commit.

        Returns
        -------
        int
            The generation committed (the current one when `entries` is empty).

        Raises
        ------
        CorruptStoreError
            A file is missing, of another size or fails its checksum.
        DuplicateIdError
            An id is already live or appears in two of the segments.
        InvalidInputError
            Keys already used, or metadata whose types conflict with the store's.
        """
        self._check_writable()
        entries = list(entries)
        if not entries:
            return self.generation
        for e in entries:
            if not isinstance(e, SegmentEntry):
                raise InvalidInputError(
                    f"entries: expected SegmentEntry objects, got {type(e).__name__}")
        with self.transaction():
            s = self._snap()
            m = s.manifest
            probe = replace(m, segments=tuple(entries))
            seg_dir = self.path / SEGMENTS_DIR
            src = seg_dir if staging is None else Path(staging)
            verify_files(self.path, probe, checksums=True, folder=src)
            metas = [read_meta(src, e) for e in entries]
            keys = np.concatenate([f.get_column("key").to_numpy() for f in metas])
            ids = pl.concat([f.select("id") for f in metas]).get_column("id")
            taken = np.concatenate([s.live_keys, *(seg.tombstones for seg in s.segs.values())])
            if np.unique(keys).size != keys.size or np.isin(keys, taken).any():
                raise InvalidInputError(
                    "entries: keys repeat across the segments or are already used by the "
                    "store; take them from Store.layout['next_key'] on")
            dup = ids.filter(ids.is_duplicated() | ids.is_in(s.live.get_column("id").implode()))
            if dup.len():
                raise DuplicateIdError(
                    f"id: expected new ids, {dup.n_unique()} are already in the store or in two "
                    f"segments ({', '.join(repr(i) for i in dup.unique().to_list()[:5])})")
            schema = s.schema
            for f in metas:
                schema = evolve(schema, f, existing=s.live)
            top = max(int(keys.max()) + 1, m.next_key, 0 if next_key is None else int(next_key))
            if src != seg_dir:
                moved: list[Path] = []
                try:
                    for e in entries:
                        for f in e.files():
                            _atomic.OPS.replace(src / f.name, seg_dir / f.name)
                            moved.append(seg_dir / f.name)
                    _atomic.OPS.fsync_dir(seg_dir)
                except OSError as exc:
                    self._discard(moved)
                    raise write_error(seg_dir, exc) from exc
            for e in entries:
                self._stage_segment(e, next_key=top)
        return self.generation

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Release the writer lock (a pending transaction is rolled back)."""
        if self._closed:
            return
        with self._wlock:
            if self._staged is not None:
                self._rollback_all()
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
        """Move a read-only handle to the newest committed generation.

        Threads searching meanwhile finish on the snapshot they started with.
        """
        if not self.readonly:
            return self
        with self._refreshing:
            current = self._committed
            newest = require_store(self.path)[0]
            if newest != current.manifest.generation:
                snap = self._read_snapshot(self.path, None, verify=self._verify,
                                           reuse=current.segs)
                ef = current.manifest.index_params["expansion_search"]
                if snap.manifest.index_params["expansion_search"] != ef:
                    # keep this handle's search breadth (set through expansion_search)
                    for seg in snap.segs.values():
                        seg.index.expansion_search = ef
                    snap = snap.with_params({**snap.manifest.index_params,
                                             "expansion_search": ef})
                self._committed = snap
        return self

    # ------------------------------------------------------------------ transactions
    def _check_writable(self) -> None:
        if self._closed:
            raise InvalidInputError("store: this handle is closed; open the store again")
        if self.readonly:
            raise ReadOnlyStoreError(
                f"store: opened with readonly=True; reopen {self.path} without it to write"
            )
        if self._broken is not None:
            raise StoreWriteError(self._broken, path=self.path)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Store]:
        """Group several writes into one atomic commit.

        Every write (``add``, ``upsert``, ``update``, ``delete``, ``compact``) is
        all-or-nothing on its own, inside a transaction too: one that fails, even if the
        caller catches its error inside the ``with`` block, leaves no trace, and the
        transaction commits the writes that completed (like SQLite's statement rollback).
        An exception leaving the ``with`` block rolls the whole transaction back. A nested
        ``transaction()`` is a savepoint: an exception leaving it undoes only its writes.
        Other threads see none of it until the commit, and their writes wait for it.

        Examples
        --------
        >>> with store.transaction():  # doctest: +SKIP
        ...     store.add(df1, vectors=v1)
        ...     store.delete(["old"])
        """
        self._check_writable()
        with self._wlock:
            self._check_writable()
            outer = self._staged is None
            if outer:
                self._staged, self._pending = self._committed, []
                self._owner = threading.get_ident()
            mark = (self._staged, len(self._pending))
            try:
                yield self
            except BaseException:
                if outer:
                    self._rollback_all()
                else:
                    self._rollback_to(mark)
                raise
            if outer:
                self._commit()

    def _discard(self, paths: list[Path]) -> None:
        for p in paths:
            with contextlib.suppress(OSError):
                p.unlink(missing_ok=True)

    def _rollback_to(self, mark: tuple[Snapshot | None, int]) -> None:
        staged, n = mark
        self._discard(self._pending[n:])
        del self._pending[n:]
        self._staged = staged

    def _rollback_all(self) -> None:
        self._discard(self._pending)
        self._pending = []
        self._staged = self._owner = None

    def _publish(self, snap: Snapshot) -> None:
        """Make `snap` the committed state: one assignment that readers pick up whole."""
        self._committed = snap
        self._staged = self._owner = None
        self._pending = []

    def _commit(self) -> None:
        staged = self._staged
        if staged is None or staged.manifest == self._committed.manifest:
            self._rollback_all()
            return
        new = replace(staged.manifest, generation=self._committed.manifest.generation + 1)
        snap = replace(staged, manifest=new)
        try:
            write_manifest(self.path, new)
        except BaseException as exc:
            landed = self._landed(new.generation)
            if landed is False:  # before the commit point: nothing happened
                self._rollback_all()
                raise
            if landed is None:  # cannot tell: keep every file, refuse further writes
                self._staged = self._owner = None
                self._pending = []
                self._broken = (
                    f"store: the commit of generation {new.generation} may or may not have "
                    f"happened (the folder {self.path} could not be read after: {exc}); open "
                    "the store again"
                )
                raise
            # After the rename the commit has happened, whatever failed after it.
            self._publish(snap)
            if isinstance(exc, StoreWriteError):
                raise write_error(manifest_path(self.path, new.generation), exc.__cause__ or exc,
                                  committed=True, what="making the commit durable:") from exc
            raise
        self._publish(snap)
        with contextlib.suppress(OSError, CorruptStoreError):
            self._gc()  # garbage is collected again on the next open if this fails

    def _landed(self, generation: int) -> bool | None:
        """Whether the manifest of `generation` is in place (None: the folder is unreadable)."""
        try:
            return manifest_path(self.path, generation).exists()
        except OSError:
            return None

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

    # ------------------------------------------------------------------ staging
    def _stage(self, manifest: Manifest, segs: Mapping[str, LoadedSegment]) -> None:
        self._staged = Snapshot.build(manifest, segs)

    def _stage_segment(self, entry: SegmentEntry, *, replace_all: bool = False,
                       next_key: int | None = None) -> None:
        """Add a written segment to the staged state (or make it the only one)."""
        seg_dir = self.path / SEGMENTS_DIR
        self._pending += [seg_dir / f.name for f in entry.files()]
        s = self._snap()
        m = s.manifest
        seg = load_segment(seg_dir, entry, dim=m.dim, metric=m.metric, dtype=m.dtype,
                           params=m.index_params)
        segments = (entry,) if replace_all else (*m.segments, entry)
        segs = {entry.id: seg} if replace_all else {**s.segs, entry.id: seg}
        manifest = replace(m, segments=segments,
                           next_key=m.next_key if next_key is None else next_key)
        self._stage(manifest, segs)

    def _stage_per_segment(
        self, rows: pl.DataFrame,
        change: Callable[[SegmentEntry, LoadedSegment, pl.DataFrame],
                         tuple[SegmentEntry, LoadedSegment, Path] | None],
    ) -> None:
        """Stage one new file per segment touched by `rows` (live rows with ``_seg``).

        ``change(entry, seg, part)`` writes the segment's new file and returns its new entry,
        loaded segment and the file's path, or None to drop the whole segment.
        """
        s = self._snap()
        entries = list(s.manifest.segments)
        segs = dict(s.segs)
        drop: set[str] = set()
        for (seg_ord,), part in rows.group_by(["_seg"]):
            entry = entries[int(seg_ord)]  # type: ignore[call-overload]
            changed = change(entry, segs[entry.id], part.drop("_seg"))
            if changed is None:
                drop.add(entry.id)
                continue
            new_entry, new_seg, written = changed
            self._pending.append(written)
            entries[int(seg_ord)] = new_entry  # type: ignore[call-overload]
            segs[entry.id] = new_seg
        entries = [e for e in entries if e.id not in drop]
        for seg_id in drop:
            del segs[seg_id]
        self._stage(replace(s.manifest, segments=tuple(entries)), segs)

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

        live = self._snap().live
        rows = live.filter(pl.col("key").is_in(pl.Series(keys, dtype=pl.UInt64).implode()))
        self._stage_per_segment(rows.select("key", "_seg"), tombstone)
