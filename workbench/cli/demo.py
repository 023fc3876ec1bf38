"""``workbench demo`` and ``notebooks``: the demo store, reports and notebooks."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import time
from pathlib import Path

import polars as pl

from ..errors import InvalidInputError
from ._common import DEMO_QUERIES, _embedder


# ------------------------------------------------------------------------------------ demo
def build_demo_store(path: Path, *, limit: int | None, embedder_name: str, cache: Path,
                     progress: bool = True):  # noqa: ANN201 - returns a Store
    """Create or bring up to date the demo store from :func:`workbench.datasets.python_docs`."""
    return _build_demo_store(path, limit=limit, embedder_name=embedder_name, cache=cache,
                             progress=progress)[0]


def _build_demo_store(path: Path, *, limit: int | None, embedder_name: str, cache: Path,
                      progress: bool = True):  # noqa: ANN202 - (Store, int, int)
    """:func:`build_demo_store`, the rows it added and the texts the model embedded (misses)."""
    from ..datasets import python_docs
    from ..errors import ModelMismatchError
    from ..store import Store

    docs = python_docs(limit=limit)
    emb = _embedder(embedder_name, cache)
    store = None
    if path.exists():
        try:
            store = Store.open(path, embedder=emb)
        except ModelMismatchError:
            shutil.rmtree(path)
    if store is None:
        store = Store.create(path, embedder=emb, metric="cos", dtype="f16")
    have = set(store.scan().select("id").collect()["id"].to_list())
    want = set(docs["id"].to_list())
    stale = sorted(have - want)
    new = docs.filter(~pl.col("id").is_in(pl.Series(sorted(have)).implode()))
    calls = int(getattr(emb, "calls", 0))
    with store.transaction():
        if stale:
            store.delete(stale)
        if new.height:
            store.add(new, text="text", progress=progress)
    return store, new.height, int(getattr(emb, "calls", 0)) - calls


def _build_step(added: int, embedded: int) -> str:
    """The timing table's name of the build step: what the run did, cold or warm."""
    if added == 0:
        return "store up to date (warm: nothing to add or embed)"
    if embedded == 0:
        return (f"build or update store ({added:,} rows added, every embedding from the "
                "cache: warm)")
    if embedded >= added:
        return (f"build or update store ({added:,} rows added, {embedded:,} texts embedded by "
                "the model: cold, no cache hits)")
    return (f"build or update store ({added:,} rows added: {embedded:,} texts embedded by the "
            f"model, the rest from the cache)")


def _dedup_section(store, *, method: str):  # noqa: ANN001, ANN202 - Store -> (Section, float)
    """The demo report's near-duplicate section, and the seconds find_duplicates took."""
    from ..analysis import find_duplicates
    from ..reports import Section, figure_html, frame_table, key_values

    t0 = time.perf_counter()
    res = find_duplicates(store, method=method, progress=False)
    seconds = time.perf_counter() - t0
    s = res.summary
    items = {
        "rows": f"{s['rows']:,}",
        "groups": f"{s['groups']:,} (largest: {s['largest_group']} rows)",
        "duplicates": f"{s['duplicates']:,} ({s['share']:.1%} of the rows), "
                      f"{s['exact_duplicates']:,} exact",
        "threshold": f"{res.threshold:.3f} ({res.threshold_rule})",
        "method / grouping": f"{res.method} / {res.grouping} (keep {res.info['keep']})",
        "candidate pairs": f"{s['pairs']:,} scored, {s['passing_pairs']:,} pass",
        "time": f"{seconds:.2f} s ({'; '.join(res.info['notes'])})",
    }
    top = res.groups.filter(pl.col("group") < 8)
    if top.height:
        sizes = top.group_by("group").len("size")
        rep = pl.col("is_representative")
        top = (top.join(sizes, on="group", maintain_order="left")
               .select("group", "size",
                       role=pl.when(rep).then(pl.lit("representative"))
                       .when(pl.col("exact")).then(pl.lit("exact duplicate"))
                       .otherwise(pl.lit("near duplicate")),
                       score_to_representative=pl.when(~rep)
                       .then(pl.col("score_to_representative")),
                       text=pl.col("text"), id=pl.col("id")))
        # the texts are what a reviewer reads: they get the width (td.text), the id goes last
        # and a score column that is empty (every group exact) is left out
        groups = frame_table(top)
    else:
        groups = "<p class='note'>no duplicate groups at this threshold</p>"
    # DedupResult.plot's log-scaled pair histogram warns when there is no pair to draw
    figure = figure_html(res.plot(), alt="histograms of the nearest-neighbour cosine per row "
                                         "and of the candidate pair scores") if s["pairs"] else ""
    body = (key_values(items) + "<h3>Largest groups (representative first)</h3>" + groups
            + figure)
    note = ("wb.find_duplicates(store): a kNN self-join through the store's index, pairs "
            "re-scored with full-precision vectors and checked lexically; each member passes "
            "the threshold against its group's representative")
    return Section(f"Near-duplicates ({res.method})", body, note=note), seconds


