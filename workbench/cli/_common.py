"""Shared pieces of the command line: constants, input readers, one-line errors.

Nothing here imports polars or the library at module level: ``workbench --help`` and argument
errors must not pay for them (polars and the jobs' imports load inside the functions).
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import io
import os
import re
import shutil
import socket
import textwrap
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import EmptyInputError, InvalidInputError, MissingColumnError, WorkbenchError

if TYPE_CHECKING:
    import polars as pl

DEMO_QUERIES = (
    "read a text file line by line",
    "sort a list of records by a key function",
    "what happens to an exception raised inside a finally clause",
    "match a regular expression and extract named groups",
    "run work in parallel threads and protect shared state with a lock",
)

#: Exit status of a command stopped by bad input (argparse's own usage errors use it too).
EXIT_ERROR = 2
#: Exit status after Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130
#: Exit status when stdout is closed early (``workbench search ... | head``): 128 + SIGPIPE.
EXIT_BROKEN_PIPE = 141
#: File suffix -> name of the polars reader of ``ingest --input``.
READERS: dict[str, str] = {
    ".parquet": "read_parquet",
    ".csv": "read_csv",
    ".jsonl": "read_ndjson",
    ".ndjson": "read_ndjson",
}
MODELS = ("minilm", "hashing")
#: The hashing embedder's dimension: MiniLM's, as in the demo, so the two are interchangeable.
HASHING_DIM = 384
#: Encodings polars decodes itself; any other is decoded by Python first.
POLARS_ENCODINGS = ("utf8", "utf8-lossy")


def _user_errors() -> tuple[type[BaseException], ...]:
    """Errors caused by the user's input, reported as one line.

    Polars raises these for a malformed file, a missing column, or a --where expression that
    does not parse or does not type-check. A function, so that polars loads only once an
    error is raised (``except _user_errors()`` is evaluated then).
    """
    import polars as pl

    return (
        WorkbenchError,
        OSError,
        pl.exceptions.ColumnNotFoundError,
        pl.exceptions.ComputeError,
        pl.exceptions.InvalidOperationError,
        pl.exceptions.NoDataError,
        pl.exceptions.SchemaError,
        pl.exceptions.SQLInterfaceError,
        pl.exceptions.SQLSyntaxError,
    )


# ------------------------------------------------------------------------------------ helpers
def _plural(n: int, word: str, plural: str | None = None) -> str:
    """``1 row``, ``2 rows``, ``1,234 rows``: `n` with thousands separators and `word`."""
    return f"{n:,} {word if n == 1 else plural or word + 's'}"


def _embedder(name: str, cache: bool | str | Path):  # noqa: ANN202 - returns an Embedder
    from ..embed import Hashing, MiniLM

    if name == "hashing":
        return Hashing(dim=HASHING_DIM, cache=cache)
    return MiniLM(cache=cache)


def _read_table(path: str | os.PathLike[str], *, encoding: str = "utf8",
                parse_dates: bool = True, time_format: str | None = None) -> pl.DataFrame:
    """The rows of a Parquet, CSV or JSON-lines file, chosen by its suffix.

    Parameters
    ----------
    path : path-like
        The file (``--input``).
    encoding : str
        Text encoding of a CSV or JSON-lines file: ``utf8``, ``utf8-lossy`` (invalid bytes
        become U+FFFD) or any Python codec name such as ``latin-1``.
    parse_dates : bool
        Turn string columns whose every value is a date or datetime into Date/Datetime
        columns (CSV: polars' ``try_parse_dates``; JSON lines: the same inference).
    time_format : str, optional
        A strftime format (``%d/%m/%Y``) the date columns are written in; implies
        `parse_dates`.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    EmptyInputError
        A CSV file with no bytes at all.
    InvalidInputError
        Unknown suffix, a folder, bytes that are not in `encoding`, an unknown encoding,
        --encoding with a Parquet file.
    """
    import polars as pl

    p = Path(path)
    reader = READERS.get(p.suffix.lower())
    if reader is None:
        raise InvalidInputError(
            f"--input: expected a .parquet, .csv or .jsonl file, got {p.name!r}"
        )
    if not p.exists():
        raise FileNotFoundError(f"--input: no such file: {p}")
    if not p.is_file():
        raise InvalidInputError(f"--input: expected a file, got the folder {p}")
    enc = encoding.lower().replace("_", "-")
    enc = {"utf-8": "utf8", "utf-8-lossy": "utf8-lossy"}.get(enc, enc)
    if reader == "read_parquet":
        if enc != "utf8":
            raise InvalidInputError(f"--encoding: only for .csv and .jsonl files (Parquet "
                                    f"text is always UTF-8), got {encoding!r} for {p.name}")
        return pl.read_parquet(p)
    source: Any = p
    if enc not in POLARS_ENCODINGS:
        try:
            source = io.BytesIO(p.read_bytes().decode(enc).encode("utf-8"))
        except LookupError as exc:
            raise InvalidInputError(f"--encoding: expected utf8, utf8-lossy or a Python codec "
                                    f"such as latin-1, got {encoding!r}") from exc
        except UnicodeDecodeError as exc:
            raise InvalidInputError(f"--input: {p} is not {encoding} text ({exc.reason} at "
                                    f"byte {exc.start:,}); pass its --encoding") from exc
        enc = "utf8"
    try:
        if reader == "read_csv":
            df = pl.read_csv(source, encoding=enc, try_parse_dates=parse_dates and not time_format)
        else:
            if enc == "utf8-lossy":
                source = io.BytesIO(p.read_bytes().decode("utf-8", errors="replace").encode())
            df = pl.read_ndjson(source)
    except pl.exceptions.NoDataError as exc:
        raise EmptyInputError(f"--input: {p} is an empty file (not even a header row); "
                              "expected a header and at least one row") from exc
    except pl.exceptions.ComputeError as exc:
        if "utf-8" not in str(exc).lower() and "utf8" not in str(exc).lower():
            raise
        raise InvalidInputError(
            f"--input: {p} holds an invalid UTF-8 sequence; pass its encoding, e.g. "
            "--encoding latin-1 (or --encoding utf8-lossy to replace the bad bytes)") from exc
    if time_format or (parse_dates and reader != "read_csv"):  # CSV: try_parse_dates did it
        df = _parse_date_columns(df, time_format)
    return df


def _parse_date_columns(df: pl.DataFrame, time_format: str | None) -> pl.DataFrame:
    """String columns whose every non-null value parses as a date (or datetime), converted."""
    import polars as pl

    out = {}
    for name, dtype in df.schema.items():
        if dtype != pl.Utf8 or name == "id":
            continue
        parsed = _parse_dates(df.get_column(name), time_format)
        if parsed is not None:
            out[name] = parsed
    return df.with_columns(**out) if out else df


def _parse_dates(col: pl.Series, time_format: str | None) -> pl.Series | None:
    """`col` (strings) as Date, else Datetime, when every non-null value parses; else None."""
    import polars as pl

    s = col.str.strip_chars()
    if s.drop_nulls().len() == 0:
        return None
    for target in (pl.Date, pl.Datetime("us")):
        try:
            got = (s.str.to_date(time_format, strict=False) if target == pl.Date
                   else s.str.to_datetime(time_format, time_unit="us", strict=False))
        except pl.exceptions.PolarsError:  # a format polars cannot infer or use
            continue
        if got.null_count() == s.null_count():
            if target == pl.Date and time_format and "%H" in time_format:
                continue  # a format with a time of day: keep it
            return got.alias(col.name)
    return None


def _check_column(columns: Sequence[str], name: str, *, option: str, what: str) -> str:
    if name not in columns:
        raise MissingColumnError(
            f"{option}: {what} has no column {name!r}; columns are {list(columns)}"
        )
    return name


def _text_column(schema: pl.Schema, name: str | None, *, what: str) -> str | None:
    """`name` if the metadata has it; by default ``text``, else the first string column."""
    import polars as pl

    if name is not None:
        return _check_column(schema.names(), name, option="--text", what=what)
    if "text" in schema:
        return "text"
    return next((c for c, t in schema.items() if t == pl.Utf8 and c != "id"), None)


#: A column compared with a quoted ISO date or datetime: ``date > '2025-10-01'``.
_IDENT = r'(?P<col>"[^"]+"|[A-Za-z_][A-Za-z0-9_]*)'
_OP = r"(?P<op><=|>=|<>|!=|==|=|<|>)"
_ISO = r"'(?P<lit>\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?)'"
_COMPARED = re.compile(rf"{_IDENT}\s*{_OP}\s*{_ISO}")
_COMPARED_REVERSED = re.compile(rf"{_ISO}\s*{_OP}\s*{_IDENT}")
_BETWEEN = re.compile(rf"{_IDENT}\s+(?P<op>(?:NOT\s+)?BETWEEN)\s+{_ISO}\s+AND\s+"
                      r"'(?P<lit2>\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?)'",
                      re.IGNORECASE)


def _typed_literal(lit: str) -> str:
    """``'2025-10-01'`` as ``DATE '2025-10-01'``; with a time of day as ``TIMESTAMP '...'``."""
    return f"DATE '{lit}'" if len(lit) == 10 else f"TIMESTAMP '{lit.replace('T', ' ')}'"


def _temporal_literals(expr: str, schema: pl.Schema) -> str:
    """`expr` with ISO date strings compared to Date/Datetime columns typed as SQL literals.

    Polars refuses ``date > '2025-10-01'`` (a string against a date); ``date > DATE
    '2025-10-01'`` is what it accepts. Only comparisons whose column is temporal in `schema`
    are rewritten, so ``name = '2025-10-01'`` on a string column keeps its meaning.
    """
    temporal = {n for n, t in schema.items() if t.is_temporal()}
    if not temporal:
        return expr

    def col(m: re.Match[str]) -> bool:
        return m.group("col").strip('"') in temporal

    expr = _BETWEEN.sub(lambda m: (f"{m.group('col')} {m.group('op')} "
                                   f"{_typed_literal(m.group('lit'))} AND "
                                   f"{_typed_literal(m.group('lit2'))}") if col(m)
                        else m.group(0), expr)
    expr = _COMPARED.sub(lambda m: f"{m.group('col')} {m.group('op')} "
                         f"{_typed_literal(m.group('lit'))}" if col(m) else m.group(0), expr)
    return _COMPARED_REVERSED.sub(lambda m: f"{_typed_literal(m.group('lit'))} "
                                  f"{m.group('op')} {m.group('col')}" if col(m)
                                  else m.group(0), expr)


def _where(expr: str | None, schema: pl.Schema | None = None) -> pl.Expr | None:
    """A SQL boolean expression as a polars expression (parsed, never evaluated as Python).

    With the store's `schema`, an ISO date string compared to a Date or Datetime column
    (``date > '2025-10-01'``) is read as a date (``date > DATE '2025-10-01'``).
    """
    import polars as pl

    if expr is None:
        return None
    sql = expr if schema is None else _temporal_literals(expr, schema)
    try:
        return pl.sql_expr(sql)
    except (pl.exceptions.SQLInterfaceError, pl.exceptions.SQLSyntaxError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidInputError(
            f"--where: expected a SQL expression such as \"lang = 'en' AND year > 2020\", "
            f"got {expr!r} ({first})"
        ) from exc


def _split(value: str, *, option: str) -> list[str]:
    """A comma-separated option value as its non-empty items."""
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise InvalidInputError(f"{option}: expected a comma-separated list, got {value!r}")
    return items


def _fit(value: Any, width: int) -> str:
    """`value` on one line, cut to `width` characters with an ellipsis."""
    text = " ".join(str(value).split())
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def _message(exc: BaseException) -> str:
    """One line for `exc`: its first line (polars adds the expression on later lines).

    Polars' refusal to compare a date column with a string says what to write instead.
    """
    if isinstance(exc, OSError) and exc.strerror and exc.filename:
        return f"{exc.strerror}: {exc.filename}"
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    first = lines[0] if lines else type(exc).__name__
    if "compare 'date/datetime/time' to a string" in first:
        return ("--where: a date or datetime column is compared with text that is not an "
                "ISO date; write the date as DATE '2025-10-01' or TIMESTAMP "
                "'2025-10-01 12:00:00' (polars: " + first + ")")
    return first


def _describe(doc: str | None) -> str:
    """Plain-text description for ``--help``: a docstring's paragraphs before its sections.

    Inline reST (double backquotes, ``:func:`` roles) is stripped and each paragraph is
    wrapped to the terminal, as RawDescriptionHelpFormatter prints it as given.
    """
    doc = inspect.cleandoc(doc or "")
    doc = re.split(r"\n\S[^\n]*\n-{3,}\n", "\n" + doc)[0]  # drop "Parameters\n-----" onwards
    doc = re.sub(r":[a-z]+(?::[a-z]+)?:`~?([^`]+)`", r"\1", doc).replace("``", "")
    doc = re.sub(r"`([^`]+)`", r"\1", doc)
    width = min(shutil.get_terminal_size().columns, 100) - 2
    paragraphs = [" ".join(p.split()) for p in doc.strip().split("\n\n") if p.strip()]
    return "\n\n".join(textwrap.fill(p, width, break_on_hyphens=False) for p in paragraphs)


def _positive_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return n




# ------------------------------------------------------------------------------------ --ray
#: Options that only the Ray jobs read, by their argparse dest.
RAY_ONLY = {"workers": "--workers", "sample": "--sample",
            "rows_per_segment": "--rows-per-segment"}
#: Argument names in workbench.distributed's error messages -> the options that set them.
RAY_OPTIONS = {"source": "--input", "text": "--text", "id": "--id", "embedder": "--model",
               "workers": "--workers", "address": "--ray", "sample": "--sample",
               "rows_per_segment": "--rows-per-segment"}
#: Seconds to wait for a --ray HOST:PORT to accept a connection.
ADDRESS_TIMEOUT_S = 5.0


def _check_ray(args: argparse.Namespace) -> bool:
    """Whether the job runs on Ray (--ray); a Ray-only option without it is an input error."""
    if args.ray is None:
        for dest, option in RAY_ONLY.items():
            if getattr(args, dest, None) is not None:
                raise InvalidInputError(
                    f"{option}: only with --ray (it sizes the Ray job); add --ray to run "
                    f"'workbench {args.command}' on a Ray cluster, or leave {option} out")
    return args.ray is not None


def _check_address(address: str | None) -> None:
    """A HOST:PORT that nothing listens on, as an error (Ray would retry it for minutes)."""
    if not address or "://" in address or address in ("auto", "local"):
        return
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise InvalidInputError(f"--ray: expected HOST:PORT or 'auto', got {address!r}")
    try:
        with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)),
                                      timeout=ADDRESS_TIMEOUT_S):
            pass
    except OSError as exc:
        raise InvalidInputError(f"--ray: no Ray cluster answers at {address} "
                                f"({exc.strerror or type(exc).__name__})") from exc


@contextlib.contextmanager
def _on_ray(args: argparse.Namespace) -> Iterator[Any]:
    """``workbench.distributed``, connected to the cluster of --ray.

    Imported here only, so that the jobs without --ray never load Ray. Errors of the
    distributed layer that name one of its arguments are reworded to name the option instead
    (``source: ...`` -> ``--input: ...``).
    """
    from .. import distributed as wd

    try:
        # --ray alone: RAY_ADDRESS's cluster, or a new local one (stopped when the process
        # exits); an address: that cluster.
        _check_address(args.ray or os.environ.get("RAY_ADDRESS") or None)
        wd.connect(args.ray or None)
        yield wd
    except WorkbenchError as exc:
        if len(exc.args) == 1 and isinstance(exc.args[0], str):
            head, sep, rest = exc.args[0].partition(": ")
            if sep and head in RAY_OPTIONS:
                exc.args = (f"{RAY_OPTIONS[head]}: {rest}",)
        raise
