"""Shared pieces of the command line: constants, input readers, one-line errors."""

from __future__ import annotations

import argparse
import contextlib
import inspect
import os
import re
import shutil
import socket
import textwrap
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from ..errors import InvalidInputError, MissingColumnError, WorkbenchError

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
#: File suffix -> polars reader of ``ingest --input``.
READERS: dict[str, Callable[..., pl.DataFrame]] = {
    ".parquet": pl.read_parquet,
    ".csv": pl.read_csv,
    ".jsonl": pl.read_ndjson,
    ".ndjson": pl.read_ndjson,
}
MODELS = ("minilm", "hashing")
#: The hashing embedder's dimension: MiniLM's, as in the demo, so the two are interchangeable.
HASHING_DIM = 384
#: Errors caused by the user's input, reported as one line. Polars raises these for a malformed
#: file, a missing column, or a --where expression that does not parse or does not type-check.
USER_ERRORS: tuple[type[BaseException], ...] = (
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
def _embedder(name: str, cache: bool | str | Path):  # noqa: ANN202 - returns an Embedder
    from ..embed import Hashing, MiniLM

    if name == "hashing":
        return Hashing(dim=HASHING_DIM, cache=cache)
    return MiniLM(cache=cache)


def _read_table(path: str | os.PathLike[str]) -> pl.DataFrame:
    """The rows of a Parquet, CSV or JSON-lines file, chosen by its suffix."""
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
    return reader(p)


def _check_column(columns: Sequence[str], name: str, *, option: str, what: str) -> str:
    if name not in columns:
        raise MissingColumnError(
            f"{option}: {what} has no column {name!r}; columns are {list(columns)}"
        )
    return name


def _text_column(schema: pl.Schema, name: str | None, *, what: str) -> str | None:
    """`name` if the metadata has it; by default ``text``, else the first string column."""
    if name is not None:
        return _check_column(schema.names(), name, option="--text", what=what)
    if "text" in schema:
        return "text"
    return next((c for c, t in schema.items() if t == pl.Utf8 and c != "id"), None)


def _where(expr: str | None) -> pl.Expr | None:
    """A SQL boolean expression as a polars expression (parsed, never evaluated as Python)."""
    if expr is None:
        return None
    try:
        return pl.sql_expr(expr)
    except (pl.exceptions.SQLInterfaceError, pl.exceptions.SQLSyntaxError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidInputError(
            f"--where: expected a SQL expression such as \"lang = 'en' AND year > 2020\", "
            f"got {expr!r} ({first})"
        ) from exc


def _fit(value: Any, width: int) -> str:
    """`value` on one line, cut to `width` characters with an ellipsis."""
    text = " ".join(str(value).split())
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def _message(exc: BaseException) -> str:
    """One line for `exc`: its first line (polars adds the expression on later lines)."""
    if isinstance(exc, OSError) and exc.strerror and exc.filename:
        return f"{exc.strerror}: {exc.filename}"
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


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
