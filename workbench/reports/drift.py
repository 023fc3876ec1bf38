"""Drift charts (plotly) and a self-contained drift monitoring report.

Why plotly: one figure object renders live in JupyterLab (``go.FigureWidget``, an anywidget)
and inside a single HTML file with plotly.js inlined (``include_plotlyjs=True``: no CDN, no
network), so the dashboard and the cron report draw the same chart. Altair needs vl-convert or
three CDN scripts for the same; matplotlib has no interaction in a static page.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from .html import Section, frame_table, key_values, render_page

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


def drift_figure(result: DriftResult, *, height_per_panel: int = 170) -> Any:
    """One panel per metric over the windows; flagged windows as red markers and bands.

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
    flagged = w.get_column("flagged").fill_null(False).to_list()
    status = w.get_column("status").to_list()
    for row, (col, _, label) in enumerate(panels, start=1):
        ys = w.get_column(col).to_list()
        if col == "p_adjusted":  # a log axis drops zeros: show p below 1e-16 at 1e-16
            ys = [None if y is None else max(y, P_FLOOR) for y in ys]
        text = [f"{s}<br>n={n}, {st}" for s, n, st in zip(starts, w["n"].to_list(), status,
                                                           strict=True)]
        fig.add_scatter(x=starts, y=ys, mode="lines+markers", name=label, row=row, col=1,
                        line={"color": LINE_COLOUR}, marker={"size": 6}, hovertext=text,
                        hoverinfo="text+y", showlegend=False)
        fx = [s for s, f in zip(starts, flagged, strict=True) if f]
        fy = [y for y, f in zip(ys, flagged, strict=True) if f]
        if fx:
            fig.add_scatter(x=fx, y=fy, mode="markers", name="flagged", row=row, col=1,
                            marker={"color": FLAG_COLOUR, "size": 11, "symbol": "x"},
                            showlegend=row == 1)
        if col == "p_adjusted":
            fig.update_yaxes(type="log", row=row, col=1)
            fig.add_hline(y=result.params.get("alpha", 0.05), line_dash="dot",
                          line_color=FLAG_COLOUR, row=row, col=1)
        if col == "auc":
            fig.add_hline(y=0.5, line_dash="dot", line_color="#999", row=row, col=1)
        fig.update_yaxes(title_text=label, row=row, col=1)
    fig.update_layout(height=height_per_panel * max(1, len(panels)) + 80,
                      margin={"l": 60, "r": 20, "t": 40, "b": 40}, template="plotly_white",
                      legend={"orientation": "h", "y": 1.02, "x": 1, "xanchor": "right"})
    return fig


def _changes_html(result: DriftResult, start: Any) -> str:
    """The what-changed block of one window (escaped), or "" when the result has none."""
    changes = getattr(result, "changes", None)
    if not changes or start not in changes:
        return ""
    c = changes[start]
    parts = [f"<h3>{html.escape(str(start))}</h3>"]
    kv: dict[str, Any] = {"rows unlike the reference": f"{c['novel_share']:.1%}"}
    if c.get("keywords"):
        kv["keywords of what is new"] = ", ".join(c["keywords"])
    for cl, words in (c.get("emerging_keywords") or {}).items():
        kv[f"emerging cluster {cl}"] = ", ".join(words) or "-"
    parts.append(key_values(kv))
    clusters: pl.DataFrame = c["clusters"]
    moved = clusters.filter(pl.col("status") != "stable")
    if moved.height:
        parts.append(frame_table(moved.with_columns(pl.col(pl.Float64).round(4))))
    ex: pl.DataFrame | None = c.get("examples")
    if ex is not None and ex.height:
        parts.append("<p class='note'>rows that best separate the window from the reference "
                     "(domain-classifier score)</p>")
        parts.append(frame_table(ex, max_chars=300))
    return "".join(parts)


def drift_sections(result: DriftResult, *, title: str = "Drift over time") -> list[Section]:
    """Report sections: summary, chart (plotly.js inlined), windows, what changed."""
    fig = drift_figure(result)
    chart = fig.to_html(full_html=False, include_plotlyjs=True,
                        config={"displaylogo": False,
                                "toImageButtonOptions": {"format": "png"}})
    s = result.summary
    p = result.params
    summary = {
        "windows": f"{s.get('windows')} ({s.get('tested')} tested, {s.get('flagged')} flagged)",
        "window length": p.get("every"), "time column": p.get("time"),
        "reference": s.get("reference"), "methods": ", ".join(p.get("methods", ())),
        "alpha": p.get("alpha"),
        "flag rule": "Bonferroni over the tests of a window, then Holm over the windows",
        "first flagged window": s.get("first_flagged") or "none",
    }
    table = result.windows.with_columns(pl.col(pl.Float64).round(5))
    sections = [
        Section(title, key_values(summary) + chart,
                note="Red crosses: flagged windows. Hover a point for its window, size and "
                     "status."),
        Section("Windows", frame_table(table, max_rows=500)),
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
