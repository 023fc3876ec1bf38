"""The README's widget screenshots, taken in a real JupyterLab on the demo corpus.

The escaping tests (``test_*_browser.py``) feed the widgets hostile markup on purpose; these
tests feed them what ``make demo`` shows: Python-docs paragraphs embedded with MiniLM (cached
under ``$WORKBENCH_CACHE_DIR``, default ``data/cache``), their topics, near-duplicate
paragraphs and the demo's planted drift stream. Each test saves one image under
``reports/screenshots/`` with the name :data:`workbench.notebooks.SCREENSHOTS` gives it;
``make screenshots`` runs this module only and copies them into ``data/screenshots/``.
``tests/test_screenshot_sources.py`` checks that nothing here feeds the widgets markup.
"""

from __future__ import annotations

import functools
import os
import string
import tempfile
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tests.browser.harness import (
    Lab,
    cell_errors,
    hover_map,
    run_all_cells,
    screenshot,
    write_notebook,
)

pytestmark = [
    pytest.mark.browser, pytest.mark.slow,
    # pictures for the README, not checks: ~6 minutes of JupyterLab kernels that `make test`
    # (and CI) leave to `make screenshots`
    pytest.mark.skipif(not os.environ.get("WORKBENCH_SCREENSHOTS"),
                       reason="takes the README's screenshots: make screenshots "
                              "(WORKBENCH_SCREENSHOTS=1)"),
]

ROOT = Path(__file__).resolve().parents[2]
#: Paragraphs of the demo corpus's seeded sample: 100 a month over the drift stream's months.
ROWS = 480
#: The sample the near-duplicate groups are looked for in (the demo notebooks' 2,000 rows).
DUP_SAMPLE = 2_000
#: Lexical near-duplicate groups of that sample added to the rows.
DUP_GROUPS = 12
#: The queries typed into the search boxes (from ``workbench demo``'s list).
SEARCH_QUERY = "read a text file line by line"
LINKED_QUERY = "run work in parallel threads and protect shared state with a lock"
#: Texts each model embeds in the CompressionLab's Compare (every model embeds them).
LAB_TEXTS = 60


def _cache_dir() -> Path:
    return Path(os.environ.get("WORKBENCH_CACHE_DIR") or ROOT / "data" / "cache")


@functools.cache
def corpus() -> pl.DataFrame:
    """The screenshots' rows: ``python_docs(limit=ROWS)``, plus the paragraphs of the first
    ``DUP_GROUPS`` groups a lexical :func:`~workbench.find_duplicates` finds in
    ``python_docs(limit=DUP_SAMPLE)`` (the sample alone holds almost none), so that the
    DedupReviewer has real near-duplicates to show.

    Schema: ``id, text, source, module, kind`` (all ``str``), as :func:`python_docs`.
    """
    import workbench as wb

    docs = wb.datasets.python_docs(limit=DUP_SAMPLE)
    with tempfile.TemporaryDirectory() as tmp, wb.Store.create(
            Path(tmp) / "probe", embedder=wb.embed.Hashing(dim=256), metric="cos") as probe:
        probe.add(docs.select("id", "text"), text="text", progress=False)
        found = wb.find_duplicates(probe, method="lexical", progress=False)
    dup_ids = found.groups.filter(pl.col("group") < DUP_GROUPS).get_column("id")
    # python_docs(limit=n) is a prefix of python_docs(limit=m) for n < m
    return docs.filter((pl.int_range(pl.len()) < ROWS) | pl.col("id").is_in(dup_ids.implode()))


