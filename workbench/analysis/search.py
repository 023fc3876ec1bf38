"""Search helpers on top of the store: a semantic query cache and ANN evaluation."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
from numpy.typing import NDArray
from tqdm.auto import tqdm

from .._validation import check_positive_int
from ..errors import InvalidInputError
from ..store.segment import unit

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..store import Store

__all__ = ["AnnEvaluation", "SemanticCache", "evaluate_ann"]


def _where_key(where: pl.Expr | None) -> str:
    if where is None:
        return ""
    try:
        return str(where.meta.serialize(format="json"))
    except Exception:  # older polars or unserialisable expressions: the printed form
        return str(where)


class SemanticCache:
    """Answer a query from an earlier one whose embedding is within a cosine threshold.

    A repeated or paraphrased question ("how to open a file" / "how do I open files") is served
    from memory without searching. Entries are kept per (k, where, options), evicted
    least-recently-used beyond `capacity`, and all dropped when the store's generation changes
    (any commit), so an answer never outlives the data it came from.

    Parameters
    ----------
    store : Store
        The store to search.
    threshold : float
        Minimum cosine similarity between a new query and a cached one for a hit.
    capacity : int
        Maximum number of cached queries.

    Attributes
    ----------
    hits, misses, invalidations : int
        Counters since creation.

    Examples
    --------
    >>> cache = wb.SemanticCache(store, threshold=0.95)  # doctest: +SKIP
    >>> cache.search("how do I open a file", k=5)  # doctest: +SKIP
    >>> cache.hits, cache.misses  # doctest: +SKIP
    """

    def __init__(self, store: Store, *, threshold: float = 0.95, capacity: int = 1024) -> None:
        if not 0.0 < float(threshold) <= 1.0:
            raise InvalidInputError(f"threshold: expected a cosine in (0, 1], got {threshold!r}")
        self.store = store
        self.threshold = float(threshold)
        self.capacity = check_positive_int(capacity, name="capacity")
        self.hits = 0
        self.misses = 0
        self.invalidations = 0
        self._generation = store.generation
        self._entries: OrderedDict[int, tuple[str, NDArray[np.float32], pl.DataFrame]] = (
            OrderedDict()
        )
        self._next = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def hit_rate(self) -> float:
        """Share of lookups answered from the cache."""
        total = self.hits + self.misses
        return self.hits / total if total else 0.0

    def clear(self) -> None:
        """Drop every cached answer."""
        self._entries.clear()

    def stats(self) -> dict[str, float]:
        """Counters as a dict: hits, misses, hit_rate, invalidations, size."""
        return {"hits": self.hits, "misses": self.misses, "hit_rate": self.hit_rate,
                "invalidations": self.invalidations, "size": len(self)}

    def search(self, query: Any, *, k: int = 10, where: pl.Expr | None = None,
               **options: Any) -> pl.DataFrame:
        """Search like :meth:`Store.search` for one query, served from the cache on a hit.

        Parameters
        ----------
        query : str or vector (dim,)
            One query.
        k, where, **options
            Passed to :meth:`Store.search`; only answers with equal values are reused.

        Returns
        -------
        polars.DataFrame
            The search result (``query`` is 0).
        """
        if self.store.generation != self._generation:
            self._entries.clear()
            self._generation = self.store.generation
            self.invalidations += 1
        vec = self.store.query_vectors(query)
        if vec.shape[0] != 1:
            raise InvalidInputError("query: the cache answers one query at a time")
        q = unit(vec)[0]
        context = f"{k}|{_where_key(where)}|{sorted(options.items())}"
        best, best_sim = None, -1.0
        for key, (ctx, cached, _) in self._entries.items():
            if ctx != context:
                continue
            sim = float(cached @ q)
            if sim > best_sim:
                best, best_sim = key, sim
        if best is not None and best_sim >= self.threshold:
            self.hits += 1
            self._entries.move_to_end(best)
            return self._entries[best][2].clone()
        self.misses += 1
        result = self.store.search(vec, k=k, where=where, **options)
        self._entries[self._next] = (context, q, result)
        self._next += 1
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)
        return result.clone()


@dataclass(frozen=True)
class AnnEvaluation:
    """Recall and speed of approximate search per setting, against exact search.

    Attributes
    ----------
    frame : polars.DataFrame
        One row per setting: the swept parameters, ``recall: f64`` (recall@k against exact
        search on the full-precision vectors), ``qps: f64``, ``seconds: f64``.
    k : int
        Neighbours per query.
    exact_qps : float
        Queries per second of exact search, for reference.
    """

    frame: pl.DataFrame
    k: int
    exact_qps: float
    params: tuple[str, ...] = field(default=())

    def to_frame(self) -> pl.DataFrame:
        """The per-setting frame."""
        return self.frame

    def plot(self) -> Figure:
        """Recall@k against QPS, one point per setting, exact search as a reference line.

        Each point is labelled with its setting's values (the parameter names are in the axis
        note); a label that would overlap one already drawn is left out, so close settings
        never print on top of each other.
        """
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(6, 4))
        FigureCanvasAgg(fig)  # a renderer to measure the labels with
        ax = fig.add_subplot()
        ax.plot(self.frame["qps"], self.frame["recall"], marker="o")
        labels = []
        for i, row in enumerate(self.frame.iter_rows(named=True)):
            text = "/".join(str(row[p]) for p in self.params)
            # alternate above and below the line: neighbouring settings sit close
            labels.append(ax.annotate(text, (row["qps"], row["recall"]), fontsize=7,
                                      textcoords="offset points",
                                      xytext=(4, 6) if i % 2 else (4, -11)))
        ax.axvline(self.exact_qps, color="grey", linestyle="--", label="exact search")
        ax.set_xscale("log")
        ax.set_xlabel("queries per second (log); points labelled " + "/".join(self.params))
        ax.set_ylabel(f"recall@{self.k}")
        ax.set_title("ANN recall vs speed")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower left")
        fig.tight_layout()
        renderer = fig.canvas.get_renderer()
        kept: list[Any] = []
        for label in labels:
            box = label.get_window_extent(renderer)
            if any(box.overlaps(other) for other in kept):
                label.set_visible(False)
            else:
                kept.append(box)
        return fig


def evaluate_ann(
    store: Store,
    queries: Any,
    *,
    k: int = 10,
    sweep: dict[str, list[Any]] | None = None,
    where: pl.Expr | None = None,
    repeats: int = 1,
    progress: bool = True,
) -> AnnEvaluation:
    """Measure recall@k (against exact search) and QPS of the store's ANN search per setting.

    Parameters
    ----------
    store : Store
        The store.
    queries : int, str, list of str or array (n, dim)
        Query texts or vectors; an int samples that many stored vectors as queries.
    k : int
        Neighbours per query.
    sweep : dict
        Parameter -> values. Supported: ``expansion_search`` (HNSW ef) and ``rescore``
        (False or a factor). Default ``{"expansion_search": [16, 32, 64, 128, 256]}``.
    where : polars.Expr, optional
        Evaluate filtered search.
    repeats : int
        Timed runs per setting (the best is kept).
    progress : bool
        Show a progress bar.

    Returns
    -------
    AnnEvaluation
        The frame of recall and QPS per setting and a ``plot()`` method.
    """
    k = check_positive_int(k, name="k")
    sweep = sweep or {"expansion_search": [16, 32, 64, 128, 256]}
    unknown = set(sweep) - {"expansion_search", "rescore"}
    if unknown:
        raise InvalidInputError(
            f"sweep: expected keys among ['expansion_search', 'rescore'], got {sorted(unknown)}"
        )
    if isinstance(queries, int | np.integer):
        n = check_positive_int(int(queries), name="queries")
        ids = store.scan().select("id").collect()["id"]
        if ids.len() == 0:
            raise InvalidInputError("store: is empty; nothing to evaluate")
        pick = np.random.default_rng(0).choice(ids.len(), size=min(n, ids.len()), replace=False)
        q = store.vectors(ids.gather(pick).to_list())
    else:
        q = store.query_vectors(queries)
    t0 = time.perf_counter()
    truth = store.search(q, k=k, where=where, exact=True)
    exact_qps = len(q) / (time.perf_counter() - t0)
    truth_sets = truth.group_by("query").agg(pl.col("key")).sort("query")
    want = dict(zip(truth_sets["query"], truth_sets["key"].to_list(), strict=True))
    names = list(sweep)
    grid: list[dict[str, Any]] = [{}]
    for name in names:
        grid = [{**g, name: v} for g in grid for v in sweep[name]]
    original = store.expansion_search
    # The first ANN search of a process pays one-off costs (numba loading or compiling the
    # rescoring kernel, ~1.1 s here), which the first setting would be charged: 177 QPS
    # instead of ~14,000 on a 1,000 x 384 i8 store. Warm each rescoring mode up first.
    for rescore in dict.fromkeys(g.get("rescore") for g in grid):
        store.search(q[:8], k=k, where=where, rescore=rescore)
    rows = []
    try:
        for setting in tqdm(grid, desc="evaluate_ann", disable=not progress):
            store.expansion_search = int(setting.get("expansion_search", original))
            rescore = setting.get("rescore")
            best = np.inf
            for _ in range(max(1, repeats)):
                t0 = time.perf_counter()
                res = store.search(q, k=k, where=where, rescore=rescore)
                best = min(best, time.perf_counter() - t0)
            got = res.group_by("query").agg(pl.col("key"))
            recall = np.mean([
                len(set(keys) & set(want.get(qi, []))) / max(len(want.get(qi, [])), 1)
                for qi, keys in zip(got["query"], got["key"].to_list(), strict=True)
            ]) if got.height else 0.0
            shown = {n: int(setting[n] or 0) if n == "rescore" else setting[n] for n in names}
            rows.append({**shown, "recall": float(recall),
                         "qps": len(q) / best, "seconds": best})
    finally:
        store.expansion_search = original
    return AnnEvaluation(frame=pl.DataFrame(rows), k=k, exact_qps=exact_qps,
                         params=tuple(names))
