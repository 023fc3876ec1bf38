"""Read operations of :class:`~workbench.store.Store`: search, scan, vectors, get."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from .._validation import (
    QUANTIZED,
    check_ids,
    check_positive_int,
    check_texts,
    check_vectors,
    filter_frame,
)
from ..errors import CorruptStoreError, EmptyInputError, InvalidInputError, UnknownIdError
from . import _search
from ._snapshot import HIDDEN
from .segment import release_pages, unit

if TYPE_CHECKING:
    from ._snapshot import Snapshot
    from .store import Store

#: A filtered search scans the allowed rows of a segment exactly when rows x dim is at most
#: this. Measured (50k x 384, f16, batches of 200 queries, 2 cores): exact over 5k allowed rows
#: ran ~5,400 QPS against ~2,100 for oversampled HNSW at 10% selectivity; at 20% (10k rows) they
#: were even (1,800 vs 2,700); the HNSW pool needed grows as 1/selectivity, exact cost as rows.
FILTER_EXACT_CELLS = 4_000_000
#: Candidates per result re-ranked with full-precision vectors when rescoring.
DEFAULT_RESCORE = 4
#: The same for a ``b1`` (sign bit) index, whose hamming order is coarse: measured on 100k x 384
#: clustered vectors, the exact hamming top-40 held 0.90 of the true top-10, the top-100 0.976.
B1_RESCORE = 10


def _rescore_factor(rescore: bool | int | None, dtype: str) -> int:
    default = B1_RESCORE if dtype == "b1" else DEFAULT_RESCORE
    if rescore is None:
        return default if dtype in QUANTIZED else 0
    if rescore is True:
        return default
    if rescore is False:
        if dtype == "b1":
            raise InvalidInputError(
                "rescore: a 'b1' index holds sign bits only, so its candidates are always "
                "re-ranked; expected True, None or a factor >= 1, got False"
            )
        return 0
    if isinstance(rescore, int) and rescore >= 1:
        return int(rescore)
    raise InvalidInputError(f"rescore: expected True, False or a factor >= 1, got {rescore!r}")


class ReadMixin:
    """search / scan / vectors / get over the handle's snapshot."""

    def scan(self: Store) -> pl.LazyFrame:
        """All live rows' metadata (``key: u64, id: str``, user columns), ordered by key."""
        return self._snap().live.drop(*HIDDEN).lazy()

    def vectors(self: Store, ids: Any) -> NDArray[np.float32]:
        """Full-precision vectors of `ids`, in the order given.

        Raises
        ------
        UnknownIdError
            Some ids are not in the store.
        """
        wanted = check_ids(ids, name="ids")
        s = self._snap()
        return _gather(s, _rows_of(s, wanted))

    def fetch(
        self: Store, where: pl.Expr | None = None
    ) -> tuple[pl.DataFrame, NDArray[np.float32]]:
        """Metadata and full-precision vectors of all live rows, or of those matching `where`.

        Returns
        -------
        tuple of (polars.DataFrame, numpy.ndarray)
            The metadata (``key: u64, id: str``, user columns; ordered by key) and the float32
            vectors, row for row.

        Raises
        ------
        MissingColumnError
            `where` names a column the store does not have.
        """
        s = self._snap()
        rows = s.live if where is None else _filter(s, where)
        return rows.drop(*HIDDEN), _gather(s, rows)

    def get(self: Store, ids: Any) -> pl.DataFrame:
        """Metadata rows of `ids`, in the order given."""
        wanted = check_ids(ids, name="ids")
        return _rows_of(self._snap(), wanted).drop(*HIDDEN)

    def query_vectors(self: Store, query: Any) -> NDArray[np.float32]:
        """Queries as float32 vectors (n, dim): texts embedded with the store's embedder.

        Raises
        ------
        InvalidInputError
            Empty or blank text, no embedder for text, wrong dimension, NaN/inf.
        """
        if isinstance(query, str) or (
            isinstance(query, list | tuple) and query and all(isinstance(q, str) for q in query)
        ):
            texts = check_texts(query, name="query")
            if any(not t.strip() for t in texts):
                raise InvalidInputError("query: expected non-empty text, got an empty string")
            if self._embedder is None:
                raise InvalidInputError(
                    "query: text queries need an embedder; this store has none (pass vectors, "
                    "or open the store with embedder=...)"
                )
            return check_vectors(self._embedder.embed(texts, progress=False), dim=self.dim,
                                 name="query")
        if isinstance(query, list | tuple) and not query:
            raise EmptyInputError("query: expected a string, a list of strings or vectors, got []")
        return check_vectors(query, dim=self.dim, name="query")

    def search(
        self: Store,
        query: Any,
        *,
        k: int = 10,
        where: pl.Expr | None = None,
        exact: bool = False,
        rescore: bool | int | None = None,
    ) -> pl.DataFrame:
        """Nearest neighbours of one or more queries.

        Parameters
        ----------
        query : str, list of str, vector (dim,) or array (n, dim)
            Texts are embedded with the store's embedder.
        k : int
            Neighbours per query; at most ``len(store)`` when `where` is None.
        where : polars.Expr, optional
            Filter over the metadata; only matching rows are returned (hybrid search).
        exact : bool
            Brute force over the full-precision vectors instead of the HNSW index.
        rescore : bool or int, optional
            Re-rank ``k * factor`` index candidates with the full-precision vectors (``True``
            means factor 4, 10 for ``b1``). Default: on for ``i8`` and ``b1`` stores, whose
            quantized distances alone cap recall (``b1`` refuses False), off otherwise.

        Returns
        -------
        polars.DataFrame
            ``query: u32`` (row of the query), ``id: str``, ``distance: f32``, ``key: u64``,
            then the metadata columns; sorted by query then distance. A `where` matching
            fewer than `k` rows gives fewer rows (none when it matches nothing).

        Raises
        ------
        InvalidInputError
            Empty query, wrong dimension, bad `k`, or a `where` naming a missing column.
        """
        k = check_positive_int(k, name="k")
        factor = _rescore_factor(rescore, self.dtype)
        q = self.query_vectors(query)
        s = self._snap()  # one generation for the whole search, whatever commits meanwhile
        allowed = None if where is None else _filter(s, where)
        keys, dist = knn(s, q, k, allowed=allowed, exact=exact, rescore_factor=factor)
        return _result_frame(s, keys, dist)

    def recommend(
        self: Store,
        positive: Any,
        negative: Any = None,
        *,
        k: int = 10,
        where: pl.Expr | None = None,
        negative_weight: float = 0.5,
        rescore: bool | int | None = None,
    ) -> pl.DataFrame:
        """Rows like `positive` and unlike `negative` ("more like these, less like those").

        The query is the mean of the positive vectors minus `negative_weight` times the mean
        of the negative ones (Rocchio; vectors are normalised first for ``cos``), so a list of
        liked items works as a user profile. The input ids are never returned.

        Parameters
        ----------
        positive : id or list of ids
            Rows to move towards (at least one).
        negative : id or list of ids, optional
            Rows to move away from.
        k : int
            Number of recommendations.
        where : polars.Expr, optional
            Metadata filter the recommendations must satisfy.
        negative_weight : float
            Weight of the negative mean.
        rescore : bool or int, optional
            As in :meth:`search`.

        Returns
        -------
        polars.DataFrame
            Same schema as :meth:`search` (``query`` is 0).

        Raises
        ------
        UnknownIdError
            A positive or negative id is not in the store.
        InvalidInputError
            No positive ids, an id both positive and negative, or a profile of zero length.
        """
        pos = check_ids(positive, name="positive")
        neg = check_ids(negative, name="negative", allow_empty=True) if negative is not None else []
        both = sorted(set(pos) & set(neg))
        if both:
            raise InvalidInputError(
                f"negative: ids cannot be both positive and negative: {both[:5]}"
            )
        s = self._snap()
        p_vec = _gather(s, _rows_of(s, pos, name="positive"))
        n_vec = (_gather(s, _rows_of(s, neg, name="negative")) if neg
                 else np.zeros((0, self.dim), np.float32))
        if self.metric == "cos":
            p_vec = unit(p_vec)
            if len(n_vec):
                n_vec = unit(n_vec)
        profile = p_vec.mean(axis=0)
        if len(n_vec):
            profile = profile - float(negative_weight) * n_vec.mean(axis=0)
        if not np.isfinite(profile).all() or np.linalg.norm(profile) < 1e-12:
            raise InvalidInputError(
                "positive, negative: the profile vector is zero; use different examples"
            )
        exclude = ~pl.col("id").is_in(pl.Series(pos + neg, dtype=pl.Utf8).implode())
        cond = exclude if where is None else (where & exclude)
        return self.search(profile.astype(np.float32), k=k, where=cond, rescore=rescore)


