"""DriftDashboard: drift metrics over time, flagged windows, what changed in a window."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import polars as pl
import traitlets

from ..analysis.drift import DriftResult
from ..errors import InvalidInputError
from ..reports.drift import AUC_NOTE, _changes_html, drift_figure
from ..reports.html import format_time, key_values

if TYPE_CHECKING:
    from ..store import Store

REFERENCES = ("first", "previous", "rolling:3")


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return format_time(v)


class DriftDashboard(widgets.VBox):
    """Browse a :class:`~workbench.analysis.DriftResult`.

    A plotly chart with one panel per metric over the windows (flagged windows as red
    crosses; the same figure the HTML report draws), a window selector (or click a point) and
    a detail panel with the window's tests and what changed in it: the emerging and vanishing
    clusters, the share of rows unlike the reference, keywords of what is new and the example
    texts that best separate it from the reference (all escaped). With a `store`, a reference
    selector and a "Recompute" button run :func:`~workbench.analysis.compute_drift` again
    with the new reference (one library call, on the button only).

    Parameters
    ----------
    result : DriftResult
    store : Store, optional
        The store the result came from, to recompute with another reference.

    Attributes
    ----------
    window : str
        The selected window's start, as shown in the selector: a date such as
        ``"2025-04-01"`` for windows starting at midnight ("" for none).
    reference : str
        The reference rule of the shown result.
    status : str
        One line: what is shown, or what went wrong.
    figure : plotly.graph_objects.FigureWidget
    """

    window = traitlets.Unicode("")
    reference = traitlets.Unicode("")
    status = traitlets.Unicode("")

    def __init__(self, result: DriftResult, store: Store | None = None) -> None:
        if not isinstance(result, DriftResult):
            raise InvalidInputError(f"result: expected a DriftResult, got "
                                    f"{type(result).__name__}")
        import plotly.graph_objects as go

        self.result = result
        self.store = store
        # responsive: plotly.js sizes the chart to the widget's width (and follows resizes)
        # instead of its 700 px default, which left half of a wide notebook empty
        self.figure = go.FigureWidget(drift_figure(result))
        self.figure._config = {**self.figure._config, "responsive": True, "displaylogo": False}
        self.selector = widgets.Dropdown(description="window", options=[],
                                         style={"description_width": "initial"},
                                         layout=widgets.Layout(width="320px"))
        self.selector.add_class("wb-drift-window")
        ref = str(result.params.get("reference", "first"))
        options = list(dict.fromkeys([*REFERENCES, ref])) if isinstance(
            result.params.get("reference"), str) else [*REFERENCES]
        self.ref_selector = widgets.Dropdown(description="reference", options=options,
                                             value=ref if ref in options else options[0],
                                             style={"description_width": "initial"},
                                             layout=widgets.Layout(width="240px"),
                                             disabled=store is None)
        self.ref_selector.add_class("wb-drift-reference")
        self.recompute_button = widgets.Button(description="Recompute", icon="refresh",
                                               disabled=store is None,
                                               tooltip="run compute_drift with this reference")
        self.recompute_button.add_class("wb-drift-recompute")
        self._summary = widgets.HTML()
        self._help = widgets.HTML(f"<p class='note'>Red crosses: flagged windows; grey band: the "
                                  f"reference window. {html.escape(AUC_NOTE)}</p>")
        self._detail = widgets.HTML()
        self._detail.add_class("wb-drift-detail")
        self._status = widgets.HTML()
        self.selector.observe(self._on_select, names="value")
        self.recompute_button.on_click(lambda _: self.recompute())
        self._attach_clicks()
        super().__init__([
            self._summary,
            widgets.HBox([self.selector, self.ref_selector, self.recompute_button]),
            self.figure, self._help, self._detail, self._status,
        ])
        self.layout.width = "100%"
        self.add_class("wb-drift")
        self._show(result)

    # ------------------------------------------------------------------ state
    @traitlets.observe("status")
    def _status_changed(self, change: dict[str, Any]) -> None:
        self._status.value = (f"<span class='wb-drift-status'>{html.escape(change['new'])}"
                              "</span>")

    def _attach_clicks(self) -> None:
        for trace in self.figure.data:
            try:
                trace.on_click(self._on_click)
            except (AttributeError, NotImplementedError):  # a static figure: selector only
                return

    def _on_click(self, trace: Any, points: Any, state: Any) -> None:
        xs = getattr(points, "xs", None) or []
        if xs:
            self.select(str(xs[0]))

    def _show(self, result: DriftResult) -> None:
        self.result = result
        self.reference = str(result.params.get("reference"))
        w = result.windows
        starts = [format_time(s) for s in w.get_column("start").to_list()]
        flagged = w.get_column("flagged").fill_null(False).to_list()
        labels = [(f"{s}  (flagged)" if f else s, s) for s, f in zip(starts, flagged,
                                                                     strict=True)]
        s = result.summary
        self._summary.value = (
            f"<b>{s.get('windows')}</b> windows, {s.get('tested')} tested, "
            f"<b>{s.get('flagged')}</b> flagged; reference "
            f"{html.escape(str(s.get('reference')))}, alpha "
            f"{html.escape(str(result.params.get('alpha')))}")
        first = next((st for st, f in zip(starts, flagged, strict=True) if f),
                     starts[0] if starts else "")
        self.selector.options = labels
        if first:
            self.selector.value = first
            self.select(first)
        self.status = f"{len(starts)} windows"

    def _on_select(self, change: dict[str, Any]) -> None:
        if change["new"]:
            self.select(str(change["new"]))

    def select(self, window: str) -> None:
        """Show window `window` (its start, as in the selector) in the detail panel.

        The start may also be given as ``str(start)`` (``"2025-04-01 00:00:00"``) or as
        plotly reports a clicked date.
        """
        w = self.result.windows
        raw = w.get_column("start").to_list()
        starts = [format_time(s) for s in raw]
        if window not in starts:  # str(datetime), or a click's "2025-04-01" / "...T00:00"
            alt = {str(s): f for s, f in zip(raw, starts, strict=True)}
            window = alt.get(window, alt.get(window.replace("T", " "), window))
        if window not in starts:
            raise InvalidInputError(f"window: expected one of the window starts "
                                    f"{starts[:3]}..., got {window!r}")
        i = starts.index(window)
        row = w.row(i, named=True)
        if self.selector.value != window:
            self.selector.value = window
        self.window = window
        items = {k: _fmt(row.get(k)) for k in (
            "n", "n_reference", "status", "centroid_shift", "mmd2", "mmd_p", "auc",
            "classifier_p", "components_drifted", "p_value", "p_adjusted", "flagged")
            if k in row}
        start = w.get_column("start")[i]
        changes = _changes_html(self.result, start)
        self._detail.value = (
            f"<div class='wb-drift-window-title'><b>window {html.escape(window)}</b></div>"
            + key_values(items)
            + (changes or "<p class='note'>no what-changed details for this window (shown "
               "for tested windows with a reference)</p>"))

    def recompute(self) -> None:
        """Run compute_drift again on the store with the selected reference."""
        if self.store is None:
            self.status = "no store given: cannot recompute"
            return
        from ..analysis.drift import compute_drift

        params = dict(self.result.params)
        keep = {k: params[k] for k in ("time", "every", "methods", "alpha", "min_rows",
                                       "n_permutations", "random_state", "text")
                if k in params and params[k] is not None}
        if "methods" in keep:
            keep["methods"] = tuple(keep["methods"])
        self.status = f"recomputing with reference {self.ref_selector.value}..."
        res = compute_drift(self.store, reference=self.ref_selector.value, progress=False,
                            **keep)
        fresh = drift_figure(res)
        with self.figure.batch_update():
            self.figure.data = ()
            self.figure.add_traces(fresh.data)
            self.figure.layout = fresh.layout
        self._attach_clicks()
        self._show(res)
        self.status = f"recomputed with reference {self.reference}"

    @property
    def windows(self) -> pl.DataFrame:
        """The shown result's per-window table."""
        return self.result.windows
