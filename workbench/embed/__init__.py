"""Embedders: all-MiniLM-L6-v2 offline, character n-gram hashing, any callable; with a cache."""

from __future__ import annotations

from typing import Any

from ..errors import InvalidInputError
from .base import BaseEmbedder, Embedder, Fingerprint
from .cache import EmbeddingCache, default_cache_dir
from .callable import FromCallable
from .hashing import Hashing
from .minilm import MiniLM

__all__ = [
    "BaseEmbedder",
    "Embedder",
    "EmbeddingCache",
    "Fingerprint",
    "FromCallable",
    "Hashing",
    "MiniLM",
    "default_cache_dir",
    "from_fingerprint",
]


def from_fingerprint(fp: Fingerprint, **kwargs: Any) -> Embedder | None:
    """Rebuild a built-in embedder from its fingerprint, or ``None`` for external models.

    Quantized variants and saved students (:mod:`workbench.compress`) are rebuilt too: a store
    made with one reopens with it.
    """
    params = dict(fp.params)
    if fp.kind == "minilm":
        return MiniLM(**kwargs)
    if fp.kind == "hashing":
        ngram = params.get("ngram_range", (3, 5))
        return Hashing(dim=int(params.get("dim", fp.dim)), ngram_range=(int(ngram[0]),
                       int(ngram[1])), **kwargs)
    if fp.kind == "quantized":
        from ..compress.quantize import rebuild_quantized

        return rebuild_quantized(fp, **kwargs)
    if fp.kind == "distilled":
        from ..compress.distill import rebuild_student

        return rebuild_student(fp, **kwargs)
    if fp.kind in ("callable", "external"):
        return None
    raise InvalidInputError(f"model: unknown embedder kind {fp.kind!r}")
