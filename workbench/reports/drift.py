"""Drift charts (plotly) and a self-contained drift monitoring report.

Why plotly: one figure object renders live in JupyterLab (``go.FigureWidget``, an anywidget)
and inside a single HTML file with plotly.js inlined (``include_plotlyjs=True``: no CDN, no
network), so the dashboard and the cron report draw the same chart. Altair needs vl-convert or
three CDN scripts for the same; matplotlib has no interaction in a static page.
"""

from __future__ import annotations

import html
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from ..analysis.keywords import drop_generic
from .html import Section, format_percent, format_time, frame_table, key_values, render_page

if TYPE_CHECKING:
    from ..analysis.drift import DriftResult

#: (column, title, y-axis label) of each panel, top to bottom.
PANELS = (
    ("centroid_shift", "centroid shift (1 - cosine of the means)", "shift"),
    ("mmd2", "MMD² (random Fourier features, several bandwidths)", "MMD²"),
    ("auc", "domain classifier ROC-AUC (0.5 = indistinguishable)", "AUC"),
    ("components_drifted", "share of PCA components that drifted (BH)", "share"),
    ("p_adjusted", "window p-value, Holm-adjusted over windows (log)", "p"),
)
FLAG_COLOUR = "#d62728"
#: Smallest p-value drawn (float64 p-values underflow to 0, which a log axis cannot show).
P_FLOOR = 1e-16
LINE_COLOUR = "#4c78a8"


#: Up to this many windows, the date axis has one tick per window start.
MAX_TICKED_WINDOWS = 16
#: Shading of the reference window(s) in every panel.
REFERENCE_FILL = "#9aa5b1"
#: What the domain classifier's numbers mean, shown under the chart and the example rows.
AUC_NOTE = ("ROC-AUC: how well a logistic classifier, scored out of fold, tells the window's "
            "rows from the reference's; 0.5 means it cannot tell them apart (no drift), 1 that "
            "it separates them completely.")
SCORE_NOTE = ("p_window: the domain classifier's probability that the row belongs to the "
              "window rather than the reference; 0.5 means it could belong to either, values "
              "near 1 mark what is new.")


def _reference_spans(w: pl.DataFrame) -> list[tuple[Any, Any]]:
    """``(start, end)`` of each window that serves as the reference (status "reference")."""
    if "status" not in w.columns or "end" not in w.columns:
        return []
    ref = w.filter(pl.col("status") == "reference")
    return list(zip(ref.get_column("start").to_list(), ref.get_column("end").to_list(),
                    strict=True))


def drift_figure(result: DriftResult, *, height_per_panel: int = 170) -> Any:
    """One panel per metric over the windows; flagged windows as red markers and bands.

    The reference window is shaded in every panel, the p-value axis is labelled at decades
    only and the legend sits above the panels, clear of the points.

    Returns
    -------
    plotly.graph_objects.Figure
        Wrap it in ``plotly.graph_objects.FigureWidget`` to use it live in a notebook.
    """
    from plotly.subplots import make_subplots

    w = result.windows
    panels = [p for p in PANELS if p[0] in w.columns and w.get_column(p[0]).drop_nulls().len()]
    fig = make_subplots(rows=max(1, len(panels)), cols=1, shared_xaxes=True,
                        subplot_titles=[p[1] for p in panels], vertical_spacing=0.06)
    starts = w.get_column("start").to_list()
    labels = [format_time(s) for s in starts]
    flagged = w.get_column("flagged").fill_null(False).to_list()
    status = w.get_column("status").to_list()
    for row, (col, _, label) in enumerate(panels, start=1):
        ys = w.get_column(col).to_list()
        if col == "p_adjusted":  # a log axis drops zeros: show p below 1e-16 at 1e-16
            ys = [None if y is None else max(y, P_FLOOR) for y in ys]
        text = [f"{s}<br>n={n:,}, {st}" for s, n, st in zip(labels, w["n"].to_list(), status,
                                                             strict=True)]
        fig.add_scatter(x=starts, y=ys, mode="lines+markers", name=label, row=row, col=1,
                        line={"color": LINE_COLOUR}, marker={"size": 6}, hovertext=text,
                        hoverinfo="text+y", showlegend=False)
        fx = [s for s, f in zip(starts, flagged, strict=True) if f]
        fy = [y for y, f in zip(ys, flagged, strict=True) if f]
        if fx:
            fig.add_scatter(x=fx, y=fy, mode="markers", name="flagged window", row=row, col=1,
                            marker={"color": FLAG_COLOUR, "size": 11, "symbol": "x"},
                            showlegend=row == 1, hoverinfo="skip")
        if col == "p_adjusted":
            # decades only: minor ticks of a log axis are labelled "2, 5" otherwise
            fig.update_yaxes(type="log", dtick=1, exponentformat="power", row=row, col=1)
            fig.add_hline(y=result.params.get("alpha", 0.05), line_dash="dot",
                          line_color=FLAG_COLOUR, row=row, col=1)
        if col == "auc":
            fig.add_hline(y=0.5, line_dash="dot", line_color="#999", row=row, col=1)
        fig.update_yaxes(title_text=label, row=row, col=1)
    for i, (x0, x1) in enumerate(_reference_spans(w)):
        for row in range(1, len(panels) + 1):
            extra: dict[str, Any] = {}
            if row == 1 and i == 0:
                extra = {"annotation_text": "reference", "annotation_position": "top left",
                         "annotation_font": {"size": 10, "color": "#5b6675"}}
            fig.add_vrect(x0=x0, x1=x1, fillcolor=REFERENCE_FILL, opacity=0.18, line_width=0,
                          layer="below", row=row, col=1, **extra)
    monthly = all(isinstance(s, datetime) and s.day == 1 and s.hour == 0 for s in starts)
    fmt = "%b %Y" if monthly else "%Y-%m-%d"
    if 0 < len(starts) <= MAX_TICKED_WINDOWS and all(isinstance(s, date) for s in starts):
        # a tick at each window's start: plotly's own ticks fall between monthly windows and
        # label two in a row "Jan 2025"
        fig.update_xaxes(tickvals=starts, ticktext=[s.strftime(fmt) for s in starts],
                         hoverformat="%Y-%m-%d")
    else:
        fig.update_xaxes(tickformat=fmt, hoverformat="%Y-%m-%d")
    # The legend sits in the top margin (container coordinates), above the first panel's
    # title, so it never covers a point.
    fig.update_layout(height=height_per_panel * max(1, len(panels)) + 110,
                      margin={"l": 60, "r": 20, "t": 70, "b": 40}, template="plotly_white",
                      autosize=True,
                      legend={"orientation": "h", "yref": "container", "y": 0.995,
                              "yanchor": "top", "x": 1, "xanchor": "right"})
    return fig


