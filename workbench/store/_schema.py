"""Metadata schema evolution: a column's type may widen across writes, never change silently.

Each segment keeps the metadata types it was written with; the store's schema is the
widening of all of them, computed by polars' own supertype rules (a relaxed concat) and
accepted only when every value keeps its meaning: numbers to a wider number (int to float
only while every integer is exact in a float64), a struct to the union of its fields (each
field widened in turn), a list or array of a widened inner type, a column that was all-null
(``Null``) to any type. Anything else (an int column given strings, a bool given ints) is an
:class:`~workbench.errors.InvalidInputError` naming the column.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import polars as pl
from polars.datatypes import DataType

from ..errors import InvalidInputError

#: The largest integer magnitude a float64 holds exactly.
_EXACT_IN_F64 = 2**53


def supertype(a: DataType, b: DataType) -> DataType | None:
    """polars' supertype of two dtypes (what a relaxed concat would produce), or None."""
    try:
        return pl.concat(
            [pl.DataFrame(schema={"c": a}), pl.DataFrame(schema={"c": b})], how="vertical_relaxed"
        ).schema["c"]
    except pl.exceptions.PolarsError:
        return None


def _numeric(d: DataType) -> bool:
    return d.is_numeric() and d != pl.Boolean


def _is_widening(a: DataType, b: DataType) -> bool:
    """Whether values of both `a` and `b` keep their meaning in their supertype."""
    if a == b or a == pl.Null or b == pl.Null:
        return True
    if _numeric(a) and _numeric(b):
        return True
    if {a.base_type(), b.base_type()} <= {pl.String, pl.Categorical}:
        return True
    if isinstance(a, pl.List) and isinstance(b, pl.List):
        return _is_widening(a.inner, b.inner)
    if isinstance(a, pl.Array) and isinstance(b, pl.Array):
        return a.shape == b.shape and _is_widening(a.inner, b.inner)
    if isinstance(a, pl.Struct) and isinstance(b, pl.Struct):
        fa = {f.name: f.dtype for f in a.fields}
        return all(_is_widening(fa[f.name], f.dtype) for f in b.fields if f.name in fa)
    if isinstance(a, pl.Datetime) and isinstance(b, pl.Datetime):
        return a.time_zone == b.time_zone
    return False


def widen(name: str, have: DataType, new: DataType) -> DataType:
    """The type column `name` takes when values of `new` join values of `have`.

    Raises
    ------
    InvalidInputError
        The types do not widen into one another without changing values.
    """
    if have == new:
        return have
    sup = supertype(have, new) if _is_widening(have, new) else None
    if sup is None:
        raise InvalidInputError(
            f"data: column {name!r} holds {new}, but the store's column is {have}; a column "
            "may only widen (numbers to wider numbers, a struct to more fields, all-null to "
            "any type): convert the values, or use another column name"
        )
    return sup


def _int_to_float(have: DataType, sup: DataType) -> bool:
    return have.is_integer() and sup.is_float()


def check_exact(name: str, frames: Iterable[pl.DataFrame], sup: DataType) -> None:
    """Refuse an int-to-float widening that would round integers beyond 2**53."""
    for f in frames:
        if name not in f.columns or not _int_to_float(f.schema[name], sup):
            continue
        big = f.get_column(name).abs().max()
        if big is not None and int(big) > _EXACT_IN_F64:  # type: ignore[arg-type]
            raise InvalidInputError(
                f"data: column {name!r} would become {sup}, but it holds integers beyond "
                f"2**53 ({big}) that a float cannot hold exactly; keep the column integer"
            )


def evolve(
    store_schema: Mapping[str, DataType], new: pl.DataFrame, *, existing: pl.DataFrame
) -> dict[str, DataType]:
    """The store's schema after `new` joins it (raises if a column would change meaning).

    `existing` holds the store's current metadata (for the int-to-float exactness check).
    """
    out = unified([store_schema, new.schema])
    for name, sup in out.items():
        if name in store_schema and name in new.columns and sup != store_schema[name]:
            check_exact(name, (existing, new), sup)
    return out


def unified(schemas: Iterable[Mapping[str, DataType]]) -> dict[str, DataType]:
    """The widening of several segments' schemas (columns in order of first appearance)."""
    out: dict[str, DataType] = {}
    for schema in schemas:
        for name, dtype in schema.items():
            have = out.get(name)
            out[name] = dtype if have is None else widen(name, have, dtype)
    return out


def conform(df: pl.DataFrame, targets: Mapping[str, DataType]) -> pl.DataFrame:
    """`df` with the named columns cast to their widened `targets` (added as nulls if absent).

    A relaxed concat with an empty frame of the target types does the casting, because a
    plain ``cast`` refuses a struct with other fields (polars casts structs by position).
    """
    cols = dict(targets)
    missing = [c for c in cols if c not in df.columns]
    if missing:
        df = df.with_columns(pl.lit(None, dtype=cols[c]).alias(c) for c in missing)
    if all(df.schema[c] == t for c, t in cols.items()):
        return df
    empty = pl.DataFrame(schema={c: df.schema.get(c) if c not in cols else cols[c]
                                 for c in df.columns})
    out = pl.concat([empty, df], how="vertical_relaxed")
    if any(out.schema[c] != t for c, t in cols.items()):
        raise InvalidInputError(f"data: could not widen columns to {cols}")
    return out


def check_storable(df: pl.DataFrame, *, name: str = "data") -> None:
    """Refuse columns Parquet cannot hold (Python objects) before anything is written."""
    for col, dtype in df.schema.items():
        if dtype == pl.Object or (
            isinstance(dtype, pl.List | pl.Array | pl.Struct) and "Object" in str(dtype)
        ):
            raise InvalidInputError(
                f"{name}: column {col!r} holds Python objects ({dtype}); expected numbers, "
                "strings, dates, lists or structs that Parquet can store"
            )
