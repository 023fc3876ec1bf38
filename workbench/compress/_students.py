"""Distilled student embedders: the saved form, loading, and the fingerprint that rebuilds them.

A student folder holds three things, none of them pickled:

- ``weights.safetensors``: every tensor of the student. A static student's are its token
  table ``bag.weight``, rows in teacher token id order, and the teacher token ids that have a
  row: int32 ``token_ids``, or ``token_ranges`` (int32 ``[start, stop)`` runs) where that is
  smaller (a table of the whole vocabulary: a handful of runs instead of 4 bytes a row),
- ``student.json``: what the weights mean (``format``, student kind, dimension, token limit,
  stored precision ``weights_dtype``, the transformer configuration of a layer student, the
  teacher's fingerprint, the training loss curve),
- ``tokenizer/``: the teacher's tokenizer, written by ``save_pretrained``, its
  ``tokenizer.json`` rewritten without indentation and, for a static student, without the
  vocabulary entries the tokenizer can never emit (:func:`dead_token_ids`; ids unchanged).

Older folders still load and keep their form and fingerprint: format 1 (no ``weights_dtype``:
float32, int64 ``token_ids``) and format 2 (float16 tables, int32 ``token_ids``, rows in the
order they were built).

The fingerprint's ``weights_hash`` is the SHA-256 of the safetensors bytes followed by the
canonical JSON config, computed the same way in memory and on disk, so a student has one hash
before and after a save, and :func:`rebuild_student` can tell a folder that was overwritten.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..embed.base import TRANSFORMER_BATCH_TOKENS, BaseEmbedder, Fingerprint
from ..embed.tokens import TokenIds
from ..errors import InvalidInputError, MissingDependencyError, ModelMismatchError

__all__ = ["FORMAT_VERSION", "StudentEmbedder", "computed_state", "dead_token_ids",
           "rebuild_student", "stored_state", "student_format"]

#: Version of the student folder layout (the fingerprint's ``version``).
FORMAT_VERSION = "3"  # 3: rows by id, token_ranges, int8 tables; 2: float16, int32 ids
WEIGHTS_FILE = "weights.safetensors"
CONFIG_FILE = "student.json"
TOKENIZER_DIR = "tokenizer"


def _torch() -> Any:
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - torch comes with sentence-transformers
        raise MissingDependencyError("distilled students need torch: pip install torch") from exc
    return torch


def static_bag(weight: Any, token_ids: Any) -> Any:
    """The static student's module: ``bag`` (an ``nn.EmbeddingBag``, mean) and ``token_ids``.

    ``token_ids[r]`` is the teacher token id of table row ``r`` (ascending from format 3; in
    format 1 and 2 folders row 0 is ``[UNK]``).
    """
    torch = _torch()

    class StaticBag(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bag = torch.nn.EmbeddingBag.from_pretrained(weight, freeze=False, mode="mean")
            self.register_buffer("token_ids", token_ids)

        def forward(self, rows: Any, offsets: Any) -> Any:
            return self.bag(rows, offsets)

    return StaticBag()


class StudentEmbedder(BaseEmbedder):
    """A small embedder distilled from a transformer teacher (see :func:`~.distill.distill`).

    Vectors are L2-normalised; they are comparable with each other, not with the teacher's.

    Parameters
    ----------
    model : torch.nn.Module
        A Hugging Face encoder (``student="layers"``) or the static token-bag module.
    tokenizer : transformers tokenizer
        The teacher's tokenizer.
    config : dict
        JSON-able description: ``student`` (``"layers"`` or ``"static"``), ``dim``,
        ``max_length``, ``teacher`` (fingerprint dict), ``history`` and, for a layer student,
        ``hf_config`` and ``layers``.
    path : str, Path or None
        Folder the student was saved to or loaded from (recorded in the fingerprint).
    batch_size : int
        Texts per forward pass, at most.
    cache : bool, str or Path
        Embedding cache, see :class:`~workbench.embed.base.BaseEmbedder` (off by default:
        students are cheap to run).
    max_batch_tokens : int or None
        Padded tokens per forward pass of a layer student, at most (as
        :class:`~workbench.embed.MiniLM` batches); a static student pads nothing and ignores
        it.

    Attributes
    ----------
    history : list of float
        Mean training loss of each epoch.
    step_history : list of float
        Training loss of each optimisation step.
    """

    def __init__(
        self, model: Any, tokenizer: Any, config: dict[str, Any], *,
        path: str | Path | None = None, batch_size: int | None = None,
        cache: bool | str | Path = False,
        max_batch_tokens: int | None = TRANSFORMER_BATCH_TOKENS,
    ) -> None:
        kind = config["student"]
        if batch_size is None:
            batch_size = 1024 if kind == "static" else 64
        super().__init__(batch_size=batch_size, cache=cache,
                         max_batch_tokens=None if kind == "static" else max_batch_tokens)
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.config = config
        self.path = None if path is None else Path(path)
        self.name = f"student-{kind}"
        self._lookup: NDArray[np.int64] | None = None
        self._fallback = 0  # the [UNK] row, set with the lookup
        self._digest: str | None = None  # SHA-256 of the saved bytes, path-independent

    # -- identity ---------------------------------------------------------------------------

    @property
    def history(self) -> list[float]:
        """Mean training loss of each epoch."""
        return list(self.config.get("history", []))

    @property
    def step_history(self) -> list[float]:
        """Training loss of each optimisation step."""
        return list(self.config.get("step_history", []))

    def _payload(self) -> tuple[bytes, bytes]:
        from safetensors.torch import save

        weights = save(stored_state(self.model.state_dict(), self.config),
                       metadata={"format": "pt"})
        config = json.dumps(self.config, sort_keys=True, indent=1).encode()
        return weights, config

    def _fingerprint(self) -> Fingerprint:
        if self._digest is None:
            self._digest = hashlib.sha256(b"".join(self._payload())).hexdigest()
        digest = self._digest
        teacher = self.config["teacher"]
        kind = self.config["student"]
        short = str(teacher["name"]).rsplit("/", 1)[-1]
        what = (
            str(self.config["dim"]) if kind == "static"
            else "-".join(str(i) for i in self.config["layers"])
        )
        params = {
            "path": None if self.path is None else str(self.path),
            "student": kind,
            "teacher": teacher["name"],
            "teacher_weights": teacher["weights_hash"],
        }
        return Fingerprint(
            name=f"student-{kind}-{what} of {short}", version=student_format(self.config),
            dim=int(self.config["dim"]), weights_hash=digest, kind="distilled",
            params=tuple(sorted(params.items())),
        )

    # -- embedding --------------------------------------------------------------------------

    def _make_tokens(self) -> TokenIds:
        # the teacher's window; a static student's ids lack the special tokens (it has no
        # rows for them)
        return TokenIds(self.tokenizer, int(self.config["max_length"]),
                        special_tokens=self.config["student"] != "static")

    def _token_ids(self, texts: list[str]) -> list[list[int]] | None:
        # a static student bags its tokens (encode_static): nothing to pad
        return None if self.config["student"] == "static" else super()._token_ids(texts)

    def _embed_padded(self, input_ids: NDArray[np.int64], attention_mask: NDArray[np.int64]
                      ) -> NDArray[np.float32]:
        torch = _torch()
        ids, mask = torch.from_numpy(input_ids), torch.from_numpy(attention_mask)
        with torch.inference_mode():
            hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
            vecs = torch.nn.functional.normalize(mean_pool(hidden, mask), dim=-1)
        return vecs.numpy().astype(np.float32, copy=False)

    def _embed_batch(self, texts: list[str]) -> NDArray[np.float32]:
        if self.config["student"] != "static":
            return super()._embed_batch(texts)
        torch = _torch()
        rows, offsets = self.encode_static(texts)
        with torch.inference_mode():
            vecs = self.model(torch.from_numpy(rows), torch.from_numpy(offsets))
            vecs = torch.nn.functional.normalize(vecs, dim=-1)
        return vecs.numpy().astype(np.float32, copy=False)

    def encode_static(self, texts: Sequence[str]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Token-table rows and bag offsets of `texts` (static students only).

        Tokens the student does not know are dropped; a text left with none gets the
        ``[UNK]`` row, so every text has a defined, unit-norm vector.
        """
        if self._lookup is None:
            ids = self.model.token_ids.numpy()
            # sized by the largest id the tokenizer emits: a saved static student's vocabulary
            # lacks the dead entries, so it has fewer entries than its largest id
            top = max(self.tokenizer.get_vocab().values(), default=0)
            lookup = np.full(max(len(self.tokenizer), top + 1, int(ids.max()) + 1), -1,
                             dtype=np.int64)
            lookup[ids] = np.arange(len(ids))
            self._lookup = lookup
            unk = self.tokenizer.unk_token_id
            self._fallback = int(lookup[unk]) if unk is not None and lookup[unk] >= 0 else 0
        tokens = self.tokens()
        assert tokens is not None  # every student has the teacher's tokenizer
        ids = tokens(texts)
        lens = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
        rows = self._lookup[np.fromiter(itertools.chain.from_iterable(ids), dtype=np.int64,
                                        count=int(lens.sum()))]
        keep = rows >= 0
        kept = np.bincount(np.repeat(np.arange(len(ids)), lens)[keep], minlength=len(ids))
        counts = np.maximum(kept, 1)  # a text with no known token gets the [UNK] row
        offsets = np.zeros(len(ids), dtype=np.int64)
        np.cumsum(counts[:-1], out=offsets[1:])
        out = np.empty(int(counts.sum()), dtype=np.int64)
        fallback = np.zeros(out.size, dtype=bool)
        fallback[offsets[kept == 0]] = True
        out[fallback] = self._fallback
        out[~fallback] = rows[keep]  # both in text order
        return out, offsets

    # -- persistence ------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write the student to the folder `path` (created if needed) and return it.

        Writes ``weights.safetensors``, ``student.json`` and ``tokenizer/``; the fingerprint
        then records `path`, its ``weights_hash`` is unchanged.
        """
        folder = Path(path)
        if folder.exists() and not folder.is_dir():
            raise InvalidInputError(f"path: expected a folder for the student, got file {folder}")
        folder.mkdir(parents=True, exist_ok=True)
        weights, config = self._payload()
        for name, data in ((WEIGHTS_FILE, weights), (CONFIG_FILE, config)):
            tmp = folder / f".{name}.tmp"
            tmp.write_bytes(data)
            os.replace(tmp, folder / name)
        self._digest = hashlib.sha256(weights + config).hexdigest()
        self.tokenizer.save_pretrained(str(folder / TOKENIZER_DIR))
        dead = dead_token_ids(self.tokenizer) if self.config["student"] == "static" else set()
        _compact_json(folder / TOKENIZER_DIR / "tokenizer.json", drop=dead)
        self.path = folder
        self._fp = None
        return folder

    @classmethod
    def load(
        cls, path: str | Path, *, batch_size: int | None = None,
        cache: bool | str | Path = False,
    ) -> StudentEmbedder:
        """Load a student saved by :meth:`save`.

        Raises
        ------
        InvalidInputError
            `path` is not a student folder.
        """
        _torch()  # a clear error when torch is missing
        from safetensors.torch import load
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        folder = Path(path)
        files = [folder / WEIGHTS_FILE, folder / CONFIG_FILE, folder / TOKENIZER_DIR]
        missing = [f.name for f in files if not f.exists()]
        if missing:
            raise InvalidInputError(
                f"path: expected a saved student folder with {[f.name for f in files]}, "
                f"{folder} lacks {missing}"
            )
        config = json.loads(files[1].read_text(encoding="utf-8"))
        state = computed_state(load(files[0].read_bytes()))
        tokenizer = AutoTokenizer.from_pretrained(str(files[2]))
        if config.get("student") == "static":
            model = static_bag(state["bag.weight"], state["token_ids"])
        elif config.get("student") == "layers":
            hf = dict(config["hf_config"])
            hf_config = AutoConfig.for_model(hf.pop("model_type"), **hf)
            model = AutoModel.from_config(hf_config)
        else:
            raise InvalidInputError(
                f"path: {files[1]} names student {config.get('student')!r}, expected "
                "'layers' or 'static'"
            )
        model.load_state_dict(state, strict=True)
        return cls(model, tokenizer, config, path=folder, batch_size=batch_size, cache=cache)


def int8_rows(weight: Any) -> tuple[Any, Any]:
    """Symmetric per-row int8 of the float table `weight`: ``(q int8, scale float16)`` with
    ``weight ~= q * scale[:, None]``. Applied to its own output it returns the same pair, so
    a table rounded to it saves and reloads exactly."""
    torch = _torch()
    w = weight.detach().to(torch.float32)
    scale = (w.abs().amax(dim=1) / 127.0).clamp(min=1e-8).to(torch.float16)
    q = torch.round(w / scale.to(torch.float32)[:, None]).clamp(-127, 127).to(torch.int8)
    return q.contiguous(), scale.contiguous()


def student_format(config: dict[str, Any]) -> str:
    """The folder format of a student `config` (the fingerprint's ``version``).

    Format 3 records itself; format 2 added ``weights_dtype`` to the config, so a config with
    neither is format 1. Each keeps its form and fingerprint, so stores made with an older
    student still reopen with it.
    """
    if "format" in config:
        return str(config["format"])
    return "2" if "weights_dtype" in config else "1"


def stored_state(state: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """The tensors of a student's `state` as its folder (format and precision from `config`)
    stores them; :func:`computed_state` is the inverse.

    Floating tensors in the stored precision (float16 halves a static table; int8 rows with a
    float16 ``bag.scale`` quarter it). Token ids as int32 (int64 in format 1). From format 3
    the table's rows are in token-id order, the ids stored as ``token_ranges`` runs (8 bytes a
    run) where that is smaller than the list (4 bytes a row): a table of the whole vocabulary
    has a handful of runs.
    """
    torch = _torch()
    fmt, precision = student_format(config), config.get("weights_dtype", "float32")
    dtype = getattr(torch, "float32" if precision == "int8" else precision)
    ids_dtype = torch.int64 if fmt == "1" else torch.int32
    out = {k: (v.to(dtype) if v.is_floating_point()
               else v.to(ids_dtype) if k == "token_ids" else v).detach().cpu().contiguous()
           for k, v in state.items()}
    if precision == "int8":
        out["bag.weight"], out["bag.scale"] = int8_rows(out["bag.weight"])
    if fmt in ("1", "2") or "token_ids" not in out:
        return out
    order = torch.argsort(out["token_ids"], stable=True)
    for name in ("bag.weight", "bag.scale", "token_ids"):
        if name in out:
            out[name] = out[name][order].contiguous()
    runs = id_ranges(out["token_ids"].numpy())
    if 2 * len(runs) < len(order):
        del out["token_ids"]
        out["token_ranges"] = torch.from_numpy(runs)
    return out


def computed_state(stored: dict[str, Any]) -> dict[str, Any]:
    """The state a student computes with, from its :func:`stored_state`: floating tensors in
    float32, token ids as int64 (runs expanded), int8 rows times their scale."""
    torch = _torch()
    state = {k: v.to(torch.float32) if v.is_floating_point()
             else v.to(torch.int64) if k == "token_ids" else v for k, v in stored.items()}
    if "token_ranges" in state:
        state["token_ids"] = torch.from_numpy(expand_ranges(state.pop("token_ranges").numpy()))
    if "bag.scale" in state:
        scale = state.pop("bag.scale")
        state["bag.weight"] = state["bag.weight"].to(torch.float32) * scale[:, None]
    return state


def id_ranges(ids: NDArray[np.integer]) -> NDArray[np.int32]:
    """Ascending unique `ids` as int32 ``(runs, 2)`` ``[start, stop)`` runs of consecutive ids."""
    ids = np.asarray(ids, dtype=np.int64)
    if ids.size == 0:
        return np.zeros((0, 2), dtype=np.int32)
    cut = np.flatnonzero(np.diff(ids) != 1) + 1
    starts = ids[np.r_[0, cut]]
    stops = ids[np.r_[cut - 1, ids.size - 1]] + 1
    return np.stack([starts, stops], axis=1).astype(np.int32)


def expand_ranges(ranges: NDArray[np.integer]) -> NDArray[np.int64]:
    """The ids of :func:`id_ranges`' runs `ranges`, ascending."""
    runs = np.asarray(ranges, dtype=np.int64).reshape(-1, 2)
    if len(runs) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate([np.arange(a, b, dtype=np.int64) for a, b in runs])


