"""Exact and near-duplicate groups over a whole store: :func:`find_duplicates`.

A dedup is a batched self-search of the store through its own HNSW index (see
:mod:`workbench.analysis._dedup_graph`), cached beside the store, so a new threshold or
grouping costs no new search and a run after new commits searches only the new rows. Candidate
pairs are re-scored with the full-precision vectors, verified lexically where the store has text
(:mod:`workbench.analysis._dedup_text`), and grouped around representatives that never chain.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import polars as pl
from numpy.typing import NDArray

from .._validation import check_choice, check_positive_int
from ..errors import EmptyInputError, InvalidInputError
from ..store.view import ROW_COLUMNS
from ._dedup_graph import GraphCache, KnnGraph, build_graph, candidate_pairs, exact_cosine
from ._dedup_group import (
    Grouping,
    exact_representatives,
    group_components,
    group_representative,
)
from ._dedup_lsh import MAX_BANDS as LSH_MAX_BANDS
from ._dedup_lsh import RECALL as LSH_RECALL
from ._dedup_text import DEFAULT_BLEND, FEATURES, DedupBlend, content_hash, lexical_features
from ._dedup_text import normalized_text as _normalized_text

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..store import Store
    from ..store.view import StoreView

METHODS = ("hybrid", "cosine", "lexical")
GROUPINGS = ("representative", "components")
KEEP = ("first", "last", "longest")
#: Candidate pairs below this cosine are not scored (hybrid, lexical): the default blend gives
#: them a duplicate probability far below 1 %, and they are most of a text store's kNN edges.
PAIR_FLOOR = 0.5
#: With a cosine threshold, pairs down to this far below it are kept (for the histogram and a
#: lower re-threshold without a new search).
COSINE_MARGIN = 0.1
#: Search breadth (ef) of the self-join at least k + 1: near duplicates are a row's closest
#: neighbours, which HNSW reaches first (planted-pair recall in benchmarks/bench_dedup.py).
MIN_EXPANSION = 24
CANDIDATES = ("auto", "index", "lsh")
#: ``candidates="auto"`` takes LSH for a cosine dedup with a threshold at least this high.
LSH_AUTO_MIN = 0.95
#: LSH guarantees its recall for pairs down to this far below the threshold (so a slightly
#: lower re-threshold still reads the cached graph).
LSH_SLACK = 0.02


class DedupWarning(UserWarning):
    """A dedup ran with less than was asked (cosine only, for a store without text)."""


@dataclass(frozen=True)
class DedupResult:
    """Duplicate groups of a store's rows and the scored candidate pairs behind them.

    Attributes
    ----------
    groups : polars.DataFrame
        One row per member of a group of 2+ rows: ``group: i64`` (0 = largest), ``key: u64``,
        ``id: str``, ``text: str`` (the member's text, from the store's column
        ``info["text"]``, so that a reviewer reads the groups without a join; only when the
        dedup had a text column), ``is_representative: bool``, ``score_to_representative:
        f32`` (null in ``"components"`` grouping where a member has no direct pair with it),
        ``exact: bool`` (an exact duplicate of its representative); sorted by group,
        representative first.
    pairs : polars.DataFrame
        Candidate pairs, each once: ``key_a: u64 < key_b: u64``, ``id_a``, ``id_b``,
        ``cosine: f32`` (full precision), the lexical features (``ratio``, ``token_set``,
        ``token_sort``, ``word_jaccard``, ``length_ratio``; null without text), ``lexical``
        (token-sort ratio), ``score: f32`` (the method's), ``exact: bool``.
    summary : dict
        ``rows``, ``groups``, ``duplicates`` (rows in groups minus representatives), ``share``
        (duplicates / rows), ``exact_duplicates``, ``longest_chain``.
    threshold : float
        The score a pair needs; ``threshold_rule`` says how it was chosen.
    nearest : polars.DataFrame
        ``key``, ``nearest: f32``: each row's best candidate cosine (the histogram's data).
    info : dict
        Method, grouping, keep, k, search breadth, generation, rows searched, cache use, notes.
    """

    groups: pl.DataFrame
    pairs: pl.DataFrame
    summary: dict[str, Any]
    threshold: float
    threshold_rule: str
    method: str
    grouping: str
    nearest: pl.DataFrame
    info: dict[str, Any] = field(default_factory=dict)
    _rows: pl.DataFrame = field(default_factory=pl.DataFrame, repr=False)
    _floor: float = field(default=0.0, repr=False)

    @property
    def floor(self) -> float:
        """The lowest threshold :meth:`regroup` accepts.

        0 for hybrid and lexical results, which keep every candidate pair with cosine >= 0.5.
        """
        return self._floor

    def to_frame(self) -> pl.DataFrame:
        """Every scanned row with its group (null if unique).

        Columns: ``key``, ``id``, ``group``, ``is_representative``, ``is_duplicate`` (in a
        group and not its representative), ``score_to_representative``, ``exact``.
        """
        g = self.groups.select("key", "group", "is_representative",
                               "score_to_representative", "exact")
        return (self._rows.select("key", "id").join(g, on="key", how="left")
                .with_columns(pl.col("is_representative").fill_null(False),
                              pl.col("exact").fill_null(False))
                .with_columns(is_duplicate=pl.col("group").is_not_null()
                              & ~pl.col("is_representative"))
                .select("key", "id", "group", "is_representative", "is_duplicate",
                        "score_to_representative", "exact"))

    def regroup(self, threshold: float | None = None, *, grouping: str | None = None,
                ) -> DedupResult:
        """The same pairs grouped again at another threshold or grouping (no search).

        Raises
        ------
        InvalidInputError
            `threshold` outside (0, 1] or below the lowest score the pairs were kept at
            (then run :func:`find_duplicates` again: its graph is cached).
        """
        thr = self.threshold if threshold is None else _check_threshold(threshold)
        if thr < self._floor:
            raise InvalidInputError(
                f"threshold: expected at least {self._floor:.3f} (the lowest score this "
                f"result kept pairs at), got {thr}; call find_duplicates(threshold={thr}) "
                "instead (its kNN graph is cached)"
            )
        grouping = check_choice(grouping or self.grouping, GROUPINGS, name="grouping")
        rule = self.threshold_rule if threshold is None else "given"
        return _assemble(self._rows, self.pairs, self.nearest, thr, rule, self.method,
                         grouping, self.info, floor=self._floor)

    def plot(self, *, bins: int = 60) -> Figure:
        """Histograms of each row's nearest-neighbour cosine and of the pair scores."""
        import matplotlib.pyplot as plt

        fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 3.2))
        nn = self.nearest.get_column("nearest").to_numpy()
        nn = nn[np.isfinite(nn)].astype(np.float64)
        if nn.size:
            ax0.hist(nn, bins=bins, range=_hist_range(nn), color="#4c78a8")
        lsh = self.info.get("lsh")
        ax0.set(title="nearest-neighbour cosine per row" if not lsh else
                f"nearest-neighbour cosine (rows with one >= {lsh['floor']:.2f})",
                xlabel="cosine", ylabel="rows")
        sc = self.pairs.get_column("score").to_numpy().astype(np.float64)
        if sc.size:
            ax1.hist(sc, bins=bins, range=_hist_range(sc), color="#72b7b2", log=True)
        else:
            ax1.text(0.5, 0.5, "no candidate pairs", ha="center", va="center",
                     transform=ax1.transAxes)
        ax1.axvline(self.threshold, color="#e45756", lw=1.5,
                    label=f"threshold {self.threshold:.3f}")
        ax1.set(title=f"candidate pair scores ({self.method})", xlabel="score",
                ylabel="pairs (log)")
        ax1.legend(loc="upper left", frameon=False)
        fig.tight_layout()
        plt.close(fig)
        return fig


