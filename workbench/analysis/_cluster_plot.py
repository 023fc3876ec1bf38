"""The 2-D map of a clustering as a plotly figure: :func:`cluster_figure`.

Fed by a :class:`~workbench.analysis.cluster.ClusterResult`, never inside the algorithm (as
hdbscan keeps its plots apart). Why plotly: the figure hovers, zooms and toggles clusters from
its legend in a notebook, and renders inside a single HTML report with plotly.js inlined, as
the drift charts do (:mod:`workbench.reports.drift`).
"""

from __future__ import annotations

import html
import math
import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from ..errors import InvalidInputError

if TYPE_CHECKING:
    from plotly.graph_objects import Figure

    from .cluster import ClusterResult

#: Colour of noise points (``cluster == -1``): grey, under the clusters.
NOISE_COLOUR = "#c4c4c4"
#: Above this many points a trace is drawn with WebGL (``Scattergl``): SVG slows to a crawl.
GL_POINTS = 20_000
#: Characters per line of a point's hover text.
WRAP = 80
#: Characters of a legend entry or a map label before it is cut with an ellipsis.
LABEL_CHARS = 40


def _palette() -> list[str]:
    from plotly.colors import qualitative

    # 50 distinct colours; a cluster's colour is palette[number % 50], so a re-cluster with
    # keep_numbers keeps each cluster's colour.
    return list(qualitative.Dark24) + list(qualitative.Alphabet)


def _esc(value: Any, max_chars: int) -> str:
    """`value` as plain text for plotly's pseudo-HTML: whitespace collapsed, cut, escaped."""
    text = " ".join(str(value).split())
    if len(text) > max_chars:
        text = text[:max_chars - 1] + "…"
    return html.escape(text, quote=False)


def _wrapped(value: Any, max_chars: int) -> str:
    """`value` escaped and wrapped at :data:`WRAP` characters with ``<br>``."""
    text = " ".join(str(value).split())
    if len(text) > max_chars:
        text = text[:max_chars - 1] + "…"
    return "<br>".join(html.escape(line, quote=False) for line in textwrap.wrap(text, WRAP))


def _texts(result: ClusterResult, texts: Any) -> list[str | None] | None:
    """One text (or None) per point of `result`, in point order, from `texts`."""
    from ..store import Store

    n = result.points.height
    if texts is None:
        return None
    if isinstance(texts, Store):
        column = result.params.get("text") or "text"
        frame = texts.scan()
        names = frame.collect_schema().names()
        if column not in names:
            raise InvalidInputError(
                f"texts: expected a store with the text column {column!r} the result was "
                f"clustered with, it has {names}")
        texts = frame.select("key", column).collect()
    if isinstance(texts, pl.DataFrame):
        column = next((c for c in (result.params.get("text"), "text")
                       if c is not None and c in texts.columns), None)
        if "key" not in texts.columns or column is None:
            raise InvalidInputError(
                "texts: expected a frame with columns 'key' and "
                f"{result.params.get('text') or 'text'!r}, got {texts.columns}")
        joined = result.points.select("key").join(
            texts.select(pl.col("key").cast(pl.UInt64), pl.col(column).cast(pl.Utf8)),
            on="key", how="left", maintain_order="left")
        return joined.get_column(column).to_list()
    if isinstance(texts, pl.Series | np.ndarray) or (
            isinstance(texts, Sequence) and not isinstance(texts, str)):
        values = list(texts)
        if len(values) != n:
            raise InvalidInputError(
                f"texts: expected {n} texts (one per point, in point order), got {len(values)}")
        return [None if v is None else str(v) for v in values]
    raise InvalidInputError(
        "texts: expected a Store, a frame with 'key' and a text column, or a sequence of "
        f"strings one per point, got {type(texts).__name__}")


