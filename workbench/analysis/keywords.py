"""Cluster keywords by class-based TF-IDF (c-TF-IDF, as in BERTopic) over a text column.

The texts of one cluster are treated as one document: a term scores high for a cluster when it
is frequent there (term frequency, L1-normalised per cluster) and rare across clusters
(``idf = log(1 + A / f_t)``, with ``A`` the mean number of words per cluster and ``f_t`` the
term's count over all clusters). English stop words are dropped by scikit-learn's
``CountVectorizer``, and tokens are words of two or more letters (no numbers).

The document-term matrix is built once (:class:`TermCounts`); keywords for any later labelling
(after a re-cluster, a merge or an outlier reassignment) are a sparse product away.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from .._validation import check_positive_int
from ..errors import InvalidInputError

if TYPE_CHECKING:  # scipy is imported on use: `import workbench` stays light
    import scipy.sparse as sp

__all__ = [
    "GENERIC_WORDS",
    "KeywordsSkippedWarning",
    "TermCounts",
    "class_tfidf",
    "cluster_keywords",
    "drop_generic",
    "stop_words_with_generic",
]

#: Words of two or more letters: numbers, ids and punctuation make poor keywords.
TOKEN_PATTERN = r"(?u)\b[^\W\d_]{2,}\b"

#: Words of technical writing that are not English stop words but say nothing about a topic:
#: in the demo's drift report, "bytes, used, values, file, list" led the keywords of a window
#: that had gained the GUI toolkit docs. Pass ``stop_words=stop_words_with_generic()`` to
#: :meth:`TermCounts.fit`, or filter a finished list with :func:`drop_generic`.
GENERIC_WORDS: frozenset[str] = frozenset({
    "argument", "arguments", "attribute", "attributes", "byte", "bytes", "call", "called",
    "calls", "case", "cases", "class", "classes", "data", "default", "defined", "example",
    "examples", "false", "file", "files", "following", "function", "functions", "given",
    "instance", "instances", "like", "list", "lists", "method", "methods", "module", "modules",
    "name", "names", "new", "note", "number", "numbers", "object", "objects", "option",
    "options", "parameter", "parameters", "python", "result", "results", "return", "returned",
    "returns", "set", "specified", "string", "strings", "support", "supported", "true", "type",
    "types", "use", "used", "uses", "using", "value", "values", "version", "way",
})


class KeywordsSkippedWarning(UserWarning):
    """Cluster keywords were not computed (no text column, or no usable words)."""


@dataclass(frozen=True, eq=False)
class TermCounts:
    """Word counts per text: a sparse ``(n_texts, n_terms)`` matrix and its vocabulary.

    Attributes
    ----------
    counts : scipy.sparse.csr_matrix
        ``counts[i, j]`` is how often term ``j`` occurs in text ``i``.
    terms : numpy.ndarray
        The vocabulary (str), column order.
    """

    counts: sp.csr_matrix
    terms: NDArray[np.str_]

    @classmethod
    def fit(
        cls,
        texts: Sequence[str | None],
        *,
        stop_words: str | list[str] | None = "english",
    ) -> TermCounts | None:
        """Count words in `texts` (nulls count as empty); None when no word survives."""
        import scipy.sparse as sp
        from sklearn.feature_extraction.text import CountVectorizer

        docs = ["" if t is None else str(t) for t in texts]
        vec = CountVectorizer(stop_words=stop_words, token_pattern=TOKEN_PATTERN, lowercase=True,
                              dtype=np.float64)
        try:
            counts = vec.fit_transform(docs)
        except ValueError:  # "empty vocabulary": every text is empty or stop words only
            return None
        return cls(counts=sp.csr_matrix(counts), terms=vec.get_feature_names_out())


def class_tfidf(
    counts: TermCounts, labels: NDArray[np.integer[Any]], *, top_n: int = 10
) -> dict[int, list[tuple[str, float]]]:
    """Top `top_n` terms of each label by c-TF-IDF.

    Parameters
    ----------
    counts : TermCounts
        Word counts of the texts, row for row with `labels`.
    labels : numpy.ndarray
        Integer label per text; ``-1`` (noise) takes part in the IDF as a class of its own
        but gets no keywords.
    top_n : int
        Terms kept per label.

    Returns
    -------
    dict of int to list of (str, float)
        For every label >= 0 present: ``(term, score)`` pairs, best first; terms that do not
        occur in the label are never returned.
    """
    import scipy.sparse as sp

    top_n = check_positive_int(top_n, name="top_n")
    labels = np.asarray(labels)
    if labels.shape[0] != counts.counts.shape[0]:
        raise InvalidInputError(
            f"labels: expected {counts.counts.shape[0]} labels (one per text), got "
            f"{labels.shape[0]}"
        )
    classes, inverse = np.unique(labels, return_inverse=True)
    onehot = sp.csr_matrix(
        (np.ones(labels.size), (inverse, np.arange(labels.size))),
        shape=(classes.size, labels.size),
    )
    per_class = np.asarray((onehot @ counts.counts).todense())  # (n_classes, n_terms)
    words_per_class = per_class.sum(axis=1, keepdims=True)
    tf = per_class / np.maximum(words_per_class, 1.0)
    mean_words = float(words_per_class.mean())
    term_total = per_class.sum(axis=0)
    idf = np.log1p(mean_words / np.maximum(term_total, 1.0))
    scores = tf * idf
    out: dict[int, list[tuple[str, float]]] = {}
    for row, c in enumerate(classes):
        if c < 0:
            continue
        s = scores[row]
        k = min(top_n, int(np.count_nonzero(per_class[row])))
        if k == 0:
            out[int(c)] = []
            continue
        best = np.argpartition(-s, k - 1)[:k]
        best = best[np.lexsort((counts.terms[best], -s[best]))]
        out[int(c)] = [(str(counts.terms[j]), float(s[j])) for j in best]
    return out


def cluster_keywords(
    texts: Sequence[str | None] | pl.Series,
    labels: NDArray[np.integer[Any]],
    *,
    top_n: int = 10,
    stop_words: str | list[str] | None = "english",
) -> dict[int, list[str]]:
    """Keywords of each cluster from its texts (c-TF-IDF); a convenience over :func:`class_tfidf`.

    Warns :class:`KeywordsSkippedWarning` and returns ``{}`` when no word survives the stop
    words.

    Examples
    --------
    >>> import numpy as np
    >>> texts = ["cats purr", "a cat purrs and cats meow", "stocks fell", "the stock market fell"]
    >>> cluster_keywords(texts, np.array([0, 0, 1, 1]), top_n=2)
    {0: ['cats', 'cat'], 1: ['fell', 'market']}
    """
    values = texts.to_list() if isinstance(texts, pl.Series) else list(texts)
    counts = TermCounts.fit(values, stop_words=stop_words)
    if counts is None:
        warnings.warn(
            "keywords: the texts hold no words once stop words are removed; keywords are left "
            "empty", KeywordsSkippedWarning, stacklevel=2,
        )
        return {}
    return {c: [t for t, _ in terms]
            for c, terms in class_tfidf(counts, labels, top_n=top_n).items()}


def drop_generic(words: Sequence[str], *, extra: Sequence[str] = ()) -> list[str]:
    """`words` without :data:`GENERIC_WORDS` (and `extra`), order kept.

    Examples
    --------
    >>> drop_generic(["bytes", "widget", "used", "canvas"])
    ['widget', 'canvas']
    """
    skip = GENERIC_WORDS | {w.lower() for w in extra}
    return [w for w in words if w.lower() not in skip]


def stop_words_with_generic() -> list[str]:
    """scikit-learn's English stop words and :data:`GENERIC_WORDS`, for ``stop_words=``."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return sorted(ENGLISH_STOP_WORDS | GENERIC_WORDS)
