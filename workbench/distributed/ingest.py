"""Distributed ingest: Ray Data reads, actors embed, a Datasink writes, the driver commits.

The driver is the store's single writer; the Datasink's write tasks build whole segments.

What runs where:

- **driver**: opens or creates the store and holds its writer lock for the whole job; has Ray
  Data read the input once into the object store and checks it (columns, null and repeated
  ids, unreadable files) before anything is written;
  hands out key ranges (a small actor); commits every `commit_every` finished segments and the
  rest in :meth:`Datasink.on_write_complete`.
- **embedding actors** (``map_batches(..., compute=ActorPoolStrategy(size=workers))``): each
  rebuilds the store's embedder once from its fingerprint and embeds batches of texts, skipping
  ids already committed (a rerun after a failure does only the rest).
- **write tasks** (:class:`SegmentSink` ``.write``): turn the embedded rows into whole segments
  (usearch index, vectors, metadata, checksums) under the store's ``segments/`` folder, which
  every node must see (a shared filesystem). A segment is named by no manifest until the driver
  commits it; the files of a failed job are collected by the next writer open.

Lance commits distributed fragment writes the same way: fragments written anywhere, one commit
names them.
"""

from __future__ import annotations

import glob as globlib
import os
import shutil
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from tqdm.auto import tqdm

from .._validation import check_positive_int
from ..embed import Embedder, Fingerprint, from_fingerprint
from ..errors import (
    DuplicateIdError,
    InvalidInputError,
    MissingColumnError,
    ModelMismatchError,
    NotAStoreError,
    WorkbenchError,
)
from ..store import SegmentEntry, Store
from ..store.segment import write_segment
from ._cluster import DistributedError, default_workers, ensure

#: The embedded vectors travel between the actor pool and the write tasks in this column.
VECTOR = "__wb_vector"
#: Rows per segment by default: few, large segments search fastest (every extra segment
#: searched costs throughput), while a segment still builds in seconds on one core.
ROWS_PER_SEGMENT = 100_000
#: Texts per actor call. The embedder sorts a call's texts by length before batching by a
#: token budget, so larger calls waste less padding (in-process it sorts 16,384 at a time).
BATCH_SIZE = 1024
READERS = {".parquet": "read_parquet", ".pq": "read_parquet", ".csv": "read_csv",
           ".jsonl": "read_json", ".ndjson": "read_json", ".json": "read_json"}


@dataclass(frozen=True)
class IngestReport:
    """What one :func:`ingest` did.

    Attributes
    ----------
    path : str
        The store folder.
    generation : int
        The store's generation after the job.
    added, skipped : int
        Rows added, and rows skipped because their id was already committed.
    rows : int
        Rows in the store after the job.
    segments, commits : int
        Segments written and commits made by this job.
    workers : int
        Embedding actors.
    nodes : tuple of str
        Ray node ids whose write tasks wrote segments.
    seconds : float
        Wall time of the whole call.
    setup_seconds : float
        Ray's fixed cost in it: connecting (or starting a local cluster) and checking the input
        through Ray Data before the first row is embedded.
    """

    path: str
    generation: int
    added: int
    skipped: int
    rows: int
    segments: int
    commits: int
    workers: int
    nodes: tuple[str, ...]
    seconds: float
    setup_seconds: float

    @property
    def rows_per_second(self) -> float:
        """Rows added per second of wall time."""
        return self.added / self.seconds if self.seconds > 0 else 0.0

    def to_frame(self) -> pl.DataFrame:
        """One row with the fields above (``nodes`` as a count)."""
        d = asdict(self)
        d["nodes"] = len(self.nodes)
        return pl.DataFrame([d])


