"""Compare index dtypes and dimension cuts on a store: memory, build time, speed and recall.

:func:`compare_vector_dtypes` builds one usearch HNSW index per dtype x dimension x reduction
over the store's vectors and measures each against exact float32 cosine search;
:func:`best_reduction` says which reduction (PCA or truncation) keeps more recall at each cut.
"""

from __future__ import annotations

# torch (and onnxruntime) before usearch, whichever module loads first (see _preload)
from .. import _preload  # noqa: F401  # isort: skip

import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
from numpy.typing import NDArray
from sklearn.decomposition import PCA
from tqdm.auto import tqdm
from usearch.index import Index

from .._kernels import gather_dots
from .._validation import DTYPES, check_choice, check_positive_int
from ..errors import EmptyInputError, InvalidInputError, MissingColumnError
from ..store.segment import build_index, index_form, to_index_form
from ..store.view import B1_RESCORE, DEFAULT_RESCORE, exact_topk

if TYPE_CHECKING:
    from ..store import Store

__all__ = ["REDUCTIONS", "best_reduction", "compare_vector_dtypes"]

#: Ways to cut the dimension: ``"pca"`` (project onto the top principal axes), ``"truncate"``
#: (keep the first coordinates, as for Matryoshka-trained models).
REDUCTIONS = ("pca", "truncate")
#: The PCA is fitted on a seeded sample of at most this many rows: 50k x 384 fits in ~1 s and
#: the top axes no longer move with more rows.
PCA_SAMPLE = 50_000
#: The default cuts; those not below a store's dimension are left out (named explicitly, they
#: are an error).
DEFAULT_DIMS: tuple[int | None, ...] = (None, 256, 128, 64)
_BITS = {"f32": 32, "f16": 16, "bf16": 16, "i8": 8, "b1": 1}

SCHEMA: dict[str, Any] = {
    "dtype": pl.Utf8,
    "index": pl.Utf8,
    "dim": pl.Int64,
    "reduce": pl.Utf8,
    "rescore": pl.Boolean,
    "rescore_factor": pl.Int64,
    "bytes_per_vector": pl.Int64,
    "index_mb": pl.Float64,
    "build_s": pl.Float64,
    "qps": pl.Float64,
    "recall_at_k": pl.Float64,
    "note": pl.Utf8,
}