def knn(
    s: Snapshot,
    q: NDArray[np.float32],
    k: int,
    *,
    allowed: pl.DataFrame | None = None,
    exact: bool = False,
    rescore_factor: int = 0,
) -> tuple[NDArray[np.uint64], NDArray[np.float32]]:
    """Top-`k` keys and distances (``(nq, k)``, ``inf`` where fewer were found) of queries
    `q` (float32, the store's dimension) over one snapshot.

    `allowed` (live rows with ``key``, ``_seg``, ``_row``, e.g. from :func:`_filter`) restricts
    the answers; without it `k` must not exceed the live rows.
    """
    nq = q.shape[0]
    metric = s.manifest.metric
    entries = s.manifest.segments
    thr = s.manifest.index_params["exact_threshold"]
    parts: list[tuple[NDArray[np.uint64], NDArray[np.float32]]] = []
    if allowed is None:
        n_live = s.live.height
        if k > n_live:
            raise InvalidInputError(
                f"k: expected at most {n_live} (the rows in the store), got {k}"
            )
        small = n_live <= thr
        for entry in entries:
            seg = s.segs[entry.id]
            if exact or small or entry.live <= thr:
                parts.append(_search.segment_exact(seg, q, k, metric=metric))
            else:
                parts.append(_search.segment_ann(seg, q, k, metric=metric,
                                                 rescore_factor=rescore_factor))
    else:
        if allowed.height == 0:
            return np.zeros((nq, 0), np.uint64), np.zeros((nq, 0), np.float32)
        allowed_keys = np.sort(allowed.get_column("key").to_numpy())
        counts = allowed.group_by("_seg").len()
        for seg_ord, n_allowed in counts.iter_rows():
            entry = entries[int(seg_ord)]
            seg = s.segs[entry.id]
            if exact or n_allowed <= thr or n_allowed * s.manifest.dim <= FILTER_EXACT_CELLS:
                rows = allowed.filter(pl.col("_seg") == seg_ord).get_column("_row")
                parts.append(_search.segment_exact(
                    seg, q, k, metric=metric, rows=rows.to_numpy().astype(np.int64)
                ))
            else:
                parts.append(_search.segment_ann(
                    seg, q, k, metric=metric, allowed=allowed_keys, n_allowed=int(n_allowed),
                    rescore_factor=rescore_factor,
                ))
    return parts[0] if len(parts) == 1 else _search.merge_topk(parts, k, nq)


