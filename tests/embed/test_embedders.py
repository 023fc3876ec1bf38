from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

import workbench as wb
from workbench.embed import base as base_module
from workbench.embed.base import BaseEmbedder, Fingerprint
from workbench.errors import InvalidInputError


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_hashing_is_deterministic_and_similarity_tracks_overlap() -> None:
    a = wb.embed.Hashing(dim=256)
    b = wb.embed.Hashing(dim=256)
    texts = ["the cat sat on the mat", "the cat sat on a mat", "quantum chromodynamics"]
    va, vb = a.embed(texts, progress=False), b.embed(texts, progress=False)
    np.testing.assert_array_equal(va, vb)
    assert va.dtype == np.float32 and va.shape == (3, 256)
    np.testing.assert_allclose(np.linalg.norm(va, axis=1), 1.0, rtol=1e-5)
    assert _cos(va[0], va[1]) > 0.8 > _cos(va[0], va[2])
    assert a.fingerprint == b.fingerprint
    assert a.fingerprint != wb.embed.Hashing(dim=128).fingerprint
    assert np.isfinite(a.embed(["", "!!!"], progress=False)).all()


def test_cache_avoids_reembedding(tmp_path: Path) -> None:
    calls: list[int] = []

    def fn(texts: list[str]) -> np.ndarray:
        calls.append(len(texts))
        return np.array([[len(t), t.count("a") + 1.0, 1.0] for t in texts])

    emb = wb.embed.FromCallable(fn, name="toy", dim=3, cache=tmp_path / "c")
    first = emb.embed(["a", "bb", "a", "ccc"], progress=False)
    assert sum(calls) == 3  # the repeated text is embedded once
    again = wb.embed.FromCallable(fn, name="toy", dim=3, cache=tmp_path / "c")
    second = again.embed(["ccc", "a", "dddd"], progress=False)
    assert sum(calls) == 4  # only "dddd" is new
    np.testing.assert_array_equal(second[:2], first[[3, 0]])
    other = wb.embed.FromCallable(fn, name="toy", dim=3, version="2", cache=tmp_path / "c")
    other.embed(["a"], progress=False)
    assert sum(calls) == 5  # another model version never reads these vectors


def test_from_callable_validates_output() -> None:
    bad = wb.embed.FromCallable(lambda t: np.ones((len(t), 4)), name="bad", dim=3)
    with pytest.raises(InvalidInputError, match="dimension 3"):
        bad.embed(["x"], progress=False)
    nan = wb.embed.FromCallable(lambda t: np.full((len(t), 3), np.nan), name="nan", dim=3)
    with pytest.raises(InvalidInputError, match="NaN"):
        nan.embed(["x"], progress=False)
    with pytest.raises(InvalidInputError, match="texts"):
        nan.embed([], progress=False)
    with pytest.raises(InvalidInputError, match="name"):
        wb.embed.FromCallable(lambda t: t, name="", dim=3)


def test_store_text_add_reuses_cache(tmp_path: Path) -> None:
    calls: list[int] = []

    def fn(texts: list[str]) -> np.ndarray:
        calls.append(len(texts))
        return wb.embed.Hashing(dim=32).embed(texts, progress=False)

    emb = wb.embed.FromCallable(fn, name="hash-wrap", dim=32, cache=tmp_path / "cache")
    df = pl.DataFrame({"id": ["a", "b"], "text": ["alpha beta", "gamma delta"]})
    with wb.Store.create(tmp_path / "s1", embedder=emb) as s:
        s.add(df, text="text", progress=False)
    with wb.Store.create(tmp_path / "s2", embedder=emb) as s:
        s.add(df, text="text", progress=False)  # known texts: no new model calls
    assert sum(calls) == 2
    # a callable embedder cannot be rebuilt from the fingerprint: text queries need it passed
    with wb.Store.open(tmp_path / "s1") as s, pytest.raises(InvalidInputError, match="embedder"):
        s.search("alpha", k=1)
    with wb.Store.open(tmp_path / "s1", embedder=emb) as s:
        assert s.search("alpha beta", k=1)["id"].to_list() == ["a"]


@pytest.mark.slow
def test_minilm_offline_semantics(tmp_path: Path) -> None:
    emb = wb.embed.MiniLM(cache=tmp_path / "c")
    fp = emb.fingerprint
    assert fp.dim == 384 and fp.name.endswith("all-MiniLM-L6-v2") and len(fp.weights_hash) == 64
    v = emb.embed(["A man is playing a guitar.", "Someone plays the guitar.",
                   "The stock market fell sharply today."], progress=False)
    assert v.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-4)
    assert _cos(v[0], v[1]) > 0.6 > 0.2 > _cos(v[0], v[2])
    with wb.Store.create(tmp_path / "m", embedder=emb) as s:
        s.add({"id": ["g", "s"], "text": ["guitar music on stage", "shares and bonds"]},
              text="text", progress=False)
    with wb.Store.open(tmp_path / "m") as s:
        assert s.model is not None and s.model.same_model(fp)
        assert s.search("a concert with a guitarist", k=1)["id"].to_list() == ["g"]
    with pytest.raises(wb.errors.ModelMismatchError, match="all-MiniLM-L6-v2"):
        wb.Store.open(tmp_path / "m", embedder=wb.embed.FromCallable(
            lambda t: np.ones((len(t), 384)), name="other-384", dim=384))


