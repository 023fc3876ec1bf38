"""CompressionLab in a real JupyterLab: the Compare button fills the table and the plot."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.harness import Lab, cell_errors, run_all_cells, screenshot, write_notebook

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CELLS = [
    "import workbench as wb",
    (
        "texts = wb.datasets.python_docs(limit=150)['text'].to_list()\n"
        "lab = wb.widgets.CompressionLab(wb.embed.Hashing(dim=256),\n"
        "    {'hashing-64': wb.embed.Hashing(dim=64),\n"
        "     '<img src=x onerror=\"document.title=1\">': wb.embed.Hashing(dim=16)},\n"
        "    texts, k=5, drift=False)\n"
        "lab"
    ),
]


def test_compare_button_fills_the_table(lab: Lab, page: Any) -> None:
    write_notebook(lab.root / "compression_lab.ipynb", CELLS)
    page.goto(lab.notebook_url("compression_lab.ipynb"))
    run_all_cells(page, ready_selector=".wb-compression-lab .wb-lab-run")
    assert cell_errors(page) == []
    assert page.locator(".wb-lab-table tbody tr").count() == 0  # nothing before the button
    page.locator(".wb-compression-lab .wb-lab-run").click()
    # one column per model (the teacher and two variants) beside the measures' names
    page.wait_for_function(
        "() => document.querySelectorAll('.wb-lab-table thead th').length === 4",
        timeout=120_000)
    table = page.locator(".wb-lab-table").inner_text()
    assert "hashing-64" in table and "knn_recall" in table
    assert '<img src=x onerror="document.title=1">' in table  # a name shown as text
    assert page.evaluate("document.querySelectorAll('img[src=\"x\"]').length") == 0
    assert page.title() != "1"
    assert "2 variant(s)" in page.locator(".wb-lab-status").inner_text()
    # the plot drew one marker per model
    page.wait_for_selector(".wb-compression-lab .scatterlayer .point", timeout=30_000)
    assert page.locator(".wb-compression-lab .scatterlayer .point").count() >= 3
    assert cell_errors(page) == []
    screenshot(page, "escaping_compression_lab.png", widget=".wb-compression-lab")


RELOAD_CELLS = [
    "import workbench as wb",
    (
        "texts = wb.datasets.python_docs(limit=120)['text'].to_list()\n"
        "lab = wb.widgets.CompressionLab(wb.embed.Hashing(dim=256),\n"
        "    {'hashing-64': wb.embed.Hashing(dim=64), 'hashing-16': wb.embed.Hashing(dim=16)},\n"
        "    texts, k=5, drift=False)\n"
        "lab"
    ),
]


def _chart(page: Any) -> dict[str, Any]:
    """What the plot shows: trace count, points per trace, axis titles, point labels."""
    return page.evaluate(
        "() => { const r = document.querySelector('.wb-compression-lab');"
        " const q = s => [...r.querySelectorAll(s)];"
        " return {traces: q('.scatterlayer .trace').length,"
        "  points: q('.scatterlayer .point').length,"
        "  x: (q('.xtitle')[0] || {}).textContent || '',"
        "  y: (q('.ytitle')[0] || {}).textContent || '',"
        "  labels: q('.scatterlayer .textpoint').map(e => e.textContent)}; }")


def test_chart_survives_a_page_reload(lab: Lab, page: Any) -> None:
    """After a Compare, a second Compare and a page reload (the kernel still running, the
    widgets re-rendered from its state) the chart has both traces and both axis titles."""
    messages: list[str] = []
    page.on("console", lambda m: messages.append(m.text))
    write_notebook(lab.root / "compression_reload.ipynb", RELOAD_CELLS)
    page.goto(lab.notebook_url("compression_reload.ipynb"))
    run_all_cells(page, ready_selector=".wb-compression-lab .wb-lab-run")
    for _ in range(2):  # a second Compare once redrew without axis titles
        page.locator(".wb-compression-lab .wb-lab-run").click()
        page.wait_for_function(
            "() => (document.querySelector('.wb-lab-status') || {}).innerText"
            "?.includes('variant(s)')", timeout=120_000)
        page.wait_for_timeout(1500)
    before = _chart(page)
    assert before["traces"] == 2 and before["points"] == 3
    assert before["x"] == "texts_per_s" and before["y"] == "knn_recall"
    page.keyboard.press("Control+s")
    page.wait_for_timeout(1500)
    page.reload()
    page.wait_for_selector(".wb-compression-lab .scatterlayer .point", timeout=60_000)
    page.wait_for_timeout(1500)
    after = _chart(page)
    assert after["traces"] == 2 and after["points"] == 3
    assert after["x"] == "texts_per_s" and after["y"] == "knn_recall"
    assert sorted(after["labels"]) == sorted(before["labels"]) and len(after["labels"]) == 3
    assert not [m for m in messages if "Error setting state" in m]
    # every measure's row is inside the widget's width (none off-screen to the right)
    right = page.evaluate(
        "() => { const box = document.querySelector('.wb-compression-lab')"
        ".getBoundingClientRect().right; return [...document.querySelectorAll("
        "'.wb-lab-table th')].every(e => e.getBoundingClientRect().right <= box + 1); }")
    assert right
