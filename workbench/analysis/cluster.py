"""Clustering of embeddings: reduce (UMAP), cluster (HDBSCAN), lay out in 2-D (UMAP), describe.

The pipeline is :func:`cluster`; its :class:`ClusterResult` keeps what a re-run needs (the
reduced vectors, HDBSCAN's spanning tree, the word counts), so :func:`recluster` with new
HDBSCAN settings costs a tree re-extraction, not a UMAP. Reductions, layouts and spanning
trees are also cached on disk beside the store (see :mod:`workbench.analysis._cache`).
Editing: :func:`reassign_outliers`, :func:`merge_clusters`, :func:`rename_clusters`, and
:func:`apply_labels` to write labels back to the store.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import polars as pl
from numpy.typing import NDArray

from .._validation import METRICS, check_choice, check_frame, check_positive_int, check_vectors
from ..errors import (
    EmptyInputError,
    InvalidInputError,
    MissingColumnError,
    MissingDependencyError,
)
from ._cache import ArrayCache, data_digest, params_key
from .cluster_metrics import (
    ClusterMetrics,
    knn_preservation,
    noise_fraction,
    relative_validity,
    silhouette,
    trustworthiness,
)
from .keywords import KeywordsSkippedWarning, TermCounts, class_tfidf

__all__ = [
    "ClusterResult",
    "Clusterer",
    "Reducer",
    "apply_labels",
    "cluster",
    "merge_clusters",
    "reassign_outliers",
    "recluster",
    "rename_clusters",
]

SELECTION_METHODS = ("eom", "leaf")
#: Neighbourhood size of the map-distortion measures (the issue's "10 nearest neighbours").
MAP_K = 10


@runtime_checkable
class Reducer(Protocol):
    """Anything with ``fit_transform(X) -> array (n, m)``: umap.UMAP, sklearn PCA, ..."""

    def fit_transform(self, X: Any, /) -> Any:  # noqa: D102
        ...


@runtime_checkable
class Clusterer(Protocol):
    """Anything with ``fit_predict(X) -> labels (n,)`` (``-1`` = noise): KMeans, HDBSCAN, ..."""

    def fit_predict(self, X: Any, /) -> Any:  # noqa: D102
        ...


@runtime_checkable
class _HasParams(Protocol):
    def get_params(self, deep: bool = ...) -> dict[str, Any]: ...


@dataclass(frozen=True, eq=False)
class _State:
    """What re-clustering and editing need, beyond the public fields."""

    terms: TermCounts | None
    tree: _Tree | None
    base_labels: NDArray[np.int32] | None  # HDBSCAN's labels before any edit
    cache: ArrayCache
    reduced_digest: str
    names: Mapping[int, str]
    map_metrics: Mapping[str, float]
    top_n: int
    n_exemplars: int
    random_state: int


@dataclass(frozen=True, eq=False)
class ClusterResult:
    """Clusters of a set of vectors, with a 2-D map and quality measures.

    Attributes
    ----------
    points : polars.DataFrame
        One row per point, in the order of `reduced`: ``key: u64, id: str, cluster: i32``
        (``-1`` noise), ``probability: f32`` (HDBSCAN membership strength; 1 for other
        clusterers' members, 0 for noise), ``outlier_score: f32`` (GLOSH; NaN for other
        clusterers), ``x: f32, y: f32`` (the map; null without a layout).
    clusters : polars.DataFrame
        One row per cluster (noise excluded), by ``cluster``: ``cluster: i32, name: str,
        size: u32, keywords: list[str]`` (c-TF-IDF, best first; empty without text),
        ``exemplars: list[str]`` (ids of the members nearest the cluster's centre in the
        reduced space), ``persistence: f32`` (HDBSCAN stability; NaN otherwise or after a
        merge), ``x: f32, y: f32`` (median map position, for labels).
    metrics : ClusterMetrics
        Noise fraction, silhouette, relative validity, and the map's distortion
        (trustworthiness, kNN preservation).
    reduced : numpy.ndarray
        The float32 ``(n, d)`` space that was clustered.
    params : dict
        The settings used (reducer, clusterer, layout, HDBSCAN parameters, timings).
    grid : polars.DataFrame or None
        With ``auto=True``: every HDBSCAN setting tried (``min_cluster_size, min_samples,
        cluster_selection_method, n_clusters, noise_fraction, relative_validity, chosen``).
    """

    points: pl.DataFrame
    clusters: pl.DataFrame
    metrics: ClusterMetrics
    reduced: NDArray[np.float32]
    params: dict[str, Any]
    grid: pl.DataFrame | None = None
    _state: _State = field(default=None, repr=False)  # type: ignore[assignment]

    @property
    def labels(self) -> NDArray[np.int32]:
        """Cluster of each point (``-1`` noise), in point order."""
        return self.points.get_column("cluster").to_numpy()

    @property
    def layout(self) -> NDArray[np.float32] | None:
        """The ``(n, 2)`` map coordinates, or None without a layout."""
        xy = self.points.select("x", "y")
        if xy.get_column("x").null_count():
            return None
        return xy.to_numpy().astype(np.float32)

    def to_frame(self) -> pl.DataFrame:
        """`points` with each point's cluster ``name`` (null for noise)."""
        return self.points.join(self.clusters.select("cluster", "name"), on="cluster",
                                how="left")

    def __repr__(self) -> str:
        return f"ClusterResult(n={self.points.height}, {self.metrics.summary()})"


