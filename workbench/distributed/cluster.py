"""Clustering a store too big for one fit: fit on a seeded sample, assign the rest on Ray.

:func:`cluster` runs the single-machine :func:`workbench.analysis.cluster.cluster` on a sample
of the store's rows (at most :data:`MAX_SAMPLE`), then assigns every other row with
:meth:`~workbench.analysis.cluster.ClusterResult.assign` in Ray tasks, one per group of
segments; each task opens its segments with :meth:`workbench.store.view.StoreView.open`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from ..analysis._assign import for_assign
from ..analysis.cluster import ClusterResult
from ..analysis.cluster import cluster as _fit
from ..errors import InvalidInputError
from ._cluster import DistributedError, default_workers, ensure

__all__ = ["MAX_SAMPLE", "DistributedClusterResult", "cluster"]

#: Most rows fitted on: UMAP and HDBSCAN run on the driver, in memory.
MAX_SAMPLE = 1_000_000
#: Most rows one task assigns (bounds a worker's memory: vectors plus UMAP's search).
_TASK_ROWS = 2_000_000
#: Schema of :attr:`DistributedClusterResult.points`.
POINTS_SCHEMA = {"key": pl.UInt64, "id": pl.Utf8, "cluster": pl.Int32, "topic": pl.Utf8,
                 "x": pl.Float32, "y": pl.Float32, "confidence": pl.Float32,
                 "fitted": pl.Boolean}


@dataclass(frozen=True, eq=False)
class DistributedClusterResult:
    """A clustering fitted on a sample of a store, with every selected row assigned.

    A :class:`~workbench.analysis.cluster.ClusterResult` for all rows would not be one in
    substance: its spanning tree (re-clustering, relative validity), word counts (keywords),
    original vectors (topic tree) and reduction describe the rows that were fitted, and
    holding them for every row of a store this mode is for does not fit on one machine. So
    the fit stays a ClusterResult (`fitted`, every verb works on it), and `points` covers
    every row with the columns an assignment gives.

    Attributes
    ----------
    fitted : ClusterResult
        The clustering of the sample; ``fitted.params["sample"]`` says its size.
    points : polars.DataFrame
        Every selected live row, by key: ``key: u64, id: str, cluster: i32`` (``-1`` noise),
        ``topic: str`` (cluster name; null for noise), ``x: f32, y: f32`` (map; null without
        a layout), ``confidence: f32`` (1 for fitted rows, whose label is the fit's; the
        share of the neighbours' votes for assigned rows, see
        :meth:`~workbench.analysis.cluster.ClusterResult.assign`), ``fitted: bool``.
    sample : int
        Rows fitted on.
    params : dict
        ``rows`` (selected), ``sample``, ``workers``, ``tasks``, ``generation``, ``seconds``.
    """

    fitted: ClusterResult
    points: pl.DataFrame
    sample: int
    params: dict[str, Any]

    @property
    def labels(self) -> NDArray[np.int32]:
        """Cluster of every row (``-1`` noise), in `points` order."""
        return self.points.get_column("cluster").to_numpy()

    def to_frame(self) -> pl.DataFrame:
        """`points`, for joining on ``key`` or writing back with ``Store.update``."""
        return self.points

    def __repr__(self) -> str:
        return (f"DistributedClusterResult(n={self.points.height}, sample={self.sample}, "
                f"{self.fitted.metrics.summary()})")


def cluster(
    store: Any,
    *,
    workers: int | None = None,
    sample: int | None = None,
    where: pl.Expr | None = None,
    random_state: int = 0,
    progress: bool = True,
    **kwargs: Any,
) -> DistributedClusterResult:
    """Cluster a store's rows: fit on a seeded sample, assign the rest in Ray tasks.

    Parameters
    ----------
    store : Store
        The store (its live rows, or those matching `where`); workers open its folder, so on
        a multi-node cluster it must sit on a filesystem they share.
    workers : int, optional
        Tasks to split the assignment into (default: the cluster's CPUs).
    sample : int, optional
        Rows fitted on: default ``min(rows, 1_000_000)``, never above :data:`MAX_SAMPLE`.
        With no fewer than the selected rows, the fit is :func:`~workbench.analysis.cluster`
        on the store itself (same labels) and nothing is assigned.
    where : polars.Expr, optional
        Filter over the store's metadata.
    random_state : int
        Seed of the sample and of the fit.
    progress : bool
        Progress bars of the fit.
    **kwargs
        The other arguments of :func:`workbench.analysis.cluster.cluster` (``reducer``,
        ``clusterer``, ``layout``, ``text``, ``min_cluster_size``, ``topics``, ...). When the
        store is sampled, ``cache`` is ignored: assigning needs the fitted models, which the
        disk cache does not hold (it keeps arrays, not pickles).

    Returns
    -------
    DistributedClusterResult
        The fit and every row's assignment (see its docstring for why not a ClusterResult).

    Raises
    ------
    InvalidInputError
        Bad `workers` or `sample` (above :data:`MAX_SAMPLE`), `store` not a Store, or an
        argument :func:`~workbench.analysis.cluster` rejects.
    EmptyInputError
        `where` selects nothing.
    DistributedError
        A task failed.

    Examples
    --------
    >>> res = wb.distributed.cluster(store, sample=200_000, text=None)  # doctest: +SKIP
    >>> store.update(res.points.select("id", "cluster"))  # doctest: +SKIP
    """
    from ..store import Store

    if not isinstance(store, Store):
        raise InvalidInputError(f"store: expected a Store, got {type(store).__name__}")
    if "data" in kwargs or "frame" in kwargs:
        raise InvalidInputError("kwargs: data= and frame= are for vectors; the distributed "
                                "mode clusters a store")
    t0 = time.perf_counter()
    view = store.view()
    rows = view.rows(where)
    n = rows.height
    if sample is None:
        sample = min(n, MAX_SAMPLE)
    elif (isinstance(sample, bool) or not isinstance(sample, int | np.integer)
          or not 1 <= sample <= MAX_SAMPLE):
        raise InvalidInputError(
            f"sample: expected an integer in [1, {MAX_SAMPLE}], got {sample!r}")
    sample = int(sample)
    common = {"random_state": random_state, "progress": progress, **kwargs}
    if n <= sample:
        fitted = _fit(store, where=where, **common)
        fitted.params["sample"] = {"rows": fitted.points.height, "of": fitted.points.height,
                                   "random_state": random_state}
        points = _fitted_points(fitted)
        return DistributedClusterResult(
            fitted=fitted, points=points, sample=fitted.points.height,
            params={"rows": n, "sample": fitted.points.height, "workers": 0, "tasks": 0,
                    "generation": view.generation,
                    "seconds": {"fit": round(time.perf_counter() - t0, 3), "assign": 0.0}})

    ray = ensure()
    workers = default_workers(workers)
    keys = rows.get_column("key").to_numpy()
    chosen = np.sort(keys[np.random.default_rng(random_state).choice(n, sample, replace=False)])
    common["cache"] = False
    fitted = _fit(store, where=pl.col("key").is_in(pl.Series(chosen, dtype=pl.UInt64).implode()),
                  **common)
    fitted.params["sample"] = {"rows": sample, "of": n, "random_state": random_state}
    fitted.params["where"] = None if where is None else str(where)
    t_fit = time.perf_counter() - t0

    groups = _groups(view, rows, chosen, workers)
    result_ref = ray.put(for_assign(fitted))
    chosen_ref = ray.put(chosen)
    task = ray.remote(_assign_segments).options(num_cpus=1, max_retries=1)
    refs = [task.remote(str(Path(store.path)), view.generation, ids, result_ref, chosen_ref,
                        where) for ids in groups]
    try:
        parts = ray.get(refs)
    except Exception as exc:  # ray.exceptions.RayError and the task's own error, re-raised
        from ..errors import WorkbenchError

        cause = getattr(exc, "cause", None)
        if isinstance(cause, WorkbenchError):
            raise cause from exc
        raise DistributedError(f"store: assigning rows on Ray failed: {exc}") from exc
    assigned = pl.concat([p for p in parts if p.height], how="vertical") if parts else None
    points = _fitted_points(fitted)
    if assigned is not None and assigned.height:
        points = pl.concat([points, assigned.with_columns(fitted=pl.lit(False))],
                           how="vertical")
    points = points.sort("key")
    return DistributedClusterResult(
        fitted=fitted, points=points, sample=sample,
        params={"rows": n, "sample": sample, "workers": workers, "tasks": len(groups),
                "generation": view.generation,
                "seconds": {"fit": round(t_fit, 3),
                            "assign": round(time.perf_counter() - t0 - t_fit, 3)}})


def _fitted_points(fitted: ClusterResult) -> pl.DataFrame:
    """The fitted rows in the schema of :attr:`DistributedClusterResult.points`."""
    return (fitted.to_frame()
            .select("key", "id", "cluster", pl.col("name").alias("topic"), "x", "y",
                    pl.lit(1.0, dtype=pl.Float32).alias("confidence"),
                    pl.lit(True).alias("fitted"))
            .cast(POINTS_SCHEMA))  # type: ignore[arg-type]


def _groups(view: Any, rows: pl.DataFrame, chosen: NDArray[np.uint64],
            workers: int) -> list[list[str]]:
    """Segment ids in groups of about equal rows left to assign, about one group a worker."""
    from ..store.view import ROW_COLUMNS, isin_sorted

    seg_col = ROW_COLUMNS[0]
    left = rows.filter(pl.Series(~isin_sorted(rows.get_column("key").to_numpy(), chosen)))
    counts = dict(left.group_by(seg_col).len().iter_rows())
    segs = [(s.id, int(counts.get(s.ordinal, 0))) for s in view.segments]
    segs = [(sid, c) for sid, c in segs if c]
    total = sum(c for _, c in segs)
    target = min(_TASK_ROWS, max(1, math.ceil(total / workers)))
    groups: list[list[str]] = []
    size = target
    for sid, c in segs:
        if size >= target:
            groups.append([])
            size = 0
        groups[-1].append(sid)
        size += c
    return groups


def _assign_segments(path: str, generation: int, segments: list[str], result: ClusterResult,
                     chosen: NDArray[np.uint64], where: pl.Expr | None) -> pl.DataFrame:
    """One task: the rows of `segments` (not fitted, matching `where`) assigned to `result`."""
    from ..store.view import StoreView, isin_sorted

    view = StoreView.open(path, generation=generation, segments=segments)
    rows = view.rows(where)
    rows = rows.filter(pl.Series(~isin_sorted(rows.get_column("key").to_numpy(), chosen)))
    if rows.height == 0:
        return pl.DataFrame(schema={k: v for k, v in POINTS_SCHEMA.items() if k != "fitted"})
    out = result.assign(view.vectors(rows))
    return pl.concat([rows.select(pl.col("key").cast(pl.UInt64), pl.col("id").cast(pl.Utf8)),
                      out.drop("row")], how="horizontal")
