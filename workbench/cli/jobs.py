"""``workbench search``, ``cluster``, ``dedup`` and ``drift``: the headless jobs.

Polars and the library load inside the commands, so that importing this module (for a
command's --help) stays instant.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInputError
from ._common import (
    _check_column,
    _check_ray,
    _fit,
    _on_ray,
    _plural,
    _split,
    _text_column,
    _where,
)

if TYPE_CHECKING:
    import polars as pl


# ------------------------------------------------------------------------------------ search
def _hits_table(hits: pl.DataFrame, text: str | None, width: int,
                columns: tuple[str, ...] = ()) -> str:
    """Hits as aligned lines ``id  distance  [columns]  text``, the text cut to `width`."""
    ids = [" ".join(str(i).split()) for i in hits.get_column("id").to_list()]
    idw = min(max(2, *(len(i) for i in ids)), max(8, width * 2 // 5))
    shown = {c: ["" if v is None else _fit(v, 30) for v in hits.get_column(c).to_list()]
             for c in columns}
    widths = {c: max(len(c), *(len(v) for v in shown[c])) for c in columns}
    head = f"{'id':<{idw}}  {'distance':>8}" + "".join(f"  {c:<{widths[c]}}" for c in columns)
    textw = max(width - len(head) - 2, 10)
    if text is not None:
        head += f"  {_fit(text, textw)}"
    lines = [head]
    values = hits.get_column(text).to_list() if text is not None else [None] * len(ids)
    for row, (i, d, t) in enumerate(zip(ids, hits.get_column("distance").to_list(), values,
                                        strict=True)):
        line = f"{_fit(i, idw):<{idw}}  {d:>8.4f}" + "".join(
            f"  {shown[c][row]:<{widths[c]}}" for c in columns)
        if text is not None:
            line += f"  {_fit('' if t is None else t, textw)}"
        lines.append(line.rstrip())
    lines.insert(1, "-" * max(len(line) for line in lines))
    return "\n".join(lines)


def search(args: argparse.Namespace) -> int:
    """Search a store for the rows nearest to a text query.

    The query is embedded with the store's own model. --where filters the rows first with a
    SQL expression over the metadata columns (parsed by polars, so "lang = 'en' AND year >
    2020" works; an ISO date compared with a date column, "date > '2025-10-01'", is read as
    a date). The table shows id, distance, the --columns chosen and the text. The store is
    opened read-only, so searches never wait for a writer.

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
    MissingColumnError
        --columns or --text names a missing column.
    """
    import polars as pl

    from ..store import Store

    _where(args.where)  # a syntax error before the store is opened
    columns = () if args.columns is None else tuple(_split(args.columns, option="--columns"))
    with Store.open(args.store, readonly=True) as store:
        schema = store.scan().collect_schema()
        where = _where(args.where, schema)
        for c in columns:
            _check_column(schema.names(), c, option="--columns", what="the store")
        text = _text_column(schema, args.text, what="the store")
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
        print(_hits_table(hits, text, shutil.get_terminal_size((100, 24)).columns,
                          tuple(c for c in columns if c != text)))
    return 0


# ------------------------------------------------------------------------------------ cluster
def cluster(args: argparse.Namespace) -> int:
    """Cluster a store's vectors and write one row per point to a Parquet file.

    Runs workbench.cluster: a reduction (UMAP by default), HDBSCAN and a 2-D layout. With a
    text column (--text) the clusters are topics: the rows HDBSCAN left as noise are
    reassigned to the nearest topic (so every row has one; hdbscan_cluster keeps HDBSCAN's own
    label, -1 for its noise) and the fine clusters are merged into --topics N topics (default:
    the level of the best silhouette). Without text, cluster -1 is HDBSCAN's noise. The file
    holds key, id, cluster, probability, outlier_score, x, y and the cluster's name, and joins
    with the store on key or id; the topics (cluster, name, size, keywords) are written next
    to it as FILE.topics.csv. Prints the number of clusters, the share of HDBSCAN noise (and
    whether it was reassigned) and each cluster's top keywords. Reductions are cached in the
    store's folder, so a re-run with another --min-cluster-size or --topics is fast.

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
        Too few rows, bad HDBSCAN settings, a --where that does not parse, --topics without
        a text column or beyond the number of fine clusters.
    MissingColumnError
        --text or --where names a missing column.
    """
    import polars as pl

    from ..analysis import cluster as run_cluster
    from ..store import Store

    on_ray = _check_ray(args)
    _where(args.where)  # a syntax error before the store is opened
    out = Path(args.out)
    presets = {"none": None}
    with (_on_ray(args) if on_ray else contextlib.nullcontext()) as wd, \
            Store.open(args.store, readonly=True) as store:
        schema = store.scan().collect_schema()
        where = _where(args.where, schema)
        text = _text_column(schema, args.text, what="the store")
        if args.topics is not None and text is None:
            raise InvalidInputError(f"--topics: the topics are cut by their keywords and the "
                                    f"store has no text column; name one with --text "
                                    f"(columns are {schema.names()})")
        kwargs: dict[str, Any] = dict(
            reducer=presets.get(args.reducer, args.reducer),
            layout=presets.get(args.layout, args.layout), where=where, text=text,
            min_cluster_size=args.min_cluster_size, min_samples=args.min_samples,
            cache=not args.no_cache, random_state=args.random_state, progress=args.progress,
        )
        if args.topics is not None:
            kwargs["n_topics"] = args.topics
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
    topics_file = out.with_name(out.name + ".topics.csv")
    clusters.select("cluster", "name", "size", pl.col("keywords").list.join(", ")).sort(
        "size", descending=True).write_csv(topics_file)
    n = frame.height
    print(f"{_plural(clusters.height, 'cluster')} over {_plural(n, 'row')}, "
          + _noise_line(fitted, res.labels))
    if wd is not None:
        p = res.params
        print(f"fitted on {res.sample:,} of {_plural(n, 'row')} (--sample); "
              f"{n - res.sample:,} assigned in {_plural(p['tasks'], 'Ray task')} with "
              f"{_plural(p['workers'], 'worker')}")
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
    print(f"wrote {out} ({_plural(n, 'row')}: {', '.join(frame.columns)}) and {topics_file} "
          f"({_plural(clusters.height, 'topic')}: cluster, name, size, keywords)")
    return 0


def _noise_line(fitted: Any, labels: Any) -> str:
    """HDBSCAN's noise share, and whether those rows were reassigned to topics."""
    topics = fitted.params.get("topics") or {}
    if "hdbscan_noise_fraction" in topics:
        share = float(topics["hdbscan_noise_fraction"])
        rows = round(share * len(fitted.labels))
        return (f"HDBSCAN noise {share:.1%} ({_plural(rows, 'row')}), reassigned to the "
                "nearest topic (cut at " + ("the best-silhouette level)"
                                            if topics.get("default", True) else "--topics)"))
    noise = int((labels < 0).sum())
    return f"noise {noise / max(len(labels), 1):.1%} ({_plural(noise, 'row')}, cluster -1)"




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
    import polars as pl

    from ..analysis import find_duplicates
    from ..analysis.dedup import DedupWarning
    from ..store import Store

    on_ray = _check_ray(args)
    method = args.method or ("cosine" if on_ray else "hybrid")
    if on_ray:
        _check_ray_dedup(args, method)
    _where(args.where)  # a syntax error before the store is opened
    out = Path(args.out)
    with (_on_ray(args) if on_ray else contextlib.nullcontext()) as wd, \
            Store.open(args.store, readonly=True) as store:
        schema = store.scan().collect_schema()
        where = _where(args.where, schema)
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
        top = res.groups.filter(pl.col("group") < args.show)
        shown_text = "text" if "text" in top.columns else None  # the groups carry the texts
    for w in caught:
        if issubclass(w.category, DedupWarning):
            print(f"workbench: warning: {w.message}", file=sys.stderr)
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    frame = res.to_frame()
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(out)
    s = res.summary
    print(f"{_plural(s['groups'], 'duplicate group')} over {_plural(s['rows'], 'row')}: "
          f"{_plural(s['duplicates'], 'duplicate')} ({s['share']:.1%} of the rows), "
          f"{s['exact_duplicates']:,} of them exact")
    print(f"threshold {res.threshold:.3f} ({res.threshold_rule}); method {res.method}, "
          f"grouping {res.grouping}")
    chain = f", longest chain {s['longest_chain']}" if res.grouping == "components" else ""
    print(f"{s['passing_pairs']:,} of {_plural(s['pairs'], 'candidate pair')} pass; largest "
          f"group {_plural(s['largest_group'], 'row')}{chain}")
    if top.height:
        width = shutil.get_terminal_size((100, 24)).columns
        print(_groups_table(top, shown_text, width))
        if s["groups"] > args.show:
            print(f"... {s['groups'] - args.show:,} smaller groups not shown (--show)")
    print(f"wrote {out} ({_plural(frame.height, 'row')}: {', '.join(frame.columns)})")
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