def compare_vector_dtypes(
    store: Store,
    *,
    dtypes: Iterable[str] = ("f32", "f16", "bf16", "i8", "b1"),
    dims: Iterable[int | None] = DEFAULT_DIMS,
    reduce: Iterable[str] = ("pca", "truncate"),
    rescore: Iterable[bool | int] = (False, True),
    k: int = 10,
    queries: int = 1000,
    where: pl.Expr | None = None,
    random_state: int = 0,
    progress: bool = True,
) -> pl.DataFrame:
    """Memory, build time, speed and recall@k of each index dtype and dimension cut.

    For every dtype x dimension (x reduction, for a cut) an HNSW index is built over the store's
    live vectors with the store's own index parameters (connectivity, expansion) and searched
    with and without rescoring. The anchor row is exact float32 brute force (numpy) in full
    dimension. Everything is compared under cosine similarity on unit-length vectors, the
    measure ``i8`` and ``b1`` indexes keep.

    Queries are a seeded sample of the store's rows; each query's own row is excluded from both
    its results and its ground truth (every index finds a stored vector at distance 0, which
    would lift recall for free), so the store needs at least ``k + 1`` rows. Ground truth is
    the exact float32 cosine top-`k` in full dimension.

    Parameters
    ----------
    store : Store
        The store whose vectors are compared; it is only read.
    dtypes : iterable of {"f32", "f16", "bf16", "i8", "b1"}
        Index dtypes. ``b1`` keeps one sign bit per coordinate under the hamming metric.
    dims : iterable of int or None
        Dimensions; None (or the store's dimension) is the full dimension. Of the default
        cuts, those not below the store's dimension are left out.
    reduce : iterable of {"pca", "truncate"}
        How a cut dimension ``d`` is reached: ``"pca"`` projects onto the top ``d`` axes of a
        scikit-learn PCA fitted on at most 50,000 seeded rows (without subtracting the mean:
        that keeps the cosines of the original vectors, 0.998 against 0.976 recall@10 at 64 of
        384 dimensions here); ``"truncate"`` keeps the first ``d`` coordinates.
    rescore : iterable of bool or int
        False: the index's own order. True: re-rank ``k * factor`` candidates with the
        full-dimension float32 vectors (factor 4, 10 for ``b1``, as the store does); an int
        is the factor itself.
    k : int
        Neighbours per query.
    queries : int
        Number of query rows sampled from the store (all rows if it holds fewer).
    where : polars.Expr, optional
        Compare over the rows matching this metadata filter only, as in :meth:`Store.search`.
    random_state : int
        Seed of the query sample and the PCA sample.
    progress : bool
        Show a progress bar over the configurations.

    Returns
    -------
    polars.DataFrame
        One row per configuration, the exact anchor first: ``dtype: str``, ``index: str``
        (``"exact"`` or ``"hnsw"``), ``dim: i64`` (searched dimension), ``reduce: str`` (null
        at full dimension), ``rescore: bool``, ``rescore_factor: i64`` (0 without),
        ``bytes_per_vector: i64`` (the coordinates the index stores; rescoring also reads the
        float32 vectors the store keeps beside it), ``index_mb: f64`` (serialized index,
        graph included; for the anchor the float32 matrix), ``build_s: f64``, ``qps: f64``
        (query projection, search and rescoring of the whole query batch), ``recall_at_k:
        f64`` (mean share of the exact top-`k` found), ``note: str`` (why a row is special or
        skipped; a skipped row has null measures). Build time is measured once per index and
        repeated on its rescored row.

        Read it by trading ``recall_at_k`` against ``bytes_per_vector`` or ``qps``, e.g.
        ``df.filter(pl.col("recall_at_k") >= 0.95).sort("bytes_per_vector")``;
        :func:`best_reduction` compares the reductions dimension by dimension.

    Raises
    ------
    InvalidInputError
        An unknown dtype or reduction, a dimension below 1 or above the store's, a bad `k`,
        `queries` or rescore value, or a store holding `k` rows or fewer.
    EmptyInputError
        The store is empty, `where` matches no rows, or an argument lists nothing.
    MissingColumnError
        `where` names a column the store does not have.

    Examples
    --------
    >>> df = compare_vector_dtypes(store, dims=(None, 128), queries=500)  # doctest: +SKIP
    >>> df.select("dtype", "dim", "reduce", "rescore", "bytes_per_vector", "recall_at_k")
    ... # doctest: +SKIP
    """
    dtype_list = _check_list(dtypes, "dtypes", lambda v: check_choice(v, DTYPES, name="dtypes"))
    reductions = _check_list(reduce, "reduce",
                             lambda v: check_choice(v, REDUCTIONS, name="reduce"))
    factors = _check_list(rescore, "rescore", _check_rescore)
    full = store.dim
    if dims is DEFAULT_DIMS:
        dims = [d for d in DEFAULT_DIMS if d is None or d < full]
    cuts = _check_dims(dims, full)
    k = check_positive_int(k, name="k")
    n_queries = check_positive_int(queries, name="queries")

    _, x = store.fetch(where)
    n = x.shape[0]
    if n == 0:
        raise EmptyInputError("where: matches no rows of the store; nothing to compare"
                              if where is not None else "store: is empty; nothing to compare")
    if n <= k:
        raise InvalidInputError(
            f"k: expected at most {n - 1} (the {n} rows compared, less each query's own row), "
            f"got {k}"
        )
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-30)
    rng = np.random.default_rng(random_state)
    qrows = np.sort(rng.choice(n, size=min(n_queries, n), replace=False))
    q = x[qrows]
    params = store.index_params

    t0 = time.perf_counter()
    truth = _exact(x, q, qrows, k)
    exact_qps = len(q) / (time.perf_counter() - t0)
    rows: list[dict[str, Any]] = [_row(
        "f32", "exact", full, None, 0, bytes_per_vector=4 * full, index_mb=x.nbytes / 2**20,
        build_s=0.0, qps=exact_qps, recall=1.0,
        note="anchor: exact f32 brute force (numpy) in full dimension; recall 1.0 by "
             "definition; rescoring it would change nothing",
    )]

    plans: list[tuple[int, str | None]] = [(full, None)] if None in cuts else []
    plans += [(d, r) for d in cuts if d is not None for r in reductions]
    pca_dims = [d for d, r in plans if r == "pca"]
    pca = _fit_pca(x, max(pca_dims), rng, random_state) if pca_dims else None

    bar = tqdm(total=len(plans) * len(dtype_list) * len(factors), desc="compare_vector_dtypes",
               disable=not progress)
    with bar:
        for d, red in plans:
            if red == "pca" and pca is not None and d > pca.n_components_:
                for dtype in dtype_list:
                    for f in factors:
                        rows.append(_row(
                            dtype, "hnsw", d, red, _factor(f, dtype), note=(
                                f"skipped: PCA to {d} dimensions needs at least {d} rows, the "
                                f"sample held {pca.n_components_}"
                            )))
                        bar.update()
                continue
            project = _projection(red, d, pca)
            xd = project(x)
            for dtype in dtype_list:
                form = index_form("cos", dtype, params)
                t0 = time.perf_counter()
                index = build_index(np.arange(n, dtype=np.uint64), xd, metric="cos",
                                    dtype=dtype, params=params, progress=False)
                build_s = time.perf_counter() - t0
                for f in factors:
                    factor = _factor(f, dtype)
                    got, qps = _timed_search(index, form, project, x, qrows, k, factor)
                    rows.append(_row(
                        dtype, "hnsw", d, red, factor, bytes_per_vector=-(-d * _BITS[dtype] // 8),
                        index_mb=index.serialized_length / 2**20, build_s=build_s, qps=qps,
                        recall=_recall(got, truth), note=_note(dtype, d, red, factor, full),
                    ))
                    bar.update()
    return pl.DataFrame(rows, schema=SCHEMA)


def best_reduction(df: pl.DataFrame, *, by: Sequence[str] = ()) -> pl.DataFrame:
    """Which reduction keeps more recall at each cut dimension of a comparison.

    At each dimension only the configurations (dtype, rescore) measured with every reduction
    are compared, so the means cover the same indexes. The mean mixes dtypes: ``b1`` after
    PCA can lose most of its recall (its sign bits weigh the low-variance axes as much as the
    leading ones) and tip the verdict; ``by=("dtype",)`` gives one verdict per dtype.

    Parameters
    ----------
    df : polars.DataFrame
        A frame from :func:`compare_vector_dtypes` (``dtype``, ``dim``, ``reduce``,
        ``rescore``, ``recall_at_k``).
    by : sequence of {"dtype", "rescore"}
        Columns to give separate verdicts for, besides ``dim``.

    Returns
    -------
    polars.DataFrame
        One row per cut dimension (and `by` group), sorted: ``dim: i64``, the `by` columns,
        ``best: str`` (the reduction with the higher mean recall; ties go to the name first in
        alphabetical order), ``recall_<reduction>: f64`` per reduction (mean recall@k over the
        matched configurations), ``margin: f64`` (best minus runner-up; null with one
        reduction).

    Raises
    ------
    MissingColumnError
        `df` lacks one of the columns above.
    InvalidInputError
        `by` names another column.
    EmptyInputError
        `df` holds no measured row with a reduced dimension.

    Examples
    --------
    >>> best_reduction(compare_vector_dtypes(store, dims=(128, 64)))  # doctest: +SKIP
    >>> best_reduction(df, by=("dtype",)).filter(pl.col("dtype") == "i8")  # doctest: +SKIP
    """
    by = list(dict.fromkeys(check_choice(b, ("dtype", "rescore"), name="by")
                            for b in ([by] if isinstance(by, str) else by)))
    need = ["dtype", "dim", "reduce", "rescore", "recall_at_k"]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise MissingColumnError(
            f"df: expected a frame from compare_vector_dtypes with columns {need}, "
            f"missing {missing}"
        )
    cut = df.filter(pl.col("reduce").is_not_null() & pl.col("recall_at_k").is_not_null())
    if cut.height == 0:
        raise EmptyInputError(
            "df: expected measured rows with a reduced dimension (reduce not null); "
            "run compare_vector_dtypes with a cut in dims"
        )
    keys = ["dim", *by]
    cut = cut.filter(pl.col("reduce").n_unique().over(["dim", "dtype", "rescore"])
                     == pl.col("reduce").n_unique().over(keys))
    means = cut.group_by(*keys, "reduce").agg(pl.col("recall_at_k").mean())
    ranked = means.sort([*keys, "recall_at_k", "reduce"],
                        descending=[False] * len(keys) + [True, False])
    verdict = ranked.group_by(keys, maintain_order=True).agg(
        best=pl.col("reduce").first(),
        margin=pl.when(pl.len() > 1)
        .then(pl.col("recall_at_k").get(0) - pl.col("recall_at_k").get(1, null_on_oob=True)),
    )
    wide = means.with_columns(pl.format("recall_{}", "reduce").alias("reduce")).pivot(
        on="reduce", index=keys, values="recall_at_k", sort_columns=True
    )
    recalls = sorted(c for c in wide.columns if c not in keys)
    return verdict.join(wide, on=keys).select(*keys, "best", *recalls, "margin").sort(keys)


def _check_list(values: Iterable[Any], name: str, check: Callable[[Any], Any]) -> list[Any]:
    """`values` checked one by one, repeats dropped, order kept."""
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        values = [values]
    out = list(dict.fromkeys(check(v) for v in values))
    if not out:
        raise EmptyInputError(f"{name}: expected at least one value, got none")
    return out


def _check_rescore(value: Any) -> bool | int:
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer) and value >= 1:
        return int(value)
    raise InvalidInputError(f"rescore: expected True, False or a factor >= 1, got {value!r}")


