"""SearchPanel: query box, k, filters generated from the metadata, results, more-like-this."""

from __future__ import annotations

import time
from functools import reduce
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import polars as pl
import traitlets

from ..errors import InvalidInputError, WorkbenchError
from ._common import (
    ExportBar,
    FilterControl,
    FrameTrait,
    build_filters,
    error_html,
    esc,
    short_repr,
)

if TYPE_CHECKING:
    from ..store import Store

_CSS = """<style>
.wb-result-row{border-bottom:1px solid #e3e7ed;padding:2px 0;align-items:flex-start}
.wb-cell{font-size:12px;line-height:1.35}
.wb-dist{font-variant-numeric:tabular-nums;color:#5b6675;width:5.5em;display:inline-block}
.wb-id{font-weight:600;margin-right:.5em}
.wb-meta{color:#5b6675;margin-left:.5em}
.wb-results-head{font-size:11px;color:#5b6675;border-bottom:1px solid #c9d0da;padding:2px 0}
.wb-results-head .wb-dist{color:#5b6675}
.wb-filter-label{font-size:12px;font-weight:600;margin-top:4px}
.wb-filter-label .wb-hint{font-weight:400;color:#5b6675}
.wb-busy{color:#5b6675}
</style>"""

#: What each metric's distance means, for the results' column header.
DISTANCE_HINTS = {"cos": "cosine distance, 0 = same direction",
                  "ip": "negative inner product, lower = closer",
                  "l2sq": "squared L2 distance, 0 = same vector"}

#: Each filter kind's hint under its label (a multi-select's ctrl-click is not obvious).
FILTER_HINTS = {"categorical": "any of; Ctrl/⌘-click to pick several, none = all",
                "range": "from – to", "boolean": "any, true or false"}

#: Width of a row's "More like this" button. It is also its minimum width and the button
#: neither grows nor shrinks: in a flex row next to a long paragraph, a shrinkable button
#: is squeezed down to "M…".
MORE_WIDTH = "9em"


