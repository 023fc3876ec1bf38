"""A topic hierarchy over a clustering: the fine clusters merged step by step into a tree.

:func:`topic_tree` merges the clusters of a :class:`~workbench.analysis.cluster.ClusterResult`
by Ward linkage of their centroids in the original (cosine) space (scipy), or by the cosine of
their c-TF-IDF vectors; every level of the tree is a clustering with that many topics.
:func:`at_level` and :func:`cut` return a result at one level without touching the reduction.
The label-free default level maximises the silhouette in the original cosine space, computed
exactly for every point and every level from per-cluster vector sums (with unit vectors the
mean cosine distance from a point to a cluster is ``1 - x . mean``), so the whole curve costs
one ``(n, clusters)`` product.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from .._validation import check_choice
from ..errors import InvalidInputError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .cluster import ClusterResult

#: Levels the default granularity is chosen from (2 up to this many topics).
MAX_LEVEL = 40
SIMILARITIES = ("centroid", "ctfidf")


@dataclass(frozen=True, eq=False)
class TopicTree:
    """The merge tree of a clustering's fine clusters.

    Attributes
    ----------
    linkage : numpy.ndarray
        scipy's ``(K - 1, 4)`` linkage matrix over the K fine clusters (leaf ``i`` is
        ``clusters[i]``).
    clusters : numpy.ndarray
        The fine cluster ids, leaf order.
    nodes : polars.DataFrame
        ``node: i32`` (leaves ``0..K-1``, merges ``K..2K-2``), ``parent: i32`` (null for the
        root), ``left, right: i32`` (null for leaves), ``cluster: i32`` (the fine cluster of a
        leaf, null otherwise), ``n_clusters: u32``, ``size: u32`` (points), ``height: f64``
        (merge distance; 0 for leaves), ``n_topics: u32`` (topics at the level where the node
        appears), ``keywords: list[str]``, ``exemplars: list[str]`` (ids of members nearest
        the node's centroid in the original space).
    criterion : polars.DataFrame
        ``n_topics: u32, silhouette: f64`` (cosine, original space, all points), ``chosen``.
    best_n_topics : int
        The level of the highest silhouette: the label-free default granularity.
    similarity : str
        ``"centroid"`` (Ward linkage of unit centroids) or ``"ctfidf"`` (average linkage of
        c-TF-IDF cosine).
    """

    linkage: NDArray[np.float64]
    clusters: NDArray[np.int32]
    nodes: pl.DataFrame
    criterion: pl.DataFrame
    best_n_topics: int
    similarity: str

    @property
    def n_clusters(self) -> int:
        """Number of fine clusters (leaves)."""
        return int(self.clusters.size)

    def assignment(self, n_topics: int) -> NDArray[np.int32]:
        """Topic (``0..n_topics-1``) of each fine cluster, leaf order.

        That is the state after the first ``K - n_topics`` merges; topics are numbered by
        their smallest fine cluster.
        """
        k = self.n_clusters
        _check_level(n_topics, k)
        parent = np.arange(2 * k - 1)
        for i in range(k - n_topics):
            a, b = int(self.linkage[i, 0]), int(self.linkage[i, 1])
            parent[a] = parent[b] = k + i
        root = np.arange(k)
        for _ in range(k):  # follow parents to the top merged so far (depth <= k)
            nxt = parent[root]
            if np.array_equal(nxt, root):
                break
            root = nxt
        # number topics by their smallest fine cluster, so colours move little between levels
        first = {}
        for leaf in np.argsort(self.clusters, kind="stable").tolist():
            first.setdefault(int(root[leaf]), len(first))
        return np.array([first[int(r)] for r in root], dtype=np.int32)

    def n_topics_at(self, threshold: float) -> int:
        """Topics left when every merge at distance <= `threshold` is made."""
        heights = self.linkage[:, 2]
        return int(self.n_clusters - np.searchsorted(heights, threshold, side="right"))

    def plot(self, *, max_label: int = 3) -> Figure:
        """A dendrogram with each leaf labelled by its cluster's top keywords."""
        import matplotlib.pyplot as plt
        from scipy.cluster.hierarchy import dendrogram

        leaves = self.nodes.filter(pl.col("cluster").is_not_null()).sort("node")
        labels = [f"{c}: {', '.join(kw[:max_label])}" if kw else str(c) for c, kw in
                  zip(leaves["cluster"].to_list(), leaves["keywords"].to_list(), strict=True)]
        fig, ax = plt.subplots(figsize=(9, max(3.0, 0.22 * self.n_clusters)))
        if self.n_clusters > 1:
            dendrogram(self.linkage, labels=labels, orientation="left", ax=ax,
                       color_threshold=0, above_threshold_color="#4c78a8")
        ax.set(title=f"topic hierarchy ({self.similarity}; default {self.best_n_topics} "
                     "topics)", xlabel="merge distance")
        fig.tight_layout()
        plt.close(fig)
        return fig


def _check_level(n_topics: Any, k: int) -> int:
    if isinstance(n_topics, bool) or not isinstance(n_topics, int | np.integer):
        raise InvalidInputError(f"n_topics: expected an integer in [1, {k}], got {n_topics!r}")
    if not 1 <= int(n_topics) <= k:
        raise InvalidInputError(
            f"n_topics: expected an integer in [1, {k}] (the result has {k} fine clusters), "
            f"got {n_topics}"
        )
    return int(n_topics)


def _unit(x: NDArray[np.float32]) -> NDArray[np.float32]:
    return (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def silhouette_curve(
    vectors: NDArray[np.float32], fine: NDArray[np.int32], clusters: NDArray[np.int32],
    assignments: dict[int, NDArray[np.int32]],
) -> dict[int, float]:
    """Exact cosine silhouette of every level (all points, noise left out).

    `vectors` are unit vectors; `fine` the fine label of each point; `assignments` maps a
    level to the topic of each fine cluster (leaf order of `clusters`).
    """
    ok = fine >= 0
    x = vectors[ok]
    leaf = np.searchsorted(clusters, fine[ok])
    k = clusters.size
    sums = np.zeros((k, x.shape[1]), dtype=np.float64)
    np.add.at(sums, leaf, x)
    counts = np.bincount(leaf, minlength=k).astype(np.float64)
    g = x.astype(np.float64) @ sums.T  # (n, K): x . sum of each fine cluster
    out: dict[int, float] = {}
    for n_topics, topic_of in assignments.items():
        if n_topics < 2:
            continue
        m = np.zeros((k, n_topics))
        m[np.arange(k), topic_of] = 1.0
        dots = g @ m  # x . sum of each topic
        size = counts @ m
        own = topic_of[leaf]
        own_size = size[own]
        # mean distance to the own topic without the point itself (its distance is 0)
        a = (own_size - dots[np.arange(own.size), own]) / np.maximum(own_size - 1, 1)
        mean_other = 1.0 - dots / np.maximum(size, 1)
        mean_other[np.arange(own.size), own] = np.inf
        b = mean_other.min(axis=1)
        s = np.where(own_size > 1, (b - a) / np.maximum(np.maximum(a, b), 1e-12), 0.0)
        out[n_topics] = float(s.mean())
    return out


def topic_tree(
    result: ClusterResult, *, similarity: str = "centroid", vectors: Any = None,
) -> TopicTree:
    """The fine clusters of `result` merged step by step into a tree.

    Parameters
    ----------
    result : ClusterResult
        A clustering with at least one cluster (noise stays noise at every level).
    similarity : {"centroid", "ctfidf"}
        ``"centroid"``: Ward linkage of the clusters' unit centroids in the original space;
        ``"ctfidf"``: average linkage of the cosine between their c-TF-IDF vectors (needs text).
    vectors : array (n, dim), optional
        The original vectors row for row with ``result.points``; default those the result was
        clustered from.

    Returns
    -------
    TopicTree

    Raises
    ------
    InvalidInputError
        No clusters, no original vectors, or ``"ctfidf"`` without text.
    """
    from scipy.cluster.hierarchy import linkage

    check_choice(similarity, SIMILARITIES, name="similarity")
    x = _vectors_of(result, vectors)
    fine = result._state.fine_labels if result._state.fine_labels is not None else result.labels
    clusters = np.unique(fine[fine >= 0]).astype(np.int32)
    k = clusters.size
    if k == 0:
        raise InvalidInputError("result: expected at least one cluster, all points are noise")
    ok = fine >= 0
    leaf = np.searchsorted(clusters, fine[ok])
    terms = result._state.terms
    per_cluster = None
    if terms is not None:
        import scipy.sparse as sp

        onehot = sp.csr_matrix((np.ones(leaf.size), (leaf, np.flatnonzero(ok))),
                               shape=(k, fine.size))
        per_cluster = np.asarray((onehot @ terms.counts).todense())
    if k == 1:
        z = np.zeros((0, 4))
    elif similarity == "centroid":
        sums = np.zeros((k, x.shape[1]))
        np.add.at(sums, leaf, x[ok])
        z = linkage(_unit(sums.astype(np.float32)).astype(np.float64), method="ward")
    else:
        if per_cluster is None:
            raise InvalidInputError("similarity: 'ctfidf' needs a result clustered with text")
        z = linkage(_ctfidf(per_cluster), method="average", metric="cosine")
    z = np.asarray(z, dtype=np.float64)
    tree = TopicTree(linkage=z, clusters=clusters, nodes=pl.DataFrame(),
                     criterion=pl.DataFrame(), best_n_topics=1, similarity=similarity)
    levels = range(1, min(k, MAX_LEVEL) + 1)
    assignments = {n: tree.assignment(n) for n in levels}
    curve = silhouette_curve(x, fine, clusters, assignments)
    best = max(curve, key=lambda n: (curve[n], -n)) if curve else 1
    criterion = pl.DataFrame({
        "n_topics": pl.Series(list(curve), dtype=pl.UInt32),
        "silhouette": pl.Series(list(curve.values()), dtype=pl.Float64),
    }).with_columns(chosen=pl.col("n_topics") == best)
    sizes = np.bincount(leaf, minlength=k)
    nodes = _nodes(z, clusters, sizes, per_cluster, terms, result._state.top_n)
    nodes = nodes.with_columns(exemplars=_node_exemplars(
        result, x, fine, clusters, leaf, ok, nodes, result._state.n_exemplars))
    return replace(tree, nodes=nodes, criterion=criterion, best_n_topics=int(best))


def _node_exemplars(
    result: ClusterResult, x: NDArray[np.float32], fine: NDArray[np.int32],
    clusters: NDArray[np.int32], leaf: NDArray[np.int64], ok: NDArray[np.bool_],
    nodes: pl.DataFrame, n_exemplars: int,
) -> pl.Series:
    """Ids of each node's members nearest its centroid (cosine, original space).

    They are chosen among its fine clusters' own candidates (the ``n_exemplars`` members of
    each fine cluster nearest that cluster's centroid), so the cost stays nodes x clusters.
    """
    k = clusters.size
    sums = np.zeros((k, x.shape[1]))
    np.add.at(sums, leaf, x[ok])
    members = np.flatnonzero(ok)
    cand: list[NDArray[np.int64]] = []
    for c in range(k):
        rows = members[leaf == c]
        sim = x[rows] @ sums[c]
        cand.append(rows[np.argsort(-sim, kind="stable")[:n_exemplars]])
    ids = result.points.get_column("id").to_numpy()
    left = nodes.get_column("left").to_list()
    right = nodes.get_column("right").to_list()
    leaves_of: list[list[int]] = [[c] for c in range(k)] + [[] for _ in range(k - 1)]
    node_sums = list(sums) + [np.zeros(x.shape[1]) for _ in range(k - 1)]
    for node in range(k, 2 * k - 1):
        a, b = left[node], right[node]
        leaves_of[node] = leaves_of[a] + leaves_of[b]
        node_sums[node] = node_sums[a] + node_sums[b]
    out: list[list[str]] = []
    for node in range(2 * k - 1):
        pool = np.concatenate([cand[c] for c in leaves_of[node]])
        sim = x[pool] @ node_sums[node]
        out.append([str(i) for i in ids[pool[np.argsort(-sim, kind="stable")[:n_exemplars]]]])
    return pl.Series("exemplars", out, dtype=pl.List(pl.Utf8))


def _ctfidf(per_class: NDArray[np.float64]) -> NDArray[np.float64]:
    words = per_class.sum(axis=1, keepdims=True)
    tf = per_class / np.maximum(words, 1.0)
    idf = np.log1p(float(words.mean()) / np.maximum(per_class.sum(axis=0), 1.0))
    return tf * idf


def _nodes(z: NDArray[np.float64], clusters: NDArray[np.int32], sizes: NDArray[np.int64],
           per_cluster: NDArray[np.float64] | None, terms: Any, top_n: int) -> pl.DataFrame:
    k = clusters.size
    total = 2 * k - 1
    parent = np.full(total, -1)
    left = np.full(total, -1)
    right = np.full(total, -1)
    height = np.zeros(total)
    n_cl = np.ones(total, dtype=np.int64)
    size = np.zeros(total, dtype=np.int64)
    size[:k] = sizes
    n_topics = np.full(total, k, dtype=np.int64)
    members = np.zeros((total, k), dtype=bool)
    members[np.arange(k), np.arange(k)] = True
    for i in range(k - 1):
        a, b, node = int(z[i, 0]), int(z[i, 1]), k + i
        parent[a] = parent[b] = node
        left[node], right[node], height[node] = a, b, z[i, 2]
        n_cl[node] = n_cl[a] + n_cl[b]
        size[node] = size[a] + size[b]
        n_topics[node] = k - i - 1
        members[node] = members[a] | members[b]
    keywords: list[list[str]] = [[] for _ in range(total)]
    if per_cluster is not None and terms is not None:
        node_counts = members.astype(np.float64) @ per_cluster
        # the fine level's idf for every node, as BERTopic's hierarchical topics do
        idf = np.log1p(float(per_cluster.sum(axis=1).mean())
                       / np.maximum(per_cluster.sum(axis=0), 1.0))
        tf = node_counts / np.maximum(node_counts.sum(axis=1, keepdims=True), 1.0)
        scores = tf * idf
        for node in range(total):
            s = scores[node]
            nz = int(np.count_nonzero(node_counts[node]))
            if nz == 0:
                continue
            best = np.argsort(-s, kind="stable")[:min(top_n, nz)]
            keywords[node] = [str(terms.terms[j]) for j in best]

    def opt(a: NDArray[np.int64]) -> pl.Series:
        return pl.Series([None if v < 0 else v for v in a.tolist()], dtype=pl.Int32)

    return pl.DataFrame({
        "node": pl.Series(np.arange(total), dtype=pl.Int32),
        "parent": opt(parent), "left": opt(left), "right": opt(right),
        "cluster": pl.Series([int(c) for c in clusters] + [None] * (k - 1), dtype=pl.Int32),
        "n_clusters": pl.Series(n_cl, dtype=pl.UInt32),
        "size": pl.Series(size, dtype=pl.UInt32),
        "height": pl.Series(height, dtype=pl.Float64),
        "n_topics": pl.Series(n_topics, dtype=pl.UInt32),
        "keywords": pl.Series(keywords, dtype=pl.List(pl.Utf8)),
    })


def _vectors_of(result: ClusterResult, vectors: Any) -> NDArray[np.float32]:
    from .._validation import check_vectors

    if vectors is None:
        v = result._state.vectors if result._state is not None else None
        if v is None:
            raise InvalidInputError(
                "vectors: this result does not hold its original vectors; pass vectors= row "
                "for row with result.points")
        return v
    v = check_vectors(vectors, name="vectors", allow_1d=False)
    if v.shape[0] != result.points.height:
        raise InvalidInputError(
            f"vectors: expected {result.points.height} rows (one per point), got {v.shape[0]}")
    return _unit(v)


def _state_tree(result: ClusterResult) -> TopicTree:
    t = result._state.topic_tree if result._state is not None else None
    return t if t is not None else topic_tree(result)


def at_level(result: ClusterResult, n_topics: int) -> ClusterResult:
    """`result` at `n_topics` topics of its tree (merged fine clusters; noise stays noise).

    Keywords, exemplars and quality measures are redone for the topics; the reduction and map
    are reused. ``points`` gains ``fine_cluster`` (the fine cluster each point belongs to);
    ``hdbscan_cluster`` keeps HDBSCAN's own labels. Any level of any result of the same tree
    gives the same labels, so cutting then re-cutting equals a direct cut.

    Raises
    ------
    InvalidInputError
        `n_topics` below 1 or above the number of fine clusters.
    """
    from .cluster_edit import _edit

    if result._state is None:
        raise InvalidInputError("result: expected a ClusterResult made by cluster()")
    tree = _state_tree(result)
    n_topics = _check_level(n_topics, tree.n_clusters)
    fine = result._state.fine_labels if result._state.fine_labels is not None else result.labels
    topic_of = tree.assignment(n_topics)
    labels = np.full(fine.size, -1, dtype=np.int32)
    ok = fine >= 0
    labels[ok] = topic_of[np.searchsorted(tree.clusters, fine[ok])]
    base = result
    if result._state.fine_labels is None:
        base = replace(result, _state=replace(result._state, fine_labels=fine, topic_tree=tree,
                                              fine_persistence=_persistence_of(result)))
    out = _edit(base, labels, names={}, note=f"at_level({n_topics})",
                reset=set(result.clusters.get_column("cluster").to_list()))
    pers = topic_persistence(fine, labels, out.points.get_column("probability").to_numpy(),
                             base._state.fine_persistence or {})
    out = replace(out, clusters=out.clusters.with_columns(persistence=pl.Series(
        [pers.get(c, float("nan")) for c in out.clusters.get_column("cluster").to_list()],
        dtype=pl.Float32)))
    params = {**out.params, "topics": {**out.params.get("topics", {}), "n_topics": n_topics,
                                       "fine_clusters": tree.n_clusters}}
    pts = out.points.with_columns(fine_cluster=pl.Series(fine, dtype=pl.Int32))
    base_labels = result._state.base_labels
    if base_labels is not None:
        pts = pts.with_columns(hdbscan_cluster=pl.Series(base_labels, dtype=pl.Int32))
    return replace(out, points=pts, params=params)


def _persistence_of(result: ClusterResult) -> dict[int, float]:
    c = result.clusters
    return dict(zip(c.get_column("cluster").to_list(), c.get_column("persistence").to_list(),
                    strict=True))


def topic_persistence(
    fine: NDArray[np.int32], topics: NDArray[np.int32], probability: NDArray[np.float32],
    persistence: Mapping[int, float],
) -> dict[int, float]:
    """HDBSCAN persistence of each topic: that of the union of its fine clusters.

    hdbscan's persistence of a cluster is its stability over ``members x max lambda``
    (``cluster_persistence_``), and the stability of disjoint clusters adds up (it is what EOM
    compares a parent with), so the union's persistence is the mean of the fine clusters'
    weighted by their HDBSCAN members (points with ``probability > 0``: reassigned outliers
    keep 0). A topic of one fine cluster keeps that cluster's persistence.

    Parameters
    ----------
    fine, topics : numpy.ndarray
        Fine cluster and topic of each point (``-1`` noise).
    probability : numpy.ndarray
        HDBSCAN membership strength of each point (0 for noise and reassigned outliers).
    persistence : mapping
        Fine cluster -> its persistence.

    Returns
    -------
    dict
        Topic -> persistence; NaN where a fine cluster has none (another clusterer than
        HDBSCAN, or clusters merged by hand) or the topic has no HDBSCAN member.
    """
    ok = (fine >= 0) & (topics >= 0)
    out: dict[int, float] = {}
    if not ok.any():
        return out
    f, t = fine[ok].astype(np.int64), topics[ok].astype(np.int64)
    weight = np.bincount(f[np.asarray(probability)[ok] > 0], minlength=int(f.max()) + 1)
    value = np.array([persistence.get(c, np.nan) for c in range(weight.size)],
                     dtype=np.float64)
    pairs = np.unique(np.stack([t, f], axis=1), axis=0)  # (topic, fine cluster), by topic
    for topic in np.unique(pairs[:, 0]).tolist():
        parts = pairs[pairs[:, 0] == topic, 1]
        w, v = weight[parts].astype(np.float64), value[parts]
        out[int(topic)] = (float(w @ v / w.sum()) if w.sum() > 0 and np.isfinite(v).all()
                           else float("nan"))
    return out


def cut(result: ClusterResult, threshold: float) -> ClusterResult:
    """`result` with every merge of its tree at distance <= `threshold` made.

    See :func:`at_level`; ``result.hierarchy.nodes["height"]`` lists the merge distances.
    """
    if isinstance(threshold, bool) or not isinstance(threshold, int | float | np.floating) \
            or not np.isfinite(threshold) or threshold < 0:
        raise InvalidInputError(f"threshold: expected a distance >= 0, got {threshold!r}")
    tree = _state_tree(result)
    return at_level(result, tree.n_topics_at(float(threshold)))


def apply_topics(result: ClusterResult, n_topics: int | None = None) -> ClusterResult:
    """Apply the default for text to a fine clustering.

    Outliers are reassigned to the nearest centroid, the topic tree is built over the resulting
    clusters, and the result is cut at the level of the highest silhouette (or `n_topics`).
    """
    from .cluster_edit import reassign_outliers

    fine = reassign_outliers(result)
    if fine.clusters.height == 0:
        return fine
    fine = replace(fine, _state=replace(fine._state, fine_labels=None, topic_tree=None))
    tree = topic_tree(fine)
    fine = replace(fine, _state=replace(fine._state, fine_labels=fine.labels, topic_tree=tree,
                                        fine_persistence=_persistence_of(fine)))
    level = tree.best_n_topics if n_topics is None else _check_level(n_topics, tree.n_clusters)
    out = at_level(fine, level)
    return replace(out, params={**out.params, "topics": {
        **out.params["topics"], "default": n_topics is None, "criterion": "silhouette (cosine, "
        "original space, all points)", "reassigned": "nearest_centroid",
        "hdbscan_noise_fraction": float((result.labels < 0).mean())}})