def dead_token_ids(tokenizer: Any) -> set[int]:
    """Vocabulary ids a WordPiece tokenizer can never emit.

    A word-start token must survive the tokenizer's own normaliser and pre-tokeniser as one
    whole word; a continuation token (``##x``) must stay one word after a letter (``"ax"``).
    For BERT's uncased vocabulary that finds 1,331: the 994 ``[unusedN]`` entries, 336
    continuations of punctuation and CJK characters and ``...``, since its pre-tokeniser
    splits every punctuation mark and CJK character off on its own (a test checks that no
    such id comes out of tokenizing real text). Special and added tokens are never dead.
    Other tokenizer kinds (BPE, Unigram) give an empty set.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    model = getattr(backend, "model", None)
    if backend is None or type(model).__name__ != "WordPiece":
        return set()
    prefix = str(model.continuing_subword_prefix or "")
    norm, pre = backend.normalizer, backend.pre_tokenizer

    def one_word(piece: str) -> bool:
        text = norm.normalize_str(piece) if norm is not None else piece
        words = ([w for w, _ in pre.pre_tokenize_str(text)] if pre is not None
                 else text.split())
        return words == [piece]

    keep = set(tokenizer.all_special_ids) | set(getattr(tokenizer, "added_tokens_decoder", {}))
    dead: set[int] = set()
    for token, i in tokenizer.get_vocab().items():
        if i in keep:
            continue
        cont = bool(prefix) and token.startswith(prefix) and len(token) > len(prefix)
        if not one_word("a" + token[len(prefix):] if cont else token):
            dead.add(int(i))
    return dead


def _compact_json(path: Path, *, drop: set[int] | None = None) -> None:
    """Rewrite the tokenizer.json `path` without indentation (~35 % smaller), its model's
    vocabulary without the ids in `drop` (the others keep their ids)."""
    if path.exists():
        data = json.loads(path.read_text(encoding="utf-8"))
        vocab = data.get("model", {}).get("vocab")
        if drop and isinstance(vocab, dict):
            data["model"]["vocab"] = {t: i for t, i in vocab.items() if i not in drop}
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")),
                       encoding="utf-8")
        os.replace(tmp, path)


def mean_pool(hidden: Any, mask: Any) -> Any:
    """Mean of the token vectors `hidden` (b, t, d) where `mask` (b, t) is 1."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)


def rebuild_student(fp: Fingerprint, **kwargs: Any) -> StudentEmbedder:
    """Reload the student a ``kind="distilled"`` fingerprint names (from its recorded path).

    Parameters
    ----------
    fp : Fingerprint
        A student's fingerprint, saved (its ``params`` hold ``path``).
    **kwargs
        Passed to :meth:`StudentEmbedder.load` (``batch_size``, ``cache``).

    Raises
    ------
    InvalidInputError
        `fp` is not a distilled student's, or it was never saved.
    ModelMismatchError
        The folder now holds different weights than the ones `fp` was made with.
    """
    params = dict(fp.params)
    if fp.kind != "distilled":
        raise InvalidInputError(f"fp: expected a fingerprint of kind 'distilled', got {fp.kind!r}")
    if not params.get("path"):
        raise InvalidInputError(
            f"fp: {fp.name} was never saved, so it cannot be rebuilt; call student.save(path)"
        )
    student = StudentEmbedder.load(params["path"], **kwargs)
    if student.fingerprint.weights_hash != fp.weights_hash:
        raise ModelMismatchError(
            f"fp: expected the student {fp.describe()} at {params['path']}, found "
            f"{student.fingerprint.describe()}"
        )
    return student