def drift_rows(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` with timestamps as the demo report's drift section gives them: the GUI modules
    (tkinter, turtle) planted as a new topic from the middle month on."""
    import workbench as wb
    from workbench.cli.demo import _drift_topic

    periods = min(6, max(2, frame.height // 100))
    return wb.datasets.with_planted_drift(frame, "module", _drift_topic(frame),
                                          periods=periods, change_at=max(1, periods // 2))


@pytest.fixture(scope="module")
def stores(lab: Lab) -> dict[str, str]:
    """The demo store (MiniLM, cos, f16 as ``workbench demo``) and its drift copy, under the
    lab's root; the cluster tree computed once, cached for the notebooks' ``cluster`` calls."""
    import workbench as wb
    from workbench.analysis import cluster

    folder = lab.root / "screenshot-stores"
    cache = _cache_dir()
    rows = corpus()
    docs_path, drift_path = folder / "docs.store", folder / "drift.store"
    with wb.Store.create(docs_path, embedder=wb.embed.MiniLM(cache=cache), metric="cos",
                         dtype="f16") as store:
        store.add(rows, text="text", progress=False)
        planted = drift_rows(rows)
        with wb.Store.create(drift_path, dim=store.dim, metric=store.metric, dtype=store.dtype,
                             model=store.model) as drift:
            drift.add(planted, vectors=store.vectors(planted.get_column("id").to_list()),
                      progress=False)
        # UMAP on 2 cores takes ~35 s: once here (and cached across runs), not per notebook
        cluster(store, cache=cache / "screenshot-clusters", progress=False)
    return {"docs": str(docs_path), "drift": str(drift_path),
            "clusters": str(cache / "screenshot-clusters")}


#: The first cell of every notebook.
SETUP = ("import polars as pl\nimport workbench as wb\nfrom workbench.analysis import cluster\n"
         "store = wb.Store.open($docs, readonly=True)")


_CLUSTER = "result = cluster(store, cache=$clusters, progress=False)"
#: The model loaded before the widget's first query, whose time the picture shows.
_WARM = "_ = store.search('warm up', k=1)"

#: Every notebook's cells after the setup cell, by screenshot; ``$docs``, ``$drift`` and
#: ``$clusters`` stand for the paths (as Python literals) of :func:`stores`.
CELLS: dict[str, list[str]] = {
    "search_panel.png": [_WARM, "panel = wb.widgets.SearchPanel(store, k=5)\npanel"],
    "linked_views.png": [
        _CLUSTER + "\n" + _WARM,
        "views = wb.widgets.LinkedViews.from_store(store, result, k=5, neighbours=15,"
        " height=420)\nviews",
    ],
    "cluster_explorer.png": [
        _CLUSTER,
        "explorer = wb.widgets.ClusterExplorer(result, store=store, height=420)\nexplorer",
    ],
    "cluster_explorer_thumbnail.png": [
        "d = wb.datasets.digits()\n"
        "digits = cluster(d.vectors, frame=d.frame, text=None, reducer='pca', layout='pca',"
        " progress=False)\n"
        "meta = d.frame.with_columns(image=wb.widgets.thumbnails(d.vectors, (8, 8)))",
        "explorer = wb.widgets.ClusterExplorer(digits, metadata=meta, text='label',"
        " image='image', height=420)\nexplorer",
    ],
    "dedup_reviewer.png": [
        "result = wb.find_duplicates(store, progress=False)\n"
        "print('groups', result.summary['groups'])",
        "reviewer = wb.widgets.DedupReviewer(result, store)\nreviewer",
    ],
    "drift_dashboard.png": [
        "drift = wb.Store.open($drift, readonly=True)\n"
        "result = wb.compute_drift(drift, every='1mo', progress=False)\n"
        "print('flagged', len(result.flagged))",
        "dash = wb.widgets.DriftDashboard(result, drift)\ndash",
    ],
    "compression_lab.png": [
        "from workbench.compress import quantize_model\n"
        "teacher = wb.embed.MiniLM()\n"
        "variants = {s: quantize_model(teacher, s) for s in ('int8-dynamic', 'bf16')}\n"
        f"texts = store.scan().select('text').head({LAB_TEXTS}).collect()['text'].to_list()",
        "lab = wb.widgets.CompressionLab(teacher, variants, texts, k=5, drift=False)\nlab",
    ],
}


def _open(lab: Lab, page: Any, paths: dict[str, str], name: str, ready: str) -> None:
    """Write the notebook of screenshot `name`, open it, run it, wait for `ready`."""
    cells = notebook_cells(name, paths)
    notebook = f"shot_{Path(name).stem}.ipynb"
    write_notebook(lab.root / notebook, cells)
    page.goto(lab.notebook_url(notebook))
    run_all_cells(page, ready_selector=ready, timeout=240)
    assert cell_errors(page) == []


def _search(page: Any, scope: str, query: str, k: int) -> None:
    box = page.locator(f"{scope} .wb-query input").first
    box.fill(query)
    box.press("Enter")
    page.wait_for_function(
        f"() => document.querySelectorAll('{scope} .wb-result-row').length === {k}",
        timeout=60_000)


# jupyter-scatter's tooltip: a div inside the map whose inline opacity turns 1 on hover; its
# image preview is another div's background, drawn once the tooltip shows.
_TOOLTIP_JS = """() => [...document.querySelectorAll('.wb-cluster-map div')]
  .filter(d => d.style.opacity === '1' && d.innerText.trim().length > 20).length"""
_THUMB_JS = """() => [...document.querySelectorAll('.wb-cluster-map div')]
  .filter(d => d.style.backgroundImage.startsWith('url("data:image/png')
          && d.getBoundingClientRect().height > 20).length"""


def test_search_panel(lab: Lab, page: Any, stores: dict[str, str]) -> None:
    _open(lab, page, stores, "search_panel.png", ".wb-search-panel .wb-query input")
    _search(page, ".wb-search-panel", SEARCH_QUERY, 5)
    assert "5 results" in page.locator(".wb-search-panel .wb-status").inner_text()
    screenshot(page, "search_panel.png", widget=".wb-search-panel")


def test_linked_views(lab: Lab, page: Any, stores: dict[str, str]) -> None:
    _open(lab, page, stores, "linked_views.png", ".wb-linked-views .wb-cluster-map canvas")
    _search(page, ".wb-linked-views", LINKED_QUERY, 5)
    page.wait_for_timeout(1500)  # the map redraws the hits large
    screenshot(page, "linked_views.png", widget=".wb-linked-views")


def test_cluster_explorer(lab: Lab, page: Any, stores: dict[str, str]) -> None:
    _open(lab, page, stores, "cluster_explorer.png", ".wb-cluster-explorer .wb-cluster-map canvas")
    assert page.locator(".wb-cluster-legend .wb-legend-entry").count() > 2
    hover_map(page, _TOOLTIP_JS)  # a paragraph's tooltip if one shows; the map either way
    screenshot(page, "cluster_explorer.png", widget=".wb-cluster-explorer")


def test_cluster_explorer_thumbnail(lab: Lab, page: Any, stores: dict[str, str]) -> None:
    _open(lab, page, stores, "cluster_explorer_thumbnail.png",
          ".wb-cluster-explorer .wb-cluster-map canvas")
    assert hover_map(page, _THUMB_JS), "no thumbnail in the tooltip while hovering the map"
    screenshot(page, "cluster_explorer_thumbnail.png", widget=".wb-cluster-map")


def test_dedup_reviewer(lab: Lab, page: Any, stores: dict[str, str]) -> None:
    _open(lab, page, stores, "dedup_reviewer.png", ".wb-dedup-reviewer .wb-dedup-groups")
    assert int(page.locator(".wb-dedup-reviewer .wb-dedup-groups").inner_text()) > 0
    page.wait_for_selector(".wb-dedup-pair", timeout=30_000)
    screenshot(page, "dedup_reviewer.png", widget=".wb-dedup-reviewer")


def test_drift_dashboard(lab: Lab, page: Any, stores: dict[str, str]) -> None:
    _open(lab, page, stores, "drift_dashboard.png", ".wb-drift .wb-drift-detail")
    page.wait_for_selector("text=/flagged [1-9]/", timeout=60_000)
    page.wait_for_selector(".wb-drift .js-plotly-plot .main-svg", timeout=60_000)
    page.wait_for_timeout(1000)
    screenshot(page, "drift_dashboard.png", widget=".wb-drift")


def test_compression_lab(lab: Lab, page: Any, stores: dict[str, str]) -> None:
    _open(lab, page, stores, "compression_lab.png", ".wb-compression-lab .wb-lab-run")
    page.locator(".wb-compression-lab .wb-lab-run").click()
    page.wait_for_function(
        "() => (document.querySelector('.wb-lab-status') || {}).innerText"
        "?.includes('variant(s)')", timeout=180_000)
    page.wait_for_selector(".wb-compression-lab .scatterlayer .point", timeout=30_000)
    assert cell_errors(page) == []
    page.wait_for_timeout(1000)
    screenshot(page, "compression_lab.png", widget=".wb-compression-lab")


def notebook_cells(name: str, paths: dict[str, str]) -> list[str]:
    """The cells of screenshot `name`'s notebook, the store `paths` filled in."""
    literals = {k: repr(v) for k, v in paths.items()}
    return [string.Template(c).substitute(literals) for c in [SETUP, *CELLS[name]]]
