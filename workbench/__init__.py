"""Embedding Workbench: analytics for vector embeddings on a persistent usearch store.

Examples
--------
>>> import workbench as wb
>>> store = wb.Store.create("demo.store", embedder=wb.embed.Hashing(dim=64))  # doctest: +SKIP
>>> store.search("query text", k=5)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names below load on first use (see __getattr__)
    from . import analysis, compress, datasets, embed, errors
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
    from .compress import (
        compare_models,
        compare_vector_dtypes,
        distill,
        distill_classifier,
        quantize_model,
    )
    from .embed import Fingerprint
    from .store import Store

__version__ = "0.1.0"

#: Where each public name lives. ``import workbench`` loads none of it (no torch, polars or
#: usearch: the command line answers ``--help`` at once); a name loads its module on first
#: use. Whatever loads usearch loads torch first (see :mod:`workbench._preload`).
_LAZY: dict[str, str] = {
    **{name: f".{name}" for name in ("analysis", "compress", "datasets", "distributed",
                                       "embed", "errors", "widgets")},
    **{name: ".analysis" for name in (
        "Calibration", "ClusterResult", "DedupBlend", "DedupResult", "DriftResult",
        "apply_dedup", "apply_labels", "calibrate_threshold", "cluster", "compute_drift",
        "find_duplicates", "fit_blend", "merge_clusters", "reassign_outliers", "recluster",
        "rename_clusters")},
    **{name: ".analysis.search" for name in ("AnnEvaluation", "SemanticCache",
                                             "evaluate_ann")},
    **{name: ".compress" for name in ("compare_models", "compare_vector_dtypes", "distill",
                                      "distill_classifier", "quantize_model")},
    "Fingerprint": ".embed",
    "Store": ".store",
}

__all__ = [
    "__version__",
    "AnnEvaluation",
    "Calibration",
    "ClusterResult",
    "DedupBlend",
    "DedupResult",
    "DriftResult",
    "Fingerprint",
    "SemanticCache",
    "Store",
    "analysis",
    "apply_dedup",
    "apply_labels",
    "calibrate_threshold",
    "cluster",
    "compare_models",
    "compare_vector_dtypes",
    "compress",
    "compute_drift",
    "datasets",
    "distill",
    "distill_classifier",
    "distributed",
    "embed",
    "errors",
    "evaluate_ann",
    "find_duplicates",
    "fit_blend",
    "merge_clusters",
    "quantize_model",
    "reassign_outliers",
    "recluster",
    "rename_clusters",
    "widgets",
]


assert set(__all__) == {"__version__", *_LAZY}


def __getattr__(name: str) -> Any:
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module 'workbench' has no attribute {name!r}")
    module = importlib.import_module(where, __name__)
    value = module if where == f".{name}" else getattr(module, name)
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
