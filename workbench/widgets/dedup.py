"""DedupReviewer: review a dedup run, re-threshold it from its pairs, label pairs."""

from __future__ import annotations

import difflib
import html
import math
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import numpy as np
import polars as pl
import traitlets

from ..analysis.dedup import DedupResult
from ..errors import InvalidInputError, WorkbenchError
from ._common import ExportBar, FrameTrait, error_html, esc, short_repr

if TYPE_CHECKING:
    from ..store import Store

_CSS = """<style>
.wb-dedup-summary{font-size:13px;margin:2px 0 4px}
.wb-dedup-summary .wb-dedup-groups{font-weight:600}
.wb-dedup-rule{color:#5b6675;font-size:11px}
.wb-dedup-side{display:flex;gap:10px;font-size:12px;line-height:1.4}
.wb-dedup-side>div{flex:1 1 0;min-width:0;border:1px solid #e3e7ed;padding:4px 6px;
  white-space:pre-wrap;overflow-wrap:anywhere}
.wb-dedup-side h4{margin:0 0 3px;font-size:12px;color:#5b6675;font-weight:600}
.wb-dedup-pair del{background:#fde2e1;color:#8a1c1c;text-decoration:line-through}
.wb-dedup-pair ins{background:#dcf5e3;color:#14532d;text-decoration:none}
.wb-dedup-empty{color:#5b6675;font-style:italic}
.wb-dedup-table td,.wb-dedup-table th{padding:1px 8px;text-align:left;font-size:12px;
  border-bottom:1px solid #e3e7ed}
</style>"""

#: Decisions' schema (``decided`` orders them: 1 for the first decision of the session).
DECISIONS_SCHEMA = {"key_a": pl.UInt64, "key_b": pl.UInt64, "id_a": pl.Utf8, "id_b": pl.Utf8,
                    "score": pl.Float32, "is_duplicate": pl.Boolean, "decided": pl.Int64}

#: Words of each text compared by the diff: difflib is quadratic in the worst case, and a
#: reviewer reads the start of a long document, not its 10,000th word.
DIFF_WORDS = 400

#: Characters of the representative's text in a group's label in the list.
LABEL_CHARS = 70

#: Histogram size (pixels) and bins.
HIST_WIDTH, HIST_HEIGHT, HIST_BINS = 420, 120, 50

#: Left margin of the histogram's plot (its y-axis title) and of the slider's track under it,
#: so that a score on the slider sits under the same score on the histogram.
HIST_LEFT = 28
#: A FloatSlider (ipywidgets 8, no description) in JupyterLab: its track starts this far in
#: from the widget's left edge, and the widget is this much wider than its track (the readout
#: and the handle's room), in px; measured in Chromium.
SLIDER_INSET, SLIDER_EXTRA = 4, 88


def word_diff(a: str, b: str, *, max_words: int = DIFF_WORDS) -> tuple[str, str]:
    """Word-level diff of two texts as two HTML fragments, every word escaped.

    Words (whitespace-separated) are matched with :class:`difflib.SequenceMatcher`; words only
    in `a` are wrapped in ``<del>``, words only in `b` in ``<ins>``. Each word is escaped
    before any markup is added, so text such as ``<img src=x onerror=...>`` shows literally.

    Parameters
    ----------
    a, b : str
        The representative's text and a member's.
    max_words : int
        Words of each text compared and shown (the rest is cut, with an ellipsis).

    Returns
    -------
    tuple of str
        HTML of `a` with deletions marked, HTML of `b` with insertions marked.

    Examples
    --------
    >>> word_diff("the <b>cat</b> sat", "the dog sat")
    ('the <del>&lt;b&gt;cat&lt;/b&gt;</del> sat', 'the <ins>dog</ins> sat')
    """
    wa, wb = a.split(), b.split()
    cut_a, cut_b = len(wa) > max_words, len(wb) > max_words
    wa, wb = wa[:max_words], wb[:max_words]
    left: list[str] = []
    right: list[str] = []
    matcher = difflib.SequenceMatcher(None, wa, wb, autojunk=False)
    for op, i0, i1, j0, j1 in matcher.get_opcodes():
        sa = " ".join(html.escape(w) for w in wa[i0:i1])
        sb = " ".join(html.escape(w) for w in wb[j0:j1])
        if op == "equal":
            left.append(sa)
            right.append(sb)
            continue
        if sa:
            left.append(f"<del>{sa}</del>")
        if sb:
            right.append(f"<ins>{sb}</ins>")
    return " ".join(left) + (" …" if cut_a else ""), " ".join(right) + (" …" if cut_b else "")


