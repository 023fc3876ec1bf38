"""Two-sample tests behind :func:`workbench.analysis.drift.compute_drift`, on plain arrays.

Every function takes a reference sample ``ref`` (m, d) and a window sample ``win`` (n, d) of
float vectors and returns a small frozen dataclass; none reads a store, so benchmarks and
notebooks can call them directly.

- :func:`mmd_test`: MMD² of Gaussian kernels at several bandwidths through random Fourier
  features, aggregated by the permutation-calibrated minimum p-value (MMDAgg, Schrab et al.
  2023). **Guarantee**: a permutation test has exact level alpha for any statistic when the
  two samples are exchangeable (drawn from one distribution), so the random-feature
  approximation and the choice of bandwidths change the power, never the calibration.
- :func:`classifier_test`: a domain classifier (logistic regression); out-of-fold ROC-AUC, and
  a one-sided Mann-Whitney p-value (the AUC's own null distribution) on held-out scores.
- :func:`components_test`: Kolmogorov-Smirnov tests on principal components,
  Benjamini-Hochberg across components, Bonferroni minimum p-value for the method.
- :func:`centroid_shift` (no test) and :func:`holm` (step-down family-wise correction).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import InvalidInputError

#: Bandwidths of the MMD kernels, as multiples of the median pairwise distance.
BANDWIDTHS = (0.5, 1.0, 2.0)
#: Random Fourier features per bandwidth (half cosines, half sines of the same frequencies).
N_FEATURES = 1024
#: Rows per side the MMD and component tests keep (a seeded subsample above it).
MMD_MAX_ROWS = 20_000
#: Rows per side the domain classifier keeps (its 5 fits dominate the cost).
CLASSIFIER_MAX_ROWS = 10_000
#: Rows of the pooled sample the median heuristic measures distances on.
MEDIAN_POINTS = 1_000
#: Rows of random features computed at once: (chunk, 3 x 1024) float32 is 50 MB.
_ROW_CHUNK = 4_096

RandomState = int | np.random.Generator | None


def _rng(random_state: RandomState) -> np.random.Generator:
    if isinstance(random_state, np.random.Generator):
        return random_state
    return np.random.default_rng(random_state)


def _as_f32(a: Any) -> NDArray[np.float32]:
    return np.ascontiguousarray(a, dtype=np.float32)


def subsample_index(n: int, max_rows: int, rng: np.random.Generator) -> NDArray[np.int64]:
    """Positions of at most `max_rows` of `n` rows, sorted (all of them if fewer).

    Draws from `rng` exactly as :func:`subsample` does, so a caller holding only positions
    (the distributed drift) picks the same rows.
    """
    if n <= max_rows:
        return np.arange(n, dtype=np.int64)
    return np.sort(rng.choice(n, max_rows, replace=False)).astype(np.int64)


def subsample(x: NDArray[Any], max_rows: int, rng: np.random.Generator) -> NDArray[Any]:
    """At most `max_rows` rows of `x`, drawn without replacement (all rows, in order, if fewer)."""
    if x.shape[0] <= max_rows:
        return x
    return x[subsample_index(x.shape[0], max_rows, rng)]


def centroid_shift(ref: NDArray[Any], win: NDArray[Any]) -> float:
    """``1 - cos`` of the two mean vectors (0: same direction; 1: orthogonal; 2: opposite).

    Zero-norm means give ``nan``.
    """
    a = np.asarray(ref, dtype=np.float64).mean(axis=0)
    b = np.asarray(win, dtype=np.float64).mean(axis=0)
    den = float(np.linalg.norm(a) * np.linalg.norm(b))
    if den == 0.0:
        return float("nan")
    return float(1.0 - np.clip(a @ b / den, -1.0, 1.0))


def median_distance(x: NDArray[Any], rng: np.random.Generator, *,
                    max_points: int = MEDIAN_POINTS) -> float:
    """Median Euclidean distance between distinct rows of a subsample of `x` (1.0 if all equal).

    Distances come from one Gram product (40x faster than ``scipy.spatial.distance.pdist`` on
    1,000 x 384).
    """
    sub = subsample(np.asarray(x, dtype=np.float64), max_points, rng)
    sq = np.einsum("ij,ij->i", sub, sub)
    d2 = sq[:, None] + sq[None, :] - 2.0 * (sub @ sub.T)
    d2 = d2[np.triu_indices(sub.shape[0], k=1)]
    d2 = d2[d2 > 1e-12 * max(float(sq.max()), 1.0)]
    return float(np.sqrt(np.median(d2))) if d2.size else 1.0


def _features(proj: NDArray[np.float32], inv: NDArray[np.float32],
              doubling: bool) -> NDArray[np.float32]:
    """Cosines and sines of ``proj * inv[b]`` for every bandwidth b, side by side.

    With `doubling` (each ``inv`` twice the one before, as for the default bandwidths 2, 1,
    0.5 times the median, reversed), the angles of the next bandwidth are twice the previous
    ones and come from the double-angle formulas: one cos/sin evaluation instead of three.
    """
    f = proj.shape[1]
    out = np.empty((proj.shape[0], 2 * f * inv.size), dtype=np.float32)
    for b in range(inv.size):
        c, s = out[:, 2 * f * b:2 * f * b + f], out[:, 2 * f * b + f:2 * f * (b + 1)]
        if doubling and b:
            pc, ps = out[:, 2 * f * (b - 1):2 * f * (b - 1) + f], out[:, 2 * f * b - f:2 * f * b]
            np.multiply(pc, ps, out=s)
            s *= 2.0
            np.multiply(pc, pc, out=c)
            c *= 2.0
            c -= 1.0
        else:
            ang = proj * inv[b]
            np.cos(ang, out=c)
            np.sin(ang, out=s)
    return out


@dataclass(frozen=True)
class MMDTest:
    """Result of :func:`mmd_test`.

    Attributes
    ----------
    mmd2 : float
        MMD² estimate at the median-heuristic bandwidth (the multiplier closest to 1): the
        squared distance between the samples' mean random features (all rows).
    p_value : float
        Aggregated permutation p-value (min-p over bandwidths, calibrated by permutation).
    bandwidths : numpy.ndarray
        Kernel bandwidths used (Gaussian kernel ``exp(-|x - y|^2 / (2 sigma^2))``).
    statistics : numpy.ndarray
        MMD² per bandwidth (all rows).
    p_values : numpy.ndarray
        Permutation p-value per bandwidth.
    n_ref, n_win : int
        Rows per side after subsampling.
    n_permutations : int
    """

    mmd2: float
    p_value: float
    bandwidths: NDArray[np.float64]
    statistics: NDArray[np.float64]
    p_values: NDArray[np.float64]
    n_ref: int
    n_win: int
    n_permutations: int


def _assignments(m: int, n: int, n_permutations: int, rng: np.random.Generator,
                 ) -> NDArray[np.float32]:
    """Weights (B + 1, m + n): row 0 the observed split, then random ones; +1/m on one side,
    -1/n on the other, so ``w @ Z`` is the difference of the two sides' mean features."""
    base = np.zeros(m + n, dtype=bool)
    base[:m] = True
    side = np.empty((n_permutations + 1, m + n), dtype=bool)
    side[0] = base
    if n_permutations:
        side[1:] = rng.permuted(np.broadcast_to(base, (n_permutations, m + n)), axis=1)
    return np.where(side, np.float32(1.0 / m), np.float32(-1.0 / n))


