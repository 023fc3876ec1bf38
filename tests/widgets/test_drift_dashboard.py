from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

import workbench as wb
from workbench.errors import InvalidInputError


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> wb.Store:
    st = wb.datasets.synthetic_stream(3_000, 16, drift_points=2, duplicate_groups=0)
    s = wb.Store.create(tmp_path_factory.mktemp("dd") / "s", dim=16)
    s.add(st.frame.with_columns(text=pl.format("topic {} <b>bold</b>", pl.col("cluster"))),
          vectors=st.vectors, progress=False)
    return s


def test_dashboard_selects_windows_and_recomputes(store: wb.Store) -> None:
    res = wb.compute_drift(store, every="1mo", progress=False)
    dash = wb.widgets.DriftDashboard(res, store)
    assert dash.window == f"{res.flagged[0]:%Y-%m-%d}"  # the first flagged window, as a date
    assert all(":" not in str(label) for label, _ in dash.selector.options)
    # the chart fills the widget's width, and the classifier's AUC is explained
    assert dash.figure._config.get("responsive") is True and dash.layout.width == "100%"
    assert "0.5 means" in dash._help.value
    assert [s for s in dash.figure.layout.shapes if s.type == "rect"]  # reference shaded
    panels = {t.yaxis for t in dash.figure.data}
    assert len(panels) == 5
    first = dash._detail.value
    assert "<b>bold</b>" not in first and "&lt;b&gt;bold&lt;/b&gt;" in first
    assert "emerging" in first or "vanishing" in first
    last = f"{res.windows['start'][-1]:%Y-%m-%d}"
    assert res.windows["p_value"][-1] == 0.0  # underflowed: still a window with changes
    dash.selector.value = last
    assert dash.window == last and dash._detail.value != first
    assert "emerging" in dash._detail.value or "vanishing" in dash._detail.value
    assert len(res.changes) == res.summary["flagged"]
    p_panel = [t for t in dash.figure.data if t.yaxis == "y5" and t.mode == "lines+markers"]
    assert min(y for y in p_panel[0].y if y is not None) >= 1e-16  # zeros drawn at the floor
    dash.select(str(res.windows["start"][0]))  # str(datetime), as before, still selects
    assert dash.window == f"{res.windows['start'][0]:%Y-%m-%d}"
    dash.select(last)
    with pytest.raises(InvalidInputError, match="window"):
        dash.select("1999-01-01")
    dash.ref_selector.value = "previous"
    dash.recompute()
    assert dash.reference == "previous" and "recomputed" in dash.status
    assert dash.result.params["reference"] == "previous"


def test_dashboard_without_store_cannot_recompute(store: wb.Store, tmp_path: Path) -> None:
    res = wb.compute_drift(store, every="1mo", methods=("centroid", "mmd"), progress=False)
    dash = wb.widgets.DriftDashboard(res)
    assert dash.recompute_button.disabled and dash.ref_selector.disabled
    dash.recompute()
    assert "no store" in dash.status
    with pytest.raises(InvalidInputError, match="result"):
        wb.widgets.DriftDashboard("not a result")  # type: ignore[arg-type]
