"""``workbench drift``: a self-contained report, the window table as JSON, exit codes for cron."""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl
import pytest

import workbench as wb
from tests.test_cli import run


def _store(path: Path, *, drift_points: int, seed: int = 0) -> Path:
    st = wb.datasets.synthetic_stream(3_000, 16, drift_points=drift_points, duplicate_groups=0,
                                      random_state=seed)
    frame = st.frame.with_columns(
        text=pl.format("topic {} <script>alert(1)</script>", pl.col("cluster")))
    with wb.Store.create(path, dim=16) as store:
        store.add(frame, vectors=st.vectors, progress=False)
    return path


@pytest.fixture(scope="module")
def drifting(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _store(tmp_path_factory.mktemp("drift") / "s", drift_points=2)


@pytest.fixture(scope="module")
def stationary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _store(tmp_path_factory.mktemp("drift") / "s", drift_points=0)


def test_drift_exits_1_and_writes_an_offline_report(drifting: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out, js = tmp_path / "r" / "drift.html", tmp_path / "w.json"
    rc, stdout, err = run(capsys, "drift", "--store", str(drifting), "--out", str(out),
                          "--json", str(js), "--no-progress")
    assert rc == 1 and err == ""
    assert "flagged: 2025-02-01" in stdout
    page = out.read_text(encoding="utf-8")
    # nothing to load: no script, stylesheet, image or frame from elsewhere, no CSS import
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)\s*=", page)
    assert not re.search(r"@import|url\(\s*['\"]?https?:", page)
    assert "Plotly.newPlot" in page  # plotly.js inlined, the chart drawn from the page itself
    for title in ("centroid shift", "MMD", "ROC-AUC", "PCA components", "Holm"):
        assert title in page
    assert "<script>alert(1)</script>" not in page  # user text escaped in what changed
    assert "topic" in page and "What changed in the flagged windows" in page
    windows = json.loads(js.read_text())
    assert len(windows) == 4 and sum(w["flagged"] for w in windows) == 3


def test_drift_exits_0_without_drift(stationary: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    rc, stdout, err = run(capsys, "drift", "--store", str(stationary), "--out",
                          str(tmp_path / "d.html"), "--no-progress")
    assert rc == 0 and err == "", stdout
    assert "0 flagged" in stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--every", "1fortnight"], "every"),
    (["--time", "created"], "created"),
    (["--reference", "2030-01-01..2030-02-01"], "reference"),
    (["--reference", "last-week"], "reference"),
    (["--methods", "mmd,vibes"], "methods"),
    (["--where", "regime >"], ""),
])
def test_drift_bad_input_exits_2_with_one_line(drifting: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str],
                                               args: list[str], message: str) -> None:
    rc, _, err = run(capsys, "drift", "--store", str(drifting), "--out",
                     str(tmp_path / "x.html"), "--no-progress", *args)
    assert rc == 2
    assert err.startswith("workbench: error:") and len(err.strip().splitlines()) == 1
    assert message in err
    assert not (tmp_path / "x.html").exists()


def test_drift_on_a_missing_store_exits_2(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run(capsys, "drift", "--store", str(tmp_path / "nope"), "--out",
                     str(tmp_path / "x.html"))
    assert rc == 2 and "workbench: error:" in err
