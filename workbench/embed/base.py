"""The embedder protocol, model fingerprints and the shared batching/caching logic."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray
from tqdm.auto import tqdm

from .._validation import check_positive_int, check_texts, check_vectors
from ..errors import InvalidInputError
from .cache import EmbeddingCache, default_cache_dir
from .tokens import TokenIds


@dataclass(frozen=True)
class Fingerprint:
    """What identifies the model that made a set of vectors.

    Attributes
    ----------
    name : str
        Model name, e.g. ``"sentence-transformers/all-MiniLM-L6-v2"``.
    version : str
        Version of the package or weights.
    dim : int
        Output dimension.
    weights_hash : str
        Hash of the weights (or of the configuration for models without weights).
    kind : str
        Which embedder class rebuilds it (``"minilm"``, ``"hashing"``, ``"callable"``,
        ``"external"``).
    params : dict
        Constructor parameters needed to rebuild the embedder.
    """

    name: str
    version: str
    dim: int
    weights_hash: str
    kind: str = "external"
    params: tuple[tuple[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form (stored in the manifest)."""
        d = asdict(self)
        d["params"] = dict(self.params)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Fingerprint:
        """Inverse of :meth:`to_dict`."""
        return cls(
            name=str(d["name"]), version=str(d["version"]), dim=int(d["dim"]),
            weights_hash=str(d["weights_hash"]), kind=str(d.get("kind", "external")),
            params=tuple(sorted((d.get("params") or {}).items())),
        )

    @property
    def digest(self) -> str:
        """A short stable hash of the whole fingerprint (the embedding cache key)."""
        raw = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(raw).hexdigest()[:24]

    def same_model(self, other: Fingerprint) -> bool:
        """Whether `other` is the same model (name, version, dim and weights)."""
        return (self.name, self.version, self.dim, self.weights_hash) == (
            other.name, other.version, other.dim, other.weights_hash,
        )

    def describe(self) -> str:
        """One line for messages: name, version, dim and a weights-hash prefix."""
        return f"{self.name} v{self.version} (dim {self.dim}, weights {self.weights_hash[:12]})"


@runtime_checkable
class Embedder(Protocol):
    """Anything that turns texts into float32 vectors and says which model it is."""

    @property
    def dim(self) -> int:
        """Output dimension."""
        ...

    @property
    def fingerprint(self) -> Fingerprint:
        """Identity of the model."""
        ...

    def embed(self, texts: Sequence[str], *, progress: bool = True) -> NDArray[np.float32]:
        """Embed `texts` into an array of shape (len(texts), dim)."""
        ...


#: Padded tokens per forward pass of the built-in transformer embedders. Measured on 2 cores
#: (MiniLM, texts sorted by token count, batches capped at 64 texts): fp32 torch embedded
#: 798 short sentences/s and 179 paragraphs/s at 1024, 783 and 164 at 2048, 738 and 142 at
#: 4096, against 609 and 70 with plain 64-text batches (score tensors of 64 x 12 x 256 x 256
#: floats, 200 MB a layer, do not stay in cache). ONNX int8 peaked at 512 to 1024.
TRANSFORMER_BATCH_TOKENS = 1024
#: Texts sorted into batches at a time (and tokenized at a time, for embedders that count
#: tokens): within 16,384 texts, lengths sort almost as well as over all of them, and the
#: token ids held stay bounded however many texts one ``embed`` call gets.
TOKENIZE_CHUNK = 16_384


