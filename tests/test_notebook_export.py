"""Exported notebooks open offline: widget outputs become static stand-ins, nothing remote."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import nbformat
import pytest

from workbench.notebooks import WIDGET_MIME, offline_html

REMOTE = re.compile(r"<(script|link|img|iframe)\b[^>]*\b(src|href)\s*=\s*[\"']?https?://",
                    re.IGNORECASE)
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")


def _notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    widget = nbformat.v4.new_output("display_data", {
        "text/plain": "DedupReviewer(children=(HTML(value='...'),))",
        WIDGET_MIME: {"model_id": "abc", "version_major": 2, "version_minor": 0}})
    other = nbformat.v4.new_output("display_data", {
        "text/plain": "VBox(children=())",
        WIDGET_MIME: {"model_id": "def", "version_major": 2, "version_minor": 0}})
    text = nbformat.v4.new_output("stream", name="stdout", text="hello <b>world</b>\n")
    nb.cells = [nbformat.v4.new_markdown_cell("# Title"),
                nbformat.v4.new_code_cell("reviewer", outputs=[widget]),
                nbformat.v4.new_code_cell("box", outputs=[other, text])]
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {
        "state": {"abc": {"model_name": "VBoxModel"}}, "version_major": 2, "version_minor": 0}}
    return nb


def test_widgets_become_static_and_nothing_is_loaded_remotely(tmp_path: Path) -> None:
    shots = tmp_path / "screenshots"
    shots.mkdir()
    (shots / "dedup_reviewer.png").write_bytes(PNG)
    nb = _notebook()
    page = offline_html(nb, screenshots=shots)
    assert not REMOTE.search(page)
    assert "cdnjs" not in page and "unpkg" not in page and "jsdelivr" not in page
    assert WIDGET_MIME not in page and "widget-state" not in page
    # the reviewer with its screenshot, the unknown widget with a note only
    assert "<b>DedupReviewer</b> is an interactive widget" in page
    assert "data:image/png;base64," + base64.b64encode(PNG).decode() in page
    assert "<b>VBox</b> is an interactive widget" in page
    assert "hello &lt;b&gt;world&lt;/b&gt;" in page  # ordinary outputs untouched, escaped
    assert WIDGET_MIME in nb.cells[1].outputs[0]["data"]  # the notebook itself unchanged
    assert "widgets" in nb.metadata


def test_exported_demo_notebooks_have_no_remote_loads() -> None:
    folder = Path(__file__).resolve().parents[1] / "reports" / "notebooks"
    pages = sorted(folder.glob("*.html"))
    if not pages:
        pytest.skip("no exported notebooks: run make demo first")
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert not REMOTE.search(text), page.name
        assert WIDGET_MIME not in text, page.name


def test_the_first_folder_holding_a_screenshot_wins(tmp_path: Path) -> None:
    fresh, committed = tmp_path / "fresh", tmp_path / "committed"
    fresh.mkdir()
    committed.mkdir()
    older = PNG + b"committed"
    (committed / "dedup_reviewer.png").write_bytes(older)
    page = offline_html(_notebook(), screenshots=[fresh, committed])  # none fresh: committed
    assert base64.b64encode(older).decode() in page
    (fresh / "dedup_reviewer.png").write_bytes(PNG)
    page = offline_html(_notebook(), screenshots=[fresh, committed])
    assert base64.b64encode(PNG).decode() in page
    assert base64.b64encode(older).decode() not in page


def test_every_widget_has_a_committed_screenshot() -> None:
    import workbench as wb
    from workbench.notebooks import SCREENSHOTS

    shots = Path(__file__).resolve().parents[1] / "data" / "screenshots"
    for cls in (c for c in wb.widgets.__all__ if c[0].isupper()):
        assert cls in SCREENSHOTS, cls
        assert (shots / SCREENSHOTS[cls]).is_file(), SCREENSHOTS[cls]
