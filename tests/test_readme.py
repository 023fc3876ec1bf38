"""The README's "A short tour" runs top to bottom as written, and does what its comments say.

The ```python blocks of that section are executed exactly as written, with nothing
substituted: the real all-MiniLM-L6-v2 embeds the 300 short paragraphs the tour asks for
(30-50 s on two cores, most of it loading the model and embedding). They run statement by
statement in one fresh namespace, like notebook cells, so that the value of every expression
statement (``store.search(...)``, ``vs.vectors(...)``, ``cache.stats()``...) can be checked.

The tour makes its folder with ``tempfile.mkdtemp()``; the test points ``tempfile`` at
``tmp_path`` (and runs in it) so that nothing is left behind outside pytest's folders.
"""

from __future__ import annotations

import ast
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from matplotlib.figure import Figure

import workbench as wb

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "## A short tour"


def tour_blocks() -> list[tuple[int, str]]:
    """``(first line in README.md, code)`` of each ```python block of the tour section."""
    text = README.read_text(encoding="utf-8")
    heading = f"\n{SECTION}\n"
    assert text.count(heading) == 1, f"README.md: expected one {SECTION!r} heading"
    start = text.index(heading) + len(heading)
    end = text.find("\n## ", start)
    section = text[start:] if end < 0 else text[start:end]
    blocks = [
        (text.count("\n", 0, start + m.start(1)) + 1, m.group(1))
        for m in re.finditer(r"^```python\n(.*?)^```$", section, flags=re.MULTILINE | re.DOTALL)
    ]
    assert blocks, f"README.md: no ```python block under {SECTION!r}"
    return blocks


class Tour:
    """The namespace the tour ran in and the values of its expression statements."""

    def __init__(self, namespace: dict[str, Any], outputs: list[tuple[str, Any]]) -> None:
        self.ns = namespace
        self.outputs = outputs

    def __getitem__(self, name: str) -> Any:
        return self.ns[name]

    def value(self, source: str) -> Any:
        """The value of the one expression statement whose source starts with `source`."""
        found = [v for src, v in self.outputs if src.startswith(source)]
        assert len(found) == 1, (
            f"expected one expression statement starting with {source!r} in the tour, got "
            f"{len(found)}; the README changed under this test"
        )
        return found[0]


def run_tour() -> Tour:
    """Run the tour's statements in order in one namespace; errors point at README.md lines."""
    namespace: dict[str, Any] = {"__name__": "__readme__"}
    outputs: list[tuple[str, Any]] = []
    for first_line, block in tour_blocks():
        tree = ast.parse(block, filename=str(README))
        sources = [ast.get_source_segment(block, node) or "" for node in tree.body]
        ast.increment_lineno(tree, first_line - 1)
        for node, source in zip(tree.body, sources, strict=True):
            if isinstance(node, ast.Expr):
                code = compile(ast.Expression(node.value), str(README), "eval")
                outputs.append((source, eval(code, namespace)))
            else:
                exec(compile(ast.Module([node], []), str(README), "exec"), namespace)
    return Tour(namespace, outputs)


@pytest.fixture(scope="module")
def tour(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tour]:
    folder = tmp_path_factory.mktemp("readme")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        mp.setattr(tempfile, "tempdir", str(folder))  # where tempfile.mkdtemp() makes root
        t = run_tour()
        yield t
        for value in list(t.ns.values()):
            if isinstance(value, wb.Store):
                value.close()


def test_tour_ran_in_a_fresh_temporary_folder(tour: Tour) -> None:
    root = tour["root"]
    assert root.is_dir() and root.parent == Path(tempfile.gettempdir())  # the patched one
    assert {p.name for p in root.iterdir()} == {"docs.store", "vecs.store", "bits.store"}


