"""The DedupReviewer in a real JupyterLab: the slider re-groups, a decision reaches the kernel."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.harness import (
    Lab,
    cell_errors,
    rerun_cell,
    run_all_cells,
    screenshot,
    write_notebook,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CELLS = [
    "import tempfile\nimport polars as pl\nimport workbench as wb\n"
    "from workbench.datasets import synthetic_stream",
    (
        "st = synthetic_stream(2_000, 32, duplicate_groups=10, drift_points=0)\n"
        "store = wb.Store.create(tempfile.mkdtemp() + '/s', dim=32)\n"
        "store.add(st.frame.with_columns(text=pl.format("
        "'row {} <img src=x onerror=\"document.title=1\"> <b>text</b>', pl.col('id'))),\n"
        "          vectors=st.vectors, progress=False)\n"
        "result = wb.find_duplicates(store, method='cosine', progress=False)"
    ),
    "reviewer = wb.widgets.DedupReviewer(result, store)\nreviewer",
    "print('decisions', reviewer.decisions.height)",
]


#: Left and right ends of the histogram's x axis and of the slider's track (px).
_ALIGN_JS = """() => {
  const axis = document.querySelectorAll('.wb-dedup-reviewer svg.wb-dedup-hist line')[1]
    .getBoundingClientRect();
  const track = document.querySelector('.wb-dedup-reviewer .wb-dedup-threshold .noUi-base')
    .getBoundingClientRect();
  return [axis.left, axis.right, track.left, track.right];
}"""


def _groups(page: Any) -> int:
    return int(page.locator(".wb-dedup-reviewer .wb-dedup-groups").inner_text())


def _wait_groups(page: Any, test: str) -> None:
    """Wait until the group count in the DOM passes the JS test on `n`."""
    page.wait_for_function(
        "() => { const e = document.querySelector('.wb-dedup-reviewer .wb-dedup-groups');"
        f" const n = e ? parseInt(e.innerText) : NaN; return {test}; }}", timeout=30_000)


def test_dedup_reviewer_slider_regroups_and_a_decision_reaches_kernel(lab: Lab,
                                                                      page: Any) -> None:
    write_notebook(lab.root / "dedup_reviewer.ipynb", CELLS)
    page.goto(lab.notebook_url("dedup_reviewer.ipynb"))
    run_all_cells(page, ready_selector=".wb-dedup-reviewer .wb-dedup-groups")
    page.wait_for_selector("text=/decisions \\d+/", timeout=60_000)
    assert cell_errors(page) == []
    before = _groups(page)
    # the slider's track lies under the histogram's x axis: a score on one is the same score
    # on the other (to within a few pixels)
    axis_l, axis_r, track_l, track_r = page.evaluate(_ALIGN_JS)
    assert abs(track_l - axis_l) <= 4 and abs(track_r - axis_r) <= 4, (axis_l, axis_r,
                                                                        track_l, track_r)
    assert before > 0
    assert page.locator(".wb-dedup-histogram svg rect").count() > 0
    # user text shows as text in the group list and the diff, never runs as markup
    # (option labels show spaces as no-break spaces)
    listed = page.locator(".wb-dedup-group-list select").inner_text().replace("\xa0", " ")
    assert '<img src=x onerror="document.title=1"> <b>text</b>' in listed
    pair = page.locator(".wb-dedup-pair").inner_text()
    assert '<img src=x onerror="document.title=1"> <b>text</b>' in pair
    assert page.locator(".wb-dedup-reviewer img, .wb-dedup-pair b").count() == 0
    assert page.title() != "1"
    # the keyboard on the slider's handle: End to 1.0 (no pair scores 1: no groups), Home
    # to the lowest threshold the result can re-group at; each fires on release
    handle = page.locator(".wb-dedup-threshold .noUi-handle").first
    handle.focus()
    page.keyboard.press("End")
    _wait_groups(page, "n === 0")
    # (each widget's update is its own message: wait for the status, do not read it at once)
    page.wait_for_selector(".wb-dedup-status:has-text('No duplicate groups')", timeout=30_000)
    page.keyboard.press("Home")
    _wait_groups(page, f"n >= {before}")
    assert float(page.locator(".wb-dedup-threshold .widget-readout").inner_text()) < 0.95
    page.wait_for_selector(".wb-dedup-status:has-text('Re-grouped at threshold')",
                           timeout=30_000)
    # a decision reaches the kernel
    page.locator(".wb-dedup-accept button, button.wb-dedup-accept").first.click()
    page.wait_for_selector(".wb-dedup-status:has-text('1 pair labelled duplicate')",
                           timeout=30_000)
    rerun_cell(page, len(CELLS) - 1, r"decisions 1")
    out = page.locator(".jp-OutputArea-output:has-text('decisions ')").last.inner_text()
    assert re.search(r"decisions (\d+)", out).group(1) == "1"
    assert cell_errors(page) == []
    screenshot(page, "escaping_dedup_reviewer.png", widget=".wb-dedup-reviewer")
