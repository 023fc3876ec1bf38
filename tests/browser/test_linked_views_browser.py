"""LinkedViews in a real JupyterLab: a search redraws the map; a lasso filters the search."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.harness import (
    Lab,
    cell_errors,
    lasso,
    rerun_cell,
    run_all_cells,
    screenshot,
    write_notebook,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CELLS = [
    "import tempfile\nimport workbench as wb\nfrom workbench.analysis import cluster",
    (
        "docs = wb.datasets.python_docs(limit=400)\n"
        "store = wb.Store.create(tempfile.mkdtemp() + '/s', embedder=wb.embed.Hashing(dim=128))\n"
        "store.add(docs.select('id', 'text', 'module'), text='text', progress=False)\n"
        "result = cluster(store, reducer='pca', layout='pca', progress=False)"
    ),
    "views = wb.widgets.LinkedViews.from_store(store, result, k=5, neighbours=15, height=420)\n"
    "views",
    "r = views.panel.restricted_to\nprint('restricted', 0 if r is None else len(r))",
]

_MAP = ".wb-linked-views .wb-cluster-map"

# Each "More like this" button shows its whole label beside a real paragraph.
_BUTTONS_JS = """() => [...document.querySelectorAll('.wb-result-row button')].map(b => ({
  text: b.innerText.trim(), width: b.getBoundingClientRect().width,
  clipped: b.scrollWidth > b.clientWidth + 1}))"""


def _map_pixels(page: Any) -> bytes:
    return page.locator(f"{_MAP} canvas").first.screenshot()


def test_search_highlights_the_map_and_a_lasso_filters_the_search(lab: Lab, page: Any) -> None:
    write_notebook(lab.root / "linked_views.ipynb", CELLS)
    page.goto(lab.notebook_url("linked_views.ipynb"))
    run_all_cells(page, ready_selector=f"{_MAP} canvas")
    page.wait_for_selector("text=/restricted \\d+/", timeout=60_000)
    assert cell_errors(page) == []
    page.wait_for_timeout(1500)
    before = _map_pixels(page)
    box = page.locator(".wb-linked-views .wb-query input")
    box.fill("parse an xml document")
    box.press("Enter")
    page.wait_for_function(
        "() => document.querySelectorAll('.wb-linked-views .wb-result-row').length === 5",
        timeout=30_000)
    # the map redraws with the hits large and every other point small
    page.wait_for_timeout(1500)
    assert _map_pixels(page) != before
    # the buttons keep their label beside long paragraphs (they used to shrink to "M…")
    buttons = page.evaluate(_BUTTONS_JS)
    assert len(buttons) == 5
    for b in buttons:
        assert b["text"] == "More like this" and not b["clipped"] and b["width"] > 80, b
    status = page.locator(".wb-linked-views .wb-status")
    assert "5 results" in status.inner_text() and "map selection" not in status.inner_text()
    # a lasso around the left half of the map restricts the search and re-runs it
    lasso(page, _MAP, (0.03, 0.05, 0.5, 0.95))
    page.wait_for_function(
        "() => /map selection: [1-9]\\d* rows/.test("
        "document.querySelector('.wb-linked-views .wb-status').innerText)", timeout=30_000)
    n = int(re.search(r"map selection: (\d+) rows", status.inner_text()).group(1))
    assert "Filters (1)" in page.locator(".wb-linked-views .wb-filters").inner_text()
    rerun_cell(page, len(CELLS) - 1, r"restricted [1-9]")
    out = page.locator(".jp-OutputArea-output:has-text('restricted ')").last.inner_text()
    assert int(re.search(r"restricted (\d+)", out).group(1)) == n
    assert cell_errors(page) == []
    screenshot(page, "check_linked_views.png", widget=".wb-linked-views")
