"""CompressionLab: compare compressed embedders with their teacher, behind a button."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from copy import deepcopy
from typing import Any

import ipywidgets as widgets
import polars as pl
import traitlets

from ..compress.compare import pareto_front
from ..errors import InvalidInputError, WorkbenchError
from ._common import ExportBar, FrameTrait, error_html, esc, short_repr

#: Columns offered on the plot's axes: cost (x) and quality (y), with how "better" reads.
COST_COLUMNS = {"bytes_on_disk": "min", "texts_per_s": "max", "params": "min", "dim": "min"}
QUALITY_COLUMNS = ("knn_recall", "sts_spearman", "mean_cos_to_teacher", "cluster_ari",
                   "dup_agreement", "drift_agreement")

#: The table is drawn one row per *measure* and one column per model: a comparison has 17
#: measures and a handful of models, and 17 columns side by side ran 9 off a notebook's width.
_CSS = """<style>
.wb-lab-table-box{overflow-x:auto;max-width:100%}
.wb-lab-table{border-collapse:collapse}
.wb-lab-table td,.wb-lab-table th{padding:2px 10px;border-bottom:1px solid #e3e7ed;
  font-size:12px;text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.wb-lab-table th{max-width:14em;overflow:hidden;text-overflow:ellipsis;vertical-align:bottom}
.wb-lab-table th.wb-pareto{font-weight:700;color:#b3261e}
.wb-lab-table th:not(.wb-pareto){font-weight:500}
.wb-lab-table td.wb-measure{text-align:left;color:#3d4653;font-weight:600}
.wb-lab-table tr.wb-note td{white-space:normal;text-align:left;color:#5b6675;
  max-width:16em;vertical-align:top}
.wb-lab-busy{color:#5b6675}
</style>"""

#: The plot's margins (px): room for the axis titles and for point labels, which are drawn
#: outside the plot area rather than clipped at it.
PLOT_MARGIN = {"l": 70, "r": 90, "t": 40, "b": 60}


def _cell(v: Any) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "–"
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return esc(v, 200)


def _label_positions(xs: list[float]) -> list[str]:
    """Where each point's label goes: away from the plot's left and right edges.

    A centred label of the rightmost (or leftmost) point ran past the figure and was cut.
    """
    finite = [v for v in xs if v == v]
    if len(finite) < 2:
        return ["top center"] * len(xs)
    lo, hi = min(finite), max(finite)
    return ["top left" if v == hi else "top right" if v == lo else "top center" for v in xs]


class CompressionLab(widgets.VBox):
    """Pick compressed variants of a teacher embedder and measure what they cost and keep.

    A checkbox per variant, a "Compare" button that runs one
    :func:`~workbench.compress.compare_models` call (its progress bars shown below the
    button), the comparison table (one row per model, the teacher first; the rows on the
    Pareto front in bold) and a cost-vs-quality plot (plotly) with the Pareto front drawn as a
    line; the axes' dropdowns choose the cost (bytes on disk, texts/s, ...) and the quality
    (neighbours kept, STS-B Spearman, cluster agreement, ...). Nothing runs until the button.

    Parameters
    ----------
    teacher : Embedder
        The reference model.
    variants : mapping of str to Embedder
        The compressed models, by name (build them with :func:`~workbench.compress.quantize_model`
        or :func:`~workbench.compress.distill`).
    corpus : sequence of str
        Texts the comparison embeds (keep it small in a notebook: every model embeds it).
    sts : polars.DataFrame, optional
        Sentence pairs with ``a``, ``b``, ``score`` for the STS Spearman column.
    **compare_kwargs
        Passed to :func:`~workbench.compress.compare_models` (``k``, ``drift``, ...).

    Attributes
    ----------
    result : polars.DataFrame or None
        The last comparison.
    rows : polars.DataFrame
        The same frame for code and the "Export" buttons (empty before a run).
    status : str
        One line: what ran, or what went wrong.
    figure : plotly.graph_objects.FigureWidget
    """

    status = traitlets.Unicode("")
    result = FrameTrait(None)
    x = traitlets.Unicode("bytes_on_disk")
    y = traitlets.Unicode("knn_recall")

    def __init__(self, teacher: Any, variants: Mapping[str, Any], corpus: Sequence[str], *,
                 sts: pl.DataFrame | None = None, **compare_kwargs: Any) -> None:
        import plotly.graph_objects as go

        if not isinstance(variants, Mapping) or not variants:
            raise InvalidInputError("variants: expected a non-empty mapping name -> Embedder")
        self.teacher = teacher
        self.variants = dict(variants)
        self.corpus = list(corpus)
        self.sts = sts
        self.compare_kwargs = compare_kwargs
        self._boxes = {name: widgets.Checkbox(value=True, description=str(name), indent=False,
                                              layout=widgets.Layout(width="auto"))
                       for name in self.variants}
        picks = widgets.HBox(list(self._boxes.values()),
                             layout=widgets.Layout(flex_flow="row wrap"))
        picks.add_class("wb-lab-variants")
        self._button = widgets.Button(description="Compare", button_style="primary",
                                      icon="play")
        self._button.add_class("wb-lab-run")
        self._button.on_click(lambda _: self.run())
        self._x = widgets.Dropdown(options=list(COST_COLUMNS), value=self.x,
                                   description="cost")
        self._y = widgets.Dropdown(options=list(QUALITY_COLUMNS), value=self.y,
                                   description="quality")
        traitlets.link((self._x, "value"), (self, "x"))
        traitlets.link((self._y, "value"), (self, "y"))
        self.observe(lambda _: self._draw(), names=["x", "y"])
        self._progress = widgets.Output()
        self._status = widgets.HTML()
        self._status.add_class("wb-lab-status")
        self._table = widgets.HTML()
        self._table.add_class("wb-lab-table-box")
        self.figure = go.FigureWidget(layout={"height": 380, "margin": PLOT_MARGIN,
                                              "template": "plotly_white", "showlegend": True,
                                              "xaxis": {"title": {"text": self.x}},
                                              "yaxis": {"title": {"text": self.y}}})
        # The two traces exist from the start and every redraw updates them in place: deleting
        # and re-adding traces left the front end's saved state replaying trace indices that
        # no longer existed ("indices must be valid indices for gd.data": a blank chart on
        # reload) and dropped the axis titles sent in the same batch.
        self.figure.add_scatter(x=[], y=[], mode="markers+text", text=[], name="models",
                                textposition="top center", cliponaxis=False,
                                marker={"size": 10, "color": "#1f77b4"})
        self.figure.add_scatter(x=[], y=[], mode="lines", name="Pareto front",
                                line={"dash": "dot", "color": "#d62728"})
        self._sync_figure_state()
        self.export = ExportBar(lambda: self.rows, name="compression_comparison")
        super().__init__([widgets.HTML(_CSS), picks,
                          widgets.HBox([self._button, self._x, self._y]),
                          self._progress, self._status, self._table, self.export,
                          self.figure])
        self.add_class("wb-compression-lab")

    def __repr__(self) -> str:
        shown = ("not run yet" if self.result is None
                 else f"{self.result.height} models compared")
        return short_repr(self, f"{len(self.variants)} variants", f"{len(self.corpus):,} texts",
                          shown)

    @property
    def rows(self) -> pl.DataFrame:
        """The comparison shown (one row per model; empty before a run)."""
        return self.result if self.result is not None else pl.DataFrame()

    def selected(self) -> list[str]:
        """Names of the ticked variants."""
        return [name for name, box in self._boxes.items() if box.value]

    def run(self) -> pl.DataFrame | None:
        """Compare the teacher with the ticked variants: one ``compare_models`` call."""
        from ..compress import compare_models

        chosen = {name: self.variants[name] for name in self.selected()}
        if not chosen:
            self.status = "Tick at least one variant."
            self._status.value = esc(self.status)
            return None
        self._button.disabled = True
        self._button.icon = "spinner"
        self.export.clear()
        self.status = (f"Comparing the teacher and {len(chosen)} variant(s) on "
                       f"{len(self.corpus):,} texts…")
        self._status.value = f"<span class='wb-lab-busy'>⏳ {esc(self.status)}</span>"
        # No tqdm bar: outside a kernel that renders it as a widget it arrives as raw text
        # with carriage returns; the status line above says what runs.
        kwargs = {"progress": False, **self.compare_kwargs}
        self._progress.clear_output()
        try:
            with self._progress:
                frame = compare_models(self.teacher, chosen, corpus=self.corpus, sts=self.sts,
                                       **kwargs)
        except WorkbenchError as exc:
            self.status = f"Error: {exc}"
            self._status.value = error_html(self.status)
            return None
        finally:
            self._button.disabled = False
            self._button.icon = "play"
        self.result = frame
        self.status = (f"{frame.height - 1} variant(s) against the teacher on "
                       f"{len(self.corpus):,} texts")
        self._status.value = esc(self.status)
        if frame.get_column(self.x).null_count() == frame.height:
            # nothing to plot on this cost (no model files): the first cost that has values
            usable = [c for c in COST_COLUMNS
                      if c in frame.columns and frame.get_column(c).null_count() < frame.height]
            if usable:
                self.x = usable[0]  # redraws
                return frame
        self._draw()
        return frame

    def _draw(self) -> None:
        frame = self.result
        if frame is None:
            return
        x, y = self.x, self.y
        if x not in frame.columns or y not in frame.columns:
            return
        front = pareto_front(frame, x, y, x_better=COST_COLUMNS.get(x, "min"))
        self._table.value = _table_html(frame, front)
        names = [str(n) for n in frame.get_column("name").to_list()]
        xs = frame.get_column(x).cast(pl.Float64).to_list()
        ys = frame.get_column(y).cast(pl.Float64).to_list()
        order = sorted((i for i in range(frame.height) if front[i]), key=lambda i: xs[i])
        models, line = self.figure.data
        with self.figure.batch_update():
            models.update(x=xs, y=ys, text=names, textposition=_label_positions(xs),
                          hovertemplate="%{text}<br>" + x + " %{x}<br>" + y
                          + " %{y}<extra></extra>")
            line.update(x=[xs[i] for i in order], y=[ys[i] for i in order])
            self.figure.update_layout(xaxis_title=x, yaxis_title=y,
                                      xaxis_type="log" if x == "bytes_on_disk" else "linear")
        self._sync_figure_state()

    def _sync_figure_state(self) -> None:
        """Copy the figure into the widget state a new view is built from.

        plotly's FigureWidget sends edits as messages and keeps the state a view starts from
        (``_widget_data``, ``_widget_layout``) as it was when first shown: a page reload or a
        reopened notebook would draw that (empty) figure. plotly itself refreshes them only
        when the figure is displayed; here after every draw.
        """
        fig = self.figure
        fig._widget_data = deepcopy(fig._data)
        fig._widget_layout = deepcopy(fig._layout_obj._props)


def _table_html(frame: pl.DataFrame, front: Any) -> str:
    """The comparison as HTML: one row per measure, one column per model (escaped).

    The models on the Pareto front have their header in bold (class ``wb-pareto``); the
    ``note`` column is the last row, its text wrapping.
    """
    names = frame.get_column("name").to_list()
    head = "".join(
        f"<th class='{'wb-pareto' if on else ''}' title='{esc(n, 200)}'>{esc(n, 60)}</th>"
        for n, on in zip(names, front, strict=True))
    rows = []
    for c in frame.columns:
        if c == "name":
            continue
        values = frame.get_column(c).to_list()
        cls = " class='wb-note'" if c == "note" else ""
        rows.append(f"<tr{cls}><td class='wb-measure'>{esc(c)}</td>"
                    + "".join(f"<td>{_cell(v)}</td>" for v in values) + "</tr>")
    return (f"<table class='wb-lab-table'><thead><tr><th>measure</th>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")
