"""Self-contained HTML reports (no network, every user string escaped)."""

from __future__ import annotations

from .html import (
    Section,
    figure_html,
    format_bytes,
    format_count,
    format_percent,
    format_time,
    frame_table,
    key_values,
    render_page,
    store_summary,
    write_report,
)

__all__ = [
    "Section",
    "figure_html",
    "format_bytes",
    "format_count",
    "format_percent",
    "format_time",
    "frame_table",
    "key_values",
    "render_page",
    "store_summary",
    "write_report",
]