def _check_threshold(threshold: Any) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, int | float | np.floating):
        raise InvalidInputError(f"threshold: expected a number in (0, 1], got {threshold!r}")
    t = float(threshold)
    if not (0.0 < t <= 1.0) or math.isnan(t):
        raise InvalidInputError(f"threshold: expected a number in (0, 1], got {threshold}")
    return t


def _hist_range(v: NDArray[np.float64]) -> tuple[float, float]:
    """The values' range, widened when (nearly) all are equal (too narrow for the bins)."""
    lo, hi = float(v.min()), float(v.max())
    return (lo - 0.005, hi + 0.005) if hi - lo < 1e-3 else (lo, hi)


def _otsu(values: NDArray[np.float32], lo: float, hi: float) -> float:
    """Otsu's split of the `values` in ``[lo - 0.1, 1]`` (256 bins), kept within [lo, hi].

    It separates the tail of ordinary neighbours from a mode of duplicates near 1. When the
    window holds one mode only (the split explains under 80 % of the variance: Otsu's
    effectiveness measure), there is no valley to find and `lo` is returned.
    """
    v = values[np.isfinite(values) & (values >= lo - 0.1)].astype(np.float64)
    if v.size < 2 or v.min() == v.max():
        return lo
    counts, edges = np.histogram(v, bins=256)
    mids = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(counts).astype(np.float64)
    w1 = w0[-1] - w0
    m0 = np.cumsum(counts * mids) / np.maximum(w0, 1)
    m1 = (np.sum(counts * mids) - np.cumsum(counts * mids)) / np.maximum(w1, 1)
    between = w0 * w1 * (m0 - m1) ** 2 / w0[-1] ** 2
    best = int(np.argmax(between))
    if between[best] < 0.8 * v.var():
        return lo
    return float(min(max(edges[best + 1], lo), hi))


