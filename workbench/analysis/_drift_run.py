"""The stages of :func:`workbench.analysis.drift.compute_drift`, shared with its Ray twin.

1. :func:`designs` (driver): per tested window, the seeded subsample positions of each test and
   the MMD feature map (bandwidths from at most 1,000 gathered rows), plus the per-row labels
   (window, range reference, entity cells) that say what each row adds to.
2. :func:`chunk_sums` (map): for a block of rows, vector sums and counts per window, random
   feature sums per (MMD design, window) and unit-vector sums per entity cell. Sums over
   disjoint blocks add up (:meth:`Sums.__add__`), so the single-machine path sums the
   selected rows block by block and the distributed one segment by segment, through this one
   function.
3. :func:`finish` (driver): centroid shift and MMD² from the sums; the permutation, classifier
   and component tests on their bounded seeded subsamples (only those rows gathered); what
   changed in flagged windows; Holm across windows; the entities' shifts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from . import _drift_stats as stats

if TYPE_CHECKING:
    from ..store.view import StoreView
    from .cluster import ClusterResult

#: The methods with a p-value (the centroid shift is a distance, not a test).
TESTS = ("mmd", "classifier", "components")
SCHEMA: dict[str, Any] = {
    "n": pl.UInt32, "n_reference": pl.UInt32, "status": pl.Utf8,
    "centroid_shift": pl.Float64, "mmd2": pl.Float64, "mmd_p": pl.Float64,
    "auc": pl.Float64, "classifier_p": pl.Float64, "components_drifted": pl.Float64,
    "components_p": pl.Float64, "p_value": pl.Float64, "p_adjusted": pl.Float64,
    "flagged": pl.Boolean,
}
#: Rows read per block on a single machine: (65,536 x 384) float32 is 100 MB.
BLOCK_ROWS = 65_536


@dataclass
class Plan:
    """A validated drift job: the selected rows, their windows and each window's reference.

    Groups of rows: window ``j`` is group ``j``; a (start, end) reference is group ``nw``.
    """

    view: StoreView
    rows: pl.DataFrame
    n_all: int
    win_start: pl.Series
    win_end: pl.Series
    members: list[NDArray[np.int64]]
    ref_rows: NDArray[np.int64] | None
    rule: str
    rule_arg: Any
    methods: tuple[str, ...]
    alpha: float
    min_rows: int
    n_permutations: int
    random_state: int
    args: dict[str, Any] = field(default_factory=dict)

    @property
    def nw(self) -> int:
        return len(self.members)

    @property
    def tests(self) -> list[str]:
        return [m for m in self.methods if m in TESTS]

    def refs(self, i: int) -> list[int] | None:
        """The groups pooled as window `i`'s reference, None if none (or `i` is it)."""
        if self.rule == "range":
            return [self.nw]
        if self.rule == "first":
            return None if i == 0 else [0]
        lo = max(0, i - (1 if self.rule == "previous" else self.rule_arg))
        return list(range(lo, i)) or None

    def positions(self, groups: list[int]) -> NDArray[np.int64]:
        """Row positions (in :attr:`rows`) of `groups`."""
        if groups == [self.nw]:
            assert self.ref_rows is not None
            return self.ref_rows
        return np.concatenate([self.members[j] for j in groups])

    def n_reference(self, i: int) -> int:
        g = self.refs(i)
        return 0 if g is None else int(self.positions(g).size)

    def tested(self, i: int) -> bool:
        return (self.refs(i) is not None
                and min(self.members[i].size, self.n_reference(i)) >= self.min_rows)

    def gather(self, pos: NDArray[np.int64]) -> NDArray[np.float32]:
        """Full-precision vectors of the rows at `pos`."""
        return self.view.vectors(self.rows[pos])


@dataclass(frozen=True)
class SumSpec:
    """What :func:`chunk_sums` adds up (shipped to map tasks; small)."""

    n_groups: int
    dim: int
    designs: tuple[stats.MMDDesign, ...] = ()
    #: Per design, the groups whose feature sums it needs.
    design_groups: tuple[tuple[int, ...], ...] = ()
    n_cells: int = 0
    n_range_cells: int = 0


@dataclass(frozen=True)
class RowLabels:
    """Per selected row: window, inside the range reference, entity cell, range entity cell."""

    window: NDArray[np.int64]
    in_range: NDArray[np.bool_] | None = None
    cell: NDArray[np.int64] | None = None
    range_cell: NDArray[np.int64] | None = None

    def take(self, idx: NDArray[np.int64] | slice) -> RowLabels:
        """The labels of the rows `idx`."""
        def t(a: NDArray[Any] | None) -> NDArray[Any] | None:
            return None if a is None else a[idx]

        return RowLabels(self.window[idx], t(self.in_range), t(self.cell), t(self.range_cell))