def _rows_of(s: Snapshot, wanted: list[str], *, name: str = "ids") -> pl.DataFrame:
    """Live rows of the `wanted` ids in their order; :class:`UnknownIdError` names `name`."""
    order = pl.DataFrame({"id": pl.Series(wanted, dtype=pl.Utf8),
                          "_ord": np.arange(len(wanted))})
    rows = order.join(s.live, on="id", how="inner").sort("_ord").drop("_ord")
    if rows.height != len(wanted):
        missing = sorted(set(wanted) - set(rows.get_column("id").to_list()))
        raise UnknownIdError(
            f"{name}: expected ids present in the store, {len(missing)} are not: "
            + ", ".join(repr(m) for m in missing[:5])
        )
    return rows


def _filter(s: Snapshot, where: Any) -> pl.DataFrame:
    return filter_frame(s.live, where, what="store", hidden=HIDDEN)


def _gather(s: Snapshot, rows: pl.DataFrame) -> NDArray[np.float32]:
    """Full-precision vectors of `rows` (a frame with _seg and _row), in row order."""
    out = np.empty((rows.height, s.manifest.dim), dtype=np.float32)
    seg_ord = rows.get_column("_seg").to_numpy()
    row_ix = rows.get_column("_row").to_numpy().astype(np.int64)
    for o in np.unique(seg_ord):
        mask = seg_ord == o
        out[mask] = s.seg(int(o)).vectors[row_ix[mask]]
    return out


def iter_unit_vectors(s: Snapshot, rows: pl.DataFrame, chunk: int = 32_768
                      ) -> Iterator[tuple[int, NDArray[np.float32]]]:
    """`rows`' full-precision vectors scaled to unit length, `chunk` rows at a time:
    ``(first row, vectors)``. The vectors files' pages read are released after each chunk
    (a full pass would otherwise keep them all resident in the process)."""
    for lo in range(0, rows.height, chunk):
        part = rows[lo:lo + chunk]
        x = _gather(s, part)
        x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-30)
        for o in np.unique(part.get_column("_seg").to_numpy()).tolist():
            release_pages(s.seg(int(o)).vectors)
        yield lo, x


def live_positions(s: Snapshot, keys: NDArray[np.uint64]
                   ) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """Positions of `keys` in ``s.live`` (sorted by key) and whether each key is live."""
    pos = np.searchsorted(s.live_keys, keys)
    found = pos < s.live_keys.size
    found[found] = s.live_keys[pos[found]] == keys[found]
    return pos, found


def _result_frame(
    s: Snapshot, keys: NDArray[np.uint64], dist: NDArray[np.float32]
) -> pl.DataFrame:
    nq = keys.shape[0]
    valid = np.isfinite(dist)
    qrow = np.broadcast_to(np.arange(nq, dtype=np.uint32)[:, None], keys.shape)[valid]
    flat_keys = keys[valid]
    pos, found = live_positions(s, flat_keys)
    if not found.all():
        # Only a damaged index (opened with verify=False) can return a key the store does
        # not hold; never answer with another row's metadata.
        raise CorruptStoreError(
            f"search: an index of generation {s.manifest.generation} returned key "
            f"{int(flat_keys[~found][0])}, which the store does not hold: an index file is "
            "damaged; open the store with verify=True to find which"
        )
    meta = s.live[pos] if len(pos) else s.live.head(0)
    head = pl.DataFrame(
        {
            "query": pl.Series(qrow, dtype=pl.UInt32),
            "id": meta.get_column("id"),
            "distance": pl.Series(dist[valid], dtype=pl.Float32),
        }
    )
    return pl.concat([head, meta.drop("id", *HIDDEN)], how="horizontal")
