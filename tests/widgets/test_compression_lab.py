"""CompressionLab: the comparison runs on the button only, fills the table, marks the front."""

from __future__ import annotations

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
    assert html.count("<tr class=") == 3 and "small" in html
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