class BaseEmbedder:
    """Batching, progress and the on-disk cache shared by the built-in embedders.

    Subclasses implement ``_fingerprint()`` and either ``_embed_batch(texts) -> array`` or,
    for a model that reads token ids, ``_make_tokens() -> TokenIds`` and
    ``_embed_padded(input_ids, attention_mask) -> array``: texts are then tokenized once,
    batches hold similar token counts and at most `max_batch_tokens` padded tokens, and the
    model gets them padded. (``_token_ids`` and ``_embed_ids`` are the hooks underneath, for
    ids that are not a tokenizer's.)

    Parameters
    ----------
    batch_size : int
        Texts per model call, at most.
    cache : bool, str or Path
        ``True`` uses the default cache folder (``$WORKBENCH_CACHE_DIR`` or
        ``~/.cache/workbench``), a path uses that folder, ``False`` disables caching.
    max_batch_tokens : int or None
        Padded tokens per model call, at most (a single longer text still goes alone), for
        embedders that count tokens; ``None`` batches by `batch_size` alone.
    """

    name: str = "embedder"

    def __init__(self, *, batch_size: int = 64, cache: bool | str | Path = False,
                 max_batch_tokens: int | None = None) -> None:
        self.batch_size = check_positive_int(batch_size, name="batch_size")
        self.max_batch_tokens = None if max_batch_tokens is None else check_positive_int(
            max_batch_tokens, name="max_batch_tokens")
        self.cache = cache
        self._cache: EmbeddingCache | None = None
        self._fp: Fingerprint | None = None
        self._tokens: TokenIds | None = None  # made by _make_tokens on first use
        self.calls = 0  # texts actually sent to the model (cache misses)

    @property
    def dim(self) -> int:
        """Output dimension."""
        return self.fingerprint.dim

    @property
    def fingerprint(self) -> Fingerprint:
        """Identity of the model (computed once)."""
        if self._fp is None:
            self._fp = self._fingerprint()
        return self._fp

    def _fingerprint(self) -> Fingerprint:
        raise NotImplementedError

    def _embed_batch(self, texts: list[str]) -> NDArray[np.float32]:
        ids = self._token_ids(texts)
        if ids is None:
            raise NotImplementedError
        return self._embed_ids(ids)

    def tokens(self) -> TokenIds | None:
        """The model's tokenizer as token ids, made once; ``None``: the model reads text."""
        if self._tokens is None:
            self._tokens = self._make_tokens()
        return self._tokens

    def _make_tokens(self) -> TokenIds | None:
        return None

    def _token_ids(self, texts: list[str]) -> list[list[int]] | None:
        """Token ids of each text as the model reads it (truncated); ``None``: no tokens."""
        tokens = self.tokens()
        return None if tokens is None else tokens(texts)

    def _embed_ids(self, ids: list[list[int]]) -> NDArray[np.float32]:
        """Vectors of texts given as token ids (from ``_token_ids``): padded, then the model."""
        tokens = self.tokens()
        if tokens is None:
            raise NotImplementedError
        return self._embed_padded(*tokens.pad(ids))

    def _embed_padded(self, input_ids: NDArray[np.int64], attention_mask: NDArray[np.int64]
                      ) -> NDArray[np.float32]:
        """Vectors of padded token ids (``attention_mask`` is 1 on real tokens)."""
        raise NotImplementedError

    def _batches(self, texts: list[str]
                 ) -> Iterator[tuple[list[str], list[list[int]] | None]]:
        """`texts` in model calls, with their token ids: similar lengths together, longest first.

        Similar lengths waste less padding (2-3x faster on paragraphs than arrival order).
        With token ids a batch is as many texts as fit `max_batch_tokens` padded to its
        first (longest) one, and at most `batch_size`; otherwise `batch_size` texts ordered
        by characters, and the ids are ``None``. Texts are sorted and tokenized
        :data:`TOKENIZE_CHUNK` at a time, which bounds the ids held in memory.
        """
        for start in range(0, len(texts), TOKENIZE_CHUNK):
            yield from self._chunk_batches(texts[start : start + TOKENIZE_CHUNK])

    def _chunk_batches(self, texts: list[str]
                       ) -> Iterator[tuple[list[str], list[list[int]] | None]]:
        ids = self._token_ids(texts) if texts else None
        if ids is None:
            ordered = sorted(texts, key=len, reverse=True)
            for start in range(0, len(ordered), self.batch_size):
                yield ordered[start : start + self.batch_size], None
            return
        counts = [len(x) for x in ids]
        order = sorted(range(len(texts)), key=lambda i: (-counts[i], -len(texts[i])))
        budget = self.max_batch_tokens
        start = 0
        while start < len(order):
            n = self.batch_size if budget is None else max(
                1, min(self.batch_size, budget // max(counts[order[start]], 1)))
            chosen = order[start : start + n]
            yield [texts[i] for i in chosen], [ids[i] for i in chosen]
            start += n

    def _get_cache(self) -> EmbeddingCache | None:
        if self.cache is False or self.cache is None:
            return None
        if self._cache is None:
            folder = default_cache_dir() if self.cache is True else Path(self.cache)
            self._cache = EmbeddingCache(folder)
        return self._cache

    def embed(self, texts: Sequence[str], *, progress: bool = True) -> NDArray[np.float32]:
        """Embed `texts`, reading and filling the cache, with a progress bar.

        Parameters
        ----------
        texts : sequence of str
            Texts to embed (a single string is accepted).
        progress : bool
            Show a tqdm progress bar.

        Returns
        -------
        numpy.ndarray
            float32 array of shape (len(texts), dim).
        """
        items = check_texts(texts)
        out = np.empty((len(items), self.dim), dtype=np.float32)
        cache = self._get_cache()
        todo = list(range(len(items)))
        if cache is not None:
            found = cache.get(self.fingerprint.digest, items)
            todo = [i for i in todo if i not in found]
            for i, vec in found.items():
                out[i] = vec
        # Embed each distinct missing text once.
        unique: dict[str, list[int]] = {}
        for i in todo:
            unique.setdefault(items[i], []).append(i)
        texts_todo = list(unique)
        with tqdm(total=len(texts_todo), desc=f"embedding ({self.name})", unit="text",
                  disable=not progress or not texts_todo) as bar:
            for batch, ids in self._batches(texts_todo):
                raw = self._embed_batch(batch) if ids is None else self._embed_ids(ids)
                vecs = check_vectors(raw, dim=self.dim, name="embeddings")
                if vecs.shape[0] != len(batch):
                    raise InvalidInputError(
                        f"embedder {self.name}: expected {len(batch)} vectors, got {vecs.shape[0]}"
                    )
                self.calls += len(batch)
                for t, v in zip(batch, vecs, strict=True):
                    for i in unique[t]:
                        out[i] = v
                if cache is not None:
                    cache.put(self.fingerprint.digest, batch, vecs)
                bar.update(len(batch))
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.fingerprint.describe()})"
