"""Hybrid search, rescoring, recommendations, the semantic cache and ANN evaluation."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import workbench as wb
from tests.helpers import cosine
from workbench import errors as E


def _recall(got: pl.DataFrame, truth: pl.DataFrame) -> float:
    g = got.group_by("query").agg(pl.col("key")).sort("query")
    t = truth.group_by("query").agg(pl.col("key")).sort("query")
    want = dict(zip(t["query"], t["key"].to_list(), strict=True))
    out = [len(set(k) & set(want[q])) / len(want[q]) for q, k in
           zip(g["query"], g["key"].to_list(), strict=True)]
    assert len(out) == t.height, "every query must return results"
    return float(np.mean(out))


@pytest.fixture(scope="module")
def big_store(tmp_path_factory: pytest.TempPathFactory) -> wb.Store:
    n, dim = 50_000, 64
    x, labels = wb.datasets.clustered_vectors(n, dim, n_clusters=50, spread=0.5)
    rng = np.random.default_rng(3)
    df = pl.DataFrame({
        "id": [f"v{i}" for i in range(n)],
        "u": rng.random(n),
        "cat": [f"c{c}" for c in labels],
        "ts": [datetime(2024, 1, 1) + timedelta(minutes=i) for i in range(n)],
    })
    store = wb.Store.create(tmp_path_factory.mktemp("big") / "s", dim=dim, dtype="f16",
                            exact_threshold=512)
    store.add(df, vectors=x, progress=False)
    return store


@pytest.mark.parametrize("selectivity", [0.001, 0.01, 0.1, 0.5, 1.0])
def test_filtered_recall_at_every_selectivity(big_store: wb.Store, selectivity: float) -> None:
    q, _ = wb.datasets.clustered_vectors(200, 64, n_clusters=50, spread=0.5)
    where = pl.col("u") < selectivity
    truth = big_store.search(q, k=10, where=where, exact=True)
    got = big_store.search(q, k=10, where=where)
    assert got["u"].lt(selectivity).all()
    assert _recall(got, truth) >= 0.95


def test_filters_on_dates_and_categories_match_brute_force(big_store: wb.Store) -> None:
    q, _ = wb.datasets.clustered_vectors(20, 64, n_clusters=50, spread=0.5)
    lo, hi = datetime(2024, 1, 3), datetime(2024, 1, 5)
    where = pl.col("ts").is_between(lo, hi) & pl.col("cat").is_in(["c1", "c2", "c3"])
    meta, vecs = big_store.fetch(where)
    assert meta.height > 0
    got = big_store.search(q, k=5, where=where)
    d = 1 - cosine(q, vecs)
    for i in range(len(q)):
        best = meta["id"].gather(np.argsort(d[i])[:5]).to_list()
        assert got.filter(pl.col("query") == i)["id"].to_list() == best
    empty = big_store.search(q, k=5, where=pl.col("cat") == "nope")
    assert empty.height == 0 and "id" in empty.columns


@pytest.fixture(scope="module")
def rescore_data() -> tuple[np.ndarray, np.ndarray]:
    """20k x 128 clustered vectors and 300 queries where quantized recall is visibly capped."""
    x, _ = wb.datasets.clustered_vectors(20_000, 128, n_clusters=200, spread=1.0,
                                         intrinsic_dim=64)
    q, _ = wb.datasets.clustered_vectors(300, 128, n_clusters=200, spread=1.0, intrinsic_dim=64)
    return x, q


def test_rescore_restores_recall_on_i8(
    tmp_path: Path, rescore_data: tuple[np.ndarray, np.ndarray]
) -> None:
    x, q = rescore_data
    with wb.Store.create(tmp_path / "s", dim=128, dtype="i8") as s:
        s.add({"id": [str(i) for i in range(len(x))]}, vectors=x, progress=False)
        truth = s.search(q, k=10, exact=True)
        raw = _recall(s.search(q, k=10, rescore=False), truth)
        fixed = _recall(s.search(q, k=10, rescore=True), truth)
        default = _recall(s.search(q, k=10), truth)
    assert fixed >= 0.97 and fixed > raw
    assert default == fixed  # rescoring is on by default for i8
    with pytest.raises(E.InvalidInputError, match="rescore"):
        s.search(q, k=10, rescore=-1)


def test_b1_index_with_rescoring_reaches_high_recall(
    tmp_path: Path, rescore_data: tuple[np.ndarray, np.ndarray]
) -> None:
    x, q = rescore_data
    with wb.Store.create(tmp_path / "s", dim=128, dtype="b1", expansion_search=128) as s:
        s.add({"id": [str(i) for i in range(len(x))], "even": np.arange(len(x)) % 2 == 0},
              vectors=x, progress=False)
        truth = s.search(q, k=10, exact=True)
        got = s.search(q, k=10)
        # distances are the full-precision cosine distances of the re-ranked candidates
        np.testing.assert_allclose(
            got.filter(pl.col("query") == 0)["distance"].to_numpy(),
            1 - cosine(q[:1], s.vectors(got.filter(pl.col("query") == 0)["id"].to_list()))[0],
            atol=1e-5)
        assert _recall(got, truth) >= 0.9
        assert _recall(s.search(q, k=10, rescore=20), truth) >= _recall(got, truth) - 0.01
        filtered = s.search(q, k=10, where=pl.col("even"))
        assert filtered.height == 3000 and filtered["even"].all()
        with pytest.raises(E.InvalidInputError, match="rescore: a 'b1' index"):
            s.search(q, k=10, rescore=False)
    with wb.Store.open(tmp_path / "s", readonly=True) as s:  # the sign-bit index reloads
        assert _recall(s.search(q, k=10), truth) >= 0.9


def test_recommend_excludes_inputs_and_honours_where(big_store: wb.Store) -> None:
    pos = ["v1", "v2", "v3"]
    rec = big_store.recommend(pos, ["v4"], k=20)
    assert rec.height == 20 and not set(rec["id"]) & {*pos, "v4"}
    # the profile sits in the positives' neighbourhood
    mine = big_store.get(pos)["cat"].to_list()
    assert rec["cat"].is_in(mine).mean() > 0.5
    rec = big_store.recommend(pos, k=10, where=pl.col("u") < 0.05)
    assert rec.height == 10 and rec["u"].lt(0.05).all()
    with pytest.raises(E.UnknownIdError, match="positive: .*'nope'"):
        big_store.recommend(["v1", "nope"])
    with pytest.raises(E.UnknownIdError, match="negative: .*'gone'"):
        big_store.recommend(["v1"], ["gone"])
    with pytest.raises(E.EmptyInputError, match="positive"):
        big_store.recommend([])
    with pytest.raises(E.InvalidInputError, match="both"):
        big_store.recommend(["v1"], ["v1"])


def test_semantic_cache_hits_and_invalidates(tmp_path: Path) -> None:
    emb = wb.embed.Hashing(dim=256)
    texts = [f"document number {i} about topic {i % 7}" for i in range(200)]
    with wb.Store.create(tmp_path / "s", embedder=emb) as s:
        s.add({"id": [str(i) for i in range(200)], "text": texts}, text="text", progress=False)
        cache = wb.SemanticCache(s, threshold=0.9, capacity=2)
        first = cache.search("document number 5 about topic 5", k=5)
        again = cache.search("document number 5 about topic 5.", k=5)  # near-identical text
        assert (cache.hits, cache.misses) == (1, 1)
        assert first.equals(again)
        cache.search("something else entirely", k=5)
        cache.search("document number 5 about topic 5", k=3)  # different k: a miss
        assert cache.misses == 3 and len(cache) == 2  # capacity evicts the oldest
        s.add({"id": ["new"], "text": ["document number 5 about topic 5"]}, text="text",
              progress=False)
        after = cache.search("document number 5 about topic 5", k=5)
        assert cache.invalidations == 1 and cache.misses == 4
        assert "new" in after["id"].to_list()
    with pytest.raises(E.InvalidInputError, match="threshold"):
        wb.SemanticCache(s, threshold=1.5)


def test_evaluate_ann_sweep(big_store: wb.Store) -> None:
    ev = wb.evaluate_ann(big_store, 100, k=10, sweep={"expansion_search": [8, 64]},
                         progress=False)
    f = ev.to_frame()
    assert f.columns[:3] == ["expansion_search", "recall", "qps"]
    assert f["recall"].is_between(0, 1).all() and (f["qps"] > 0).all()
    assert f["recall"][1] >= f["recall"][0] and f["recall"][1] >= 0.95
    assert big_store.expansion_search == 64  # restored
    fig = ev.plot()
    assert fig.axes[0].get_ylabel() == "recall@10"
    with pytest.raises(E.InvalidInputError, match="sweep"):
        wb.evaluate_ann(big_store, 5, sweep={"bogus": [1]})


def test_search_bad_input(big_store: wb.Store) -> None:
    with pytest.raises(E.InvalidInputError, match="k"):
        big_store.search(np.ones(64), k=0)
    with pytest.raises(E.InvalidInputError, match="k: expected at most"):
        big_store.search(np.ones(64), k=10**6)
    with pytest.raises(E.EmptyInputError, match="query"):
        big_store.search(np.empty((0, 64)), k=3)
    with pytest.raises(E.MissingColumnError, match="where"):
        big_store.search(np.ones(64), k=3, where=pl.col("missing") > 1)
    with pytest.raises(E.InvalidInputError, match="where: expected a polars expression"):
        big_store.search(np.ones(64), k=3, where="u < 3")


def test_empty_text_query(tmp_path: Path) -> None:
    with wb.Store.create(tmp_path / "t", embedder=wb.embed.Hashing(dim=32)) as s:
        s.add({"id": ["a"], "text": ["hello"]}, text="text", progress=False)
        for bad in ("", "   ", ["hello", ""]):
            with pytest.raises(E.InvalidInputError, match="query: expected non-empty text"):
                s.search(bad, k=1)


def test_concurrent_searches_from_threads_agree(tmp_path: Path) -> None:
    import threading

    x = np.random.default_rng(0).normal(size=(4000, 32)).astype(np.float32)
    with wb.Store.create(tmp_path / "s", dim=32, dtype="i8", exact_threshold=1) as s:
        s.add({"id": [str(i) for i in range(len(x))]}, vectors=x, progress=False)
        ref = s.search(x[:40], k=5)  # the rescoring kernel runs in every call below
        bad: list[int] = []

        def run() -> None:
            for _ in range(10):
                if not s.search(x[:40], k=5)["id"].equals(ref["id"]):
                    bad.append(1)

        threads = [threading.Thread(target=run) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not bad


def test_ann_plot_labels_never_overlap() -> None:
    from workbench.analysis.search import AnnEvaluation

    # eight settings at nearly the same speed and recall (what a fast CPU run looks like)
    frame = pl.DataFrame({"expansion_search": [8, 16, 32, 64, 128, 256, 512, 1024],
                          "rescore": [False] * 8,
                          "recall": [0.9, 0.97, 0.99, 1.0, 1.0, 1.0, 1.0, 1.0],
                          "qps": [9000.0, 8900, 8800, 8600, 8500, 8450, 8400, 2000]})
    ev = AnnEvaluation(frame=frame, k=10, exact_qps=1500.0,
                       params=("expansion_search", "rescore"))
    fig = ev.plot()
    renderer = fig.canvas.get_renderer()
    texts = [t for t in fig.axes[0].texts if t.get_visible()]
    boxes = [t.get_window_extent(renderer) for t in texts]
    assert 2 <= len(texts) < 8  # some dropped, the spread-out ones kept
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    assert texts[0].get_text() == "8/False"
    assert "expansion_search/rescore" in fig.axes[0].get_xlabel()