def _topics_section(store):  # noqa: ANN001, ANN202 - Store -> (Section, float)
    """The demo report's topic hierarchy section, and the seconds cluster() took."""
    import matplotlib.pyplot as plt
    import numpy as np

    from ..analysis import cluster
    from ..reports import Section, figure_html, frame_table, key_values

    t0 = time.perf_counter()
    # The 2-D UMAP for the map costs about as much as the 5-d reduction on a cold run; both
    # are cached beside the store, so later runs pay neither.
    res = cluster(store, layout="umap", progress=False)
    seconds = time.perf_counter() - t0
    title = "Topic hierarchy"
    note = ("wb.cluster(store): UMAP to 5-d and HDBSCAN give fine clusters; outliers go to the "
            "nearest cluster, the fine clusters are merged by Ward linkage of their unit "
            "centroids in the original space, and the tree is cut at the level of the highest "
            "cosine silhouette (all points, original space). result.at_level(n) moves along "
            "the tree; topics=False keeps the fine clusters")
    if res.clusters.height < 2:
        body = (f"<p class='note'>{res.clusters.height} cluster(s) found in {len(store):,} "
                "rows: no hierarchy to show</p>")
        return Section(title, body, note=note), seconds
    tree = res.hierarchy
    hd = res.points.get_column("hdbscan_cluster").to_numpy()
    crit = tree.criterion
    # two or more fine clusters: the criterion has levels 2..min(K, 40), one of them chosen
    best = crit.filter(pl.col("chosen")).row(0, named=True)
    runner_up = crit.filter(~pl.col("chosen")).sort("silhouette", descending=True).head(1)
    chosen = f"{tree.best_n_topics} topics (cosine silhouette {best['silhouette']:.3f}"
    if runner_up.height:
        chosen += (f"; next best {runner_up['silhouette'][0]:.3f} at "
                   f"{runner_up['n_topics'][0]} topics")
    chosen += f"; levels 2 to {crit['n_topics'].max()} tried)"
    secs = res.params["seconds"]
    items = {
        "rows": f"{res.points.height:,}",
        "fine clusters (HDBSCAN)": f"{tree.n_clusters} (noise {np.mean(hd < 0):.1%}, "
                                   "reassigned to the nearest cluster)",
        "chosen level": chosen,
        "time": f"{seconds:.1f} s (reduce {secs.get('reduce', 0):.1f} s, cluster "
                f"{secs.get('cluster', 0):.2f} s, topics {secs.get('topics', 0):.2f} s; the "
                "reduction is cached beside the store)",
    }
    topics = res.clusters.select("cluster", "size", "name", keywords=pl.col("keywords")
                                 .list.head(8).list.join(", "))
    fine = res.points.group_by("cluster").agg(
        fine_clusters=pl.col("fine_cluster").unique().sort().cast(pl.Utf8).str.join(", "))
    topics = topics.join(fine, on="cluster", how="left", maintain_order="left")
    body = key_values(items) + f"<h3>Topics at the chosen level ({tree.best_n_topics})</h3>"
    body += frame_table(topics)
    if crit.height > 1:
        fig, ax = plt.subplots(figsize=(6, 2.6))
        ax.plot(crit["n_topics"], crit["silhouette"], marker=".", color="#4c78a8")
        ax.axvline(tree.best_n_topics, color="#999", linestyle="--", linewidth=1)
        ax.set(xlabel="topics (level of the tree)", ylabel="cosine silhouette",
               title="label-free criterion: silhouette per level")
        fig.tight_layout()
        plt.close(fig)
        body += "<h3>Silhouette per level</h3>" + figure_html(
            fig, alt="cosine silhouette of every level of the topic tree, the chosen level "
                     "marked")
    if "x" in res.points.columns and res.points.get_column("x").null_count() == 0:
        body += "<h3>Map of the topics (2-D UMAP)</h3>" + figure_html(
            _cluster_map(res), alt="2-D UMAP map of the stored paragraphs, coloured by topic, "
                                   "each topic labelled by its name")
    body += "<h3>Dendrogram of the fine clusters</h3>" + figure_html(
        tree.plot(), alt="dendrogram of the fine clusters, each labelled by its top keywords")
    return Section(title, body, note=note), seconds


