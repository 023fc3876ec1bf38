"""Analyses over a store or vectors: pure functions returning frozen result dataclasses.

Clustering: :func:`cluster` (UMAP + HDBSCAN + a 2-D UMAP map, keywords, quality and map
distortion measures), :func:`recluster` (new HDBSCAN settings on the cached reduction), and the
editing verbs :func:`reassign_outliers`, :func:`merge_clusters`, :func:`rename_clusters`,
:func:`apply_labels`.
"""

from __future__ import annotations

from ._cache import CacheWriteWarning
from .cluster import (
    Clusterer,
    ClusterResult,
    Reducer,
    apply_labels,
    cluster,
    merge_clusters,
    reassign_outliers,
    recluster,
    rename_clusters,
)
from .cluster_metrics import (
    ClusterMetrics,
    knn_preservation,
    relative_validity,
    silhouette,
    trustworthiness,
)
from .keywords import KeywordsSkippedWarning, class_tfidf, cluster_keywords

__all__ = [
    "CacheWriteWarning",
    "ClusterMetrics",
    "ClusterResult",
    "Clusterer",
    "KeywordsSkippedWarning",
    "Reducer",
    "apply_labels",
    "class_tfidf",
    "cluster",
    "cluster_keywords",
    "knn_preservation",
    "merge_clusters",
    "reassign_outliers",
    "recluster",
    "relative_validity",
    "rename_clusters",
    "silhouette",
    "trustworthiness",
]
