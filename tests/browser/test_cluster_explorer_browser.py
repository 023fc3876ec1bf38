"""The ClusterExplorer map in a real JupyterLab: it renders, and a lasso reaches the kernel."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.harness import Lab, cell_errors, run_all_cells, screenshot, write_notebook

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
    # lasso: shift + drag a loop around the middle of the map
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    rx, ry = box["width"] * 0.35, box["height"] * 0.35
    page.keyboard.down("Shift")
    page.mouse.move(cx - rx, cy - ry)
    page.mouse.down()
    for px, py in [(cx + rx, cy - ry), (cx + rx, cy + ry), (cx - rx, cy + ry), (cx - rx, cy - ry)]:
        page.mouse.move(px, py, steps=12)
    page.mouse.up()
    page.keyboard.up("Shift")
    page.wait_for_timeout(1500)
    # re-run the last cell: the kernel reports what the browser selected
    page.locator(".jp-Cell").last.click()
    page.keyboard.press("Shift+Enter")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.jp-OutputArea-output')]"
        ".some(e => /selected [1-9]/.test(e.innerText))", timeout=30_000)
    assert _selected(page) > 0
    assert page.title() != "1"
    screenshot(page, "cluster_explorer.png")