def _cluster_map(res):  # noqa: ANN001, ANN202 - ClusterResult -> matplotlib Figure
    """A static 2-D map of a clustering: one colour per topic, each labelled at its median."""
    import matplotlib.pyplot as plt
    import numpy as np

    pts = res.points
    xy = pts.select("x", "y").to_numpy()
    lab = pts.get_column("cluster").to_numpy()
    names = dict(zip(res.clusters.get_column("cluster").to_list(),
                     res.clusters.get_column("name").to_list(), strict=True))
    fig, ax = plt.subplots(figsize=(8.5, 6.2))
    cmap = plt.get_cmap("tab20")
    ids = sorted(int(c) for c in np.unique(lab))
    for i, c in enumerate(ids):
        m = lab == c
        colour = "#bbbbbb" if c < 0 else cmap(i % 20)
        ax.scatter(xy[m, 0], xy[m, 1], s=max(3.0, min(12.0, 3000 / len(pts))), color=colour,
                   alpha=0.7, linewidths=0)
    for i, c in enumerate(ids):
        m = lab == c
        if c < 0 or not m.any():
            continue
        cx, cy = np.median(xy[m], axis=0)
        name = str(names.get(c) or f"topic {c}")
        ax.annotate(f"{c}: {name[:40]}", (cx, cy), fontsize=7, ha="center", va="center",
                    color="#1d2430", bbox={"boxstyle": "round,pad=0.2", "fc": "white",
                                           "ec": cmap(i % 20), "alpha": 0.85})
    ax.set(xticks=[], yticks=[], title=f"{len(pts):,} paragraphs, {len(ids)} topics "
                                       "(2-D UMAP of the embeddings; colour = topic)")
    fig.tight_layout()
    plt.close(fig)
    return fig


#: The modules planted as a new topic in the demo's drift section (GUI toolkits: a topic that
#: is plainly unlike the rest of the corpus).
DRIFT_TOPIC = ("tkinter", "turtle", "tkinter.tix", "tkinter.ttk")


def _drift_topic(frame: pl.DataFrame) -> list[str]:
    """The module values to plant as the new topic: the GUI modules, else the largest module."""
    mods = frame.get_column("module")
    gui = [m for m in DRIFT_TOPIC if (mods == m).any()]
    if gui and int(mods.is_in(gui).sum()) < frame.height:
        return gui
    counts = mods.drop_nulls().value_counts(sort=True)
    top = [m for m, c in counts.iter_rows() if c < frame.height]
    return top[:1]