def _rank(rows: pl.DataFrame, keep: str, text: str | None) -> NDArray[np.int64]:
    """Rank of each row (position in `rows`) under the keep rule; rank 0 is kept first."""
    n = rows.height
    if keep == "first":
        order = np.arange(n)  # rows are sorted by key: first added first
    elif keep == "last":
        order = np.arange(n)[::-1]
    else:
        length = (rows.get_column(text).cast(pl.Utf8).fill_null("").str.len_chars()
                  .to_numpy() if text else np.zeros(n))
        order = np.lexsort((np.arange(n), -length.astype(np.int64)))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    return rank


def find_duplicates(
    store: Store,
    *,
    threshold: float | None = None,
    k: int = 16,
    where: pl.Expr | None = None,
    text: str | None = "text",
    method: Literal["hybrid", "cosine", "lexical"] = "hybrid",
    grouping: Literal["representative", "components"] = "representative",
    keep: Literal["first", "last", "longest"] = "first",
    punctuation: bool = False,
    blend: DedupBlend | None = None,
    expansion: int | None = None,
    candidates: Literal["auto", "index", "lsh"] = "auto",
    since_generation: int | None = None,
    only_new: bool = False,
    cache: bool = True,
    progress: bool = True,
) -> DedupResult:
    """Exact and near-duplicate groups of the store's live rows.

    Exact duplicates share a normalised text (Unicode NFKC, case-folded, whitespace collapsed;
    with `punctuation`, punctuation ignored too) or, in a store without text, identical
    vectors. Near duplicates come from a kNN self-join through the store's own index (k
    neighbours of every row, in batches, all cores), re-scored with the full-precision vectors
    and, with text, verified lexically. Under ``grouping="representative"`` rows are taken in
    `keep` order; each row not yet grouped becomes a representative and claims the rows not yet
    grouped whose pair with it passes the threshold. **Guarantee**: every member passes the
    threshold against its representative, or is an exact duplicate of it or of such a member;
    groups never chain. ``"components"`` joins all passing pairs transitively (the longest
    chain is reported in ``summary``).

    Parameters
    ----------
    store : Store
        The store (read from one snapshot; nothing is written to it).
    threshold : float, optional
        Score a pair needs, in (0, 1]. Default: 0.5 for ``"hybrid"`` (its score is a calibrated
        probability); for ``"cosine"``/``"lexical"``, Otsu's threshold of the rows'
        nearest-neighbour scores from 0.8 / 0.7 up (the split between the tail of ordinary
        neighbours and a mode of duplicates near 1), kept within [0.9, 0.99] / [0.8, 0.99];
        0.9 / 0.8 when those scores have one mode only. ``threshold_rule``
        says which.
    k : int, default 16
        Neighbours searched per row (a group larger than k + 1 is still found through exact
        hashing or, in ``"components"``, transitively).
    where : polars.Expr, optional
        Restricts both sides of the self-join to matching rows.
    text : str or None, default "text"
        Text column for exact hashing and the lexical verifier. A store without it falls back
        to ``method="cosine"`` with a :class:`DedupWarning` (unless `method` is already cosine).
    method : {"hybrid", "cosine", "lexical"}
        Pair score: the blend of cosine and lexical features (`blend`), the cosine, or the
        token-sort ratio.
    grouping : {"representative", "components"}
    keep : {"first", "last", "longest"}
        Which row of a group represents it: the earliest added (lowest key), the latest, or the
        longest text.
    punctuation : bool, default False
        Ignore punctuation and symbols when comparing texts exactly.
    blend : DedupBlend, optional
        Coefficients of the hybrid score (default: :data:`DEFAULT_BLEND`, fitted on STS-B with
        all-MiniLM-L6-v2; a :class:`DedupWarning` when the store embeds with another model).
    expansion : int, optional
        HNSW search breadth of the self-join (default ``max(k + 1, 24)``), on private views
        of the index files: the handle's own setting is untouched.
    candidates : {"auto", "index", "lsh"}
        Where candidate pairs come from. ``"index"``: the kNN self-join through the store's
        HNSW index (any threshold, any method). ``"lsh"``: random-hyperplane LSH bands over
        the full-precision vectors, every candidate verified exactly, tuned so that a pair at
        cosine ``threshold - 0.02`` is found with probability >= 0.999 whatever the data
        (``info["lsh"]`` holds the plan and its recall); needs ``method="cosine"`` and a
        threshold. HNSW at a small breadth misses tight near-duplicate cliques on
        high-dimensional data (planted-pair recall 0.75 at 100k x 384 in
        ``benchmarks/bench_dedup.py``), LSH does not. ``"auto"``: LSH for a cosine dedup with
        a threshold >= 0.95, else the index.
    since_generation : int, optional
        Search only rows committed after that generation's dedup run (its graph must be in the
        cache) against everything; the cost grows with the new rows, not the store.
    only_new : bool, default False
        The same from the newest recorded run (a full run when none is recorded).
    cache : bool, default True
        Keep the kNN graph in ``<store>/cache/dedup`` keyed by the selected rows, k, breadth
        and index; an identical call then searches nothing.
    progress : bool, default True
        Show a progress bar over the self-join.

    Returns
    -------
    DedupResult

    Raises
    ------
    InvalidInputError
        `threshold` outside (0, 1], `k` < 1, an unknown choice, `where` naming a missing
        column, or `since_generation` without a recorded run.
    EmptyInputError
        The store is empty, or `where` selects no rows.

    Examples
    --------
    >>> result = wb.find_duplicates(store, threshold=0.95, method="cosine")  # doctest: +SKIP
    >>> result.summary  # doctest: +SKIP
    {'rows': 10000, 'groups': 20, 'duplicates': 40, 'share': 0.004, ...}
    """
    t0 = time.perf_counter()
    job = _prepare(store, threshold=threshold, k=k, where=where, text=text, method=method,
                   grouping=grouping, keep=keep, punctuation=punctuation, blend=blend,
                   expansion=expansion, candidates=candidates, stacklevel=3)
    folder = store.path / "cache" / "dedup" if cache else None
    if job.k >= 1:
        graph, note = build_graph(
            job.view, job.rows, where=where, k=job.k, expansion=job.breadth,
            cache=GraphCache(folder), since_generation=since_generation, only_new=only_new,
            progress=progress, lsh_floor=job.lsh_floor, lsh_accept=job.threshold)
    else:
        graph, note = _empty_graph(job), "one row: nothing to compare"
    return _from_graph(job, graph, note, t0=t0, stacklevel=3)


