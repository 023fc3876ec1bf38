"""Assigning new rows to a fitted clustering: :meth:`ClusterResult.assign` and the slim copy
of a result that the distributed twin ships to its workers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from .._validation import check_positive_int, check_vectors
from ..errors import DimensionMismatchError, InvalidInputError
from ..store.segment import unit
from ._reduce import _transform
from .cluster import _ASSIGN_CHUNK, ASSIGN_COLUMNS

if TYPE_CHECKING:
    from .cluster import ClusterResult


def _used(stage: Mapping[str, Any]) -> bool:
    """Whether a reducer/layout stage ran (``{"kind": None}`` marks a skipped one)."""
    return "kind" not in stage or stage["kind"] is not None


def assign_rows(
    result: ClusterResult, data: Any, *, where: pl.Expr | None, write: bool,
    columns: Mapping[str, str | None] | None, k: int,
) -> pl.DataFrame:
    from ..store import Store
    from ..store.view import ROW_COLUMNS, StoreView

    state, params = result._state, result.params
    reduce_p, layout_p = params.get("reducer", {}), params.get("layout", {})
    if (state is None or "dim" not in params
            or (_used(reduce_p) and state.reducer_model is None)
            or (_used(layout_p) and state.layout_model is None)):
        raise InvalidInputError(
            "result: assign() needs the fitted reducer and layout, which this result does not "
            "hold (its reduction or map was read from the disk cache, or it was loaded from "
            "disk); re-run cluster(..., cache=False) to keep them")
    k = check_positive_int(k, name="k")
    if not isinstance(write, bool):
        raise InvalidInputError(f"write: expected True or False, got {write!r}")
    targets = _assign_columns(columns, layout=_used(layout_p))
    dim = int(params["dim"])
    if isinstance(data, Store | StoreView):
        if data.dim != dim:
            raise DimensionMismatchError(f"data: expected a store of dimension {dim} (the "
                                         f"result was fitted on it), got {data.dim}")
        if write and not isinstance(data, Store):
            raise InvalidInputError("write: needs a Store opened for writing, got a StoreView")
        if isinstance(data, Store):
            meta, vectors = data.fetch(where)
        else:
            rows = data.rows(where)
            meta, vectors = rows.drop(*ROW_COLUMNS), data.vectors(rows)
        head = meta.select(pl.col("key").cast(pl.UInt64), pl.col("id").cast(pl.Utf8))
    else:
        for arg, value in (("where", where), ("write", write or None)):
            if value is not None:
                raise InvalidInputError(f"{arg}: applies to a store's rows; got vectors")
        vectors = check_vectors(data, name="data", allow_1d=True)
        if vectors.shape[1] != dim:
            raise DimensionMismatchError(f"data: expected vectors of dimension {dim} (the "
                                         f"result was fitted on it), got {vectors.shape[1]}")
        head = pl.DataFrame({"row": pl.Series(np.arange(vectors.shape[0]), dtype=pl.UInt32)})
    n = vectors.shape[0]
    labels = np.empty(n, dtype=np.int32)
    confidence = np.empty(n, dtype=np.float32)
    xy = np.full((n, 2), np.nan, dtype=np.float32)
    if n:
        index = _VoteIndex(result.reduced, result.labels, k=k, random_state=state.random_state)
        for s0 in range(0, n, _ASSIGN_CHUNK):
            part = vectors[s0:s0 + _ASSIGN_CHUNK]
            if state.reducer_model is None:  # the vectors themselves were clustered
                red = part if params["metric"] == "l2sq" else unit(part)
            else:
                red = _transform(state.reducer_model, reduce_p, part, what="reducer")
            labels[s0:s0 + part.shape[0]], confidence[s0:s0 + part.shape[0]] = index.vote(
                np.ascontiguousarray(red, dtype=np.float32))
            if state.layout_model is not None:
                xy[s0:s0 + part.shape[0]] = _transform(state.layout_model, layout_p, part,
                                                       what="layout")
    names = result.clusters
    out = head.with_columns(
        pl.Series("cluster", labels, dtype=pl.Int32),
        pl.Series("cluster", labels, dtype=pl.Int32).replace_strict(
            names.get_column("cluster"), names.get_column("name"), default=None,
            return_dtype=pl.Utf8).alias("topic"),
        pl.Series("x", xy[:, 0], dtype=pl.Float32).fill_nan(None),
        pl.Series("y", xy[:, 1], dtype=pl.Float32).fill_nan(None),
        pl.Series("confidence", confidence, dtype=pl.Float32),
    )
    if write and n:
        data.update(out.select("id", *[pl.col(c).alias(t) for c, t in targets.items()]))
    return out


def _assign_columns(
    columns: Mapping[str, str | None] | None, *, layout: bool,
) -> dict[str, str]:
    """Output column -> store column for ``assign(write=True)``, checked."""
    if columns is not None and not isinstance(columns, Mapping):
        raise InvalidInputError(f"columns: expected a mapping of output column to store "
                                f"column, got {type(columns).__name__}")
    given = dict(columns or {})
    unknown = sorted(set(given) - set(ASSIGN_COLUMNS))
    if unknown:
        raise InvalidInputError(f"columns: expected keys among {list(ASSIGN_COLUMNS)}, got "
                                f"{unknown}")
    out: dict[str, str] = {}
    for col, default in ASSIGN_COLUMNS.items():
        target = given.get(col, default)
        if target is None or (col in ("x", "y") and not layout):
            continue
        if not isinstance(target, str) or not target or target in ("key", "id"):
            raise InvalidInputError(f"columns: expected a column name other than 'key' and "
                                    f"'id' for {col!r}, got {target!r}")
        out[col] = target
    if len(set(out.values())) != len(out):
        raise InvalidInputError(f"columns: expected distinct store columns, got {out}")
    return out


class _VoteIndex:
    """Nearest fitted points in the clustered space, and their labels' vote."""

    def __init__(self, fitted: NDArray[np.float32], labels: NDArray[np.int32], *, k: int,
                 random_state: int) -> None:
        from sklearn.neighbors import NearestNeighbors

        self.k = min(k, fitted.shape[0])
        self.labels = np.asarray(labels, dtype=np.int64)
        self.nn = NearestNeighbors(n_neighbors=self.k).fit(fitted)
        self.reach = np.inf
        if (self.labels < 0).any() and fitted.shape[0] > self.k:
            # Largest distance from a fitted point to its k-th neighbour (on a sample: the
            # query costs a k-NN search per point). Farther than that from every fitted point
            # is outside every dense region the fit saw.
            rng = np.random.default_rng(random_state)
            probe = rng.choice(fitted.shape[0], min(fitted.shape[0], 4096), replace=False)
            dist, _ = self.nn.kneighbors(fitted[probe], n_neighbors=self.k + 1)
            self.reach = float(dist[:, -1].max())

    def vote(self, x: NDArray[np.float32]) -> tuple[NDArray[np.int32], NDArray[np.float32]]:
        """Label (majority of the k nearest; ties to the nearer) and vote share of each row."""
        dist, idx = self.nn.kneighbors(x)
        lab = self.labels[idx] + 1  # noise -1 -> column 0
        width = int(self.labels.max()) + 2
        # Every vote weighs 1; the nearer neighbours' tiny extra only breaks ties.
        w = 1.0 + 1e-3 * (self.k - np.arange(self.k)) / self.k
        score = np.zeros((x.shape[0], width))
        np.add.at(score, (np.arange(x.shape[0])[:, None], lab), np.broadcast_to(w, lab.shape))
        win = np.argmax(score, axis=1)
        far = dist[:, 0] > self.reach
        win[far] = 0
        share = (lab == win[:, None]).sum(axis=1) / self.k
        return (win - 1).astype(np.int32), share.astype(np.float32)


def for_assign(result: ClusterResult) -> ClusterResult:
    """`result` keeping only what :meth:`ClusterResult.assign` reads (to ship to workers).

    Drops the original vectors, word counts, spanning tree and topic tree, and the points'
    columns other than ``key, id, cluster``; assigning gives the same frame as with `result`.
    """
    state = result._state
    slim = None if state is None else replace(
        state, vectors=None, terms=None, tree=None, topic_tree=None, fine_labels=None,
        fine_persistence=None, base_labels=None)
    return replace(result, points=result.points.select("key", "id", "cluster"), _state=slim)