class _Counting(BaseEmbedder):
    """Tokens = words (ids from a growing vocabulary); records each batch it is given."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.seen: list[list[str]] = []
        self.vocab: dict[str, int] = {}
        self.tokenized: list[int] = []  # texts per _token_ids call

    def _fingerprint(self) -> Fingerprint:
        return Fingerprint(name="counting", version="0", dim=4, weights_hash="0" * 64)

    def _token_ids(self, texts: list[str]) -> list[list[int]]:
        self.tokenized.append(len(texts))
        return [[self.vocab.setdefault(w, len(self.vocab)) for w in t.split()] for t in texts]

    def _embed_ids(self, ids: list[list[int]]) -> np.ndarray:
        words = {i: w for w, i in self.vocab.items()}
        texts = [" ".join(words[i] for i in row) for row in ids]
        self.seen.append(texts)
        return np.array([[len(t.split()), len(t), 1.0, 0.0] for t in texts], dtype=np.float32)


def test_token_budget_batches_by_padded_tokens() -> None:
    rng = np.random.default_rng(0)
    texts = [" ".join(["w"] * int(n)) + f" {i}" for i, n in enumerate(rng.integers(1, 40, 200))]
    plain = _Counting(batch_size=16)
    budget = _Counting(batch_size=16, max_batch_tokens=60)
    a, b = plain.embed(texts, progress=False), budget.embed(texts, progress=False)
    np.testing.assert_array_equal(a, b)  # batching changes calls, never which vector goes where
    assert all(len(batch) <= 16 for batch in plain.seen)
    seen = [t for batch in budget.seen for t in batch]
    assert sorted(seen) == sorted(texts)  # each text once
    counts = [[len(t.split()) for t in batch] for batch in budget.seen]
    flat = [c for batch in counts for c in batch]
    assert flat == sorted(flat, reverse=True)  # longest first, so a batch pads to its first
    for batch in counts:
        assert len(batch) <= 16 and (len(batch) == 1 or len(batch) * batch[0] <= 60)
        # greedy: one more text would have broken the budget or the cap
    assert all(len(b) == 16 or (len(b) + 1) * b[0] > 60 for b in counts[:-1])
    lone = _Counting(max_batch_tokens=5)  # a text over the budget still goes, alone
    lone.embed(["one two three four five six seven", "a b", "c"], progress=False)
    assert [len(b) for b in lone.seen] == [1, 2]
    for bad in (0, -3, 2.5, True):
        with pytest.raises(InvalidInputError, match="max_batch_tokens"):
            _Counting(max_batch_tokens=bad)  # type: ignore[arg-type]


def test_texts_are_tokenized_and_sorted_a_chunk_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    texts = [" ".join(["w"] * (i % 17 + 1)) + f" {i}" for i in range(230)]
    whole = _Counting(batch_size=8, max_batch_tokens=40).embed(texts, progress=False)
    monkeypatch.setattr(base_module, "TOKENIZE_CHUNK", 50)
    chunked = _Counting(batch_size=8, max_batch_tokens=40)
    np.testing.assert_array_equal(chunked.embed(texts, progress=False), whole)
    assert chunked.tokenized == [50, 50, 50, 50, 30]  # never more ids held than a chunk's
    seen = [t for batch in chunked.seen for t in batch]
    assert sorted(seen) == sorted(texts)
    for lo in range(0, 230, 50):  # each chunk's texts come out together, longest first
        part = [len(t.split()) for t in seen[lo : lo + 50]]
        assert part == sorted(part, reverse=True)
        assert {t for t in seen[lo : lo + 50]} == set(texts[lo : lo + 50])


@pytest.mark.slow
def test_minilm_counts_tokens_as_it_embeds() -> None:
    emb = wb.embed.MiniLM(cache=False)
    st = emb.load()
    long = "word " * 400
    ids = emb._token_ids(["hi", long])
    assert ids[0] == st.tokenizer("hi")["input_ids"] and len(ids[0]) == 3  # [CLS] hi [SEP]
    assert len(ids[1]) == st.max_seq_length  # truncated as the model sees it
    texts = ["A cat sits on the mat.", long, "Stocks fell.", "Open the file with a context "
             "manager so it is closed even when an exception is raised."]
    budgeted = emb.embed(texts, progress=False)
    emb.max_batch_tokens = None
    np.testing.assert_allclose(budgeted, emb.embed(texts, progress=False), atol=1e-5)
    # ids tokenized once and padded by us give the vectors sentence-transformers gives
    ref = st.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    np.testing.assert_allclose(budgeted, ref, atol=1e-5)