def _text_time(store: Any, time: str, time_format: str | None) -> Any:
    """The dtype compute_drift will parse the text column `time` into, said on stderr.

    Parsed by compute_drift's own rules (:func:`~workbench.analysis.drift.parse_time`), so
    that what is said here is what the job does.

    Raises
    ------
    InvalidInputError
        A value of the column does not parse: what to pass instead.
    """
    from ..analysis.drift import parse_time

    col = store.scan().select(time).collect().get_column(time)
    try:
        dtype = parse_time(col, time_format, option="--time-format").dtype
    except InvalidInputError as exc:
        raise InvalidInputError(
            f"--time: expected a Date or Datetime column, got text: "
            f"{str(exc).removeprefix('time: ')}, or re-ingest with --time-format FMT so that "
            "the column is stored as dates") from exc
    print(f"workbench: note: --time: column {time!r} holds text; parsed it as "
          f"{dtype} for this run (re-ingest with --parse-dates to store it as dates)",
          file=sys.stderr)
    return dtype


def drift(args: argparse.Namespace) -> int:
    """Test every time window of a store for drift and write a self-contained HTML report.

    Runs workbench.compute_drift: rows are cut into windows of --every on the --time column;
    each window is compared with the reference (the first window by default) by the centroid
    shift, an MMD permutation test over random Fourier features at several bandwidths, a
    cross-validated domain classifier and per-component tests of a PCA; a window is flagged
    when its tests, Bonferroni-combined and Holm-adjusted over the windows, fall below
    --alpha. The report (charts and scripts inlined, nothing loaded from the network) shows
    every metric over time and what changed in the flagged windows. Meant for cron and CI: the
    exit status says whether drift was found. A --time column of text is parsed as dates for
    the run (ISO dates, or --time-format FMT), with a note on stderr.

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
    import polars as pl

    from ..analysis.drift import compute_drift
    from ..reports.drift import write_drift_report
    from ..store import Store

    on_ray = _check_ray(args)
    _where(args.where)  # a syntax error before the store is opened
    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    reference = _reference(args.reference)
    with (_on_ray(args) if on_ray else contextlib.nullcontext()) as wd, \
            Store.open(args.store, readonly=True) as store:
        schema = store.scan().collect_schema()
        _check_column(schema.names(), args.time, option="--time", what="the store")
        kwargs: dict[str, Any] = {}
        if schema[args.time] == pl.Utf8:
            # compute_drift (on Ray too) parses it (before --where, which then compares dates)
            schema = pl.Schema({**schema, args.time: _text_time(store, args.time,
                                                                 args.time_format)})
            kwargs["time_format"] = args.time_format
        where = _where(args.where, schema)
        text = None
        if args.text is not None:
            text = _check_column(schema.names(), args.text, option="--text", what="the store")
        elif "text" in schema.names():
            text = "text"
        if text is not None:
            kwargs["text"] = text
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
    print(f"{_plural(s['windows'], 'window')}, {s['tested']} tested, {len(flagged)} flagged"
          + (f": {', '.join(str(f) for f in flagged)}" if flagged else ""))
    print(f"wrote {out}" + (f" and {args.json}" if args.json is not None else ""))
    return EXIT_DRIFT if flagged else 0
