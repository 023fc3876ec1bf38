"""Search fanned out over long-lived segment actors; the driver merges with the store's merge.

How the service places segments: actors hold contiguous runs of the manifest's segments with
about the same number of live rows each, and a segment is never split. Every extra segment an
actor searches costs throughput (Lucene measured 1 M vectors in 8 segments at 1/7 the QPS of
one), so compact a store before serving it (``store.compact()`` or ingest with large
``rows_per_segment``) and give the service about one actor per node, or per few cores of a node:
more actors than segments only leaves actors idle, and the service never starts more.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from .._validation import check_positive_int, check_texts, check_vectors
from ..embed import Embedder, Fingerprint, from_fingerprint
from ..errors import EmptyInputError, InvalidInputError, WorkbenchError
from ..store import Store, StoreView
from ..store.manifest import manifest_path, read_manifest, require_store
from ..store.view import ROW_COLUMNS, merge_topk, rescore_factor
from ._cluster import DistributedError, ensure


def _groups(live: Sequence[int], n: int) -> list[list[int]]:
    """Contiguous runs of segment positions with about ``sum(live) / n`` live rows each.

    At most `n` runs, none empty, a segment never split.
    """
    n = max(1, min(n, len(live)))
    total = float(sum(live))
    runs: list[list[int]] = []
    cur: list[int] = []
    acc = 0.0
    for i, rows in enumerate(live):
        cur.append(i)
        acc += rows
        runs_left = n - len(runs) - 1
        if runs_left > 0 and (acc >= total * (len(runs) + 1) / n
                              or len(live) - i - 1 == runs_left):
            runs.append(cur)
            cur = []
    if cur:
        runs.append(cur)
    return runs


class _SegmentActor:
    """Holds the segments of one group, per generation, memory-mapped and verified."""

    def __init__(self, path: str, verify: bool) -> None:
        self.path = path
        self.verify = verify
        self.views: dict[int, StoreView | None] = {}

    def load(self, generation: int, segments: list[str]) -> int:
        """Open `segments` of `generation` (kept beside the generations already open)."""
        if generation not in self.views:
            self.views[generation] = (StoreView.open(self.path, generation=generation,
                                                     segments=segments, verify=self.verify)
                                      if segments else None)
        return generation

    def drop(self, keep: int) -> None:
        """Forget every generation but `keep`."""
        self.views = {g: v for g, v in self.views.items() if g == keep}

    def search(self, generation: int, queries: NDArray[np.float32], k: int, where: Any,
               exact: bool, rescore: int
               ) -> tuple[NDArray[np.uint64], NDArray[np.float32], pl.DataFrame]:
        view = self.views[generation]
        nq = queries.shape[0]
        empty = (np.zeros((nq, 0), np.uint64), np.zeros((nq, 0), np.float32),
                 pl.DataFrame(schema={"key": pl.UInt64}))
        if view is None or len(view) == 0:
            return empty
        if where is None:
            kk = min(k, len(view))
            keys, dist = view.knn(queries, kk, exact=exact, rescore=rescore)
        else:
            allowed = view.rows(where)
            if allowed.height == 0:
                return empty
            keys, dist = view.knn(queries, k, allowed=allowed, exact=exact, rescore=rescore)
        hit = np.unique(keys[np.isfinite(dist)])
        live = view.rows()
        meta = live.filter(pl.col("key").is_in(pl.Series(hit, dtype=pl.UInt64).implode()))
        return keys, dist, meta.drop(*ROW_COLUMNS)

    def ready(self) -> bool:
        return True


class SearchService:
    """A store served by Ray actors that each memory-map a group of its segments.

    ``search`` fans the queries out to every actor (filters are pushed down: each actor
    filters its own rows), and the driver merges the per-actor top-k with the store's own
    merge, so exact search equals :meth:`Store.search` row for row and ANN search answers
    from the same indexes. All actors answer from one generation; :meth:`refresh` moves them
    all to the newest one together (each opens its new group first; the switch is one
    assignment on the driver, and searches in flight finish on the old one).

    Parameters
    ----------
    store : Store or path-like
        The store (only its folder and model are used; every node must see the folder).
    actors : int
        Search actors (at most one per segment; see the module docstring for the placement).
    verify : bool
        Actors check each file's CRC-32 once per node (remembered per node), so a torn or
        stale file on a shared filesystem is an error, never a crash inside usearch.
    embedder : Embedder, optional
        For text queries (default: the store's, rebuilt from its fingerprint).
    address : str, optional
        A Ray cluster to join (default: the connected one, or a new local one).

    Raises
    ------
    CorruptStoreError
        A segment file failed its check on some node.

    Examples
    --------
    >>> svc = wd.SearchService("data/stores/news", actors=4)  # doctest: +SKIP
    >>> svc.search("rates rise again", k=5)  # doctest: +SKIP
    """

    def __init__(self, store: Store | str | os.PathLike[str], *, actors: int = 2,
                 verify: bool = True, embedder: Embedder | None = None,
                 address: str | None = None) -> None:
        self.path = Path(store.path if isinstance(store, Store) else store)
        require_store(self.path)
        self.n_actors = check_positive_int(actors, name="actors")
        self.verify = bool(verify)
        self._ray = ensure(address)
        self._embedder = embedder if embedder is not None else (
            store.embedder if isinstance(store, Store) else None)
        self._lock = threading.Lock()
        remote = self._ray.remote(num_cpus=0)(_SegmentActor)
        self._actors = [remote.options(scheduling_strategy="SPREAD").remote(
            str(self.path), self.verify) for _ in range(self.n_actors)]
        self._state: tuple[int, list[Any], dict[str, Any]] | None = None
        self.refresh()

    # ------------------------------------------------------------------ state
    @property
    def generation(self) -> int:
        """The generation every actor answers from."""
        assert self._state is not None
        return self._state[0]

    @property
    def placement(self) -> pl.DataFrame:
        """One row per actor: ``actor: u32``, ``segments: u32``, ``rows: i64`` (live)."""
        assert self._state is not None
        return self._state[2]["placement"]

    def refresh(self) -> int:
        """Move every actor to the store's newest generation together; return it."""
        with self._lock:
            gen = require_store(self.path)[0]
            if self._state is not None and self._state[0] == gen:
                return gen
            m = read_manifest(manifest_path(self.path, gen))
            runs = _groups([e.live for e in m.segments], self.n_actors) if m.segments else []
            groups = [[m.segments[i].id for i in run] for run in runs]
            groups += [[] for _ in range(self.n_actors - len(groups))]
            _get(self._ray, [a.load.remote(gen, g) for a, g in zip(self._actors, groups,
                                                                  strict=True)])
            busy = [a for a, g in zip(self._actors, groups, strict=True) if g]
            placement = pl.DataFrame({
                "actor": pl.Series(range(len(groups)), dtype=pl.UInt32),
                "segments": pl.Series([len(g) for g in groups], dtype=pl.UInt32),
                "rows": pl.Series([sum(m.segments[i].live for i in run) for run in runs]
                                  + [0] * (len(groups) - len(runs)), dtype=pl.Int64)})
            info = {"placement": placement, "rows": sum(e.live for e in m.segments),
                    "dim": m.dim, "dtype": m.dtype, "model": m.model}
            old = self._state
            self._state = (gen, busy, info)  # the switch: one assignment
            for a in self._actors:
                a.drop.remote(gen)
            del old
            return gen

    def close(self) -> None:
        """Stop the actors."""
        for a in self._actors:
            self._ray.kill(a)
        self._actors = []
        self._state = None

    def __enter__(self) -> SearchService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ search
    def _queries(self, query: Any, dim: int, model: dict[str, Any] | None
                 ) -> NDArray[np.float32]:
        if isinstance(query, str) or (isinstance(query, list | tuple) and query
                                      and all(isinstance(q, str) for q in query)):
            texts = check_texts(query, name="query")
            if any(not t.strip() for t in texts):
                raise InvalidInputError("query: expected non-empty text, got an empty string")
            if self._embedder is None and model is not None:
                self._embedder = from_fingerprint(Fingerprint.from_dict(model))
            if self._embedder is None:
                raise InvalidInputError(
                    "query: text queries need an embedder; this store has none (pass vectors)")
            return check_vectors(self._embedder.embed(texts, progress=False), dim=dim,
                                 name="query")
        if isinstance(query, list | tuple) and not query:
            raise EmptyInputError("query: expected a string, a list of strings or vectors, got []")
        return check_vectors(query, dim=dim, name="query")

    def search(self, query: Any, *, k: int = 10, where: Any = None, exact: bool = False,
               rescore: bool | int | None = None) -> pl.DataFrame:
        """Nearest neighbours of one or more queries, as :meth:`Store.search` returns them.

        Parameters
        ----------
        query : str, list of str, vector (dim,) or array (n, dim)
        k : int
        where : polars.Expr, optional
            A filter over the metadata, applied by each actor to its own rows.
        exact : bool
            Brute force over the full-precision vectors.
        rescore : bool or int, optional
            As in :meth:`Store.search`.

        Returns
        -------
        polars.DataFrame
            ``query: u32, id: str, distance: f32, key: u64`` and the metadata columns, sorted by
            query then distance.

        Raises
        ------
        InvalidInputError
            Bad query, `k` above the store's rows (without `where`), a bad filter.
        CorruptStoreError
            An actor found a damaged file.
        """
        k = check_positive_int(k, name="k")
        state = self._state
        if state is None:
            raise InvalidInputError("service: closed; create a new SearchService")
        gen, busy, info = state
        factor = rescore_factor(rescore, info["dtype"])
        q = self._queries(query, info["dim"], info["model"])
        if where is None and k > info["rows"]:
            raise InvalidInputError(
                f"k: expected at most {info['rows']} (the rows in the store), got {k}")
        ref = self._ray.put(q)
        parts = _get(self._ray, [a.search.remote(gen, ref, k, where, exact, factor)
                                 for a in busy])
        nq = q.shape[0]
        keys, dist = merge_topk([(p[0], p[1]) for p in parts if p[0].shape[1]], k, nq)
        metas = [p[2] for p in parts if p[2].height]
        return _frame(keys, dist, metas)


def _frame(keys: NDArray[np.uint64], dist: NDArray[np.float32],
           metas: list[pl.DataFrame]) -> pl.DataFrame:
    """The result frame of :meth:`Store.search` from merged top-k and the hits' metadata."""
    nq = keys.shape[0]
    valid = np.isfinite(dist)
    qrow = np.broadcast_to(np.arange(nq, dtype=np.uint32)[:, None], keys.shape)[valid]
    flat = keys[valid]
    meta = (pl.concat(metas, how="diagonal_relaxed").unique("key") if metas
            else pl.DataFrame(schema={"key": pl.UInt64, "id": pl.Utf8}))
    order = pl.DataFrame({"key": pl.Series(flat, dtype=pl.UInt64),
                          "_ord": np.arange(flat.size)})
    rows = order.join(meta, on="key", how="left").sort("_ord").drop("_ord")
    head = pl.DataFrame({"query": pl.Series(qrow, dtype=pl.UInt32),
                         "id": rows.get_column("id") if "id" in rows.columns
                         else pl.Series([], dtype=pl.Utf8),
                         "distance": pl.Series(dist[valid], dtype=pl.Float32)})
    return pl.concat([head, rows.drop("id")], how="horizontal")


def _get(ray: Any, refs: list[Any]) -> list[Any]:
    """``ray.get`` that raises a workbench error as itself (not wrapped by Ray)."""
    try:
        return ray.get(refs)
    except Exception as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, WorkbenchError):
            raise cause from None
        if isinstance(exc, WorkbenchError):
            raise
        raise DistributedError(f"search: an actor failed: {exc}") from exc
