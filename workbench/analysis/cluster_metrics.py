"""Honest quality measures for a clustering and for the 2-D map drawn of it.

Cluster quality: the noise fraction, the silhouette on the space that was clustered (sampled for
large n), and HDBSCAN's relative validity (a fast approximation of DBCV over the
mutual-reachability minimum spanning tree). Map quality: a 2-D projection distorts distances,
so every map comes with two numbers saying by how much:

* **kNN preservation**: the share of each point's `k` nearest neighbours in the original space
  that are also among its `k` nearest neighbours in the map (1.0 is perfect; a random layout
  gives about ``k / n``). Neighbours are searched over all points, for a sample of query points.
* **trustworthiness** (scikit-learn): penalises map neighbours that are far apart in the
  original space, in ``[0, 1]``. It needs all pairwise distances, so it is computed on a
  random sample of points (neighbourhoods within the sample).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from .._validation import SKLEARN_METRIC, check_choice, check_positive_int, check_vectors
from ..errors import InvalidInputError

__all__ = [
    "ClusterMetrics",
    "knn_preservation",
    "noise_fraction",
    "relative_validity",
    "silhouette",
    "trustworthiness",
]

_SK_METRIC = SKLEARN_METRIC


def _sample(n: int, size: int, random_state: int) -> NDArray[np.int64]:
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(random_state).choice(n, size=size, replace=False))


def _inputs(
    original: Any, embedded: Any, *, metric: str, k: int, sample: int
) -> tuple[NDArray[np.float32], NDArray[np.float32], int, int]:
    """Validated (original, embedded, k, sample) of the map-distortion measures."""
    x = check_vectors(original, name="original", allow_1d=False)
    y = check_vectors(embedded, name="embedded", allow_1d=False)
    if x.shape[0] != y.shape[0]:
        raise InvalidInputError(
            f"embedded: expected {x.shape[0]} rows (one per row of original), got {y.shape[0]}"
        )
    check_choice(metric, tuple(_SK_METRIC), name="metric")
    return x, y, check_positive_int(k, name="k"), check_positive_int(sample, name="sample")


def _neighbours(
    data: NDArray[np.float32], queries: NDArray[np.int64], k: int, metric: str
) -> NDArray[np.int64]:
    """Indices of the `k` nearest rows of `data` to each row ``data[queries]``, self excluded."""
    from sklearn.neighbors import NearestNeighbors

    algorithm = "kd_tree" if data.shape[1] <= 3 and metric == "euclidean" else "brute"
    nn = NearestNeighbors(n_neighbors=k + 1, metric=metric, algorithm=algorithm).fit(data)
    idx = nn.kneighbors(data[queries], return_distance=False)
    out = np.empty((queries.size, k), dtype=np.int64)
    for row, (q, cand) in enumerate(zip(queries, idx, strict=True)):
        # Duplicates can rank another row before the query itself: drop the query wherever
        # it is, else the farthest candidate.
        keep = cand[cand != q]
        out[row] = keep[:k]
    return out


def knn_preservation(
    original: Any,
    embedded: Any,
    *,
    k: int = 10,
    metric: str = "l2sq",
    sample: int = 1000,
    random_state: int = 0,
) -> float:
    """Mean share of each point's `k` nearest neighbours kept by the embedding.

    Parameters
    ----------
    original : array (n, d)
        Vectors in the original space.
    embedded : array (n, m)
        The same points in the map (Euclidean).
    k : int
        Neighbours per point; clipped to ``n - 1``.
    metric : {"cos", "ip", "l2sq"}
        Distance in the original space (``ip`` is treated as cosine).
    sample : int
        Query points (neighbours are searched among all `n`).
    random_state : int
        Seed of the sample.

    Returns
    -------
    float
        In ``[0, 1]``; 1 means every neighbourhood survives.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(200, 5))
    >>> knn_preservation(x, x[:, :5])
    1.0
    """
    x, y, k, sample = _inputs(original, embedded, metric=metric, k=k, sample=sample)
    n = x.shape[0]
    if n < 2:
        raise InvalidInputError(f"original: expected at least 2 points, got {n}")
    k = min(k, n - 1)
    queries = _sample(n, sample, random_state)
    a = _neighbours(x, queries, k, _SK_METRIC[metric])
    b = _neighbours(y, queries, k, "euclidean")
    kept = [np.intersect1d(ra, rb, assume_unique=True).size for ra, rb in zip(a, b, strict=True)]
    return float(np.mean(kept) / k)


def trustworthiness(
    original: Any,
    embedded: Any,
    *,
    k: int = 10,
    metric: str = "l2sq",
    sample: int = 2000,
    random_state: int = 0,
) -> float:
    """scikit-learn's trustworthiness of `embedded`, on a random sample of `sample` points.

    `k` is clipped below half the sample size, as scikit-learn requires. Returns a float in
    ``[0, 1]`` (1: no false neighbours in the map).
    """
    from sklearn.manifold import trustworthiness as sk_trustworthiness

    x, y, k, sample = _inputs(original, embedded, metric=metric, k=k, sample=sample)
    rows = _sample(x.shape[0], sample, random_state)
    m = rows.size
    k = min(k, (m - 1) // 2)
    if k < 1:
        raise InvalidInputError(f"original: expected at least 3 points, got {x.shape[0]}")
    t = sk_trustworthiness(x[rows].astype(np.float64), y[rows].astype(np.float64),
                           n_neighbors=k, metric=_SK_METRIC[metric])
    return float(np.clip(t, 0.0, 1.0))


def noise_fraction(labels: NDArray[np.integer[Any]]) -> float:
    """Share of points labelled ``-1``."""
    labels = np.asarray(labels)
    return float(np.mean(labels < 0)) if labels.size else 0.0


def silhouette(
    reduced: NDArray[np.floating[Any]],
    labels: NDArray[np.integer[Any]],
    *,
    sample: int = 2000,
    random_state: int = 0,
) -> float:
    """Mean silhouette of the non-noise points, Euclidean, on at most `sample` of them.

    NaN when fewer than two clusters (or too few points) remain.
    """
    from sklearn.metrics import silhouette_score

    labels = np.asarray(labels)
    keep = np.flatnonzero(labels >= 0)
    if keep.size > sample:
        keep = keep[_sample(keep.size, sample, random_state)]
    lab = labels[keep]
    n_labels = np.unique(lab).size
    if n_labels < 2 or n_labels >= keep.size:
        return float("nan")
    return float(silhouette_score(np.asarray(reduced)[keep], lab, metric="euclidean"))


def relative_validity(mst: NDArray[np.float64], labels: NDArray[np.integer[Any]]) -> float:
    """HDBSCAN's relative validity of `labels` over a mutual-reachability spanning tree.

    The same computation as ``hdbscan.HDBSCAN.relative_validity_`` (a fast DBCV surrogate,
    comparable between settings on the same data), for any labelling of the tree's points.

    Parameters
    ----------
    mst : array (n - 1, 3)
        Spanning tree edges ``(from, to, mutual reachability distance)``.
    labels : array (n,)
        Cluster per point, ``-1`` for noise.

    Returns
    -------
    float
        At most 1 (higher is better); NaN when there is no cluster.
    """
    labels = np.asarray(labels)
    sizes = np.bincount(labels + 1) if labels.size else np.zeros(1, dtype=np.int64)
    cluster_size = sizes[1:]
    num_clusters = cluster_size.size
    if num_clusters == 0 or not cluster_size.any():
        return float("nan")
    total = labels.size
    edge_from = mst[:, 0].astype(np.intp)
    edge_to = mst[:, 1].astype(np.intp)
    edge_dist = mst[:, 2]
    label1, label2 = labels[edge_from], labels[edge_to]
    max_distance = edge_dist.max() if edge_dist.size else 0.0
    both_noise = (label1 < 0) & (label2 < 0)
    one_noise = (label1 < 0) ^ (label2 < 0)
    neither = ~both_noise & ~one_noise
    min_outlier_sep = edge_dist[one_noise].min() if one_noise.any() else np.inf
    dsc = np.zeros(num_clusters)
    dspc = np.full(num_clusters, np.inf)
    same = neither & (label1 == label2)
    diff = neither & (label1 != label2)
    if same.any():
        np.maximum.at(dsc, label1[same], edge_dist[same])
    if diff.any():
        np.minimum.at(dspc, label1[diff], edge_dist[diff])
        np.minimum.at(dspc, label2[diff], edge_dist[diff])
    min_outlier_sep = max_distance if min_outlier_sep == np.inf else min_outlier_sep
    correction = 2.0 * (max_distance if num_clusters > 1 else min_outlier_sep)
    dspc[np.isinf(dspc)] = correction
    denom = np.maximum(dspc, dsc)
    with np.errstate(invalid="ignore", divide="ignore"):
        v = np.where(denom > 0, (dspc - dsc) / np.where(denom > 0, denom, 1.0), 0.0)
    # Labels with no members (gaps left by merges) carry zero weight.
    return float(np.sum(cluster_size * v) / total)


@dataclass(frozen=True)
class ClusterMetrics:
    """Quality of a clustering and of its 2-D map.

    Attributes
    ----------
    n : int
        Points clustered.
    n_clusters : int
        Clusters found (noise excluded).
    noise_fraction : float
        Share of points labelled noise (``-1``).
    silhouette : float
        Mean silhouette of non-noise points on the clustered space (sampled); NaN if < 2
        clusters.
    relative_validity : float
        HDBSCAN's relative validity (DBCV surrogate); NaN for other clusterers.
    trustworthiness : float
        scikit-learn trustworthiness of the 2-D map (sampled); NaN without a map.
    knn_preservation : float
        Share of the `k` original-space neighbours kept among the `k` map neighbours; NaN
        without a map.
    reduction_trustworthiness : float
        Trustworthiness of the reduced space that was clustered; NaN without a reduction.
    k : int
        Neighbourhood size of the map measures.
    sample : int
        Points sampled for the map measures.
    """

    n: int
    n_clusters: int
    noise_fraction: float
    silhouette: float
    relative_validity: float
    trustworthiness: float
    knn_preservation: float
    reduction_trustworthiness: float
    k: int
    sample: int

    def to_dict(self) -> dict[str, Any]:
        """Fields as a plain dict."""
        return asdict(self)

    def to_frame(self) -> pl.DataFrame:
        """One-row frame of the fields."""
        return pl.DataFrame([self.to_dict()])

    def summary(self) -> str:
        """One line for the caption of a map."""
        return (
            f"{self.n_clusters} clusters, noise {self.noise_fraction:.1%}, silhouette "
            f"{self.silhouette:.2f}, relative validity {self.relative_validity:.2f}; map: "
            f"{self.knn_preservation:.0%} of {self.k}-NN kept, trustworthiness "
            f"{self.trustworthiness:.3f}"
        )
