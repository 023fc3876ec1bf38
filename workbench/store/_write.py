"""Write operations of :class:`~workbench.store.Store`: add, upsert, delete, compact."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from .._validation import (
    check_column,
    check_frame,
    check_ids,
    check_texts,
    check_unique,
    check_vectors,
)
from ..embed import Embedder, Fingerprint
from ..errors import (
    DuplicateIdError,
    InvalidInputError,
    ModelMismatchError,
)
from ._read import _gather, _rows_of
from ._schema import check_storable, conform, evolve
from ._snapshot import HIDDEN
from .keys import KeyArray
from .manifest import SEGMENTS_DIR
from .segment import write_meta, write_segment

if TYPE_CHECKING:
    from pathlib import Path

    from ._snapshot import Snapshot
    from .manifest import SegmentEntry
    from .segment import LoadedSegment
    from .store import Store

#: Column names the store uses itself (metadata, search results, internal row bookkeeping).
RESERVED = ("key", "query", "distance", "_seg", "_row", "_ord")


def _fingerprint_of(model: Any) -> Fingerprint | None:
    if model is None or isinstance(model, Fingerprint):
        return model
    if isinstance(model, str):
        return Fingerprint(name=model, version="", dim=0, weights_hash="", kind="external")
    if isinstance(model, Embedder):
        return model.fingerprint
    raise InvalidInputError(
        f"model: expected an Embedder, a Fingerprint or a model name, got {type(model).__name__}"
    )


def _same(a: Fingerprint, b: Fingerprint) -> bool:
    if a.kind == "external" or b.kind == "external":
        return a.name == b.name
    return a.same_model(b)


def _check_reserved(df: pl.DataFrame) -> None:
    for col in df.columns:
        if col in RESERVED:
            raise InvalidInputError(f"data: column {col!r} is reserved by the store; rename it")


def _split_ids(df: pl.DataFrame, id: str) -> tuple[list[str], pl.DataFrame]:  # noqa: A002
    """The ids in column `id` as strings (present, without nulls or repeats) and `df` without
    that column; a second ``id`` column beside ``id=`` is refused."""
    series = check_column(df, id, name="id")
    if series.null_count():
        raise InvalidInputError(f"id: expected no null ids in column {id!r}")
    ids = series.cast(pl.Utf8).to_list()
    check_unique(ids, name="id")
    rest = df.drop(id)
    if "id" in rest.columns:
        raise InvalidInputError(f"data: has both an 'id' column and id={id!r}; drop one")
    return ids, rest


class WriteMixin:
    """add / upsert / delete / compact; each call is one atomic commit."""

    def add(
        self: Store,
        data: Any,
        *,
        vectors: Any = None,
        text: str | None = None,
        id: str = "id",  # noqa: A002 - the documented argument name
        model: Any = None,
        progress: bool = True,
    ) -> KeyArray:
        """Add new rows in one atomic commit.

        Parameters
        ----------
        data : polars.DataFrame, pandas.DataFrame, dict of columns or list of dicts
            Metadata, one row per vector. Column `id` holds unique ids; if the default ``"id"``
            column is absent, ids are generated from the keys.
        vectors : array-like (n, dim) or str, optional
            The vectors, or the name of a list/array column of `data` holding them.
        text : str, optional
            Name of a text column to embed with the store's embedder (cached).
        id : str
            Name of the id column.
        model : Embedder, Fingerprint or str, optional
            The model that made `vectors`; must match the store's.
        progress : bool
            Show progress bars for embedding and indexing.

        Returns
        -------
        KeyArray
            The uint64 keys given to the new rows (a NumPy array that prints one short line).

        Raises
        ------
        InvalidInputError
            Bad vectors (dimension, NaN/inf, count), missing columns, reserved column names.
        DuplicateIdError
            Ids repeat in the batch or already exist (use :meth:`upsert`).
        ModelMismatchError
            `model` differs from the store's model.
        """
        return KeyArray.of(self._write(data, vectors=vectors, text=text, id=id, model=model,
                                       progress=progress, replace_existing=False))

    def upsert(
        self: Store,
        data: Any,
        *,
        vectors: Any = None,
        text: str | None = None,
        id: str = "id",  # noqa: A002
        model: Any = None,
        progress: bool = True,
    ) -> KeyArray:
        """Insert rows, replacing vector and metadata of ids already present (one commit).

        Takes the same arguments as :meth:`add`; the id column is required. Returns the keys
        of the rows written, as :meth:`add` does.
        """
        return KeyArray.of(self._write(data, vectors=vectors, text=text, id=id, model=model,
                                       progress=progress, replace_existing=True))

    def update(self: Store, data: Any, *, id: str = "id") -> int:  # noqa: A002
        """Change metadata of existing rows in one commit; vectors, keys and index stay.

        Each touched segment gets a new metadata file; its index and vectors are reused, so
        writing a label column over 100k rows costs a Parquet write, not an index rebuild.

        Parameters
        ----------
        data : polars.DataFrame, pandas.DataFrame, dict of columns or list of dicts
            The id column plus the columns to set (new columns are added; other rows get null).
        id : str
            Name of the id column.

        Returns
        -------
        int
            Rows updated.

        Raises
        ------
        UnknownIdError
            Some ids are not in the store (nothing is changed).
        InvalidInputError
            Reserved column names, null or repeated ids, or a column whose type conflicts.
        """
        self._check_writable()
        df = check_frame(data)
        check_storable(df)
        ids, df = _split_ids(df, id)
        df = df.with_columns(pl.Series("id", ids, dtype=pl.Utf8))
        _check_reserved(df)
        if df.width == 1:
            raise InvalidInputError("data: expected columns to set besides the id column")
        seg_dir = self.path / SEGMENTS_DIR
        with self.transaction():
            s = self._snap()
            rows = _rows_of(s, ids, name="id")
            # _rows_of keeps the order of `ids`, which is the order of df's rows
            updates = df.with_columns(rows.get_column("key"), rows.get_column("_seg")).drop("id")
            cols = [c for c in updates.columns if c not in ("key", "_seg")]
            schema = evolve(s.schema, updates.select(cols), existing=s.live)

            def set_columns(
                entry: SegmentEntry, seg: LoadedSegment, part: pl.DataFrame
            ) -> tuple[SegmentEntry, LoadedSegment, Path]:
                targets = {c: schema[c] for c in cols}
                meta, part = conform(seg.meta, targets), conform(part, targets)
                meta = meta.update(part, on="key", how="left", include_nulls=True)
                fe = write_meta(seg_dir, entry.id, meta)
                new_entry = replace(entry, meta=fe)
                return new_entry, replace(seg, entry=new_entry, meta=meta), seg_dir / fe.name

            self._stage_per_segment(updates, set_columns)
        return len(ids)

    def delete(self: Store, ids: Any) -> int:
        """Delete rows by id in one commit.

        Raises
        ------
        UnknownIdError
            Some ids are not in the store (nothing is deleted).
        """
        self._check_writable()
        wanted = check_ids(ids, name="ids")
        with self.transaction():
            rows = _rows_of(self._snap(), wanted)
            self._stage_tombstones(rows.get_column("key").to_numpy())
        return rows.height

    def compact(self: Store, *, progress: bool = True) -> None:
        """Merge all segments into one and purge deleted rows (one commit).

        usearch never frees removed nodes, so compaction is how deletions give back space.
        """
        self._check_writable()
        with self.transaction():
            s = self._snap()
            segs = s.manifest.segments
            if len(segs) <= 1 and all(x.deleted == 0 for x in segs):
                return
            if s.live.height == 0:
                self._stage(replace(s.manifest, segments=()), {})
                return
            meta = s.live.drop(*HIDDEN)
            entry = write_segment(
                self.path / SEGMENTS_DIR, meta.get_column("key").to_numpy(), _gather(s, s.live),
                meta, metric=self.metric, dtype=self.dtype, params=s.manifest.index_params,
                progress=progress,
            )
            self._stage_segment(entry, replace_all=True)

    # ------------------------------------------------------------------ helpers
    def _write(
        self: Store, data: Any, *, vectors: Any, text: str | None, id: str,  # noqa: A002
        model: Any, progress: bool, replace_existing: bool,
    ) -> NDArray[np.uint64]:
        self._check_writable()
        df = check_frame(data)
        _check_reserved(df)
        check_storable(df)
        ids: list[str] | None = None
        if id in df.columns or id != "id" or replace_existing:
            ids, df = _split_ids(df, id)  # absent default "id" on add: ids from the keys
        # Embedding (slow) happens before taking the write lock; the checks against the
        # store's rows happen under it, on the state the write is staged on.
        vecs, df = self._resolve_vectors(df, vectors=vectors, text=text, model=model,
                                         progress=progress)
        with self.transaction():
            s = self._snap()
            existing = (
                s.live.filter(pl.col("id").is_in(pl.Series(ids, dtype=pl.Utf8).implode()))
                if ids is not None else s.live.head(0)
            )
            if existing.height and not replace_existing:
                shown = ", ".join(repr(i) for i in existing.get_column("id").to_list()[:5])
                raise DuplicateIdError(
                    f"id: expected new ids, {existing.height} already in the store ({shown}); "
                    "use upsert() to replace them"
                )
            keys = _new_keys(s, df.height, generated=ids is None)
            if ids is None:
                ids = [str(k) for k in keys]
            meta = pl.concat(
                [pl.DataFrame({"key": keys, "id": pl.Series(ids, dtype=pl.Utf8)}), df],
                how="horizontal",
            )
            evolve(s.schema, meta, existing=s.live)  # refuse a type change before writing
            if existing.height:
                self._stage_tombstones(existing.get_column("key").to_numpy())
            entry = write_segment(
                self.path / SEGMENTS_DIR, keys, vecs, meta, metric=self.metric,
                dtype=self.dtype, params=s.manifest.index_params, progress=progress,
            )
            self._stage_segment(entry, next_key=int(keys[-1]) + 1)
        return keys

    def _resolve_vectors(
        self: Store, df: pl.DataFrame, *, vectors: Any, text: str | None, model: Any,
        progress: bool,
    ) -> tuple[NDArray[np.float32], pl.DataFrame]:
        if vectors is not None and text is not None:
            raise InvalidInputError("vectors, text: give one of them, not both")
        fp = _fingerprint_of(model)
        store_fp = self.model
        if fp is not None and (store_fp is None or not _same(fp, store_fp)):
            raise ModelMismatchError(
                f"model: the store holds vectors of "
                f"{'no recorded model' if store_fp is None else store_fp.describe()}, "
                f"got vectors of {fp.describe()}"
            )
        if text is not None:
            if self._embedder is None:
                raise InvalidInputError(
                    "text: this store has no embedder; create it with embedder=..., open it with "
                    "embedder=..., or pass vectors="
                )
            texts = check_column(df, text, name="text")
            if texts.dtype != pl.Utf8 or texts.null_count():
                raise InvalidInputError(
                    f"text: expected column {text!r} to hold non-null strings, got "
                    f"{texts.dtype} with {texts.null_count()} null(s)"
                )
            vecs = self._embedder.embed(check_texts(texts), progress=progress)
            vecs = check_vectors(vecs, dim=self.dim, name="embeddings")
        elif vectors is None:
            raise InvalidInputError(
                "vectors: expected an array (n, dim) or a column name, or text= naming a text "
                "column to embed"
            )
        else:
            if isinstance(vectors, str):
                col = check_column(df, vectors, name="vectors")
                try:
                    arr = np.asarray(col.to_list(), dtype=np.float32)
                except (TypeError, ValueError) as exc:
                    raise InvalidInputError(
                        f"vectors: column {vectors!r} must hold equal-length numeric lists"
                    ) from exc
                df = df.drop(vectors)
                vectors = arr
            vecs = check_vectors(vectors, dim=self.dim, name="vectors")
        if vecs.shape[0] != df.height:
            raise InvalidInputError(
                f"vectors: expected {df.height} rows (one per row of data), got {vecs.shape[0]}"
            )
        if self.metric == "cos":
            zero = ~vecs.any(axis=1)
            if zero.any():
                raise InvalidInputError(
                    f"vectors: cosine is undefined for zero vectors; row {int(np.argmax(zero))} "
                    "is all zeros"
                )
        return vecs, df


def _new_keys(s: Snapshot, n: int, *, generated: bool) -> NDArray[np.uint64]:
    """`n` fresh keys; for generated ids (``str(key)``) skip keys whose string is a live id."""
    start = s.manifest.next_key
    keys = np.arange(start, start + n, dtype=np.uint64)
    if not generated:
        return keys
    ids = s.live.get_column("id")
    numeric = ids.filter(ids.str.contains(r"^(0|[1-9][0-9]{0,18})$"))
    taken = numeric.cast(pl.UInt64, strict=False).drop_nulls().to_numpy()
    taken = taken[taken >= start]
    if taken.size == 0:
        return keys
    cand = np.arange(start, start + n + taken.size, dtype=np.uint64)
    return cand[~np.isin(cand, taken)][:n]
