"""The workbench command: ingest files; search, cluster, deduplicate, drift-test or compress a
store; distill a smaller model; run the demo.

Progress bars go to stderr and results to stdout. Bad input (a missing file or column, an unknown
store, a --where expression that does not parse) ends with one line "workbench: error: <message>"
on stderr and exit status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from ._common import (
    EXIT_BROKEN_PIPE,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    MODELS,
    _describe,
    _message,
    _positive_int,
    _user_errors,
)

__all__ = ["build_parser", "main"]

#: The function of each subcommand, as "module:function" under workbench.cli. Imported only
#: when the command runs or its --help is printed, so that parsing (and every usage error)
#: loads neither polars nor the library's heavy dependencies.
COMMANDS = {
    "ingest": "ingest:ingest", "search": "jobs:search", "cluster": "jobs:cluster",
    "dedup": "jobs:dedup", "drift": "jobs:drift", "compress": "compress:compress",
    "distill": "compress:distill", "demo": "demo:demo", "info": "info:info",
    "notebooks": "demo:notebooks",
}


def _command(ref: str) -> Callable[[argparse.Namespace], int]:
    """The function named by a :data:`COMMANDS` value, imported now."""
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(f".{module}", __name__), name)


# ------------------------------------------------------------------------------------ parser
class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions as written (plain text already wrapped by _describe), wider options."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32)


class _CommandParser(argparse.ArgumentParser):
    """A subcommand's parser whose description, its function's docstring, loads on demand."""

    command: str | None = None

    def format_help(self) -> str:
        if self.description is None and self.command is not None:
            self.description = _describe(_command(self.command).__doc__)
        return super().format_help()


class _Version(argparse.Action):
    """``--version``: the package's version, imported only when asked for."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS,
                 default: str = argparse.SUPPRESS, help: str | None = None) -> None:  # noqa: A002
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        from .. import __version__

        print(f"{parser.prog} {__version__}")
        parser.exit()


def _subcommand(sub: Any, name: str, *, help: str,  # noqa: A002
                epilog: str | None = None) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help, epilog=epilog, formatter_class=_Formatter)
    p.command = COMMANDS[name]
    p.set_defaults(func=COMMANDS[name])
    return p


def _add_progress(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="do not draw progress bars on stderr")


