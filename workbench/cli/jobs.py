"""``workbench ingest``, ``search``, ``cluster``, ``dedup`` and ``drift``: the headless jobs."""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import polars as pl

from ..errors import InvalidInputError, MissingColumnError, NotAStoreError
from ._common import (
    _check_column,
    _check_ray,
    _embedder,
    _fit,
    _on_ray,
    _read_table,
    _text_column,
    _where,
)


# ------------------------------------------------------------------------------------ ingest
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
    columns of the file are stored as metadata.

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
        The exit status, 0.

    Raises
    ------
    FileNotFoundError
        The input file does not exist.
    InvalidInputError
        Unknown file type, null or repeated ids, a text column that is not all strings.
    MissingColumnError
        The file lacks the --text or --id column.
    ModelMismatchError
        --model differs from the model of an existing store.
    """
    from ..store import Store

    if _check_ray(args):
        return _ingest_on_ray(args)
    t0 = time.perf_counter()
    path = Path(args.store)
    df = _read_table(args.input)
    what = f"the file {args.input}"
    text = _check_column(df.columns, args.text, option="--text", what=what)
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
            for start in range(0, fresh.height, args.batch):
                part = fresh.slice(start, args.batch)
                store.add(part, text=text, id=id_col, progress=args.progress)
                added += part.height
            size = len(store)
    except KeyboardInterrupt:
        print(f"interrupted: the {added:,} rows added so far are kept; run the same command "
              "again to resume", file=sys.stderr)
        raise
    except BaseException:
        if created and not existed and added == 0:
            shutil.rmtree(path, ignore_errors=True)  # leave no empty store behind
        raise
    seconds = time.perf_counter() - t0
    print(f"added {added:,} rows, skipped {df.height - fresh.height:,} already in the store; "
          f"{path} holds {size:,} rows ({seconds:.1f} s)")
    return 0


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
    print(f"added {rep.added:,} rows, skipped {rep.skipped:,} already in the store; "
          f"{path} holds {rep.rows:,} rows ({rep.seconds:.1f} s; {rep.workers} worker"
          f"{'s' * (rep.workers != 1)}, {rep.segments} segment{'s' * (rep.segments != 1)})")
    return 0


# ------------------------------------------------------------------------------------ search
def _hits_table(hits: pl.DataFrame, text: str | None, width: int) -> str:
    """Hits as aligned lines ``id  distance  text``, the text cut to `width` columns."""
    ids = [" ".join(str(i).split()) for i in hits.get_column("id").to_list()]
    idw = min(max(2, *(len(i) for i in ids)), max(8, width * 2 // 5))
    head = f"{'id':<{idw}}  {'distance':>8}"
    textw = width - len(head) - 2
    if text is not None:
        head += f"  {_fit(text, textw)}"
    lines = [head]
    values = hits.get_column(text).to_list() if text is not None else [None] * len(ids)
    for i, d, t in zip(ids, hits.get_column("distance").to_list(), values, strict=True):
        line = f"{_fit(i, idw):<{idw}}  {d:>8.4f}"
        if text is not None:
            line += f"  {_fit('' if t is None else t, textw)}"
        lines.append(line.rstrip())
    lines.insert(1, "-" * max(len(line) for line in lines))
    return "\n".join(lines)


def search(args: argparse.Namespace) -> int:
    """Search a store for the rows nearest to a text query.

    The query is embedded with the store's own model. --where filters the rows first with a
    SQL expression over the metadata columns (parsed by polars, so "lang = 'en' AND year >
    2020" works). The store is opened read-only, so searches never wait for a writer.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed options of ``workbench search``.

    Returns
    -------
    int
        The exit status, 0 (also when nothing matches).

    Raises
    ------
    NotAStoreError
        --store is not a store.
    InvalidInputError
        --where does not parse or names a missing column; an empty query.
    """
    from ..store import Store

    where = _where(args.where)
    with Store.open(args.store, readonly=True) as store:
        text = _text_column(store.scan().collect_schema(), args.text, what="the store")
        n = len(store)
        if n == 0:
            hits = pl.DataFrame(schema={"id": pl.Utf8, "distance": pl.Float32})
        else:
            hits = store.search(args.query, k=args.k if where is not None else min(args.k, n),
                                where=where).drop("query")
    if args.json:
        if hits.height:
            sys.stdout.write(hits.write_ndjson())
    elif hits.height == 0:
        print("no results" + (" (the store is empty)" if n == 0 else " match --where"))
    else:
        print(_hits_table(hits, text, shutil.get_terminal_size((100, 24)).columns))
    return 0


# ------------------------------------------------------------------------------------ cluster
def cluster(args: argparse.Namespace) -> int:
    """Cluster a store's vectors and write one row per point to a Parquet file.

    Runs workbench.cluster: a reduction (UMAP by default), HDBSCAN and a 2-D layout. The file
    holds key, id, cluster (-1 is noise), probability, outlier_score, x, y and the cluster's
    name, and joins with the store on key or id. Prints the number of clusters, the share of
    noise and each cluster's top keywords (from --text). Reductions are cached in the store's
    folder, so a re-run with another --min-cluster-size is fast.

    With --ray the job runs workbench.distributed.cluster: the clustering is fitted on a seeded
    sample of --sample rows (default: all rows, up to a million) and Ray tasks assign every
    other row to it. The file then holds the columns of its points (key, id, cluster, topic, x,
    y, confidence: 1 for fitted rows, the neighbours' vote share for assigned ones, fitted);
    with a sample of every row the labels, layout and printed clusters are those without --ray.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed options of ``workbench cluster``.

    Returns
    -------
    int
        The exit status, 0.

    Raises
    ------
    NotAStoreError
        --store is not a store.
    InvalidInputError
        Too few rows, bad HDBSCAN settings, a --where that does not parse.
    MissingColumnError
        --text or --where names a missing column.
    """
    from ..analysis import cluster as run_cluster
    from ..store import Store

    on_ray = _check_ray(args)
    where = _where(args.where)
    out = Path(args.out)
    presets = {"none": None}
    with (_on_ray(args) if on_ray else contextlib.nullcontext()) as wd, \
            Store.open(args.store, readonly=True) as store:
        text = _text_column(store.scan().collect_schema(), args.text, what="the store")
        kwargs: dict[str, Any] = dict(
            reducer=presets.get(args.reducer, args.reducer),
            layout=presets.get(args.layout, args.layout), where=where, text=text,
            min_cluster_size=args.min_cluster_size, min_samples=args.min_samples,
            cache=not args.no_cache, random_state=args.random_state, progress=args.progress,
        )
        if wd is None:
            res = fitted = run_cluster(store, **kwargs)
        else:
            res = wd.cluster(store, workers=args.workers, sample=args.sample, **kwargs)
            fitted = res.fitted
    frame = res.to_frame()
    clusters = fitted.clusters
    if wd is not None:  # sizes over every row, not only the fitted sample
        sizes = frame.group_by("cluster").len()
        clusters = clusters.join(sizes, on="cluster", how="left").with_columns(
            pl.col("len").fill_null(0).cast(clusters.schema["size"]).alias("size")).drop("len")
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(out)
    n, noise = frame.height, int((res.labels < 0).sum())
    print(f"{clusters.height} clusters over {n:,} rows, noise {noise / n:.1%} "
          f"({noise:,} rows)")
    if wd is not None:
        p = res.params
        print(f"fitted on {res.sample:,} of {n:,} rows (--sample); {n - res.sample:,} assigned "
              f"in {p['tasks']} Ray task(s) with {p['workers']} worker(s)")
    print(fitted.metrics.summary())
    if clusters.height:
        top = clusters.sort("size", descending=True).head(args.show)
        width = shutil.get_terminal_size((100, 24)).columns
        print(f"{'cluster':>7}  {'size':>6}  keywords")
        for c, size, words in top.select("cluster", "size", "keywords").iter_rows():
            shown = ", ".join(words[:8]) if words else "(no keywords: no --text column)"
            print(f"{c:>7}  {size:>6,}  {_fit(shown, width - 17)}")
        if clusters.height > top.height:
            print(f"... {clusters.height - top.height} smaller clusters not shown (--show)")
    print(f"wrote {out} ({n:,} rows: {', '.join(frame.columns)})")
    return 0




# ------------------------------------------------------------------------------------ dedup
def _groups_table(groups: pl.DataFrame, text: str | None, width: int) -> str:
    """Groups as aligned lines ``group  size  id  score  text``, one line per member.

    The representative's score column says ``rep``; an exact duplicate of it says ``exact``.
    """
    sizes = dict(groups.group_by("group").len().iter_rows())
    ids = [" ".join(str(i).split()) for i in groups.get_column("id").to_list()]
    idw = min(max(2, *(len(i) for i in ids)), max(8, width * 2 // 5))
    head = f"{'group':>5}  {'size':>4}  {'id':<{idw}}  {'score':>6}"
    textw = width - len(head) - 2
    if text is not None:
        head += f"  {_fit(text, textw)}"
    lines = [head]
    values = groups.get_column(text).to_list() if text is not None else [None] * len(ids)
    last = None
    for g, i, rep, score, exact, t in zip(
        groups.get_column("group").to_list(), ids,
        groups.get_column("is_representative").to_list(),
        groups.get_column("score_to_representative").to_list(),
        groups.get_column("exact").to_list(), values, strict=True,
    ):
        shown = "rep" if rep else "exact" if exact else "-" if score is None else f"{score:.3f}"
        lead = f"{g:>5}  {sizes[g]:>4}" if g != last else " " * 11
        line = f"{lead}  {_fit(i, idw):<{idw}}  {shown:>6}"
        if text is not None:
            line += f"  {_fit('' if t is None else t, textw)}"
        lines.append(line.rstrip())
        last = g
    lines.insert(1, "-" * max(len(line) for line in lines))
    return "\n".join(lines)


def _check_ray_dedup(args: argparse.Namespace, method: str) -> None:
    """The options ``dedup --ray`` cannot honour, each an error naming it."""
    if method != "cosine":
        raise InvalidInputError(f"--method: with --ray pairs are scored by cosine only; "
                                f"expected cosine, got {method}")
    if args.candidates == "index":
        raise InvalidInputError("--candidates: with --ray candidate pairs come from LSH only; "
                                "expected auto or lsh, got index")
    if args.threshold is None:
        raise InvalidInputError("--threshold: with --ray the cosine a pair must reach is "
                                "required, in (0, 1], e.g. --threshold 0.95")


def dedup(args: argparse.Namespace) -> int:
    """Find exact and near-duplicate rows of a store and write every row's group to Parquet.

    Runs workbench.find_duplicates: a kNN self-join through the store's own index, pairs
    re-scored with the full-precision vectors and, where the store has a text column, checked
    lexically. The file holds one row per scanned store row (key, id, group: null when the row
    has no duplicate, is_representative, is_duplicate, score_to_representative, exact), so it
    joins with the store on key or id; the rows to drop are those with is_duplicate. Prints
    the summary, the threshold and how it was chosen, and the largest groups with their texts.
    The kNN graph is cached in the store's folder, so a re-run with another --threshold or
    --grouping searches nothing.

    With --ray the job runs workbench.distributed.find_duplicates: LSH candidates hashed and
    verified in Ray tasks over the store's segments. It scores pairs by cosine against a
    --threshold (both required: --method cosine is the default there, and --candidates must
    be auto or lsh), builds its graph afresh each run (no cache), and gives the groups, pairs
    and file of ``--method cosine --candidates lsh`` without --ray.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed options of ``workbench dedup``.

    Returns
    -------
    int
        The exit status, 0 (also when there are no duplicates).

    Raises
    ------
    NotAStoreError
        --store is not a store.
    InvalidInputError
        --threshold outside (0, 1], a --where that does not parse or selects no rows, a --text
        column that does not hold strings, an empty store.
    MissingColumnError
        --text or --where names a missing column.
    """
    from ..analysis import find_duplicates
    from ..analysis.dedup import DedupWarning
    from ..store import Store

    on_ray = _check_ray(args)
    method = args.method or ("cosine" if on_ray else "hybrid")
    if on_ray:
        _check_ray_dedup(args, method)
    where = _where(args.where)
    out = Path(args.out)
    with (_on_ray(args) if on_ray else contextlib.nullcontext()) as wd, \
            Store.open(args.store, readonly=True) as store:
        schema = store.scan().collect_schema()
        text = "text" if args.text is None else _check_column(
            schema.names(), args.text, option="--text", what="the store")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", DedupWarning)
            if wd is None:
                res = find_duplicates(
                    store, threshold=args.threshold, k=args.k, where=where, text=text,
                    method=method, grouping=args.grouping, keep=args.keep,
                    candidates=args.candidates, cache=not args.no_cache,
                    progress=args.progress,
                )
            else:
                res = wd.find_duplicates(
                    store, threshold=args.threshold, k=args.k, where=where, text=text,
                    grouping=args.grouping, keep=args.keep, progress=args.progress,
                    workers=args.workers,
                )
        shown_text = res.info.get("text")
        top = res.groups.filter(pl.col("group") < args.show)
        if shown_text is not None and top.height:
            texts = (store.scan().filter(pl.col("key").is_in(top.get_column("key").implode()))
                     .select("key", shown_text).collect())
            top = top.join(texts, on="key", how="left", maintain_order="left")
    for w in caught:
        if issubclass(w.category, DedupWarning):
            print(f"workbench: warning: {w.message}", file=sys.stderr)
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    frame = res.to_frame()
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(out)
    s = res.summary
    print(f"{s['groups']:,} duplicate groups over {s['rows']:,} rows: {s['duplicates']:,} "
          f"duplicates ({s['share']:.1%} of the rows), {s['exact_duplicates']:,} of them exact")
    print(f"threshold {res.threshold:.3f} ({res.threshold_rule}); method {res.method}, "
          f"grouping {res.grouping}")
    chain = f", longest chain {s['longest_chain']}" if res.grouping == "components" else ""
    print(f"{s['passing_pairs']:,} of {s['pairs']:,} candidate pairs pass; largest group "
          f"{s['largest_group']:,} rows{chain}")
    if top.height:
        width = shutil.get_terminal_size((100, 24)).columns
        print(_groups_table(top, shown_text, width))
        if s["groups"] > args.show:
            print(f"... {s['groups'] - args.show:,} smaller groups not shown (--show)")
    print(f"wrote {out} ({frame.height:,} rows: {', '.join(frame.columns)})")
    return 0


# ------------------------------------------------------------------------------------ drift
#: Exit status of ``workbench drift`` when a window is flagged (0: none, 2: bad input).
EXIT_DRIFT = 1


def _reference(text: str) -> Any:
    """``first``, ``previous``, ``rolling:N`` as they are; ``START..END`` as a pair of dates."""
    if ".." not in text:
        return text
    from datetime import datetime

    start, _, end = text.partition("..")
    try:
        return (datetime.fromisoformat(start.strip()), datetime.fromisoformat(end.strip()))
    except ValueError as exc:
        raise InvalidInputError(
            f"--reference: expected first, previous, rolling:N or START..END with ISO dates "
            f"(2024-01-01..2024-02-01), got {text!r}"
        ) from exc


def drift(args: argparse.Namespace) -> int:
    """Test every time window of a store for drift and write a self-contained HTML report.

    Runs workbench.compute_drift: rows are cut into windows of --every on the --time column;
    each window is compared with the reference (the first window by default) by the centroid
    shift, an MMD permutation test over random Fourier features at several bandwidths, a
    cross-validated domain classifier and per-component tests of a PCA; a window is flagged
    when its tests, Bonferroni-combined and Holm-adjusted over the windows, fall below
    --alpha. The report (charts and scripts inlined, nothing loaded from the network) shows
    every metric over time and what changed in the flagged windows. Meant for cron and CI: the
    exit status says whether drift was found.

    With --ray the job runs workbench.distributed.compute_drift: Ray tasks sum each window's
    vectors and random features segment by segment; the flags, p-values and report are those
    without --ray (statistics within float rounding).

    Parameters
    ----------
    args : argparse.Namespace
        The parsed options of ``workbench drift``.

    Returns
    -------
    int
        1 when a window is flagged, 0 when none is (2 after bad input, from ``main``).

    Raises
    ------
    NotAStoreError
        --store is not a store.
    InvalidInputError
        An unknown --every or --reference, a --time column that is not a date or datetime, a
        --where that does not parse.
    MissingColumnError
        --time, --text or --where names a missing column.
    EmptyInputError
        A --reference range with no rows, or no rows at all.
    """
    from ..analysis.drift import compute_drift
    from ..reports.drift import write_drift_report
    from ..store import Store

    on_ray = _check_ray(args)
    where = _where(args.where)
    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    reference = _reference(args.reference)
    with (_on_ray(args) if on_ray else contextlib.nullcontext()) as wd, \
            Store.open(args.store, readonly=True) as store:
        schema = store.scan().collect_schema()
        _check_column(schema.names(), args.time, option="--time", what="the store")
        text = None
        if args.text is not None:
            text = _check_column(schema.names(), args.text, option="--text", what="the store")
        elif "text" in schema.names():
            text = "text"
        kwargs: dict[str, Any] = {"text": text} if text is not None else {}
        if wd is not None:
            kwargs["workers"] = args.workers
        run = compute_drift if wd is None else wd.compute_drift
        res = run(store, time=args.time, every=args.every, reference=reference,
                  methods=methods, where=where, alpha=args.alpha, random_state=args.seed,
                  progress=args.progress, **kwargs)
    out = write_drift_report(res, args.out, title="Drift report",
                             subtitle=f"{args.store}: {args.time} every {args.every}")
    if args.json is not None:
        jpath = Path(args.json)
        jpath.parent.mkdir(parents=True, exist_ok=True)
        res.windows.write_json(jpath)
    s = res.summary
    cols = [c for c in ("start", "n", "n_reference", "status", "centroid_shift", "mmd_p",
                        "auc", "classifier_p", "components_drifted", "p_adjusted", "flagged")
            if c in res.windows.columns]
    with pl.Config(tbl_rows=60, tbl_cols=len(cols), tbl_width_chars=160,
                   tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True,
                   float_precision=4):
        print(res.windows.select(cols))
    flagged = res.flagged
    print(f"{s['windows']} windows, {s['tested']} tested, {len(flagged)} flagged"
          + (f": {', '.join(str(f) for f in flagged)}" if flagged else ""))
    print(f"wrote {out}" + (f" and {args.json}" if args.json is not None else ""))
    return EXIT_DRIFT if flagged else 0


# --------------------------------------------------------------------------------- compress
#: ``workbench compress --out`` writers, by file suffix.
WRITERS = {".parquet": "write_parquet", ".csv": "write_csv", ".json": "write_json"}


def _split(value: str, *, option: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise InvalidInputError(f"{option}: expected a comma-separated list, got {value!r}")
    return items


def _dims(value: str) -> list[int | None]:
    out: list[int | None] = []
    for item in _split(value, option="--dims"):
        if item.lower() in ("full", "none"):
            out.append(None)
            continue
        try:
            d = int(item)
        except ValueError:
            d = 0
        if d < 1:
            raise InvalidInputError(
                f"--dims: expected positive integers or 'full', e.g. full,256,64; got {item!r}")
        out.append(d)
    return out


def _variants(args: argparse.Namespace, teacher: Any) -> dict[str, Any]:
    """The quantized copies (--models) and saved students (--student) to compare."""
    from ..compress import SCHEMES, StudentEmbedder, quantize_model

    schemes = [] if args.models is None else _split(args.models, option="--models")
    unknown = [s for s in schemes if s not in SCHEMES]
    if unknown:
        raise InvalidInputError(f"--models: expected schemes among {list(SCHEMES)}, got "
                                f"{unknown}")
    if teacher is None:
        raise InvalidInputError("--models/--student: the store has no embedding model to "
                                "compare against (its vectors were added without one)")
    variants: dict[str, Any] = {}
    for folder in args.student or []:
        student = StudentEmbedder.load(folder)
        if student.config["teacher"]["weights_hash"] != teacher.fingerprint.weights_hash:
            print(f"workbench: warning: --student {folder}: distilled from "
                  f"{student.config['teacher']['name']}, not from the store's model "
                  f"{teacher.fingerprint.name}", file=sys.stderr)
        variants[f"{student.fingerprint.name} ({Path(folder).name})"] = student
    for scheme in schemes:
        variants[scheme] = quantize_model(teacher, scheme)
    return variants


def _sts(name: str) -> pl.DataFrame | None:
    from ..evaldata import EvalDataMissingError, sts_pairs

    if name == "none":
        return None
    try:
        return sts_pairs(name, "test")
    except EvalDataMissingError as exc:
        print(f"workbench: warning: --sts {name}: {_fit(exc, 200)}; sts_spearman left out",
              file=sys.stderr)
        return None


def compress(args: argparse.Namespace) -> int:
    """Measure what compression costs on a store, print the table and write it to --out.

    Without --models or --student: workbench.compare_vector_dtypes over the store's vectors:
    for each index dtype (f32, f16, bf16, i8, b1) x dimension cut (PCA fitted on the store, or
    plain truncation) x rescoring with the full-precision vectors, the bytes per vector, index
    memory, build time, queries per second and recall@k against exact float32 search, and
    which reduction keeps more recall at each cut. With them: workbench.compare_models of each
    quantized copy of the store's model (--models, e.g. onnx-int8,bf16) and each saved
    distilled student (--student DIR) against the store's model on a seeded sample of its
    texts: size, texts/s, mean cosine, neighbours kept, k-means cluster agreement,
    near-duplicate pair agreement, drift-flag agreement on a planted stream and, where the
    evaluation data is found, STS Spearman. The file is Parquet, CSV or JSON by its suffix.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed options of ``workbench compress``.

    Returns
    -------
    int
        The exit status, 0.

    Raises
    ------
    NotAStoreError
        --store is not a store.
    InvalidInputError
        An --out suffix other than .parquet/.csv/.json, an unknown dtype or scheme, bad
        --dims, a --where that does not parse, --models on a store without a model, a
        scheme this machine cannot run (UnsupportedSchemeError names what is missing).
    MissingColumnError
        --text or --where names a missing column.
    """
    from ..compress import best_reduction, compare_models, compare_vector_dtypes
    from ..store import Store

    out = Path(args.out)
    writer = WRITERS.get(out.suffix.lower())
    if writer is None:
        raise InvalidInputError(f"--out: expected a .parquet, .csv or .json file, got "
                                f"{out.name!r}")
    where = _where(args.where)
    models = args.models is not None or bool(args.student)
    with Store.open(args.store, readonly=True) as store:
        if not models:
            table = compare_vector_dtypes(
                store, dtypes=_split(args.dtypes, option="--dtypes"), dims=_dims(args.dims),
                k=args.k, queries=args.queries, where=where, random_state=args.seed,
                progress=args.progress)
            cut = table["reduce"].drop_nulls().n_unique() > 1
            extra = best_reduction(table, by=("dtype",)) if cut else None
            what = f"{table.height} index configurations of {len(store):,} rows"
        else:
            schema = store.scan().collect_schema()
            text = _text_column(schema, args.text, what="the store")
            if text is None:
                raise MissingColumnError("--text: the store has no text column to embed; "
                                         f"columns are {schema.names()}")
            variants = _variants(args, store.embedder)
            lf = store.scan() if where is None else store.scan().filter(where)
            texts = lf.select(text).collect()[text].drop_nulls()
            texts = texts.sample(min(args.texts, texts.len()), seed=args.seed, shuffle=True)
            table = compare_models(store.embedder, variants, corpus=texts.to_list(),
                                   sts=_sts(args.sts), k=args.k, drift=not args.no_drift,
                                   random_state=args.seed, progress=args.progress)
            extra = None
            what = (f"{len(variants)} models against {store.embedder.fingerprint.name} on "
                    f"{texts.len():,} stored texts")
    out.parent.mkdir(parents=True, exist_ok=True)
    getattr(table, writer)(out)
    shown = table.drop("note", strict=False)
    with pl.Config(tbl_rows=200, tbl_cols=-1, tbl_width_chars=200,
                   tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True,
                   float_precision=4, fmt_str_lengths=40):
        print(shown)
        if extra is not None:
            print("PCA or truncation at each cut (best_reduction):")
            print(extra)
    print(f"wrote {out} ({what}: {', '.join(table.columns)})")
    return 0
