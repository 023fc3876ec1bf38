"""The demo report's pieces: ANN through the index, quantization reasons, model table, timing."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import workbench as wb
from workbench.cli.demo import _ann_section, _build_step, _models_table, _support_table
from workbench.reports import Section, frame_table, write_report


def test_ann_evaluation_goes_through_the_index_of_a_small_store(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((3_000, 48)).astype(np.float32)
    with wb.Store.create(tmp_path / "s", dim=48) as store:  # under exact_threshold (4,096)
        store.add(pl.DataFrame({"id": [f"r{i}" for i in range(3_000)]}), vectors=vecs,
                  progress=False)
        section = _ann_section(store)
    assert "exact_threshold=1" in section.note and "HNSW" in section.note
    head = section.body.split("<thead>")[1].split("</thead>")[0]
    col = re.findall(r"<th>(.*?)</th>", head).index("recall")
    rows = re.findall(r"<tr>(.*?)</tr>", section.body.split("<tbody>")[1])
    recalls = [float(re.findall(r"<td[^>]*>(.*?)</td>", r)[col]) for r in rows]
    # exact search would give 1.0 at every setting; the index at ef=8 misses some neighbours
    assert recalls and min(recalls) < 1.0
    assert not list(tmp_path.glob("wb-ann-*"))


def test_quantization_support_one_row_per_scheme_with_short_reasons() -> None:
    support = pl.DataFrame({
        "scheme": ["bf16", "int8-dynamic", "int4-weight", "onnx-int8", "int4-weight",
                   "int4-weight", "int8-dynamic"],
        "backend": ["torch", "fbgemm", "torchao opaque", "onnxruntime", "torchao plain",
                    "torchao tile", "torchao da8w8"],
        "runs": [True, True, False, False, False, False, False],
        "reason": ["", "", "ImportError: Requires mslk >= 1.0.0",
                   "ModuleNotFoundError: No module named 'onnxruntime.quantization'",
                   "AssertionError: Torch not compiled with CUDA enabled",
                   "RuntimeError: weird failure\nTraceback (most recent call last): ...",
                   "AssertionError: Torch not compiled with CUDA enabled"],
    })
    table = _support_table(support)
    assert table["scheme"].to_list() == ["bf16", "int8-dynamic", "int4-weight", "onnx-int8"]
    rows = {r["scheme"]: r for r in table.iter_rows(named=True)}
    assert rows["int8-dynamic"]["runs"] and rows["int8-dynamic"]["why not"] == ""
    assert rows["int8-dynamic"]["backend"] == "fbgemm" and rows["int4-weight"][
        "backends tried"] == 3
    assert rows["onnx-int8"]["why not"] == "needs package onnxruntime"
    why = rows["int4-weight"]["why not"]
    assert "needs package mslk" in why and "needs a CUDA GPU" in why
    html = frame_table(table)
    for raw in ("Error", "Traceback", "AssertionError", "ImportError"):
        assert raw not in html


def test_models_table_formats_sizes_and_shows_the_teachers_reseed_floor() -> None:
    models = pl.DataFrame({
        "name": ["minilm", "onnx-int8"], "role": ["teacher", "variant"], "dim": [384, 384],
        "params": [22_713_216, None], "bytes_on_disk": [91_612_345, 23_000_000],
        "knn_recall": [1.0, 0.81234], "cluster_ari": [1.0, 0.2982],
        "cluster_ari_reseed": [0.286, 0.31], "note": [None, "x"],
    })
    html = _models_table(models)
    assert ">91.6 MB<" in html and ">23.0 MB<" in html and ">22.7 M params<" in html
    head = html.split("<thead>")[1].split("</thead>")[0]
    assert "<th>cluster_ari</th><th>teacher_ari_reseed</th>" in head
    # the teacher's floor on both rows, beside the teacher's own cluster_ari_reseed
    assert html.count(">0.2860<") == 3 and "teacher_ari_reseed" in html.split("</table>")[1]
    assert "<th>note</th>" not in head


def test_timing_says_cold_or_warm() -> None:
    assert "cold" in _build_step(300, 300) and "cached" not in _build_step(300, 300)
    assert "warm" in _build_step(300, 0) and "warm" in _build_step(0, 0)
    assert "cold" not in _build_step(300, 0) and "120 texts embedded" in _build_step(300, 120)


def test_wide_report_page_fits_a_1400_px_window(tmp_path: Path) -> None:
    from tests.browser.harness import browser_missing_reason, chromium, open_offline

    reason = browser_missing_reason()
    if reason:
        pytest.skip(reason)
    wide = pl.DataFrame({f"a_rather_long_column_name_{i}": [123_456.789, 0.5] for i in range(17)})
    text = "The texts are what a reviewer reads, so they get the width. " * 4
    dups = pl.DataFrame({"group": [0, 0], "size": [2, 2], "text": [text, text],
                         "id": ["library/a-very-long-identifier-of-a-paragraph#x" * 2] * 2})
    out = write_report(tmp_path / "r.html", "wide", [Section("models", frame_table(wide)),
                                                    Section("dups", frame_table(dups))])
    with chromium() as page:
        assert open_offline(page, out) == []
        width = page.evaluate("document.documentElement.scrollWidth")
        text_px = page.evaluate("document.querySelector('td.text').getBoundingClientRect()"
                                ".width")
        scrolls = page.evaluate("[...document.querySelectorAll('.scroll')]"
                                ".map(e => e.scrollWidth > e.clientWidth)")
    assert width <= 1400
    assert scrolls[0] is True  # the 17-column table scrolls inside its box
    assert text_px >= 300  # not squeezed to ~90 px by the id column