def _changes_html(result: DriftResult, start: Any) -> str:
    """The what-changed block of one window (escaped), or "" when the result has none."""
    changes = getattr(result, "changes", None)
    if not changes or start not in changes:
        return ""
    c = changes[start]
    parts = [f"<h3>{html.escape(format_time(start))}</h3>"]
    kv: dict[str, Any] = {"rows unlike the reference": format_percent(c["novel_share"])}
    words = drop_generic(c.get("keywords") or [])
    if words:
        kv["keywords of what is new"] = ", ".join(words)
    # emerging clusters' words come from the window, vanishing ones' from the reference
    named: dict[int, list[str]] = {**(c.get("emerging_keywords") or {}),
                                   **(c.get("vanishing_keywords") or {})}
    parts.append(key_values(kv))
    clusters: pl.DataFrame = c["clusters"]
    moved = clusters.filter(pl.col("status") != "stable")
    if moved.height:
        kw = [", ".join(drop_generic(named.get(int(cl), []))[:6]) or None
              for cl in moved.get_column("cluster").to_list()]
        moved = moved.with_columns(keywords=pl.Series(kw, dtype=pl.String))
        shares = ("reference_share", "window_share", "change", "shift_contribution")
        parts.append(frame_table(moved, drop_empty=False,
                                 formats={k: format_percent for k in shares if k in moved.columns}))
        parts.append("<p class='note'>Keywords of an emerging cluster come from the window's "
                     "rows, of a vanishing one from the reference rows it held.</p>")
    ex: pl.DataFrame | None = c.get("examples")
    if ex is not None and ex.height:
        if "score" in ex.columns:  # log-odds of the logistic classifier -> probability
            ex = ex.with_columns(p_window=1 / (1 + (-pl.col("score")).exp())).drop("score")
        parts.append("<p class='note'>Rows that best separate the window from the reference. "
                     f"{html.escape(SCORE_NOTE)}</p>")
        parts.append(frame_table(ex, max_chars=300))
    return "".join(parts)


def drift_sections(result: DriftResult, *, title: str = "Drift over time") -> list[Section]:
    """Report sections: summary, chart (plotly.js inlined), windows, what changed."""
    fig = drift_figure(result)
    chart = fig.to_html(full_html=False, include_plotlyjs=True, default_width="100%",
                        config={"displaylogo": False, "responsive": True,
                                "toImageButtonOptions": {"format": "png"}})
    s = result.summary
    p = result.params
    first_flagged = s.get("first_flagged")
    summary = {
        "windows": f"{s.get('windows')} ({s.get('tested')} tested, {s.get('flagged')} flagged)",
        "window length": p.get("every"), "time column": p.get("time"),
        "reference": format_time(s.get("reference")), "methods": ", ".join(p.get("methods", ())),
        "alpha": p.get("alpha"),
        "flag rule": "Bonferroni over the tests of a window, then Holm over the windows",
        "first flagged window": format_time(first_flagged) if first_flagged else "none",
    }
    sections = [
        Section(title, key_values(summary) + chart,
                note="Red crosses: flagged windows; grey band: the reference window. Hover a "
                     f"point for its window, size and status. {AUC_NOTE}"),
        Section("Windows", frame_table(result.windows, max_rows=500)),
    ]
    flagged = result.windows.filter(pl.col("flagged").fill_null(False))
    blocks = [_changes_html(result, st) for st in flagged.get_column("start").to_list()]
    blocks = [b for b in blocks if b]
    if blocks:
        sections.append(Section("What changed in the flagged windows", "".join(blocks)))
    return sections


def write_drift_report(result: DriftResult, path: str | Path, *,
                       title: str = "Drift report", subtitle: str = "") -> Path:
    """Write a self-contained HTML drift report to `path`.

    Charts and scripts are inlined: nothing is loaded from the network.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    page = render_page(title, drift_sections(result), subtitle=subtitle)
    out.write_text(page, encoding="utf-8")
    return out