def _histogram_svg(counts: np.ndarray, lo: float, hi: float, threshold: float) -> str:
    """Inline SVG of pair-score counts (log height) with the threshold line."""
    w, h, pad = HIST_WIDTH, HIST_HEIGHT, 18
    span = (hi - lo) or 1.0

    def x(v: float) -> float:
        return (min(max(v, lo), hi) - lo) / span * w

    top = float(np.log1p(counts.max())) if counts.size else 0.0
    heights = np.log1p(counts) / (top or 1.0)
    bw = w / max(counts.size, 1)
    bars = []
    for i, v in enumerate(heights):
        if not counts[i]:
            continue
        passing = lo + (i + 0.5) / counts.size * span >= threshold
        bars.append(f"<rect x='{i * bw:.1f}' y='{(1 - v) * h:.1f}' width='{max(bw - 1, 1):.1f}' "
                    f"height='{v * h:.1f}' fill='{'#e45756' if passing else '#72b7b2'}'>"
                    f"<title>{counts[i]} pairs</title></rect>")
    tx = x(threshold)
    # the threshold's label (~100 px) is kept inside the plot; the axis ends (~35 px) are
    # labelled where it leaves room
    anchor, span = (("start", (tx, tx + 100)) if tx < 50 else
                    ("end", (tx - 100, tx)) if tx > w - 50 else ("middle", (tx - 50, tx + 50)))
    ends = "".join(
        f"<text x='{ex}' y='{h + 13}' font-size='11' fill='#5b6675' text-anchor='{side}'>"
        f"{v:.3f}</text>"
        for ex, side, v, free in ((0, "start", lo, span[0] > 40),
                                  (w, "end", hi, span[1] < w - 40)) if free
    )
    titles = (
        f"<text class='wb-dedup-hist-xtitle' x='{w / 2:.0f}' y='{h + 28}' font-size='11' "
        f"fill='#3d4653' text-anchor='middle'>pair score (candidate pairs)</text>"
        f"<text class='wb-dedup-hist-ytitle' transform='translate({-HIST_LEFT + 11},{h / 2:.0f}) "
        f"rotate(-90)' font-size='11' fill='#3d4653' text-anchor='middle'>pairs (log)</text>")
    return (
        f"<svg class='wb-dedup-hist' width='{w + HIST_LEFT + 4}' height='{h + pad + 16}' "
        f"viewBox='{-HIST_LEFT - 2} -2 {w + HIST_LEFT + 6} {h + pad + 16}' "
        f"xmlns='http://www.w3.org/2000/svg'>{titles}"
        f"<line x1='0' y1='0' x2='0' y2='{h}' stroke='#8a94a3'/>"
        f"<line x1='0' y1='{h}' x2='{w}' y2='{h}' stroke='#8a94a3'/>{''.join(bars)}"
        f"<line class='wb-dedup-hist-threshold' x1='{tx:.1f}' y1='0' x2='{tx:.1f}' y2='{h}' "
        f"stroke='#b00020' stroke-width='2' data-threshold='{threshold:.4f}'/>{ends}"
        f"<text x='{tx:.1f}' y='{h + 13}' font-size='11' fill='#b00020' "
        f"text-anchor='{anchor}'>threshold {threshold:.3f}</text></svg>"
    )