def _check_dims(dims: Iterable[int | None], full: int) -> list[int | None]:
    def check(d: Any) -> int | None:
        if d is None:
            return None
        if isinstance(d, bool) or not isinstance(d, int | np.integer) or not 1 <= d <= full:
            raise InvalidInputError(
                f"dims: expected None or integers from 1 to {full} (the store's dimension), "
                f"got {d!r}"
            )
        return None if d == full else int(d)

    return _check_list(dims if dims is not None else [None], "dims", check)


def _factor(value: bool | int, dtype: str) -> int:
    if value is True:
        return B1_RESCORE if dtype == "b1" else DEFAULT_RESCORE
    return int(value)


def _fit_pca(x: NDArray[np.float32], d: int, rng: np.random.Generator,
             random_state: int) -> PCA:
    sample = x if x.shape[0] <= PCA_SAMPLE else x[np.sort(
        rng.choice(x.shape[0], size=PCA_SAMPLE, replace=False))]
    return PCA(n_components=min(d, *sample.shape), random_state=random_state).fit(sample)


def _projection(reduce: str | None, d: int, pca: PCA | None
                ) -> Callable[[NDArray[np.float32]], NDArray[np.float32]]:
    if reduce is None:
        return lambda v: v
    if reduce == "truncate":
        return lambda v: np.ascontiguousarray(v[:, :d])
    axes = np.ascontiguousarray(pca.components_[:d].T, dtype=np.float32)  # type: ignore[union-attr]
    return lambda v: v @ axes


