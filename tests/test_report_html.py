"""Report building blocks: tables that scroll in their box, one number format per column."""

from __future__ import annotations

import re
from datetime import datetime

import polars as pl

from workbench.reports import (
    format_bytes,
    format_count,
    format_percent,
    format_time,
    frame_table,
    key_values,
)


def _cells(table: str, column: int) -> list[str]:
    rows = re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>")[1])
    return [re.findall(r"<td[^>]*>(.*?)</td>", r)[column] for r in rows]


def test_tables_scroll_inside_their_own_box() -> None:
    out = frame_table(pl.DataFrame({f"c{i}": [1.5, 2.25] for i in range(17)}))
    assert out.startswith('<div class="scroll"><table>') and out.endswith("</table></div>")
    from workbench.reports.html import _CSS

    assert re.search(r"\.scroll\{[^}]*overflow-x:auto", _CSS)


def test_one_format_per_column() -> None:
    df = pl.DataFrame({"recall": [1.0, 0.98765, 0.5], "qps": [12_345.6, 987.1, 40_000.0],
                       "p": [0.5, 1e-12, 0.0], "n": [1_200, 35, 7]})
    out = frame_table(df)
    assert _cells(out, 0) == ["1.000", "0.988", "0.500"]  # same decimals, not 1 / 0.9877
    assert _cells(out, 1) == ["12,346", "987", "40,000"]
    assert _cells(out, 2) == ["5.00e-01", "1.00e-12", "0"]  # p-values: no 0.0000
    assert _cells(out, 3) == ["1,200", "35", "7"]
    assert out.count('class="num"') == 12


def test_custom_formats_and_units() -> None:
    assert format_bytes(91_612_345) == "91.6 MB" and format_bytes(999) == "999 B"
    assert format_count(22_713_216, "params") == "22.7 M params"
    assert format_count(950) == "950" and format_count(1_500) == "1.5 k"
    assert format_percent(0.0065) == "0.7%" and format_percent(0.25, decimals=0) == "25%"
    out = frame_table(pl.DataFrame({"bytes_on_disk": [91_612_345], "params": [22_713_216]}),
                      formats={"bytes_on_disk": format_bytes,
                               "params": lambda v: format_count(v, "params")})
    assert ">91.6 MB<" in out and ">22.7 M params<" in out


def test_dates_print_as_dates() -> None:
    assert format_time(datetime(2025, 4, 1)) == "2025-04-01"
    assert format_time(datetime(2025, 4, 1, 9, 30)) == "2025-04-01 09:30"
    out = frame_table(pl.DataFrame({"start": [datetime(2025, 4, 1), datetime(2025, 5, 1)]}))
    assert "<td>2025-04-01</td>" in out and "00:00:00" not in out


def test_empty_columns_dropped_and_text_gets_the_width() -> None:
    text = "A paragraph a reviewer reads, much longer than an id: " * 3
    df = pl.DataFrame({"id": ["library/functions.html#abs", "x"], "score": [None, None],
                       "text": [text, text + "<b>bold</b>"]},
                      schema_overrides={"score": pl.Float64})
    out = frame_table(df)
    assert "<th>score</th>" not in out and "<th>id</th>" in out
    assert out.count('<td class="text">') == 2 and "&lt;b&gt;bold&lt;/b&gt;" in out
    from workbench.reports.html import _CSS

    assert re.search(r"td\.text\{min-width:\d+rem", _CSS)
    assert "<th>score</th>" in frame_table(df, drop_empty=False)


def test_key_values_escape() -> None:
    assert "&lt;script&gt;" in key_values({"a": "<script>"})
