"""Editing a clustering: reassign noise, merge and rename clusters, write labels to a store.

Each verb takes a :class:`~workbench.analysis.cluster.ClusterResult` and returns a new one (or,
for :func:`apply_labels`, writes to the store); the input is left as it was. Keywords,
exemplars and quality measures are redone for the new labels. The verbs are also importable
from :mod:`workbench.analysis.cluster` and :mod:`workbench.analysis`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from .._validation import check_choice
from ..errors import InvalidInputError
from ._hdbscan_tree import _hdbscan_internals
from .cluster import ClusterResult, _build

__all__ = [
    "apply_labels",
    "merge_clusters",
    "reassign_outliers",
    "rename_clusters",
]


def _edit(
    result: ClusterResult, labels: NDArray[np.int32], *, names: Mapping[int, str] | None = None,
    reset: Collection[int] = (), note: str,
) -> ClusterResult:
    """A new result with `labels`; clusters in `reset` lose their persistence (NaN)."""
    pts = result.points
    old_persistence = dict(zip(result.clusters.get_column("cluster").to_list(),
                               result.clusters.get_column("persistence").to_list(), strict=True))
    pers = {c: float("nan") if c in reset else p for c, p in old_persistence.items()}
    state = replace(result._state, names=dict(result._state.names if names is None else names))
    params = {**result.params, "edits": [*result.params.get("edits", []), note]}
    return _build(keys=pts.get_column("key"), ids=pts.get_column("id"), reduced=result.reduced,
                  xy=result.layout, labels=labels,
                  probability=pts.get_column("probability").to_numpy(),
                  outlier_score=pts.get_column("outlier_score").to_numpy(), persistence=pers,
                  state=state, params=params, grid=result.grid)


def _cluster_ids(result: ClusterResult, clusters: Iterable[Any], *, name: str) -> list[int]:
    present = set(result.clusters.get_column("cluster").to_list())
    out: list[int] = []
    for c in clusters:
        if isinstance(c, bool) or not isinstance(c, int | np.integer) or int(c) not in present:
            raise InvalidInputError(
                f"{name}: expected cluster ids of the result ({sorted(present)[:10]}...), got "
                f"{c!r}")
        out.append(int(c))
    return out


def reassign_outliers(
    result: ClusterResult, *, strategy: str = "nearest_centroid", threshold: float = 0.0,
) -> ClusterResult:
    """Give noise points (``-1``) a cluster.

    Parameters
    ----------
    result : ClusterResult
        A clustering.
    strategy : {"nearest_centroid", "probabilities"}
        ``"nearest_centroid"``: the cluster whose mean in the reduced space is nearest.
        ``"probabilities"``: the cluster of highest HDBSCAN soft membership
        (``hdbscan.all_points_membership_vectors``), for built-in HDBSCAN results only.
    threshold : float
        With ``"probabilities"``: points whose best membership is below it stay noise.

    Returns
    -------
    ClusterResult
        A new result; ``probability`` and ``outlier_score`` keep HDBSCAN's values, so a
        reassigned point still shows ``probability == 0``.
    """
    check_choice(strategy, ("nearest_centroid", "probabilities"), name="strategy")
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not (
            0.0 <= threshold <= 1.0):
        raise InvalidInputError(f"threshold: expected a number in [0, 1], got {threshold!r}")
    labels = result.labels.copy()
    noise = np.flatnonzero(labels < 0)
    present = result.clusters.get_column("cluster").to_numpy()
    if noise.size == 0 or present.size == 0:
        return result
    if strategy == "nearest_centroid":
        from sklearn.metrics import pairwise_distances_argmin

        centres = np.stack([result.reduced[labels == c].mean(axis=0) for c in present])
        labels[noise] = present[pairwise_distances_argmin(result.reduced[noise], centres)]
    else:
        memb, base = _memberships(result)
        mapping = np.full(memb.shape[1], -1, dtype=np.int32)
        for j in range(memb.shape[1]):
            now = labels[(base == j) & (labels >= 0)]
            if now.size:
                mapping[j] = np.bincount(now).argmax()
        best = memb[noise].argmax(axis=1)
        value = memb[noise, best]
        ok = (value >= threshold) & (value > 0) & (mapping[best] >= 0)
        labels[noise[ok]] = mapping[best[ok]]
    return _edit(result, labels, note=f"reassign_outliers(strategy={strategy!r})")


def _memberships(result: ClusterResult) -> tuple[NDArray[np.float64], NDArray[np.int32]]:
    state = result._state
    if state is None or state.tree is None or state.base_labels is None:
        raise InvalidInputError(
            "strategy: 'probabilities' needs a result of the built-in HDBSCAN; use "
            "'nearest_centroid'")
    from types import SimpleNamespace

    from hdbscan.plots import CondensedTree
    from hdbscan.prediction import PredictionData, all_points_membership_vectors

    # The condensed tree of the kept spanning tree and the labels _select gave (hdbscan's own,
    # label for label), without running hdbscan's slower cluster extraction again.
    condensed = _hdbscan_internals().condense_tree(state.tree.slt,
                                                   result.params["clusterer"]["min_cluster_size"])
    base = state.base_labels
    ct = CondensedTree(condensed, base)
    data = PredictionData(result.reduced, ct, state.tree.min_samples, tree_type="kdtree",
                          metric="euclidean")
    memb = all_points_membership_vectors(SimpleNamespace(condensed_tree_=ct,
                                                         prediction_data_=data))
    memb = np.atleast_2d(memb)
    if memb.shape[0] != base.size:
        memb = memb.reshape(base.size, -1)
    return memb, state.base_labels


def merge_clusters(
    result: ClusterResult, clusters: Iterable[int], *, name: str | None = None,
) -> ClusterResult:
    """Merge `clusters` into the smallest of their ids; keywords and exemplars are redone.

    Raises
    ------
    InvalidInputError
        Fewer than two distinct cluster ids, or an id the result does not have.
    """
    ids = sorted(set(_cluster_ids(result, clusters, name="clusters")))
    if len(ids) < 2:
        raise InvalidInputError(f"clusters: expected at least two distinct cluster ids, got "
                                f"{ids}")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise InvalidInputError(f"name: expected a non-empty string, got {name!r}")
    target = ids[0]
    labels = result.labels.copy()
    labels[np.isin(labels, ids)] = target
    names = {c: v for c, v in result._state.names.items() if c not in ids[1:]}
    if name is not None:
        names[target] = name
    return _edit(result, labels, names=names,
                 reset=(target,),
                 note=f"merge_clusters({ids})")


def rename_clusters(result: ClusterResult, names: Mapping[int, str]) -> ClusterResult:
    """Give clusters names (shown in ``clusters["name"]`` and ``to_frame()``).

    Raises
    ------
    InvalidInputError
        An id the result does not have, or a name that is not a non-empty string.
    """
    if not isinstance(names, Mapping):
        raise InvalidInputError(f"names: expected a mapping of cluster id to name, got "
                                f"{type(names).__name__}")
    ids = _cluster_ids(result, names.keys(), name="names")
    for v in names.values():
        if not isinstance(v, str) or not v.strip():
            raise InvalidInputError(f"names: expected non-empty strings, got {v!r}")
    new = {**result._state.names, **{c: names[c] for c in ids}}
    clusters = result.clusters.with_columns(
        pl.col("cluster").replace_strict(list(new), list(new.values()), default=pl.col("name"),
                                         return_dtype=pl.Utf8).alias("name"))
    return replace(result, clusters=clusters, _state=replace(result._state, names=new))


def apply_labels(
    store: Any, result: ClusterResult, *, column: str = "cluster", name_column: str | None = None,
    progress: bool = False,
) -> int:
    """Write each point's cluster into the store as metadata column `column` (one commit).

    Rows are matched by ``id``; rows of the store outside the result keep their value (null
    for a new column). Uses :meth:`Store.update`: only metadata files are rewritten; keys,
    vectors and the index stay (cached reductions still hit).

    Parameters
    ----------
    store : Store
        Opened for writing.
    result : ClusterResult
        Labels to write (``-1`` for noise).
    column : str
        Metadata column for the cluster id (``i32``).
    name_column : str, optional
        Also write the cluster names there (null for noise).
    progress : bool
        Show progress bars while indexing.

    Returns
    -------
    int
        Rows written.

    Raises
    ------
    UnknownIdError
        Some ids of the result are no longer in the store.
    ReadOnlyStoreError
        The store was opened read-only.
    """
    from ..store import Store

    if not isinstance(store, Store):
        raise InvalidInputError(f"store: expected a Store, got {type(store).__name__}")
    for arg, value in (("column", column), ("name_column", name_column)):
        if value is None and arg == "name_column":
            continue
        if not isinstance(value, str) or not value or value in ("key", "id"):
            raise InvalidInputError(f"{arg}: expected a column name other than 'key' and "
                                    f"'id', got {value!r}")
    frame = result.to_frame()
    cols = [frame.get_column("id"), frame.get_column("cluster").alias(column)]
    if name_column is not None:
        cols.append(frame.get_column("name").alias(name_column))
    return store.update(pl.DataFrame(cols))