class DedupReviewer(widgets.VBox):
    """Review a :class:`~workbench.analysis.DedupResult` and label its pairs.

    A histogram of the candidate pair scores (log counts; the pairs passing the threshold in
    red) and a threshold slider: releasing it re-groups the *original* result's pairs at the
    new threshold (one :meth:`DedupResult.regroup` call, no search) into :attr:`result`.
    Below, the groups by size (largest first, at most `max_groups`) and, for the selected
    group, its representative beside one member with a word-level diff (deleted words struck
    out, inserted words highlighted; all text escaped), the group's members with their scores
    and decisions, and buttons that label the shown pair, or every member of the group
    against its representative, a duplicate or not.

    The view state is in traits (``threshold``, ``group``, ``member``, ``status``); set them,
    or call :meth:`accept`, :meth:`reject`, :meth:`accept_group`, :meth:`reject_group`, to
    drive it from code or tests (``threshold`` is clamped to the slider's range, as the slider
    clamps). Decisions are labels: they do not change the groups.

    Going back to code::

        cal = wb.calibrate_threshold(reviewer.result, reviewer.decisions)
        reviewer.threshold = cal.best_threshold   # re-group at the calibrated threshold
        wb.apply_dedup(store, reviewer.result)    # write dup_group, is_duplicate, ...

    Parameters
    ----------
    result : DedupResult
        The dedup run (from :func:`~workbench.analysis.find_duplicates`).
    store : Store, optional
        The store it ran on, for the texts (read with :meth:`Store.get` for the groups shown,
        then cached). Without it, or without a text column, ids and scores only are shown.
    text : str, optional
        Text column; default ``result.info["text"]`` (the column the dedup compared).
    max_groups : int
        Most groups listed (the largest ones).

    Attributes
    ----------
    result : DedupResult
        The result at the slider's threshold (`original` until the slider moves).
    original : DedupResult
        The result given; every re-grouping starts from its pairs.
    decisions : polars.DataFrame
        ``key_a: u64 (< key_b), key_b: u64, id_a: str, id_b: str, score: f32,
        is_duplicate: bool, decided: i64`` (decision order, from 1). One row per pair: a
        pair decided again keeps its latest decision. Every pair is a candidate pair of the
        result (a member with its representative), so the frame feeds
        :func:`~workbench.analysis.calibrate_threshold` as it is.
    slider : ipywidgets.FloatSlider
        The threshold control, from the lowest score the result kept pairs at (or the lowest
        pair score) up to 1.

    Raises
    ------
    InvalidInputError
        `result` is not a DedupResult, or `max_groups` is not an integer >= 1.

    Examples
    --------
    >>> result = wb.find_duplicates(store, method="cosine")      # doctest: +SKIP
    >>> reviewer = wb.widgets.DedupReviewer(result, store)      # doctest: +SKIP
    >>> reviewer                                                # doctest: +SKIP
    """

    threshold = traitlets.Float(0.0)
    group = traitlets.Int(-1)
    member = traitlets.Int(-1)
    status = traitlets.Unicode("")
    decisions = FrameTrait(None)

    def __init__(self, result: DedupResult, store: Store | None = None, *,
                 text: str | None = None, max_groups: int = 200) -> None:
        if not isinstance(result, DedupResult):
            raise InvalidInputError(f"result: expected a DedupResult, got "
                                    f"{type(result).__name__}")
        if isinstance(max_groups, bool) or not isinstance(max_groups, int) or max_groups < 1:
            raise InvalidInputError(f"max_groups: expected an integer >= 1, got {max_groups!r}")
        self.original = result
        self.result = result
        self.store = store
        self.text_column = text if text is not None else result.info.get("text")
        self.max_groups = max_groups
        self._texts: dict[str, str] = {}
        self._counter = 0
        self._busy = False  # set while the lists are rebuilt: one render afterwards
        self._shown = pl.DataFrame(schema={"group": pl.Int64, "rep_key": pl.UInt64})
        self._pairs = result.pairs.select("key_a", "key_b", "id_a", "id_b", "score")
        scores = self._pairs.get_column("score").to_numpy()
        self._floor = float(result.floor)
        if self._floor > 0:
            lo = math.ceil(round(self._floor * 1000, 6)) / 1000
        else:
            lo = math.floor(float(scores.min()) * 1000) / 1000 if scores.size else 0.0
        lo = min(max(min(lo, result.threshold), 0.001), 0.99)
        self._hist_range = (lo, 1.0)
        self._counts = np.histogram(scores, bins=HIST_BINS, range=self._hist_range)[0]
        self.decisions = pl.DataFrame(schema=DECISIONS_SCHEMA)

        # Under the histogram, its track spanning the histogram's x axis (checked in a real
        # JupyterLab by tests/browser/test_dedup_reviewer_browser.py): the margin puts the
        # track's start under the plot's origin, the readout sits past the axis' end.
        self.slider = widgets.FloatSlider(
            value=result.threshold, min=lo, max=1.0, step=0.001, readout_format=".3f",
            continuous_update=False, description="",
            layout=widgets.Layout(width=f"{HIST_WIDTH + SLIDER_EXTRA}px",
                                  margin=f"0 0 0 {HIST_LEFT + 2 - SLIDER_INSET}px"))
        self.slider.add_class("wb-dedup-threshold")
        self.threshold = float(self.slider.value)
        self._summary = widgets.HTML()
        self._summary.add_class("wb-dedup-summary")
        self._hist = widgets.HTML()
        self._hist.add_class("wb-dedup-histogram")
        # Select and Dropdown labels are set as text (the option's textContent): they stay
        # plain text, escaping them would show "&lt;" literally.
        self._groups = widgets.Select(options=[], rows=14,
                                      layout=widgets.Layout(width="98%", min_width="0"))
        self._groups.add_class("wb-dedup-group-list")
        self._members = widgets.Dropdown(options=[], description="member",
                                         style={"description_width": "initial"},
                                         layout=widgets.Layout(width="100%"))
        self._members.add_class("wb-dedup-member")
        self._pair = widgets.HTML()
        self._pair.add_class("wb-dedup-pair")
        self._table = widgets.HTML()
        self._table.add_class("wb-dedup-members")
        self._status = widgets.HTML()
        self._status.add_class("wb-dedup-status")
        self._buttons: dict[str, widgets.Button] = {}
        # what the label says, not a verb about an unknown proposal ("Accept" what?)
        for name, label, style, action, tip in (
            ("accept", "Duplicate", "success", self.accept,
             "this member is a duplicate of the representative"),
            ("reject", "Not duplicate", "danger", self.reject,
             "this member is not a duplicate of the representative"),
            ("accept-group", "Whole group: duplicates", "", self.accept_group,
             "every member of the group is a duplicate of the representative"),
            ("reject-group", "Whole group: not duplicates", "", self.reject_group,
             "no member of the group is a duplicate of the representative"),
        ):
            b = widgets.Button(description=label, button_style=style, tooltip=tip,
                               layout=widgets.Layout(width="auto"))
            b.add_class(f"wb-dedup-{name}")
            b.on_click(lambda _, act=action: act())
            self._buttons[name] = b

        none_is = (lambda v: -1 if v is None else int(v), lambda v: None if v < 0 else v)
        traitlets.link((self.slider, "value"), (self, "threshold"))
        traitlets.link((self._groups, "value"), (self, "group"), transform=none_is)
        traitlets.link((self._members, "value"), (self, "member"), transform=none_is)
        self.observe(self._on_threshold, names="threshold")
        self.observe(self._on_group, names="group")
        self.observe(self._on_member, names="member")
        self._refresh()

        left = widgets.VBox([widgets.HTML("<b>Groups</b> (largest first)"), self._groups],
                            layout=widgets.Layout(width="36%", overflow="hidden"))
        right = widgets.VBox([self._members, self._pair,
                              widgets.HBox(list(self._buttons.values())), self._table,
                              self._status], layout=widgets.Layout(width="64%"))
        self.export = ExportBar(lambda: self.rows, name="duplicate_groups")
        super().__init__([
            widgets.HTML(_CSS),
            self._summary,
            widgets.VBox([self._hist, self.slider],
                         layout=widgets.Layout(align_items="flex-start")),
            widgets.HBox([left, right]),
            self.export,
        ])
        self.add_class("wb-dedup-reviewer")

    def __repr__(self) -> str:
        s = self.result.summary
        return short_repr(self, f"{s['groups']:,} groups", f"{s['rows']:,} rows",
                          f"threshold {self.result.threshold:.3f}",
                          f"{self.decisions.height} decisions")

    @property
    def rows(self) -> pl.DataFrame:
        """The groups at the slider's threshold, with each member's decision.

        :attr:`DedupResult.groups` and ``is_duplicate: bool`` (null: undecided, and for the
        representatives); what the "Export" buttons save.
        """
        groups = self.result.groups
        if self.decisions.height == 0:
            return groups.with_columns(is_duplicate=pl.lit(None, dtype=pl.Boolean))
        reps = groups.filter(pl.col("is_representative")).select("group", rep=pl.col("key"))
        pairs = (groups.join(reps, on="group", how="left")
                 .with_columns(key_a=pl.min_horizontal("key", "rep"),
                               key_b=pl.max_horizontal("key", "rep")))
        d = self.decisions.select("key_a", "key_b", "is_duplicate")
        return (pairs.join(d, on=["key_a", "key_b"], how="left", maintain_order="left")
                .drop("rep", "key_a", "key_b"))

    @traitlets.validate("threshold")
    def _clamp(self, proposal: dict[str, Any]) -> float:
        # as the slider does: the result has no pairs below its minimum to re-group
        value = float(proposal["value"])
        slider = getattr(self, "slider", None)
        return value if slider is None else min(max(value, slider.min), slider.max)

    # ------------------------------------------------------------------ actions
    def regroup(self, threshold: float) -> DedupResult | None:
        """Group the original result's pairs at `threshold`: one :meth:`DedupResult.regroup`.

        Errors are shown in the status line, not raised; the previous groups stay.
        """
        # the slider's float steps can land a hair below the floor it starts at
        if self._floor - 1e-6 < threshold < self._floor:
            threshold = self._floor
        try:
            new = self.original.regroup(threshold)
        except WorkbenchError as exc:
            self._show_status(f"Error: {exc}", error=True)
            return None
        self.result = new
        self._refresh()
        if new.summary["groups"]:
            n = new.summary["groups"]
            self._show_status(f"Re-grouped at threshold {new.threshold:.3f}: {n} "
                              f"group{'' if n == 1 else 's'}.")
        return new

    def accept(self, member: int | None = None) -> int:
        """Label a member and its representative a duplicate, then show the next member.

        Parameters
        ----------
        member : int, optional
            The member's key; default: the shown member (``member`` trait).

        Returns
        -------
        int
            Pairs labelled: 0 when the member has no candidate pair with its representative.
        """
        return self._decide(*self._member_target(member), True, advance=True)

    def reject(self, member: int | None = None) -> int:
        """Label a member and its representative not a duplicate (see :meth:`accept`)."""
        return self._decide(*self._member_target(member), False, advance=True)

    def accept_group(self, group: int | None = None) -> int:
        """Label every member of a group a duplicate of its representative.

        Parameters
        ----------
        group : int, optional
            The group number; default: the selected group (``group`` trait).

        Returns
        -------
        int
            Pairs labelled. Members without a candidate pair with the representative are
            skipped: exact duplicates the search did not pair, components' chained members.
        """
        return self._decide(*self._group_target(group), True)

    def reject_group(self, group: int | None = None) -> int:
        """Label every member of a group not a duplicate (see :meth:`accept_group`)."""
        return self._decide(*self._group_target(group), False)

    # ------------------------------------------------------------------ decisions
    def _member_target(self, member: int | None) -> tuple[int, list[int]]:
        m = self.member if member is None else int(member)
        hit = self.result.groups.filter((pl.col("key") == m) & ~pl.col("is_representative"))
        return (int(hit["group"][0]), [m]) if hit.height else (-1, [])

    def _group_target(self, group: int | None) -> tuple[int, list[int]]:
        g = self.group if group is None else int(group)
        rows = self._group_rows(g).filter(~pl.col("is_representative"))
        return g, rows.get_column("key").to_list()

    def _decide(self, group: int, keys: list[int], verdict: bool, *,
                advance: bool = False) -> int:
        rows = self._group_rows(group)
        if rows.height == 0 or not keys:
            self._show_status("Select a group and a member first.")
            return 0
        rep = int(rows["key"][0])  # groups are sorted representative first
        # Only member-representative pairs that are candidate pairs can be labelled (and
        # calibrated on): members joined by exact text or, in components, through a chain
        # have none.
        wanted = pl.DataFrame({"key_a": [min(k, rep) for k in keys],
                               "key_b": [max(k, rep) for k in keys]},
                              schema={"key_a": pl.UInt64, "key_b": pl.UInt64})
        found = wanted.join(self._pairs, on=["key_a", "key_b"], how="inner",
                            maintain_order="left")
        n = found.height
        order = np.arange(self._counter + 1, self._counter + n + 1, dtype=np.int64)
        self._counter += n
        new = found.with_columns(is_duplicate=pl.lit(verdict),
                                 decided=pl.Series(order)).select(list(DECISIONS_SCHEMA))
        old = self.decisions.join(new.select("key_a", "key_b"), on=["key_a", "key_b"],
                                  how="anti")
        self.decisions = pl.concat([old, new.cast(DECISIONS_SCHEMA)]).sort("decided")
        msg = f"{n} pair{'' if n == 1 else 's'} labelled {'' if verdict else 'not '}duplicate"
        if n < len(keys):
            msg += f"; {len(keys) - n} skipped (no candidate pair with the representative)"
        total = self.decisions.height
        self._show_status(msg + f"; {total} decision{'' if total == 1 else 's'} in all")
        self._render_summary()
        self._render_members(keep=True)
        if advance and n:
            values = [v for _, v in self._members.options]
            i = values.index(keys[0]) if keys[0] in values else -1
            if 0 <= i < len(values) - 1:
                self.member = values[i + 1]
        return n

    # ------------------------------------------------------------------ rendering
    def _show_status(self, text: str, *, error: bool = False) -> None:
        self.status = text
        self._status.value = error_html(text) if error else esc(text, 600)

    def _on_threshold(self, change: dict[str, Any]) -> None:
        if change["new"] != self.result.threshold:
            self.regroup(change["new"])

    def _on_group(self, change: dict[str, Any]) -> None:
        if not self._busy:
            self._render_members(keep=False)

    def _on_member(self, change: dict[str, Any]) -> None:
        if not self._busy:
            self._render_pair()

    def _group_rows(self, group: int) -> pl.DataFrame:
        return self.result.groups.filter(pl.col("group") == group)

    def _text_of(self, ids: list[str]) -> dict[str, str] | None:
        """Texts of `ids` (read from the store once, then cached), or None without texts."""
        if self.store is None or not self.text_column:
            return None
        missing = [i for i in dict.fromkeys(ids) if i not in self._texts]
        if missing:
            try:
                frame = self.store.get(missing)
            except WorkbenchError as exc:
                self._show_status(f"Error reading texts: {exc}", error=True)
                return None
            if self.text_column not in frame.columns:
                return None
            for i, t in frame.select("id", self.text_column).iter_rows():
                self._texts[str(i)] = "" if t is None else str(t)
        return {i: self._texts.get(i, "") for i in ids}

    def _render_summary(self) -> None:
        r, s = self.result, self.result.summary
        more = (f" (the largest {self._shown.height} listed)"
                if s["groups"] > self._shown.height else "")
        self._summary.value = (
            f"<span class='wb-dedup-groups'>{s['groups']}</span> groups{more} · "
            f"<span class='wb-dedup-duplicates'>{s['duplicates']}</span> duplicates of "
            f"{s['rows']:,} rows ({s['share']:.1%}) · threshold {r.threshold:.3f} · "
            f"{s['passing_pairs']:,} of {s['pairs']:,} candidate pairs pass · "
            f"<span class='wb-dedup-decided'>{self.decisions.height}</span> "
            f"decision{'' if self.decisions.height == 1 else 's'}"
            f"<div class='wb-dedup-rule'>{esc(r.method)} score, {esc(r.grouping)} grouping; "
            f"threshold rule: {esc(r.threshold_rule, 300)}</div>"
        )

    def _refresh(self) -> None:
        """Histogram, group list and summary of :attr:`result` (after a re-grouping)."""
        r = self.result
        self._hist.value = _histogram_svg(self._counts, *self._hist_range, r.threshold)
        shown = (r.groups.group_by("group", maintain_order=True)
                 .agg(size=pl.len(), rep_key=pl.col("key").first(), rep=pl.col("id").first())
                 .sort(["size", "group"], descending=[True, False])
                 .head(self.max_groups))
        texts = self._text_of(shown.get_column("rep").to_list()) if shown.height else None
        options = []
        for g, size, _, rep in shown.iter_rows():
            label = rep
            if texts is not None:
                t = " ".join(texts[rep].split())
                label = t if len(t) <= LABEL_CHARS else t[:LABEL_CHARS - 1] + "…"
            options.append((f"#{g} · {size} rows · {label}", g))
        # The group under review stays selected if its representative still heads a group
        # (group numbers change with the threshold).
        prev = self._shown.filter(pl.col("group") == self.group)
        prev_rep = int(prev["rep_key"][0]) if prev.height else -1
        self._shown = shown
        same = shown.filter(pl.col("rep_key") == prev_rep)
        self._busy = True
        try:
            self._groups.options = options
            self._groups.value = (int(same["group"][0]) if same.height
                                  else options[0][1] if options else None)
        finally:
            self._busy = False
        self._render_summary()
        self._render_members(keep=False)
        if r.summary["groups"] == 0:
            self._show_status(f"No duplicate groups at threshold {r.threshold:.3f}: lower it "
                              "to see more.")

    def _render_members(self, *, keep: bool) -> None:
        """The member dropdown and table of the selected group, then the pair."""
        rows = self._group_rows(self.group)
        for b in self._buttons.values():
            b.disabled = rows.height == 0
        decided = self._decision_of(rows)
        options, cells = [], []
        for key, id_, is_rep, score, exact in rows.select(
                "key", "id", "is_representative", "score_to_representative",
                "exact").iter_rows():
            mark = decided.get(key, "")
            sc = "–" if score is None else f"{score:.3f}"
            if not is_rep:
                options.append((f"{id_} · {sc}{' · exact' if exact else ''}"
                                f"{' · ' + mark if mark else ''}", key))
            role = "representative" if is_rep else ("exact" if exact else "member")
            cells.append(f"<tr><td>{esc(id_, 80)}</td><td>{role}</td><td>{sc}</td>"
                         f"<td>{mark}</td></tr>")
        self._table.value = (
            "<table class='wb-dedup-table'><thead><tr><th>id</th><th>role</th><th>score</th>"
            "<th>decision</th></tr></thead><tbody>" + "".join(cells) + "</tbody></table>"
            if cells else "")
        values = [v for _, v in options]
        current = self.member
        self._busy = True
        try:
            self._members.options = options
            self._members.value = (current if keep and current in values
                                   else values[0] if values else None)
        finally:
            self._busy = False
        self._render_pair()

    def _decision_of(self, rows: pl.DataFrame) -> dict[int, str]:
        """Each decided member of the group `rows`: ``"duplicate"`` / ``"not duplicate"``."""
        if self.decisions.height == 0 or rows.height == 0:
            return {}
        rep = int(rows["key"][0])
        d = self.decisions.filter((pl.col("key_a") == rep) | (pl.col("key_b") == rep))
        return {kb if ka == rep else ka: "duplicate" if dup else "not duplicate"
                for ka, kb, dup in d.select("key_a", "key_b", "is_duplicate").iter_rows()}

    def _render_pair(self) -> None:
        """The representative beside the shown member, with the word diff."""
        rows = self._group_rows(self.group)
        mem = rows.filter((pl.col("key") == self.member) & ~pl.col("is_representative"))
        if mem.height == 0:
            msg = ("No duplicate groups at this threshold." if rows.height == 0
                   else "No member selected.")
            self._pair.value = f"<div class='wb-dedup-empty'>{msg}</div>"
            return
        rep, m = rows.row(0, named=True), mem.row(0, named=True)
        texts = self._text_of([rep["id"], m["id"]])
        sc = m["score_to_representative"]
        head = (f"score {sc:.3f}" if sc is not None else "no direct pair") + (
            " · exact duplicate" if m["exact"] else "")
        if texts is None:
            a = b = "<span class='wb-dedup-empty'>(no text)</span>"
        else:
            a, b = word_diff(texts[rep["id"]], texts[m["id"]])
        self._pair.value = (
            f"<div class='wb-dedup-rule'>{head}</div><div class='wb-dedup-side'>"
            f"<div><h4>representative {esc(rep['id'], 80)}</h4>{a}</div>"
            f"<div><h4>member {esc(m['id'], 80)}</h4>{b}</div></div>"
        )