@dataclass(frozen=True)
class _Job:
    """A dedup's checked arguments and its selection, before the graph is built."""

    view: StoreView
    rows: pl.DataFrame  # the selected live rows (key-sorted, with ROW_COLUMNS)
    threshold: float | None
    k: int  # neighbours per row: k capped at the selection's size - 1
    method: str
    grouping: str
    keep: str
    text: str | None
    has_text: bool
    punctuation: bool
    blend: DedupBlend | None
    breadth: int
    lsh_floor: float | None  # the LSH collection floor; None: HNSW candidates


def _prepare(
    store: Store, *, threshold: float | None, k: int, where: pl.Expr | None, text: str | None,
    method: str, grouping: str, keep: str, punctuation: bool, blend: DedupBlend | None,
    expansion: int | None, candidates: str, stacklevel: int,
) -> _Job:
    """Check :func:`find_duplicates`' arguments and select its rows (one store view).

    `stacklevel` is the warnings' level as seen from here (the caller's caller: 3).
    """
    thr = None if threshold is None else _check_threshold(threshold)
    k = check_positive_int(k, name="k")
    method = check_choice(method, METHODS, name="method")
    grouping = check_choice(grouping, GROUPINGS, name="grouping")
    keep = check_choice(keep, KEEP, name="keep")
    candidates = check_choice(candidates, CANDIDATES, name="candidates")
    if candidates == "lsh" and (method != "cosine" or thr is None):
        raise InvalidInputError(
            "candidates: 'lsh' finds pairs above a cosine floor, so it needs method='cosine' "
            f"and a threshold; got method={method!r}, threshold={threshold!r}"
        )
    if blend is not None and not isinstance(blend, DedupBlend):
        raise InvalidInputError(f"blend: expected a DedupBlend, got {type(blend).__name__}")
    view = store.view()
    if len(view) == 0:
        raise EmptyInputError("store: expected rows to deduplicate, the store is empty")
    rows = view.rows(where)
    if rows.height == 0:
        raise EmptyInputError(f"where: expected a filter selecting rows, {where} selects none")
    has_text = text is not None and text in rows.columns
    if has_text and rows.schema[text] not in (pl.Utf8, pl.Categorical, pl.Enum):
        raise InvalidInputError(
            f"text: expected a string column, {text!r} is {rows.schema[text]}"
        )
    if not has_text and method != "cosine":
        warnings.warn(
            f"find_duplicates: the store has no text column {text!r}; method={method!r} needs "
            "text, deduplicating by cosine only (pass method='cosine' to silence this)",
            DedupWarning, stacklevel=stacklevel,
        )
        method = "cosine"
    if method == "hybrid":
        blend = blend or DEFAULT_BLEND
        model = None if store.model is None else store.model.name
        if blend.model is not None and model != blend.model:
            embeds = "has no recorded model" if model is None else f"embeds with {model}"
            warnings.warn(
                f"find_duplicates: the blend was fitted on {blend.model} cosines but the store "
                f"{embeds}; its probabilities may be off (refit with "
                "wb.fit_blend on labelled pairs, or use method='cosine')",
                DedupWarning, stacklevel=stacklevel,
            )
    k_eff = min(k, rows.height - 1)
    breadth = check_positive_int(expansion, name="expansion") if expansion is not None \
        else max(k_eff + 1, MIN_EXPANSION)
    use_lsh = candidates == "lsh" or (candidates == "auto" and method == "cosine"
                                      and thr is not None and thr >= LSH_AUTO_MIN)
    lsh_floor = None if not use_lsh or thr is None else max(0.0, thr - LSH_SLACK)
    return _Job(view=view, rows=rows, threshold=thr, k=k_eff, method=method,
                grouping=grouping, keep=keep, text=text, has_text=has_text,
                punctuation=punctuation, blend=blend, breadth=breadth, lsh_floor=lsh_floor)


