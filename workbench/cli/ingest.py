"""``workbench ingest``: embed the rows of a file into a store."""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInputError, MissingColumnError
from ._common import (
    EXIT_ERROR,
    _check_column,
    _check_ray,
    _embedder,
    _on_ray,
    _plural,
    _read_table,
)

if TYPE_CHECKING:
    import numpy as np
    import polars as pl
    from numpy.typing import NDArray

    from ..store import Store

#: Texts embedded per call inside one --batch: the granularity of the one progress bar.
EMBED_CHUNK = 512


def _ingest_embedder(path: Path, model: str | None, cache: bool | str | Path):  # noqa: ANN202
    """The embedder named by --model; by default the store's own (MiniLM for a new store)."""
    from ..embed import Fingerprint, from_fingerprint
    from ..store.manifest import list_generations, manifest_path, read_manifest

    if model is not None:
        return _embedder(model, cache)
    gens = list_generations(path) if path.is_dir() else []
    if not gens:
        return _embedder("minilm", cache)
    recorded = read_manifest(manifest_path(path, gens[0])).model
    return from_fingerprint(Fingerprint.from_dict(recorded), cache=cache) if recorded else None


def ingest(args: argparse.Namespace) -> int:
    """Embed the rows of a Parquet, CSV or JSON-lines file into a store.

    The store is created when it does not exist yet (with the embedder of --model, MiniLM by
    default) and appended to otherwise. Rows whose id is already in the store are skipped, and
    every --batch rows are one commit, so running the same command again after an interruption
    resumes where it stopped; the embeddings computed so far are in the embedding cache. All
    columns of the file are stored as metadata; text columns that hold only dates or datetimes
    become Date/Datetime columns (--no-parse-dates keeps them as text, --time-format FMT reads
    other layouts than ISO). A CSV or JSON-lines file in another encoding than UTF-8 needs
    --encoding. A file with a header but no rows creates nothing and exits with status 2.

    With --ray the job runs workbench.distributed.ingest on a Ray cluster: Ray Data reads the
    input (which may then be a glob of files of one kind), --workers actors embed, write tasks
    build segments of --rows-per-segment rows and this process commits them, every
    ceil(--batch / --rows-per-segment) segments and at the end. The store holds the same ids,
    metadata and vectors as without --ray; its folder must be on a filesystem every node sees.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed options of ``workbench ingest``.

    Returns
    -------
    int
        The exit status: 0, or 2 when the file has no rows (nothing is written).

    Raises
    ------
    FileNotFoundError
        The input file does not exist.
    EmptyInputError
        An empty file (not even a header).
    InvalidInputError
        Unknown file type, bytes that are not in --encoding, null or repeated ids, a text
        column that is not all strings.
    MissingColumnError
        The file lacks the --text or --id column.
    ModelMismatchError
        --model differs from the model of an existing store.
    """
    import polars as pl

    if _check_ray(args):
        return _ingest_on_ray(args)
    t0 = time.perf_counter()
    path = Path(args.store)
    df = _read_table(args.input, encoding=args.encoding,
                     parse_dates=args.parse_dates or args.time_format is not None,
                     time_format=args.time_format)
    what = f"the file {args.input}"
    text = _check_column(df.columns, args.text, option="--text", what=what)
    if df.height == 0:
        print(f"workbench: warning: --input: {args.input} has a header but no rows; nothing "
              "ingested" + ("" if path.exists() else ", no store created"), file=sys.stderr)
        return EXIT_ERROR
    texts = df.get_column(text)
    if texts.dtype != pl.Utf8 or texts.null_count():
        raise InvalidInputError(
            f"--text: expected column {text!r} of {args.input} to hold strings without nulls, "
            f"got {texts.dtype} with {texts.null_count()} null(s)"
        )
    if args.id is None and "id" not in df.columns:
        raise MissingColumnError(
            f"--id: the file {args.input} has no 'id' column; name its id column with --id COL "
            f"(columns are {df.columns}), so that a re-run can skip the rows already ingested"
        )
    id_col = _check_column(df.columns, args.id or "id", option="--id", what=what)
    ids = df.get_column(id_col).cast(pl.Utf8)
    if ids.null_count():
        raise InvalidInputError(f"--id: column {id_col!r} of {args.input} has "
                                f"{ids.null_count()} null id(s)")
    repeated = ids.filter(ids.is_duplicated()).unique(maintain_order=True)
    if repeated.len():
        shown = ", ".join(repr(i) for i in repeated.head(5).to_list())
        raise InvalidInputError(f"--id: column {id_col!r} of {args.input} repeats "
                                f"{repeated.len()} id(s): {shown}")
    df = df.with_columns(ids)

    embedder = _ingest_embedder(path, args.model, args.cache or True)
    added, fresh, size, created = _add_rows(path, df, text=text, id_col=id_col,
                                            embedder=embedder, batch=args.batch,
                                            progress=args.progress)
    seconds = time.perf_counter() - t0
    print(f"added {_plural(added, 'row')}, skipped {df.height - fresh:,} already in the store; "
          f"{path} holds {_plural(size, 'row')} ({seconds:.1f} s)")
    dates = [f"{c} ({t})" for c, t in df.schema.items() if t.is_temporal()]
    if dates:
        print(f"date columns: {', '.join(dates)}")
    return 0


