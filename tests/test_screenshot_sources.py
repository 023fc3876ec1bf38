"""The README's screenshots come from real data, never from the escaping tests' hostile rows.

``tests/browser/test_screenshots.py`` takes every image the README and the exported notebooks
show (:data:`workbench.notebooks.SCREENSHOTS`), on the demo corpus. Here, without a browser:
the rows and notebook cells it feeds the widgets hold no markup payload, it takes every README
image, and no other browser test writes one of those names (they feed markup on purpose).
"""

from __future__ import annotations

import ast
import importlib
import re
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from tests.browser import test_screenshots as shots
from workbench.notebooks import SCREENSHOTS

ROOT = Path(__file__).resolve().parents[1]
BROWSER = ROOT / "tests" / "browser"
SOURCE = BROWSER / "test_screenshots.py"

#: Markup that runs or loads something when shown as HTML: the escaping tests' payloads
#: (``<script>``, ``<img src=x onerror=...>``) and their kin. Real docs mention an ``onerror``
#: argument (os.walk); only the attribute form (``onerror=``) counts.
MARKUP = re.compile(
    r"<\s*/?\s*(script|img|iframe|svg|object|embed|style|link)\b"
    r"|\bon(error|load|click|mouseover|focus|animationstart)\s*="
    r"|javascript\s*:",
    re.IGNORECASE)

#: The escaping tests' cells, which must trip :data:`MARKUP` (or the check proves nothing).
HOSTILE = ("test_search_panel_browser", "test_cluster_explorer_browser",
           "test_dedup_reviewer_browser", "test_compression_lab_browser", "test_drift_browser")


def readme_names() -> set[str]:
    """Every screenshot the README shows, and every one an exported notebook embeds."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    shown = re.findall(r"!\[[^\]]*\]\(data/screenshots/([^)]+\.png)\)", readme)
    return set(shown) | set(SCREENSHOTS.values())


def markup(texts: Iterator[str] | list[str]) -> list[str]:
    """The texts holding a markup payload."""
    return [t for t in texts if t is not None and MARKUP.search(t)]


def _strings(frame: pl.DataFrame) -> Iterator[str]:
    for name, dtype in frame.schema.items():
        if dtype == pl.String:
            yield from frame.get_column(name).drop_nulls().to_list()


def _names(tree: ast.AST) -> Iterator[tuple[int, ast.expr | None]]:
    """(line, name argument) of every screenshot call: the harness's ``screenshot(page,
    name)`` (under any alias) and Playwright's ``.screenshot(path=...)``."""
    aliases = {"screenshot"}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").endswith("harness"):
            aliases |= {a.asname for a in node.names if a.name == "screenshot" and a.asname}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        if isinstance(node.func, ast.Name) and node.func.id in aliases:
            kw = {k.arg: k.value for k in node.keywords}
            yield node.lineno, node.args[1] if len(node.args) > 1 else kw.get("name")
        elif isinstance(node.func, ast.Attribute) and node.func.attr == "screenshot":
            path = {k.arg: k.value for k in node.keywords}.get("path")
            if path is not None:
                yield node.lineno, path


def _could_be(arg: ast.expr | None, names: set[str]) -> set[str]:
    """The names in `names` a screenshot call's name argument can write (all of them when
    the argument is not a literal: it could be any)."""
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return {Path(arg.value).name} & names
    if isinstance(arg, ast.JoinedStr):
        pattern = "".join(re.escape(v.value) if isinstance(v, ast.Constant) else ".*"
                          for v in arg.values)
        return {n for n in names if re.fullmatch(f"(.*/)?{pattern}", n)}
    return set(names)


def test_the_readme_names_are_known() -> None:
    names = readme_names()
    assert set(SCREENSHOTS.values()) <= names
    assert "cluster_explorer_thumbnail.png" in names  # the README's own extra image
    assert all((ROOT / "data" / "screenshots" / n).is_file() for n in names), names


def test_the_screenshot_module_takes_every_readme_screenshot() -> None:
    taken = {}
    for line, arg in _names(ast.parse(SOURCE.read_text(encoding="utf-8"))):
        assert isinstance(arg, ast.Constant), f"test_screenshots.py:{line}: a literal name"
        taken[arg.value] = line
    assert set(taken) == readme_names()
    assert set(shots.CELLS) == readme_names()  # one notebook per image


def test_no_other_browser_test_writes_a_readme_screenshot() -> None:
    names = readme_names()
    found = []
    for path in sorted(BROWSER.glob("test_*.py")):
        if path == SOURCE:
            continue
        for line, arg in _names(ast.parse(path.read_text(encoding="utf-8"))):
            hit = _could_be(arg, names)
            if hit:
                found.append(f"{path.name}:{line} writes {sorted(hit)}")
    assert found == [], ("only tests/browser/test_screenshots.py (demo data) may write the "
                         f"README's screenshots: {found}")


def test_the_rows_the_screenshots_show_hold_no_markup() -> None:
    rows = shots.corpus()
    assert rows.height > shots.ROWS  # the sample and the near-duplicate groups added to it
    assert rows.get_column("id").is_unique().all()
    # the demo corpus: Python-docs paragraphs, not short fixture strings
    assert rows.get_column("text").str.len_chars().min() >= 80
    assert set(rows.get_column("source")) == {"pydoc-topic", "docstring"}
    assert markup(_strings(rows)) == []
    planted = shots.drift_rows(rows)
    assert planted.height == rows.height and "timestamp" in planted.columns
    assert markup(_strings(planted)) == []


def test_the_notebook_cells_hold_no_markup_and_no_fixture() -> None:
    paths = {"docs": "/docs.store", "drift": "/drift.store", "clusters": "/clusters"}
    cells = [c for name in shots.CELLS for c in shots.notebook_cells(name, paths)]
    assert cells and markup(cells) == []
    tree = ast.parse(SOURCE.read_text(encoding="utf-8"))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    # rows come from the demo corpus only: no other test's fixtures, no synthetic stream
    assert not {m for m in imported if m and m.startswith("tests.") and "harness" not in m}
    assert "synthetic_stream" not in SOURCE.read_text(encoding="utf-8")


@pytest.mark.parametrize("module", HOSTILE)
def test_the_markup_check_catches_the_escaping_fixtures(module: str) -> None:
    """Pointing a screenshot at an escaping test's cells would fail the checks above."""
    cells = importlib.import_module(f"tests.browser.{module}").CELLS
    assert markup(cells), f"{module}: no payload found: the markup check would miss it"
