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
    page.wait_for_function(
        "() => document.querySelectorAll('.wb-lab-table tbody tr').length === 3",
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
    screenshot(page, "compression_lab.png", widget=".wb-compression-lab")