# --------------------------------------------------------------------------------- input
def _load(
    data: Any, *, frame: Any, where: pl.Expr | None, metric: str | None, cache: bool | str | Path,
) -> tuple[pl.DataFrame, NDArray[np.float32], str, ArrayCache, dict[str, Any]]:
    """Metadata (key, id, columns), vectors, metric, cache and provenance of the selection."""
    from ..store import Store

    if isinstance(data, Store):
        if frame is not None:
            raise InvalidInputError("frame: only for vectors input; a store has its metadata")
        meta, vectors = data.fetch(where)
        metric = data.metric if metric is None else metric
        folder = data.path / "cache" / "cluster" if cache is True else None
        origin = {"store": str(data.path), "generation": data.generation}
        # Id order, not key order: an upsert gives new keys, and the cache should still hit.
        order = np.argsort(meta.get_column("id").to_numpy(), kind="stable")
        meta, vectors = meta[order], vectors[order]
    else:
        vectors = check_vectors(data, name="vectors", allow_1d=False)
        n = vectors.shape[0]
        meta = (pl.DataFrame({"key": np.arange(n, dtype=np.uint64)}) if frame is None
                else check_frame(frame, name="frame"))
        if frame is not None and meta.height != n:
            raise InvalidInputError(
                f"frame: expected {n} rows (one per vector), got {meta.height}"
            )
        if "key" not in meta.columns:
            meta = meta.with_columns(pl.Series("key", np.arange(n, dtype=np.uint64)))
        if "id" not in meta.columns:
            meta = meta.with_columns(pl.Series("id", [str(i) for i in range(n)]))
        meta = meta.with_columns(pl.col("key").cast(pl.UInt64), pl.col("id").cast(pl.Utf8))
        if where is not None:
            if frame is None:
                raise InvalidInputError("where: filtering vectors needs a frame= of metadata")
            if not isinstance(where, pl.Expr):
                raise InvalidInputError(
                    f"where: expected a polars expression, got {type(where).__name__}")
            try:
                rows = meta.with_row_index("_row").filter(where).get_column("_row").to_numpy()
            except pl.exceptions.ColumnNotFoundError as exc:
                raise MissingColumnError(
                    f"where: names a column the frame does not have ({str(exc).splitlines()[0]});"
                    f" columns are {meta.columns}") from exc
            meta, vectors = meta[rows], vectors[rows]
        metric = "l2sq" if metric is None else metric
        folder = None  # vectors have no store to cache beside; pass cache=<folder>
        origin = {"store": None, "generation": None}
    if isinstance(cache, str | Path):
        folder = Path(cache)
    elif not isinstance(cache, bool):
        raise InvalidInputError(f"cache: expected True, False or a folder, got {cache!r}")
    check_choice(metric, METRICS, name="metric")
    if meta.height == 0:
        raise EmptyInputError(
            f"where: selected no rows ({where}); nothing to cluster" if where is not None
            else "data: expected at least one vector, got none"
        )
    origin["where"] = None if where is None else str(where)
    return meta, vectors, metric, ArrayCache(folder), origin


def _normalise(x: NDArray[np.float32]) -> NDArray[np.float32]:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def _describe(component: Any, preset: dict[str, Any] | None) -> dict[str, Any] | None:
    """Parameters naming a component in cache keys, or None when they cannot be known."""
    if preset is not None:
        return preset
    if isinstance(component, _HasParams):
        params = component.get_params(deep=False)
        return {"class": f"{type(component).__module__}.{type(component).__qualname__}",
                "params": {k: repr(v) for k, v in sorted(params.items())}}
    return None


def _preset(
    name: str, *, n_components: int, n_neighbors: int, min_dist: float, metric: str,
    random_state: int, what: str,
) -> tuple[Reducer, dict[str, Any]]:
    if name == "umap":
        try:
            with warnings.catch_warnings():
                # umap-learn announces, on import, that TensorFlow (ParametricUMAP) is absent.
                warnings.filterwarnings("ignore", message="Tensorflow not installed",
                                        category=ImportWarning)
                import umap
        except ImportError as exc:
            raise MissingDependencyError("clustering needs umap-learn: pip install umap-learn"
                                         ) from exc
        umap_metric = "euclidean" if metric == "l2sq" else "cosine"
        # n_jobs=1: a seeded UMAP runs single-threaded anyway (and warns otherwise).
        obj = umap.UMAP(n_components=n_components, n_neighbors=n_neighbors, min_dist=min_dist,
                        metric=umap_metric, random_state=random_state, n_jobs=1)
        return obj, {"kind": "umap", "n_components": n_components, "n_neighbors": n_neighbors,
                     "min_dist": min_dist, "metric": umap_metric, "random_state": random_state,
                     "version": umap.__version__}
    if name == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=n_components, random_state=random_state), {
            "kind": "pca", "n_components": n_components, "random_state": random_state,
            "normalised": metric != "l2sq"}
    raise InvalidInputError(f"{what}: expected 'umap', 'pca', None or an object with "
                            f"fit_transform, got {name!r}")


