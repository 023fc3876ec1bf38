"""LinkedViews: a SearchPanel and a ClusterExplorer wired both ways.

A search (or "More like this") highlights its results and the query's wider neighbourhood
on the map; a lasso on the map restricts the search to the selected points and re-runs it.
Embedding Atlas and jupyter-scatter draw a map; neither links a vector search to it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import polars as pl
import traitlets

from ..errors import InvalidInputError
from ._common import short_repr
from .cluster import ClusterExplorer
from .search import SearchPanel

if TYPE_CHECKING:
    from ..analysis.cluster import ClusterResult
    from ..store import Store


_CUE_CSS = ("<style>.wb-linked-cue{background:#fff4d6;border:1px solid #e0b341;"
            "border-radius:4px;padding:4px 10px;font-size:13px}</style>")


def _ids(frame: pl.DataFrame | None) -> list[str]:
    if frame is None or frame.is_empty():
        return []
    return [str(v) for v in frame.get_column("id").to_list()]


class LinkedViews(widgets.VBox):
    """A search panel above a cluster map, linked both ways.

    - **search → map**: each search or "More like this" draws its results large, the
      `neighbours` hits ranked after them half-way and every other point small
      (:meth:`ClusterExplorer.highlight`); colours stay those of the clusters, so the
      results' topics can be read off the map. An empty result clears the highlight.
    - **map → search**: a lasso (or a click) on the map restricts the search to the selected
      points (:meth:`SearchPanel.restrict`, shown as the filter "map selection: N rows") and
      re-runs the query when there is one: one :meth:`Store.search` call. Clearing the
      selection (a click beside the points) lifts the restriction.

    Parameters
    ----------
    panel : SearchPanel
        The search panel (its store holds the clustered rows: ids are matched).
    explorer : ClusterExplorer
        The map.

    Examples
    --------
    >>> views = LinkedViews.from_store(store, result, text="text")  # doctest: +SKIP
    >>> views.panel.query = "parse xml"; views.panel.search()  # doctest: +SKIP
    >>> views.explorer.highlighted[:3]  # doctest: +SKIP
    """

    #: Whether a map selection restricts the search (the checkbox).
    follow_selection = traitlets.Bool(True)

    def __init__(self, panel: SearchPanel, explorer: ClusterExplorer) -> None:
        if not isinstance(panel, SearchPanel) or not isinstance(explorer, ClusterExplorer):
            raise InvalidInputError(
                "panel, explorer: expected a SearchPanel and a ClusterExplorer, got "
                f"{type(panel).__name__} and {type(explorer).__name__}")
        self.panel = panel
        self.explorer = explorer
        panel.observe(self._on_results, names="results")
        explorer.scatter.widget.observe(self._on_selection, names="selection")
        self._follow = widgets.Checkbox(
            value=True, indent=False, description="search only the points selected on the map",
            tooltip="a lasso on the map restricts the search to the points it encloses",
            layout=widgets.Layout(width="auto"))
        self._follow.add_class("wb-linked-follow")
        traitlets.link((self._follow, "value"), (self, "follow_selection"))
        self.observe(self._on_follow, names="follow_selection")
        # A search inside a lasso reads like a search of everything unless it says so: a
        # banner above the results while the restriction holds, with the way out.
        self._cue_text = widgets.HTML()
        self._cue_clear = widgets.Button(description="Clear selection", icon="times",
                                         button_style="warning",
                                         layout=widgets.Layout(width="auto"))
        self._cue_clear.add_class("wb-linked-clear")
        self._cue_clear.on_click(lambda _: self.clear_selection())
        self._cue = widgets.HBox([self._cue_text, self._cue_clear],
                                 layout=widgets.Layout(align_items="center", display="none"))
        self._cue.add_class("wb-linked-cue-box")
        super().__init__([self._cue, panel, self._follow, explorer])
        self.add_class("wb-linked-views")

    def __repr__(self) -> str:
        restricted = self.panel.restricted_to
        return short_repr(self, repr(self.panel), repr(self.explorer),
                          f"search restricted to {len(restricted)} points" if restricted else "")

    @property
    def rows(self) -> pl.DataFrame:
        """The search results shown (:attr:`SearchPanel.rows`; the map's: ``explorer.rows``)."""
        return self.panel.rows

    def clear_selection(self) -> None:
        """Clear the map's selection: the search is no longer restricted (and re-runs)."""
        self.explorer.select([])
        if self.panel.restricted_to is not None:  # not following the selection
            self.panel.restrict(None)
            self._rerun()
        self._render_cue()

    def _render_cue(self) -> None:
        ids = self.panel.restricted_to
        self._cue.layout.display = None if ids is not None else "none"
        if ids is not None:
            self._cue_text.value = (
                f"{_CUE_CSS}<div class='wb-linked-cue'>Searching only the <b>{len(ids):,}</b> "
                "points selected on the map</div>")

    @classmethod
    def from_store(cls, store: Store, result: ClusterResult, *, k: int = 10,
                   neighbours: int = 30, text: str = "text", height: int = 480,
                   **explorer_kwargs: Any) -> LinkedViews:
        """Build both views over `store` and the clustering `result` of its rows.

        Parameters
        ----------
        store : Store
            The store searched and whose metadata the map shows.
        result : ClusterResult
            A clustering of (some of) the store's rows with a 2-D layout.
        k : int
            Results shown.
        neighbours : int
            Further hits drawn half-highlighted on the map.
        text : str
            The text column (result text and map tooltip).
        height : int
            Map height in pixels.
        **explorer_kwargs
            Passed to :class:`ClusterExplorer`.
        """
        panel = SearchPanel(store, k=k, text=text, neighbours=neighbours)
        explorer = ClusterExplorer(result, store=store, text=text, height=height,
                                   **explorer_kwargs)
        return cls(panel, explorer)

    # ------------------------------------------------------------------ links
    def _on_results(self, change: dict[str, Any]) -> None:
        self.explorer.highlight(_ids(change["new"]), _ids(self.panel.neighbourhood))

    def _on_selection(self, _: dict[str, Any]) -> None:
        if self.follow_selection:
            self._restrict()

    def _on_follow(self, change: dict[str, Any]) -> None:
        if change["new"]:
            self._restrict()
        elif self.panel.restricted_to is not None:
            self.panel.restrict(None)
            self._rerun()
        self._render_cue()

    def _restrict(self) -> None:
        ids = self.explorer.selected_ids
        before = self.panel.restricted_to
        self.panel.restrict(ids)
        self._render_cue()
        if self.panel.restricted_to != before:
            self._rerun()

    def _rerun(self) -> None:
        if self.panel.query.strip():
            self.panel.search()