def _empty_graph(job: _Job) -> KnnGraph:
    """The graph of a single selected row (no neighbours)."""
    keys = job.rows.get_column("key").to_numpy()
    return KnnGraph(keys=keys, nbr=np.zeros((keys.size, 0), np.uint64),
                    sim=np.zeros((keys.size, 0), np.float32), generation=job.view.generation,
                    searched=0, cached=False)


def _from_graph(job: _Job, graph: KnnGraph, note: str, *, t0: float, stacklevel: int
                ) -> DedupResult:
    """Turn the kNN graph of `job`'s rows into a :class:`DedupResult`.

    Exact re-scoring, lexical features, exact classes, the threshold rule and the grouping;
    shared by :func:`find_duplicates` and the distributed dedup. `t0` is the run's start
    (``perf_counter``), `stacklevel` the warnings' level from here.
    """
    view, rows, thr, method, text = job.view, job.rows, job.threshold, job.method, job.text
    has_text, blend = job.has_text, job.blend
    notes: list[str] = [note]
    if graph.lsh is not None:
        plan = graph.lsh
        notes.append(f"LSH: {plan['bands']} bands of {plan['bits']} hyperplanes; a pair at "
                     f"cosine {plan['floor']:.3f} is found with probability "
                     f"{plan['recall']:.4f}")
        if plan["recall"] < LSH_RECALL - 1e-9:
            warnings.warn(
                f"find_duplicates: LSH at cosine {plan['floor']:.3f} would need more than "
                f"{LSH_MAX_BANDS} bands for recall {LSH_RECALL}; a pair at that cosine is "
                f"found with probability {plan['recall']:.3f} (use candidates='index' or a "
                "higher threshold)", DedupWarning, stacklevel=stacklevel)
    t_graph = time.perf_counter()
    nn = graph.sim.max(axis=1) if graph.sim.shape[1] else np.full(graph.keys.size, -np.inf)
    nearest = pl.DataFrame({"key": graph.keys, "nearest": nn.astype(np.float32)})

    # which pairs to score
    if method == "cosine":
        rule_thr = thr if thr is not None else _otsu(nn, 0.9, 0.99)
        floor = max(PAIR_FLOOR, rule_thr - COSINE_MARGIN)
        if graph.lsh is not None:  # pairs below the LSH floor were never collected
            floor = max(floor, float(graph.lsh["floor"]))
    else:
        floor = PAIR_FLOOR
    a, b, approx = candidate_pairs(graph, floor - 0.01)
    cos, same = exact_cosine(view, a, b)
    keep_pair = cos >= floor
    a, b, cos, same = a[keep_pair], b[keep_pair], cos[keep_pair], same[keep_pair]

    ids = rows.get_column("id")
    pos_a = np.searchsorted(graph.keys, a)
    pos_b = np.searchsorted(graph.keys, b)
    feats: dict[str, Any] = {"cosine": cos}
    if has_text:
        norm = _normalized_text(rows.get_column(text), punctuation=job.punctuation)
        ta = norm.gather(pos_a).to_list()
        tb = norm.gather(pos_b).to_list()
        feats.update(lexical_features(ta, tb))
        hashes = content_hash(rows.get_column(text), punctuation=job.punctuation)
    else:
        hashes = None
    if method == "cosine":
        score = cos
    elif method == "lexical":
        score = feats["token_sort"].astype(np.float32)
    else:
        assert blend is not None
        score = blend.score(feats)

    # exact duplicates: same normalised text, or byte-identical vectors
    if hashes is not None:
        _, inv, counts = np.unique(hashes, return_inverse=True, return_counts=True)
        exact_class = np.where(counts[inv] >= 2, inv, -1).astype(np.int64)
    else:
        exact_class = _identical_classes(graph.keys.size, pos_a[same], pos_b[same])
    pair_exact = (exact_class[pos_a] >= 0) & (exact_class[pos_a] == exact_class[pos_b])

    if thr is None:
        if method == "hybrid":
            thr, rule = 0.5, "0.5: the hybrid score is a calibrated duplicate probability"
        elif method == "cosine":
            thr = rule_thr
            rule = (f"Otsu's split of the rows' nearest-neighbour cosines from 0.8 up, kept "
                    f"within [0.9, 0.99] (0.9 if they have one mode): {thr:.3f}")
        else:
            best = np.full(graph.keys.size, -np.inf, dtype=np.float32)
            np.maximum.at(best, pos_a, score)
            np.maximum.at(best, pos_b, score)
            thr = _otsu(best, 0.8, 0.99)
            rule = (f"Otsu's split of the rows' best token-sort ratios from 0.7 up, kept "
                    f"within [0.8, 0.99] (0.8 if they have one mode): {thr:.3f}")
    else:
        rule = "given"
    null_f = pl.lit(None, dtype=pl.Float32)
    pairs = pl.DataFrame({
        "key_a": a, "key_b": b,
        "id_a": ids.gather(pos_a), "id_b": ids.gather(pos_b),
        "cosine": cos.astype(np.float32),
    }).with_columns(
        [(pl.Series(f, feats[f].astype(np.float32)) if f in feats else null_f.alias(f))
         for f in FEATURES[1:]]
    ).with_columns(
        lexical=pl.col("token_sort"),
        score=pl.Series(np.asarray(score, dtype=np.float32)),
        exact=pl.Series(pair_exact),
    )
    selected = rows.drop(*ROW_COLUMNS).select(
        "key", "id", *([text] if has_text else [])).with_columns(
        _exact=pl.Series(exact_class))
    info = {
        "method": method, "keep": job.keep, "k": job.k,
        "candidates": "index" if graph.lsh is None else "lsh", "lsh": graph.lsh,
        "expansion": job.breadth if graph.lsh is None else None,
        "generation": view.generation, "searched": graph.searched,
        "searched_deeper": graph.deeper, "searched_exactly": graph.exact,
        "unreached": graph.unreached,
        "cached": graph.cached, "base_generation": graph.base_generation,
        "text": text if has_text else None, "notes": notes, "blend": (
            None if method != "hybrid" or blend is None else blend.to_dict()),
        "seconds": {"graph": round(t_graph - t0, 3)},
    }
    out = _assemble(selected, pairs, nearest, thr, rule, method, job.grouping, info,
                    floor=floor if method == "cosine" else 0.0)
    out.info["seconds"]["total"] = round(time.perf_counter() - t0, 3)
    return out


