"""Embedding drift over time: :func:`compute_drift`.

The store's rows are cut into calendar windows of a time column (``dt.truncate(every)``) and
each window is compared with a reference (the first window, the previous one, the N previous
ones pooled, or a fixed date range) by a centroid shift and three two-sample tests (MMD with
aggregated bandwidths, a domain classifier, per-component KS), whose p-values are combined per
window and corrected across windows. The statistics live in
:mod:`workbench.analysis._drift_stats` and work on plain arrays; the stages (plan, sums over
blocks of rows, tests) in :mod:`workbench.analysis._drift_run`, shared with the Ray twin
:func:`workbench.distributed.drift.compute_drift`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from .._validation import check_column, check_positive_int, filter_frame
from ..errors import EmptyInputError, InvalidInputError, MissingColumnError
from ..store.view import ROW_COLUMNS
from . import _drift_run as run
from . import _drift_stats as stats
from ._drift_run import TESTS
from .cluster import ClusterResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..store import Store
    from ..store.view import StoreView

METHODS = ("centroid", "mmd", "classifier", "components")
STATUSES = ("tested", "reference", "no reference", "too few rows")
#: Rows a window and its reference each need at least, whatever `min_rows` says: the
#: classifier's 5 folds and the components' PCA need a few rows per side.
MIN_ROWS_FLOOR = 10
#: MMD permutations: at least this many; automatic counts stop at MAX_AUTO_PERMUTATIONS.
DEFAULT_PERMUTATIONS = 200
MAX_AUTO_PERMUTATIONS = 5_000
_EVERY = re.compile(r"^(\d+(ns|us|ms|s|m|h|d|w|mo|q|y))+$")
_DAYS = re.compile(r"^(\d+(d|w|mo|q|y))+$")
_ROLLING = re.compile(r"^rolling:(\d+)$")
#: What a text time column must look like when no `time_format` is given: ISO 8601 dates and
#: datetimes only, since polars' own inference also reads "03/01/2025", day first, and would
#: silently swap day and month in US-style data.
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
#: strftime directives that carry a time of day: a format with one parses to Datetime.
_TIME_OF_DAY = ("%H", "%I", "%M", "%S", "%T", "%R", "%r", "%c", "%f", "%s", "%+", "%p")

@dataclass(frozen=True)
class DriftResult:
    """Drift of each time window of a store against its reference.

    Attributes
    ----------
    windows : polars.DataFrame
        One row per window holding rows, in time order: ``start``, ``end`` (the time column's
        type; the window is ``[start, end)``), ``n: u32`` (rows), ``n_reference: u32``,
        ``status: str`` (``"tested"``, ``"reference"`` (the window is the reference),
        ``"no reference"`` (nothing before it), ``"too few rows"`` (either side under
        `min_rows`)), ``centroid_shift: f64`` (``1 - cos`` of the mean vectors), ``mmd2: f64``,
        ``mmd_p: f64``, ``auc: f64`` (domain classifier, out of fold), ``classifier_p: f64``,
        ``components_drifted: f64`` (share of principal components drifted),
        ``components_p: f64``, ``p_value: f64`` (the window's Bonferroni-combined p-value),
        ``p_adjusted: f64`` (Holm across tested windows), ``flagged: bool``. The statistics
        are null where a window was not tested or a method not run (the centroid shift is
        given for every window that has a reference, tested or not).
    params : dict
        The arguments, and the sampling caps and test designs used.
    summary : dict
        ``rows``, ``rows_without_time``, ``windows``, ``tested``, ``flagged``,
        ``first_flagged``, ``max_centroid_shift``, ``max_centroid_shift_at``, ``subsampled``
        (windows where a test used a subsample), ``mmd_p_floor`` (the smallest MMD p-value
        the permutations can give), ``reference``.
    """

    windows: pl.DataFrame
    params: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    #: What changed, per window start (tested windows whose raw p-value is at most alpha):
    #: ``clusters`` (a frame per reference cluster: reference_share, window_share, change,
    #: status emerging/vanishing/stable, shift_contribution, summing to 1), ``novel_share``
    #: (rows unlike any reference cluster; ~1 % without drift), ``keywords`` (words of what is
    #: new: ranked by their part of the KL divergence of the window's words from the
    #: reference's, each at least twice as frequent in the window, generic words left out),
    #: ``emerging_keywords`` ({cluster: words}, from the window's rows),
    #: ``vanishing_keywords`` ({cluster: words}, from the reference rows it held) and
    #: ``examples`` (id, text, score: the rows a domain classifier finds least like the
    #: reference), and ``source`` (which clustering).
    changes: dict[Any, dict[str, Any]] = field(default_factory=dict, repr=False)
    #: With ``group_by``: one row per (entity, window) holding its rows: ``entity``,
    #: ``start``, ``n``, ``n_reference`` (the entity's own reference rows), ``shift``
    #: (``1 - cos`` of the entity's mean vector in the window and in its reference; null
    #: where either side has fewer than ``min_entity_rows``). None without ``group_by``.
    entities: pl.DataFrame | None = field(default=None, repr=False)

    def moved_most(self, n: int = 10) -> pl.DataFrame:
        """The `n` entities whose interest moved most (largest shift, where, latest shift).

        Needs ``group_by``.
        """
        if self.entities is None:
            raise InvalidInputError("moved_most: this result was computed without group_by")
        n = check_positive_int(n, name="n")
        e = self.entities.filter(pl.col("shift").is_not_null())
        return (e.sort("start").group_by("entity", maintain_order=True)
                .agg(max_shift=pl.col("shift").max(),
                     at=pl.col("start").get(pl.col("shift").arg_max()),
                     latest_shift=pl.col("shift").last(), windows=pl.len())
                .sort("max_shift", descending=True).head(n))

    @property
    def flagged(self) -> list[Any]:
        """Starts of the flagged windows, in time order."""
        return self.windows.filter(pl.col("flagged")).get_column("start").to_list()

    def to_frame(self) -> pl.DataFrame:
        """The per-window table (:attr:`windows`)."""
        return self.windows

    def plot(self) -> Figure:
        """One panel per metric over time, flagged windows marked in red."""
        import matplotlib.pyplot as plt

        w = self.windows
        methods = self.params.get("methods", METHODS)
        panels = [(c, t, False) for m, c, t in (
            ("centroid", "centroid_shift", "centroid shift (1 - cos)"),
            ("mmd", "mmd2", "MMD²"), ("classifier", "auc", "classifier AUC"),
            ("components", "components_drifted", "share of components drifted"),
        ) if m in methods]
        if any(m in methods for m in TESTS):
            panels.append(("p_adjusted", "window p-value (Holm)", True))
        fig, axes = plt.subplots(len(panels), 1, figsize=(9, 1.9 * len(panels) + 0.4),
                                 sharex=True, squeeze=False)
        x = w.get_column("start").to_list()
        flag = w.get_column("flagged").to_list()
        fx = [xi for xi, f in zip(x, flag, strict=True) if f]
        for ax, (col, title, log) in zip(axes[:, 0], panels, strict=True):
            y = [np.nan if v is None else v for v in w.get_column(col).to_list()]
            ax.plot(x, y, marker="o", ms=3, color="#4c78a8", lw=1.2)
            fy = [yi for yi, f in zip(y, flag, strict=True) if f]
            ax.scatter(fx, fy, color="#e45756", zorder=3, s=28, label="flagged")
            for xi in fx:
                ax.axvline(xi, color="#e45756", alpha=0.15, lw=4)
            if log:
                ax.set_yscale("log")
                ax.axhline(self.params.get("alpha", 0.05), color="#e45756", lw=1, ls="--")
            if col == "auc":
                ax.axhline(0.5, color="#888888", lw=1, ls=":")
            ax.set_title(title, fontsize=10, loc="left")
        if fx:
            axes[0, 0].legend(loc="upper left", frameon=False)
        axes[-1, 0].set_xlabel(self.params.get("time", "time"))
        fig.tight_layout()
        plt.close(fig)
        return fig


def _check_every(every: Any) -> str:
    if not isinstance(every, str) or not _EVERY.match(every.strip()):
        raise InvalidInputError(
            "every: expected a polars duration string such as '1d', '1w', '1mo', '3mo' or "
            f"'1y', got {every!r}"
        )
    return every.strip()


def _check_methods(methods: Any) -> tuple[str, ...]:
    if isinstance(methods, str):
        methods = (methods,)
    try:
        out = tuple(methods)
    except TypeError as exc:
        raise InvalidInputError(
            f"methods: expected a sequence of {list(METHODS)}, got {type(methods).__name__}"
        ) from exc
    if not out:
        raise EmptyInputError(f"methods: expected at least one of {list(METHODS)}, got none")
    for m in out:
        if m not in METHODS:
            raise InvalidInputError(f"methods: expected items of {list(METHODS)}, got {m!r}")
    return tuple(dict.fromkeys(out))


def _check_alpha(alpha: Any) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, int | float | np.floating) or not (
            0.0 < float(alpha) < 1.0):
        raise InvalidInputError(f"alpha: expected a number in (0, 1), got {alpha!r}")
    return float(alpha)


def _time_column(rows: pl.DataFrame, time: Any, time_format: str | None = None) -> pl.Series:
    """The column `time` as Date or Datetime: text is parsed (see :func:`parse_time`)."""
    if not isinstance(time, str) or time in ROW_COLUMNS:
        raise MissingColumnError(f"time: expected the name of a column, got {time!r}")
    meta = rows.drop(ROW_COLUMNS, strict=False)
    if time not in meta.columns:  # the default "timestamp" is often not the store's name
        dated = [c for c, t in meta.schema.items()
                 if t in (pl.Date, pl.Utf8) or isinstance(t, pl.Datetime)]
        raise MissingColumnError(
            f"time: expected the name of the store's time column, got {time!r} (the default "
            f"is 'timestamp'), which the store does not have; pass time= one of its Date, "
            f"Datetime or text columns {dated} (all columns: {meta.columns})")
    col = check_column(meta, time, name="time")
    if col.dtype == pl.Utf8:
        return parse_time(col, time_format)
    if not (col.dtype == pl.Date or isinstance(col.dtype, pl.Datetime)):
        raise InvalidInputError(
            f"time: expected a Date or Datetime column (or text of dates), got {time!r} of "
            f"type {col.dtype}"
        )
    return col


def _check_time_format(time_format: Any) -> str | None:
    if time_format is not None and (not isinstance(time_format, str) or "%" not in time_format):
        raise InvalidInputError(
            "time_format: expected None or a strftime format such as '%d/%m/%Y' or "
            f"'%Y-%m-%d %H:%M', got {time_format!r}")
    return time_format


def parse_time(col: pl.Series, time_format: str | None, *,
               option: str = "time_format") -> pl.Series:
    """A text time column as Date (no time of day) or Datetime.

    Without `time_format`, every non-empty value must be ISO 8601 (``2025-10-01``,
    ``2025-10-01 12:30``, ``2025-10-01T12:30:00Z``); with it, polars parses by the format.
    Empty strings count as nulls. `option` is how errors name the format's setting (the
    command line passes ``"--time-format"``).

    Raises
    ------
    InvalidInputError
        A value does not parse: one such value, and what to pass.
    """
    name = col.name
    s = col.str.strip_chars()
    s = pl.select(pl.when(s.str.len_chars() > 0).then(s)).to_series().alias(name)
    values = s.drop_nulls()
    setting = f"{option}=" if option.isidentifier() else f"{option} "
    how = f"with {setting}{time_format!r}" if time_format else "as ISO 8601 dates"
    hint = (f"; pass {setting.strip()} with the values' layout (e.g. {setting}'%d/%m/%Y' or "
            "'%m/%d/%Y %H:%M')" if time_format is None else
            f"; check {setting.strip()} against the values' layout (e.g. '%d/%m/%Y')")
    if values.len() == 0:
        return s.cast(pl.Date)  # all null: every row is left out as without a time
    if time_format is None:
        bad = values.filter(~values.str.contains(_ISO.pattern))
        if bad.len():
            raise InvalidInputError(
                f"time: column {name!r} holds text that does not parse {how}, such as "
                f"{bad[0]!r}{hint}")
        to_date = bool(values.str.contains(_ISO_DATE.pattern).all())
    else:
        to_date = not any(d in time_format for d in _TIME_OF_DAY)
    try:
        got = (s.str.to_date(time_format or "%Y-%m-%d", strict=False) if to_date
               else s.str.to_datetime(time_format, time_unit="us", strict=False))
    except pl.exceptions.PolarsError as exc:
        raise InvalidInputError(
            f"{option}: cannot parse column {name!r} with {time_format!r}: {exc}") from exc
    failed = s.filter(got.is_null() & s.is_not_null())
    if failed.len():
        raise InvalidInputError(
            f"time: column {name!r} holds text that does not parse {how}, such as "
            f"{failed[0]!r}{hint}")
    return got.alias(name)


def _reference_rule(reference: Any) -> tuple[str, Any]:
    """("first" | "previous" | "rolling" | "range", argument)."""
    if isinstance(reference, str):
        if reference in ("first", "previous"):
            return reference, None
        m = _ROLLING.match(reference.strip())
        if m and int(m.group(1)) > 0:
            return "rolling", int(m.group(1))
    elif isinstance(reference, Sequence) and len(reference) == 2 and all(
            isinstance(v, date) for v in reference):
        lo, hi = reference
        if isinstance(lo, datetime) != isinstance(hi, datetime):
            raise InvalidInputError(
                f"reference: expected two dates or two datetimes, got {reference!r}")
        if not lo < hi:
            raise InvalidInputError(
                f"reference: expected (start, end) with start < end, got {reference!r}")
        return "range", (lo, hi)
    raise InvalidInputError(
        "reference: expected 'first', 'previous', 'rolling:N' (N > 0) or a (start, end) pair "
        f"of dates or datetimes, got {reference!r}"
    )


def compute_drift(
    store: Store,
    *,
    time: str = "timestamp",
    time_format: str | None = None,
    every: str = "1mo",
    reference: str | tuple[date, date] = "first",
    methods: Sequence[str] = METHODS,
    where: pl.Expr | None = None,
    alpha: float = 0.05,
    min_rows: int = 50,
    n_permutations: int | None = None,
    random_state: int = 0,
    text: str | None = "text",
    clusters: ClusterResult | None = None,
    n_clusters: int = 20,
    changes: bool = True,
    group_by: str | None = None,
    min_entity_rows: int = 5,
    progress: bool = True,
) -> DriftResult:
    """Drift of the store's embeddings over time, window by window.

    Rows are grouped by their time column truncated to `every` (calendar windows ``[start,
    end)``; only windows holding rows appear) and each window is compared with its
    `reference`. Per window: the centroid shift (``1 - cos`` of the mean vectors, no test)
    and, per method in `methods`:

    - ``"mmd"``: MMD² of Gaussian kernels at 0.5, 1 and 2 times the median pairwise distance,
      with random Fourier features (1024 per bandwidth), aggregated over bandwidths by the
      permutation-calibrated minimum p-value (MMDAgg). A permutation test has exact level for
      any statistic when window and reference come from one distribution, so the
      approximation affects power, never calibration. MMD² is taken over all rows (sums of
      random features, which add up segment by segment); the permutations split a seeded
      subsample of at most 20,000 rows per side.
    - ``"classifier"``: a logistic regression telling window from reference; ``auc`` is its
      5-fold out-of-fold ROC-AUC, the p-value a one-sided Mann-Whitney test on scores of a
      held-out half (held-out scores are independent given the model, so the level holds;
      out-of-fold scores are not, and over-reject). At most 10,000 rows per side.
    - ``"components"``: a KS test per principal component (up to 20, fitted on both sides
      pooled, which keeps the level; a reference-only fit over-rejects), Benjamini-Hochberg
      for the share drifted, Bonferroni minimum p-value for the method. At most 20,000 rows
      per side.

    **Flag rule.** A window's p-value is the Bonferroni combination of its methods' p-values,
    ``min(1, k * min p)`` over the ``k`` tests run (the centroid shift takes no part), valid
    for any dependence between methods. These are Holm-corrected across the tested windows,
    and a window is flagged when its adjusted p-value is at most `alpha`: the chance of
    flagging any window when nothing drifted is at most `alpha`.

    Parameters
    ----------
    store : Store
        The store (read from one snapshot; nothing is written).
    time : str, default "timestamp"
        A Date or Datetime metadata column, or a text one (a CSV ingested as text) parsed as
        dates for this run (see `time_format`); rows where it is null are left out.
    time_format : str, optional
        For a text `time` column: the values' strftime layout (``"%d/%m/%Y"``,
        ``"%Y-%m-%d %H:%M"``); parsed to Date when it has no time of day, else Datetime.
        Default: ISO 8601 (``2025-10-01``, ``2025-10-01 12:30``, ``2025-10-01T12:30:00Z``)
        and nothing else, since ``03/01/2025`` reads either way round. Empty strings count
        as nulls; a `where` sees the parsed column. Unused for a Date/Datetime column.
    every : str, default "1mo"
        Window length, a polars duration string (``"1d"``, ``"1w"``, ``"1mo"``, ``"3mo"``,
        ``"1y"``, ...), calendar-aligned as ``dt.truncate`` aligns it.
    reference : {"first", "previous", "rolling:N"} or (start, end), default "first"
        The first window; each window's previous one; the N previous windows pooled (as many
        as exist); or the rows with ``start <= time < end`` (dates or datetimes).
    methods : sequence of {"centroid", "mmd", "classifier", "components"}
    where : polars.Expr, optional
        Restricts both windows and references to matching rows.
    alpha : float, default 0.05
        Level of the flag rule and of a component counting as drifted.
    min_rows : int, default 50
        Rows both a window and its reference need to be tested (at least 10); otherwise the
        window's status is ``"too few rows"`` and its p-values are null.
    n_permutations : int, optional
        Permutations of the MMD test. Its smallest p-value is ``1 / (1 + B)``, and a window
        is flagged only below ``alpha / (k * W)`` (``k`` tests, ``W`` tested windows:
        Bonferroni, then Holm's first step), so the default adapts: ``B = max(200,
        ceil(2 * k * W / alpha))`` (at most 5,000), which puts the floor at half that
        threshold and lets the MMD flag a window on its own. ``summary["mmd_p_floor"]``
        says where it stood.
    random_state : int, default 0
        Seed (non-negative); every window's tests draw from a generator seeded by it and the
        window's position, so the same arguments give the same p-values.
    text : str or None, default "text"
        Text column for the keywords and examples of what changed (skipped when absent).
    clusters : ClusterResult, optional
        Reference clusters for the cluster shares (its labels of the reference rows; rows it
        does not cover are assigned to the nearest of its centroids). Default: k-means with
        `n_clusters` on each reference.
    n_clusters : int, default 20
    changes : bool, default True
        Work out what changed (:attr:`DriftResult.changes`) in each tested window whose raw
        p-value is at most `alpha`.
    group_by : str, optional
        An entity column (a user, a source): each entity's mean vector per window is compared
        with the entity's own reference by the same rule (its first window, its previous
        one, its N previous ones pooled, or its rows in the range): interest drift, in
        :attr:`DriftResult.entities` and :meth:`DriftResult.moved_most`.
    min_entity_rows : int, default 5
        Rows an entity needs in a window and in its reference for a shift.
    progress : bool, default True
        Show a progress bar over windows.

    Returns
    -------
    DriftResult
        See its ``windows`` schema.

    Raises
    ------
    MissingColumnError
        `time` is not a column of the store.
    InvalidInputError
        `time` is neither a Date/Datetime column nor text that parses as dates (the message
        names a value that does not); `time_format`, `every`, `reference`, `methods`, `alpha`,
        `min_rows`, `n_permutations` or `random_state` is invalid.
    EmptyInputError
        The store (or `where`'s selection) has no rows with a time, or the `reference` range
        holds none.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> import workbench as wb
    >>> from workbench.analysis.drift import compute_drift
    >>> stream = wb.datasets.synthetic_stream(3_000, 16, drift_points=1, duplicate_groups=0)
    >>> store = wb.Store.create(pathlib.Path(tempfile.mkdtemp()) / "drift", dim=16)
    >>> _ = store.add(stream.frame, vectors=stream.vectors, progress=False)
    >>> res = compute_drift(store, every="1mo", reference="previous", progress=False)
    >>> stream.drift_times, res.flagged
    ([datetime.datetime(2025, 3, 2, 0, 0)], [datetime.datetime(2025, 3, 1, 0, 0)])
    >>> res.windows.select("start", "n", "status", "flagged").head(2)  # doctest: +ELLIPSIS
    shape: (2, 4)
    ...
    """
    plan = _prepare(store.view(), time=time, time_format=time_format, every=every,
                    reference=reference, methods=methods, where=where, alpha=alpha,
                    min_rows=min_rows, n_permutations=n_permutations,
                    random_state=random_state, text=text, clusters=clusters,
                    n_clusters=n_clusters, changes=changes, group_by=group_by,
                    min_entity_rows=min_entity_rows)
    spec, labels, draws, ent = run.designs(plan)
    view, rows = plan.view, plan.rows
    sums = run.sum_rows(lambda lo, hi: view.vectors(rows[lo:hi]), rows.height, labels, spec)
    return _result(plan, sums, draws, ent, progress=progress)


def _prepare(
    view: StoreView, *, time: Any, every: Any, reference: Any, methods: Any, where: Any,
    alpha: Any, min_rows: Any, n_permutations: Any, random_state: Any, text: Any,
    clusters: Any, n_clusters: Any, changes: Any, group_by: Any, min_entity_rows: Any,
    time_format: Any = None,
) -> run.Plan:
    """Check the arguments of :func:`compute_drift` and cut the selected rows into windows."""
    every = _check_every(every)
    time_format = _check_time_format(time_format)
    method_list = _check_methods(methods)
    alpha = _check_alpha(alpha)
    min_rows = check_positive_int(min_rows, name="min_rows")
    if min_rows < MIN_ROWS_FLOOR:
        raise InvalidInputError(
            f"min_rows: expected at least {MIN_ROWS_FLOOR} (the tests' folds need rows), "
            f"got {min_rows}")
    if n_permutations is not None:
        n_permutations = check_positive_int(n_permutations, name="n_permutations")
    n_clusters = check_positive_int(n_clusters, name="n_clusters")
    if clusters is not None and not isinstance(clusters, ClusterResult):
        raise InvalidInputError(
            f"clusters: expected a ClusterResult, got {type(clusters).__name__}")
    if isinstance(random_state, bool) or not isinstance(random_state, int | np.integer) or (
            random_state < 0):
        raise InvalidInputError(
            f"random_state: expected a non-negative integer, got {random_state!r}")
    rule, rule_arg = _reference_rule(reference)
    min_entity_rows = check_positive_int(min_entity_rows, name="min_entity_rows")

    live = view.rows()
    if group_by is not None:
        check_column(live.drop(ROW_COLUMNS, strict=False), group_by, name="group_by")
    tcol = _time_column(live, time, time_format)
    if tcol.dtype != live.schema[time]:  # parsed from text: `where` sees the dates
        live = live.with_columns(tcol)
    rows = live if where is None else filter_frame(live, where, what="store",
                                                   hidden=ROW_COLUMNS)
    if rows.height == 0:
        raise EmptyInputError("where: selects no rows" if where is not None
                              else "store: expected at least one row, the store is empty")
    n_all = rows.height
    rows = rows.filter(pl.col(time).is_not_null())
    if rows.height == 0:
        raise EmptyInputError(f"time: every selected row has a null {time!r}")
    win_start, win_end, members = _windows(rows, time, every)
    ref_rows = None if rule != "range" else _range_rows(rows, time, rule_arg, reference)
    plan = run.Plan(view=view, rows=rows, n_all=n_all, win_start=win_start, win_end=win_end,
                    members=members, ref_rows=ref_rows, rule=rule, rule_arg=rule_arg,
                    methods=method_list, alpha=alpha, min_rows=min_rows, n_permutations=0,
                    random_state=int(random_state),
                    args={"time": time, "time_format": time_format, "every": every,
                          "reference": reference,
                          "where": where, "text": text, "clusters": clusters,
                          "n_clusters": n_clusters, "changes": bool(changes),
                          "group_by": group_by, "min_entity_rows": min_entity_rows})
    if n_permutations is None:
        n_tested = sum(plan.tested(i) for i in range(plan.nw))
        need = math.ceil(2 * max(1, len(plan.tests)) * max(1, n_tested) / alpha)
        n_permutations = int(min(MAX_AUTO_PERMUTATIONS, max(DEFAULT_PERMUTATIONS, need)))
    plan.n_permutations = n_permutations
    return plan


def _result(plan: run.Plan, sums: run.Sums, draws: Any, ent: Any, *,
            progress: bool) -> DriftResult:
    """The :class:`DriftResult` of a plan whose sums are known (both paths)."""
    frame, subsampled, found_changes, entities = run.finish(plan, sums, draws, ent,
                                                            progress=progress)
    rows, a = plan.rows, plan.args
    tests = plan.tests
    shift = frame.filter(pl.col("centroid_shift").is_not_null())
    top = shift.sort("centroid_shift", descending=True).head(1)
    flagged_starts = frame.filter(pl.col("flagged")).get_column("start").to_list()
    summary = {
        "rows": plan.n_all,
        "rows_without_time": plan.n_all - rows.height,
        "windows": plan.nw,
        "tested": int((frame.get_column("status") == "tested").sum()),
        "flagged": len(flagged_starts),
        "first_flagged": flagged_starts[0] if flagged_starts else None,
        "max_centroid_shift": top.get_column("centroid_shift").item() if top.height else None,
        "max_centroid_shift_at": top.get_column("start").item() if top.height else None,
        "subsampled": subsampled,
        "mmd_p_floor": 1.0 / (1 + plan.n_permutations) if "mmd" in tests else None,
        "reference": plan.rule if plan.rule != "rolling" else f"rolling:{plan.rule_arg}",
    }
    text = a["text"]
    has_text = text is not None and text in rows.columns and rows.schema[text] in (
        pl.Utf8, pl.Categorical, pl.Enum)
    params = {
        "time": a["time"], "time_format": a.get("time_format"), "every": a["every"],
        "reference": a["reference"],
        "methods": plan.methods, "where": None if a["where"] is None else str(a["where"]),
        "alpha": plan.alpha, "min_rows": plan.min_rows,
        "n_permutations": plan.n_permutations, "random_state": plan.random_state,
        "text": text if has_text else None, "n_clusters": a["n_clusters"],
        "mmd_bandwidths": stats.BANDWIDTHS, "mmd_features": stats.N_FEATURES,
        "mmd_max_rows": stats.MMD_MAX_ROWS, "components_max_rows": stats.MMD_MAX_ROWS,
        "classifier_max_rows": stats.CLASSIFIER_MAX_ROWS, "classifier_p": "holdout",
        "components_fit": "pooled",
    }
    if entities is not None:
        params["group_by"] = a["group_by"]
        params["min_entity_rows"] = a["min_entity_rows"]
        summary["entities"] = int(entities.get_column("entity").n_unique())
    return DriftResult(windows=frame, params=params, summary=summary, changes=found_changes,
                       entities=entities)


def _windows(rows: pl.DataFrame, time: str, every: str,
             ) -> tuple[pl.Series, pl.Series, list[NDArray[np.int64]]]:
    """Starts and ends of the windows holding rows, in time order, and their row positions."""
    dtype = rows.schema[time]
    if dtype == pl.Date and not _DAYS.match(every):
        raise InvalidInputError(
            f"every: {time!r} is a Date column, so windows need whole days ('1d', '1w', "
            f"'1mo', '1q', '1y'), got {every!r}")
    try:
        starts = rows.get_column(time).dt.truncate(every)
        ends = starts.dt.offset_by(every)
    except pl.exceptions.PolarsError as exc:
        raise InvalidInputError(
            f"every: {every!r} cannot window the {dtype} column {time!r}: {exc}") from exc
    order = (pl.DataFrame({"start": starts, "end": ends})
             .with_row_index("_i")
             .group_by("start")
             .agg(pl.col("end").first(), pl.col("_i").sort())
             .sort("start"))
    members = [np.asarray(v, dtype=np.int64) for v in order.get_column("_i").to_list()]
    return order.get_column("start"), order.get_column("end"), members


def _range_rows(rows: pl.DataFrame, time: str, bounds: tuple[date, date],
                reference: Any) -> NDArray[np.int64]:
    """Positions of the rows with ``start <= time < end``."""
    lo, hi = bounds
    tcol = rows.get_column(time)
    try:
        mask = ((tcol >= lo) & (tcol < hi)).to_numpy()
    except (TypeError, pl.exceptions.PolarsError) as exc:
        raise InvalidInputError(
            f"reference: cannot compare {reference!r} with the {tcol.dtype} column "
            f"{time!r} (a time-zone-aware column needs aware bounds): {exc}") from exc
    found = np.flatnonzero(mask)
    if found.size == 0:
        raise EmptyInputError(
            f"reference: no selected row has {lo} <= {time} < {hi} (the data spans "
            f"{tcol.min()} to {tcol.max()})")
    return found
