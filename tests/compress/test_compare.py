"""compare_models: an identical model scores 1 everywhere, a smaller one in between, a random
one at chance; every column is measured; bad input is refused naming the argument."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl
import pytest
from numpy.typing import NDArray

from workbench.compress.compare import compare_models
from workbench.datasets import python_docs
from workbench.embed import FromCallable, Hashing
from workbench.errors import EmptyInputError, InvalidInputError, MissingColumnError

N, K = 300, 10
STS = pl.DataFrame({
    "a": ["a cat sits on the mat", "the dog runs in the park", "open a file for reading",
          "close the network socket", "sort a list of numbers", "a man plays the guitar"],
    "b": ["a cat is sitting on the mat", "a dog is running in a park", "read a file",
          "bake a chocolate cake", "sort the numbers in a list", "the stock market fell"],
    "score": [5.0, 4.2, 3.5, 0.2, 4.0, 0.0],
})


def _random(dim: int = 256) -> FromCallable:
    rng = np.random.default_rng(7)

    def fn(texts: Sequence[str]) -> NDArray[np.float64]:
        return rng.standard_normal((len(texts), dim))

    return FromCallable(fn, name="random", dim=dim)


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    return python_docs(limit=N)["text"].to_list()


@pytest.fixture(scope="module")
def table(corpus: list[str]) -> pl.DataFrame:
    return compare_models(
        Hashing(dim=256),
        {"identical": Hashing(dim=256), "small": Hashing(dim=64), "random": _random()},
        corpus=corpus, sts=STS, k=K, progress=False,
    )


def _row(table: pl.DataFrame, name: str) -> dict[str, Any]:
    return table.filter(pl.col("name") == name).row(0, named=True)


def test_one_row_per_model_teacher_first(table: pl.DataFrame) -> None:
    assert table["name"].to_list() == ["hashing-char3-5", "identical", "small", "random"]
    assert table["role"].to_list() == ["teacher", "variant", "variant", "variant"]
    assert table["dim"].to_list() == [256, 256, 64, 256]
    assert table.columns[:6] == ["name", "role", "dim", "params", "bytes_on_disk",
                                 "texts_per_s"]
    assert (table["texts_per_s"] > 0).all()
    # hashing has no torch model nor files: null, and the note says so
    assert table["params"].null_count() == 4 and table["bytes_on_disk"].null_count() == 4
    assert all("params" in n and "bytes_on_disk" in n for n in table["note"])


def test_identical_model_agrees_everywhere(table: pl.DataFrame) -> None:
    for name in ("hashing-char3-5", "identical"):
        r = _row(table, name)
        for col in ("mean_cos_to_teacher", "knn_recall", "cluster_ari", "dup_agreement",
                    "drift_agreement"):
            assert r[col] == pytest.approx(1.0), (name, col)
    assert _row(table, "identical")["sts_spearman"] == _row(table, "hashing-char3-5")[
        "sts_spearman"]


def test_teacher_detects_the_planted_drift(table: pl.DataFrame) -> None:
    # the stream is built from the teacher's clusters, so the teacher must flag it exactly
    assert _row(table, "hashing-char3-5")["drift_vs_truth"] == 1.0
    assert 0.0 <= _row(table, "random")["drift_agreement"] < 1.0


def test_smaller_model_in_between_random_at_chance(table: pl.DataFrame) -> None:
    ident, small, rand = (_row(table, n) for n in ("identical", "small", "random"))
    assert ident["knn_recall"] >= small["knn_recall"] >= rand["knn_recall"]
    assert 0.15 < small["knn_recall"] < 1.0
    # a random ranking keeps about k of the n - 1 other texts
    assert rand["knn_recall"] == pytest.approx(K / (N - 1), abs=0.03)
    assert abs(rand["cluster_ari"]) < 0.03
    assert small["cluster_ari"] > rand["cluster_ari"]
    assert small["dup_agreement"] > rand["dup_agreement"]
    assert rand["dup_agreement"] < 0.05
    assert abs(rand["mean_cos_to_teacher"]) < 0.05
    # dims differ: no mean cosine, and the note says why
    assert small["mean_cos_to_teacher"] is None
    assert "mean_cos_to_teacher" in small["note"]
    # character n-grams rank the handmade STS pairs; random vectors do not
    assert small["sts_spearman"] > 0.3 and _row(table, "identical")["sts_spearman"] > 0.3
    assert abs(rand["sts_spearman"]) < abs(small["sts_spearman"])


def test_default_duplicate_threshold_is_each_models_quantile(table: pl.DataFrame) -> None:
    # every model flags the same share of its N * (N - 1) / 2 pairs (0.5 %, ties aside)
    pairs = N * (N - 1) // 2
    assert ((table["dup_pairs"] - round(0.005 * pairs)).abs() <= 2).all()
    assert table["dup_threshold"].n_unique() >= 3  # hashing-64 and random differ from 256


def test_list_of_variants_and_fixed_threshold(corpus: list[str]) -> None:
    df = compare_models(Hashing(dim=256), [Hashing(dim=64)], corpus=corpus[:60],
                        dedup_threshold=0.5, drift=False, progress=False)
    assert df["name"].to_list() == ["hashing-char3-5", "hashing-char3-5"]
    assert df["role"].to_list() == ["teacher", "variant"]
    assert (df["dup_threshold"] == 0.5).all()
    assert df["sts_spearman"].null_count() == 2 and df["drift_agreement"].null_count() == 2


def test_small_corpus_skips_drift_with_a_note(corpus: list[str]) -> None:
    df = compare_models(Hashing(dim=32), {"same": Hashing(dim=32)}, corpus=corpus[:30], k=3,
                        progress=False)
    assert df["drift_agreement"].null_count() == 2
    assert all("drift: needs at least" in n for n in df["note"])
    assert df["knn_recall"].to_list() == [1.0, 1.0]


def test_timing_ignores_the_embedding_cache(corpus: list[str], tmp_path: Any) -> None:
    emb = Hashing(dim=64, cache=tmp_path)
    emb.embed(corpus[:40], progress=False)  # fill the cache
    before = emb.calls
    compare_models(Hashing(dim=64), {"cached": emb}, corpus=corpus[:40], k=3, drift=False,
                   progress=False)
    # warm-up text + the whole corpus sent to the model, nothing served from the cache
    assert emb.calls - before == 41
    assert emb.cache == tmp_path  # restored


@pytest.mark.parametrize(("kwargs", "error", "name"), [
    ({"corpus": []}, EmptyInputError, "corpus"),
    ({"variants": {}}, EmptyInputError, "variants"),
    ({"variants": []}, EmptyInputError, "variants"),
    ({"variants": {"x": object()}}, InvalidInputError, "variants"),
    ({"variants": "hashing"}, InvalidInputError, "variants"),
    ({"variants": [Hashing(8), Hashing(16)]}, InvalidInputError, "variants"),
    ({"teacher": "minilm"}, InvalidInputError, "teacher"),
    ({"sts": pl.DataFrame({"a": ["x"], "score": [1.0]})}, MissingColumnError, "sts"),
    ({"k": 0}, InvalidInputError, "k"),
    ({"k": 50}, InvalidInputError, "k"),
    ({"n_clusters": 1}, InvalidInputError, "n_clusters"),
    ({"dedup_threshold": 1.5}, InvalidInputError, "dedup_threshold"),
    ({"random_state": -1}, InvalidInputError, "random_state"),
])
def test_bad_input_names_the_argument(corpus: list[str], kwargs: dict[str, Any],
                                      error: type[Exception], name: str) -> None:
    args: dict[str, Any] = {"teacher": Hashing(dim=16), "variants": {"h": Hashing(dim=8)},
                            "corpus": corpus[:20], "k": 3, "drift": False, "progress": False,
                            **kwargs}
    with pytest.raises(error, match=rf"^{name}"):
        compare_models(args.pop("teacher"), args.pop("variants"), **args)


def test_wrong_shaped_embedder_output_is_refused(corpus: list[str]) -> None:
    bad = FromCallable(lambda t: np.ones((len(t), 5)), name="liar", dim=8)
    with pytest.raises(InvalidInputError, match="dimension"):
        compare_models(Hashing(dim=16), {"liar": bad}, corpus=corpus[:20], k=3, drift=False,
                       progress=False)


def test_params_and_bytes_come_from_the_model(corpus: list[str], tmp_path: Any) -> None:
    torch = pytest.importorskip("torch")
    from workbench.embed import BaseEmbedder, Fingerprint

    weights = tmp_path / "tiny" / "weights.bin"
    weights.parent.mkdir()
    weights.write_bytes(b"\0" * 1234)

    class Tiny(BaseEmbedder):
        name = "tiny"

        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.model = torch.nn.Linear(3, 8)
            self.path = weights.parent

        def _fingerprint(self) -> Fingerprint:
            return Fingerprint(name="tiny", version="0", dim=8, weights_hash="0")

        def _embed_batch(self, texts: list[str]) -> NDArray[np.float32]:
            feats = torch.tensor([[len(t), t.count(" "), t.count("e")] for t in texts],
                                 dtype=torch.float32)
            with torch.no_grad():
                return self.model(feats).numpy()

    df = compare_models(Hashing(dim=32), {"tiny": Tiny()}, corpus=corpus[:40], k=3,
                        drift=False, progress=False)
    tiny = _row(df, "tiny")
    assert tiny["params"] == 3 * 8 + 8
    assert tiny["bytes_on_disk"] == 1234
    assert tiny["dim"] == 8
