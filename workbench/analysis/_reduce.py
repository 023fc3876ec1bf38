"""The reduction stage of clustering: UMAP or PCA presets, or any Reducer, through the cache.

:func:`_run_reducer` makes both the reduced space that is clustered and the 2-D map, reading
and writing :class:`~workbench.analysis._cache.ArrayCache` under a key naming the data and the
reducer's parameters (:func:`_describe`). Used by :mod:`workbench.analysis.cluster`.
:func:`_transform` maps new vectors through a fitted reducer the way :func:`_run_reducer` fed
it (``ClusterResult.assign``).
"""

from __future__ import annotations

import time
import warnings
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from .._validation import SKLEARN_METRIC, check_vectors
from ..errors import InvalidInputError, MissingDependencyError
from ..store.segment import unit
from ._cache import ArrayCache, params_key


@runtime_checkable
class Reducer(Protocol):
    """Anything with ``fit_transform(X) -> array (n, m)``: umap.UMAP, sklearn PCA, ..."""

    def fit_transform(self, X: Any, /) -> Any:  # noqa: D102
        ...


@runtime_checkable
class _Transformer(Protocol):
    """A fitted reducer that maps new rows: ``transform(X) -> array (n, m)``."""

    def transform(self, X: Any, /) -> Any: ...


@runtime_checkable
class _HasParams(Protocol):
    def get_params(self, deep: bool = ...) -> dict[str, Any]: ...


def _describe(component: Any, preset: dict[str, Any] | None) -> dict[str, Any] | None:
    """Parameters naming a component in cache keys, or None when they cannot be known."""
    if preset is not None:
        return preset
    if isinstance(component, _HasParams):
        params = component.get_params(deep=False)
        return {"class": f"{type(component).__module__}.{type(component).__qualname__}",
                "params": {k: repr(v) for k, v in sorted(params.items())}}
    return None


def _preset(
    name: str, *, n_components: int, n_neighbors: int, min_dist: float, metric: str,
    random_state: int, what: str,
) -> tuple[Reducer, dict[str, Any]]:
    if name == "umap":
        try:
            with warnings.catch_warnings():
                # umap-learn announces, on import, that TensorFlow (ParametricUMAP) is absent.
                warnings.filterwarnings("ignore", message="Tensorflow not installed",
                                        category=ImportWarning)
                import umap
        except ImportError as exc:
            raise MissingDependencyError("clustering needs umap-learn: pip install umap-learn"
                                         ) from exc
        umap_metric = SKLEARN_METRIC[metric]
        # n_jobs=1: a seeded UMAP runs single-threaded anyway (and warns otherwise).
        obj = umap.UMAP(n_components=n_components, n_neighbors=n_neighbors, min_dist=min_dist,
                        metric=umap_metric, random_state=random_state, n_jobs=1)
        return obj, {"kind": "umap", "n_components": n_components, "n_neighbors": n_neighbors,
                     "min_dist": min_dist, "metric": umap_metric, "random_state": random_state,
                     "version": umap.__version__}
    if name == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=n_components, random_state=random_state), {
            "kind": "pca", "n_components": n_components, "random_state": random_state,
            "normalised": metric != "l2sq"}
    raise InvalidInputError(f"{what}: expected 'umap', 'pca', None or an object with "
                            f"fit_transform, got {name!r}")


def _run_reducer(
    spec: Any, x: NDArray[np.float32], *, what: str, n_components: int, n_neighbors: int,
    min_dist: float, metric: str, random_state: int, cache: ArrayCache, digest: str,
    origin: dict[str, Any],
) -> tuple[NDArray[np.float32], dict[str, Any], float, bool, Any]:
    """Reduce `x` with a preset name or a Reducer, through the cache.

    Returns ``(array, params, seconds, hit, model)``; `model` is the fitted object, or None on a
    cache hit (the cache holds arrays only, no pickled models).
    """
    n, d = x.shape
    if isinstance(spec, str):
        if spec == "umap" and n <= n_neighbors:
            raise InvalidInputError(
                f"n_neighbors: expected fewer than the {n} selected rows, got {n_neighbors}; "
                "lower n_neighbors or select more rows"
            )
        n_components = min(n_components, d, n - 1) if spec == "pca" else n_components
        obj, preset = _preset(spec, n_components=n_components, n_neighbors=n_neighbors,
                              min_dist=min_dist, metric=metric, random_state=random_state,
                              what=what)
        if spec == "pca" and metric != "l2sq":
            x = unit(x)
    elif isinstance(spec, Reducer):
        obj, preset = spec, None
    else:
        raise InvalidInputError(
            f"{what}: expected 'umap', 'pca', None or an object with fit_transform, got "
            f"{type(spec).__name__}"
        )
    desc = _describe(obj, preset)
    key = params_key(what, digest, desc) if desc is not None else None
    if key is not None:
        hit = cache.load(key)
        if hit is not None and hit.shape[0] == n:
            return hit.astype(np.float32), desc or {}, 0.0, True, None
    t0 = time.perf_counter()
    out = check_vectors(obj.fit_transform(x), name=f"{what} output", allow_1d=False)
    seconds = time.perf_counter() - t0
    if out.shape[0] != n:
        raise InvalidInputError(f"{what}: expected {n} rows from fit_transform, got "
                                f"{out.shape[0]}")
    if key is not None:
        cache.save(key, out, {"stage": what, "params": desc, "data": digest, **origin,
                              "seconds": round(seconds, 3)})
    return out, desc or {"class": type(obj).__qualname__}, seconds, False, obj


def _transform(
    model: Any, params: dict[str, Any], x: NDArray[np.float32], *, what: str,
) -> NDArray[np.float32]:
    """`x` through the fitted `model`, prepared as :func:`_run_reducer` prepared its input.

    The PCA preset was fitted on unit vectors for an angular metric (``normalised``), so new
    rows are normalised the same way; UMAP and user reducers got the vectors as they were.
    """
    if not isinstance(model, _Transformer):
        raise InvalidInputError(
            f"result: the {what} ({type(model).__name__}) has no transform(); assigning new "
            "rows needs a reducer that can map them (UMAP, PCA, ...)")
    if params.get("kind") == "pca" and params.get("normalised"):
        x = unit(x)
    out = check_vectors(model.transform(x), name=f"{what} output", allow_1d=False)
    if out.shape[0] != x.shape[0]:
        raise InvalidInputError(f"{what}: expected {x.shape[0]} rows from transform, got "
                                f"{out.shape[0]}")
    return out
