"""Clustering of embeddings: reduce (UMAP), cluster (HDBSCAN), lay out in 2-D (UMAP), describe.

The pipeline is :func:`cluster`; its :class:`ClusterResult` keeps what a re-run needs (the
reduced vectors, HDBSCAN's spanning tree, the word counts), so :func:`recluster` with new
HDBSCAN settings costs a tree re-extraction, not a UMAP. Reductions, layouts and spanning
trees are also cached on disk beside the store (see :mod:`workbench.analysis._cache`). The
reduction stage is in :mod:`workbench.analysis._reduce`, the HDBSCAN tree machinery in
:mod:`workbench.analysis._hdbscan_tree`.
Editing: :func:`reassign_outliers`, :func:`merge_clusters`, :func:`rename_clusters`, and
:func:`apply_labels` to write labels back to the store (defined in
:mod:`workbench.analysis.cluster_edit`, importable from here).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import polars as pl
from numpy.typing import NDArray

from .._validation import (
    METRICS,
    check_choice,
    check_frame,
    check_positive_int,
    check_vectors,
    filter_frame,
)
from ..errors import EmptyInputError, InvalidInputError
from ..store.segment import unit
from ._cache import ArrayCache, data_digest
from ._hdbscan_tree import SELECTION_METHODS as SELECTION_METHODS  # the widget lists them
from ._hdbscan_tree import (
    _auto_grid,
    _check_settings,
    _default_min_cluster_size,
    _extract,
    _get_tree,
    _renumber_like,
    _Tree,
)
from ._reduce import Reducer, _describe, _run_reducer
from .cluster_metrics import (
    ClusterMetrics,
    knn_preservation,
    noise_fraction,
    relative_validity,
    silhouette,
    trustworthiness,
)
from .keywords import KeywordsSkippedWarning, TermCounts, class_tfidf

if TYPE_CHECKING:
    from plotly.graph_objects import Figure

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

#: Neighbourhood size of the map-distortion measures (the issue's "10 nearest neighbours").
MAP_K = 10
#: Points sampled for trustworthiness (it needs all their pairwise distances).
MAP_SAMPLE = 2000
#: Fitted neighbours that vote for a new row's cluster in :meth:`ClusterResult.assign`.
ASSIGN_K = 15
#: Store columns :meth:`ClusterResult.assign` writes (output column -> store column).
#: ``cluster`` is also :func:`apply_labels`' default, so both write the same column.
ASSIGN_COLUMNS: Mapping[str, str] = {"cluster": "cluster", "topic": "topic", "x": "map_x",
                                     "y": "map_y", "confidence": "cluster_confidence"}
#: Rows mapped through the reducers at a time (bounds UMAP transform's working memory).
_ASSIGN_CHUNK = 65_536


@runtime_checkable
class Clusterer(Protocol):
    """Anything with ``fit_predict(X) -> labels (n,)`` (``-1`` = noise): KMeans, HDBSCAN, ..."""

    def fit_predict(self, X: Any, /) -> Any:  # noqa: D102
        ...


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
    vectors: NDArray[np.float32] | None = None  # original vectors, unit norm (topic tree)
    fine_labels: NDArray[np.int32] | None = None  # the clusters the topic tree merges
    fine_persistence: Mapping[int, float] | None = None  # their HDBSCAN persistence
    topic_tree: Any = None  # TopicTree of fine_labels
    # The fitted reducer and layout (assign() maps new rows through them); None when the stage
    # was skipped, read from the disk cache, or the result came from disk.
    reducer_model: Any = None
    layout_model: Any = None


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
        reduced space), ``persistence: f32`` (hdbscan's ``cluster_persistence_``; a topic's
        is that of the union of its fine clusters, see :func:`.topics.topic_persistence`;
        NaN for other clusterers and after :func:`merge_clusters`), ``x: f32, y: f32``
        (median map position, for labels).
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

    @property
    def hierarchy(self) -> Any:
        """The :class:`~workbench.analysis.topics.TopicTree` of this result's fine clusters.

        The tree the result was cut from, or one built now from its clusters.
        """
        from .topics import _state_tree

        return _state_tree(self)

    def at_level(self, n_topics: int) -> ClusterResult:
        """The clustering at `n_topics` topics of its hierarchy (:func:`.topics.at_level`)."""
        from .topics import at_level

        return at_level(self, n_topics)

    def cut(self, threshold: float) -> ClusterResult:
        """The clustering with every merge of its hierarchy at distance <= `threshold` made."""
        from .topics import cut

        return cut(self, threshold)

    def assign(
        self,
        data: Any,
        *,
        where: pl.Expr | None = None,
        write: bool = False,
        columns: Mapping[str, str | None] | None = None,
        k: int = ASSIGN_K,
    ) -> pl.DataFrame:
        """Assign new rows to this result's clusters and place them on its map.

        The practice for data too big to fit: cluster a sample, then assign the rest. Each
        row goes through the fitted reducer (``transform``) into the space that was clustered,
        where its `k` nearest fitted points vote for its cluster; the fitted layout's
        ``transform`` gives its map position.

        Why a vote and not ``hdbscan.approximate_predict``: this result's labels are often not
        HDBSCAN's own (outliers reassigned and clusters merged into topics, edits, a
        re-cluster, or another clusterer altogether), and the labels to reproduce are the
        result's. A nearest-neighbour vote in the clustered space reproduces whatever labels
        the result holds (approximate_predict is itself a nearest-neighbour rule in that space,
        for HDBSCAN's raw labels only, and needs an estimator fitted with prediction data that
        the kept spanning tree does not give). When the result has noise, a row farther from
        every fitted point than any fitted point is from its `k`-th neighbour is noise: it lies
        outside every dense region the fit saw.

        Parameters
        ----------
        data : Store, StoreView or array (n, dim)
            The rows to assign: a store's live rows (or those matching `where`), or vectors of
            the dimension the result was fitted on.
        where : polars.Expr, optional
            Filter over a store's metadata.
        write : bool
            Also write the columns into the store (a :class:`~workbench.Store` opened for
            writing) in one :meth:`~workbench.Store.update` commit.
        columns : mapping, optional
            Store column for each output column, over :data:`ASSIGN_COLUMNS` (``cluster`` ->
            ``cluster``, ``topic`` -> ``topic``, ``x`` -> ``map_x``, ``y`` -> ``map_y``,
            ``confidence`` -> ``cluster_confidence``); None skips that column.
        k : int
            Fitted neighbours that vote.

        Returns
        -------
        polars.DataFrame
            ``key: u64, id: str`` (a store's rows, by key) or ``row: u32`` (vectors, in
            order), then ``cluster: i32`` (the result's label, as in ``points["cluster"]``: its
            topic level when cut by topics; ``-1`` noise), ``topic: str`` (that cluster's
            ``name``; null for noise), ``x: f32, y: f32`` (map position; null without a
            layout), ``confidence: f32`` (share of the `k` votes for the assigned label, in
            [0, 1]). An empty frame when `where` selects no row.

        Raises
        ------
        InvalidInputError
            The result holds no fitted models (read from the disk cache, or loaded from disk:
            re-run :func:`cluster` with ``cache=False``); `where` or `write` without a store;
            bad `columns` or `k`.
        DimensionMismatchError
            `data` has another dimension than the vectors the result was fitted on.
        MissingColumnError
            `where` names a column the store does not have.

        Examples
        --------
        >>> res = wb.cluster(store, where=pl.col("day") == 1, cache=False)  # doctest: +SKIP
        >>> res.assign(store, where=pl.col("day") > 1, write=True)  # doctest: +SKIP
        """
        from ._assign import assign_rows

        return assign_rows(self, data, where=where, write=write, columns=columns, k=k)

    def plot(self, texts: Any = None, *, max_chars: int = 300, max_labels: int | None = 50,
             height: int = 650) -> Figure:
        """The 2-D map: one colour per cluster (noise grey), names at the cluster centres.

        Parameters
        ----------
        texts : Store, polars.DataFrame or sequence of str, optional
            Texts shown on hover: a store (its column ``params["text"]``, joined on ``key``),
            a frame with ``key`` and that column, or one string per point in point order.
            Every user string is escaped; each is cut at `max_chars`.
        max_chars : int
            Characters of a point's text on hover.
        max_labels : int or None
            Label the centres of this many of the largest clusters (None: all).
        height : int
            Figure height in pixels.

        Returns
        -------
        plotly.graph_objects.Figure
            A trace per cluster, largest first in the legend (click hides, double-click
            isolates), noise first and grey; an annotation per label. ``res.plot(store)``.

        Raises
        ------
        InvalidInputError
            The result has no map (``layout=None``), or `texts` does not fit the points.
        """
        from ._cluster_plot import cluster_figure

        return cluster_figure(self, texts, max_chars=max_chars, max_labels=max_labels,
                              height=height)

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
            rows = filter_frame(meta.with_row_index("_row"), where, what="frame",
                                hidden=("_row",)).get_column("_row").to_numpy()
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
        # The number lives in ``cluster``; a name written back to the store (apply_labels'
        # ``name_column``) must not carry it ("12: file, path" came back as the topic name).
        return ", ".join(words) if words else f"cluster {c}"

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
        reduction_trustworthiness=mm["reduction_trustworthiness"], k=MAP_K,
        sample=min(n, MAP_SAMPLE),
    )
    return ClusterResult(points=points, clusters=clusters, metrics=metrics, reduced=reduced,
                         params=params, grid=grid, _state=state)


def _map_metrics(
    vectors: NDArray[np.float32], reduced: NDArray[np.float32] | None,
    xy: NDArray[np.float32] | None, *, metric: str, random_state: int,
) -> dict[str, float]:
    n = vectors.shape[0]
    nan = float("nan")
    out = {"trustworthiness": nan, "knn_preservation": nan, "reduction_trustworthiness": nan}
    if n < 2 * MAP_K + 2:
        return out  # too few points for 10-neighbourhoods to mean anything
    if xy is not None:
        out["trustworthiness"] = trustworthiness(vectors, xy, k=MAP_K, metric=metric,
                                                 sample=MAP_SAMPLE, random_state=random_state)
        out["knn_preservation"] = knn_preservation(vectors, xy, k=MAP_K, metric=metric,
                                                   random_state=random_state)
    if reduced is not None:
        out["reduction_trustworthiness"] = trustworthiness(
            vectors, reduced, k=MAP_K, metric=metric, sample=MAP_SAMPLE,
            random_state=random_state)
    return out


def _check_hdbscan_args(
    clusterer: Any, min_cluster_size: int | None, min_samples: int | None, method: str,
    auto: bool,
) -> None:
    if clusterer == "hdbscan":
        _check_settings(min_cluster_size, min_samples, method)
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
    topics: bool | None = None,
    n_topics: int | None = None,
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
    topics : bool, optional
        Cut the clustering at a level of its topic hierarchy (:mod:`~workbench.analysis.topics`):
        outliers reassigned to the nearest centroid (HDBSCAN's labels kept in
        ``points["hdbscan_cluster"]``), the fine clusters merged by Ward linkage of their
        centroids in the original space, and the level of the highest cosine silhouette
        chosen (``result.hierarchy.criterion``). Default: on when there is text (`text`
        names a column with words), off otherwise. ``result.at_level(n)`` moves along the tree.
    n_topics : int, optional
        With `topics`, this level instead of the silhouette's.
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
            reduced = vectors if metric == "l2sq" else unit(vectors)
            reducer_params: dict[str, Any] = {"kind": None}
            reducer_model = None
        else:
            reduced, reducer_params, timings["reduce"], hits["reduce"], reducer_model = (
                _run_reducer(reducer, vectors, what="reducer", min_dist=0.0, **common))
        reduced = np.ascontiguousarray(reduced, dtype=np.float32)
        reduced_digest = data_digest(ids.to_list(), reduced)
        bar.update()

        bar.set_postfix_str("cluster")
        t0 = time.perf_counter()
        tree, base_labels, grid = None, None, None
        persistence: dict[int, float] = {}
        if clusterer == "hdbscan":
            mcs = min_cluster_size or _default_min_cluster_size(n)
            ms = min_samples or 5  # _get_tree clamps it to n - 1
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
        xy, layout_model = None, None
        layout_params: dict[str, Any] = {"kind": None}
        if layout is not None:
            xy, layout_params, timings["layout"], hits["layout"], layout_model = _run_reducer(
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
                   n_exemplars=n_exemplars, random_state=random_state,
                   vectors=unit(vectors), reducer_model=reducer_model,
                   layout_model=layout_model)
    params = {"reducer": reducer_params, "clusterer": clusterer_params,
              "layout": layout_params, "metric": metric, "text": text,
              "dim": int(vectors.shape[1]), **origin,
              "cache_folder": None if disk.folder is None else str(disk.folder),
              "cache_hits": hits, "seconds": {k: round(v, 3) for k, v in timings.items()}}
    out = _build(keys=meta.get_column("key"), ids=ids, reduced=reduced, xy=xy, labels=labels,
                 probability=probability, outlier_score=outlier, persistence=persistence,
                 state=state, params=params, grid=grid)
    if topics is None:
        topics = terms is not None
    if n_topics is not None and not topics:
        raise InvalidInputError("n_topics: only with topics=True (or text, its default)")
    if topics:
        from .topics import apply_topics

        t0 = time.perf_counter()
        out = apply_topics(out, n_topics)
        out.params["seconds"]["topics"] = round(time.perf_counter() - t0, 3)
    return out


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
    keep_numbers: bool = False,
) -> ClusterResult:
    """Re-run only HDBSCAN on `result`'s reduction, with new settings (one call for a slider).

    Settings left as None keep `result`'s. The kept spanning tree depends on `min_samples`
    alone, so changing only `min_cluster_size` or the selection method re-extracts clusters
    from it (well under a second for 100k points); a new `min_samples` rebuilds the tree (or
    reads it from the disk cache). Labels equal a cold :func:`cluster` run with the same
    settings and seed. Edits (merges, names, reassigned outliers) are not carried over; the
    map and its distortion measures are.

    With `keep_numbers`, the new clusters are numbered to follow the old ones: each takes the
    number (within ``0..K-1``) of the old cluster it shares most points with, by an optimal
    assignment on the overlap counts (``scipy.optimize.linear_sum_assignment``), so a view
    that colours by number keeps each cluster's colour across a re-cluster. The clusters are
    the same; only their numbers differ from a cold run's.

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
    if keep_numbers and state.base_labels is not None:
        labels, persistence = _renumber_like(labels, persistence, state.base_labels)
    seconds = time.perf_counter() - t0
    params = {**result.params, "clusterer": {**old, "min_cluster_size": mcs,
                                             "min_samples": tree.min_samples,
                                             "cluster_selection_method": method,
                                             "auto": auto},
              "seconds": {**result.params["seconds"], "recluster": round(seconds, 3)}}
    new_state = replace(state, tree=tree, base_labels=labels, names={}, fine_labels=None,
                        fine_persistence=None, topic_tree=None)
    pts = result.points
    params.pop("topics", None)
    out = _build(keys=pts.get_column("key"), ids=pts.get_column("id"), reduced=result.reduced,
                 xy=result.layout, labels=labels, probability=probability,
                 outlier_score=outlier, persistence=persistence, state=new_state,
                 params=params, grid=grid)
    if "reassigned" in result.params.get("topics", {}):
        # the same policy as the result it came from: reassigned, cut at the silhouette's level
        from .topics import apply_topics

        out = apply_topics(out)
    return out


# The editing verbs live in .cluster_edit, which needs ClusterResult and _build from here:
# imported last, once both exist, so that they stay importable from this module.
from .cluster_edit import (  # noqa: E402
    apply_labels,
    merge_clusters,
    reassign_outliers,
    rename_clusters,
)