def _exact(x: NDArray[np.float32], q: NDArray[np.float32], qrows: NDArray[np.int64],
           k: int) -> NDArray[np.int64]:
    """Exact cosine top-`k` rows per query (unit vectors), the query's own row left out."""
    pos, _ = exact_topk(q, x, k + 1, metric="ip")
    return _drop_self(pos, np.zeros(pos.shape), pos >= 0, qrows, k)


def _timed_search(
    index: Index, form: str, project: Callable[[NDArray[np.float32]], NDArray[np.float32]],
    x: NDArray[np.float32], qrows: NDArray[np.int64], k: int, factor: int,
) -> tuple[NDArray[np.int64], float]:
    """Results of rows `qrows` as queries (see :func:`_search`) and their queries per second.

    The time covers projecting, searching and rescoring the whole batch.
    """

    def run(qr: NDArray[np.int64]) -> NDArray[np.int64]:
        q = x[qr]
        return _search(index, to_index_form(project(q), form), x, q, qr, k, factor)

    run(qrows[:8])  # the first calls load the rescoring kernel (~1 s): not timed
    t0 = time.perf_counter()
    got = run(qrows)
    return got, len(qrows) / (time.perf_counter() - t0)


def _search(index: Index, iq: NDArray[Any], x: NDArray[np.float32], q: NDArray[np.float32],
            qrows: NDArray[np.int64], k: int, factor: int) -> NDArray[np.int64]:
    """Top-`k` rows per query from `index` (-1 where fewer), own row left out.

    With `factor`, ``k * factor`` candidates are re-ranked by exact cosine on the
    full-dimension vectors.
    """
    want = min(k * max(factor, 1) + 1, x.shape[0])
    m = index.search(iq, want)
    # one query comes back as Matches holding only the entries found, no counts
    counts = np.asarray(m.counts if hasattr(m, "counts") else [len(m.keys)]).reshape(-1, 1)
    keys = np.zeros((len(qrows), want), dtype=np.int64)
    dist = np.zeros((len(qrows), want), dtype=np.float64)
    found = np.asarray(m.keys).reshape(len(qrows), -1)
    keys[:, :found.shape[1]] = found
    dist[:, :found.shape[1]] = np.asarray(m.distances).reshape(len(qrows), -1)
    valid = np.arange(want)[None, :] < counts
    keys = np.where(valid, keys, 0)
    if factor:
        dist = -gather_dots(x, keys, q).astype(np.float64)
    return _drop_self(keys, dist, valid, qrows, k)


