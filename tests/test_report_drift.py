"""The drift chart and report: readable axes, the reference marked, dates, shares, keywords."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

import workbench as wb
from workbench.analysis.keywords import GENERIC_WORDS, drop_generic
from workbench.reports.drift import drift_figure, drift_sections


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> wb.DriftResult:
    st = wb.datasets.synthetic_stream(3_000, 16, drift_points=2, duplicate_groups=0)
    store = wb.Store.create(tmp_path_factory.mktemp("rd") / "s", dim=16)
    # generic words in every text must not reach "keywords of what is new"; each cluster
    # has a word of its own ("kwb" for cluster 1) for the emerging clusters' keywords
    words = ["kw" + "".join(chr(97 + int(d)) for d in str(c)) for c in st.frame["cluster"]]
    store.add(st.frame.with_columns(
        text=pl.format("bytes used values file list {} <b>x</b>", pl.Series(words))),
        vectors=st.vectors, progress=False)
    return wb.compute_drift(store, every="1mo", progress=False)


def test_log_axis_labels_decades_and_legend_clears_the_panels(result: wb.DriftResult) -> None:
    fig = drift_figure(result)
    logs = [fig.layout[k] for k in fig.layout if k.startswith("yaxis")
            and fig.layout[k].type == "log"]
    assert len(logs) == 1 and logs[0].dtick == 1 and logs[0].exponentformat == "power"
    legend = fig.layout.legend
    assert legend.yref == "container" and legend.yanchor == "top"  # in the top margin
    assert [t.name for t in fig.data if t.showlegend] == ["flagged window"]


def test_reference_window_is_shaded_in_every_panel(result: wb.DriftResult) -> None:
    fig = drift_figure(result)
    ref = result.windows.filter(pl.col("status") == "reference").row(0, named=True)
    rects = [s for s in fig.layout.shapes if s.type == "rect"]
    assert len(rects) == 5  # one per panel
    assert all(s.x0 == ref["start"] and s.x1 == ref["end"] for s in rects)
    assert "reference" in [a.text for a in fig.layout.annotations]


def test_dates_formatted_in_chart_and_tables(result: wb.DriftResult) -> None:
    fig = drift_figure(result)
    assert list(fig.layout.xaxis.ticktext)[:2] == ["Jan 2025", "Feb 2025"]
    hover = fig.data[0].hovertext
    assert hover[0].startswith("2025-01-01<br>") and "00:00:00" not in "".join(hover)
    sections = drift_sections(result)
    html = sections[0].body.split("<div")[0] + "".join(s.body for s in sections[1:])
    assert "00:00:00" not in html and "<td>2025-04-01</td>" in html
    assert "<h3>2025-02-01</h3>" in html


def test_what_changed_shows_percent_keywords_and_explains_the_score(
    result: wb.DriftResult,
) -> None:
    sections = drift_sections(result)
    changed = sections[-1]
    assert changed.title == "What changed in the flagged windows"
    body = changed.body
    assert "<td>rows unlike the reference</td><td>" in body
    share = body.split("<td>rows unlike the reference</td><td>")[1].split("</td>")[0]
    assert share.endswith("%")
    # emerging clusters carry their keywords, shares print as percentages
    first = body.split("<h3>")[1]
    header = first.split("<thead>")[1].split("</thead>")[0]
    assert "<th>keywords</th>" in header
    assert "emerging</td>" in first and "<td>kw" in first.split("emerging</td>")[1][:200]
    assert 'class="num">' in first and "%</td>" in first
    assert "0.0" not in first.split("<tbody>")[1].split("</tbody>")[0].split("<td>emerging")[0]
    # generic words are dropped from the keywords of what is new
    kv = first.split("</table>")[0]
    for word in ("bytes", "used", "values", "file", "list"):
        assert word not in kv
    # the classifier score is explained and shown as a probability
    assert "<th>p_window</th>" in body and "0.5 means" in body
    assert "ROC-AUC" in sections[0].note and "0.5" in sections[0].note
    assert "&lt;b&gt;x&lt;/b&gt;" in body and "<b>x</b>" not in body


def test_drop_generic_keeps_order_and_topic_words() -> None:
    assert {"bytes", "used", "values", "file", "list"} <= GENERIC_WORDS
    assert drop_generic(["bytes", "tkinter", "used", "widget", "List"]) == ["tkinter", "widget"]
    assert drop_generic(["tkinter", "canvas"], extra=["Canvas"]) == ["tkinter"]


def test_report_file_is_offline(result: wb.DriftResult, tmp_path: Path) -> None:
    from workbench.reports.drift import write_drift_report

    page = write_drift_report(result, tmp_path / "d.html").read_text()
    assert "<script src=" not in page and "<link" not in page
    assert page.count('class="scroll"') >= 2
    assert isinstance(result.windows["start"][0], datetime)



def test_few_windows_get_one_date_tick_each(result: wb.DriftResult) -> None:
    # plotly's automatic ticks fall between monthly windows and label two in a row alike
    ticks = drift_figure(result).layout.xaxis.ticktext
    starts = result.windows.get_column("start").to_list()
    assert ticks is not None and len(ticks) == len(set(ticks)) == len(starts) > 1
    assert list(ticks) == [s.strftime("%b %Y") for s in starts]
