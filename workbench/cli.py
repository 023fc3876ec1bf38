"""Command line: ``workbench demo``, ``workbench info PATH``, ``workbench notebooks``."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import polars as pl

DEMO_QUERIES = (
    "read a text file line by line",
    "sort a list of records by a key function",
    "what happens to an exception raised inside a finally clause",
    "match a regular expression and extract named groups",
    "run work in parallel threads and protect shared state with a lock",
)


def _embedder(name: str, cache: Path):  # noqa: ANN202 - returns an Embedder
    from .embed import Hashing, MiniLM

    if name == "hashing":
        return Hashing(dim=384, cache=cache)
    return MiniLM(cache=cache)


def build_demo_store(path: Path, *, limit: int | None, embedder_name: str, cache: Path,
                     progress: bool = True):  # noqa: ANN201 - returns a Store
    """Create or bring up to date the demo store from :func:`workbench.datasets.python_docs`."""
    from .datasets import python_docs
    from .errors import ModelMismatchError
    from .store import Store

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
    with store.transaction():
        if stale:
            store.delete(stale)
        if new.height:
            store.add(new, text="text", progress=progress)
    return store


def demo(args: argparse.Namespace) -> int:
    """Build the demo store, run searches and write ``reports/index.html``."""
    from .analysis.search import evaluate_ann
    from .reports import Section, figure_html, frame_table, store_summary, write_report

    t0 = time.perf_counter()
    # Notebook kernels run in notebooks/: give them the same cache, as an absolute path.
    args.cache = str(Path(args.cache).resolve())
    os.environ["WORKBENCH_CACHE_DIR"] = args.cache
    limit = args.limit if args.limit > 0 else None
    store_path, reports = Path(args.store), Path(args.reports)
    print(f"building {store_path} from the Python documentation corpus ({args.embedder})")
    store = build_demo_store(store_path, limit=limit, embedder_name=args.embedder,
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
    ev = evaluate_ann(store, min(200, len(store)), k=10,
                      sweep={"expansion_search": [8, 16, 32, 64, 128]}, progress=False)
    sections.append(Section(
        "ANN evaluation (recall@10 against exact search, 200 stored vectors as queries)",
        frame_table(ev.to_frame()) + figure_html(ev.plot(), alt="recall vs QPS"),
        note=f"exact search: {ev.exact_qps:,.0f} queries/s",
    ))
    sections.append(Section(
        "Timing",
        frame_table(pl.DataFrame({
            "step": ["build or update store (embeddings cached)", "5 searches (batched)"],
            "seconds": [round(t_build, 2), round(t_search, 4)],
        })),
    ))
    nb_dir = Path(args.notebooks)
    if not args.no_notebooks and nb_dir.is_dir():
        import html as _html

        from .notebooks import run_notebooks

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


def info(args: argparse.Namespace) -> int:
    """Print a store's summary."""
    from .store import Store

    with Store.open(args.path, readonly=True, verify=not args.fast) as store:
        print(store)
        print(store.segments)
    return 0


def notebooks(args: argparse.Namespace) -> int:
    """Execute the notebooks into the reports folder."""
    from .notebooks import run_notebooks

    print(run_notebooks(Path(args.notebooks), Path(args.reports) / "notebooks"))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``workbench`` command."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    parser = argparse.ArgumentParser(prog="workbench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="build the demo store, search it, write HTML reports")
    p.add_argument("--store", default="data/stores/demo")
    p.add_argument("--reports", default="reports")
    p.add_argument("--cache", default=os.environ.get("WORKBENCH_CACHE_DIR", "data/cache"))
    p.add_argument("--limit", type=int, default=2000, help="paragraphs to index (0 = all)")
    p.add_argument("--embedder", choices=("minilm", "hashing"), default="minilm")
    p.add_argument("--notebooks", default="notebooks")
    p.add_argument("--no-notebooks", action="store_true")
    p.set_defaults(func=demo)
    p = sub.add_parser("info", help="summarise a store")
    p.add_argument("path")
    p.add_argument("--fast", action="store_true", help="skip checksum verification")
    p.set_defaults(func=info)
    p = sub.add_parser("notebooks", help="execute notebooks/ into reports/notebooks")
    p.add_argument("--notebooks", default="notebooks")
    p.add_argument("--reports", default="reports")
    p.set_defaults(func=notebooks)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