def _run_reducer(
    spec: Any, x: NDArray[np.float32], *, what: str, n_components: int, n_neighbors: int,
    min_dist: float, metric: str, random_state: int, cache: ArrayCache, digest: str,
    origin: dict[str, Any],
) -> tuple[NDArray[np.float32], dict[str, Any], float, bool]:
    """Reduce `x` with a preset name or a Reducer, through the cache: (array, params, s, hit)."""
    n, d = x.shape
    if isinstance(spec, str):
        if spec == "umap" and n <= n_neighbors:
            raise InvalidInputError(
                f"n_neighbors: expected fewer than the {n} selected rows, got {n_neighbors}; "
                "lower n_neighbors or select more rows"
            )
        n_components = min(n_components, d, n - 1) if spec == "pca" else n_components
        obj, preset = _preset(spec, n_components=n_components, n_neighbors=n_neighbors,
                              min_dist=min_dist, metric=metric, random_state=random_state,
                              what=what)
        if spec == "pca" and metric != "l2sq":
            x = _normalise(x)
    elif isinstance(spec, Reducer):
        obj, preset = spec, None
    else:
        raise InvalidInputError(
            f"{what}: expected 'umap', 'pca', None or an object with fit_transform, got "
            f"{type(spec).__name__}"
        )
    desc = _describe(obj, preset)
    key = params_key(what, digest, desc) if desc is not None else None
    if key is not None:
        hit = cache.load(key)
        if hit is not None and hit.shape[0] == n:
            return hit.astype(np.float32), desc or {}, 0.0, True
    t0 = time.perf_counter()
    out = check_vectors(obj.fit_transform(x), name=f"{what} output", allow_1d=False)
    seconds = time.perf_counter() - t0
    if out.shape[0] != n:
        raise InvalidInputError(f"{what}: expected {n} rows from fit_transform, got "
                                f"{out.shape[0]}")
    if key is not None:
        cache.save(key, out, {"stage": what, "params": desc, "data": digest, **origin,
                              "seconds": round(seconds, 3)})
    return out, desc or {"class": type(obj).__qualname__}, seconds, False


def _default_min_cluster_size(n: int) -> int:
    # Measured with the default reduction: digits (n=1,797) scores ARI 0.91 at 18-30 but 0.84
    # at 10; MNIST-10k is flat from 20 to 400 (eom); AG News NMI is flat from 44 to 76. Half
    # the square root of n (21, 50, 44; 158 at 100k) sits in those ranges and, like the
    # number of topics, grows slower than n.
    return max(10, int(round(0.5 * math.sqrt(n))))


# --------------------------------------------------------------------------------- HDBSCAN
@dataclass(frozen=True, eq=False)
class _Tree:
    """HDBSCAN's mutual-reachability minimum spanning tree, sorted by distance.

    Rows are ``(from, to, distance)``. It depends on the data and `min_samples` only; the
    single-linkage tree, and from it any clustering, follows in O(n).
    """

    mst: NDArray[np.float64]
    slt: NDArray[np.float64]  # the single-linkage tree, scipy linkage format
    min_samples: int


def _hdbscan_internals() -> Any:
    # Private hdbscan functions, imported in one place: re-extracting clusters from a kept tree
    # has no public API (hdbscan 0.8.44: hdbscan_._tree_to_labels, _hdbscan_linkage.label).
    try:
        import hdbscan
        from hdbscan._hdbscan_linkage import label
        from hdbscan._hdbscan_tree import condense_tree, outlier_scores
        from hdbscan.hdbscan_ import _tree_to_labels
    except ImportError as exc:
        raise MissingDependencyError(
            f"clustering needs hdbscan>=0.8.39 (pip install hdbscan); import failed: {exc}"
        ) from exc
    return hdbscan, label, outlier_scores, _tree_to_labels, condense_tree


def _get_tree(
    reduced: NDArray[np.float32], min_samples: int, *, cache: ArrayCache, digest: str,
    known: _Tree | None = None,
) -> _Tree:
    """The spanning tree for `min_samples`: the one in hand, from the disk cache, or built."""
    hdbscan, label, *_ = _hdbscan_internals()
    n = reduced.shape[0]
    min_samples = max(1, min(min_samples, n - 1))
    if known is not None and known.min_samples == min_samples:
        return known
    desc = {"min_samples": min_samples, "metric": "euclidean", "alpha": 1.0,
            "algorithm": "best"}
    keys = {part: params_key(f"hdbscan-{part}", digest, desc) for part in ("mst", "slt")}
    mst, slt = cache.load(keys["mst"]), cache.load(keys["slt"])
    if (mst is not None and slt is not None and mst.shape == (n - 1, 3)
            and slt.shape == (n - 1, 4)):
        return _Tree(mst=mst, slt=slt, min_samples=min_samples)
    t0 = time.perf_counter()
    est = hdbscan.HDBSCAN(min_cluster_size=max(2, min_samples), min_samples=min_samples,
                          gen_min_span_tree=True).fit(reduced)
    mst = np.ascontiguousarray(est.minimum_spanning_tree_.to_numpy(), dtype=np.float64)
    # Kept, not recomputed per extraction: labelling the tree costs ~1.5 s at 100k points.
    slt = np.ascontiguousarray(label(mst), dtype=np.float64)
    seconds = round(time.perf_counter() - t0, 3)
    for part, arr in (("mst", mst), ("slt", slt)):
        cache.save(keys[part], arr, {"stage": f"hdbscan-{part}", "params": desc, "data": digest,
                                     "seconds": seconds})
    return _Tree(mst=mst, slt=slt, min_samples=min_samples)


def _extract(
    tree: _Tree, min_cluster_size: int, method: str,
) -> tuple[NDArray[np.int32], NDArray[np.float32], NDArray[np.float32], dict[int, float]]:
    """Labels, probabilities, GLOSH outlier scores and persistence from a kept tree."""
    condense_tree = _hdbscan_internals()[4]
    return _select(condense_tree(tree.slt, min_cluster_size), method)


