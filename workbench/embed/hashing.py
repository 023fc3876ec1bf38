"""A deterministic character n-gram hashing embedder: no model, for tests and cold start."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from .._validation import check_positive_int
from .base import BaseEmbedder, Fingerprint


class Hashing(BaseEmbedder):
    """Character n-gram feature hashing (scikit-learn's ``HashingVectorizer``), L2-normalised.

    Texts sharing many character n-grams get a high cosine similarity, which is enough to test
    search, dedup and clustering end to end without a neural model.

    Parameters
    ----------
    dim : int
        Output dimension.
    ngram_range : tuple of int
        Character n-gram lengths (within word boundaries).
    batch_size : int
        Texts per call.
    cache : bool, str or Path
        See :class:`~workbench.embed.base.BaseEmbedder`.

    Examples
    --------
    >>> from workbench.embed import Hashing
    >>> Hashing(dim=64).embed(["hello world"], progress=False).shape
    (1, 64)
    """

    name = "hashing"

    def __init__(
        self,
        dim: int = 256,
        *,
        ngram_range: tuple[int, int] = (3, 5),
        batch_size: int = 1024,
        cache: bool | str | Path = False,
    ) -> None:
        super().__init__(batch_size=batch_size, cache=cache)
        self._dim = check_positive_int(dim, name="dim")
        self.ngram_range = (int(ngram_range[0]), int(ngram_range[1]))
        from sklearn.feature_extraction.text import HashingVectorizer

        self._vec = HashingVectorizer(
            analyzer="char_wb", ngram_range=self.ngram_range, n_features=self._dim,
            alternate_sign=True, norm="l2", lowercase=True,
        )

    def _fingerprint(self) -> Fingerprint:
        import sklearn

        config = f"char_wb{self.ngram_range}:{self._dim}:murmur3:l2"
        return Fingerprint(
            name=f"hashing-char{self.ngram_range[0]}-{self.ngram_range[1]}",
            version=sklearn.__version__.split(".")[0],
            dim=self._dim,
            weights_hash=hashlib.sha256(config.encode()).hexdigest(),
            kind="hashing",
            params=(("dim", self._dim), ("ngram_range", list(self.ngram_range))),
        )

    def _embed_batch(self, texts: list[str]) -> NDArray[np.float32]:
        x = self._vec.transform(texts).toarray().astype(np.float32)
        # An empty or all-punctuation text hashes to the zero vector; give it a fixed direction
        # so cosine stays defined.
        zero = ~x.any(axis=1)
        if zero.any():
            x[zero, 0] = 1.0
        return x