def _rank_p(stats: NDArray[np.float64]) -> NDArray[np.float64]:
    """Permutation p-value of every row of `stats` (B + 1, k) against all rows, per column:
    ``#{j : stats[j] >= stats[i]} / (B + 1)`` (row 0 gets ``(1 + #{perm >= obs}) / (1 + B)``)."""
    b1 = stats.shape[0]
    out = np.empty_like(stats)
    for c in range(stats.shape[1]):
        srt = np.sort(stats[:, c])
        # rows at or above each value: b1 - (rows strictly below it)
        out[:, c] = (b1 - np.searchsorted(srt, stats[:, c], side="left")) / b1
    return out


@dataclass(frozen=True, eq=False)
class MMDDesign:
    """The random-feature map of one MMD test: bandwidths and the frequencies' seed.

    Small to ship (the frequencies are redrawn from `state`, ``dim x n_features / 2``
    normals), so map tasks that sum features over a store's segments all use the same map.

    Attributes
    ----------
    state : dict
        State of the bit generator the frequencies are drawn from.
    dim : int
        Vector dimension.
    half : int
        Frequencies (each gives a cosine and a sine feature).
    bandwidths : numpy.ndarray
        Kernel bandwidths, in the order of the multipliers.
    multipliers : tuple of float
        The bandwidths as multiples of the median distance.
    """

    state: dict[str, Any]
    dim: int
    half: int
    bandwidths: NDArray[np.float64]
    multipliers: tuple[float, ...]

    @property
    def n_features(self) -> int:
        """Length of one row's features (all bandwidths)."""
        return 2 * self.half * self.bandwidths.size

    @property
    def _by_size(self) -> NDArray[np.int64]:
        # largest bandwidth first, so the others may follow by angle doubling
        return np.argsort(-self.bandwidths, kind="stable")

    @functools.cached_property
    def _map(self) -> tuple[NDArray[np.float32], NDArray[np.float32], bool]:
        bg = getattr(np.random, self.state["bit_generator"])()
        bg.state = self.state
        w0 = np.random.Generator(bg).standard_normal((self.dim, self.half)).astype(np.float32)
        inv = (1.0 / self.bandwidths[self._by_size]).astype(np.float32)
        return w0, inv, bool(np.allclose(inv[1:], 2.0 * inv[:-1], rtol=1e-6))

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_map"}

    def features(self, x: NDArray[np.float32]) -> NDArray[np.float32]:
        """Random features of the rows of `x` ``(rows, n_features)``, largest bandwidth first."""
        w0, inv, doubling = self._map
        return _features(x @ w0, inv, doubling)

    def statistics(self, diff: NDArray[np.float64]) -> NDArray[np.float64]:
        """MMD² per bandwidth (multiplier order) of feature-mean differences ``(p, F)``."""
        d = diff.reshape(diff.shape[0], self.bandwidths.size, 2 * self.half)
        d = d[:, np.argsort(self._by_size)]
        # features scaled by 1 / sqrt(half) make their products average to the kernel
        return np.einsum("pbf,pbf->pb", d, d) / self.half


