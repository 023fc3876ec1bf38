"""Self-contained HTML reports (no network, every user string escaped)."""

from __future__ import annotations

from .html import Section, frame_table, render_page, store_summary, write_report

__all__ = ["Section", "frame_table", "render_page", "store_summary", "write_report"]