@dataclass
class Sums:
    """Additive per-block results of :func:`chunk_sums` (float64)."""

    vec: NDArray[np.float64]
    count: NDArray[np.int64]
    feat: list[NDArray[np.float64]]
    cells: NDArray[np.float64]
    range_cells: NDArray[np.float64]

    @classmethod
    def zeros(cls, spec: SumSpec) -> Sums:
        return cls(
            vec=np.zeros((spec.n_groups, spec.dim)),
            count=np.zeros(spec.n_groups, dtype=np.int64),
            feat=[np.zeros((len(g), d.n_features))
                  for d, g in zip(spec.designs, spec.design_groups, strict=True)],
            cells=np.zeros((spec.n_cells, spec.dim)),
            range_cells=np.zeros((spec.n_range_cells, spec.dim)),
        )

    def __add__(self, other: Sums) -> Sums:
        return Sums(self.vec + other.vec, self.count + other.count,
                    [a + b for a, b in zip(self.feat, other.feat, strict=True)],
                    self.cells + other.cells, self.range_cells + other.range_cells)


def chunk_sums(x: NDArray[np.float32], labels: RowLabels, spec: SumSpec) -> Sums:
    """The sums of one block of rows: `x` their full-precision vectors, `labels` theirs."""
    import scipy.sparse as sp

    out = Sums.zeros(spec)
    r = x.shape[0]
    if r == 0:
        return out
    nw = spec.n_groups - (labels.in_range is not None)
    ind = sp.csr_matrix((np.ones(r), (labels.window, np.arange(r))), shape=(spec.n_groups, r))
    out.vec += ind @ x
    out.count += np.bincount(labels.window, minlength=spec.n_groups)
    if labels.in_range is not None:
        out.vec[nw] = x[labels.in_range].sum(axis=0, dtype=np.float64)
        out.count[nw] = int(labels.in_range.sum())

    def mask_of(g: int) -> NDArray[np.bool_]:
        if g == nw and labels.in_range is not None:
            return labels.in_range
        return labels.window == g

    for k, (design, groups) in enumerate(zip(spec.designs, spec.design_groups, strict=True)):
        masks = [mask_of(g) for g in groups]
        for lo in range(0, r, stats._ROW_CHUNK):
            part = slice(lo, lo + stats._ROW_CHUNK)
            if not any(m[part].any() for m in masks):
                continue
            z = design.features(np.ascontiguousarray(x[part]))
            for gi, m in enumerate(masks):
                if m[part].any():
                    out.feat[k][gi] += z[m[part]].sum(axis=0, dtype=np.float64)
    if spec.n_cells or spec.n_range_cells:
        u = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-30)
        if spec.n_cells and labels.cell is not None:
            ind = sp.csr_matrix((np.ones(r), (labels.cell, np.arange(r))),
                                shape=(spec.n_cells, r))
            out.cells += ind @ u
        if spec.n_range_cells and labels.range_cell is not None:
            inside = labels.range_cell >= 0
            np.add.at(out.range_cells, labels.range_cell[inside], u[inside])
    return out


def sum_rows(read: Callable[[int, int], NDArray[np.float32]], n: int, labels: RowLabels,
             spec: SumSpec, *, block: int = BLOCK_ROWS) -> Sums:
    """:func:`chunk_sums` over rows ``0..n`` read `block` at a time by ``read(lo, hi)``."""
    total = Sums.zeros(spec)
    for lo in range(0, n, block):
        hi = min(n, lo + block)
        total = total + chunk_sums(read(lo, hi), labels.take(slice(lo, hi)), spec)
    return total


@dataclass
class _MMDDraw:
    """The MMD test's draws so far for one window (continued in :func:`finish`)."""

    x_idx: NDArray[np.int64]
    y_idx: NDArray[np.int64]
    rng: np.random.Generator
    design: stats.MMDDesign
    k: int


@dataclass
class Entities:
    """Entity cells of the selected rows (see ``group_by``)."""

    names: pl.Series
    cells: NDArray[np.int64]
    counts: NDArray[np.int64]
    range_ent: NDArray[np.int64] | None
    range_counts: NDArray[np.int64] | None


