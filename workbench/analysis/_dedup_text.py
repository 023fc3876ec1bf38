"""Text side of deduplication: normalised content keys, lexical features of candidate pairs, and
the calibrated cosine + lexical blend (:class:`DedupBlend`).

Why rapidfuzz for the lexical verifier: the candidate pairs come from the kNN graph, so no
locality-sensitive hashing is needed to find them, only a score per pair, and rapidfuzz computes
exact scores (not MinHash estimates) in C++ over all cores (``cpdist``). Measured on the labelled
pairs in ``../shared/data`` (score >= 4.5 as duplicate, average precision on the test splits):
token-sort ratio 0.553 on STS-B against 0.37 for word-set Jaccard and 0.38 for character-5-gram
Jaccard; on SICK the three are close (0.36, 0.40, 0.40). The blend uses several of them (they
fail differently) with the cosine, fitted by logistic regression.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from ..errors import InvalidInputError

#: Features of a pair, in the order of :attr:`DedupBlend.coef`.
FEATURES = ("cosine", "ratio", "token_set", "token_sort", "word_jaccard", "length_ratio")


def normalized_text(texts: pl.Series, *, punctuation: bool = False) -> pl.Series:
    """Unicode NFKC, case-folded (lowercase), whitespace collapsed and stripped; with
    `punctuation`, punctuation and symbols are removed too (``"Hello, world!" == "hello world"``).
    """
    s = texts.cast(pl.Utf8).fill_null("").str.normalize("NFKC").str.to_lowercase()
    if punctuation:
        s = s.str.replace_all(r"[\p{P}\p{S}]+", " ")
    return s.str.replace_all(r"\s+", " ").str.strip_chars()


def content_hash(texts: pl.Series, *, punctuation: bool = False) -> NDArray[np.uint64]:
    """A 64-bit hash of each text's normalised form (:func:`normalized_text`); empty texts get
    distinct values so that blank rows are never called exact duplicates of each other."""
    norm = normalized_text(texts, punctuation=punctuation)
    h = norm.hash(seed=0x5EED).to_numpy().astype(np.uint64)
    blank = (norm.str.len_chars() == 0).to_numpy()
    if blank.any():
        # 2**63 + row: outside the range polars' hashes of real text almost surely take
        h[blank] = np.uint64(1 << 63) + np.flatnonzero(blank).astype(np.uint64)
    return h


def lexical_features(a: list[str], b: list[str]) -> dict[str, NDArray[np.float64]]:
    """Lexical similarities in [0, 1] of aligned pairs of (normalised) texts.

    ``ratio`` (normalised Indel similarity of the characters), ``token_set`` and ``token_sort``
    (the same over word sets / sorted words, rapidfuzz), ``word_jaccard`` (exact Jaccard of the
    word sets) and ``length_ratio`` (shorter / longer, in characters).
    """
    from rapidfuzz import fuzz
    from rapidfuzz.process import cpdist

    if len(a) != len(b):
        raise InvalidInputError(f"b: expected {len(a)} texts, got {len(b)}")
    if not a:
        return {name: np.zeros(0) for name in FEATURES[1:]}
    out = {
        "ratio": cpdist(a, b, scorer=fuzz.ratio, workers=-1),
        "token_set": cpdist(a, b, scorer=fuzz.token_set_ratio, workers=-1),
        "token_sort": cpdist(a, b, scorer=fuzz.token_sort_ratio, workers=-1),
    }
    out = {k: np.asarray(v, dtype=np.float64) / 100.0 for k, v in out.items()}
    wa = pl.Series(a, dtype=pl.Utf8).str.split(" ").list.unique()
    wb = pl.Series(b, dtype=pl.Utf8).str.split(" ").list.unique()
    inter = wa.list.set_intersection(wb).list.len().to_numpy().astype(np.float64)
    union = wa.list.set_union(wb).list.len().to_numpy().astype(np.float64)
    out["word_jaccard"] = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    la = pl.Series(a, dtype=pl.Utf8).str.len_chars().to_numpy().astype(np.float64)
    lb = pl.Series(b, dtype=pl.Utf8).str.len_chars().to_numpy().astype(np.float64)
    longer = np.maximum(la, lb)
    out["length_ratio"] = np.where(longer > 0, np.minimum(la, lb) / np.maximum(longer, 1), 1.0)
    return out


def text_pair_features(a: list[str], b: list[str], *, embedder: Any,
                       punctuation: bool = False) -> dict[str, NDArray[np.float64]]:
    """Every feature of :data:`FEATURES` for labelled text pairs outside a store (to fit or
    evaluate a blend): the cosine of `embedder`'s vectors and the lexical features of the
    normalised texts."""
    va = np.asarray(embedder.embed(a, progress=False), dtype=np.float64)
    vb = np.asarray(embedder.embed(b, progress=False), dtype=np.float64)
    cos = np.einsum("ij,ij->i", va, vb) / np.maximum(
        np.linalg.norm(va, axis=1) * np.linalg.norm(vb, axis=1), 1e-30)
    na = normalized_text(pl.Series(a, dtype=pl.Utf8), punctuation=punctuation).to_list()
    nb = normalized_text(pl.Series(b, dtype=pl.Utf8), punctuation=punctuation).to_list()
    return {"cosine": cos, **lexical_features(na, nb)}


@dataclass(frozen=True)
class DedupBlend:
    """A logistic-regression blend of the cosine and lexical features of a pair.

    ``score = sigmoid(intercept + coef . features)`` with features in the order of
    :data:`FEATURES`, so the score is a calibrated probability that a pair is a duplicate, and
    0.5 is where a pair is as likely a duplicate as not. The probability is that of the data
    the blend was fitted on: under :data:`DEFAULT_BLEND` even identical texts score ~0.80,
    because STS-B's annotators gave some identical-looking pairs less than 4.5 (exact
    duplicates are grouped by their hash anyway, whatever their score).

    Attributes
    ----------
    coef : tuple of float
        One weight per feature of :data:`FEATURES`.
    intercept : float
        The bias term.
    model : str or None
        Name of the embedding model whose cosines the blend was fitted on (the cosine's scale
        depends on the model); None when unknown.
    source : str
        Where the coefficients come from (a dataset, or "fit_blend on n labelled pairs").
    """

    coef: tuple[float, ...]
    intercept: float
    model: str | None = None
    source: str = ""
    features: tuple[str, ...] = field(default=FEATURES)

    def __post_init__(self) -> None:
        if len(self.coef) != len(self.features):
            raise InvalidInputError(
                f"coef: expected {len(self.features)} weights ({', '.join(self.features)}), "
                f"got {len(self.coef)}"
            )
        if not all(math.isfinite(c) for c in (*self.coef, self.intercept)):
            raise InvalidInputError("coef: expected finite weights and intercept")

    def score(self, features: dict[str, NDArray[np.float64]]) -> NDArray[np.float32]:
        """The blended probability for each pair; `features` maps each name to an array."""
        missing = [f for f in self.features if f not in features]
        if missing:
            raise InvalidInputError(f"features: expected {', '.join(missing)}")
        z = np.full(len(features[self.features[0]]), self.intercept, dtype=np.float64)
        for w, name in zip(self.coef, self.features, strict=True):
            z += w * np.asarray(features[name], dtype=np.float64)
        return (1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``DedupBlend(**d)`` after turning lists back into tuples)."""
        return {"coef": list(self.coef), "intercept": self.intercept, "model": self.model,
                "source": self.source, "features": list(self.features)}


