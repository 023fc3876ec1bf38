"""What changed between a reference and a window: cluster shares, emerging and vanishing
clusters (with keywords), rows unlike anything in the reference, each cluster's part of the
centroid shift, keywords of what is new and the rows that best tell the window from the
reference. Keywords leave out English stop words and the generic words of technical writing
(:data:`workbench.analysis.keywords.GENERIC_WORDS`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

#: A cluster is emerging when its share grows by at least this much (absolute) and at least
#: doubles; vanishing when it shrinks by this much and at least halves.
SHARE_STEP = 0.02
#: A window row is "unlike the reference" when its cosine to the nearest reference centroid is
#: below this quantile of the reference rows' own (so ~1 % of a window from the same
#: distribution).
NOVEL_QUANTILE = 0.01
#: Rows used to fit the reference clusters and the domain classifier, at most.
MAX_FIT = 20_000
#: A keyword of what is new is at least this many times as frequent in the window as in the
#: reference (add-one smoothed): KL contributions alone rank a very common word that grew by
#: a third above a rare word that is truly new.
MIN_RATIO = 2.0


@dataclass(frozen=True)
class ReferenceClusters:
    """k-means of the reference (unit centroids) and its rows' nearest-centroid cosines."""

    centroids: NDArray[np.float32]
    labels: NDArray[np.int64]
    novel_cos: float
    source: str