def _read_source(ray: Any, source: Any, *, blocks: int) -> tuple[Any, str]:
    """A Ray Dataset for `source` (path(s), glob or Dataset) and a name for messages."""
    import ray.data

    if isinstance(source, ray.data.Dataset):
        return source, "the dataset"
    if isinstance(source, str | os.PathLike):
        items = [source]
    elif isinstance(source, Sequence) and source and all(
            isinstance(s, str | os.PathLike) for s in source):
        items = list(source)
    else:
        raise InvalidInputError(
            "source: expected a path, a glob, a list of paths or a ray.data.Dataset, got "
            f"{type(source).__name__}")
    paths: list[str] = []
    for item in items:
        s = str(item)
        found = sorted(globlib.glob(s)) if any(c in s for c in "*?[") else [s]
        if not found:
            raise InvalidInputError(f"source: the glob {s!r} matches no file")
        for p in found:
            if not Path(p).is_file():
                raise InvalidInputError(f"source: expected a readable file, {p!r} is not one")
            paths.append(p)
    suffixes = {Path(p).suffix.lower() for p in paths}
    if len(suffixes) != 1 or next(iter(suffixes)) not in READERS:
        raise InvalidInputError(
            f"source: expected files of one kind among {sorted(READERS)}, got {sorted(suffixes)}")
    reader = READERS[suffixes.pop()]
    kwargs: dict[str, Any] = {"override_num_blocks": blocks}
    if reader == "read_json":
        kwargs["lines"] = True
    try:
        return getattr(ray.data, reader)(paths, **kwargs), f"the files {paths[:3]}"
    except Exception as exc:  # pyarrow / Ray raise many kinds on unreadable input
        raise InvalidInputError(f"source: could not read {paths[:3]}: {exc}") from exc


def _load(ds: Any, *, text: str, id: str, what: str, workers: int,  # noqa: A002
          batch_size: int, rows_per_segment: int, progress: bool) -> tuple[Any, pl.Series]:
    """The source read once into Ray's object store, in blocks for every worker; its ids.

    Checks: columns present, texts strings without nulls, ids without nulls or repeats; all
    before any segment is written, so bad input changes nothing. Reading the input once here
    (spilling to disk past the object store's memory) also frees the embedding job of read
    tasks, which would wait for CPUs that the actor pool holds.
    """
    try:
        names = ds.schema().names
    except Exception as exc:  # unreadable file
        raise InvalidInputError(f"source: could not read {what}: {_root(exc)}") from exc
    for col, opt in ((text, "text"), (id, "id")):
        if col not in names:
            raise MissingColumnError(
                f"{opt}: {what} have no column {col!r} (columns are {names})")
    try:
        n = ds.count()  # Parquet: from the files' metadata
        # Blocks enough for every worker: a dataset built from one table is one block, and
        # Ray Data's file reader hands several files to one task, which one actor would then
        # embed alone (5,000 rows in 3 files, 2 actors: 24 s, 17 s split).
        ds = (ds.repartition(target_num_rows_per_block=_block_rows(
            n, workers, rows_per_segment)) if n else ds).materialize()
    except Exception as exc:  # an unreadable file surfaces here, while reading
        raise InvalidInputError(f"source: could not read {what}: {_root(exc)}") from exc
    parts: list[pl.DataFrame] = []
    for batch in tqdm(ds.select_columns([id, text]).iter_batches(batch_format="pyarrow",
                                                                 batch_size=65_536),
                      desc="checking ids", unit="batch", disable=not progress):
        f = pl.from_arrow(batch)
        if f.schema[text] != pl.Utf8 or f.get_column(text).null_count():
            raise InvalidInputError(
                f"text: expected column {text!r} of {what} to hold strings without nulls, "
                f"got {f.schema[text]} with {f.get_column(text).null_count()} null(s)")
        parts.append(f.select(pl.col(id).cast(pl.Utf8)))
    ids = pl.concat(parts).get_column(id) if parts else pl.Series(id, [], dtype=pl.Utf8)
    if ids.null_count():
        raise InvalidInputError(f"id: column {id!r} of {what} has {ids.null_count()} null id(s)")
    repeated = ids.filter(ids.is_duplicated()).unique(maintain_order=True)
    if repeated.len():
        shown = ", ".join(repr(i) for i in repeated.head(5).to_list())
        raise DuplicateIdError(
            f"id: {what} repeat {repeated.len()} id(s) (across files too): {shown}")
    return ds, ids


