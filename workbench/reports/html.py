"""HTML building blocks: escaped tables and a single-file page with inline CSS."""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

if TYPE_CHECKING:
    from ..store import Store

#: A table cell formatter: the value (never None) to plain text, escaped by the caller.
Formatter = Callable[[Any], str]

# Tables scroll inside their own box (div.scroll), so a wide table never widens the page;
# long text columns (td.text) get a readable minimum width and short strings such as ids may
# wrap anywhere, so the text a reviewer reads is not squeezed by an id column.
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1100px;
color:#1d2430;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;
border-bottom:1px solid #dde3ea;padding-bottom:.3rem}
.sub{color:#5b6675;margin-top:0}
.scroll{overflow-x:auto;max-width:100%;margin:.6rem 0}
.scroll table{margin:0}
table{border-collapse:collapse;width:100%;font-size:.88rem;margin:.6rem 0}
th,td{border:1px solid #dde3ea;padding:.3rem .5rem;text-align:left;vertical-align:top}
td{overflow-wrap:anywhere}
th{background:#f3f6f9}td.num{text-align:right;font-variant-numeric:tabular-nums;
white-space:nowrap;overflow-wrap:normal}
td.text{min-width:22rem;overflow-wrap:break-word}
.kv td:first-child{width:14rem;color:#5b6675}
.note{color:#5b6675;font-size:.85rem;overflow-wrap:anywhere}
img{max-width:100%;height:auto}
"""

#: A string column whose values average more characters than this is a text column (td.text).
TEXT_COLUMN_CHARS = 60


@dataclass(frozen=True)
class Section:
    """One titled block of a report; `body` is trusted HTML built by this module's helpers."""

    title: str
    body: str
    note: str = ""


def escape_text(value: Any, max_chars: int = 300) -> str:
    """Any value as HTML-escaped text, shortened to `max_chars` with an ellipsis."""
    text = "" if value is None else str(value)
    if len(text) > max_chars:
        text = text[: max_chars - 1] + "…"
    return html.escape(text)


def format_bytes(n: float) -> str:
    """A byte count in decimal units: ``91_600_000 -> "91.6 MB"``.

    Examples
    --------
    >>> format_bytes(91_612_345), format_bytes(512)
    ('91.6 MB', '512 B')
    """
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")  # pragma: no cover


def format_count(n: float, unit: str = "") -> str:
    """A large count in thousands (k), millions (M) or billions (G), with an optional unit.

    Examples
    --------
    >>> format_count(22_713_216, "params"), format_count(950)
    ('22.7 M params', '950')
    """
    value = float(n)
    text = f"{value:,.0f}"
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= div:
            text = f"{value / div:.1f} {suffix}"
            break
    return f"{text} {unit}" if unit else text


def format_percent(x: float, *, decimals: int = 1) -> str:
    """A share as a percentage: ``0.0065 -> "0.7%"``."""
    return f"{100 * float(x):.{decimals}f}%"


def format_time(value: Any) -> str:
    """A window start or timestamp as a date when it falls on midnight, else to the minute.

    Examples
    --------
    >>> from datetime import datetime
    >>> format_time(datetime(2025, 4, 1)), format_time(datetime(2025, 4, 1, 9, 30))
    ('2025-04-01', '2025-04-01 09:30')
    """
    if isinstance(value, datetime):
        if (value.hour, value.minute, value.second, value.microsecond) == (0, 0, 0, 0):
            return f"{value:%Y-%m-%d}"
        return f"{value:%Y-%m-%d %H:%M}"
    if isinstance(value, date):
        return value.isoformat()
    return "" if value is None else str(value)


def _float_formatter(values: list[Any]) -> Formatter:
    """One format for a whole float column, chosen from its magnitudes."""
    finite = [abs(v) for v in values if isinstance(v, float) and math.isfinite(v)]
    big = max(finite, default=0.0)
    small = min((v for v in finite if v > 0), default=big)
    if 0 < small < 1e-3 and (big < 1e-3 or big / small > 1e3):  # p-values: 0.5 next to 1e-12
        return lambda v: "0" if v == 0 else f"{v:.2e}"
    if big >= 1000:
        return lambda v: f"{v:,.0f}"
    decimals = 4 if big == 0 else min(4, max(1, 3 - math.floor(math.log10(big))))
    return lambda v: f"{v:,.{decimals}f}"


def _column_formatter(series: pl.Series) -> tuple[Formatter, str]:
    """The default formatter of a column and its cell class ("num", "text" or "")."""
    dtype = series.dtype
    if dtype == pl.Boolean:
        return (lambda v: "yes" if v else "no"), ""
    if dtype.is_float():
        fmt = _float_formatter(series.to_list())

        def floats(v: Any) -> str:
            return fmt(v) if math.isfinite(v) else str(v)
        return floats, "num"
    if dtype.is_integer():
        return (lambda v: f"{v:,}"), "num"
    if dtype in (pl.Datetime, pl.Date) or isinstance(dtype, pl.Datetime):
        return format_time, ""
    if dtype == pl.String:
        lengths = series.drop_nulls().str.len_chars()
        mean = float(lengths.mean()) if lengths.len() else 0.0  # type: ignore[arg-type]
        return str, "text" if mean > TEXT_COLUMN_CHARS else ""
    return str, ""


def frame_table(
    df: pl.DataFrame,
    *,
    max_rows: int = 200,
    max_chars: int = 240,
    formats: Mapping[str, Formatter] | None = None,
    drop_empty: bool = True,
) -> str:
    """Render a polars frame as an HTML table that scrolls inside its own box.

    Every value is escaped. Each column has one format: floats share their decimals (or
    scientific notation where they span many orders of magnitude, as p-values do), integers
    get thousands separators, midnight datetimes print as dates and long string columns get
    a readable minimum width.

    Parameters
    ----------
    df : polars.DataFrame
        The rows to show.
    max_rows : int, default 200
        Rows shown; a note says how many more there are.
    max_chars : int, default 240
        Longer cell texts are cut with an ellipsis.
    formats : dict of column name to callable, optional
        Formatters overriding the default of a column (e.g. :func:`format_bytes`); each gets a
        non-null value and returns plain text (escaped here).
    drop_empty : bool, default True
        Leave out columns whose every shown value is null.

    Returns
    -------
    str
        ``<div class="scroll"><table>...</table></div>``, then the note on hidden rows.
    """
    shown = df.head(max_rows)
    if drop_empty and shown.height:
        shown = shown.select([c for c in shown.columns if shown.get_column(c).null_count()
                              < shown.height])
    formats = dict(formats or {})
    cols = []
    for name in shown.columns:
        fmt, cls = _column_formatter(shown.get_column(name))
        if name in formats:
            fmt = formats[name]
            cls = "num" if cls == "num" else cls
        cols.append((fmt, f' class="{cls}"' if cls else ""))
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns)
    rows = []
    for row in shown.iter_rows():
        cells = [f"<td{cls}>{'' if v is None else escape_text(fmt(v), max_chars)}</td>"
                 for v, (fmt, cls) in zip(row, cols, strict=True)]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    more = (
        f'<p class="note">{df.height - max_rows} more rows not shown</p>'
        if df.height > max_rows else ""
    )
    return (f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>{more}")


def figure_html(fig: Any, *, alt: str = "figure") -> str:
    """A matplotlib figure as an inline PNG ``<img>`` (no external files)."""
    import base64
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def key_values(items: dict[str, Any]) -> str:
    """A two-column table of labels and values (escaped)."""
    rows = "".join(
        f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
        for k, v in items.items()
    )
    return f'<table class="kv"><tbody>{rows}</tbody></table>'


def store_summary(store: Store) -> Section:
    """A section describing a store: size, model, metric, segments, bytes on disk."""
    disk = sum(p.stat().st_size for p in store.path.rglob("*") if p.is_file())
    model = store.model
    items = {
        "path": str(store.path),
        "rows": f"{len(store):,}",
        "dimension": store.dim,
        "metric / index dtype": f"{store.metric} / {store.dtype}",
        "model": "none recorded" if model is None else model.describe(),
        "generation": store.generation,
        "segments": len(store.segments),
        "bytes on disk": f"{format_bytes(disk)} ({disk / max(len(store), 1):,.0f} bytes per "
                         "vector)",
        "HNSW": ", ".join(f"{k}={v}" for k, v in store.index_params.items()),
    }
    return Section("Store", key_values(items) + frame_table(store.segments,
                                                            formats={"bytes": format_bytes}))


def render_page(title: str, sections: list[Section], *, subtitle: str = "") -> str:
    """A complete, self-contained HTML page."""
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")  # noqa: UP017
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p class='sub'>{html.escape(subtitle)} · generated {stamp}</p>",
    ]
    for s in sections:
        parts.append(f"<h2>{html.escape(s.title)}</h2>")
        if s.note:
            parts.append(f"<p class='note'>{html.escape(s.note)}</p>")
        parts.append(s.body)
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(path: str | Path, title: str, sections: list[Section], *,
                 subtitle: str = "") -> Path:
    """Write a report page to `path` (parent folders are created)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_page(title, sections, subtitle=subtitle), encoding="utf-8")
    return out