def _unit(x: NDArray[np.float32]) -> NDArray[np.float32]:
    return (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def fit_reference(x_ref: NDArray[np.float32], *, n_clusters: int, random_state: int,
                  labels: NDArray[np.int64] | None = None) -> ReferenceClusters:
    """Clusters of the reference: given `labels` (a ClusterResult's, noise ``-1`` dropped from
    the centroids) or a k-means with `n_clusters` (scikit-learn, on unit vectors)."""
    u = _unit(x_ref)
    if labels is not None:
        ids = np.unique(labels[labels >= 0])
        cent = np.stack([u[labels == c].mean(axis=0) for c in ids]) if ids.size else u[:1]
        source = f"given clustering ({ids.size} clusters)"
    else:
        from sklearn.cluster import KMeans

        k = max(1, min(n_clusters, u.shape[0] // 5))
        rng = np.random.default_rng(random_state)
        fit = u if u.shape[0] <= MAX_FIT else u[rng.choice(u.shape[0], MAX_FIT, replace=False)]
        km = KMeans(n_clusters=k, n_init=3, random_state=random_state).fit(fit)
        cent = km.cluster_centers_
        source = f"k-means on the reference (k={k})"
    cent = _unit(np.asarray(cent, dtype=np.float32))
    lab, cos = assign(u, cent)
    return ReferenceClusters(centroids=cent, labels=lab,
                             novel_cos=float(np.quantile(cos, NOVEL_QUANTILE)), source=source)


def assign(x: NDArray[np.float32], centroids: NDArray[np.float32]
           ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Nearest centroid (cosine) of each row and that cosine."""
    sims = _unit(x) @ centroids.T
    lab = sims.argmax(axis=1)
    return lab.astype(np.int64), sims[np.arange(x.shape[0]), lab].astype(np.float32)


def cluster_changes(x_ref: NDArray[np.float32], x_win: NDArray[np.float32],
                    ref: ReferenceClusters) -> tuple[pl.DataFrame, float]:
    """Per reference cluster: shares in the reference and the window, their difference, a
    status (emerging / vanishing / stable) and its contribution to the centroid shift (the
    contributions sum to 1 over the clusters); and the window's share of rows unlike the
    reference. Rows are assigned to their nearest reference centroid."""
    k = ref.centroids.shape[0]
    lw, cw = assign(x_win, ref.centroids)
    lr = ref.labels
    n_r, n_w = max(lr.size, 1), max(lw.size, 1)
    share_r = np.bincount(lr, minlength=k) / n_r
    share_w = np.bincount(lw, minlength=k) / n_w
    # mean difference split by cluster: sum_c (sum of window rows in c / n_w - same for ref)
    d = x_win.shape[1]
    sum_w = np.zeros((k, d), np.float64)
    sum_r = np.zeros((k, d), np.float64)
    np.add.at(sum_w, lw, x_win)
    np.add.at(sum_r, lr, x_ref)
    parts = sum_w / n_w - sum_r / n_r
    delta = parts.sum(axis=0)
    norm2 = float(delta @ delta)
    contrib = parts @ delta / norm2 if norm2 > 0 else np.zeros(k)
    diff = share_w - share_r
    status = np.where((diff >= SHARE_STEP) & (share_w >= 2 * share_r), "emerging",
                      np.where((-diff >= SHARE_STEP) & (share_w <= share_r / 2), "vanishing",
                               "stable"))
    frame = pl.DataFrame({
        "cluster": np.arange(k, dtype=np.int64), "reference_share": share_r,
        "window_share": share_w, "change": diff, "status": status,
        "shift_contribution": contrib,
    }).sort("change", descending=True)
    novel = float((cw < ref.novel_cos).mean()) if cw.size else 0.0
    return frame, novel


def separating_rows(x_ref: NDArray[np.float32], x_win: NDArray[np.float32], *,
                    random_state: int, top: int = 5) -> tuple[NDArray[np.int64],
                                                              NDArray[np.float64]]:
    """Positions (in the window) and scores of the window rows a logistic domain classifier
    finds least like the reference (highest decision value), best first."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(random_state)

    def sample(x: NDArray[np.float32]) -> NDArray[np.float32]:
        return x if x.shape[0] <= MAX_FIT else x[rng.choice(x.shape[0], MAX_FIT, replace=False)]

    xr, xw = sample(x_ref), sample(x_win)
    y = np.r_[np.zeros(xr.shape[0]), np.ones(xw.shape[0])]
    clf = LogisticRegression(C=1.0, max_iter=1000).fit(np.vstack([xr, xw]), y)
    score = clf.decision_function(x_win)
    best = np.argsort(-score, kind="stable")[:top]
    return best.astype(np.int64), score[best]


def new_keywords(ref_text: list[str | None], win_text: list[str | None], *,
                 top_n: int = 8, min_count: int = 3, min_ratio: float = MIN_RATIO) -> list[str]:
    """Terms over-represented in the window against the reference, best first.

    Each term's contribution to the KL divergence of the window's word distribution from the
    reference's, ``p_w * log(p_w / p_r)`` (counts smoothed by one), over terms the window uses
    at least `min_count` times and at least `min_ratio` times as often as the reference
    (``p_w >= min_ratio * p_r``), stop words and generic words left out. (A two-class
    c-TF-IDF ranks words common to both, "return", "value", first.)
    """
    from .keywords import TermCounts, stop_words_with_generic

    counts = TermCounts.fit(ref_text + win_text, stop_words=stop_words_with_generic())
    if counts is None:
        return []
    m = counts.counts
    nr = len(ref_text)
    cr = np.asarray(m[:nr].sum(axis=0)).ravel()
    cw = np.asarray(m[nr:].sum(axis=0)).ravel()
    pr = (cr + 1.0) / (cr.sum() + cr.size)
    pw = (cw + 1.0) / (cw.sum() + cw.size)
    score = np.where((cw >= min_count) & (pw >= min_ratio * pr), pw * np.log(pw / pr),
                     -np.inf)
    best = np.argsort(-score, kind="stable")[:top_n]
    return [str(counts.terms[j]) for j in best if np.isfinite(score[j])]


def emerging_keywords(win_text: list[str | None], win_labels: NDArray[np.int64],
                      ref_text: list[str | None], clusters: list[int], *,
                      top_n: int = 6) -> dict[int, list[str]]:
    """Keywords of the window's rows in each listed (emerging) cluster, against the whole
    reference as the background class."""
    return _keywords_against(win_text, win_labels, ref_text, clusters, top_n=top_n)


def vanishing_keywords(ref_text: list[str | None], ref_labels: NDArray[np.int64],
                       win_text: list[str | None], clusters: list[int], *,
                       top_n: int = 6) -> dict[int, list[str]]:
    """Keywords of the reference's rows in each listed (vanishing) cluster, where it lived,
    against the whole window as the background class: what the window lost."""
    return _keywords_against(ref_text, ref_labels, win_text, clusters, top_n=top_n)


def _keywords_against(texts: list[str | None], labels: NDArray[np.int64],
                      background: list[str | None], clusters: list[int], *,
                      top_n: int) -> dict[int, list[str]]:
    """c-TF-IDF keywords of the `texts` in each of `clusters` (by `labels`), with all of
    `background` as one more class."""
    from .keywords import TermCounts, class_tfidf, stop_words_with_generic

    if not clusters:
        return {}
    counts = TermCounts.fit(background + texts, stop_words=stop_words_with_generic())
    if counts is None:
        return {c: [] for c in clusters}
    lab = np.r_[np.full(len(background), -1, np.int64),
                np.where(np.isin(labels, clusters), labels, -1)]
    got = class_tfidf(counts, lab, top_n=top_n)
    return {c: [t for t, _ in got.get(c, [])] for c in clusters}


def summarize(changes: pl.DataFrame) -> dict[str, Any]:
    """Emerging and vanishing cluster ids of a `cluster_changes` frame."""
    return {
        "emerging": changes.filter(pl.col("status") == "emerging")["cluster"].to_list(),
        "vanishing": changes.filter(pl.col("status") == "vanishing")["cluster"].to_list(),
    }
