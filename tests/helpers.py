from __future__ import annotations

import numpy as np


def clustered(
    n: int, dim: int, *, centers: int = 20, noise: float = 0.15, seed: int = 0
) -> np.ndarray:
    """Normalised clustered float32 vectors (so HNSW recall is meaningful)."""
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centers, dim))
    x = c[rng.integers(0, centers, n)] + noise * rng.normal(size=(n, dim)) * np.sqrt(1)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)