def cluster_figure(
    result: ClusterResult,
    texts: Any = None,
    *,
    max_chars: int = 300,
    max_labels: int | None = 50,
    height: int = 650,
) -> Figure:
    """The 2-D map of `result`, one colour per cluster, topic labels at the cluster centres.

    See :meth:`ClusterResult.plot <workbench.analysis.cluster.ClusterResult.plot>`.
    """
    import plotly.graph_objects as go

    if result.layout is None:
        raise InvalidInputError(
            "result: expected a clustering with a 2-D map; it was made with layout=None "
            "(run cluster(..., layout='umap') or 'pca')")
    for name, value in (("max_chars", max_chars), ("height", height)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidInputError(f"{name}: expected a positive integer, got {value!r}")
    if max_labels is not None and (isinstance(max_labels, bool)
                                   or not isinstance(max_labels, int) or max_labels < 0):
        raise InvalidInputError(f"max_labels: expected an integer >= 0 or None, got "
                                f"{max_labels!r}")
    pts = result.points
    n = pts.height
    text = _texts(result, texts)
    labels = pts.get_column("cluster").to_numpy()
    ids = pts.get_column("id").to_list()
    xy = result.layout
    clusters = result.clusters.sort(["size", "cluster"], descending=[True, False])
    palette = _palette()
    scatter = go.Scattergl if n > GL_POINTS else go.Scatter
    size = float(np.clip(11 - 2 * math.log10(max(n, 1)), 2, 8))
    fig = go.Figure()

    def add(rows: np.ndarray, title: str, colour: str, rank: int, topic: str) -> None:
        hover = [f"<b>{topic}</b><br>{_esc(ids[i], 80)}"
                 + ("" if text is None or text[i] is None else
                    "<br>" + _wrapped(text[i], max_chars)) for i in rows.tolist()]
        fig.add_trace(scatter(
            x=xy[rows, 0], y=xy[rows, 1], mode="markers", name=title, legendrank=rank,
            marker={"color": colour, "size": size, "opacity": 0.75, "line": {"width": 0}},
            hovertext=hover, hoverinfo="text"))

    noise = np.flatnonzero(labels < 0)
    if noise.size:  # first, so that the clusters are drawn over it
        add(noise, f"noise ({noise.size:,})", NOISE_COLOUR, 10_000, "noise")
    annotations = []
    for rank, row in enumerate(clusters.iter_rows(named=True), start=1):
        c, name = int(row["cluster"]), row["name"]
        rows = np.flatnonzero(labels == c)
        add(rows, f"{c}: {_esc(name, LABEL_CHARS)} ({row['size']:,})",
            palette[c % len(palette)], rank, f"{c}: {_esc(name, LABEL_CHARS * 2)}")
        if (max_labels is None or rank <= max_labels) and row["x"] is not None:
            keywords = ", ".join(row["keywords"][:8])
            annotations.append({
                "x": row["x"], "y": row["y"], "text": _esc(name, LABEL_CHARS),
                "showarrow": False, "font": {"size": 11, "color": "#1f2a36"},
                "bgcolor": "rgba(255,255,255,0.7)", "borderpad": 2,
                "hovertext": (f"<b>{c}: {_esc(name, 120)}</b><br>{row['size']:,} points"
                              + (f"<br>{_esc(keywords, 200)}" if keywords else "")),
            })
    shown = len(annotations)
    title = (f"{result.clusters.height} clusters over {n:,} points"
             + (f" (the {shown} largest labelled)" if shown < result.clusters.height else ""))
    fig.update_layout(
        title=title, height=height, template="plotly_white", annotations=annotations,
        hovermode="closest", hoverlabel={"align": "left"},
        xaxis={"visible": False}, yaxis={"visible": False, "scaleanchor": "x"},
        # Markers at legend size, not point size (2 px dots at 100k points are unreadable);
        # sorted by size, scrolling when there are many; a click hides, a double-click isolates.
        legend={"itemsizing": "constant", "title": {"text": "cluster (size)"},
                "tracegroupgap": 0},
        margin={"l": 10, "r": 10, "t": 50, "b": 10})
    return fig
