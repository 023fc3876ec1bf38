"""Shared bits of the widgets: escaping, filter controls generated from a metadata schema,
categorical colours, frame traits, short reprs and the rows' export (CSV / Parquet links)."""

from __future__ import annotations

import base64
import colorsys
import io
from collections.abc import Callable
from functools import cache
from typing import Any

import ipywidgets as widgets
import polars as pl
import traitlets

from ..errors import InvalidInputError
from ..reports.html import escape_text

#: Columns never offered as filters.
SKIP_COLUMNS = ("key", "id")

#: A quiet light grey for noise and missing values: noise can be 40 % of a text map, so it
#: must recede behind the clusters rather than compete with them.
NOISE_COLOR = "#c8ccd2"

#: Category shown for missing values when a column is coloured as categories.
NULL_LABEL = "(null)"


#: Escape any value for HTML, shortening long text (the reports' helper).
esc = escape_text


def error_html(text: str) -> str:
    """An error message for a widget's status line (escaped, in red)."""
    return f"<span style='color:#b00020'>{esc(text, 600)}</span>"


class FilterControl:
    """One metadata filter: a widget plus the polars expression for its current value."""

    def __init__(self, column: str, widget: widgets.Widget, kind: str, full: Any) -> None:
        self.column = column
        self.widget = widget
        self.kind = kind
        self.full = full

    def describe(self) -> str | None:
        """The filter as short plain text (``lang: en, de``), or None when it is not active.

        The text is not escaped: escape it where it is shown as HTML.
        """
        if self.expr() is None:
            return None
        value = self.widget.value
        if self.kind == "categorical":
            return f"{self.column}: {', '.join(str(v) for v in value)}"
        if self.kind == "boolean":
            return f"{self.column}: {value}"
        lo, hi = value
        if isinstance(lo, float) or isinstance(hi, float):
            return f"{self.column}: {lo:.4g}–{hi:.4g}"
        return f"{self.column}: {lo}–{hi}"

    def expr(self) -> pl.Expr | None:
        """The filter expression, or None when the control selects everything."""
        col = pl.col(self.column)
        value = self.widget.value
        if self.kind == "categorical":
            if not value:
                return None
            return col.cast(pl.Utf8).is_in(pl.Series(list(value), dtype=pl.Utf8).implode())
        if self.kind == "boolean":
            return None if value == "any" else col == (value == "true")
        lo, hi = value
        if (lo, hi) == tuple(self.full):
            return None
        return col.is_between(lo, hi)


