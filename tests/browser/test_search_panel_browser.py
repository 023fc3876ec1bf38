"""The SearchPanel in a real JupyterLab, in headless Chromium."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.harness import Lab, cell_errors, run_all_cells, screenshot, write_notebook

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CELLS = [
    "import tempfile\nimport polars as pl\nimport workbench as wb",
    (
        "store = wb.Store.create(tempfile.mkdtemp() + '/s', embedder=wb.embed.Hashing(dim=128))\n"
        "store.add(pl.DataFrame({'id': [f'd{i}' for i in range(6)], 'text': [\n"
        "    \"<script>document.title='pwned'</script> cats sleep all day\",\n"
        "    'dogs chase <img src=x onerror=\"document.title=1\"> balls',\n"
        "    'cats and dogs can be friends', 'fish swim in the sea',\n"
        "    'birds fly south in winter', 'a cat is a small feline'],\n"
        "    'lang': ['en', 'de', 'en', 'fr', 'en', 'en']}), text='text', progress=False)"
    ),
    "panel = wb.widgets.SearchPanel(store, k=4)\npanel",
]


def test_search_panel_renders_and_searches(lab: Lab, page: Any) -> None:
    write_notebook(lab.root / "search_panel.ipynb", CELLS)
    page.goto(lab.notebook_url("search_panel.ipynb"))
    run_all_cells(page, ready_selector=".wb-search-panel .wb-query input")
    assert cell_errors(page) == []
    box = page.locator(".wb-search-panel .wb-query input")
    box.fill("cats")
    box.press("Enter")
    page.wait_for_selector(".wb-result-row", timeout=30_000)
    rows = page.locator(".wb-result-row")
    assert rows.count() == 4
    text = page.locator(".wb-results").inner_text()
    # user text is shown as text, never run as markup
    assert "<script>" in text
    assert page.locator(".wb-results img").count() == 0
    assert page.title() != "pwned"
    assert "4 results" in page.locator(".wb-status").inner_text()
    screenshot(page, "escaping_search_panel.png", widget=".wb-search-panel")
