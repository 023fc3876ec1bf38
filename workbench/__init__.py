"""Embedding Workbench: analytics for vector embeddings on a persistent usearch store.

Examples
--------
>>> import workbench as wb
>>> store = wb.Store.create("demo.store", embedder=wb.embed.Hashing(dim=64))  # doctest: +SKIP
"""

from __future__ import annotations

from . import datasets, embed, errors
from .embed import Fingerprint
from .store import Store

__version__ = "0.1.0"

__all__ = ["Fingerprint", "Store", "__version__", "datasets", "embed", "errors"]