def _drift_section(store):  # noqa: ANN001, ANN202 - Store -> (list[Section], float)
    """The demo report's drift sections, and the seconds compute_drift took.

    The store's rows get timestamps over six months with the GUI modules (tkinter, turtle)
    only from the fourth month on (:func:`workbench.datasets.with_planted_drift`), and are
    copied with their vectors into ``<store>_drift`` beside the store (recreated each run),
    which compute_drift then tests month by month against the first month.
    """
    from ..analysis.drift import compute_drift
    from ..datasets import with_planted_drift
    from ..reports import Section
    from ..reports.drift import drift_sections
    from ..store import Store

    title = "Drift over time (planted topic)"
    frame = store.scan().collect()
    topic = _drift_topic(frame) if "module" in frame.columns and frame.height else []
    if not topic:
        return [Section(title, "<p class='note'>no module column with two or more values to "
                               "plant a topic from: drift not tested</p>")], 0.0
    # about 100 rows a month or more, so that most windows reach compute_drift's min_rows
    periods = min(6, max(2, frame.height // 100))
    planted = with_planted_drift(frame.drop("key"), "module", topic, periods=periods,
                                 change_at=max(1, periods // 2))
    path = Path(store.path).parent / f"{Path(store.path).name}_drift"
    if path.exists():
        shutil.rmtree(path)
    t0 = time.perf_counter()
    with Store.create(path, dim=store.dim, metric=store.metric, dtype=store.dtype,
                      model=store.model) as drift_store:
        drift_store.add(planted, vectors=store.vectors(planted.get_column("id").to_list()),
                        progress=False)
        t1 = time.perf_counter()
        res = compute_drift(drift_store, every="1mo", progress=False)
    seconds = time.perf_counter() - t1
    is_new = planted.get_column("module").is_in(topic)
    first = planted.get_column("timestamp").min()
    arrives = planted.get_column("timestamp").filter(is_new).min()
    flagged = ", ".join(f"{d:%Y-%m}" for d in res.flagged) or "none"
    sections = drift_sections(res, title=title)
    sections[0] = Section(
        sections[0].title, sections[0].body,
        note=(f"The store's {frame.height:,} rows, given timestamps over {periods} months "
              f"from {first:%Y-%m}; the {int(is_new.sum())} rows of {', '.join(topic)} only "
              f"from {arrives:%Y-%m} on (wb.datasets.with_planted_drift), copied with their "
              f"vectors to {path} ({t1 - t0:.1f} s). wb.compute_drift(store, every='1mo') "
              f"against the first month: flagged {flagged}. {sections[0].note}"))
    sections[1:] = [Section(f"Drift: {s.title[0].lower()}{s.title[1:]}", s.body, note=s.note)
                    for s in sections[1:]]
    return sections, seconds


#: Stored vectors the compression section searches with (recall@10 against exact f32), and
#: stored texts the model comparison embeds with each variant.
COMPRESS_QUERIES = 200
COMPRESS_TEXTS = 300


def _compression_section(store, embedder_name: str):  # noqa: ANN001, ANN202 - (Section, float)
    """The demo report's compression section, and the seconds it took.

    Two halves: the store's own vectors in each dtype and dimension cut
    (:func:`~workbench.compress.compare_vector_dtypes`, any embedder), and a smaller model
    against the store's (:func:`~workbench.compress.compare_models` on stored texts): int8
    MiniLM (ONNX Runtime where installed, else torch) for a MiniLM store, a hashing embedder of
    a quarter of the dimensions for a hashing store.
    """
    import matplotlib.pyplot as plt

    from ..compress import best_reduction, compare_models, compare_vector_dtypes, pareto_front
    from ..embed import Hashing
    from ..reports import Section, figure_html, frame_table

    t0 = time.perf_counter()
    n = len(store)
    title = "Compression: vector dtypes and a smaller model"
    if n < 50:
        return Section(title, f"<p class='note'>{n} rows: too few to compare</p>"), 0.0
    queries = min(COMPRESS_QUERIES, n // 4)
    table = compare_vector_dtypes(store, dims=(None, 128, 64), queries=queries, progress=False)
    shown = table.select("dtype", "index", "dim", "reduce", "rescore", "bytes_per_vector",
                         "index_mb", "qps", "recall_at_k")
    hnsw = table.filter(pl.col("index") == "hnsw")
    front = pareto_front(hnsw, "bytes_per_vector", "recall_at_k")
    fig, ax = plt.subplots(figsize=(6.4, 3.2))
    for dt, grp in hnsw.group_by("dtype", maintain_order=True):
        ax.scatter(grp["bytes_per_vector"], grp["recall_at_k"], s=18, label=str(dt[0]))
    pf = hnsw.filter(pl.Series(front)).sort("bytes_per_vector")
    ax.plot(pf["bytes_per_vector"], pf["recall_at_k"], color="#999", linewidth=1,
            label="Pareto front")
    ax.set(xscale="log", xlabel="bytes per vector (log)", ylabel="recall@10 vs exact f32",
           title="every dtype x cut x rescoring")
    ax.legend(fontsize=7, ncols=3)
    fig.tight_layout()
    plt.close(fig)
    best = best_reduction(table, by=("dtype",))
    b1 = hnsw.filter((pl.col("dtype") == "b1") & pl.col("reduce").is_null())
    b1_text = ", ".join(f"{r['recall_at_k']:.3f} {'rescored' if r['rescore'] else 'alone'}"
                        for r in b1.iter_rows(named=True))
    body = (f"<h3>The store's vectors ({n:,} rows, {queries} of them as queries)</h3>"
            + frame_table(shown) + figure_html(
                fig, alt="recall@10 against bytes per vector for every dtype, dimension cut "
                         "and rescoring setting, with the Pareto front")
            + "<h3>PCA or truncation, per dtype (best_reduction)</h3>" + frame_table(best))
    t_vec = time.perf_counter() - t0

    texts = store.scan().select("text").head(COMPRESS_TEXTS).collect()["text"].to_list()
    teacher = store.embedder
    if embedder_name == "minilm":
        from ..compress import quantization_support, quantize_model
        from ..errors import MissingDependencyError

        try:
            scheme = "onnx-int8"
            variant = quantize_model(teacher, scheme)
        except MissingDependencyError:
            scheme = "int8-dynamic"
            variant = quantize_model(teacher, scheme)
        variants = {scheme: variant}
        support = quantization_support()
    else:
        variants = {f"hashing-{teacher.dim // 4}": Hashing(dim=teacher.dim // 4)}
        support = None
    from ..evaldata import EvalDataMissingError, sts_pairs

    sts = None
    with contextlib.suppress(EvalDataMissingError):  # the shared STS-B data may be absent
        sts = sts_pairs("stsb", "test").head(400)
    models = compare_models(teacher, variants, corpus=texts, sts=sts, progress=False)
    body += (f"<h3>A smaller model against the store's ({len(texts)} stored texts)</h3>"
             + _models_table(models))
    if support is not None:
        body += ("<h3>Which quantization schemes run on this machine</h3>"
                 + frame_table(_support_table(support)))
    seconds = time.perf_counter() - t0
    note = (f"wb.compare_vector_dtypes(store): each dtype x cut (PCA fitted on the store, or "
            f"truncation) x rescoring with the store's f32 vectors, recall@10 against exact f32 "
            f"search; b1 at full dimension: {b1_text or 'not run'}. wb.compare_models: what the "
            f"smaller model keeps of neighbours (knn_recall), k-means clusters (cluster_ari; "
            f"read against cluster_ari_reseed, the model's own k-means under another seed), "
            f"near-duplicate pairs and drift flags on a planted stream. Vectors {t_vec:.1f} s, "
            f"models {seconds - t_vec:.1f} s. The full side-by-side run (students, model2vec, "
            f"SICK, long vs short texts) is benchmarks/bench_compress.py")
    return Section(title, body, note=note), seconds


def _models_table(models: pl.DataFrame) -> str:
    """compare_models' frame as HTML, the teacher's reseed ARI beside each cluster_ari.

    Sizes print in MB and parameters in millions.
    """
    from ..reports import format_bytes, format_count, frame_table

    floor = models.filter(pl.col("role") == "teacher").get_column("cluster_ari_reseed")
    shown = models.drop("note")
    if floor.len() and "cluster_ari" in shown.columns:
        i = shown.columns.index("cluster_ari") + 1
        shown = shown.insert_column(i, pl.repeat(floor[0], shown.height, eager=True)
                                    .alias("teacher_ari_reseed"))
    table = frame_table(shown, formats={"bytes_on_disk": format_bytes,
                                        "params": lambda v: format_count(v, "params")})
    return table + (
        "<p class='note'>cluster_ari is the agreement of the model's k-means clusters with the "
        "teacher's; k-means alone moves the clusters that much between seeds, so read it "
        "against teacher_ari_reseed, the teacher's ARI with itself under another seed: a "
        "variant at or near that floor clusters as stably as the teacher.</p>")


#: Short reasons for a scheme that does not run, matched in the error text, first match wins.
_QUANT_REASONS = (
    ("cuda", "needs a CUDA GPU"),
    ("no module named", "needs package {pkg}"),
    ("requires ", "needs package {pkg}"),
    ("not installed", "needs package {pkg}"),
    ("notimplemented", "not implemented for this CPU / backend"),
)


def _quant_reason(error: str) -> str:
    """A short human reason from a raw exception text (``ImportError: Requires mslk >= 1``)."""
    import re

    low = error.lower()
    pkg = re.search(r"(?:no module named|requires)\s+'?([A-Za-z0-9_.\-]+)", error, re.I)
    for needle, reason in _QUANT_REASONS:
        if needle in low:
            if "{pkg}" in reason and pkg is None:
                continue
            return reason.format(pkg=pkg.group(1).split(".")[0] if pkg else "")
    first = error.split(":", 1)[-1].strip().splitlines()[0] if error.strip() else ""
    return f"fails here: {first[:80]}" if first else "fails here"


def _support_table(support: pl.DataFrame) -> pl.DataFrame:
    """quantization_support() as one row per scheme, short reasons instead of exceptions.

    A scheme runs when any of its backends runs; the backend shown is the one that runs, else
    the first tried.
    """
    rows = []
    for (scheme,), grp in support.group_by("scheme", maintain_order=True):
        ok = grp.filter(pl.col("runs"))
        reasons = list(dict.fromkeys(_quant_reason(r) for r in grp.get_column("reason")
                                     .fill_null("").to_list() if r))
        rows.append({"scheme": scheme, "runs": ok.height > 0,
                     "backend": (ok if ok.height else grp).get_column("backend")[0],
                     "backends tried": grp.height,
                     "why not": "" if ok.height else "; ".join(reasons)})
    return pl.DataFrame(rows, schema={"scheme": pl.String, "runs": pl.Boolean,
                                      "backend": pl.String, "backends tried": pl.Int64,
                                      "why not": pl.String})


def _ann_section(store):  # noqa: ANN001, ANN202 - Store -> Section
    """The recall/QPS sweep of the store's HNSW index.

    A store at or under its exact-search threshold (4,096 rows by default) never uses its
    index, so a sweep on it measures exact search (recall 1 at every setting). Such a store's
    vectors are copied to a temporary store with ``exact_threshold=1``: every query then goes
    through the HNSW index, with the same metric, dtype and HNSW parameters.
    """
    import tempfile

    from ..analysis.search import evaluate_ann
    from ..reports import Section, figure_html, frame_table
    from ..store import Store

    n, params = len(store), store.index_params
    queries = min(200, n)
    sweep = {"expansion_search": [8, 16, 32, 64, 128]}
    title = f"ANN evaluation (recall@10 against exact search, {queries} stored vectors as queries)"
    if n > params["exact_threshold"]:
        ev = evaluate_ann(store, queries, k=10, sweep=sweep, progress=False)
        where = "the store itself (its segments are above the exact-search threshold)"
    else:
        with tempfile.TemporaryDirectory(prefix="wb-ann-") as tmp:
            ids = store.scan().select("id").collect()
            with Store.create(Path(tmp) / "ann", dim=store.dim, metric=store.metric,
                              dtype=store.dtype, model=store.model, exact_threshold=1,
                              connectivity=params["connectivity"],
                              expansion_add=params["expansion_add"]) as copy:
                copy.add(ids, vectors=store.vectors(ids.get_column("id").to_list()),
                         progress=False)
                ev = evaluate_ann(copy, queries, k=10, sweep=sweep, progress=False)
        where = (f"a temporary copy of its vectors with exact_threshold=1: the demo store's "
                 f"{n:,} rows are under its exact-search threshold "
                 f"({params['exact_threshold']:,}), so its own searches are exact (recall 1 "
                 "at any setting) and the copy forces every query through the HNSW index")
    note = f"Measured on {where}. Exact search: {ev.exact_qps:,.0f} queries/s."
    return Section(title, frame_table(ev.to_frame()) + figure_html(ev.plot(), alt="recall vs QPS"),
                   note=note)


def _notebook_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"--notebooks: no such folder: {folder.resolve()}")
    files = sorted(folder.glob("*.ipynb"))
    if not files:
        raise InvalidInputError(f"--notebooks: no .ipynb files in {folder.resolve()}")
    return files


def demo(args: argparse.Namespace) -> int:
    """Build the demo store, run searches and write ``reports/index.html``.

    The store holds paragraphs of the Python documentation (embedded once, then cached). The
    report shows searches, a filtered search, an ANN recall sweep, near-duplicate groups, the
    topic hierarchy, drift over time (on a copy beside the store, with a planted topic) and
    timings, and links the notebooks executed from --notebooks (skipped, with a note, when that
    folder is missing).

    Parameters
    ----------
    args : argparse.Namespace
        The parsed options of ``workbench demo``.

    Returns
    -------
    int
        The exit status, 0.
    """
    from ..reports import Section, frame_table, store_summary, write_report

    t0 = time.perf_counter()
    # Notebook kernels run in notebooks/: give them the same cache, as an absolute path.
    args.cache = str(Path(args.cache).resolve())
    os.environ["WORKBENCH_CACHE_DIR"] = args.cache
    limit = args.limit if args.limit > 0 else None
    store_path, reports = Path(args.store), Path(args.reports)
    print(f"building {store_path} from the Python documentation corpus ({args.embedder})")
    store, added, embedded = _build_demo_store(store_path, limit=limit,
                                               embedder_name=args.embedder,
                                               cache=Path(args.cache))
    t_build = time.perf_counter() - t0
    print(f"store ready: {len(store):,} rows in {t_build:.1f}s")
    sections = [store_summary(store)]
    t1 = time.perf_counter()
    res = store.search(list(DEMO_QUERIES), k=5)
    t_search = time.perf_counter() - t1
    for i, q in enumerate(DEMO_QUERIES):
        rows = res.filter(pl.col("query") == i).select("id", "distance", "module", "kind", "text")
        sections.append(Section(f"Search: {q}", frame_table(rows)))
    filtered = store.search(DEMO_QUERIES[2], k=5, where=pl.col("source") == "pydoc-topic")
    sections.append(Section(
        f"Filtered search (source = pydoc-topic): {DEMO_QUERIES[2]}",
        frame_table(filtered.select("id", "distance", "module", "text")),
    ))
    sections.append(_ann_section(store))
    # The hybrid score's blend is fitted on MiniLM cosines; another embedder's are not comparable.
    dedup, t_dedup = _dedup_section(store, method="hybrid" if args.embedder == "minilm"
                                    else "cosine")
    sections.append(dedup)
    hierarchy, t_topics = _topics_section(store)
    sections.append(hierarchy)
    drift, t_drift = _drift_section(store)
    sections.extend(drift)
    compression, t_compress = _compression_section(store, args.embedder)
    sections.append(compression)
    sections.append(Section(
        "Timing",
        frame_table(pl.DataFrame({
            "step": [_build_step(added, embedded), "5 searches (batched)",
                     "near-duplicates (find_duplicates)", "topic hierarchy (cluster)",
                     "drift over time (compute_drift, planted topic)",
                     "compression (vector dtypes, a smaller model)"],
            "seconds": [round(t_build, 2), round(t_search, 4), round(t_dedup, 3),
                        round(t_topics, 2), round(t_drift, 2), round(t_compress, 2)],
        })),
    ))
    nb_dir = Path(args.notebooks)
    if args.no_notebooks:
        pass
    elif not nb_dir.is_dir() or not any(nb_dir.glob("*.ipynb")):
        why = "is missing" if not nb_dir.is_dir() else "has no .ipynb files"
        note = (f"notebooks skipped: the folder {nb_dir.resolve()} {why} (run from the "
                "repository root, pass --notebooks DIR, or --no-notebooks)")
        print(note)
        sections.append(Section("Notebooks (not executed)", "", note=note))
    else:
        import html as _html

        from ..notebooks import run_notebooks

        done = run_notebooks(nb_dir, reports / "notebooks")
        links = "".join(
            f"<li><a href='notebooks/{_html.escape(Path(out).name)}'>{_html.escape(name)}</a>"
            f" ({secs:.0f} s)</li>"
            for name, secs, out in done.iter_rows()
        )
        sections.append(Section("Notebooks (executed)", f"<ul>{links}</ul>"))
    out = write_report(reports / "index.html", "Embedding Workbench demo", sections,
                       subtitle=f"{len(store):,} paragraphs of the Python documentation")
    store.close()
    print(f"report written to {out.resolve()}")
    print(f"demo finished in {time.perf_counter() - t0:.1f}s")
    return 0


def notebooks(args: argparse.Namespace) -> int:
    """Execute the notebooks into the reports folder, as HTML.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed options of ``workbench notebooks``.

    Returns
    -------
    int
        The exit status, 0.
    """
    from ..notebooks import run_notebooks

    folder = Path(args.notebooks)
    _notebook_files(folder)
    print(run_notebooks(folder, Path(args.reports) / "notebooks"))
    return 0


