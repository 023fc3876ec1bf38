"""Wrap any function ``texts -> vectors`` as an embedder."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._validation import check_positive_int
from ..errors import InvalidInputError
from .base import BaseEmbedder, Fingerprint


class FromCallable(BaseEmbedder):
    """An embedder around a plain function.

    Parameters
    ----------
    fn : callable
        ``fn(list[str]) -> array-like (n, dim)``.
    name : str
        Model name recorded in the store (two callables with the same name, version and dim are
        considered the same model: choose names that say what the function computes).
    dim : int
        Output dimension.
    version : str
        Model version.
    batch_size : int
        Texts per call.
    cache : bool, str or Path
        Embedding cache.

    Examples
    --------
    >>> import numpy as np
    >>> from workbench.embed import FromCallable
    >>> emb = FromCallable(lambda t: np.ones((len(t), 3)), name="ones", dim=3)
    >>> emb.embed(["a", "b"], progress=False).shape
    (2, 3)
    """

    def __init__(
        self,
        fn: Callable[[Sequence[str]], Any],
        *,
        name: str,
        dim: int,
        version: str = "0",
        batch_size: int = 64,
        cache: bool | str | Path = False,
    ) -> None:
        super().__init__(batch_size=batch_size, cache=cache)
        if not callable(fn):
            raise InvalidInputError(f"fn: expected a callable, got {type(fn).__name__}")
        if not isinstance(name, str) or not name:
            raise InvalidInputError(f"name: expected a non-empty string, got {name!r}")
        self.fn = fn
        self.name = name
        self.version = str(version)
        self._dim = check_positive_int(dim, name="dim")

    def _fingerprint(self) -> Fingerprint:
        ident = f"{self.name}:{self.version}:{self._dim}"
        return Fingerprint(
            name=self.name, version=self.version, dim=self._dim,
            weights_hash=hashlib.sha256(ident.encode()).hexdigest(), kind="callable",
        )

    def _embed_batch(self, texts: list[str]) -> NDArray[np.float32]:
        return np.asarray(self.fn(texts), dtype=np.float32)
