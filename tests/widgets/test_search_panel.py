from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

import workbench as wb
from workbench.widgets import SearchPanel

TEXTS = [
    "<script>alert('x')</script> cats sleep all day",
    "dogs chase <img src=x onerror=alert(1)> balls",
    "cats and dogs can be friends",
    "fish swim in the sea",
    "birds fly south in winter",
]


@pytest.fixture
def store(tmp_path: Path) -> wb.Store:
    s = wb.Store.create(tmp_path / "s", embedder=wb.embed.Hashing(dim=128))
    s.add(pl.DataFrame({
        "id": [f"d{i}" for i in range(5)],
        "text": TEXTS,
        "lang": ["en", "de", "en", "fr", "en"],
        "score": [0.1, 0.5, 0.9, 0.3, 0.7],
        "ts": [datetime(2024, 1, i + 1) for i in range(5)],
    }), text="text", progress=False)
    return s


def test_traits_drive_search_and_match_the_store(store: wb.Store) -> None:
    panel = SearchPanel(store, k=3)
    assert [f.column for f in panel.filters] == ["lang", "score", "ts"]
    panel.query = "cats and dogs"  # as if typed and submitted
    assert panel.results.equals(store.search("cats and dogs", k=3))
    assert len(panel._rows.children) == 3
    assert "3 results" in panel.status and "ms" in panel.status
    panel.k = 2
    panel.filter("lang").value = ("en",)
    res = panel.search()
    assert res is not None and res.equals(
        store.search("cats and dogs", k=2, where=pl.col("lang").is_in(["en"])))
    panel.filter("lang").value = ()
    lo, hi = panel.filter("score").value
    panel.filter("score").value = (0.4, hi)
    assert panel.search()["score"].min() >= 0.4


def test_more_like_this_uses_recommend(store: wb.Store) -> None:
    panel = SearchPanel(store, k=2)
    panel.query = "cats"
    first_id = panel.results["id"][0]
    button = panel._rows.children[0].children[0]
    button.click()
    assert first_id not in panel.results["id"].to_list()
    assert panel.results.equals(store.recommend([first_id], k=2))


def test_text_is_escaped(store: wb.Store) -> None:
    panel = SearchPanel(store, k=5)
    panel.query = "cats dogs"
    html = " ".join(row.children[1].value for row in panel._rows.children)
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;" in html and "&lt;img src=x onerror=alert(1)&gt;" in html


def test_errors_are_shown_not_raised(tmp_path: Path) -> None:
    s = wb.Store.create(tmp_path / "v", dim=4)
    s.add({"id": ["a", "b"]}, vectors=[[1.0, 0, 0, 0], [0, 1.0, 0, 0]])
    panel = SearchPanel(s)
    panel.query = "<b>text</b> query"  # no embedder: a library error, shown escaped
    assert panel.results is None and panel.status.startswith("Error: query")
    assert "<b>" not in panel._status.value


def test_library_never_imports_widgets() -> None:
    import ast

    root = Path(wb.__file__).parent
    for path in root.rglob("*.py"):
        if "widgets" in path.relative_to(root).parts:
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [a.name for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            assert not any("widgets" in n and "ipywidgets" not in n for n in names), path
