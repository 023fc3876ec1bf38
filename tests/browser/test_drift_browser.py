"""The DriftDashboard in a real JupyterLab, and the drift report opened offline in Chromium."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser.harness import (
    Lab,
    browser_missing_reason,
    cell_errors,
    chromium,
    open_offline,
    run_all_cells,
    screenshot,
    write_notebook,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SETUP = (
    "import tempfile\nimport polars as pl\nimport workbench as wb\n"
    "st = wb.datasets.synthetic_stream(3_000, 16, drift_points=2, duplicate_groups=0)\n"
    "store = wb.Store.create(tempfile.mkdtemp() + '/s', dim=16)\n"
    "store.add(st.frame.with_columns(text=pl.format("
    "'topic {} <img src=x onerror=\"document.title=1\">', pl.col('cluster'))),\n"
    "          vectors=st.vectors, progress=False)\n"
    "result = wb.compute_drift(store, every='1mo', progress=False)"
)
CELLS = [SETUP, "dash = wb.widgets.DriftDashboard(result, store)\ndash",
         "print('window', dash.window)"]


def _detail(page: Any) -> str:
    return str(page.locator(".wb-drift-detail").inner_text())


def test_drift_dashboard_window_selection_changes_the_detail(lab: Lab, page: Any) -> None:
    write_notebook(lab.root / "drift.ipynb", CELLS)
    page.goto(lab.notebook_url("drift.ipynb"))
    run_all_cells(page, ready_selector=".wb-drift .wb-drift-detail")
    page.wait_for_selector("text=/window \\d{4}-/", timeout=60_000)
    assert cell_errors(page) == []
    # the plotly chart draws inside the widget (its SVG panels)
    page.wait_for_selector(".wb-drift .js-plotly-plot .main-svg", timeout=60_000)
    first = _detail(page)
    assert "window 2025-02-01" in first  # the first flagged window is shown
    select = page.locator(".wb-drift-window select")
    options = select.locator("option").all_inner_texts()
    assert len(options) == 4 and sum("flagged" in o for o in options) >= 2
    select.select_option(index=len(options) - 1)
    page.wait_for_function(
        "() => { const e = document.querySelector('.wb-drift-detail');"
        " return e && e.innerText.includes('window 2025-04-01'); }", timeout=30_000)
    assert _detail(page) != first
    # user text is shown as text, never run as markup
    assert page.locator(".wb-drift-detail img").count() == 0
    assert page.title() != "1"
    screenshot(page, "escaping_drift_dashboard.png", widget=".wb-drift")


def test_drift_report_opens_offline_and_draws(tmp_path: Path) -> None:
    reason = browser_missing_reason()
    if reason:
        pytest.skip(reason)
    import workbench as wb
    from workbench.reports.drift import write_drift_report

    st = wb.datasets.synthetic_stream(2_000, 16, drift_points=1, duplicate_groups=0)
    store = wb.Store.create(tmp_path / "s", dim=16)
    store.add(st.frame, vectors=st.vectors, progress=False)
    res = wb.compute_drift(store, every="1mo", progress=False)
    out = write_drift_report(res, tmp_path / "drift.html")
    with chromium() as page:
        requests = open_offline(page, out)
        page.wait_for_selector(".js-plotly-plot .main-svg", timeout=30_000)
        page.wait_for_function(
            "() => document.querySelectorAll('.js-plotly-plot .cartesianlayer .subplot')"
            ".length >= 5", timeout=30_000)
        panels = page.locator(".js-plotly-plot .cartesianlayer .subplot").count()
        titles = page.locator(".js-plotly-plot .annotation-text").all_text_contents()
    assert requests == []
    assert panels == 5  # every metric drawn
    assert any("MMD" in t for t in titles) and any("AUC" in t for t in titles)
