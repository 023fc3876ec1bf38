"""Embedding Workbench: analytics for vector embeddings on a persistent usearch store.

Examples
--------
>>> import workbench as wb
>>> store = wb.Store.create("demo.store", embedder=wb.embed.Hashing(dim=64))  # doctest: +SKIP
>>> store.search("query text", k=5)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

# First, before anything loads usearch: torch and onnxruntime (see workbench._preload).
from . import _preload  # noqa: F401  # isort: skip
from . import analysis, datasets, embed, errors
from .analysis import (
    Calibration,
    ClusterResult,
    DedupBlend,
    DedupResult,
    DriftResult,
    apply_dedup,
    apply_labels,
    calibrate_threshold,
    cluster,
    compute_drift,
    find_duplicates,
    fit_blend,
    merge_clusters,
    reassign_outliers,
    recluster,
    rename_clusters,
)
from .analysis.search import AnnEvaluation, SemanticCache, evaluate_ann
from .embed import Fingerprint
from .store import Store

__version__ = "0.1.0"

__all__ = [
    "AnnEvaluation",
    "Calibration",
    "ClusterResult",
    "DedupBlend",
    "DedupResult",
    "DriftResult",
    "Fingerprint",
    "SemanticCache",
    "Store",
    "__version__",
    "analysis",
    "apply_dedup",
    "apply_labels",
    "calibrate_threshold",
    "cluster",
    "compute_drift",
    "datasets",
    "embed",
    "errors",
    "evaluate_ann",
    "find_duplicates",
    "fit_blend",
    "merge_clusters",
    "reassign_outliers",
    "recluster",
    "rename_clusters",
    "widgets",
    "compress",
    "distributed",
    "compare_models",
    "compare_vector_dtypes",
    "distill",
    "distill_classifier",
    "quantize_model",
]

#: The compression lab's entry points, loaded with :mod:`workbench.compress` on first use.
_COMPRESS = ("compare_models", "compare_vector_dtypes", "distill", "distill_classifier",
             "quantize_model")


def __getattr__(name: str) -> Any:
    # The widgets import ipywidgets and the library; load them only when asked for, so that
    # the library itself never depends on its views.
    if name in ("widgets", "compress", "distributed"):
        return importlib.import_module(f".{name}", __name__)
    if name in _COMPRESS:
        return getattr(importlib.import_module(".compress", __name__), name)
    raise AttributeError(f"module 'workbench' has no attribute {name!r}")