def mmd_design(
    pooled: NDArray[np.float32], rng: np.random.Generator, *,
    bandwidths: tuple[float, ...] = BANDWIDTHS, n_features: int = N_FEATURES,
) -> MMDDesign:
    """The feature map of an MMD test of the (subsampled) pooled rows: median-heuristic
    bandwidths, then the frequencies, drawn from `rng` in that order."""
    if not bandwidths or min(bandwidths) <= 0:
        raise InvalidInputError(f"bandwidths: expected positive multipliers, got {bandwidths!r}")
    if n_features < 2:
        raise InvalidInputError(f"n_features: expected at least 2, got {n_features!r}")
    sigma0 = median_distance(pooled, rng)
    half = max(1, n_features // 2)
    state = rng.bit_generator.state
    rng.standard_normal((pooled.shape[1], half))  # the frequencies; redrawn from `state`
    return MMDDesign(state=state, dim=int(pooled.shape[1]), half=half,
                     bandwidths=np.asarray(bandwidths, dtype=np.float64) * sigma0,
                     multipliers=tuple(float(b) for b in bandwidths))


def feature_sums(x: NDArray[Any], design: MMDDesign) -> NDArray[np.float64]:
    """Sum over the rows of `x` of their random features ``(n_features,)``, float64.

    Sums over disjoint row sets add up, so a window's sum may be taken segment by segment.
    """
    x = _as_f32(x)
    out = np.zeros(design.n_features, dtype=np.float64)
    for lo in range(0, x.shape[0], _ROW_CHUNK):
        out += design.features(x[lo:lo + _ROW_CHUNK]).sum(axis=0, dtype=np.float64)
    return out


def mmd_permutation_test(
    x: NDArray[np.float32], y: NDArray[np.float32], design: MMDDesign, rng: np.random.Generator,
    *, n_permutations: int, sums: tuple[NDArray[np.float64], NDArray[np.float64]],
    counts: tuple[int, int],
) -> MMDTest:
    """The MMD test of :func:`mmd_test` once the design and the feature sums are known.

    `x`, `y` are the subsampled sides the permutations split; `sums` and `counts` are the
    feature sums and row counts of all rows of each side (those give the reported MMD²).
    """
    m, n = x.shape[0], y.shape[0]
    w = _assignments(m, n, n_permutations, rng)
    pooled = np.concatenate([x, y])
    diff = np.zeros((w.shape[0], design.n_features), dtype=np.float64)
    for lo in range(0, m + n, _ROW_CHUNK):
        diff += w[:, lo:lo + _ROW_CHUNK] @ design.features(pooled[lo:lo + _ROW_CHUNK])
    stats = design.statistics(diff)
    pv = _rank_p(stats)
    minp = pv.min(axis=1)
    p_agg = float(np.count_nonzero(minp <= minp[0]) / minp.size)
    observed = design.statistics((sums[0] / counts[0] - sums[1] / counts[1])[None])[0]
    mid = int(np.argmin(np.abs(np.log(np.asarray(design.multipliers, dtype=np.float64)))))
    return MMDTest(mmd2=float(observed[mid]), p_value=p_agg, bandwidths=design.bandwidths,
                   statistics=observed, p_values=pv[0].copy(), n_ref=m, n_win=n,
                   n_permutations=int(n_permutations))


def mmd_test(
    ref: NDArray[Any],
    win: NDArray[Any],
    *,
    n_permutations: int = 200,
    bandwidths: tuple[float, ...] = BANDWIDTHS,
    n_features: int = N_FEATURES,
    max_rows: int = MMD_MAX_ROWS,
    random_state: RandomState = 0,
) -> MMDTest:
    """Aggregated multi-bandwidth MMD permutation test with random Fourier features.

    The bandwidths are `bandwidths` times the median pairwise distance of a pooled subsample.
    One set of ``n_features // 2`` Gaussian frequencies is drawn and scaled per bandwidth;
    each bandwidth's features are their cosines and sines (``n_features`` columns, scaled so
    that feature products average to the kernel; with bandwidths in ratios of 2, as the
    default, one cos/sin evaluation serves all three through the double-angle formulas). The
    statistic per bandwidth is the squared norm of the difference of the two sides' mean
    features: the reported MMD² uses every row of both sides (feature sums, which add up
    over any partition of the rows), the permutation test the subsample of at most
    `max_rows` per side. Every permutation (a random split
    of the pooled rows into sizes m and n) reweights the same features, so all B permutations
    cost one ``(B + 1, m + n) @ (m + n, features)`` product, taken in row chunks (memory stays
    bounded by the chunk, not the sample). Per bandwidth, the p-value of the observed split and
    of every permutation is its rank among all B + 1 statistics; the aggregated p-value is the
    share of the B + 1 splits whose smallest p-value is at most the observed smallest (the
    observed split counts itself, so it is ``(1 + #{perm min-p <= observed min-p}) / (1 + B)``).

    Guarantee: under exchangeability the observed split is a uniform draw among the B + 1, so
    ``P(p <= alpha) <= alpha`` exactly, whatever the features or bandwidths.

    Parameters
    ----------
    ref, win : array-like, shapes (m, d) and (n, d)
        The two samples (each at least 2 rows).
    n_permutations : int, default 200
    bandwidths : tuple of float, default (0.5, 1, 2)
        Multiples of the median distance.
    n_features : int, default 1024
        Random features per bandwidth (even).
    max_rows : int, default 20_000
        Rows kept per side for the permutation test (a seeded subsample above it).
    random_state : int or numpy.random.Generator

    Returns
    -------
    MMDTest
    """
    rng = _rng(random_state)
    a, b = _as_f32(ref), _as_f32(win)
    x = subsample(a, max_rows, rng)
    y = subsample(b, max_rows, rng)
    design = mmd_design(np.concatenate([x, y]), rng, bandwidths=bandwidths,
                        n_features=n_features)
    return mmd_permutation_test(x, y, design, rng, n_permutations=n_permutations,
                                sums=(feature_sums(a, design), feature_sums(b, design)),
                                counts=(a.shape[0], b.shape[0]))


@dataclass(frozen=True)
class ClassifierTest:
    """Result of :func:`classifier_test`.

    Attributes
    ----------
    auc : float
        Out-of-fold ROC-AUC (stratified k-fold) of telling window rows (positive) from
        reference rows: the effect size, 0.5 when the two cannot be told apart.
    p_value : float
        One-sided Mann-Whitney p-value of window scores above reference scores, on the rows
        of `p_method`'s design.
    p_method : str
        ``"holdout"`` or ``"oof"``.
    n_ref, n_win : int
        Rows per side after subsampling.
    """

    auc: float
    p_value: float
    p_method: str
    n_ref: int
    n_win: int


P_METHODS = ("holdout", "oof")


def _model(C: float) -> Any:  # noqa: N803 - scikit-learn's name
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=1000))