def _block_rows(n: int, workers: int, rows_per_segment: int) -> int:
    """Rows per block: a quarter of a worker's share, dividing a segment.

    A divisor of `rows_per_segment`, so that the write tasks' bundles (at least
    `rows_per_segment` rows) are whole segments with no small remainder.
    """
    want = max(1, min(-(-n // (4 * workers)), rows_per_segment))
    m = -(-rows_per_segment // want)
    while rows_per_segment % m:
        m += 1
    return rows_per_segment // m


def _warm_writer() -> int:
    """Import what a write task needs, in an idle worker, while the driver reads the input.

    Ray reuses idle task workers; a write task then starts in one that has the store
    imported (an interpreter start and these imports take ~4.5 s on 2 cores).
    """
    import ray.data  # noqa: F401

    from ..store import segment  # noqa: F401

    return os.getpid()


def _root(exc: BaseException) -> str:
    """The innermost message of a Ray-wrapped error."""
    cause = getattr(exc, "cause", None) or exc.__cause__
    lines = str(cause if cause is not None else exc).strip().splitlines()
    return (lines[-1] if lines else type(cause or exc).__name__)[:500]


class _Embed:
    """The actor pool's callable: one embedder per actor, rebuilt from the fingerprint."""

    def __init__(self, model: dict[str, Any] | None, ledger: Any, text: str,
                 id: str, threads: int) -> None:  # noqa: A002
        import ray
        import torch

        torch.set_num_threads(max(1, threads))
        # From the ledger actor, not constructor arguments in the object store: a restarted
        # actor could not get those back once they went out of scope (ray#53727).
        if model is not None:
            embedder = from_fingerprint(Fingerprint.from_dict(model))
        else:
            embedder = ray.get(ledger.embedder.remote())
        self.embedder = embedder
        self.text, self.id = text, id
        self.committed = ray.get(ledger.committed.remote())

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        f = pl.from_arrow(batch)
        f = f.with_columns(pl.col(self.id).cast(pl.Utf8))
        if self.committed.len():
            f = f.filter(~pl.col(self.id).is_in(self.committed.implode()))
        if f.height == 0:
            return f.to_arrow().append_column(
                VECTOR, pa.array([], type=pa.list_(pa.float32())))
        vecs = np.asarray(self.embedder.embed(f.get_column(self.text).to_list(), progress=False),
                          dtype=np.float32)
        table = f.to_arrow()
        flat = pa.array(vecs.reshape(-1), type=pa.float32())
        return table.append_column(VECTOR, pa.FixedSizeListArray.from_arrays(flat, vecs.shape[1]))


def _ledger(ray: Any) -> Any:
    """The job's one small actor (one process: each costs an interpreter start)."""

    @ray.remote(num_cpus=0)
    class Ledger:
        """Key ranges, finished segments, and what every embedding actor needs.

        Key ranges go to the write tasks; the segments they finished are taken by the
        driver's checkpoint commits; the committed ids and a model that cannot be rebuilt
        from its fingerprint go to the embedding actors.
        """

        def __init__(self, start: int, committed: pl.Series, embedder: Any) -> None:
            self.next = int(start)
            # Plain dicts (SegmentEntry.to_dict): unpickling a SegmentEntry would import
            # the workbench package (and torch) into this process, ~1.8 s on 2 cores.
            self.entries: list[tuple[dict[str, Any], str]] = []
            self._committed = committed
            self._embedder = embedder

        def reserve(self, n: int) -> int:
            start = self.next
            self.next += int(n)
            return start

        def top(self) -> int:
            return self.next

        def committed(self) -> pl.Series:
            return self._committed

        def embedder(self) -> Any:
            return self._embedder

        def add(self, entry: dict[str, Any], node: str) -> None:
            self.entries.append((entry, node))

        def take(self) -> list[tuple[dict[str, Any], str]]:
            out, self.entries = self.entries, []
            return out

    return Ledger


def _sink_class() -> type:
    from ray.data import Datasink

    class SegmentSink(Datasink):
        """Writes whole segments in the write tasks; the driver commits them."""

        def __init__(self, layout: dict[str, Any], id: str, rows_per_segment: int,  # noqa: A002
                     ledger: Any, commit: Any) -> None:
            self.layout = layout
            self.id = id
            self.rows_per_segment = rows_per_segment
            self.ledger = ledger
            self._commit = commit  # driver-side callable (not pickled into tasks: see below)

        def __getstate__(self) -> dict[str, Any]:
            state = dict(self.__dict__)
            state["_commit"] = None
            return state

        @property
        def min_rows_per_write(self) -> int:
            return self.rows_per_segment

        def write(self, blocks: Iterable[Any], ctx: Any) -> list[tuple[SegmentEntry, str]]:
            import ray

            node = ray.get_runtime_context().get_node_id()
            out: list[tuple[SegmentEntry, str]] = []
            pending: list[pl.DataFrame] = []
            n = 0
            for block in blocks:
                f = pl.from_arrow(block)
                if f.height == 0:
                    continue
                pending.append(f)
                n += f.height
                while n >= self.rows_per_segment:
                    whole = pl.concat(pending, how="vertical_relaxed")
                    out.append(self._segment(whole.head(self.rows_per_segment), node))
                    rest = whole.slice(self.rows_per_segment)
                    pending, n = ([rest], rest.height) if rest.height else ([], 0)
            if n:
                out.append(self._segment(pl.concat(pending, how="vertical_relaxed"), node))
            return out

        def _segment(self, f: pl.DataFrame, node: str) -> tuple[SegmentEntry, str]:
            import ray

            lay = self.layout
            start = ray.get(self.ledger.reserve.remote(f.height))
            keys = np.arange(start, start + f.height, dtype=np.uint64)
            vecs = np.asarray(f.get_column(VECTOR).to_list(), dtype=np.float32) \
                if f.schema[VECTOR] != pl.Array else f.get_column(VECTOR).to_numpy()
            vecs = np.ascontiguousarray(vecs, dtype=np.float32)
            rest = f.drop(VECTOR, self.id)
            meta = pl.concat([pl.DataFrame({"key": keys, "id": f.get_column(self.id)
                                            .cast(pl.Utf8)}), rest], how="horizontal")
            entry = write_segment(Path(lay["staging"]), keys, vecs, meta,
                                  metric=lay["metric"], dtype=lay["dtype"],
                                  params=lay["params"], progress=False)
            ray.get(self.ledger.add.remote(entry.to_dict(), node))
            return entry, node

        def on_write_complete(self, write_result: Any) -> None:
            done = [x for ret in write_result.write_returns for x in ret]
            self._commit(done, final=True)

    return SegmentSink


class _Committer:
    """The driver's side: commits finished segments every `every`, and the rest at the end."""

    def __init__(self, store: Store, ledger: Any, every: int, bar: Any,
                 staging: Path) -> None:
        self.store, self.ledger, self.every, self.bar = store, ledger, every, bar
        self.staging = staging
        self.lock = threading.Lock()
        self.committed: set[str] = set()
        self.waiting: list[tuple[SegmentEntry, str]] = []
        self.nodes: set[str] = set()
        self.commits = 0
        self.rows = 0
        self.error: BaseException | None = None

    def __call__(self, entries: list[tuple[SegmentEntry, str]], *, final: bool = False) -> None:
        import ray

        with self.lock:
            seen = {e.id for e, _ in self.waiting} | self.committed
            self.waiting += [(e, n) for e, n in entries if e.id not in seen]
            if not self.waiting or (not final and len(self.waiting) < self.every):
                return
            batch = self.waiting if final else self.waiting[: len(self.waiting)
                                                            // self.every * self.every]
            top = ray.get(self.ledger.top.remote())
            self.store.commit_segments([e for e, _ in batch], next_key=top,
                                       staging=self.staging)
            self.commits += 1
            for e, node in batch:
                self.committed.add(e.id)
                self.nodes.add(node)
                self.rows += e.rows
                self.bar.update(e.rows)
            done = {e.id for e, _ in batch}
            self.waiting = [(e, n) for e, n in self.waiting if e.id not in done]

    def poll(self, stop: threading.Event) -> None:
        """Checkpoint commits while the job runs (a background thread of the driver)."""
        import ray

        while not stop.wait(0.5):
            try:
                self([(SegmentEntry.from_dict(e), node)
                      for e, node in ray.get(self.ledger.take.remote())])
            except BaseException as exc:  # reported by the job after it ends
                self.error = exc
                return


def _open_store(store: Store | str | os.PathLike[str], embedder: Embedder | None
                ) -> tuple[Store, bool, bool]:
    """The writable store, whether this call opened it, and whether it created it."""
    if isinstance(store, Store):
        if store.readonly:
            raise InvalidInputError("store: opened with readonly=True; ingest needs a writer")
        if embedder is not None and store.model is not None and not (
                store.model.same_model(embedder.fingerprint)):
            raise ModelMismatchError(
                f"embedder: the store holds vectors of {store.model.describe()}, got "
                f"{embedder.fingerprint.describe()}")
        return store, False, False
    path = Path(store)
    try:
        return Store.open(path, embedder=embedder), True, False
    except NotAStoreError:
        if embedder is None:
            from ..embed import MiniLM

            embedder = MiniLM()
        return Store.create(path, embedder=embedder), True, True


def ingest(
    store: Store | str | os.PathLike[str],
    source: Any,
    *,
    text: str = "text",
    id: str = "id",  # noqa: A002 - the documented argument name
    embedder: Embedder | None = None,
    workers: int | None = None,
    batch_size: int = BATCH_SIZE,
    rows_per_segment: int = ROWS_PER_SEGMENT,
    commit_every: int = 8,
    address: str | None = None,
    progress: bool = True,
) -> IngestReport:
    """Embed and add the rows of `source` to a store, across a Ray cluster.

    The result is the store a single-process ``store.add(df, text=text, id=id)`` would hold:
    the same ids, metadata, fingerprint, and vectors equal within float tolerance (keys may be
    numbered differently).

    Parameters
    ----------
    store : Store or path-like
        An open writable store, or a folder: opened, or created with `embedder` (MiniLM by
        default) when no store is there. Every node must see the folder (a shared filesystem).
    source : path, glob, list of paths, or ray.data.Dataset
        Parquet, CSV or JSON-lines files (one kind), or a dataset. Every column is stored as
        metadata.
    text, id : str
        The column to embed, and the column of unique row ids (used to skip rows already
        committed: a rerun after a failure does only the rest).
    embedder : Embedder, optional
        Must match the store's model (default: the store's, rebuilt in each actor from its
        fingerprint; an embedder that cannot be rebuilt, such as a callable, is shipped once).
    workers : int, optional
        Embedding actors (default: the cluster's CPUs); each gets ``cluster CPUs / workers``
        CPUs (at least one), which torch uses as its threads.
    batch_size : int
        Texts per actor call.
    rows_per_segment : int
        Rows per segment written (few, large segments search fastest).
    commit_every : int
        Segments per checkpoint commit; the rest are committed when the job ends.
    address : str, optional
        A Ray cluster to join (see :func:`connect`); by default the one this process is
        connected to, or a new local one.
    progress : bool
        Show a progress bar of the rows committed.

    Returns
    -------
    IngestReport

    Raises
    ------
    MissingColumnError
        The source lacks the `text` or `id` column.
    DuplicateIdError
        An id repeats in the source (within or across files).
    InvalidInputError
        Unreadable or unknown source files, null ids or texts, bad sizes.
    ModelMismatchError
        `embedder` differs from the store's model.
    DistributedError
        A worker failed; the store holds what was committed before (rerun to finish).

    Each input error is raised before any segment is written; the store is left as it was.

    Examples
    --------
    >>> import workbench.distributed as wd  # doctest: +SKIP
    >>> report = wd.ingest("data/stores/news", "news/*.parquet", text="body")  # doctest: +SKIP
    """
    t0 = time.perf_counter()
    batch_size = check_positive_int(batch_size, name="batch_size")
    rows_per_segment = check_positive_int(rows_per_segment, name="rows_per_segment")
    commit_every = check_positive_int(commit_every, name="commit_every")
    for name, col in (("text", text), ("id", id)):
        if not isinstance(col, str) or not col:
            raise InvalidInputError(f"{name}: expected a column name, got {col!r}")
    ray = ensure(address)
    workers = default_workers(workers)
    warm = ray.remote(num_cpus=0)(_warm_writer)
    for _ in range(workers):
        warm.remote()  # fire and forget: overlaps the write tasks' start with reading
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    per_actor = max(1, cpus // workers)
    ds, what = _read_source(ray, source, blocks=max(4 * workers, 8))
    ds, ids = _load(ds, text=text, id=id, what=what, workers=workers, batch_size=batch_size,
                    rows_per_segment=rows_per_segment, progress=progress)
    st, opened, created = _open_store(store, embedder)
    staging: Path | None = None
    try:
        if st.embedder is None and st.model is None:
            raise InvalidInputError(
                "store: a vectors-only store has no embedder to embed texts with; create it "
                "with embedder=...")
        model = st.model
        emb = embedder or st.embedder
        rebuildable = model is not None and model.kind not in ("callable", "external")
        committed = st.scan().select("id").collect().get_column("id")
        fresh = int((~ids.is_in(committed.implode())).sum())
        skipped = ids.len() - fresh
        setup = time.perf_counter() - t0
        ledger = _ledger(ray).remote(st.layout["next_key"], committed,
                                     None if rebuildable else emb)
        gen0 = st.generation
        staging = st.staging_folder()
        layout = {**st.layout, "staging": str(staging)}
        with tqdm(total=fresh, desc="ingest", unit="row", disable=not progress) as bar:
            commit = _Committer(st, ledger, commit_every, bar, staging)
            if fresh:
                # A call never spans blocks (Ray Data would bundle small blocks into one call,
                # and one actor would embed them all).
                call = min(batch_size, _block_rows(ids.len(), workers, rows_per_segment))
                embedded = ds.map_batches(
                    _Embed, batch_format="pyarrow", batch_size=call,
                    fn_constructor_args=(model.to_dict() if rebuildable and model else None,
                                         ledger, text, id, per_actor),
                    compute=ray.data.ActorPoolStrategy(size=workers),
                    num_cpus=per_actor)
                sink = _sink_class()(layout, id, rows_per_segment, ledger, commit)
                stop = threading.Event()
                poller = threading.Thread(target=commit.poll, args=(stop,), daemon=True)
                poller.start()
                try:
                    # Write tasks take no CPU slot: the actors hold them all, and a write task
                    # waiting for one would stall the pipeline; index builds overlap embedding.
                    # At most `workers` at once, so their worker processes are reused (each
                    # new one pays ~2 s importing the store).
                    writers = max(1, min(workers, -(-fresh // rows_per_segment)))
                    embedded.write_datasink(sink, ray_remote_args={"num_cpus": 0},
                                            concurrency=writers)
                except WorkbenchError:
                    raise
                except Exception as exc:
                    raise DistributedError(
                        f"ingest: the job failed ({_root(exc)}); the store keeps the "
                        f"{commit.rows:,} rows committed before (generation "
                        f"{st.generation}); run the same call again to finish") from exc
                finally:
                    stop.set()
                    poller.join()
                if commit.error is not None:
                    raise DistributedError(
                        f"ingest: a checkpoint commit failed: {commit.error}") from commit.error
        ray.kill(ledger)
        return IngestReport(
            path=str(st.path), generation=st.generation, added=commit.rows, skipped=skipped,
            rows=len(st), segments=len(commit.committed), commits=st.generation - gen0,
            workers=workers, nodes=tuple(sorted(commit.nodes)),
            seconds=time.perf_counter() - t0, setup_seconds=setup)
    except BaseException:
        if created and len(st) == 0:
            st.close()
            shutil.rmtree(st.path, ignore_errors=True)  # leave no empty store behind
            opened = False
        raise
    finally:
        if staging is not None:
            # segments written but not committed (a failed job) go with their folder
            shutil.rmtree(staging, ignore_errors=True)
        if opened:
            st.close()
