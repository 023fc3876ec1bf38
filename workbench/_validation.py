"""Input validation, done once, in one place, with messages that name the argument."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from .errors import (
    DimensionMismatchError,
    DuplicateIdError,
    EmptyInputError,
    InvalidInputError,
    MissingColumnError,
)

METRICS = ("cos", "ip", "l2sq")
#: The scikit-learn / umap-learn name of each store metric (``ip`` compared as cosine).
SKLEARN_METRIC = {"cos": "cosine", "ip": "cosine", "l2sq": "euclidean"}
DTYPES = ("f32", "f16", "bf16", "i8", "b1")
#: Index dtypes too coarse to rank alone (cosine-only; re-ranked with the float32 vectors), and
#: why they cannot hold ip/l2sq data.
QUANTIZED = {
    "i8": "usearch normalises vectors before 8-bit quantization, so norms are lost",
    "b1": "one sign bit per dimension keeps angles, not norms or positions",
}


def check_vectors(
    vectors: Any,
    *,
    dim: int | None = None,
    name: str = "vectors",
    allow_1d: bool = True,
) -> NDArray[np.float32]:
    """Return `vectors` as a C-contiguous float32 2-D array, or raise naming `name`."""
    if vectors is None:
        raise InvalidInputError(f"{name}: expected an array of shape (n, dim), got None")
    try:
        arr = np.asarray(vectors)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"{name}: expected an array of shape (n, dim) of numbers, got {type(vectors).__name__}"
        ) from exc
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number) or arr.dtype.kind == "c":
        raise InvalidInputError(
            f"{name}: expected real numbers, got an array of dtype {arr.dtype}"
        )
    if arr.ndim == 1 and allow_1d:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise InvalidInputError(f"{name}: expected a 2-D array (n, dim), got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise EmptyInputError(f"{name}: expected at least one vector, got an empty batch")
    if dim is not None and arr.shape[1] != dim:
        raise DimensionMismatchError(
            f"{name}: expected dimension {dim} (the store's), got vectors of dimension "
            f"{arr.shape[1]}"
        )
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    finite = np.isfinite(arr)
    if not finite.all():
        bad = np.flatnonzero(~finite.all(axis=1))
        raise InvalidInputError(
            f"{name}: expected finite values, found NaN or inf in {bad.size} row(s), "
            f"first at row {int(bad[0])}"
        )
    return arr


def check_ids(ids: Any, *, name: str = "ids", allow_empty: bool = False) -> list[str]:
    """Return `ids` as a list of strings without repeats, or raise naming `name`."""
    if isinstance(ids, (str, int, np.integer)):
        ids = [ids]
    if isinstance(ids, pl.Series):
        values: Sequence[Any] = ids.to_list()
    elif isinstance(ids, Iterable):
        values = list(ids)
    else:
        raise InvalidInputError(
            f"{name}: expected an id or a list of ids, got {type(ids).__name__}"
        )
    if not values and not allow_empty:
        raise EmptyInputError(f"{name}: expected at least one id, got none")
    out: list[str] = []
    for v in values:
        if v is None:
            raise InvalidInputError(f"{name}: expected ids, found a null")
        out.append(str(v))
    check_unique(out, name=name)
    return out


def check_unique(ids: Sequence[str], *, name: str = "id") -> None:
    """Raise :class:`DuplicateIdError` if `ids` repeat, naming a few of the repeats."""
    if len(set(ids)) == len(ids):
        return
    seen: set[str] = set()
    dups: list[str] = []
    for i in ids:
        if i in seen and i not in dups:
            dups.append(i)
        seen.add(i)
    shown = ", ".join(repr(d) for d in dups[:5])
    raise DuplicateIdError(
        f"{name}: expected unique ids within a batch, found {len(dups)} repeated: {shown}"
    )


def check_frame(data: Any, *, name: str = "data") -> pl.DataFrame:
    """Return `data` (polars, pandas, dict of columns or list of dicts) as a polars DataFrame."""
    if isinstance(data, pl.DataFrame):
        df = data
    elif isinstance(data, pl.LazyFrame):
        df = data.collect()
    elif isinstance(data, dict | list):
        try:
            df = pl.DataFrame(data)
        except Exception as exc:  # polars raises several types for ragged input
            raise InvalidInputError(
                f"{name}: expected a table (dict of equal-length columns or list of dicts): {exc}"
            ) from exc
    elif type(data).__module__.startswith("pandas"):
        df = pl.from_pandas(data)
    else:
        raise InvalidInputError(
            f"{name}: expected a polars/pandas DataFrame, a dict of columns or a list of dicts, "
            f"got {type(data).__name__}"
        )
    if df.height == 0:
        raise EmptyInputError(f"{name}: expected at least one row, got an empty table")
    return df


def check_column(df: pl.DataFrame, column: str, *, name: str) -> pl.Series:
    """Return column `column` of `df`, or raise naming the argument `name`."""
    if column not in df.columns:
        raise MissingColumnError(
            f"{name}: expected a column {column!r} in the data, found columns {df.columns}"
        )
    return df.get_column(column)


def check_choice(value: Any, choices: Sequence[str], *, name: str) -> str:
    """Raise unless `value` is one of `choices`."""
    if value not in choices:
        raise InvalidInputError(f"{name}: expected one of {list(choices)}, got {value!r}")
    return str(value)


def check_positive_int(value: Any, *, name: str) -> int:
    """Return `value` as an int > 0 or raise."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise InvalidInputError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)


def check_texts(texts: Any, *, name: str = "texts") -> list[str]:
    """Return `texts` as a non-empty list of strings without nulls."""
    if isinstance(texts, str):
        texts = [texts]
    if isinstance(texts, pl.Series):
        texts = texts.to_list()
    try:
        values = list(texts)
    except TypeError as exc:
        raise InvalidInputError(
            f"{name}: expected a string or a list of strings, got {type(texts).__name__}"
        ) from exc
    if not values:
        raise EmptyInputError(f"{name}: expected at least one text, got none")
    for i, t in enumerate(values):
        if not isinstance(t, str):
            raise InvalidInputError(
                f"{name}: expected strings, got {type(t).__name__} at position {i}"
            )
    return values


def filter_frame(
    df: pl.DataFrame, where: Any, *, what: str, hidden: Sequence[str] = ()
) -> pl.DataFrame:
    """Rows of `df` matching the polars expression `where`, with the errors users can act on.

    `what` names the metadata in messages ("store", "frame"); `hidden` columns are internal and
    not listed among the available ones.
    """
    if not isinstance(where, pl.Expr):
        raise InvalidInputError(f"where: expected a polars expression, got {type(where).__name__}")
    try:
        return df.filter(where)
    except pl.exceptions.ColumnNotFoundError as exc:
        cols = [c for c in df.columns if c not in hidden]
        # polars' own line lists every column, internal ones too: keep only its first clause
        reason = str(exc).splitlines()[0].split("; valid columns")[0]
        raise MissingColumnError(
            f"where: names a column the {what} does not have ({reason}); columns are {cols}"
        ) from exc
    except pl.exceptions.PolarsError as exc:
        raise InvalidInputError(f"where: could not be evaluated on the metadata: {exc}") from exc