def _identical_classes(n: int, ia: NDArray[np.int64], ib: NDArray[np.int64]
                       ) -> NDArray[np.int64]:
    """Exact classes from pairs of identical vectors (equality is transitive)."""
    cls = np.full(n, -1, dtype=np.int64)
    if ia.size == 0:
        return cls
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    g = coo_matrix((np.ones(ia.size, np.int8), (ia, ib)), shape=(n, n))
    _, labels = connected_components(g, directed=False)
    sizes = np.bincount(labels)
    return np.where(sizes[labels] >= 2, labels, -1).astype(np.int64)


def _assemble(
    rows: pl.DataFrame, pairs: pl.DataFrame, nearest: pl.DataFrame, thr: float, rule: str,
    method: str, grouping: str, info: dict[str, Any], *, floor: float,
) -> DedupResult:
    """Group the pairs passing `thr` over `rows` (key-sorted, with ``_exact``)."""
    n = rows.height
    keys = rows.get_column("key").to_numpy()
    text = info.get("text")
    rank = _rank(rows, info["keep"], text)
    crep = exact_representatives(rows.get_column("_exact").to_numpy(), rank)
    passing = pairs.filter(pl.col("score") >= thr)
    ia = np.searchsorted(keys, passing.get_column("key_a").to_numpy())
    ib = np.searchsorted(keys, passing.get_column("key_b").to_numpy())
    sc = passing.get_column("score").to_numpy().astype(np.float32)
    fn = group_representative if grouping == "representative" else group_components
    g: Grouping = fn(n, rank, crep, ia, ib, sc)
    members = np.flatnonzero(g.rep >= 0)
    reps = g.rep[members]
    sizes = np.bincount(reps, minlength=n)
    # groups numbered by size (largest first), then by their representative's rank
    heads = np.unique(reps)
    order = heads[np.lexsort((rank[heads], -sizes[heads]))]
    number = np.empty(n, dtype=np.int64)
    number[order] = np.arange(order.size)
    groups = pl.DataFrame({
        "group": number[reps],
        "key": keys[members],
        "id": rows.get_column("id").gather(members),
        # the texts a reviewer reads, so that the groups need no join with the store
        **({"text": rows.get_column(text).cast(pl.Utf8).gather(members)} if text else {}),
        "is_representative": members == reps,
        "score_to_representative": g.score[members],
        "exact": g.exact[members],
        "_rank": rank[members],
    }).with_columns(pl.col("score_to_representative").fill_nan(None)).sort(
        "group", pl.col("is_representative"), "_rank", descending=[False, True, False]
    ).drop("_rank")
    n_groups = int(order.size)
    dup = int(members.size - n_groups)
    summary = {
        "rows": n, "groups": n_groups, "duplicates": dup, "share": dup / n if n else 0.0,
        "exact_duplicates": int((g.exact[members] & (members != reps)).sum()),
        "largest_group": int(sizes.max()) if n_groups else 0,
        "longest_chain": g.longest_chain, "pairs": pairs.height,
        "passing_pairs": passing.height,
    }
    return DedupResult(groups=groups, pairs=pairs, summary=summary, threshold=float(thr),
                       threshold_rule=rule, method=method, grouping=grouping, nearest=nearest,
                       info={**info, "grouping": grouping}, _rows=rows, _floor=floor)