def designs(plan: Plan) -> tuple[SumSpec, RowLabels, dict[int, _MMDDraw], Entities | None]:
    """What the map stage sums and how each row is labelled (driver; gathers <= 1,000 rows
    per tested window for the median heuristic)."""
    nw = plan.nw
    n = plan.rows.height
    window = np.empty(n, dtype=np.int64)
    for i, m in enumerate(plan.members):
        window[m] = i
    in_range = None
    if plan.ref_rows is not None:
        in_range = np.zeros(n, dtype=bool)
        in_range[plan.ref_rows] = True
    draws: dict[int, _MMDDraw] = {}
    if "mmd" in plan.tests:
        j = TESTS.index("mmd")
        for i in range(nw):
            if not plan.tested(i):
                continue
            refs = plan.refs(i)
            assert refs is not None
            r_pos, w_pos = plan.positions(refs), plan.members[i]
            rng = np.random.default_rng([plan.random_state, i, j])
            xi = stats.subsample_index(r_pos.size, stats.MMD_MAX_ROWS, rng)
            yi = stats.subsample_index(w_pos.size, stats.MMD_MAX_ROWS, rng)
            pooled = np.concatenate([r_pos[xi], w_pos[yi]])
            mi = stats.subsample_index(pooled.size, stats.MEDIAN_POINTS, rng)
            design = stats.mmd_design(plan.gather(pooled[mi]), rng)
            draws[i] = _MMDDraw(xi, yi, rng, design, len(draws))
    design_groups = tuple(tuple([*plan.refs(i), i]) for i in draws)  # type: ignore[misc]
    ent = None
    cell = range_cell = None
    n_cells = n_range = 0
    group_by = plan.args.get("group_by")
    if group_by is not None:
        col = plan.rows.get_column(group_by).cast(pl.Utf8).fill_null("<null>")
        code = (col.rank("dense") - 1).to_numpy().astype(np.int64)  # codes in sorted order
        cells, cell = np.unique(code * nw + window, return_inverse=True)
        cell = cell.astype(np.int64)
        n_cells = cells.size
        r_ent = r_cnt = None
        if plan.ref_rows is not None:
            r_ent, r_of = np.unique(code[plan.ref_rows], return_inverse=True)
            range_cell = np.full(n, -1, dtype=np.int64)
            range_cell[plan.ref_rows] = r_of
            n_range = r_ent.size
            r_cnt = np.bincount(r_of, minlength=n_range).astype(np.int64)
        ent = Entities(col.unique().sort(), cells,
                       np.bincount(cell, minlength=n_cells).astype(np.int64), r_ent, r_cnt)
    spec = SumSpec(n_groups=nw + (in_range is not None), dim=plan.view.dim,
                   designs=tuple(d.design for d in draws.values()),
                   design_groups=design_groups, n_cells=n_cells, n_range_cells=n_range)
    return spec, RowLabels(window, in_range, cell, range_cell), draws, ent


