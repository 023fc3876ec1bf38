from __future__ import annotations

import base64
import io
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

import workbench as wb
from workbench.widgets import SearchPanel
from workbench.widgets.search import MORE_WIDTH

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


def test_more_like_this_keeps_its_width_beside_a_long_paragraph(tmp_path: Path) -> None:
    paragraph = " ".join(["a long paragraph of real documentation text"] * 40)
    s = wb.Store.create(tmp_path / "p", embedder=wb.embed.Hashing(dim=64))
    s.add(pl.DataFrame({"id": ["long", "short"], "text": [paragraph, "short"]}), text="text",
          progress=False)
    panel = SearchPanel(s, k=2)
    panel.query = "long paragraph"
    rows = panel._rows.children
    assert len(rows[0].children[1].value) > 300  # the row holds the paragraph
    for row in rows:
        button, text = row.children
        assert button.description == "More like this"
        # never squeezed ("M…"): a fixed width that is also the minimum, no shrinking
        assert button.layout.width == button.layout.min_width == MORE_WIDTH
        assert button.layout.flex == "0 0 auto"
        # the text takes the rest and wraps
        assert text.layout.flex == "1 1 0%" and text.layout.min_width == "0"


def test_filter_title_counts_active_filters(store: wb.Store) -> None:
    panel = SearchPanel(store, k=3)
    assert len(panel.filters) == 3
    assert panel._accordion.get_title(0) == "Filters"  # three controls, none set
    panel.filter("lang").value = ("en",)
    assert panel._accordion.get_title(0) == "Filters (1)"
    lo, hi = panel.filter("score").value
    panel.filter("score").value = (0.4, hi)
    assert panel._accordion.get_title(0) == "Filters (2)"
    assert panel.active_filters() == ["lang: en", f"score: 0.4–{hi:.4g}"]
    panel.filter("lang").value = ()
    panel.filter("score").value = (lo, hi)  # back to the full range: not a filter
    assert panel._accordion.get_title(0) == "Filters" and panel.active_filters() == []


def test_status_names_the_filters_that_applied(tmp_path: Path) -> None:
    s = wb.Store.create(tmp_path / "f", embedder=wb.embed.Hashing(dim=64))
    s.add(pl.DataFrame({"id": ["a", "b", "c"], "text": ["cats", "cats and dogs", "dogs"],
                        "lang": ["en", "<b>de</b>", "en"]}), text="text", progress=False)
    panel = SearchPanel(s, k=3)
    panel.query = "cats"
    assert "filters" not in panel.status
    panel.filter("lang").value = ("<b>de</b>", "en")
    panel.search()
    assert panel.status.endswith("; filters: lang: <b>de</b>, en")
    assert "<b>" not in panel._status.value
    assert "filters: lang: &lt;b&gt;de&lt;/b&gt;, en" in panel._status.value
    panel.more_like("a")  # more like this honours, and names, the filters too
    assert "more like a" in panel.status and "filters: lang:" in panel.status


def test_empty_query_says_what_to_do(store: wb.Store) -> None:
    panel = SearchPanel(store, k=3)
    panel.query = "cats"
    panel.query = ""  # emptied and submitted: a hint, not silence
    assert panel.status.startswith("Type a query") and "Type a query" in panel._status.value
    panel._button.click()
    assert panel.status.startswith("Type a query")


def test_busy_line_before_the_first_search(store: wb.Store, monkeypatch) -> None:  # noqa: ANN001
    panel = SearchPanel(store, k=3)
    seen: list[tuple[str, bool]] = []
    real = store.search

    def slow(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        seen.append((panel._status.value, panel._button.disabled))
        return real(*args, **kwargs)

    monkeypatch.setattr(store, "search", slow)
    panel.query = "cats"
    status, disabled = seen[0]
    assert "Searching" in status and "loads the embedding model" in status and disabled
    assert not panel._button.disabled and "3 results" in panel.status


def test_distance_header_filter_labels_and_export(store: wb.Store) -> None:
    panel = SearchPanel(store, k=3)
    assert panel._head.layout.display == "none" and panel.rows.is_empty()
    labels = [box.children[0].value for box in panel._accordion.children[0].children]
    assert [lab.split("'wb-filter-label'>")[1].split(" ")[0] for lab in labels] == [
        "lang", "score", "ts"]
    assert "Ctrl" in labels[0]
    panel.query = "cats and dogs"
    assert panel._head.layout.display is None
    assert "distance" in panel._head.value and "cosine" in panel._head.value
    html = panel.export.export("parquet")
    data = base64.b64decode(html.split("href='")[1].split("'")[0].split(",", 1)[1])
    assert pl.read_parquet(io.BytesIO(data)).equals(panel.rows)
    assert "search_results.parquet" in html and panel.rows.height == 3
    text = repr(panel)
    assert text.startswith("SearchPanel(store=") and "5 rows" in text and "3 results" in text
    assert "<" not in text
