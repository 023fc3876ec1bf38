"""ClusterExplorer: a WebGL cluster map (jupyter-scatter) with re-clustering from the cache."""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import numpy as np
import polars as pl
import traitlets
from matplotlib.colors import to_hex

from ..analysis.cluster import SELECTION_METHODS, ClusterResult, recluster
from ..errors import InvalidInputError, WorkbenchError
from ._common import (
    NOISE_COLOR,
    ExportBar,
    as_categories,
    can_color,
    categorical_palette,
    category_colors,
    category_order,
    error_html,
    esc,
    short_repr,
)
from ._hierarchy import topic_tree_html

if TYPE_CHECKING:
    import pandas as pd

    from ..store import Store


_TABLE_CSS = (".wb-table td,.wb-table th{padding:2px 10px;text-align:left;"
              "border-bottom:1px solid #e3e7ed;font-size:12px}")

#: Legend and tooltip label of noise points.
NOISE_LABEL = "noise"

#: Share of the layout's extent added on each side of the map's scales: without it the
#: outermost points sit on the canvas border (the scale maps the data extent to it exactly)
#: and are drawn cut in half.
MAP_PADDING = 0.06

_LEGEND_CSS = (
    ".wb-legend{font-size:12px;line-height:1.45;max-height:420px;overflow-y:auto;"
    "margin:4px 0 6px 8px}.wb-legend-title{font-weight:600}"
    ".wb-cluster-legend .widget-html-content{width:100%;min-width:0}"
    ".wb-legend-cols{column-count:2;column-gap:12px}"
    ".wb-legend-cols>div{break-inside:avoid;white-space:nowrap;overflow:hidden;"
    "text-overflow:ellipsis}"
    ".wb-legend .wb-swatch{display:inline-block;width:10px;height:10px;margin-right:6px;"
    "border-radius:50%;vertical-align:-1px}"
    ".wb-legend-bar{height:10px;width:180px;border-radius:2px;margin-top:3px}"
    ".wb-legend-ends{display:flex;justify-content:space-between;width:180px;color:#5b6675}"
    ".wb-legend-search{color:#5b6675;margin-top:3px}")

#: A highlight's levels (see :meth:`ClusterExplorer.highlight`), with their point sizes: the
#: other points shrink, the neighbourhood stays visible, the results stand out.
HIGHLIGHT_LEVELS = ("other", "neighbour", "result")
HIGHLIGHT_SIZES = (1, 5, 12)

#: Legend entries listed in one column; more go in two (a long list was cut off at 12).
LEGEND_ONE_COLUMN = 12

#: Point opacity of the map: jupyter-scatter's default fades points with the density, which
#: drew a few-thousand-point text map in pale 1-2 px dots.
POINT_OPACITY = 0.85


def point_size(n: int) -> int:
    """The map's point size (px) for `n` points: large for a few thousand, small for 100k."""
    return 7 if n <= 2_000 else 5 if n <= 20_000 else 3 if n <= 200_000 else 2


_SELECTED_CSS = ("<style>.wb-cluster-selected{font-size:12px}"
                 ".wb-cluster-selected b{color:#1a56db}</style>")


def cluster_label(cluster: int, name: str | None) -> str:
    """The legend and tooltip label of a cluster: its number once, then its name.

    Names carry no number (automatic names are keywords, ``"widget, requests, file"``;
    a name given with :func:`~workbench.analysis.rename_clusters` is the user's): the label
    puts it in front (``"9: widget, requests, file"``), so two clusters never share a label.
    Clusters without keywords are named ``"cluster 9"`` and kept as they are.

    Parameters
    ----------
    cluster : int
        The cluster number (negative for noise).
    name : str or None
        The cluster's ``name`` in :attr:`ClusterResult.clusters`.

    Returns
    -------
    str
        The label, plain text (jupyter-scatter shows it as text, not HTML).

    Examples
    --------
    >>> cluster_label(9, "widget, requests, file")
    '9: widget, requests, file'
    >>> cluster_label(9, "Sports")
    '9: Sports'
    >>> cluster_label(-1, None)
    'noise'
    """
    if cluster < 0:
        return NOISE_LABEL
    if not name:
        return f"cluster {cluster}"
    if name.startswith(f"{cluster}:") or name == f"cluster {cluster}":
        return name
    return f"{cluster}: {name}"