def build_filters(frame: pl.DataFrame, *, max_categories: int = 50) -> list[FilterControl]:
    """Filter controls for the columns of `frame`: dropdowns for categorical columns, range
    sliders for numeric and date columns; free text and id columns are skipped."""
    controls: list[FilterControl] = []
    layout = widgets.Layout(width="auto")
    style = {"description_width": "initial"}
    for name, dtype in frame.schema.items():
        if name in SKIP_COLUMNS:
            continue
        s = frame.get_column(name).drop_nulls()
        if s.len() == 0:
            continue
        if dtype == pl.Boolean:
            w = widgets.Dropdown(options=["any", "true", "false"], value="any",
                                 description=name, style=style, layout=layout)
            controls.append(FilterControl(name, w, "boolean", None))
        elif dtype in (pl.Utf8, pl.Categorical) or isinstance(dtype, pl.Enum):
            values = s.cast(pl.Utf8).unique().sort()
            if values.len() > max_categories:
                continue  # free text: searched, not filtered
            w = widgets.SelectMultiple(options=values.to_list(), description=name,
                                       rows=min(5, values.len()), style=style, layout=layout)
            controls.append(FilterControl(name, w, "categorical", None))
        elif dtype.is_numeric():
            lo, hi = s.min(), s.max()
            if lo == hi:
                continue
            if dtype.is_integer():
                w = widgets.IntRangeSlider(value=(int(lo), int(hi)), min=int(lo), max=int(hi),
                                           description=name, style=style, layout=layout)
                full: Any = (int(lo), int(hi))
            else:
                w = widgets.FloatRangeSlider(value=(float(lo), float(hi)), min=float(lo),
                                             max=float(hi), step=(float(hi) - float(lo)) / 100,
                                             description=name, style=style, layout=layout)
                full = (float(lo), float(hi))
            controls.append(FilterControl(name, w, "range", full))
        elif dtype.is_temporal():
            values = s.unique().sort()
            if values.len() < 2:
                continue
            step = max(1, values.len() // 100)
            points = values.gather_every(step).to_list()
            if points[-1] != values[-1]:
                points.append(values[-1])
            options = [(str(p), p) for p in points]
            w = widgets.SelectionRangeSlider(options=options, index=(0, len(options) - 1),
                                             description=name, style=style, layout=layout)
            controls.append(FilterControl(name, w, "range", (points[0], points[-1])))
    return controls


# --------------------------------------------------------------------------------- colours
@cache
def categorical_palette() -> tuple[str, ...]:
    """Distinct colours for categories on a light background, as ``#rrggbb``.

    jupyter-scatter's 256-colour Glasbey palette for light backgrounds without its greyish
    and near-white entries (chroma below 0.2, lightness above 0.85), so that no category looks
    like :data:`NOISE_COLOR` or the background. The order is fixed: index a colour by a
    stable number (``palette[c % len(palette)]``) to give a category the same colour in every
    view.

    Returns
    -------
    tuple of str
        220 colours, most distinct first.
    """
    from jscatter.color_maps import glasbey_dark

    out = []
    for rgba in glasbey_dark:
        r, g, b = (float(v) for v in rgba[:3])
        if max(r, g, b) - min(r, g, b) < 0.2 or colorsys.rgb_to_hls(r, g, b)[1] > 0.85:
            continue
        out.append("#{:02x}{:02x}{:02x}".format(*(round(v * 255) for v in (r, g, b))))
    return tuple(out)


def category_order(series: pl.Series, *, max_categories: int = 20) -> list[str] | None:
    """The categories `series` is coloured by, in order, or None to colour it continuously.

    Text, categorical and boolean columns, and integer columns with at most `max_categories`
    distinct values (digit labels, years, star ratings: a gradient from 0 to 9 would say
    "6.75"), colour as categories: values as text, numbers in numeric order, missing values
    last as :data:`NULL_LABEL`.

    Parameters
    ----------
    series : polars.Series
        A metadata column.
    max_categories : int
        Most distinct values a column may have to colour as categories.

    Returns
    -------
    list of str or None
        The category labels, or None for a numeric column to colour with a gradient (and for
        a column that cannot colour: see :func:`can_color`).
    """
    dtype = series.dtype
    values = series.drop_nulls()
    if isinstance(dtype, pl.Enum):
        present = set(values.cast(pl.Utf8).to_list())
        order = [c for c in dtype.categories.to_list() if c in present]
    elif dtype == pl.Boolean or dtype.is_integer() or dtype in (pl.Utf8, pl.Categorical):
        if values.n_unique() > max_categories:
            return None
        uniq = values.unique()
        uniq = uniq.cast(pl.Utf8).sort() if dtype == pl.Categorical else uniq.sort()
        order = [str(v).lower() if dtype == pl.Boolean else str(v) for v in uniq.to_list()]
    else:
        return None
    if len(order) > max_categories:
        return None
    if series.null_count() and NULL_LABEL not in order:
        order.append(NULL_LABEL)
    return order


def can_color(series: pl.Series, *, max_categories: int = 20) -> bool:
    """Whether the map can be coloured by `series`: as categories, or as a float/int gradient.

    Free text (more than `max_categories` distinct values), dates and nested columns cannot.
    """
    if series.len() == series.null_count():
        return False
    if category_order(series, max_categories=max_categories) is not None:
        return True
    return series.dtype.is_float() or series.dtype.is_integer()


def as_categories(series: pl.Series, order: list[str]) -> pl.Series:
    """`series` as an ordered ``Enum`` of `order` (see :func:`category_order`).

    An ordered categorical makes the colour codes, the colours and the legend follow
    `order` (jupyter-scatter sorts plain text as text: ``0, 10, 11, 1, 2``).
    """
    text = (series.cast(pl.Utf8).str.to_lowercase() if series.dtype == pl.Boolean
            else series.cast(pl.Utf8))
    return text.fill_null(NULL_LABEL).cast(pl.Enum(order))


def category_colors(order: list[str]) -> list[str]:
    """One colour per category of `order`, by position; :data:`NOISE_COLOR` for missing."""
    palette = categorical_palette()
    return [NOISE_COLOR if c == NULL_LABEL else palette[i % len(palette)]
            for i, c in enumerate(order)]


def thumbnails(images: Any, shape: tuple[int, int], *, scale: int = 8,
               cmap: str = "gray_r", name: str = "image") -> pl.Series:
    """Small PNG images as ``data:`` URIs, one per row: a map's hover preview.

    Give the result as a metadata column and its name as ``ClusterExplorer(image=...)``: the
    tooltip then shows each point's picture (a digit's 8x8 pixels) instead of a number. The
    URIs are inline, so an exported notebook needs no image server.

    Parameters
    ----------
    images : array_like
        Shape (n, height * width) or (n, height, width): grey levels, any range (each image
        is scaled to its own minimum and maximum).
    shape : tuple of int
        (height, width) of one image.
    scale : int
        Each pixel drawn as a `scale` x `scale` block (crisp when the browser enlarges it).
    cmap : str
        Matplotlib colour map.
    name : str
        Name of the series.

    Returns
    -------
    polars.Series
        ``"data:image/png;base64,..."`` per row (a Series: ``frame.with_columns(thumbnails(
        ...))`` adds it as a column; a plain list there would be one list value per row).
    """
    import base64
    import io

    import matplotlib.pyplot as plt
    import numpy as np

    from ..errors import InvalidInputError

    arr = np.asarray(images, dtype=np.float64)
    h, w = (int(v) for v in shape)
    if arr.ndim < 2 or arr[0].size != h * w:
        raise InvalidInputError(
            f"images: expected rows of {h} x {w} = {h * w} values, got shape {arr.shape}")
    if not isinstance(scale, int) or scale < 1:
        raise InvalidInputError(f"scale: expected an int >= 1, got {scale!r}")
    out = []
    block = np.ones((scale, scale))
    for row in arr.reshape(len(arr), h, w):
        buf = io.BytesIO()
        lo, hi = float(row.min()), float(row.max())
        plt.imsave(buf, np.kron(row, block), cmap=cmap, vmin=lo, vmax=hi if hi > lo else lo + 1,
                   format="png")
        out.append("data:image/png;base64," + base64.b64encode(buf.getvalue()).decode())
    return pl.Series(name, out, dtype=pl.Utf8)


# --------------------------------------------------------------------------------- traits
class FrameTrait(traitlets.Any):
    """A trait holding a polars frame (or None), changed when a *different object* is set.

    traitlets decides whether to notify with ``old == new``: for a polars frame against None
    that warns ("Comparisons with None always result in null") and against another frame it
    compares every cell (or raises, on other shapes). A result is a new object whenever it
    is new, so identity says it.
    """

    def set(self, obj: traitlets.HasTraits, value: Any) -> None:  # noqa: D102
        new = self._validate(obj, value)
        old = obj._trait_values.get(self.name, self.default_value)
        obj._trait_values[self.name] = new
        if old is not new:
            obj._notify_trait(self.name, old, new)


# --------------------------------------------------------------------------------- repr
def short_repr(obj: object, *parts: str) -> str:
    """A widget's plain one-line repr: its class and what it shows.

    ipywidgets' own repr lists every child with its value (the CSS included), which is what a
    terminal or a log shows of a widget outside Jupyter.

    Examples
    --------
    >>> short_repr(object(), "store='s'", "2,000 rows")
    "object(store='s', 2,000 rows)"
    """
    return f"{type(obj).__name__}({', '.join(p for p in parts if p)})"


# --------------------------------------------------------------------------------- export
#: Export formats: file suffix -> MIME type.
EXPORT_FORMATS = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet"}

#: Largest file offered as a download link: the link holds the whole file (base64) in the
#: notebook's widget state; bigger frames are written from code (``.rows.write_parquet``).
MAX_EXPORT_BYTES = 25_000_000


def _exportable(frame: pl.DataFrame) -> pl.DataFrame:
    # CSV holds no nested or binary values: those become their JSON-like text
    nested = [c for c, t in frame.schema.items()
              if isinstance(t, pl.List | pl.Array | pl.Struct) or t in (pl.Binary, pl.Object)]
    return frame.with_columns(pl.col(c).map_elements(str, return_dtype=pl.Utf8)
                              for c in nested) if nested else frame


def export_bytes(frame: pl.DataFrame, fmt: str) -> bytes:
    """`frame` as the bytes of a ``csv`` or ``parquet`` file (nested columns as text in CSV)."""
    if fmt not in EXPORT_FORMATS:
        raise InvalidInputError(f"fmt: expected one of {list(EXPORT_FORMATS)}, got {fmt!r}")
    if fmt == "csv":
        return _exportable(frame).write_csv().encode()
    buf = io.BytesIO()
    frame.write_parquet(buf)
    return buf.getvalue()


def download_link(frame: pl.DataFrame, fmt: str, *, name: str) -> str:
    """An ``<a download>`` anchor holding `frame` as a ``data:`` URI (works offline).

    Parameters
    ----------
    frame : polars.DataFrame
        The rows to save.
    fmt : {"csv", "parquet"}
        File format.
    name : str
        File name without suffix.

    Returns
    -------
    str
        HTML: the anchor, or a note saying why there is none (too large).
    """
    data = export_bytes(frame, fmt)
    filename = f"{name}.{fmt}"
    if len(data) > MAX_EXPORT_BYTES:
        return (f"<span class='wb-export-note'>{esc(filename)} would be {len(data) / 1e6:.0f} MB:"
                f" too large for a link; save <code>.rows</code> from code instead</span>")
    uri = f"data:{EXPORT_FORMATS[fmt]};base64,{base64.b64encode(data).decode()}"
    return (f"<a class='wb-export-link' download='{esc(filename)}' href='{uri}'>"
            f"⤓ {esc(filename)}</a> <span class='wb-export-note'>{frame.height:,} rows</span>")


class ExportBar(widgets.HBox):
    """"Export CSV" / "Export Parquet" buttons for a widget's current rows.

    A click reads the rows (`rows`, a callable, the widget's ``.rows`` property) and shows a
    download link holding them: the file is made on the click, never while browsing.

    Parameters
    ----------
    rows : callable
        Returns the rows to export (a polars frame) or None when there is nothing to export.
    name : str
        File name without suffix.
    """

    def __init__(self, rows: Callable[[], pl.DataFrame | None], *, name: str) -> None:
        self._rows = rows
        self.name = name
        self.link = widgets.HTML()
        self.link.add_class("wb-export")
        self.buttons: dict[str, widgets.Button] = {}
        for fmt in EXPORT_FORMATS:
            b = widgets.Button(description=f"Export {'CSV' if fmt == 'csv' else 'Parquet'}",
                               icon="download", layout=widgets.Layout(width="auto"),
                               tooltip=f"download the rows shown as {fmt}")
            b.add_class(f"wb-export-{fmt}")
            b.on_click(lambda _, f=fmt: self.export(f))
            self.buttons[fmt] = b
        super().__init__([*self.buttons.values(), self.link],
                         layout=widgets.Layout(align_items="center"))
        self.add_class("wb-export-bar")

    def export(self, fmt: str) -> str:
        """Show the download link of the current rows as `fmt`; returns its HTML."""
        frame = self._rows()
        if frame is None or frame.is_empty():
            self.link.value = "<span class='wb-export-note'>nothing to export yet</span>"
        else:
            self.link.value = download_link(frame, fmt, name=self.name)
        return self.link.value

    def clear(self) -> None:
        """Drop the link (the rows it holds are no longer the ones shown)."""
        self.link.value = ""

    def __repr__(self) -> str:
        return short_repr(self, repr(self.name))
