"""The ClusterExplorer map in a real JupyterLab: it renders, and a lasso reaches the kernel."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.harness import (
    Lab,
    cell_errors,
    hover_map,
    lasso,
    rerun_cell,
    run_all_cells,
    screenshot,
    write_notebook,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CELLS = [
    "import tempfile\nimport polars as pl\nimport workbench as wb\n"
    "from workbench.analysis import cluster",
    (
        "d = wb.datasets.digits()\n"
        "store = wb.Store.create(tempfile.mkdtemp() + '/s', dim=64, metric='l2sq', dtype='f32')\n"
        "store.add(d.frame.with_columns(pl.format('<img src=x onerror=\"document.title=1\">"
        " digit {}', pl.col('label')).alias('text')), vectors=d.vectors, progress=False)\n"
        "result = cluster(store, reducer='pca', layout='pca', progress=False)"
    ),
    "explorer = wb.widgets.ClusterExplorer(result, store=store, height=420)\nexplorer",
    "print('selected', len(explorer.selection))",
]


def _selected(page: Any) -> int:
    out = page.locator(".jp-OutputArea-output:has-text('selected ')").last.inner_text()
    return int(re.search(r"selected (\d+)", out).group(1))


# jupyter-scatter's tooltip: a div inside the map whose inline opacity turns 1 on hover.
_TOOLTIP_JS = """() => [...document.querySelectorAll('.wb-cluster-map div')]
  .filter(d => d.style.opacity === '1' && d.innerText.includes('digit'))
  .map(d => d.innerText).join('\\n')"""


def _hover_text(page: Any, box: dict[str, float]) -> str:
    """Move over the map until a point's tooltip shows; returns the tooltip's text."""
    for fy in (0.5, 0.55, 0.8, 0.3, 0.7):
        for fx in (0.5, 0.55, 0.6, 0.4, 0.3, 0.7):
            page.mouse.move(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy,
                            steps=5)
            page.wait_for_timeout(700)
            text = page.evaluate(_TOOLTIP_JS)
            if text:
                return text
    raise AssertionError("no tooltip with the row's text appeared while hovering the map")


def test_cluster_map_renders_and_lasso_selection_reaches_kernel(lab: Lab, page: Any) -> None:
    write_notebook(lab.root / "cluster_explorer.ipynb", CELLS)
    page.goto(lab.notebook_url("cluster_explorer.ipynb"))
    run_all_cells(page, ready_selector=".wb-cluster-explorer .wb-cluster-map canvas")
    page.wait_for_selector("text=/selected \\d+/", timeout=60_000)
    assert cell_errors(page) == []
    assert _selected(page) == 0
    canvas = page.locator(".wb-cluster-map canvas").first
    box = canvas.bounding_box()
    assert box is not None and box["width"] > 100 and box["height"] > 100
    assert "trustworthiness" in page.locator(".wb-cluster-metrics").inner_text()
    assert page.locator(".wb-cluster-table tr").count() > 2
    # a lasso over the lower part of the map
    lasso(page, ".wb-cluster-map", (0.15, 0.5, 0.85, 0.9))
    # re-run the selection cell in place: the kernel reports what the browser selected
    rerun_cell(page, len(CELLS) - 1, r"selected [1-9]")
    assert _selected(page) > 50  # a lasso over a third of the map, not a single click
    # hover: the tooltip shows the row's text as text (the <img onerror> stays inert)
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    assert box is not None
    tip = _hover_text(page, box)
    assert '<img src=x onerror="document.title=1"> digit' in tip
    assert page.evaluate("document.querySelectorAll('img[src=\"x\"]').length") == 0
    assert page.title() != "1"
    screenshot(page, "escaping_cluster_explorer.png", widget=".wb-cluster-explorer")


LEVEL_CELLS = [
    *CELLS[:3],
    "print('levels', result.hierarchy.n_clusters, result.params['topics']['n_topics'])",
]

_LEGEND_JS = "() => document.querySelectorAll('.wb-cluster-legend .wb-legend-entry').length"


def _wait_legend(page: Any, n: int) -> None:
    """Wait until the legend beside the map has `n` entries."""
    page.wait_for_function(
        f"() => document.querySelectorAll('.wb-cluster-legend .wb-legend-entry').length"
        f" === {n}",
        timeout=30_000)


def test_granularity_slider_recolours_the_map(lab: Lab, page: Any) -> None:
    write_notebook(lab.root / "cluster_levels.ipynb", LEVEL_CELLS)
    page.goto(lab.notebook_url("cluster_levels.ipynb"))
    run_all_cells(page, ready_selector=".wb-cluster-explorer .wb-cluster-map canvas")
    page.wait_for_selector("text=/levels \\d+ \\d+/", timeout=60_000)
    assert cell_errors(page) == []
    out = page.locator(".jp-OutputArea-output:has-text('levels ')").last.inner_text()
    k, level = (int(v) for v in re.search(r"levels (\d+) (\d+)", out).groups())
    assert 1 < level <= k
    _wait_legend(page, level)
    tree = page.locator(".wb-cluster-hierarchy .wb-topic-current")
    assert tree.count() == level
    # the keyboard on the slider's handle; continuous_update=False fires on the key's release
    handle = page.locator(".wb-cluster-granularity .noUi-handle").first
    handle.focus()
    page.keyboard.press("Home")
    _wait_legend(page, 1)
    page.wait_for_selector(".wb-cluster-explorer :text('1 cluster of')", timeout=30_000)
    assert tree.count() == 1
    page.keyboard.press("End")
    _wait_legend(page, k)
    assert int(page.locator(".wb-cluster-granularity .widget-readout").inner_text()) == k
    page.wait_for_selector(f".wb-cluster-explorer :text('{k} clusters of {k}')", timeout=30_000)
    assert tree.count() == k
    # HDBSCAN's noise greyed again: one more legend entry, the same clustering
    page.locator(".wb-cluster-noise input").click()
    _wait_legend(page, k + 1)
    assert page.locator(".wb-cluster-legend .wb-legend-entry").last.inner_text().strip() == "noise"
    assert page.evaluate(_LEGEND_JS) == k + 1
    assert cell_errors(page) == []
    page.locator(".wb-cluster-hierarchy").scroll_into_view_if_needed()
    screenshot(page, "cluster_explorer_levels.png")


IMAGE_CELLS = [
    CELLS[0],
    (
        "d = wb.datasets.digits()\n"
        "result = cluster(d.vectors, frame=d.frame, text=None, reducer='pca', layout='pca',"
        " progress=False)\n"
        "meta = d.frame.with_columns(image=wb.widgets.thumbnails(d.vectors, (8, 8)))"
    ),
    "explorer = wb.widgets.ClusterExplorer(result, metadata=meta, text='label', image='image',"
    " height=420)\nexplorer",
]

# the tooltip's preview: jupyter-scatter draws it as the background of a div, once a hover
# made the tooltip visible
_THUMB_JS = """() => [...document.querySelectorAll('.wb-cluster-map div')]
  .filter(d => d.style.backgroundImage.startsWith('url("data:image/png')
          && d.getBoundingClientRect().height > 20).length"""


def test_hover_shows_a_digit_thumbnail(lab: Lab, page: Any) -> None:
    write_notebook(lab.root / "cluster_images.ipynb", IMAGE_CELLS)
    page.goto(lab.notebook_url("cluster_images.ipynb"))
    run_all_cells(page, ready_selector=".wb-cluster-explorer .wb-cluster-map canvas")
    assert cell_errors(page) == []
    hover_map(page, _THUMB_JS)
    assert page.evaluate(_THUMB_JS) >= 1, "no thumbnail in the tooltip while hovering the map"
    screenshot(page, "check_cluster_explorer_thumbnail.png", widget=".wb-cluster-map")
