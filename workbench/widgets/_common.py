"""Shared bits of the widgets: escaping, filter controls generated from a metadata schema."""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import polars as pl

from ..reports.html import escape_text

#: Columns never offered as filters.
SKIP_COLUMNS = ("key", "id")


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
