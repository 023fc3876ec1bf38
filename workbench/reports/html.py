"""HTML building blocks: escaped tables and a single-file page with inline CSS."""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

if TYPE_CHECKING:
    from ..store import Store

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1100px;
color:#1d2430;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;
border-bottom:1px solid #dde3ea;padding-bottom:.3rem}
.sub{color:#5b6675;margin-top:0}
table{border-collapse:collapse;width:100%;font-size:.88rem;margin:.6rem 0}
th,td{border:1px solid #dde3ea;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f6f9}td.num{text-align:right;font-variant-numeric:tabular-nums}
.kv td:first-child{width:14rem;color:#5b6675}
.note{color:#5b6675;font-size:.85rem}
"""


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


def _cell(value: Any, max_chars: int) -> tuple[str, bool]:
    if value is None:
        return "", False
    if isinstance(value, float):
        return f"{value:.4g}", True
    if isinstance(value, int):
        return str(value), True
    return escape_text(value, max_chars), False


def frame_table(df: pl.DataFrame, *, max_rows: int = 200, max_chars: int = 240) -> str:
    """Render a polars frame as an HTML table, escaping every value."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    rows = []
    for row in df.head(max_rows).iter_rows():
        cells = []
        for v in row:
            text, num = _cell(v, max_chars)
            cells.append(f'<td class="num">{text}</td>' if num else f"<td>{text}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    more = (
        f'<p class="note">{df.height - max_rows} more rows not shown</p>'
        if df.height > max_rows else ""
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>{more}"


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
        "bytes on disk": f"{disk:,} ({disk / max(len(store), 1):,.0f} per vector)",
        "HNSW": ", ".join(f"{k}={v}" for k, v in store.index_params.items()),
    }
    return Section("Store", key_values(items) + frame_table(store.segments))


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