def fit_blend(
    features: dict[str, NDArray[np.float64]] | pl.DataFrame,
    labels: Any,
    *,
    model: str | None = None,
    c: float = 10.0,
) -> DedupBlend:
    """Fit a :class:`DedupBlend` to labelled pairs (logistic regression, scikit-learn).

    Parameters
    ----------
    features : dict or polars.DataFrame
        One column per name in :data:`FEATURES` (a :class:`DedupResult`'s ``pairs`` frame has
        them), one row per pair.
    labels : array-like of bool
        True for a duplicate pair, row for row; both classes must occur.
    model : str, optional
        The embedding model the cosines came from (recorded in the blend).
    c : float, default 10.0
        Inverse regularisation strength of the logistic regression.

    Returns
    -------
    DedupBlend

    Raises
    ------
    InvalidInputError
        A feature column is missing, the lengths differ, or only one class is present.
    """
    from sklearn.linear_model import LogisticRegression

    cols = features.to_dict(as_series=False) if isinstance(features, pl.DataFrame) else features
    missing = [f for f in FEATURES if f not in cols]
    if missing:
        raise InvalidInputError(f"features: expected the columns {', '.join(missing)}")
    x = np.column_stack([np.asarray(cols[f], dtype=np.float64) for f in FEATURES])
    y = np.asarray(labels, dtype=bool)
    if y.shape != (x.shape[0],):
        raise InvalidInputError(f"labels: expected {x.shape[0]} labels, got shape {y.shape}")
    if not np.isfinite(x).all():
        raise InvalidInputError("features: expected finite values (no NaN or inf)")
    if y.all() or not y.any():
        raise InvalidInputError("labels: expected both duplicate and non-duplicate pairs")
    lr = LogisticRegression(C=c, max_iter=5000).fit(x, y)
    return DedupBlend(coef=tuple(float(v) for v in lr.coef_[0]),
                      intercept=float(lr.intercept_[0]), model=model,
                      source=f"fit_blend on {y.size} labelled pairs ({int(y.sum())} duplicates)")


#: The shipped default, fitted with :func:`fit_blend` (C=10) on the STS-B train split
#: (``../shared/data/stsb``: 5,749 pairs, score >= 4.5 as duplicate, 628 duplicates) with
#: all-MiniLM-L6-v2 cosines; ``tests/analysis/test_dedup_blend.py`` refits it and checks these
#: numbers. Test-split average precision: STS-B 0.599 against 0.562 for the cosine alone; on
#: SICK it loses (0.661 against 0.735): SICK's pairs are built by editing one sentence, so
#: lexical overlap there does not mean duplicate. Refit on labels of your own data
#: (:func:`fit_blend`) when it matters; ``benchmarks/bench_dedup.py`` fits per dataset.
DEFAULT_BLEND = DedupBlend(
    coef=(13.000945, 0.166677, -0.133012, 1.381408, 0.426853, 2.418422),
    intercept=-15.901603,
    model="sentence-transformers/all-MiniLM-L6-v2",
    source="fit_blend on the STS-B train split (5749 pairs, 628 with score >= 4.5)",
)