def _shift(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    den = float(np.linalg.norm(a) * np.linalg.norm(b))
    if den == 0.0:
        return float("nan")
    return float(1.0 - np.clip(a @ b / den, -1.0, 1.0))


def finish(plan: Plan, sums: Sums, draws: dict[int, _MMDDraw], ent: Entities | None, *,
           progress: bool) -> tuple[pl.DataFrame, list[Any], dict[Any, dict[str, Any]],
                                     pl.DataFrame | None]:
    """Per-window statistics and tests, Holm, what changed, entities (driver).

    Returns the windows frame, the starts of subsampled windows, the changes and the
    entities frame.
    """
    from tqdm.auto import tqdm

    tests = plan.tests
    caps = [stats.CLASSIFIER_MAX_ROWS if m == "classifier" else stats.MMD_MAX_ROWS
            for m in tests]
    out: list[dict[str, Any]] = []
    subsampled: list[Any] = []
    changes = _Changes(plan)
    with tqdm(total=plan.nw, desc="drift", unit="window", disable=not progress) as bar:
        for i in range(plan.nw):
            rec: dict[str, Any] = dict.fromkeys(SCHEMA)
            rec["n"] = plan.members[i].size
            refs = plan.refs(i)
            rec["n_reference"] = plan.n_reference(i)
            if plan.rule == "first" and i == 0:
                rec["status"] = "reference"
            elif refs is None:
                rec["status"] = "no reference"
            else:
                if "centroid" in plan.methods:
                    rec["centroid_shift"] = _shift(
                        sums.vec[refs].sum(axis=0) / sums.count[refs].sum(),
                        sums.vec[i] / sums.count[i])
                if not plan.tested(i):
                    rec["status"] = "too few rows"
                else:
                    rec["status"] = "tested"
                    rec.update(_test_window(plan, i, refs, sums, draws.get(i)))
                    p_win = rec.get("p_value")
                    if (plan.args["changes"] and p_win is not None
                            and p_win <= plan.alpha):  # 0.0 counts too
                        changes.add(i, refs)
                    if caps and max(rec["n"], rec["n_reference"]) > min(caps):
                        subsampled.append(plan.win_start[i])
            out.append(rec)
            bar.update(1)
    frame = pl.DataFrame(out, schema=SCHEMA)
    tested = frame.get_column("p_value").is_not_null().to_numpy()
    p_adj = np.full(plan.nw, np.nan)
    if tested.any():
        p_adj[tested] = stats.holm(frame.get_column("p_value").to_numpy()[tested])
    frame = frame.with_columns(
        p_adjusted=pl.Series(p_adj, dtype=pl.Float64).fill_nan(None),
    ).with_columns(flagged=pl.col("p_adjusted").fill_null(1.0) <= plan.alpha)
    frame = pl.concat([pl.DataFrame({"start": plan.win_start, "end": plan.win_end}), frame],
                      how="horizontal")
    entities = None if ent is None else _entity_shift(plan, sums, ent)
    return frame, subsampled, changes.found, entities


def _test_window(plan: Plan, i: int, refs: list[int], sums: Sums,
                 draw: _MMDDraw | None) -> dict[str, Any]:
    """The test statistics of window `i` (its keys of the windows schema)."""
    rec: dict[str, Any] = {}
    ps: list[float] = []
    r_pos, w_pos = plan.positions(refs), plan.members[i]
    for j, m in enumerate(TESTS):
        if m not in plan.tests:
            continue
        if m == "mmd":
            assert draw is not None
            x, y = plan.gather(r_pos[draw.x_idx]), plan.gather(w_pos[draw.y_idx])
            f = sums.feat[draw.k]
            r = stats.mmd_permutation_test(
                x, y, draw.design, draw.rng, n_permutations=plan.n_permutations,
                sums=(f[:-1].sum(axis=0), f[-1]),
                counts=(int(r_pos.size), int(w_pos.size)))
            rec["mmd2"], rec["mmd_p"] = r.mmd2, r.p_value
        else:
            rng = np.random.default_rng([plan.random_state, i, j])
            cap = stats.CLASSIFIER_MAX_ROWS if m == "classifier" else stats.MMD_MAX_ROWS
            # the tests draw these same subsamples from rng; given them, they draw no more
            x = plan.gather(r_pos[stats.subsample_index(r_pos.size, cap, rng)])
            y = plan.gather(w_pos[stats.subsample_index(w_pos.size, cap, rng)])
            if m == "classifier":
                c = stats.classifier_test(x, y, random_state=rng)
                rec["auc"], rec["classifier_p"] = c.auc, c.p_value
            else:
                k = stats.components_test(x, y, alpha=plan.alpha, random_state=rng)
                rec["components_drifted"], rec["components_p"] = k.drifted, k.p_value
        ps.append(rec[{"mmd": "mmd_p", "classifier": "classifier_p",
                       "components": "components_p"}[m]])
    if ps:
        rec["p_value"] = min(1.0, len(ps) * min(ps))
    return rec


class _Changes:
    """What changed in the windows found drifted (all their rows gathered, on the driver)."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        rows = plan.rows
        text = plan.args.get("text")
        self.has_text = text is not None and text in rows.columns and rows.schema[text] in (
            pl.Utf8, pl.Categorical, pl.Enum)
        self.texts = rows.get_column(text).cast(pl.Utf8) if self.has_text else None
        self.ids = rows.get_column("id")
        clusters: ClusterResult | None = plan.args.get("clusters")
        self.labels = None if clusters is None else labels_of(rows, clusters)
        # one reference's clusters kept at a time (a "previous" reference changes every window)
        self.fits: dict[tuple[int, ...], Any] = {}
        self.found: dict[Any, dict[str, Any]] = {}

    def add(self, i: int, refs: list[int]) -> None:
        from . import _drift_changes as ch

        plan = self.plan
        seed = plan.random_state
        r_pos, win_rows = plan.positions(refs), plan.members[i]
        ref, win = plan.gather(r_pos), plan.gather(win_rows)
        key = tuple(refs)
        if key not in self.fits:
            given = None if self.labels is None else self.labels[r_pos]
            self.fits.clear()
            self.fits[key] = ch.fit_reference(
                ref, n_clusters=plan.args["n_clusters"], random_state=seed, labels=given)
        fit = self.fits[key]
        table, novel = ch.cluster_changes(ref, win, fit)
        out_c: dict[str, Any] = {"clusters": table, "novel_share": novel,
                                 "source": fit.source, "keywords": [],
                                 "emerging_keywords": {}, "vanishing_keywords": {}}
        pos, score = ch.separating_rows(ref, win, random_state=seed + i)
        ex = {"id": self.ids.gather(win_rows[pos]).to_list(), "score": score.tolist()}
        if self.texts is not None:
            ref_t = self.texts.gather(r_pos).to_list()
            win_t = self.texts.gather(win_rows).to_list()
            ex["text"] = [win_t[int(p)] for p in pos]
            out_c["keywords"] = ch.new_keywords(ref_t, win_t)
            moved = ch.summarize(table)
            out_c["emerging_keywords"] = ch.emerging_keywords(
                win_t, ch.assign(win, fit.centroids)[0], ref_t, moved["emerging"])
            # a vanishing cluster has (next to) no rows in the window: its words come from
            # the reference rows it held
            out_c["vanishing_keywords"] = ch.vanishing_keywords(
                ref_t, fit.labels, win_t, moved["vanishing"])
        out_c["examples"] = pl.DataFrame(ex).select(
            "id", *(["text"] if "text" in ex else []), "score")
        self.found[plan.win_start[i]] = out_c


def labels_of(rows: pl.DataFrame, clusters: ClusterResult) -> NDArray[np.int64]:
    """The clustering's label of each row (by key); -1 where it has none."""
    lab = (rows.select("key").join(clusters.points.select("key", "cluster"), on="key",
                                   how="left", maintain_order="left")
           .get_column("cluster").fill_null(-1).to_numpy())
    return lab.astype(np.int64)


def _entity_shift(plan: Plan, all_sums: Sums, ent: Entities) -> pl.DataFrame:
    """Each entity's shift per window against its own reference (see ``group_by``), from the
    unit-vector sums per (entity, window) cell: memory is cells x dim, not rows x dim."""
    nw, min_rows = plan.nw, plan.args["min_entity_rows"]
    cells, counts, sums = ent.cells, ent.counts, all_sums.cells
    e_of, w_of = cells // nw, cells % nw  # sorted by entity, then window
    ref_sum = np.zeros_like(sums)
    ref_n = np.zeros(cells.size, dtype=np.int64)
    first_of = np.r_[True, e_of[1:] != e_of[:-1]]
    group_start = np.maximum.accumulate(np.where(first_of, np.arange(cells.size), 0))
    if plan.rule == "first":
        has = ~first_of
        ref_sum[has] = sums[group_start[has]]
        ref_n[has] = counts[group_start[has]]
    elif plan.rule in ("previous", "rolling"):
        back = 1 if plan.rule == "previous" else int(plan.rule_arg)
        csum = np.cumsum(sums, axis=0)
        ccnt = np.cumsum(counts)
        idx = np.arange(cells.size)
        lo_i = np.maximum(group_start, idx - back)  # pooled cells [lo_i, idx) of the entity
        has = lo_i < idx
        upto = csum[idx - 1] if cells.size else csum
        before = np.where((lo_i > 0)[:, None], csum[np.maximum(lo_i - 1, 0)], 0.0)
        ref_sum[has] = (upto - before)[has]
        cnt_up = ccnt[idx - 1]
        cnt_before = np.where(lo_i > 0, ccnt[np.maximum(lo_i - 1, 0)], 0)
        ref_n[has] = (cnt_up - cnt_before)[has]
    else:  # range: the entity's rows inside it
        assert ent.range_ent is not None and ent.range_counts is not None
        r_ent = ent.range_ent
        pos = np.searchsorted(r_ent, e_of)
        found = (pos < r_ent.size) & (r_ent[np.minimum(pos, r_ent.size - 1)] == e_of)
        ref_sum[found] = all_sums.range_cells[pos[found]]
        ref_n[found] = ent.range_counts[pos[found]]
    num = (sums * ref_sum).sum(axis=1)
    den = np.linalg.norm(sums, axis=1) * np.linalg.norm(ref_sum, axis=1)
    ok = (counts >= min_rows) & (ref_n >= min_rows) & (den > 0)
    shift = np.where(ok, 1.0 - num / np.where(den > 0, den, 1.0), np.nan)
    return pl.DataFrame({
        "entity": ent.names.gather(e_of),
        "start": plan.win_start.gather(w_of),
        "n": counts.astype(np.uint32),
        "n_reference": ref_n.astype(np.uint32),
        "shift": shift,
    }).with_columns(pl.col("shift").fill_nan(None))