def classifier_test(
    ref: NDArray[Any],
    win: NDArray[Any],
    *,
    max_rows: int = CLASSIFIER_MAX_ROWS,
    n_splits: int = 5,
    C: float = 1.0,  # noqa: N803 - scikit-learn's name
    p_method: str = "holdout",
    random_state: RandomState = 0,
) -> ClassifierTest:
    """Domain-classifier test: can a logistic regression tell the window from the reference?

    Features are standardised inside each fit; ``LogisticRegression(C=C, max_iter=1000)``
    scores every row out of fold (stratified `n_splits`-fold ``cross_val_predict``) and the
    AUC of those scores is reported. The p-value is a one-sided Mann-Whitney U test of window
    scores above reference scores (U / (m n) is the AUC, so this is the AUC's own null):

    - ``"holdout"`` (default): one more model is fitted on a stratified half of the rows and
      the test runs on the other half's scores. Given the fitted model, the held-out scores are
      independent draws, so under exchangeability the test has its nominal level.
    - ``"oof"``: the test runs on the out-of-fold scores. They are not independent (each
      model saw the other folds), and the cross-validated AUC varies more under the null than
      Mann-Whitney assumes: 100 vs 100 rows in 16-d rejected 10-12 % of null splits at
      alpha 0.05. Kept for comparison only.

    Parameters
    ----------
    ref, win : array-like, shapes (m, d) and (n, d)
        Each side needs at least `n_splits` rows.
    max_rows : int, default 10_000
        Rows kept per side (a seeded subsample above it).
    n_splits : int, default 5
    C : float, default 1.0
    p_method : {"holdout", "oof"}
    random_state : int or numpy.random.Generator

    Returns
    -------
    ClassifierTest
    """
    from scipy.stats import mannwhitneyu
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict, train_test_split

    if p_method not in P_METHODS:
        raise InvalidInputError(f"p_method: expected one of {list(P_METHODS)}, got {p_method!r}")
    rng = _rng(random_state)
    x = subsample(_as_f32(ref), max_rows, rng)
    y = subsample(_as_f32(win), max_rows, rng)
    data = np.concatenate([x, y])
    labels = np.r_[np.zeros(x.shape[0], np.int8), np.ones(y.shape[0], np.int8)]
    seeds = rng.integers(2**31 - 1, size=2)
    cv = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=int(seeds[0]))
    scores = cross_val_predict(_model(C), data, labels, cv=cv, method="decision_function")
    auc = float(roc_auc_score(labels, scores))
    if p_method == "oof":
        test_scores, test_labels = scores, labels
    else:
        tr, te = train_test_split(np.arange(labels.size), test_size=0.5, stratify=labels,
                                  random_state=int(seeds[1]))
        model = _model(C).fit(data[tr], labels[tr])
        test_scores, test_labels = model.decision_function(data[te]), labels[te]
    p = float(mannwhitneyu(test_scores[test_labels == 1], test_scores[test_labels == 0],
                           alternative="greater").pvalue)
    return ClassifierTest(auc=auc, p_value=p, p_method=p_method, n_ref=int(x.shape[0]),
                          n_win=int(y.shape[0]))


