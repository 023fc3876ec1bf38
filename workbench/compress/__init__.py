"""Compression lab: smaller vectors, smaller models, and what each costs downstream.

- :func:`compare_vector_dtypes`: bytes per vector, index size, build time, QPS and recall@k of
  each index dtype x dimension cut (PCA or truncation) x rescoring on a store;
  :func:`best_reduction` says which reduction keeps more recall at each cut.
- :func:`quantize_model`: bf16 / int8 / int4 / ONNX int8 copies of a torch embedder, each with
  its own fingerprint (a store keeps them apart); :func:`quantization_support` says which
  schemes run on this machine.
- :func:`distill`: a layer-subset transformer or a static token-table student trained on the
  teacher's embeddings, saved as safetensors + JSON.
- :func:`distill_classifier`: soft-label knowledge distillation of a classifier head.
- :func:`compare_models`: size, speed, STS Spearman and the downstream agreement (neighbours,
  clusters, near-duplicate pairs, drift flags) of each variant with its teacher;
  :func:`pareto_front` marks the variants no other beats on both cost and quality.
"""

from __future__ import annotations

from .compare import compare_models, pareto_front
from .distill import StudentEmbedder, distill, rebuild_student
from .kd import KDResult, distill_classifier
from .quantize import (
    SCHEMES,
    QuantizedEmbedder,
    UnsupportedSchemeError,
    quantization_support,
    quantize_model,
    rebuild_quantized,
)
from .vectors import REDUCTIONS, best_reduction, compare_vector_dtypes

__all__ = [
    "REDUCTIONS",
    "SCHEMES",
    "KDResult",
    "QuantizedEmbedder",
    "StudentEmbedder",
    "UnsupportedSchemeError",
    "best_reduction",
    "compare_models",
    "compare_vector_dtypes",
    "distill",
    "distill_classifier",
    "pareto_front",
    "quantization_support",
    "quantize_model",
    "rebuild_quantized",
    "rebuild_student",
]
