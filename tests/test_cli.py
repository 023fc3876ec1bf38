from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

import workbench as wb
from workbench.cli import main


def test_demo_builds_store_and_escaped_report(tmp_path: Path) -> None:
    args = ["demo", "--store", str(tmp_path / "store"), "--reports", str(tmp_path / "rep"),
            "--cache", str(tmp_path / "cache"), "--limit", "300", "--embedder", "hashing",
            "--no-notebooks"]
    assert main(args) == 0
    html = (tmp_path / "rep" / "index.html").read_text()
    assert "Embedding Workbench demo" in html and "Search: read a text file" in html
    assert "<script" not in html  # self-contained, no scripts
    with wb.Store.open(tmp_path / "store", readonly=True) as s:
        assert len(s) == 300
        gen = s.generation
    # a second run with the same data commits nothing new
    assert main(args) == 0
    with wb.Store.open(tmp_path / "store", readonly=True) as s:
        assert s.generation == gen
    # a different limit syncs the store: rows added and removed in one commit
    assert main([*args[:-4], "200", *args[-3:]]) == 0
    with wb.Store.open(tmp_path / "store", readonly=True) as s:
        assert len(s) == 200 and s.generation == gen + 1


def test_info_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with wb.Store.create(tmp_path / "s", dim=4) as s:
        s.add(pl.DataFrame({"id": ["a"]}), vectors=[[1.0, 0, 0, 0]])
    assert main(["info", str(tmp_path / "s")]) == 0
    assert "rows=1" in capsys.readouterr().out


def test_report_escapes_user_text() -> None:
    from workbench.reports import frame_table

    out = frame_table(pl.DataFrame({"text": ["<script>alert(1)</script>", "<img onerror=x>"]}))
    assert "<script>" not in out and "&lt;script&gt;" in out and "&lt;img onerror=x&gt;" in out
