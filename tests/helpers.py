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


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of every row of `a` with every row of `b`."""
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    return a @ (b / np.linalg.norm(b, axis=1, keepdims=True)).T


def exact_neighbours(vectors: np.ndarray, queries: np.ndarray, k: int, metric: str) -> np.ndarray:
    """Brute-force top-`k` row indices of `vectors` per query under the store's `metric`."""
    if metric == "cos":
        d = 1 - cosine(queries, vectors)
    elif metric == "ip":
        d = 1 - queries @ vectors.T
    else:
        d = ((queries[:, None, :] - vectors[None, :, :]) ** 2).sum(-1)
    return np.argsort(d, axis=1, kind="stable")[:, :k]