def _add_ray(p: argparse.ArgumentParser, *, workers: str) -> Any:
    """--ray [ADDRESS] and --workers N, in their own group of the help; returns the group."""
    g = p.add_argument_group(
        "Ray", "run the job on a Ray cluster with workbench.distributed (pip install\n"
        "'workbench[distributed]'); the store must be on a filesystem every node sees")
    g.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                   help="run on Ray: the cluster at ADDRESS (HOST:PORT, or 'auto'); without "
                        "ADDRESS the one of $RAY_ADDRESS, else a new local cluster for this "
                        "run")
    g.add_argument("--workers", type=_positive_int, metavar="N",
                   help=f"{workers} (only with --ray; default: the cluster's CPUs)")
    return g


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``workbench`` command, with every subcommand.

    Returns
    -------
    argparse.ArgumentParser
        Parsed arguments carry ``func``, the subcommand's function.
    """
    parser = argparse.ArgumentParser(
        prog="workbench", description=_describe(__doc__),
        formatter_class=_Formatter,
        epilog="Run 'workbench COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action=_Version, help="print the version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=_CommandParser)

    p = _subcommand(sub, "ingest", help="embed a Parquet/CSV/JSONL file into a store",
                    epilog="examples:\n  workbench ingest --store data/stores/docs "
                           "--input docs.parquet --text body --id doc_id\n"
                           "  workbench ingest --store /shared/stores/docs --input "
                           "'/shared/docs/*.parquet' --text body --id doc_id --ray --workers 8")
    p.add_argument("--store", required=True, metavar="PATH",
                   help="store folder; created when it does not exist")
    p.add_argument("--input", required=True, metavar="FILE",
                   help="rows to add: a .parquet, .csv or .jsonl (.ndjson) file")
    p.add_argument("--text", required=True, metavar="COL", help="the column to embed")
    p.add_argument("--id", metavar="COL",
                   help="column of unique row ids, used to skip rows already in the store "
                        "(default: 'id')")
    p.add_argument("--model", choices=MODELS,
                   help="embedder of a new store (default: minilm); for an existing store it "
                        "must match the store's (default: the store's)")
    p.add_argument("--batch", type=_positive_int, default=10_000, metavar="N",
                   help="rows per commit; an interrupted run keeps the committed batches "
                        "(default: %(default)s); with --ray commits are whole segments: every "
                        "ceil(N / --rows-per-segment) segments")
    p.add_argument("--cache", metavar="DIR",
                   help="embedding cache folder (default: $WORKBENCH_CACHE_DIR or "
                        "~/.cache/workbench)")
    p.add_argument("--encoding", default="utf8", metavar="ENC",
                   help="text encoding of a CSV or JSON-lines file: utf8, utf8-lossy (bad "
                        "bytes become U+FFFD) or a Python codec such as latin-1 or cp1252 "
                        "(default: %(default)s)")
    p.add_argument("--parse-dates", action=argparse.BooleanOptionalAction, default=True,
                   help="store text columns whose every value is a date or datetime "
                        "(2025-10-01, 2025-10-01 12:30) as Date/Datetime columns, so that "
                        "drift --time and --where date comparisons work (default: on)")
    p.add_argument("--time-format", metavar="FMT",
                   help="strftime format of the date columns when they are not ISO, e.g. "
                        "%%d/%%m/%%Y (implies --parse-dates)")
    _add_progress(p)
    g = _add_ray(p, workers="embedding actors")
    g.add_argument("--rows-per-segment", type=_positive_int, metavar="N",
                   help="rows per segment the write tasks build (only with --ray; default: "
                        "100000)")

    p = _subcommand(sub, "search", help="nearest rows of a store to a text query",
                    epilog="examples:\n  workbench search --store data/stores/demo "
                           "\"read a file line by line\" -k 5\n"
                           "  workbench search --store data/stores/demo \"sort a list\" "
                           "--where \"kind = 'function'\" --json")
    p.add_argument("query", help="the text to search for")
    p.add_argument("--store", required=True, metavar="PATH", help="store folder")
    p.add_argument("-k", type=_positive_int, default=10, metavar="N",
                   help="number of results (default: %(default)s)")
    p.add_argument("--where", metavar="EXPR",
                   help="SQL filter over the metadata, e.g. \"lang = 'en' AND year > 2020\"")
    p.add_argument("--text", metavar="COL",
                   help="column shown in the table (default: 'text', else the first string "
                        "column)")
    p.add_argument("--columns", metavar="LIST",
                   help="comma-separated metadata columns shown between distance and text, "
                        "e.g. date,lang")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object per result (id, distance, key, metadata)")

    p = _subcommand(sub, "cluster", help="cluster a store, write clusters to Parquet",
                    epilog="examples:\n  workbench cluster --store data/stores/demo "
                           "--out reports/clusters.parquet --min-cluster-size 20\n"
                           "  workbench cluster --store /shared/stores/big --out clusters.parquet "
                           "--ray --sample 200000 --workers 16")
    p.add_argument("--store", required=True, metavar="PATH", help="store folder")
    p.add_argument("--out", required=True, metavar="FILE",
                   help="Parquet file to write, one row per clustered store row; the topics "
                        "(size, keywords) go next to it, to FILE's name + '.topics.csv'")
    p.add_argument("--topics", type=_positive_int, metavar="N",
                   help="number of topics to cut the topic hierarchy at (default: the level "
                        "with the best silhouette); needs a --text column")
    p.add_argument("--min-cluster-size", type=_positive_int, metavar="N",
                   help="HDBSCAN's smallest cluster (default: max(10, sqrt(rows) / 2))")
    p.add_argument("--min-samples", type=_positive_int, metavar="N",
                   help="HDBSCAN's density neighbourhood (default: 5)")
    p.add_argument("--text", metavar="COL",
                   help="text column for the keywords (default: 'text', else the first string "
                        "column)")
    p.add_argument("--where", metavar="EXPR", help="cluster only the rows matching this SQL filter")
    p.add_argument("--reducer", choices=("umap", "pca", "none"), default="umap",
                   help="reduction before clustering (default: %(default)s)")
    p.add_argument("--layout", choices=("umap", "pca", "none"), default="umap",
                   help="2-D map written to x, y (default: %(default)s)")
    p.add_argument("--random-state", type=int, default=0, metavar="SEED",
                   help="seed of UMAP and PCA (default: %(default)s)")
    p.add_argument("--show", type=_positive_int, default=20, metavar="N",
                   help="largest clusters to print (default: %(default)s)")
    p.add_argument("--no-cache", action="store_true",
                   help="do not cache reductions in the store's cache/cluster folder")
    _add_progress(p)
    g = _add_ray(p, workers="tasks that assign the rows outside the sample")
    g.add_argument("--sample", type=_positive_int, metavar="N",
                   help="rows the clustering is fitted on, a seeded sample (only with --ray; "
                        "default: every row, at most 1000000)")

    p = _subcommand(sub, "dedup", help="find near-duplicate rows, write groups to Parquet",
                    epilog="examples:\n  workbench dedup --store data/stores/demo "
                           "--out reports/duplicates.parquet\n"
                           "  workbench dedup --store data/stores/demo --out dups.parquet "
                           "--method cosine --threshold 0.95 --where \"kind = 'function'\"\n"
                           "  workbench dedup --store /shared/stores/big --out dups.parquet "
                           "--threshold 0.97 --ray --workers 16")
    p.add_argument("--store", required=True, metavar="PATH", help="store folder")
    p.add_argument("--out", required=True, metavar="FILE",
                   help="Parquet file to write: every scanned row with its group (null when "
                        "unique), is_representative, is_duplicate, score_to_representative, "
                        "exact")
    p.add_argument("--threshold", type=float, metavar="T",
                   help="score a pair needs, in (0, 1] (default: 0.5 for hybrid, a calibrated "
                        "probability; Otsu's threshold of the data for cosine and lexical)")
    p.add_argument("--method", choices=("hybrid", "cosine", "lexical"),
                   help="pair score: cosine blended with lexical features, the cosine alone, "
                        "or the token-sort ratio (default: hybrid; cosine with --ray or when "
                        "the store has no text column)")
    p.add_argument("-k", "--k", type=_positive_int, default=16, metavar="N",
                   help="neighbours searched per row (default: %(default)s)")
    p.add_argument("--where", metavar="EXPR",
                   help="deduplicate only the rows matching this SQL filter")
    p.add_argument("--text", metavar="COL",
                   help="text column for exact matching and the lexical check (default: "
                        "'text'; a store without it is deduplicated by cosine)")
    p.add_argument("--candidates", choices=("auto", "index", "lsh"), default="auto",
                   help="candidate pairs from the store's HNSW index, or from random-hyperplane "
                        "LSH (cosine only, with --threshold; recall >= 0.999 per pair at "
                        "threshold - 0.02); auto: LSH for --method cosine --threshold >= 0.95")
    p.add_argument("--grouping", choices=("representative", "components"),
                   default="representative",
                   help="groups around representatives that never chain, or every passing "
                        "pair joined transitively (default: %(default)s)")
    p.add_argument("--keep", choices=("first", "last", "longest"), default="first",
                   help="which row represents its group: the earliest added, the latest, or "
                        "the longest text (default: %(default)s)")
    p.add_argument("--show", type=_positive_int, default=10, metavar="N",
                   help="largest groups to print (default: %(default)s)")
    p.add_argument("--no-cache", action="store_true",
                   help="do not cache the kNN graph in the store's cache/dedup folder")
    _add_progress(p)
    _add_ray(p, workers="parallel LSH map tasks and reduce partitions")

    p = _subcommand(sub, "drift",
                    help="test time windows for drift, write an HTML report (exit 1: drift)",
                    epilog="exit status: 0 no window flagged, 1 drift flagged, 2 bad input\n"
                           "examples:\n  workbench drift --store data/stores/stream "
                           "--out reports/drift.html\n"
                           "  workbench drift --store PATH --time created --every 1w "
                           "--reference previous --out drift.html --json windows.json\n"
                           "  workbench drift --store /shared/stores/stream --out drift.html "
                           "--ray auto --workers 16")
    p.add_argument("--store", required=True, metavar="PATH", help="store folder")
    p.add_argument("--out", required=True, metavar="FILE",
                   help="HTML report to write (self-contained: opens offline)")
    p.add_argument("--json", metavar="FILE", help="also write the per-window table as JSON")
    p.add_argument("--time", default="timestamp", metavar="COL",
                   help="date or datetime column; a text column of dates is parsed "
                        "(default: %(default)s)")
    p.add_argument("--time-format", metavar="FMT",
                   help="strftime format to parse a text --time column with, e.g. %%d/%%m/%%Y "
                        "(default: ISO dates, inferred)")
    p.add_argument("--every", default="1mo", metavar="DURATION",
                   help="window length as a polars duration: 1d, 1w, 1mo, 3mo, 1y "
                        "(default: %(default)s)")
    p.add_argument("--reference", default="first", metavar="REF",
                   help="first, previous, rolling:N (the N windows before) or START..END "
                        "(ISO dates) (default: %(default)s)")
    p.add_argument("--methods", default="centroid,mmd,classifier,components", metavar="LIST",
                   help="comma-separated tests (default: %(default)s)")
    p.add_argument("--alpha", type=float, default=0.05, metavar="A",
                   help="family-wise error rate over the windows (default: %(default)s)")
    p.add_argument("--where", metavar="EXPR", help="only the rows matching this SQL filter")
    p.add_argument("--text", metavar="COL",
                   help="text column for keywords and examples (default: 'text' if present)")
    p.add_argument("--seed", type=int, default=0, metavar="N",
                   help="seed of the permutations and classifiers (default: %(default)s)")
    _add_progress(p)
    _add_ray(p, workers="map tasks over the store's segments, at most")

    p = _subcommand(sub, "compress",
                    help="vector dtypes and dimension cuts, or smaller models, against a store",
                    epilog="examples:\n  workbench compress --store data/stores/demo "
                           "--out reports/dtypes.parquet\n"
                           "  workbench compress --store data/stores/demo --models "
                           "onnx-int8,bf16 --student students/static --out models.csv")
    p.add_argument("--store", required=True, metavar="PATH", help="store folder")
    p.add_argument("--out", required=True, metavar="FILE",
                   help="full table to write: .parquet, .csv or .json")
    p.add_argument("--full", action="store_true",
                   help="also print the full table, not only the Pareto front")
    p.add_argument("--models", metavar="LIST",
                   help="compare these quantized copies of the store's model instead of "
                        "vector dtypes: comma-separated schemes among bf16, int8-dynamic, "
                        "int8-weight, int4-weight, onnx-int8")
    p.add_argument("--student", action="append", metavar="DIR",
                   help="a saved distilled student to compare too (repeatable)")
    p.add_argument("--dtypes", default="f32,f16,bf16,i8,b1", metavar="LIST",
                   help="index dtypes (default: %(default)s)")
    p.add_argument("--dims", default="full,256,128,64", metavar="LIST",
                   help="dimensions, 'full' for the store's; cuts by PCA and by truncation "
                        "(default: %(default)s)")
    p.add_argument("-k", type=_positive_int, default=10, metavar="N",
                   help="neighbours per query or text (default: %(default)s)")
    p.add_argument("--queries", type=_positive_int, default=1000, metavar="N",
                   help="stored rows searched as queries (default: %(default)s)")
    p.add_argument("--texts", type=_positive_int, default=1000, metavar="N",
                   help="stored texts each model embeds, a seeded sample (default: "
                        "%(default)s)")
    p.add_argument("--text", metavar="COL",
                   help="text column for the models (default: 'text', else the first string "
                        "column)")
    p.add_argument("--sts", choices=("stsb", "sick", "none"), default="stsb",
                   help="scored sentence pairs for sts_spearman, from the evaluation data "
                        "when present (default: %(default)s)")
    p.add_argument("--no-drift", action="store_true",
                   help="skip the planted-drift comparison of the models (the slowest part)")
    p.add_argument("--where", metavar="EXPR", help="only the rows matching this SQL filter")
    p.add_argument("--seed", type=int, default=0, metavar="N",
                   help="seed of the samples, PCA and k-means (default: %(default)s)")
    _add_progress(p)

    p = _subcommand(sub, "demo",
                    help="build the demo store, search it, write HTML reports")
    p.add_argument("--store", default="data/stores/demo", metavar="PATH",
                   help="demo store folder (default: %(default)s)")
    p.add_argument("--reports", default="reports", metavar="DIR",
                   help="report folder (default: %(default)s)")
    p.add_argument("--cache", default=os.environ.get("WORKBENCH_CACHE_DIR", "data/cache"),
                   metavar="DIR", help="embedding cache folder (default: %(default)s)")
    p.add_argument("--limit", type=int, default=2000, metavar="N",
                   help="paragraphs to index, 0 for all (default: %(default)s)")
    p.add_argument("--embedder", choices=MODELS, default="minilm",
                   help="embedding model (default: %(default)s)")
    p.add_argument("--notebooks", default="notebooks", metavar="DIR",
                   help="notebooks to execute into the report (default: %(default)s)")
    p.add_argument("--no-notebooks", action="store_true", help="do not execute the notebooks")

    p = _subcommand(sub, "distill",
                    help="train a small student model of a store's model on its texts",
                    epilog="examples:\n  workbench distill --store data/stores/demo --out "
                           "students/static\n  workbench compress --store data/stores/demo "
                           "--student students/static --out models.csv")
    p.add_argument("--store", required=True, metavar="PATH",
                   help="store folder; its model is the teacher, its texts the corpus")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="student folder to write (what compress --student reads)")
    p.add_argument("--student", choices=("static", "layers"), default="static",
                   help="a token table of --dim (fast, small) or the teacher with fewer "
                        "layers (default: %(default)s)")
    p.add_argument("--dim", type=_positive_int, default=256, metavar="N",
                   help="output dimension of a static student (default: %(default)s)")
    p.add_argument("--epochs", type=int, metavar="N",
                   help="passes over the texts (default: 4 static, 1 layers; 0: untrained)")
    p.add_argument("--texts", type=_positive_int, metavar="N",
                   help="train on a seeded sample of N stored texts (default: all)")
    p.add_argument("--text", metavar="COL",
                   help="text column (default: 'text', else the first string column)")
    p.add_argument("--where", metavar="EXPR", help="only the rows matching this SQL filter")
    p.add_argument("--seed", type=int, default=0, metavar="N",
                   help="seed of the sample and the training (default: %(default)s)")
    p.add_argument("--force", action="store_true", help="replace an existing --out folder")
    _add_progress(p)

    p = _subcommand(sub, "info", help="summarise a store: rows, model, segments, columns")
    p.add_argument("path", nargs="?", metavar="PATH", help="store folder (or --store PATH)")
    p.add_argument("--store", metavar="PATH", help="store folder (instead of PATH)")
    p.add_argument("--fast", action="store_true",
                   help="skip checksum verification (only for files you trust)")

    p = _subcommand(sub, "notebooks",
                    help="execute notebooks/ into reports/notebooks")
    p.add_argument("--notebooks", default="notebooks", metavar="DIR",
                   help="folder of .ipynb files (default: %(default)s)")
    p.add_argument("--reports", default="reports", metavar="DIR",
                   help="report folder; notebooks go to its notebooks/ (default: %(default)s)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``workbench`` command.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments, without the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        The exit status: 0, 2 after bad input (one line on stderr), 130 after Ctrl-C, 141
        when stdout was closed early.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    args = build_parser().parse_args(argv)
    try:
        return int(_command(args.func)(args))
    except KeyboardInterrupt:
        print("workbench: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader has gone: say nothing, and keep the interpreter's final flush of stdout
        # from raising again at exit (the recipe of Python's signal module documentation).
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except _user_errors() as exc:
        print(f"workbench: error: {_message(exc)}", file=sys.stderr)
        return EXIT_ERROR