def _add_rows(path: Path, df: pl.DataFrame, *, text: str, id_col: str, embedder: Any,
              batch: int, progress: bool) -> tuple[int, int, int, bool]:
    """Add the rows of `df` not yet in the store, one commit per `batch` rows.

    One progress bar counts every row to embed, with one overall rate and ETA: each batch is
    embedded here in chunks (the embedder's own bar off) and added with its vectors, so
    neither the embedder nor Store.add draws a bar of its own per batch.

    Returns
    -------
    tuple
        Rows added, rows not yet in the store, rows the store holds, whether it was created.
    """
    import polars as pl
    from tqdm.auto import tqdm

    from ..errors import NotAStoreError
    from ..store import Store

    existed = path.exists()
    try:
        store = Store.open(path, embedder=embedder)
        created = False
    except NotAStoreError:  # no store there yet
        store = Store.create(path, embedder=embedder)
        created = True
    added = 0
    try:
        with store:
            have = store.scan().select("id").collect().get_column("id")
            fresh = df.filter(~pl.col(id_col).is_in(have.implode()))
            with tqdm(total=fresh.height, desc="embedding", unit="row", disable=not progress,
                      dynamic_ncols=True) as bar:
                for start in range(0, fresh.height, batch):
                    part = fresh.slice(start, batch)
                    store.add(part, vectors=_embed(store, part.get_column(text), bar),
                              id=id_col, model=store.embedder, progress=False)
                    added += part.height
            size = len(store)
    except KeyboardInterrupt:
        print(f"interrupted: the {_plural(added, 'row')} added so far are kept; run the same "
              "command again to resume", file=sys.stderr)
        raise
    except BaseException:
        if created and not existed and added == 0:
            shutil.rmtree(path, ignore_errors=True)  # leave no empty store behind
        raise
    return added, fresh.height, size, created


def _embed(store: Store, texts: pl.Series, bar: Any) -> NDArray[np.float32]:
    """Vectors of `texts` with the store's embedder, `bar` advanced chunk by chunk."""
    import numpy as np

    if store.embedder is None:
        raise InvalidInputError(
            "--model: the store records no embedding model (its vectors were added without "
            "one), so it cannot embed --text; name one with --model")
    values = texts.to_list()
    out = []
    for lo in range(0, len(values), EMBED_CHUNK):
        chunk = values[lo:lo + EMBED_CHUNK]
        out.append(store.embedder.embed(chunk, progress=False))
        bar.update(len(chunk))
    return np.concatenate(out)


def _ingest_on_ray(args: argparse.Namespace) -> int:
    """``workbench ingest --ray``: workbench.distributed.ingest, and the same summary line."""
    path = Path(args.store)
    embedder = _ingest_embedder(path, args.model, args.cache or True)
    with _on_ray(args) as wd:
        from ..distributed.ingest import ROWS_PER_SEGMENT

        per_segment = args.rows_per_segment or ROWS_PER_SEGMENT
        try:
            rep = wd.ingest(path, args.input, text=args.text, id=args.id or "id",
                            embedder=embedder, workers=args.workers,
                            rows_per_segment=per_segment,
                            commit_every=-(-args.batch // per_segment),
                            address=args.ray or None, progress=args.progress)
        except KeyboardInterrupt:
            print("interrupted: the segments committed so far are kept; run the same command "
                  "again to resume", file=sys.stderr)
            raise
    print(f"added {_plural(rep.added, 'row')}, skipped {rep.skipped:,} already in the store; "
          f"{path} holds {_plural(rep.rows, 'row')} ({rep.seconds:.1f} s; "
          f"{_plural(rep.workers, 'worker')}, {_plural(rep.segments, 'segment')})")
    return 0