def test_text_store_search_and_writes(tour: Tour) -> None:
    store, docs = tour["store"], tour["docs"]
    assert store.model.kind == "minilm" and docs.height == 300
    hits = tour.value('store.search("read a file line by line", k=5)')
    assert hits.height == 5
    assert hits.columns[:4] == ["query", "id", "distance", "key"]
    assert hits["distance"].is_sorted()
    filtered = tour.value('store.search(["sorting", "regular expressions"], k=3')
    assert filtered.height == 6 and sorted(set(filtered["query"])) == [0, 1]
    assert filtered["kind"].to_list() == ["topic"] * 6

    ids = set(store.scan().select("id").collect()["id"])
    deleted = {docs["id"][3], *tour["old_ids"]}
    assert deleted.isdisjoint(ids)                            # delete and the transaction's
    assert set(tour["more_docs"]["id"]) <= ids                # the transaction's add
    assert len(store) == 250 - 1 + 50 - 2
    reviewed = store.get(docs["id"][:3].to_list())["reviewed"]
    assert reviewed.to_list() == [True, True, True]
    assert store.scan().filter(pl.col("reviewed")).collect().height == 3
    assert len(store.segments) == 2                           # compacted, then the transaction


def test_vectors_only_store(tour: Tour) -> None:
    vs, array, langs = tour["vs"], tour["array"], tour["langs"]
    assert len(vs) == 1000 and vs.dtype == "i8" and vs.model.name == "my-model-v3"
    got = tour.value('vs.vectors(["v0", "v1"])')
    assert got.shape == (2, 384) and got.dtype == np.float32
    np.testing.assert_array_equal(got, array[:2])             # full precision, not i8
    en = tour.value('vs.scan().filter(pl.col("lang") == "en").collect()')
    assert en.height == langs.count("en") and set(en["lang"]) == {"en"}

    reader, old = tour["reader"], tour["old"]
    assert reader.readonly and old.readonly
    assert len(reader) == 1000 and len(old) == 800            # the earlier generation
    assert old.generation == vs.generation - 1

    res = tour.value("vs.search(array[:5], k=10")
    assert res.height == 50 and set(res["lang"]) == {"en"}
    rec = tour.value("vs.recommend(")
    assert rec.height == 10 and {"v0", "v1", "v2"}.isdisjoint(rec["id"])


def test_b1_store_finds_each_query_first(tour: Tour) -> None:
    assert tour["bits"].dtype == "b1"
    res = tour.value("bits.search(array[:5], k=10)")
    assert res.height == 50
    firsts = res.group_by("query", maintain_order=True).first()
    assert firsts["id"].to_list() == [f"v{i}" for i in range(5)]


def test_cache_evaluation_and_widget(tour: Tour) -> None:
    assert tour.value('cache.search("how do I sort a list", k=5)').height == 5
    assert tour.value('cache.search("how do I sort a list?", k=5)').height == 5
    stats = tour.value("cache.stats()")
    assert stats["hits"] == 1 and stats["misses"] == 1        # the paraphrase was a hit

    frame = tour.value("ev.to_frame()")
    assert frame["expansion_search"].to_list() == [16, 32, 64, 128]
    assert frame["recall"].is_between(0.0, 1.0).all() and frame["recall"].max() > 0.9
    assert isinstance(tour.value("ev.plot()"), Figure)

    panel = tour.value("wb.widgets.SearchPanel(store)")
    assert isinstance(panel, wb.widgets.SearchPanel) and panel.store is tour["store"]
    assert {f.column for f in panel.filters} >= {"kind", "source", "reviewed"}


def test_what_you_get_shows_a_browser_test_screenshot_of_each_widget() -> None:
    """Every image the README shows exists and is one a browser test takes; every widget
    has one."""
    root = README.parent
    readme = README.read_text(encoding="utf-8")
    images = re.findall(r"!\[[^\]]*\]\((data/screenshots/[^)]+\.png)\)", readme)
    assert images, "no screenshots in the README"
    taken = set()
    for test in (root / "tests" / "browser").glob("test_*.py"):
        taken |= set(re.findall(r'screenshot\(page, "([^"]+\.png)"', test.read_text()))
    for path in images:
        assert (root / path).is_file(), path
        assert (root / path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
        assert Path(path).name in taken, f"{path}: no browser test takes it"
    for widget in wb.widgets.__all__:
        if widget[0].isupper():
            assert f"**`{widget}`**" in readme, f"the README shows no {widget}"