def _select(
    condensed: NDArray[Any], method: str,
) -> tuple[NDArray[np.int32], NDArray[np.float32], NDArray[np.float32], dict[int, float]]:
    """Flat clusters from a condensed tree, as hdbscan's ``get_clusters`` + ``outlier_scores``.

    The same results as hdbscan 0.8.44 (defaults: no epsilon, no maximum size, no single
    cluster; checked label for label in the tests), in vectorised NumPy plus loops over
    cluster nodes only (hundreds, not points). At 100k points hdbscan's ``get_clusters`` and
    ``outlier_scores`` took 0.5-1.5 s here; this takes ~0.02 s, leaving ``condense_tree``
    (~0.15 s) as the bulk of a re-cluster.
    """
    parent = condensed["parent"].astype(np.intp)
    child = condensed["child"].astype(np.intp)
    lam = condensed["lambda_val"].astype(np.float64)
    size = condensed["child_size"].astype(np.intp)
    root = int(parent.min())  # node ids: points 0..root-1, clusters root..top-1
    top = int(parent.max()) + 1
    is_c = size > 1
    c_parent, c_child = parent[is_c], child[is_c]
    births = np.zeros(max(top, int(child.max()) + 1))
    births[c_child] = lam[is_c]
    births[root] = 0.0
    stability = np.bincount(parent - root, weights=(lam - births[parent]) * size,
                            minlength=top - root)
    order = np.argsort(c_parent, kind="stable")
    kids: dict[int, list[int]] = {}
    for p, c in zip(c_parent[order].tolist(), c_child[order].tolist(), strict=True):
        kids.setdefault(p, []).append(c)
    selected = np.zeros(top, dtype=bool)
    if method == "eom":
        stab = stability.tolist()
        wins = np.zeros(top, dtype=bool)
        for node in range(top - 1, root, -1):
            sub = np.float32(0.0)  # hdbscan sums children in a C float: match its rounding
            for ch in kids.get(node, ()):
                sub = np.float32(float(sub) + stab[ch - root])
            if float(sub) > stab[node - root]:
                stab[node - root] = float(sub)
            else:
                wins[node] = True
        # A winning node is selected unless a winning ancestor takes it (ids grow downwards).
        blocked = np.zeros(top, dtype=bool)
        for p, c in sorted(zip(c_parent.tolist(), c_child.tolist(), strict=True),
                           key=lambda pc: pc[1]):
            selected[c] = wins[c] and not blocked[p]
            blocked[c] = blocked[p] or selected[c]
        stability = np.asarray(stab)
    else:
        leaves = np.setdiff1d(c_child, c_parent)
        selected[leaves] = True
    chosen = np.flatnonzero(selected)
    label_of = np.full(top, -1, dtype=np.int64)
    label_of[chosen] = np.arange(chosen.size)
    for p, c in sorted(zip(c_parent.tolist(), c_child.tolist(), strict=True),
                       key=lambda pc: pc[1]):
        if label_of[c] < 0:
            label_of[c] = label_of[p]
    is_p = ~is_c
    p_parent, p_child, p_lam = parent[is_p], child[is_p], lam[is_p]
    labels = np.full(root, -1, dtype=np.int32)
    labels[p_child] = label_of[p_parent]
    # Probability: lambda at which the point left, over the largest lambda among the direct
    # children of its selected cluster (hdbscan's max_lambdas, not propagated).
    deaths = np.zeros(top)
    np.maximum.at(deaths, parent, lam)
    probs = np.zeros(root, dtype=np.float64)
    member = labels[p_child] >= 0
    if member.any():
        d = deaths[chosen[labels[p_child[member]]]]
        pl_ = p_lam[member]
        ok = (d != 0.0) & np.isfinite(pl_)
        probs[p_child[member]] = np.where(ok, np.minimum(pl_, d) / np.where(ok, d, 1.0), 1.0)
    # GLOSH: the same deaths, propagated up from the leaves.
    for p, c in sorted(zip(c_parent.tolist(), c_child.tolist(), strict=True),
                       key=lambda pc: -pc[1]):
        if deaths[c] > deaths[p]:
            deaths[p] = deaths[c]
    dmax = deaths[p_parent]
    ok = (dmax != 0.0) & np.isfinite(p_lam)
    scores = np.zeros(root, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        # Beside exact duplicates (infinite density) any other point scores 1, not NaN.
        raw = np.where(ok, (dmax - p_lam) / np.where(ok, dmax, 1.0), 0.0)
    scores[p_child] = np.where(np.isnan(raw), 1.0, raw)
    max_lambda = float(lam.max()) if lam.size else 0.0
    sizes = np.bincount(labels[labels >= 0], minlength=chosen.size)
    persistence = {}
    for i, node in enumerate(chosen.tolist()):
        if np.isinf(max_lambda) or max_lambda == 0.0 or sizes[i] == 0:
            persistence[i] = 1.0
        else:
            persistence[i] = float(stability[node - root] / (sizes[i] * max_lambda))
    return labels, probs.astype(np.float32), scores.astype(np.float32), persistence


def _auto_grid(
    reduced: NDArray[np.float32], *, base_min_cluster_size: int, cache: ArrayCache,
    digest: str, known: _Tree | None = None,
) -> tuple[int, int, str, pl.DataFrame, _Tree]:
    """Best (min_cluster_size, min_samples, method) by relative validity on a small grid."""
    n = reduced.shape[0]
    sizes = sorted({max(2, min(n // 2, int(round(base_min_cluster_size * f))))
                    for f in (0.5, 1.0, 2.0, 4.0)})
    samples = sorted({max(1, min(n - 1, s)) for s in (5, 10, 25)})
    rows: list[dict[str, Any]] = []
    trees: dict[int, _Tree] = {}
    for ms in samples:
        trees[ms] = known = _get_tree(reduced, ms, cache=cache, digest=digest, known=known)
        for mcs in sizes:
            for method in SELECTION_METHODS:
                labels = _extract(trees[ms], mcs, method)[0]
                rows.append({"min_cluster_size": mcs, "min_samples": ms,
                             "cluster_selection_method": method,
                             "n_clusters": int(labels.max()) + 1,
                             "noise_fraction": noise_fraction(labels),
                             "relative_validity": relative_validity(trees[ms].mst, labels)})
    grid = pl.DataFrame(rows)
    # Settings with no cluster have no validity (NaN): never chosen.
    best = int(np.nanargmax(np.where(np.isnan(grid["relative_validity"].to_numpy()), -np.inf,
                                     grid["relative_validity"].to_numpy())))
    grid = grid.with_columns(pl.Series("chosen", np.arange(grid.height) == best))
    row = rows[best]
    return (row["min_cluster_size"], row["min_samples"], row["cluster_selection_method"], grid,
            trees[row["min_samples"]])


# --------------------------------------------------------------------------------- assembly
def _exemplars(
    reduced: NDArray[np.float32], labels: NDArray[np.int32], probability: NDArray[np.float32],
    ids: NDArray[Any], n_exemplars: int,
) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    members = np.flatnonzero(labels >= 0)
    if members.size == 0:
        return out
    lab = labels[members]
    w = np.maximum(probability[members].astype(np.float64), 1e-6)
    k = int(lab.max()) + 1
    sums = np.zeros((k, reduced.shape[1]))
    np.add.at(sums, lab, reduced[members] * w[:, None])
    weight = np.bincount(lab, weights=w, minlength=k)
    centres = sums / np.maximum(weight, 1e-12)[:, None]
    dist = np.linalg.norm(reduced[members] - centres[lab], axis=1)
    order = np.lexsort((dist, lab))
    lab_sorted = lab[order]
    starts = np.searchsorted(lab_sorted, np.unique(lab_sorted))
    for c, s in zip(np.unique(lab_sorted), starts, strict=True):
        block = order[s:s + n_exemplars]
        block = block[lab[block] == c]
        out[int(c)] = [str(i) for i in ids[members[block]]]
    return out


def _build(
    *, keys: pl.Series, ids: pl.Series, reduced: NDArray[np.float32],
    xy: NDArray[np.float32] | None, labels: NDArray[Any], probability: NDArray[Any],
    outlier_score: NDArray[Any], persistence: Mapping[int, float], state: _State,
    params: dict[str, Any], grid: pl.DataFrame | None,
) -> ClusterResult:
    labels = np.asarray(labels, dtype=np.int32)
    probability = np.asarray(probability, dtype=np.float32)
    n = labels.size
    points = pl.DataFrame({
        "key": keys.cast(pl.UInt64), "id": ids.cast(pl.Utf8),
        "cluster": pl.Series(labels, dtype=pl.Int32),
        "probability": pl.Series(probability, dtype=pl.Float32),
        "outlier_score": pl.Series(np.asarray(outlier_score, dtype=np.float32)),
        "x": pl.Series(xy[:, 0] if xy is not None else [None] * n, dtype=pl.Float32),
        "y": pl.Series(xy[:, 1] if xy is not None else [None] * n, dtype=pl.Float32),
    })
    present = np.unique(labels[labels >= 0])
    keywords: dict[int, list[str]] = {}
    if state.terms is not None and present.size:
        keywords = {c: [t for t, _ in terms] for c, terms in
                    class_tfidf(state.terms, labels, top_n=state.top_n).items()}
    exemplars = _exemplars(reduced, labels, probability, ids.to_numpy(), state.n_exemplars)
    sizes = np.bincount(labels[labels >= 0], minlength=int(present.max()) + 1 if present.size
                        else 0)

    def auto_name(c: int) -> str:
        words = keywords.get(c, [])[:3]
        return f"{c}: " + ", ".join(words) if words else f"cluster {c}"

    clusters = pl.DataFrame({
        "cluster": pl.Series(present, dtype=pl.Int32),
        "name": pl.Series([state.names.get(int(c), auto_name(int(c))) for c in present],
                          dtype=pl.Utf8),
        "size": pl.Series([int(sizes[c]) for c in present], dtype=pl.UInt32),
        "keywords": pl.Series([keywords.get(int(c), []) for c in present],
                              dtype=pl.List(pl.Utf8)),
        "exemplars": pl.Series([exemplars.get(int(c), []) for c in present],
                               dtype=pl.List(pl.Utf8)),
        "persistence": pl.Series([persistence.get(int(c), float("nan")) for c in present],
                                 dtype=pl.Float32),
    })
    centre = (points.filter(pl.col("cluster") >= 0).group_by("cluster")
              .agg(pl.col("x").median(), pl.col("y").median()))
    clusters = clusters.join(centre, on="cluster", how="left").sort("cluster")
    rv = (relative_validity(state.tree.mst, labels) if state.tree is not None
          else float("nan"))
    mm = state.map_metrics
    metrics = ClusterMetrics(
        n=n, n_clusters=int(present.size), noise_fraction=noise_fraction(labels),
        silhouette=silhouette(reduced, labels, random_state=state.random_state),
        relative_validity=rv, trustworthiness=mm["trustworthiness"],
        knn_preservation=mm["knn_preservation"],
        reduction_trustworthiness=mm["reduction_trustworthiness"], k=int(mm["k"]),
        sample=int(mm["sample"]),
    )
    return ClusterResult(points=points, clusters=clusters, metrics=metrics, reduced=reduced,
                         params=params, grid=grid, _state=state)


def _map_metrics(
    vectors: NDArray[np.float32], reduced: NDArray[np.float32] | None,
    xy: NDArray[np.float32] | None, *, metric: str, random_state: int,
) -> dict[str, float]:
    n = vectors.shape[0]
    nan = float("nan")
    out = {"trustworthiness": nan, "knn_preservation": nan, "reduction_trustworthiness": nan,
           "k": float(MAP_K), "sample": float(min(n, 2000))}
    if n < 2 * MAP_K + 2:
        return out  # too few points for 10-neighbourhoods to mean anything
    if xy is not None:
        out["trustworthiness"] = trustworthiness(vectors, xy, k=MAP_K, metric=metric,
                                                 random_state=random_state)
        out["knn_preservation"] = knn_preservation(vectors, xy, k=MAP_K, metric=metric,
                                                   random_state=random_state)
    if reduced is not None:
        out["reduction_trustworthiness"] = trustworthiness(
            vectors, reduced, k=MAP_K, metric=metric, random_state=random_state)
    return out


def _check_hdbscan_args(
    clusterer: Any, min_cluster_size: int | None, min_samples: int | None, method: str,
    auto: bool,
) -> None:
    if clusterer == "hdbscan":
        if min_cluster_size is not None and (check_positive_int(
                min_cluster_size, name="min_cluster_size") < 2):
            raise InvalidInputError(
                f"min_cluster_size: expected an integer >= 2, got {min_cluster_size}")
        if min_samples is not None:
            check_positive_int(min_samples, name="min_samples")
        check_choice(method, SELECTION_METHODS, name="cluster_selection_method")
        return
    if isinstance(clusterer, str) or not isinstance(clusterer, Clusterer):
        raise InvalidInputError(
            f"clusterer: expected 'hdbscan' or an object with fit_predict, got {clusterer!r}")
    for name, value in (("min_cluster_size", min_cluster_size), ("min_samples", min_samples)):
        if value is not None:
            raise InvalidInputError(f"{name}: applies to the built-in HDBSCAN only; set it on "
                                    "your clusterer")
    if auto:
        raise InvalidInputError("auto: tunes the built-in HDBSCAN only (clusterer='hdbscan')")


# --------------------------------------------------------------------------------- pipeline
def cluster(
    data: Any,
    *,
    reducer: Reducer | str | None = "umap",
    clusterer: Clusterer | str = "hdbscan",
    layout: Reducer | str | None = "umap",
    where: pl.Expr | None = None,
    text: str | None = "text",
    frame: Any = None,
    metric: str | None = None,
    n_components: int = 5,
    n_neighbors: int = 15,
    min_cluster_size: int | None = None,
    min_samples: int | None = None,
    cluster_selection_method: str = "eom",
    auto: bool = False,
    top_n: int = 10,
    n_exemplars: int = 5,
    cache: bool | str | Path = True,
    random_state: int = 0,
    progress: bool = True,
) -> ClusterResult:
    """Cluster vectors: reduce, cluster, lay out in 2-D, name clusters, measure distortion.

    Parameters
    ----------
    data : Store or array (n, dim)
        A store (its live rows, or those matching `where`) or vectors.
    reducer : {"umap", "pca"}, Reducer or None
        Reduces the vectors before clustering: ``"umap"`` (default: `n_components`-d,
        ``min_dist=0``), ``"pca"``, any object with ``fit_transform``, or None to cluster the
        vectors themselves.
    clusterer : "hdbscan" or Clusterer
        ``"hdbscan"`` (supports :func:`recluster` and ``auto``), or any object with
        ``fit_predict`` (e.g. ``KMeans(n_clusters=10)``).
    layout : {"umap", "pca"}, Reducer or None
        Makes the 2-D map from the vectors: ``"umap"`` (``min_dist=0.1``), ``"pca"``, an
        object with ``fit_transform`` giving 2 columns, or None for no map.
    where : polars.Expr, optional
        Filter over the metadata (a store's, or `frame`'s).
    text : str or None
        Text column for keywords; if absent, keywords are skipped with a
        :class:`~workbench.analysis.keywords.KeywordsSkippedWarning`. None skips silently.
    frame : DataFrame, optional
        Metadata row for row with vectors input (``id``, ``key``, text, ...).
    metric : {"cos", "ip", "l2sq"}, optional
        Distance between vectors; default the store's, else ``"l2sq"``.
    n_components, n_neighbors : int
        Dimensions of the clustering reduction, and UMAP's neighbourhood size (both UMAPs).
    min_cluster_size, min_samples : int, optional
        HDBSCAN: smallest cluster (default ``max(10, sqrt(n) / 2)``) and density neighbourhood
        (default 5; the spanning tree depends on it alone).
    cluster_selection_method : {"eom", "leaf"}
        HDBSCAN's cluster selection.
    auto : bool
        Pick `min_cluster_size`, `min_samples` and the selection method from a small grid by
        relative validity; the grid tried is ``result.grid``.
    top_n, n_exemplars : int
        Keywords and exemplar ids kept per cluster.
    cache : bool, str or Path
        ``True``: cache reductions, layouts and trees in ``<store>/cache/cluster`` (stores
        only); a path: cache there; ``False``: no disk cache.
    random_state : int
        Seed of the presets (UMAP, PCA) and of the metric samples.
    progress : bool
        Show a progress bar over the stages.

    Returns
    -------
    ClusterResult
        See its schema; ``result.metrics.summary()`` gives one line for a map's caption.

    Raises
    ------
    InvalidInputError
        Bad arguments, naming them; fewer rows than `n_neighbors`; all vectors identical.
    EmptyInputError
        `where` selects nothing.
    MissingColumnError
        `where` names a missing column.

    Examples
    --------
    >>> import workbench as wb
    >>> data = wb.datasets.digits()
    >>> res = wb.cluster(data.vectors, frame=data.frame, text=None)  # doctest: +SKIP
    >>> res.clusters.select("cluster", "size").head(3)  # doctest: +SKIP
    """
    from tqdm.auto import tqdm

    _check_hdbscan_args(clusterer, min_cluster_size, min_samples, cluster_selection_method,
                        auto)
    n_components = check_positive_int(n_components, name="n_components")
    n_neighbors = check_positive_int(n_neighbors, name="n_neighbors")
    top_n = check_positive_int(top_n, name="top_n")
    n_exemplars = check_positive_int(n_exemplars, name="n_exemplars")
    if n_neighbors < 2:
        raise InvalidInputError(f"n_neighbors: expected an integer >= 2, got {n_neighbors}")
    meta, vectors, metric, disk, origin = _load(data, frame=frame, where=where, metric=metric,
                                                cache=cache)
    n = vectors.shape[0]
    if n < 3:
        raise InvalidInputError(f"data: expected at least 3 rows to cluster, got {n}")
    if not np.any(vectors != vectors[0]):
        raise InvalidInputError(f"vectors: all {n} selected vectors are identical; there is "
                                "no structure to cluster")
    ids = meta.get_column("id")
    digest = data_digest(ids.to_list(), vectors)
    common = {"n_components": n_components, "n_neighbors": n_neighbors, "metric": metric,
              "random_state": random_state, "cache": disk, "digest": digest, "origin": origin}
    timings: dict[str, float] = {}
    hits: dict[str, bool] = {}
    stages = ["reduce", "cluster", "layout", "keywords", "metrics"]
    with tqdm(total=len(stages), desc="cluster", unit="stage", disable=not progress) as bar:
        bar.set_postfix_str("reduce")
        if reducer is None:
            reduced = vectors if metric == "l2sq" else _normalise(vectors)
            reducer_params: dict[str, Any] = {"kind": None}
        else:
            reduced, reducer_params, timings["reduce"], hits["reduce"] = _run_reducer(
                reducer, vectors, what="reducer", min_dist=0.0, **common)
        reduced = np.ascontiguousarray(reduced, dtype=np.float32)
        reduced_digest = data_digest(ids.to_list(), reduced)
        bar.update()

        bar.set_postfix_str("cluster")
        t0 = time.perf_counter()
        tree, base_labels, grid = None, None, None
        persistence: dict[int, float] = {}
        if clusterer == "hdbscan":
            mcs = min_cluster_size or _default_min_cluster_size(n)
            ms = min(min_samples or 5, n - 1)
            if auto:
                mcs, ms, cluster_selection_method, grid, tree = _auto_grid(
                    reduced, base_min_cluster_size=mcs, cache=disk, digest=reduced_digest)
            else:
                tree = _get_tree(reduced, ms, cache=disk, digest=reduced_digest)
            ext = _extract(tree, mcs, cluster_selection_method)
            labels, probability, outlier, persistence = ext
            base_labels = labels
            clusterer_params: dict[str, Any] = {
                "kind": "hdbscan", "min_cluster_size": mcs, "min_samples": tree.min_samples,
                "cluster_selection_method": cluster_selection_method, "auto": auto}
        else:
            labels = np.asarray(clusterer.fit_predict(reduced)).astype(np.int32).ravel()
            if labels.size != n:
                raise InvalidInputError(f"clusterer: expected {n} labels from fit_predict, got "
                                        f"{labels.size}")
            probability = (labels >= 0).astype(np.float32)
            outlier = np.full(n, np.nan, dtype=np.float32)
            clusterer_params = {"kind": type(clusterer).__qualname__,
                                **(_describe(clusterer, None) or {})}
        timings["cluster"] = time.perf_counter() - t0
        bar.update()

        bar.set_postfix_str("layout")
        xy = None
        layout_params: dict[str, Any] = {"kind": None}
        if layout is not None:
            xy, layout_params, timings["layout"], hits["layout"] = _run_reducer(
                layout, vectors, what="layout", min_dist=0.1, **{**common, "n_components": 2})
            if xy.shape[1] != 2:
                raise InvalidInputError(f"layout: expected 2 columns from fit_transform, got "
                                        f"{xy.shape[1]}")
        bar.update()

        bar.set_postfix_str("keywords")
        t0 = time.perf_counter()
        terms = _terms(meta, text)
        timings["keywords"] = time.perf_counter() - t0
        bar.update()

        bar.set_postfix_str("metrics")
        t0 = time.perf_counter()
        mm = _map_metrics(vectors, reduced if reducer is not None else None, xy, metric=metric,
                          random_state=random_state)
        timings["metrics"] = time.perf_counter() - t0
        bar.update()

    state = _State(terms=terms, tree=tree, base_labels=base_labels, cache=disk,
                   reduced_digest=reduced_digest, names={}, map_metrics=mm, top_n=top_n,
                   n_exemplars=n_exemplars, random_state=random_state)
    params = {"reducer": reducer_params, "clusterer": clusterer_params,
              "layout": layout_params, "metric": metric, "text": text, **origin,
              "cache_folder": None if disk.folder is None else str(disk.folder),
              "cache_hits": hits, "seconds": {k: round(v, 3) for k, v in timings.items()}}
    return _build(keys=meta.get_column("key"), ids=ids, reduced=reduced, xy=xy, labels=labels,
                  probability=probability, outlier_score=outlier, persistence=persistence,
                  state=state, params=params, grid=grid)


def _terms(meta: pl.DataFrame, text: str | None) -> TermCounts | None:
    if text is None:
        return None
    if text not in meta.columns:
        cols = [c for c in meta.columns if c not in ("key",)]
        warnings.warn(
            f"text: the data has no column {text!r} (columns: {cols}); cluster keywords are "
            "left empty. Pass text=<a text column>, or text=None to skip keywords.",
            KeywordsSkippedWarning, stacklevel=3,
        )
        return None
    terms = TermCounts.fit(meta.get_column(text).cast(pl.Utf8).to_list())
    if terms is None:
        warnings.warn(
            f"text: column {text!r} holds no words once English stop words are removed; "
            "cluster keywords are left empty", KeywordsSkippedWarning, stacklevel=3,
        )
    return terms


def recluster(
    result: ClusterResult,
    *,
    min_cluster_size: int | None = None,
    min_samples: int | None = None,
    cluster_selection_method: str | None = None,
    auto: bool = False,
) -> ClusterResult:
    """Re-run only HDBSCAN on `result`'s reduction, with new settings (one call for a slider).

    Settings left as None keep `result`'s. The kept spanning tree depends on `min_samples`
    alone, so changing only `min_cluster_size` or the selection method re-extracts clusters
    from it (well under a second for 100k points); a new `min_samples` rebuilds the tree (or
    reads it from the disk cache). Labels equal a cold :func:`cluster` run with the same
    settings and seed. Edits (merges, names, reassigned outliers) are not carried over; the
    map and its distortion measures are.

    Raises
    ------
    InvalidInputError
        `result` was not clustered by the built-in HDBSCAN, or a setting is invalid.
    """
    state = result._state
    if state is None or state.tree is None:
        raise InvalidInputError(
            f"result: recluster needs a result of the built-in HDBSCAN, got one from "
            f"{result.params.get('clusterer', {}).get('kind')!r}")
    old = result.params["clusterer"]
    method = cluster_selection_method or old["cluster_selection_method"]
    _check_hdbscan_args("hdbscan", min_cluster_size, min_samples, method, auto)
    mcs = min_cluster_size or old["min_cluster_size"]
    ms = min_samples or old["min_samples"]
    t0 = time.perf_counter()
    grid = None
    if auto:
        mcs, ms, method, grid, tree = _auto_grid(
            result.reduced, base_min_cluster_size=mcs, cache=state.cache,
            digest=state.reduced_digest, known=state.tree)
    else:
        tree = _get_tree(result.reduced, min(ms, result.reduced.shape[0] - 1),
                                 cache=state.cache, digest=state.reduced_digest,
                                 known=state.tree)
    labels, probability, outlier, persistence = _extract(tree, mcs, method)
    seconds = time.perf_counter() - t0
    params = {**result.params, "clusterer": {**old, "min_cluster_size": mcs,
                                             "min_samples": tree.min_samples,
                                             "cluster_selection_method": method,
                                             "auto": auto},
              "seconds": {**result.params["seconds"], "recluster": round(seconds, 3)}}
    new_state = replace(state, tree=tree, base_labels=labels, names={})
    pts = result.points
    return _build(keys=pts.get_column("key"), ids=pts.get_column("id"), reduced=result.reduced,
                  xy=result.layout, labels=labels, probability=probability,
                  outlier_score=outlier, persistence=persistence, state=new_state,
                  params=params, grid=grid)


def _edit(
    result: ClusterResult, labels: NDArray[np.int32], *, names: Mapping[int, str] | None = None,
    persistence: Callable[[int], float] | None = None, note: str,
) -> ClusterResult:
    pts = result.points
    old_persistence = dict(zip(result.clusters.get_column("cluster").to_list(),
                               result.clusters.get_column("persistence").to_list(), strict=True))
    pers = {c: (persistence(c) if persistence is not None else p)
            for c, p in old_persistence.items()}
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




# --------------------------------------------------------------------------------- editing
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

    tree_to_labels = _hdbscan_internals()[3]
    cp = result.params["clusterer"]
    base, _, _, condensed, _ = tree_to_labels(
        None, state.tree.slt, min_cluster_size=cp["min_cluster_size"],
        cluster_selection_method=cp["cluster_selection_method"])
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
                 persistence=lambda c: float("nan") if c == target else _pers(result, c),
                 note=f"merge_clusters({ids})")


def _pers(result: ClusterResult, c: int) -> float:
    row = result.clusters.filter(pl.col("cluster") == c)
    return float(row.get_column("persistence")[0]) if row.height else float("nan")


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