class SearchPanel(widgets.VBox):
    """Search a store from a notebook.

    A text box (Enter or the button runs the search), k, one filter per metadata column
    (dropdowns for categorical, range sliders for numeric and date columns), the results with
    their distance and metadata (all text escaped), a "more like this" button per row (one
    :meth:`Store.recommend` call) and the query time with the filters that applied. The
    filters' title counts the filters with a value set (``Filters (2)``).

    The view state is in traits (``query``, ``k``, ``status``) and the last result frame in
    ``results``; set traits and call :meth:`search` to drive it from code or tests.

    Parameters
    ----------
    store : Store
        The store to search (text queries need its embedder).
    k : int
        Initial number of results.
    text : str
        Metadata column shown as the result text (if present).
    max_categories : int
        Text columns with at most this many distinct values become dropdown filters.
    neighbours : int
        Also fetch this many further hits after the k shown (in the same store call) into
        :attr:`neighbourhood`: the query's wider neighbourhood, which a linked map draws
        half-highlighted (:class:`~workbench.widgets.LinkedViews`).

    Attributes
    ----------
    results : polars.DataFrame or None
        The rows shown.
    neighbourhood : polars.DataFrame or None
        The `neighbours` hits ranked after them.
    rows : polars.DataFrame
        The rows shown, for code and for the "Export" buttons (empty before a search).
    """

    query = traitlets.Unicode("")
    k = traitlets.Int(10)
    status = traitlets.Unicode("")
    results = FrameTrait(None)
    elapsed = traitlets.Float(0.0)
    neighbourhood = FrameTrait(None)
    #: Ids the search is restricted to (a linked map's lasso), or None for no restriction.
    restricted_to = traitlets.Any(None)

    def __init__(self, store: Store, *, k: int = 10, text: str = "text",
                 max_categories: int = 50, neighbours: int = 0) -> None:
        if not isinstance(neighbours, int) or neighbours < 0:
            raise InvalidInputError(f"neighbours: expected an int >= 0, got {neighbours!r}")
        self.store = store
        self.text_column = text
        self.neighbours = neighbours
        self._restriction_label = ""
        # The text column is searched, not filtered: leave it out of the (possibly large) read.
        frame = store.scan().select(pl.exclude(text)).collect()
        self.filters: list[FilterControl] = build_filters(frame, max_categories=max_categories)
        self._text = widgets.Text(placeholder="Search…", continuous_update=False,
                                  layout=widgets.Layout(width="60%"))
        self._text.add_class("wb-query")
        self._k = widgets.BoundedIntText(value=k, min=1, max=max(1, min(200, len(store))),
                                         description="k", style={"description_width": "1.5em"},
                                         layout=widgets.Layout(width="9em"))
        self._button = widgets.Button(description="Search", button_style="primary",
                                      icon="search")
        self._button.add_class("wb-search-button")
        self._status = widgets.HTML()
        self._status.add_class("wb-status")
        self._rows = widgets.VBox()
        self._rows.add_class("wb-results")
        metric = str(getattr(store, "metric", ""))
        hint = DISTANCE_HINTS.get(metric, metric)
        self._head = widgets.HTML(
            f"<div class='wb-results-head'><span class='wb-dist'>distance</span>"
            f"<span class='wb-id'>id</span>text <span class='wb-meta'>metadata</span>"
            f"{' · distance: ' + esc(hint) if hint else ''}</div>")
        self._head.layout.display = "none"  # until there are results
        self.export = ExportBar(lambda: self.rows, name="search_results")
        traitlets.link((self._text, "value"), (self, "query"))
        traitlets.link((self._k, "value"), (self, "k"))
        self._button.on_click(lambda _: self.search())
        self._text.observe(self._on_submit, names="value")
        filter_box = widgets.VBox([self._labelled(f) for f in self.filters])
        self._accordion = widgets.Accordion(children=[filter_box])
        self._accordion.add_class("wb-filters")
        for f in self.filters:
            f.widget.observe(lambda _: self._on_filter(), names="value")
        self._on_filter()
        super().__init__([
            widgets.HTML(_CSS),
            widgets.HBox([self._text, self._k, self._button]),
            self._accordion,
            self._status,
            self._head,
            self._rows,
            self.export,
        ])
        self.add_class("wb-search-panel")

    def __repr__(self) -> str:
        shown = "no search yet" if self.results is None else f"{self.results.height} results"
        return short_repr(self, f"store={str(getattr(self.store, 'path', self.store))!r}",
                          f"{len(self.store):,} rows", shown)

    @property
    def rows(self) -> pl.DataFrame:
        """The result rows shown (an empty frame before the first search)."""
        return self.results if self.results is not None else pl.DataFrame()

    @staticmethod
    def _labelled(f: FilterControl) -> widgets.Widget:
        # the column name above the control, with how to use it
        label = widgets.HTML(f"<div class='wb-filter-label'>{esc(f.column)} <span "
                             f"class='wb-hint'>{esc(FILTER_HINTS.get(f.kind, ''))}</span></div>")
        box = widgets.VBox([label, f.widget])
        box.add_class("wb-filter")
        return box

    # ------------------------------------------------------------------ actions
    def filter(self, column: str) -> widgets.Widget:
        """The filter widget of `column` (to set from code: ``panel.filter("lang").value``)."""
        for f in self.filters:
            if f.column == column:
                return f.widget
        raise KeyError(f"column: no filter for {column!r}; filters: "
                       f"{[f.column for f in self.filters]}")

    def active_filters(self) -> list[str]:
        """The filters with a value set, as plain text (``["lang: en", "score: 0.4–0.9"]``).

        A restriction (:meth:`restrict`) is listed last, e.g. ``"map selection: 120 rows"``.
        """
        out = [d for f in self.filters if (d := f.describe()) is not None]
        if self.restricted_to is not None:
            out.append(f"{self._restriction_label}: {len(self.restricted_to)} rows")
        return out

    def where(self) -> pl.Expr | None:
        """The combined filter expression of the active controls and the restriction."""
        exprs = [e for f in self.filters if (e := f.expr()) is not None]
        if self.restricted_to is not None:
            ids = pl.Series(self.restricted_to, dtype=pl.Utf8)
            exprs.append(pl.col("id").is_in(ids.implode()))
        return reduce(lambda a, b: a & b, exprs) if exprs else None

    def restrict(self, ids: Any | None, *, label: str = "map selection") -> None:
        """Search only among `ids` (``None``: lift the restriction); not a search by itself.

        A linked map's lasso sets it (:class:`~workbench.widgets.LinkedViews`). It counts as
        a filter: the title and the status line name it with `label`. An empty selection
        lifts the restriction (a click beside the points clears a lasso).
        """
        ids = None if ids is None else [str(i) for i in ids]
        self._restriction_label = label
        self.restricted_to = ids or None
        self._on_filter()

    def search(self) -> pl.DataFrame | None:
        """Run the query in the box: one :meth:`Store.search` call."""
        if not self.query.strip():
            self.status = "Type a query, then press Enter or Search."
            self._status.value = esc(self.status)
            return None
        return self._run(lambda: self.store.search(self.query, k=self.k + self.neighbours,
                                                   where=self.where()),
                         label=f"“{self.query}”")

    def more_like(self, id: str) -> pl.DataFrame | None:  # noqa: A002 - the store's id
        """Show rows like `id`: one :meth:`Store.recommend` call (honours the filters)."""
        return self._run(lambda: self.store.recommend([id], k=self.k + self.neighbours,
                                                      where=self.where()),
                         label=f"more like {id}")

    def _on_filter(self) -> None:
        n = len(self.active_filters())
        self._accordion.set_title(0, f"Filters ({n})" if n else "Filters")

    def _on_submit(self, change: dict[str, Any]) -> None:
        # an emptied box says what to do rather than nothing
        self.search()

    def _busy(self, label: str) -> None:
        """Say a search runs (sent before the call blocks: the first query loads the model)."""
        self.status = f"Searching {label}…"
        if self.results is None:
            self.status += " (the first search loads the embedding model: a few seconds)"
        self._status.value = f"<span class='wb-busy'>⏳ {esc(self.status, 2000)}</span>"
        self._button.disabled = True
        self._button.icon = "spinner"

    def _run(self, call: Any, *, label: str) -> pl.DataFrame | None:
        self._busy(label)
        self.export.clear()
        t0 = time.perf_counter()
        try:
            res = call()
        except WorkbenchError as exc:
            self.status = f"Error: {exc}"
            self._status.value = error_html(self.status)
            return None
        finally:
            self._button.disabled = False
            self._button.icon = "search"
        self.elapsed = time.perf_counter() - t0
        # one call fetched the k shown and the neighbourhood after them
        self.neighbourhood = res.slice(self.k) if self.neighbours else res.head(0)
        res = res.head(self.k)
        self.results = res
        self.status = f"{res.height} results for {label} in {self.elapsed * 1000:.1f} ms"
        active = self.active_filters()
        if active:
            self.status += "; filters: " + "; ".join(active)
        self._status.value = esc(self.status, 2000)
        self._rows.children = [self._row(r) for r in res.iter_rows(named=True)]
        self._head.layout.display = None if res.height else "none"
        return res

    def _row(self, row: dict[str, Any]) -> widgets.Widget:
        meta = [f"{esc(c)}={esc(v, 60)}" for c, v in row.items()
                if c not in ("query", "id", "distance", "key", self.text_column)]
        body = (
            f"<div class='wb-cell'><span class='wb-dist' title='distance'>"
            f"{row['distance']:.4f}</span>"
            f"<span class='wb-id'>{esc(row['id'], 80)}</span>"
            f"{esc(row.get(self.text_column, ''), 400)}"
            f"<span class='wb-meta'>{' · '.join(meta)}</span></div>"
        )
        more = widgets.Button(description="More like this",
                              layout=widgets.Layout(width=MORE_WIDTH, min_width=MORE_WIDTH,
                                                    flex="0 0 auto"))
        rid = str(row["id"])
        more.on_click(lambda _: self.more_like(rid))
        # The text takes the rest of the row and wraps (min_width 0 lets it shrink below its
        # longest line instead of pushing the button).
        text = widgets.HTML(body, layout=widgets.Layout(flex="1 1 0%", min_width="0"))
        box = widgets.HBox([more, text])
        box.add_class("wb-result-row")
        return box