def _drop_self(keys: NDArray[np.int64], dist: NDArray[np.float64], valid: NDArray[np.bool_],
               qrows: NDArray[np.int64], k: int) -> NDArray[np.int64]:
    valid = valid & (keys != qrows[:, None])
    order = np.argsort(np.where(valid, dist, np.inf), axis=1, kind="stable")[:, :k]
    picked = np.take_along_axis(keys, order, axis=1)
    return np.where(np.take_along_axis(valid, order, axis=1), picked, -1)


def _recall(got: NDArray[np.int64], truth: NDArray[np.int64]) -> float:
    """Mean share of each query's true neighbours found (`got` rows are distinct, -1 unused)."""
    hit = (got[:, :, None] == truth[:, None, :]) & (got[:, :, None] >= 0)
    return float(hit.any(axis=2).sum(axis=1).mean() / truth.shape[1])


def _note(dtype: str, d: int, reduce: str | None, factor: int, full: int) -> str | None:
    if reduce is None and dtype == "f32" and factor:
        return (f"rescoring with the same f32 vectors: any gain comes from the larger "
                f"candidate pool (k*{factor})")
    if dtype == "b1" and reduce == "pca":
        return ("sign bits weigh every PCA axis alike, the low-variance (mostly noise) ones "
                "too" + ("" if factor else "; the store always rescores b1"))
    if dtype == "b1" and not factor:
        return "hamming order of sign bits alone; the store always rescores b1"
    if factor and reduce is not None:
        return f"candidates from {d} dimensions re-ranked in the full {full} (f32)"
    return None


def _row(dtype: str, index: str, dim: int, reduce: str | None, factor: int, *,
         bytes_per_vector: int | None = None, index_mb: float | None = None,
         build_s: float | None = None, qps: float | None = None, recall: float | None = None,
         note: str | None = None) -> dict[str, Any]:
    return {"dtype": dtype, "index": index, "dim": dim, "reduce": reduce,
            "rescore": factor > 0, "rescore_factor": factor,
            "bytes_per_vector": bytes_per_vector, "index_mb": index_mb, "build_s": build_s,
            "qps": qps, "recall_at_k": recall, "note": note}