def cluster_color(cluster: int) -> str:
    """The colour of a cluster number: fixed, so a cluster keeps it across re-clustering.

    Noise (negative numbers) is :data:`~workbench.widgets._common.NOISE_COLOR`, clusters take
    ``palette[cluster % len(palette)]`` of
    :func:`~workbench.widgets._common.categorical_palette`.
    """
    if cluster < 0:
        return NOISE_COLOR
    palette = categorical_palette()
    return palette[cluster % len(palette)]


def _padded(values: pl.Series) -> tuple[float, float]:
    """The scale domain of one map axis: the data extent widened by :data:`MAP_PADDING`."""
    v = values.to_numpy()
    lo, hi = float(np.nanmin(v)), float(np.nanmax(v))
    pad = (hi - lo) * MAP_PADDING or 1.0
    return lo - pad, hi + pad


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    # jupyter-scatter 1.0 calls a pandas API that pandas 3.1 deprecates; nothing to act on.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The inplace keyword",
                                category=DeprecationWarning)
        yield


class ClusterExplorer(widgets.VBox):
    """An interactive map of a :class:`~workbench.analysis.ClusterResult`.

    The map is a jupyter-scatter WebGL scatter (smooth at 100k+ points; lasso with the
    toolbar's lasso mode, click to pick), coloured by cluster or any metadata
    column; hovering shows the text as text. Beside it: the map's distortion
    (trustworthiness, kNN preservation) and quality measures, sliders for HDBSCAN's
    ``min_cluster_size`` / ``min_samples`` and its selection method with a button that
    re-clusters from the cached reduction (one :func:`recluster` call), an "Auto" button that
    picks the settings by relative validity from a small grid around the slider's
    ``min_cluster_size`` (``recluster(auto=True)``; the controls then show the choice), and
    the cluster table with sizes and keywords.

    The topic hierarchy (:attr:`ClusterResult.hierarchy`): a granularity slider from 1 topic to
    the K fine clusters moves along the tree, one :meth:`ClusterResult.at_level` call per move
    (no reduction or HDBSCAN re-run); below the table a collapsible tree of the merges marks
    the current topics. A result cut from a tree (``"topics" in result.params``, the default
    for text) holds its tree, so both show at once. For a fine clustering (``topics=False``) the
    slider starts at K and the tree is built once, by the library, on the first move (building
    it costs a silhouette curve over all points: not done for a view nobody asked for); the
    result of that move holds the tree and is the one later moves cut. A checkbox shows the
    points HDBSCAN left as noise (``points["hdbscan_cluster"] == -1``, reassigned to a topic)
    grey again: a view of the result, which stays as it is.

    Parameters
    ----------
    result : ClusterResult
        The clustering to show (with a 2-D layout).
    store : Store, optional
        Source of the metadata shown and offered for colouring (joined on ``key``).
    metadata : polars.DataFrame, optional
        Metadata with a ``key`` or ``id`` column, instead of a store.
    text : str
        Column shown on hover (also offered for colouring when it has few distinct values).
    height : int
        Map height in pixels.
    max_categories : int
        Text, boolean and integer metadata columns with at most this many distinct values are
        coloured as categories (digit labels get ten colours, not a 0-9 gradient); text
        columns with more are free text and not offered; other numbers get a gradient.
    image : str, optional
        Metadata column of image URLs or ``data:`` URIs (:func:`thumbnails` makes them from
        pixel arrays): hovering a point shows its picture, with the `text` column below.

    Attributes
    ----------
    result : ClusterResult
        The clustering shown (after a re-cluster or a granularity move, the new one).
    selection : polars.DataFrame
        The selected points (``id``, cluster columns and metadata), for going back to code.
    scatter : jscatter.Scatter
        The map. Clusters are coloured in number order with a fixed colour per number
        (:func:`cluster_color`, noise light grey) and labelled by :func:`cluster_label`.
    """

    color_by = traitlets.Unicode("cluster")
    min_cluster_size = traitlets.Int(10)
    min_samples = traitlets.Int(5)
    selection_method = traitlets.Unicode("eom")
    #: Topics at the current level of the hierarchy (the granularity slider).
    n_topics = traitlets.Int(0)
    #: Show the points HDBSCAN left as noise as noise (grey), not in their reassigned topic.
    show_noise = traitlets.Bool(False)
    status = traitlets.Unicode("")
    #: Ids drawn large and opaque on the map (a linked search's results), and their
    #: neighbourhood drawn half-way; the other points fade. Empty: every point as usual.
    highlighted = traitlets.List(traitlets.Unicode())
    neighbourhood = traitlets.List(traitlets.Unicode())

    def __init__(self, result: ClusterResult, *, store: Store | None = None,
                 metadata: pl.DataFrame | None = None, text: str = "text",
                 height: int = 520, max_categories: int = 20,
                 image: str | None = None) -> None:
        if result.layout is None:
            raise InvalidInputError("result: has no 2-D layout; cluster with layout='umap'")
        self.image_column = image
        self.result = result
        # What Re-cluster starts from (its policy: cut from a tree or fine) and what the
        # slider cuts (the result holding the tree; None until a fine result's first move).
        self._fine_result = result
        self._tree_result: ClusterResult | None = result if "topics" in result.params else None
        self._syncing = False
        # the map's size and opacity settings while a highlight replaces them
        self._plain: Any = None
        self.text_column = text
        if store is not None:
            metadata = store.scan().collect()
        self._frame = self._join(result, metadata)
        if image is not None and image not in self._frame.columns:
            raise InvalidInputError(
                f"image: expected a metadata column of image URLs, got {image!r}; columns: "
                f"{self._frame.columns}")
        # Metadata aligned to the points once: re-clustering keeps the points and their order.
        self._extra = self._frame.drop(result.to_frame().columns)
        # Metadata colouring is fixed by the points, so it is worked out once: the categories
        # of each categorical column (in order) or a gradient (absent from the dict). The
        # text= column is offered like any other: free text has too many values to colour.
        meta = [c for c in self._extra.columns if c != image
                and can_color(self._extra.get_column(c), max_categories=max_categories)]
        self._categories: dict[str, list[str]] = {}
        for c in meta:
            order = category_order(self._extra.get_column(c), max_categories=max_categories)
            if order is not None:
                self._categories[c] = order
        colourable = ["cluster", *meta, "probability", "outlier_score"]
        with _quiet():
            from jscatter import Scatter

            self.scatter = Scatter(data=self._scatter_frame(), x="x", y="y",
                                   x_scale=_padded(self._frame.get_column("x")),
                                   y_scale=_padded(self._frame.get_column("y")),
                                   height=height, legend=False,
                                   size=point_size(self._frame.height),
                                   opacity=POINT_OPACITY)
            self._apply_color("cluster")
            if image is not None:
                # a picture per point: the image column (data URIs or URLs), the text below
                shown = ["color", *([text] if text in self._frame.columns else [])]
                self.scatter.tooltip(True, properties=shown, preview=image,
                                     preview_type="image", preview_image_size="contain",
                                     preview_image_height=96)
            else:
                preview = text if text in self._frame.columns else None
                self.scatter.tooltip(True, properties=["color"], preview=preview)
        params = result.params.get("clusterer") or {}
        self.min_cluster_size = int(params.get("min_cluster_size", 10) or 10)
        self.min_samples = int(params.get("min_samples", 5) or 5)
        self.selection_method = str(params.get("cluster_selection_method") or "eom")
        self._color = widgets.Dropdown(options=colourable, value="cluster",
                                       description="colour by")
        traitlets.link((self._color, "value"), (self, "color_by"))
        self.observe(self._on_color, names="color_by")
        n = result.points.height
        self._mcs = widgets.IntSlider(value=self.min_cluster_size, min=2,
                                      max=max(3, n // 2), description="min_cluster_size",
                                      style={"description_width": "initial"},
                                      continuous_update=False)
        self._ms = widgets.IntSlider(value=self.min_samples, min=1, max=max(2, min(100, n - 1)),
                                     description="min_samples",
                                     style={"description_width": "initial"},
                                     continuous_update=False)
        traitlets.link((self._mcs, "value"), (self, "min_cluster_size"))
        traitlets.link((self._ms, "value"), (self, "min_samples"))
        self._method = widgets.Dropdown(options=list(SELECTION_METHODS),
                                        value=self.selection_method,
                                        description="selection")
        traitlets.link((self._method, "value"), (self, "selection_method"))
        self._button = widgets.Button(description="Re-cluster", button_style="primary")
        self._button.on_click(lambda _: self.recluster())
        self._auto = widgets.Button(description="Auto (grid)",
                                    tooltip="pick the settings by relative validity from a grid "
                                            "around min_cluster_size")
        self._auto.on_click(lambda _: self.recluster(auto=True))
        # The map's groups are "clusters" everywhere in the view (legend, table, this slider,
        # the hierarchy): a store's own `topic` column (wb.assign writes one) is then the
        # only "topic" on screen.
        self._granularity = widgets.IntSlider(
            value=1, min=1, max=1, description="clusters", continuous_update=False,
            tooltip="move along the cluster hierarchy: 1 cluster to every fine cluster",
            style={"description_width": "initial"})
        self._granularity.add_class("wb-cluster-granularity")
        self._noise = widgets.Checkbox(
            value=False, description="show HDBSCAN noise", indent=False,
            tooltip="grey the points HDBSCAN left as noise (each is in its nearest topic)")
        self._noise.add_class("wb-cluster-noise")
        self._sync_levels()
        traitlets.link((self._granularity, "value"), (self, "n_topics"))
        traitlets.link((self._noise, "value"), (self, "show_noise"))
        self.observe(self._on_n_topics, names="n_topics")
        self.observe(self._on_show_noise, names="show_noise")
        self._metrics = widgets.HTML()
        self._metrics.add_class("wb-cluster-metrics")
        self._table = widgets.HTML()
        self._table.add_class("wb-cluster-table")
        self._tree = widgets.HTML()
        self._tree.add_class("wb-cluster-hierarchy")
        self._status = widgets.HTML()
        # as wide as the side panel, no wider: a two-column legend sized to its content ran
        # past the panel's right edge
        self._legend = widgets.HTML(layout=widgets.Layout(width="100%"))
        self._legend.add_class("wb-cluster-legend")
        # the lasso's count, with a way out of it
        self._selected = widgets.HTML()
        self._selected.add_class("wb-cluster-selected")
        self._clear = widgets.Button(description="Clear selection", icon="times",
                                     layout=widgets.Layout(width="auto"))
        self._clear.add_class("wb-cluster-clear")
        self._clear.on_click(lambda _: self.select([]))
        self.export = ExportBar(lambda: self.rows, name="cluster_points")
        self._level_chosen: int | None = None  # the clusters slider's value, once moved
        self._render_side()
        self._render_legend()
        self._render_selected()
        self.scatter.widget.observe(lambda _: self._render_selected(), names="selection")
        # The side panel holds what acts on the map and no more: with the metrics in it, it
        # ran ~200 px below the map and left that much blank under the map. It scrolls
        # rather than grow past the map.
        side = widgets.VBox([self._color, self._legend, self._granularity, self._noise,
                             self._mcs, self._ms, self._method,
                             widgets.HBox([self._button, self._auto]), self._status],
                            layout=widgets.Layout(width="34%", max_height=f"{height + 40}px",
                                                  overflow="auto"))
        view = self.scatter.show()
        view.layout.width = "100%"  # fill the map's column (a flex child shrinks to content)
        bar = widgets.HBox([self._selected, self._clear, self.export],
                           layout=widgets.Layout(align_items="center", flex_flow="row wrap"))
        map_box = widgets.VBox([view, bar], layout=widgets.Layout(width="66%"))
        map_box.add_class("wb-cluster-map")
        below = widgets.HBox([self._table, self._metrics],
                             layout=widgets.Layout(flex_flow="row wrap",
                                                   align_items="flex-start"))
        self._metrics.layout.margin = "0 0 0 24px"
        super().__init__([widgets.HBox([map_box, side], layout=widgets.Layout(
            align_items="flex-start")), below, self._tree])
        self.add_class("wb-cluster-explorer")

    # ------------------------------------------------------------------ data
    @staticmethod
    def _join(result: ClusterResult, meta: pl.DataFrame | None) -> pl.DataFrame:
        pts = result.to_frame()
        if meta is None:
            return pts
        on = "key" if "key" in meta.columns and "key" in pts.columns else "id"
        extra = [c for c in meta.columns if c not in pts.columns or c == on]
        return pts.join(meta.select(extra), on=on, how="left", maintain_order="left")

    def _cluster_categories(self) -> tuple[list[int], list[str], list[str]]:
        """Cluster numbers, labels and colours in number order; noise (``-1``) last."""
        clusters = self.result.clusters.sort("cluster")
        numbers = clusters.get_column("cluster").to_list()
        names = clusters.get_column("name").to_list()
        if (self._shown_clusters() < 0).any():
            numbers.append(-1)
            names.append(None)
        labels = [cluster_label(c, n) for c, n in zip(numbers, names, strict=True)]
        return numbers, labels, [cluster_color(c) for c in numbers]

    def _shown_clusters(self) -> pl.Series:
        """The cluster each point is drawn in (``-1``: noise, as `show_noise` asks)."""
        f = self._frame
        if not self.show_noise or "hdbscan_cluster" not in f.columns:
            return f.get_column("cluster")
        return f.select(pl.when(pl.col("hdbscan_cluster") < 0).then(-1)
                        .otherwise(pl.col("cluster")).alias("cluster")).to_series()

    def _scatter_frame(self) -> pd.DataFrame:
        """The map's data: ``cluster`` as labels and categorical columns as ordered categories.

        A pandas frame because jupyter-scatter re-sorts the categories of an Arrow (polars)
        frame as text; an ordered pandas categorical keeps the colour codes, the colours and
        the legend in the order given here.
        """
        f = self._frame
        numbers, labels, _ = self._cluster_categories()
        cluster = self._shown_clusters().clip(lower_bound=-1).replace_strict(
            numbers, labels, return_dtype=pl.Utf8)
        columns = [as_categories(cluster, labels).alias("cluster")]
        columns += [as_categories(f.get_column(c), order).alias(c)
                    for c, order in self._categories.items()]
        return f.with_columns(columns).to_pandas()

    def __repr__(self) -> str:
        n = len(self.scatter.selection())
        return short_repr(self, f"{self._frame.height:,} points",
                          f"{self.result.clusters.height} clusters",
                          f"{n} selected" if n else "")

    @property
    def rows(self) -> pl.DataFrame:
        """The points for code and the "Export" buttons.

        The selection, or every point when nothing is selected (``id``, cluster columns and
        metadata).
        """
        sel = self.selection
        return sel if sel.height else self._frame

    def _render_selected(self) -> None:
        n = len(self.scatter.selection())
        self._clear.layout.display = None if n else "none"
        self._selected.value = (
            f"{_SELECTED_CSS}<span class='wb-cluster-selected'><b>{n:,} selected</b> of "
            f"{self._frame.height:,} points</span>" if n else
            f"{_SELECTED_CSS}<span class='wb-cluster-selected'>{self._frame.height:,} points; "
            "lasso (toolbar) or click to select</span>")
        self.export.clear()

    # ------------------------------------------------------------------ actions
    @property
    def selection(self) -> pl.DataFrame:
        """Selected points with their cluster and metadata."""
        idx = np.asarray(self.scatter.selection(), dtype=np.int64)
        return self._frame[idx] if idx.size else self._frame.head(0)

    @property
    def selected_ids(self) -> list[str]:
        """Ids of the selected points (a lasso or a click on the map, or :meth:`select`)."""
        return [str(v) for v in self.selection.get_column("id").to_list()]

    def highlight(self, ids: Any = (), neighbours: Any = ()) -> None:
        """Draw `ids` large, `neighbours` half-way and every other point small.

        What a linked :class:`~workbench.widgets.SearchPanel` calls with its results (see
        :class:`~workbench.widgets.LinkedViews`). Ids not on the map are ignored; no ids (the
        default) draws every point as usual again. The colours are left as they are.
        """
        self.highlighted = [str(i) for i in ids]
        shown = set(self.highlighted)
        self.neighbourhood = [str(i) for i in neighbours if str(i) not in shown]
        with _quiet():
            self._apply_highlight()
        self._render_legend()

    def _highlight_levels(self) -> list[int] | None:
        """Each point's highlight level (an index of :data:`HIGHLIGHT_LEVELS`), or None.

        Plain ints with the norm (0, 2): jupyter-scatter's opacity encoding takes no
        categorical array, and a numeric one maps 0, 1, 2 to the three sizes / opacities.
        """
        if not self.highlighted and not self.neighbourhood:
            return None
        ids = self._frame.get_column("id").cast(pl.Utf8)
        level = (pl.when(ids.is_in(pl.Series(self.highlighted, dtype=pl.Utf8).implode()))
                 .then(2)
                 .when(ids.is_in(pl.Series(self.neighbourhood, dtype=pl.Utf8).implode()))
                 .then(1).otherwise(0))
        return pl.select(level.alias("h")).to_series().to_list()

    def _drop_highlight(self) -> None:
        """Back to the map's own point size (a highlight's sizes off)."""
        if self._plain is not None:
            self.scatter.size(by=None, default=self._plain)
            self._plain = None

    def _apply_highlight(self) -> None:
        levels = self._highlight_levels()
        if levels is None:
            self._drop_highlight()
            return
        if self._plain is None:
            self._plain = self.scatter.size()["default"]
        # Size only: jupyter-scatter encodes two data columns at most and colour is the other.
        self.scatter.size(by=levels, map=list(HIGHLIGHT_SIZES),
                          norm=(0, len(HIGHLIGHT_LEVELS) - 1),
                          labeling={"variable": "search", "minValue": "other",
                                    "maxValue": "hit"})

    def select(self, ids: list[str]) -> None:
        """Select points by id (as a lasso would)."""
        pos = self._frame.with_row_index("_i").filter(
            pl.col("id").is_in(pl.Series([str(i) for i in ids]).implode())
        ).get_column("_i").to_numpy()
        self.scatter.selection(pos.astype(int).tolist())

    def recluster(self, *, auto: bool = False) -> ClusterResult | None:
        """Re-run HDBSCAN from the cache: one :func:`recluster` call.

        With the slider and selection values, or, with `auto`, with the settings picked by
        relative validity from a small grid around the slider's ``min_cluster_size`` (the
        controls are then set to the choice).
        """
        # auto: the grid is centred on the slider's min_cluster_size and picks the rest
        rest = {"auto": True} if auto else {"min_samples": self.min_samples,
                                            "cluster_selection_method": self.selection_method}
        try:
            # from the result given (or re-clustered), not a granularity move's: at_level
            # marks a fine result as cut from a tree, and recluster would then cut the new one
            new = recluster(self._fine_result, min_cluster_size=self.min_cluster_size,
                            keep_numbers=True, **rest)
        except WorkbenchError as exc:
            self._error(exc)
            return None
        self._fine_result = new
        self._tree_result = new if "topics" in new.params else None
        secs = new.params["seconds"]["recluster"]
        topics = new.params.get("topics")
        k = int(topics["fine_clusters"]) if topics else new.clusters.height
        level = self._level_chosen
        # The clusters slider keeps the level the user chose: the new clustering is cut there
        # (a cut of its tree; a fine result builds the tree the slider had asked for).
        if level is not None and k >= 2 and level != self._level_of(new):
            cut = self.at_level(min(level, k))
            if cut is not None:
                self._level_chosen = level
                self.status = (f"re-clustered into {k} fine clusters ({secs:.2f} s); "
                               + self.status)
                self._status.value = esc(self.status)
                return new
        self._show(new)
        self.status = f"{new.clusters.height} clusters ({secs:.2f} s)"
        if auto:
            chosen = new.params["clusterer"]
            self.min_cluster_size = int(chosen["min_cluster_size"])
            self.min_samples = int(chosen["min_samples"])
            self.selection_method = str(chosen["cluster_selection_method"])
            self.status += (f"; auto picked min_cluster_size={self.min_cluster_size}, "
                            f"min_samples={self.min_samples}, {self.selection_method} "
                            f"from {new.grid.height} settings by relative validity")
        self._status.value = esc(self.status)
        return new

    def at_level(self, n_topics: int) -> ClusterResult | None:
        """Show the clustering at `n_topics` topics of the hierarchy (the slider's action).

        One :meth:`ClusterResult.at_level` call; errors go to the status line. A fine
        clustering's first call builds its topic tree (in the library); its result holds the
        tree and later calls cut that.
        """
        source = self._tree_result or self._fine_result
        t0 = time.perf_counter()
        try:
            new = source.at_level(n_topics)
        except WorkbenchError as exc:
            self._error(exc)
            self._sync_levels()  # the slider back to the level shown
            return None
        secs = time.perf_counter() - t0
        if self._tree_result is None:
            self._tree_result = new
        self._show(new)
        k = new.params["topics"]["fine_clusters"]
        n = new.clusters.height
        self.status = (f"{n} cluster{'' if n == 1 else 's'} of {k} fine clusters "
                       f"({secs:.2f} s)")
        self._status.value = esc(self.status)
        return new

    def _show(self, new: ClusterResult) -> None:
        """Show `new`: the map's data and colours, the legend, the side panel and the tree."""
        self.result = new
        frame = new.to_frame()
        # a granularity move adds fine_cluster and hdbscan_cluster: the result's win
        extra = self._extra.drop([c for c in frame.columns if c in self._extra.columns])
        self._frame = pl.concat([frame, extra], how="horizontal")
        self._redraw()
        self._sync_levels()
        self._render_side()

    def _redraw(self) -> None:
        with _quiet():
            # jupyter-scatter re-reads a size encoding from the new data by column name: a
            # highlight's sizes are no column, so they come off and go back on after
            self._drop_highlight()
            self.scatter.data(self._scatter_frame())
            self._apply_color(self.color_by)
            self._apply_highlight()
        self._render_legend()

    def _error(self, exc: Exception) -> None:
        self.status = f"Error: {exc}"
        self._status.value = error_html(self.status)

    def _sync_levels(self) -> None:
        """Set the slider to the shown result's level (K fine clusters at most) without a call.

        A result cut from a tree says its level and K in ``params["topics"]``; a fine one is
        at its K clusters. With fewer than two clusters there is nothing to move along.
        """
        topics = self.result.params.get("topics")
        if topics is not None:
            k, level = int(topics["fine_clusters"]), int(topics["n_topics"])
        else:
            k = level = self.result.clusters.height
        self._syncing = True
        try:
            self._granularity.max = max(k, 1)
            self._granularity.value = min(max(level, 1), max(k, 1))
            self.n_topics = self._granularity.value
        finally:
            self._syncing = False
        self._granularity.layout.display = None if k >= 2 else "none"
        self._noise.disabled = "hdbscan_cluster" not in self.result.points.columns

    @staticmethod
    def _level_of(result: ClusterResult) -> int:
        topics = result.params.get("topics")
        return int(topics["n_topics"]) if topics else result.clusters.height

    def _on_n_topics(self, change: dict[str, Any]) -> None:
        if not self._syncing and change["new"] != change["old"]:
            self._level_chosen = int(change["new"])
            self.at_level(int(change["new"]))

    def _on_show_noise(self, change: dict[str, Any]) -> None:
        self._redraw()
        if change["new"] and "hdbscan_cluster" in self._frame.columns:
            n = int((self._frame.get_column("hdbscan_cluster") < 0).sum())
            self.status = f"{n} points HDBSCAN left as noise shown grey"
            self._status.value = esc(self.status)

    def _on_color(self, change: dict[str, Any]) -> None:
        with _quiet():
            self._apply_color(change["new"])
        self._render_legend()

    def _apply_color(self, by: str) -> None:
        # Colours are always passed explicitly, one per category in code order: jscatter
        # otherwise keeps the previous column's map (or picks one by category count, which
        # recolours every cluster when the count changes).
        if by == "cluster":
            _, _, colors = self._cluster_categories()
        elif by in self._categories:
            colors = category_colors(self._categories[by])
        else:
            self.scatter.color(by=by, map="viridis", norm=None, order=None)
            return
        self.scatter.color(by=by, map=colors, order=None)

    @property
    def legend(self) -> list[tuple[str, str]]:
        """The colour legend shown beside the map: (label, CSS colour) in display order.

        Read from jupyter-scatter's own legend encoding of the colour column (what the points
        are drawn with); for a gradient, a few values along it.
        """
        enc = (self.scatter.widget.legend_encoding or {}).get("color") or {}
        out = []
        for value, rgba, _ in enc.get("values", []):
            label = str(value) if enc.get("categorical") else f"{float(value):.3g}"
            out.append((label, to_hex(rgba, keep_alpha=False)))
        return out

    def _render_legend(self) -> None:
        """Draw the legend beside the map, not over it.

        jupyter-scatter draws its own inside the canvas, where 20+ clusters cover a corner of
        the points.
        """
        enc = (self.scatter.widget.legend_encoding or {}).get("color") or {}
        legend = self.legend
        if not enc.get("categorical", True) and legend:  # a gradient: a bar and its ends
            stops = ", ".join(color for _, color in legend)
            entries = (f"<div class='wb-legend-bar' style='background:linear-gradient("
                       f"to right, {stops})'></div><div class='wb-legend-ends'>"
                       f"<span>{esc(legend[0][0])}</span><span>{esc(legend[-1][0])}</span></div>")
        else:
            entries = "".join(
                f"<div class='wb-legend-entry' title='{esc(label, 300)}'><span "
                f"class='wb-swatch' style='background:{color}'></span>{esc(label, 120)}</div>"
                for label, color in legend)
            if len(legend) > LEGEND_ONE_COLUMN:
                entries = f"<div class='wb-legend-cols'>{entries}</div>"
        search = ("<div class='wb-legend-search'>search: large = hit, medium = "
                  "neighbourhood</div>" if self.highlighted else "")
        self._legend.value = (
            f"<style>{_LEGEND_CSS}</style><div class='wb-legend'>"
            f"<div class='wb-legend-title'>{esc(self.color_by)}</div>{entries}{search}</div>")

    def _render_side(self) -> None:
        m = self.result.metrics
        rows = {
            "map trustworthiness": m.trustworthiness,
            "kNN kept in the map": m.knn_preservation,
            "noise fraction": m.noise_fraction,
            "silhouette (reduced)": m.silhouette,
            "relative validity": m.relative_validity,
        }
        cells = "".join(
            f"<tr><td>{esc(k)}</td><td>{'–' if v is None or v != v else f'{v:.3f}'}</td></tr>"
            for k, v in rows.items()
        )
        self._metrics.value = (
            f"<style>{_TABLE_CSS}</style><b>How far to trust the map</b>"
            "<table class='wb-table'>" + cells + "</table>"
            "<div style='font-size:11px;color:#5b6675'>A 2-D map distorts distances: "
            f"trustworthiness and the share of each point's {m.k} nearest neighbours kept in "
            "the map say by how much.</div>"
        )
        # The number has its own column: the name without the "9: " automatic names start with.
        body = "".join(
            f"<tr><td>{c}</td><td>{esc(name.removeprefix(f'{c}: '))}</td><td>{size}</td>"
            f"<td>{esc(', '.join(kw[:8]))}</td></tr>"
            for c, name, size, kw in self.result.clusters.select(
                "cluster", "name", "size", "keywords").iter_rows()
        )
        self._table.value = (
            f"<style>{_TABLE_CSS}</style><table class='wb-table'><thead><tr><th>cluster</th>"
            f"<th>name</th><th>size</th><th>keywords</th></tr></thead><tbody>{body}</tbody>"
            "</table>"
        )
        tree = self._tree_result.hierarchy if self._tree_result is not None else None
        if tree is None:
            k = self.result.clusters.height
            self._tree.value = (
                "<div style='font-size:12px;color:#5b6675'><b>Cluster hierarchy</b>: the map "
                f"shows all {k} fine clusters (the clusters slider at {self.n_topics}); not "
                "built yet: move the slider left to merge them (builds it once)</div>"
                if k >= 2 else "")
        else:
            self._tree.value = topic_tree_html(tree, self.result, self.n_topics)
