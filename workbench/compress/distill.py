"""Distil a transformer embedder into a smaller, faster student.

Two students, both trained to reproduce the teacher's normalised sentence embeddings of a corpus
(computed once with ``teacher.embed``, so the embedding cache serves repeated runs):

- ``student="layers"``: a copy of the teacher's encoder that keeps only some of its layers
  (same tokenizer, same mean pooling, same 384-d output), fine-tuned on the corpus.
- ``student="static"``: a static token table, as model2vec builds it: every kept vocabulary
  token is embedded by the teacher on its own (``[CLS] token [SEP]``), reduced with PCA to `dim`
  and scaled by a SIF weight ``a / (a + p(token))`` from the corpus token frequencies; a text's
  vector is the normalised mean of its tokens' rows. The table is then trained (an
  ``nn.EmbeddingBag`` with mean pooling) on the teacher's sentence embeddings rotated into the
  same PCA basis (``t @ pca.components_.T``, not centred, so cosines between targets are the
  teacher's cosines within the kept subspace; exact when ``dim`` is the teacher's dimension).

The student's vectors are comparable with each other only, never with the teacher's.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import polars as pl
from numpy.typing import NDArray
from tqdm.auto import tqdm

from .._validation import check_choice, check_positive_int, check_texts
from ..embed.base import Fingerprint
from ..errors import EmptyInputError, InvalidInputError, MissingColumnError
from ._students import (
    FORMAT_VERSION,
    StudentEmbedder,
    _torch,
    computed_state,
    dead_token_ids,
    mean_pool,
    rebuild_student,
    static_bag,
    stored_state,
)

__all__ = ["StudentEmbedder", "TransformerTeacher", "distill", "rebuild_student"]

#: SIF smoothing ``a`` of the static student's token weights ``a / (a + p)``.
SIF_A = 1e-3
_DEFAULTS = {  # per student kind: epochs, batch_size, lr
    "layers": (1, 32, 1e-4),
    # Share of the teacher's 10 neighbours kept on 1,000 held-out AG News texts. With a
    # constant lr, on 16,600 texts (AG News, python_docs, STS-B train) at 256-d: lr 5e-3, 3
    # epochs 0.536 and 6 epochs 0.516 (it starts to memorise); 3 epochs at lr 1e-2 0.521 and
    # 2e-3 0.543. An in-batch similarity-matching loss or a PCA fitted on sentence vectors
    # changed it by 0.003 at most; dropping 10 % of each text's tokens cost 0.004. With the
    # lr decaying linearly to 0, on 29,800 texts (the same + AG titles and descriptions
    # alone) at 384-d: 3 epochs at 2e-3 / 5e-3 / 1e-2 0.553 / 0.553 / 0.544; at 3e-3, 4
    # epochs 0.555 and 5 epochs 0.551; 2e-3 x 4 0.554 (constant 2e-3 x 3: 0.550).
    "static": (4, 256, 3e-3),
}


@runtime_checkable
class TransformerTeacher(Protocol):
    """A teacher :func:`distill` can open, such as :class:`~workbench.embed.MiniLM`.

    An embedder whose ``load()`` returns a sentence-transformers model: a Hugging Face encoder
    with a tokenizer and mean pooling.
    """

    @property
    def fingerprint(self) -> Fingerprint:
        """Identity of the teacher."""
        ...

    def embed(self, texts: Sequence[str], *, progress: bool = True) -> NDArray[np.float32]:
        """Normalised sentence embeddings."""
        ...

    def load(self) -> Any:
        """The underlying ``SentenceTransformer``."""
        ...


def distill(
    teacher: TransformerTeacher,
    *,
    student: Literal["layers", "static"] = "static",
    corpus: Sequence[str] | pl.Series | Any,
    text: str | None = None,
    layers: Sequence[int] = (0, 3, 5),
    dim: int = 256,
    vocab_size: int | None = None,
    epochs: int | None = None,
    loss: Literal["cosine", "mse"] = "cosine",
    batch_size: int | None = None,
    lr: float | None = None,
    max_length: int | None = None,
    weights_dtype: Literal["float32", "float16", "int8"] | None = None,
    random_state: int = 0,
    progress: bool = True,
    out: str | Path | None = None,
) -> StudentEmbedder:
    """Train a small student embedder that reproduces `teacher` on `corpus`.

    Parameters
    ----------
    teacher : TransformerTeacher
        A transformer embedder with mean pooling, e.g. :class:`~workbench.embed.MiniLM`.
    student : {"layers", "static"}
        ``"layers"``: the teacher's encoder with only `layers` kept, fine-tuned (output
        dimension = the teacher's). ``"static"``: a token table of dimension `dim`.
    corpus : sequence of str, polars Series or Store
        Training texts. A :class:`~workbench.Store` gives its `text` column.
    text : str, optional
        Text column of a store corpus; by default ``"text"``, else the first string column
        other than ``id``.
    layers : sequence of int
        Teacher layers a ``"layers"`` student keeps, in order (0-based, distinct). The default
        keeps the last layer: untrained, (0, 3, 5) of all-MiniLM-L6-v2 has a mean cosine of
        0.70 to the teacher on held-out STS-B sentences, (0, 2, 4) only 0.29, so it needs far
        less training to catch up.
    dim : int
        Output dimension of a ``"static"`` student, 1 to the teacher's dimension.
    vocab_size : int, optional
        Tokens a ``"static"`` student knows. The corpus's tokens come first (most frequent
        first), then the teacher's other tokens in vocabulary order, so a cap above the
        corpus's token count also covers words the corpus lacks (each costs a teacher call,
        about 60 s for BERT's 30,522 on two CPU cores). Tokens the tokenizer can never emit
        get no row (:func:`~._students.dead_token_ids`: 1,331 of BERT's). ``None`` keeps the
        corpus's tokens.
    epochs : int, optional
        Passes over the corpus (default 1 for ``"layers"``, 4 for ``"static"``); 0 returns
        the untrained starting point (the layer copy, or the PCA + SIF token table).
    loss : {"cosine", "mse"}
        ``"cosine"``: ``1 - cos(student, teacher)``. ``"mse"``: squared distance between the
        student's pooled vector *before* normalisation and the teacher's target, so the norm
        is trained too.
    batch_size : int, optional
        Texts per step (default 32 for ``"layers"``, 256 for ``"static"``).
    lr : float, optional
        AdamW learning rate (default 1e-4 for ``"layers"``, 3e-3 for ``"static"``, where it
        decays linearly to 0 over the run).
    max_length : int, optional
        Tokens per text while training a ``"layers"`` student (shorter trains faster; default
        the teacher's limit). The student embeds with the teacher's limit in both cases.
    weights_dtype : {"float32", "float16", "int8"}, optional
        Precision of the saved weights (default ``"float16"`` for ``"static"``, as model2vec
        stores its tables: half the size, vectors within cosine 0.999 of the float32 table's;
        ``"float32"`` for ``"layers"``). ``"int8"`` (static students only): each table row
        as int8 with a float16 scale (symmetric, per row), a quarter of float32's size; on
        AG News and STS-B it kept the float32 table's scores to 0.001. The trained weights
        are rounded to it, so the student embeds the same before and after a save. It
        computes in float32 either way.
    random_state : int
        Seed of the shuffles, dropout and PCA.
    progress : bool
        Show progress bars.
    out : str or Path, optional
        Save the student to this folder (see :meth:`StudentEmbedder.save`).

    Returns
    -------
    StudentEmbedder
        With ``history`` (mean loss per epoch) and ``step_history`` (loss per step).

    Raises
    ------
    InvalidInputError
        An unknown `student`, `loss` or `weights_dtype`; a teacher that is not a transformer
        with a tokenizer; `layers` empty, repeated or out of range; `dim` outside 1..teacher
        dimension; a negative `epochs`, a non-positive `batch_size`, `max_length`,
        `vocab_size` or `lr`.
    EmptyInputError
        `corpus` holds no text.
    MissingColumnError
        A store corpus has no such text column.

    Examples
    --------
    >>> from workbench.compress.distill import distill
    >>> from workbench.datasets import python_docs
    >>> from workbench.embed import MiniLM
    >>> fast = distill(MiniLM(), student="static", corpus=python_docs()["text"])  # doctest: +SKIP
    >>> fast.embed(["how do I open a file"]).shape  # doctest: +SKIP
    (1, 256)
    """
    torch = _torch()
    kind = check_choice(student, ("layers", "static"), name="student")
    loss = check_choice(loss, ("cosine", "mse"), name="loss")  # type: ignore[assignment]
    d_epochs, d_batch, d_lr = _DEFAULTS[kind]
    epochs = d_epochs if epochs is None else epochs
    if isinstance(epochs, bool) or not isinstance(epochs, int | np.integer) or epochs < 0:
        raise InvalidInputError(f"epochs: expected an integer >= 0, got {epochs!r}")
    epochs = int(epochs)
    batch_size = check_positive_int(d_batch if batch_size is None else batch_size,
                                    name="batch_size")
    weights_dtype = check_choice(
        ("float16" if kind == "static" else "float32") if weights_dtype is None
        else weights_dtype, ("float32", "float16", "int8"), name="weights_dtype")
    if weights_dtype == "int8" and kind != "static":
        raise InvalidInputError(
            "weights_dtype: 'int8' (per-row int8 tables) is for static students; a layers "
            "student takes 'float32' or 'float16' (quantize it with quantize_model instead)"
        )
    lr = d_lr if lr is None else lr
    if isinstance(lr, bool) or not isinstance(lr, int | float) or not lr > 0:
        raise InvalidInputError(f"lr: expected a positive number, got {lr!r}")
    st_model, hf_model, tokenizer = _open_teacher(teacher)
    teacher_dim = int(teacher.fingerprint.dim)
    teacher_length = int(st_model.max_seq_length)
    max_length = teacher_length if max_length is None else check_positive_int(
        max_length, name="max_length")
    texts = _corpus_texts(corpus, text=text)
    if kind == "layers":
        keep = _check_layers(layers, len(hf_model.encoder.layer))
    else:
        keep = []
        dim = check_positive_int(dim, name="dim")
        if dim > teacher_dim:
            raise InvalidInputError(
                f"dim: expected 1 to the teacher's dimension {teacher_dim}, got {dim}"
            )
        if vocab_size is not None:
            vocab_size = check_positive_int(vocab_size, name="vocab_size")

    targets = np.asarray(teacher.embed(texts, progress=progress), dtype=np.float32)
    config: dict[str, Any] = {
        "student": kind, "max_length": teacher_length, "teacher": teacher.fingerprint.to_dict(),
        "weights_dtype": weights_dtype, "format": FORMAT_VERSION,
        "training": {"texts": len(texts), "epochs": epochs, "loss": loss,
                     "batch_size": batch_size, "lr": float(lr), "max_length": max_length,
                     "random_state": random_state},
    }
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(random_state)
        if kind == "layers":
            config.update(dim=teacher_dim, layers=keep)
            model = _layer_copy(hf_model, keep)
            config["hf_config"] = model.config.to_dict()
            steps = _train_layers(model, tokenizer, texts, targets, epochs=epochs,
                                  batch_size=batch_size, lr=float(lr), loss=loss,
                                  max_length=max_length, random_state=random_state,
                                  progress=progress)
        else:
            model, info = _static_start(hf_model, tokenizer, texts, dim=dim,
                                        vocab_size=vocab_size, max_length=teacher_length,
                                        random_state=random_state, progress=progress)
            config.update(dim=dim, vocab=int(model.token_ids.numel()), sif_a=SIF_A)
            student_obj = StudentEmbedder(model, tokenizer, config)
            rows, offsets = student_obj.encode_static(texts)
            projected = targets @ info["components"].T.astype(np.float32)
            steps = _train_static(model, rows, offsets, projected, epochs=epochs,
                                  batch_size=batch_size, lr=float(lr), loss=loss,
                                  random_state=random_state, progress=progress)
    per_epoch = [float(np.mean(s)) for s in np.array_split(np.asarray(steps), epochs or 1)
                 if len(s)]
    config["history"] = per_epoch
    config["step_history"] = [float(s) for s in steps]
    with torch.no_grad():  # rounded to what save() writes, so a round trip changes nothing
        model.load_state_dict(computed_state(stored_state(model.state_dict(), config)))
    result = StudentEmbedder(model, tokenizer, config)
    if out is not None:
        result.save(out)
    return result


# -- validation --------------------------------------------------------------------------------


def _open_teacher(teacher: Any) -> tuple[Any, Any, Any]:
    """(SentenceTransformer, its HF encoder, its tokenizer), or a clear error."""
    expected = ("teacher: expected a transformer embedder with mean pooling whose load() "
                "returns a sentence-transformers model, such as workbench.embed.MiniLM(), got ")
    if not isinstance(teacher, TransformerTeacher):
        raise InvalidInputError(expected + type(teacher).__name__)
    st_model = teacher.load()
    try:
        first = st_model[0]
        hf_model, tokenizer = first.auto_model, first.tokenizer
        layers = hf_model.encoder.layer
        pooling = st_model[1].get_config_dict().get("pooling_mode", "mean")
    except (AttributeError, IndexError, KeyError, TypeError) as exc:
        raise InvalidInputError(expected + f"{type(teacher).__name__} ({exc})") from exc
    if tokenizer is None or len(layers) == 0 or pooling != "mean":
        raise InvalidInputError(
            expected + f"{type(teacher).__name__} (tokenizer {type(tokenizer).__name__}, "
            f"{len(layers)} layers, pooling {pooling!r})"
        )
    return st_model, hf_model, tokenizer


def _check_layers(layers: Sequence[int], n: int) -> list[int]:
    try:
        keep = [int(i) for i in layers]
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"layers: expected a sequence of layer indices 0..{n - 1}, got {layers!r}"
        ) from exc
    if isinstance(layers, str | bytes) or not keep:
        raise InvalidInputError(
            f"layers: expected at least one layer index in 0..{n - 1}, got {layers!r}"
        )
    bad = [i for i in keep if not 0 <= i < n]
    if bad or len(set(keep)) != len(keep):
        raise InvalidInputError(
            f"layers: expected distinct indices in 0..{n - 1} (the teacher has {n} layers), "
            f"got {list(layers)}"
        )
    return keep


def _corpus_texts(corpus: Any, *, text: str | None) -> list[str]:
    from ..store import Store

    if isinstance(corpus, Store):
        schema = corpus.scan().collect_schema()
        if text is None:
            text = "text" if "text" in schema else next(
                (c for c, t in schema.items() if t == pl.Utf8 and c != "id"), None)
            if text is None:
                raise MissingColumnError(
                    f"corpus: expected the store to have a text column, columns are "
                    f"{schema.names()}"
                )
        elif text not in schema:
            raise MissingColumnError(
                f"text: expected a column of the store, got {text!r}; columns are "
                f"{schema.names()}"
            )
        corpus = corpus.scan().select(pl.col(text)).collect().get_column(text).drop_nulls()
    if isinstance(corpus, str | bytes):
        raise InvalidInputError(
            "corpus: expected a sequence of texts or a Store, got a single string"
        )
    texts = check_texts(corpus, name="corpus")
    if not any(t.strip() for t in texts):
        raise EmptyInputError("corpus: expected at least one non-blank text, got none")
    return texts


# -- the layer student -------------------------------------------------------------------------


def _layer_copy(hf_model: Any, keep: list[int]) -> Any:
    """A deep copy of the teacher's encoder with only the layers `keep`."""
    torch = _torch()
    model = copy.deepcopy(hf_model)
    model.encoder.layer = torch.nn.ModuleList([model.encoder.layer[i] for i in keep])
    model.config.num_hidden_layers = len(keep)
    return model


def _step(opt: Any, value: Any, steps: list[float], bar: Any) -> None:
    """One optimiser step on the loss `value`; its value recorded, the bar moved on."""
    opt.zero_grad()
    value.backward()
    opt.step()
    steps.append(float(value.detach()))
    bar.update(1)


def _loss(pooled: Any, target: Any, kind: str) -> Any:
    torch = _torch()
    if kind == "cosine":
        return (1 - torch.nn.functional.cosine_similarity(pooled, target, dim=-1)).mean()
    return ((pooled - target) ** 2).sum(-1).mean()


def _train_layers(
    model: Any, tokenizer: Any, texts: list[str], targets: NDArray[np.float32], *,
    epochs: int, batch_size: int, lr: float, loss: str, max_length: int, random_state: int,
    progress: bool,
) -> list[float]:
    torch = _torch()
    rng = np.random.default_rng(random_state)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    target_t = torch.from_numpy(targets)
    steps: list[float] = []
    n_batches = -(-len(texts) // batch_size)
    with tqdm(total=epochs * n_batches, desc="distilling (layers)", unit="step",
              disable=not progress) as bar:
        for _ in range(epochs):
            for idx in _length_batches(texts, batch_size, rng):
                enc = tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                max_length=max_length, return_tensors="pt")
                pooled = mean_pool(model(**enc).last_hidden_state, enc["attention_mask"])
                _step(opt, _loss(pooled, target_t[idx], loss), steps, bar)
                bar.set_postfix(loss=f"{steps[-1]:.4f}")
    model.eval()
    return steps


def _length_batches(texts: list[str], batch_size: int, rng: np.random.Generator) -> list[Any]:
    """Shuffled batches of texts of similar length (less padding), in shuffled order."""
    order = rng.permutation(len(texts))
    # Sort within windows of 50 batches: batches stay random, padding drops ~2x on paragraphs.
    window = batch_size * 50
    batches = []
    for start in range(0, len(order), window):
        chunk = order[start : start + window]
        chunk = chunk[np.argsort([len(texts[i]) for i in chunk], kind="stable")]
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


# -- the static student ------------------------------------------------------------------------


def _static_start(
    hf_model: Any, tokenizer: Any, texts: list[str], *, dim: int, vocab_size: int | None,
    max_length: int, random_state: int, progress: bool,
) -> tuple[Any, dict[str, Any]]:
    """The model2vec-style token table: teacher token vectors, PCA, SIF weights."""
    torch = _torch()
    from sklearn.decomposition import PCA

    special = set(tokenizer.all_special_ids)
    dead = dead_token_ids(tokenizer)  # rows no text could ever reach
    counts: Counter[int] = Counter()
    for ids in tokenizer(texts, add_special_tokens=False, truncation=True,
                         max_length=max(max_length - 2, 1))["input_ids"]:
        counts.update(ids)
    for s in special:
        counts.pop(s, None)
    order = [i for i, _ in counts.most_common()]
    if vocab_size is not None and vocab_size > len(order):
        seen = set(order)
        order += [i for i in range(len(tokenizer)) if i not in seen and i not in special
                  and i not in dead]
    if vocab_size is not None:
        order = order[:vocab_size]
    unk = tokenizer.unk_token_id if tokenizer.unk_token_id is not None else order[0]
    # the most frequent vocab_size tokens and [UNK], rows in token id order (as saved)
    token_ids = np.asarray(sorted({unk, *order}), dtype=np.int64)
    if len(token_ids) < dim:
        raise InvalidInputError(
            f"dim: expected at most the number of distinct corpus tokens "
            f"({len(token_ids)}), got {dim}; give a larger corpus or vocab_size"
        )
    vecs = _token_vectors(hf_model, tokenizer, token_ids, progress=progress)
    pca = PCA(n_components=dim, random_state=random_state)
    table = pca.fit_transform(vecs).astype(np.float32)
    total = sum(counts.values()) or 1
    p = np.asarray([counts.get(int(i), 0) / total for i in token_ids], dtype=np.float32)
    table *= (SIF_A / (SIF_A + p))[:, None]
    model = static_bag(torch.from_numpy(table), torch.from_numpy(token_ids))
    return model, {"components": pca.components_}


def _token_vectors(
    hf_model: Any, tokenizer: Any, token_ids: NDArray[np.int64], *, progress: bool,
    batch: int = 1024,
) -> NDArray[np.float32]:
    """The teacher's normalised mean-pooled output for each token alone (``[CLS] t [SEP]``)."""
    torch = _torch()
    cls = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    sep = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    out = np.empty((len(token_ids), hf_model.config.hidden_size), dtype=np.float32)
    was_training = hf_model.training
    hf_model.eval()
    with torch.inference_mode(), tqdm(total=len(token_ids), desc="embedding tokens",
                                      unit="token", disable=not progress) as bar:
        for start in range(0, len(token_ids), batch):
            ids = torch.from_numpy(token_ids[start : start + batch])[:, None]
            cols = [ids] if cls is None else [torch.full_like(ids, cls), ids]
            if sep is not None:
                cols.append(torch.full_like(ids, sep))
            inp = torch.cat(cols, dim=1)
            mask = torch.ones_like(inp)
            hidden = hf_model(input_ids=inp, attention_mask=mask).last_hidden_state
            pooled = torch.nn.functional.normalize(mean_pool(hidden, mask), dim=-1)
            out[start : start + len(ids)] = pooled.numpy()
            bar.update(len(ids))
    hf_model.train(was_training)
    return out


def _train_static(
    model: Any, rows: NDArray[np.int64], offsets: NDArray[np.int64],
    targets: NDArray[np.float32], *, epochs: int, batch_size: int, lr: float, loss: str,
    random_state: int, progress: bool,
) -> list[float]:
    torch = _torch()
    rng = np.random.default_rng(random_state)
    n = len(offsets)
    ends = np.append(offsets[1:], len(rows))
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    target_t = torch.from_numpy(np.ascontiguousarray(targets))
    steps: list[float] = []
    n_batches = -(-n // batch_size)
    # lr decays linearly to 0 over the run (0.550 -> 0.553 of the teacher's AG News
    # neighbours at lr 2e-3 x 3 epochs; see _DEFAULTS)
    total = max(epochs * n_batches, 1)
    decay = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: max(0.0, 1.0 - step / total))
    with tqdm(total=epochs * n_batches, desc="distilling (static)", unit="step",
              disable=not progress) as bar:
        for _ in range(epochs):
            order = rng.permutation(n)
            for start in range(0, n, batch_size):
                idx = order[start : start + batch_size]
                parts = [rows[offsets[i] : ends[i]] for i in idx]
                lens = np.fromiter((len(q) for q in parts), dtype=np.int64, count=len(parts))
                offs = np.concatenate([[0], np.cumsum(lens)[:-1]])
                pooled = model(torch.from_numpy(np.concatenate(parts)), torch.from_numpy(offs))
                _step(opt, _loss(pooled, target_t[idx], loss), steps, bar)
                decay.step()
    model.eval()
    return steps
