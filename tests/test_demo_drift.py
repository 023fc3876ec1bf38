from __future__ import annotations

from pathlib import Path

import polars as pl

import workbench as wb
from workbench.cli.demo import _drift_section


def test_demo_drift_section_plants_the_gui_topic_in_a_copy_beside_the_store(
    tmp_path: Path,
) -> None:
    # the demo with --embedder hashing: 600 paragraphs, the GUI modules among them
    docs = wb.datasets.python_docs(limit=600)
    path = tmp_path / "demo"
    (tmp_path / "demo_drift").mkdir()
    (tmp_path / "demo_drift" / "stale").write_text("from an earlier run")  # replaced, not kept
    with wb.Store.create(path, embedder=wb.embed.Hashing(dim=64, cache=False)) as store:
        store.add(docs, text="text", progress=False)
        sections, seconds = _drift_section(store)
        model = store.model
    titles = [s.title for s in sections]
    assert titles[:2] == ["Drift over time (planted topic)", "Drift: windows"]
    assert set(titles[2:]) <= {"Drift: what changed in the flagged windows"}
    assert seconds > 0
    note = sections[0].note
    assert "tkinter, turtle" in note and "from 2025-04 on" in note and "flagged" in note
    body = sections[0].body
    assert "first flagged window" in body and "plotly" in body
    assert "<td>2025-06-01</td>" in sections[1].body  # six monthly windows, as dates
    assert "00:00:00" not in sections[1].body
    assert not (tmp_path / "demo_drift" / "stale").exists()
    with wb.Store.open(tmp_path / "demo_drift", readonly=True) as copy:
        assert len(copy) == 600 and copy.model == model
        rows = copy.scan().select("id", "module", "timestamp").collect()
    gui = rows.filter(pl.col("module").is_in(["tkinter", "turtle"]))
    assert gui.height and gui.get_column("timestamp").min().month == 4
    assert set(rows.get_column("id")) == set(docs.get_column("id"))


def test_demo_drift_section_without_a_module_column_says_so(tmp_path: Path) -> None:
    docs = wb.datasets.python_docs(limit=50).select("id", "text")
    with wb.Store.create(tmp_path / "s", embedder=wb.embed.Hashing(dim=32, cache=False)) as store:
        store.add(docs, text="text", progress=False)
        sections, seconds = _drift_section(store)
    assert len(sections) == 1 and "drift not tested" in sections[0].body and seconds == 0.0
    assert not (tmp_path / "s_drift").exists()
