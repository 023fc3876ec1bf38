"""Embedding drift on Ray: :func:`compute_drift`.

The twin of :func:`workbench.analysis.drift.compute_drift`, with the same result.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from ..analysis import _drift_run as run
from ..analysis.cluster import ClusterResult
from ..analysis.drift import METHODS, DriftResult, _prepare, _result
from ..store.view import ROW_COLUMNS, StoreView
from ._cluster import default_workers, ensure

if TYPE_CHECKING:
    from ..store import Store

__all__ = ["compute_drift"]


def compute_drift(
    store: Store,
    *,
    time: str = "timestamp",
    time_format: str | None = None,
    every: str = "1mo",
    reference: str | tuple[date, date] = "first",
    methods: Sequence[str] = METHODS,
    where: pl.Expr | None = None,
    alpha: float = 0.05,
    min_rows: int = 50,
    n_permutations: int | None = None,
    random_state: int = 0,
    text: str | None = "text",
    clusters: ClusterResult | None = None,
    n_clusters: int = 20,
    changes: bool = True,
    group_by: str | None = None,
    min_entity_rows: int = 5,
    progress: bool = True,
    workers: int | None = None,
) -> DriftResult:
    """Drift of the store's embeddings over time, window by window, on a Ray cluster.

    Same arguments and result as :func:`workbench.analysis.drift.compute_drift` (see it for
    the methods and the flag rule), plus `workers`; statistics agree within float rounding,
    flags and p-values are the same (the same seeded subsamples and permutations).

    What runs where:

    - **driver** (this process): reads the metadata of the store's current generation,
      selects rows (`where`, non-null `time`), cuts windows and references; per tested window
      draws the seeded subsamples and the MMD feature map (median distance from at most 1,000
      gathered rows).
    - **map** (Ray tasks, at most `workers`, each a group of segments with about equal
      rows): each opens its segments with
      :meth:`StoreView.open(path, generation=..., segments=[...])
      <workbench.store.view.StoreView.open>` and sums, over the selected rows it holds: vectors
      and counts per window (centroid shift), random features per (MMD test, window) (MMD²
      over all rows) and, with `group_by`, unit vectors per (entity, window). Only these sums
      and the per-row window labels travel; no vector goes through the driver.
    - **reduce** (driver): the sums add up exactly; the centroid shift, MMD² and entity shifts
      come from them. The tests that are not sums run on the driver, as on one machine, on
      the rows they use only, gathered from the store: the MMD permutations on at most 20,000
      rows per side, the domain classifier on at most 10,000, the component KS tests on at
      most 20,000; and what changed (`changes`) in each window found drifted, which reads
      that window's and its reference's rows.

    Parameters
    ----------
    store : Store
        The store; its folder must be reachable at the same path from every node.
    workers : int, optional
        Map tasks at most (default: the cluster's CPUs).
    time, time_format, every, reference, methods, where, alpha, min_rows, n_permutations,
    random_state, text, clusters, n_clusters, changes, group_by, min_entity_rows, progress
        As :func:`workbench.analysis.drift.compute_drift`.

    Returns
    -------
    DriftResult

    Raises
    ------
    MissingColumnError, InvalidInputError, EmptyInputError
        As :func:`workbench.analysis.drift.compute_drift`; `workers` below 1.
    DistributedError
        Ray is missing or the cluster cannot be reached.
    """
    if workers is not None:
        workers = default_workers(workers)  # checked before any work
    view = store.view()
    plan = _prepare(view, time=time, every=every, reference=reference, methods=methods,
                    where=where, alpha=alpha, min_rows=min_rows,
                    n_permutations=n_permutations, random_state=random_state, text=text,
                    clusters=clusters, n_clusters=n_clusters, changes=changes,
                    group_by=group_by, min_entity_rows=min_entity_rows,
                    time_format=time_format)
    spec, labels, draws, ent = run.designs(plan)
    ray = ensure()
    n_tasks = default_workers(workers)
    seg_col, row_col = ROW_COLUMNS
    seg_of = plan.rows.get_column(seg_col).to_numpy()
    row_of = plan.rows.get_column(row_col).to_numpy().astype(np.int64)
    order = np.argsort(seg_of, kind="stable")
    ords, starts, counts = np.unique(seg_of[order], return_index=True, return_counts=True)
    ids = [view.segment(int(o)).id for o in ords]
    remote = ray.remote(num_cpus=1, max_retries=2)(_map_segments)
    spec_ref = ray.put(spec)
    futures = []
    for group in _balance(counts, n_tasks):
        parts = []
        for g in group:
            take = order[starts[g]:starts[g] + counts[g]]
            parts.append((ids[g], row_of[take], labels.take(take)))
        futures.append(remote.remote(str(view.path), view.generation, parts, spec_ref))
    sums = run.Sums.zeros(spec)
    for part in ray.get(futures):
        sums = sums + part
    return _result(plan, sums, draws, ent, progress=progress)


def _balance(counts: NDArray[np.int64], n_tasks: int) -> list[list[int]]:
    """Segments (indexes of `counts`) in at most `n_tasks` groups of about equal rows."""
    groups: list[list[int]] = [[] for _ in range(min(n_tasks, counts.size))]
    load = np.zeros(len(groups), dtype=np.int64)
    for g in np.argsort(-counts, kind="stable").tolist():
        t = int(np.argmin(load))
        groups[t].append(g)
        load[t] += counts[g]
    return [sorted(g) for g in groups if g]


def _map_segments(path: str, generation: int, parts: list[tuple[str, NDArray[np.int64],
                                                                 run.RowLabels]],
                  spec: run.SumSpec) -> run.Sums:
    """Map task: the drift sums of the selected rows of some segments.

    See :func:`workbench.analysis._drift_run.chunk_sums`.
    """
    view = StoreView.open(path, generation=generation, segments=[p[0] for p in parts])
    by_id = {s.id: s for s in view.segments}
    total = run.Sums.zeros(spec)
    for seg_id, rows, labels in parts:
        vectors = by_id[seg_id].vectors

        def read(lo: int, hi: int, v: Any = vectors, r: NDArray[np.int64] = rows
                 ) -> NDArray[np.float32]:
            return np.asarray(v[r[lo:hi]], dtype=np.float32)

        total = total + run.sum_rows(read, rows.size, labels, spec)
    return total