@dataclass(frozen=True)
class ComponentsTest:
    """Result of :func:`components_test`.

    Attributes
    ----------
    drifted : float
        Share of components whose Benjamini-Hochberg adjusted p-value is <= alpha.
    p_value : float
        Bonferroni minimum p-value over components: ``min(1, k * min p)``.
    p_values, p_adjusted : numpy.ndarray
        Kolmogorov-Smirnov p-value per component, raw and BH-adjusted.
    explained_variance_ratio : numpy.ndarray
        Of the fitted PCA.
    """

    drifted: float
    p_value: float
    p_values: NDArray[np.float64]
    p_adjusted: NDArray[np.float64]
    explained_variance_ratio: NDArray[np.float64] = field(repr=False)


def components_test(
    ref: NDArray[Any],
    win: NDArray[Any],
    *,
    n_components: int = 20,
    alpha: float = 0.05,
    fit: str = "pooled",
    max_rows: int = MMD_MAX_ROWS,
    random_state: RandomState = 0,
) -> ComponentsTest:
    """Per-component Kolmogorov-Smirnov tests on principal components.

    A PCA with ``min(n_components, d, m - 1)`` components is fitted (by default on both
    samples pooled), both samples are projected, and each component is compared with
    ``scipy.stats.ks_2samp``. The components' p-values are adjusted by Benjamini-Hochberg
    (``scipy.stats.false_discovery_control``) for the share drifted, and combined by Bonferroni
    (``min(1, k * min p)``) for the method's p-value, which holds the level for any dependence
    between components.

    Why pooled: a fit on the reference alone gives the reference its largest variance along
    its own top components (the fit overfits it), which KS reads as drift. Over 400 null splits
    of 100 vs 100 rows in 16-d, ``fit="reference"`` rejected 10.8 % at alpha 0.05 and
    ``fit="pooled"`` 5.3 %: the pooled fit treats both sides alike, so exchanging rows between
    them changes nothing.

    Parameters
    ----------
    ref, win : array-like, shapes (m, d) and (n, d)
        The reference needs at least 2 rows.
    n_components : int, default 20
    alpha : float, default 0.05
        Level a BH-adjusted p-value must reach to count a component as drifted.
    fit : {"pooled", "reference"}
        The rows the PCA is fitted on.
    max_rows : int, default 20_000
        Rows kept per side (a seeded subsample above it).
    random_state : int or numpy.random.Generator

    Returns
    -------
    ComponentsTest
    """
    from scipy.stats import false_discovery_control, ks_2samp

    if fit not in ("pooled", "reference"):
        raise InvalidInputError(f"fit: expected 'pooled' or 'reference', got {fit!r}")
    rng = _rng(random_state)
    x = subsample(np.asarray(ref, dtype=np.float64), max_rows, rng)
    y = subsample(np.asarray(win, dtype=np.float64), max_rows, rng)
    k = int(min(n_components, x.shape[1], x.shape[0] - 1))
    basis = np.concatenate([x, y]) if fit == "pooled" else x
    mu = basis.mean(axis=0)
    # PCA by the eigenvectors of the d x d covariance: 5x faster than sklearn's PCA at
    # 20k x 384 (0.6 s against 3 s, 2 shared cores), same components up to sign.
    centred = basis - mu
    evals, evecs = np.linalg.eigh(centred.T @ centred)
    top = evecs[:, ::-1][:, :k]
    px, py = (x - mu) @ top, (y - mu) @ top
    p = np.asarray(ks_2samp(px, py, axis=0).pvalue, dtype=np.float64).reshape(-1)
    adj = np.asarray(false_discovery_control(p), dtype=np.float64)
    total = float(evals.sum())
    ratio = np.clip(evals[::-1][:k], 0.0, None) / total if total > 0 else np.zeros(k)
    return ComponentsTest(drifted=float(np.mean(adj <= alpha)),
                          p_value=float(min(1.0, k * p.min())), p_values=p, p_adjusted=adj,
                          explained_variance_ratio=ratio)


def holm(p: NDArray[Any]) -> NDArray[np.float64]:
    """Holm's step-down adjusted p-values (family-wise error control for any dependence)."""
    p = np.asarray(p, dtype=np.float64)
    k = p.size
    if k == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate((k - np.arange(k)) * p[order])
    out = np.empty(k, dtype=np.float64)
    out[order] = np.minimum(stepped, 1.0)
    return out
