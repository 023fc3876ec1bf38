"""Analyses over a store or vectors: pure functions returning frozen result dataclasses.

Clustering: :func:`cluster` (UMAP + HDBSCAN + a 2-D UMAP map, keywords, quality and map
distortion measures), :func:`recluster` (new HDBSCAN settings on the cached reduction), and the
editing verbs :func:`reassign_outliers`, :func:`merge_clusters`, :func:`rename_clusters`,
:func:`apply_labels`.

Deduplication: :func:`find_duplicates` (exact and near-duplicate groups from a cached kNN
self-join), :func:`calibrate_threshold`, :func:`fit_blend`, :func:`apply_dedup`.
"""

from __future__ import annotations

from ._cache import CacheWriteWarning
from ._dedup_text import DEFAULT_BLEND, DedupBlend, fit_blend
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
from .dedup import DedupResult, DedupWarning, find_duplicates
from .dedup_review import Calibration, apply_dedup, calibrate_threshold
from .drift import DriftResult, compute_drift
from .keywords import KeywordsSkippedWarning, class_tfidf, cluster_keywords
from .topics import TopicTree, at_level, cut, topic_tree

__all__ = [
    "DEFAULT_BLEND",
    "CacheWriteWarning",
    "Calibration",
    "ClusterMetrics",
    "ClusterResult",
    "Clusterer",
    "DedupBlend",
    "DedupResult",
    "DedupWarning",
    "DriftResult",
    "TopicTree",
    "KeywordsSkippedWarning",
    "Reducer",
    "apply_dedup",
    "at_level",
    "apply_labels",
    "calibrate_threshold",
    "class_tfidf",
    "cluster",
    "cluster_keywords",
    "compute_drift",
    "cut",
    "find_duplicates",
    "fit_blend",
    "knn_preservation",
    "merge_clusters",
    "reassign_outliers",
    "recluster",
    "relative_validity",
    "rename_clusters",
    "silhouette",
    "topic_tree",
    "trustworthiness",
]
