"""CompressionLab: the comparison runs on the button only, fills the table, marks the front."""

from __future__ import annotations

import base64
import io
import warnings

import numpy as np
import polars as pl
import pytest

import workbench as wb
from workbench.compress import pareto_front
from workbench.errors import InvalidInputError
from workbench.widgets.compress import CompressionLab


def test_pareto_front_known_answer() -> None:
    frame = pl.DataFrame({
        "name": ["teacher", "int8", "bad", "tiny", "nulls"],
        "bytes_on_disk": [100.0, 30.0, 40.0, 5.0, None],
        "knn_recall": [1.0, 0.9, 0.8, 0.5, 0.99],
    })
    # "bad" is bigger and worse than int8; "nulls" cannot be placed
    assert pareto_front(frame, "bytes_on_disk", "knn_recall").tolist() == [
        True, True, False, True, False]
    # texts/s: more is better
    speed = frame.with_columns(pl.Series("texts_per_s", [10.0, 30.0, 40.0, 5.0, 1.0]))
    assert pareto_front(speed, "texts_per_s", "knn_recall", x_better="max").tolist() == [
        True, True, True, False, False]
    with pytest.raises(InvalidInputError, match="x, y"):
        pareto_front(frame, "nope", "knn_recall")


@pytest.fixture(scope="module")
def lab() -> CompressionLab:
    texts = wb.datasets.python_docs(limit=120)["text"].to_list()
    teacher = wb.embed.Hashing(dim=256)
    variants = {"same": wb.embed.Hashing(dim=256), "small": wb.embed.Hashing(dim=32)}
    return CompressionLab(teacher, variants, texts, k=5, drift=False)


def test_nothing_runs_until_the_button(lab: CompressionLab) -> None:
    assert lab.result is None and lab._table.value == ""
    assert lab.selected() == ["same", "small"]


def test_run_fills_table_and_plot(lab: CompressionLab) -> None:
    lab._boxes["small"].value = False
    frame = lab.run()
    assert frame is not None and frame.height == 2  # teacher + "same"
    lab._boxes["small"].value = True
    frame = lab.run()
    assert frame is not None and frame.height == 3
    assert lab.result is frame
    html = lab._table.value
    # one column per model (a header each), one row per measure: every measure on screen
    assert html.count("</th>") == 1 + 3 and "small" in html
    assert html.count("<tr") == 1 + frame.width - 1  # header + every column but the name
    assert "<td class='wb-measure'>knn_recall</td>" in html
    names = frame.get_column("name").to_list()
    recall = dict(zip(names, frame.get_column("knn_recall").to_list(), strict=True))
    assert recall["same"] == pytest.approx(1.0) and recall["small"] < 1.0
    models, front = lab.figure.data
    assert list(models.text) == [str(n) for n in names]
    assert np.allclose(np.asarray(models.y, dtype=float),
                       frame.get_column("knn_recall").to_numpy())
    # hashing has no model files: no size, so the plot's cost is the first one with values
    assert frame.get_column("bytes_on_disk").null_count() == 3
    assert lab.x == "texts_per_s"
    mask = pareto_front(frame, "texts_per_s", "knn_recall", x_better="max")
    assert mask.any() and len(front.x) == int(mask.sum())
    assert lab.figure.layout.xaxis.title.text == "texts_per_s"
    lab.y = "mean_cos_to_teacher"  # the axes' dropdowns redraw, no new run
    assert lab.result is frame and lab.figure.layout.yaxis.title.text == "mean_cos_to_teacher"
    assert "2 variant(s)" in lab.status


def test_no_variant_ticked_and_bad_input(lab: CompressionLab) -> None:
    for box in lab._boxes.values():
        box.value = False
    assert lab.run() is None and "Tick" in lab.status
    for box in lab._boxes.values():
        box.value = True
    with pytest.raises(InvalidInputError, match="variants"):
        CompressionLab(wb.embed.Hashing(dim=8), {}, ["a"])


def test_text_is_escaped() -> None:
    texts = wb.datasets.python_docs(limit=60)["text"].to_list()
    evil = "<img src=x onerror=alert(1)>"
    lab = CompressionLab(wb.embed.Hashing(dim=64), {evil: wb.embed.Hashing(dim=16)}, texts,
                         k=3, drift=False)
    lab.run()
    assert "<img" not in lab._table.value and "&lt;img" in lab._table.value


def test_redraws_update_traces_in_place_and_save_state(lab: CompressionLab) -> None:
    """A new view (page reload, reopened notebook) is built from the widget state: it holds
    the two traces with their points and the axis titles after every run, and a second run
    keeps the same traces (no delete/add the front end replays against a fresh plot)."""
    lab.y = "knn_recall"
    frame = lab.run()
    assert frame is not None
    before = [t.uid for t in lab.figure.data]
    frame = lab.run()
    assert [t.uid for t in lab.figure.data] == before
    state = lab.figure._widget_data
    assert [t["name"] for t in state] == ["models", "Pareto front"]
    assert list(state[0]["text"]) == [str(n) for n in frame.get_column("name").to_list()]
    assert np.allclose(np.asarray(state[0]["y"], dtype=float),
                       frame.get_column(lab.y).to_numpy())
    layout = lab.figure._widget_layout
    assert layout["xaxis"]["title"]["text"] == lab.x
    assert layout["yaxis"]["title"]["text"] == lab.y
    lab.y = "mean_cos_to_teacher"
    assert lab.figure._widget_layout["yaxis"]["title"]["text"] == "mean_cos_to_teacher"
    # point labels are drawn past the plot area, not clipped at it
    assert lab.figure.data[0].cliponaxis is False
    lab.y = "knn_recall"


def test_no_raw_progress_text_while_running(lab: CompressionLab) -> None:
    lab.run()
    outputs = lab._progress.outputs
    assert not any("comparing models" in str(o) for o in outputs)
    assert "variant(s) against the teacher" in lab.status


def test_repr_is_short_and_plain(lab: CompressionLab) -> None:
    text = repr(lab)
    assert text.startswith("CompressionLab(") and "<style>" not in text and len(text) < 120
    assert "2 variants" in text


def test_rows_and_export(lab: CompressionLab) -> None:
    frame = lab.run()
    assert frame is not None and lab.rows is frame
    html = lab.export.export("csv")
    uri = html.split("href='")[1].split("'")[0]
    assert uri.startswith("data:text/csv;base64,") and "compression_comparison.csv" in html
    back = pl.read_csv(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    assert back.get_column("name").to_list() == frame.get_column("name").to_list()
    html = lab.export.export("parquet")
    uri = html.split("href='")[1].split("'")[0]
    back = pl.read_parquet(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    assert back.equals(frame)


def test_no_null_comparison_warning() -> None:
    """Setting the result traits once compared a polars frame with None (a UserWarning;
    traitlets swallows it as an exception when warnings are errors, so it is recorded)."""
    texts = wb.datasets.python_docs(limit=40)["text"].to_list()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        fresh = CompressionLab(wb.embed.Hashing(dim=32), {"s": wb.embed.Hashing(dim=8)}, texts,
                               k=3, drift=False)
        fresh.run()
    assert fresh.result is not None
    assert [str(w.message) for w in seen if "None" in str(w.message)] == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fresh.run()


def test_edge_labels_point_inwards() -> None:
    from workbench.widgets.compress import _label_positions

    assert _label_positions([3.0, 1.0, 2.0]) == ["top left", "top right", "top center"]
    assert _label_positions([1.0]) == ["top center"]
