from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

import workbench as wb
from tests.helpers import clustered, exact_neighbours


def test_roundtrip_10k_five_commits(tmp_path: Path) -> None:
    n, dim = 10_000, 32
    x = clustered(n, dim, seed=1)
    q = clustered(50, dim, seed=2)
    path = tmp_path / "s"
    with wb.Store.create(path, dim=dim, metric="cos", dtype="f16") as store:
        for b in range(5):
            sl = slice(b * 2000, (b + 1) * 2000)
            df = pl.DataFrame({
                "id": [f"d{i}" for i in range(sl.start, sl.stop)],
                "batch": [b] * 2000,
                "text": [f"row {i}" for i in range(sl.start, sl.stop)],
            })
            store.add(df, vectors=x[sl], progress=False)
        assert store.generation == 5
        assert len(store) == n
        scan_before = store.scan().collect()
        top_before = store.search(q, k=10)
        exact_before = store.search(q, k=10, exact=True)
    with wb.Store.open(path) as store:
        assert len(store) == n
        assert_frame_equal(store.scan().collect(), scan_before)
        assert_frame_equal(store.search(q, k=10), top_before)
        assert_frame_equal(store.search(q, k=10, exact=True), exact_before)
        np.testing.assert_array_equal(store.vectors(["d0", "d9999"]), x[[0, 9999]])
    # the approximate search found most true neighbours
    truth = exact_neighbours(x, q, 10, "cos")
    got = top_before.group_by("query", maintain_order=True).agg(pl.col("id"))["id"].to_list()
    recall = np.mean([
        len({f"d{j}" for j in truth[i]} & set(got[i])) / 10 for i in range(len(q))
    ])
    assert recall > 0.9


def test_delete_compact_and_upsert(tmp_path: Path) -> None:
    dim = 16
    x = clustered(6000, dim, seed=3)
    with wb.Store.create(tmp_path / "s", dim=dim, exact_threshold=500) as store:
        for b in range(3):
            ids = [f"r{i}" for i in range(b * 2000, (b + 1) * 2000)]
            store.add(pl.DataFrame({"id": ids, "v": list(range(2000))}),
                      vectors=x[b * 2000:(b + 1) * 2000], progress=False)
        gone = [f"r{i}" for i in range(0, 6000, 7)]
        assert store.delete(gone) == len(gone)
        assert len(store) == 6000 - len(gone)
        # deleted ids are invisible to ANN and exact search before compaction
        for exact in (False, True):
            res = store.search(x[:: 7][:200], k=5, exact=exact)
            assert not set(res["id"]) & set(gone)
        store.compact()
        assert len(store.segments) == 1
        assert store.segments["deleted"].to_list() == [0]
        assert len(store) == 6000 - len(gone)
        # upsert replaces vector and metadata
        new_vec = -x[1]
        store.upsert(pl.DataFrame({"id": ["r1"], "v": [-1]}), vectors=new_vec[None, :])
        assert len(store) == 6000 - len(gone)
        np.testing.assert_array_equal(store.vectors(["r1"])[0], new_vec)
        assert store.get(["r1"])["v"].to_list() == [-1]
        hit = store.search(new_vec, k=1)
        assert hit["id"].to_list() == ["r1"]
        # upsert of a new id inserts it
        store.upsert(pl.DataFrame({"id": ["fresh"], "v": [5]}), vectors=x[2:3])
        assert "fresh" in store.scan().collect()["id"].to_list()
    with wb.Store.open(tmp_path / "s") as store:
        ids = set(store.scan().collect()["id"])
        assert not ids & set(gone)
        assert len(store) == 6000 - len(gone) + 1
        all_hits = store.search(x, k=3)
        assert not set(all_hits["id"]) & set(gone)
        assert store.get(["r1"])["v"].to_list() == [-1]


@pytest.mark.parametrize("metric", ["cos", "ip", "l2sq"])
@pytest.mark.parametrize("dtype", ["f32", "f16", "bf16", "i8", "b1"])
def test_metric_dtype_matrix(tmp_path: Path, metric: str, dtype: str) -> None:
    dim = 24
    x = clustered(3000, dim, seed=4)
    if dtype in ("i8", "b1") and metric != "cos":
        with pytest.raises(wb.errors.InvalidInputError,
                           match=f"dtype: '{dtype}' needs metric='cos'"):
            wb.Store.create(tmp_path / "s", dim=dim, metric=metric, dtype=dtype)
        return
    if metric == "l2sq":
        x = x * 3.0  # unnormalised data for l2sq
    q = x[:40] + 0.01
    with wb.Store.create(tmp_path / "s", dim=dim, metric=metric, dtype=dtype,
                         exact_threshold=100) as store:
        store.add(pl.DataFrame({"id": [str(i) for i in range(3000)]}), vectors=x, progress=False)
        exact = store.search(q, k=10, exact=True)
        ann = store.search(q, k=10)
    truth = exact_neighbours(x, q, 10, metric)
    got = exact.group_by("query", maintain_order=True).agg(pl.col("id"))["id"].to_list()
    for i in range(len(q)):
        assert got[i][0] == str(truth[i][0])
        assert len(set(got[i]) & {str(j) for j in truth[i]}) >= 9  # float ties aside
    ann_ids = ann.group_by("query", maintain_order=True).agg(pl.col("id"))["id"].to_list()
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ann_ids, got, strict=True)])
    assert recall >= {"f32": 0.9, "f16": 0.9, "bf16": 0.8, "i8": 0.6, "b1": 0.6}[dtype]
    d = exact["distance"].to_numpy()
    assert (np.diff(d.reshape(len(q), 10), axis=1) >= -1e-6).all()


def test_text_store_with_hashing_embedder(tmp_path: Path) -> None:
    emb = wb.embed.Hashing(dim=128)
    docs = pl.DataFrame({
        "id": ["a", "b", "c"],
        "text": ["the quick brown fox", "a lazy dog sleeps", "vector databases index embeddings"],
    })
    with wb.Store.create(tmp_path / "t", embedder=emb) as store:
        store.add(docs, text="text", progress=False)
        assert store.model is not None and store.model.kind == "hashing"
        hit = store.search("quick brown foxes", k=1)
        assert hit["id"].to_list() == ["a"]
    with wb.Store.open(tmp_path / "t") as store:  # the embedder is rebuilt from the fingerprint
        assert store.search(["lazy dogs", "embedding index"], k=1)["id"].to_list() == ["b", "c"]


def test_transaction_groups_commits_and_rolls_back(tmp_path: Path) -> None:
    x = clustered(30, 8, seed=5)
    with wb.Store.create(tmp_path / "s", dim=8) as store:
        with store.transaction():
            store.add({"id": ["a", "b"]}, vectors=x[:2])
            store.add({"id": ["c"]}, vectors=x[2:3])
            store.delete(["a"])
        assert store.generation == 1
        assert sorted(store.scan().collect()["id"]) == ["b", "c"]
        with pytest.raises(RuntimeError), store.transaction():
            store.add({"id": ["d"]}, vectors=x[3:4])
            raise RuntimeError("boom")
        assert store.generation == 1
        assert sorted(store.scan().collect()["id"]) == ["b", "c"]
    with wb.Store.open(tmp_path / "s") as store:
        assert sorted(store.scan().collect()["id"]) == ["b", "c"]
        store.add({"id": ["d"]}, vectors=x[3:4])
        assert len(store) == 3


def test_where_filters_metadata(tmp_path: Path) -> None:
    from datetime import datetime, timedelta

    x = clustered(2000, 16, seed=6)
    t0 = datetime(2024, 1, 1)
    df = pl.DataFrame({
        "id": [str(i) for i in range(2000)],
        "lang": ["en" if i % 4 else "de" for i in range(2000)],
        "ts": [t0 + timedelta(hours=i) for i in range(2000)],
    })
    with wb.Store.create(tmp_path / "s", dim=16, exact_threshold=100) as store:
        store.add(df, vectors=x, progress=False)
        res = store.search(x[:5], k=7, where=pl.col("lang") == "de")
        assert set(res["lang"]) == {"de"}
        assert res.height == 35
        lo, hi = t0 + timedelta(hours=100), t0 + timedelta(hours=300)
        res = store.search(x[:5], k=7, where=pl.col("ts").is_between(lo, hi))
        assert res["ts"].is_between(lo, hi).all()
        # equals brute force over the filtered rows
        mask = df["ts"].is_between(lo, hi).to_numpy()
        sub = np.flatnonzero(mask)
        truth = sub[exact_neighbours(x[sub], x[:5], 7, "cos")]
        xn = x / np.linalg.norm(x, axis=1, keepdims=True)
        exact = store.search(x[:5], k=7, where=pl.col("ts").is_between(lo, hi), exact=True)
        for r, atol in ((exact, 1e-5), (res, 2e-3)):  # the ANN path reads f16 distances
            got = r.group_by("query", maintain_order=True).agg(pl.col("id"), pl.col("distance"))
            for i in range(5):
                want = [1 - float(xn[i] @ xn[j]) for j in truth[i]]
                np.testing.assert_allclose(got["distance"][i].to_list(), want, atol=atol)
                assert got["id"][i][0] == str(truth[i][0])
        assert store.search(x[:2], k=5, where=pl.col("lang") == "fr").height == 0


def test_update_changes_metadata_only(tmp_path: Path) -> None:
    x = clustered(300, 8, seed=9)
    path = tmp_path / "s"
    with wb.Store.create(path, dim=8) as store:
        store.add({"id": [f"a{i}" for i in range(200)], "n": list(range(200))}, vectors=x[:200],
                  progress=False)
        store.add({"id": [f"b{i}" for i in range(100)], "n": list(range(100))}, vectors=x[200:],
                  progress=False)
        store.upsert({"id": ["a1"], "n": [-1]}, vectors=x[1:2])  # a tombstoned old a1 remains
        keys_before = store.scan().select("id", "key").collect()
        index_files = {s.index.name for s in store._manifest.segments}
        reader = wb.Store.open(path, readonly=True)
        gen = store.generation
        assert store.update({"id": ["a1", "a5", "b7"], "label": ["x", None, "z"],
                             "n": [10, 50, 70]}) == 3
        assert store.generation == gen + 1
        assert {s.index.name for s in store._manifest.segments} == index_files
        got = store.get(["a1", "a5", "b7", "a6"])
        assert got["label"].to_list() == ["x", None, "z", None]
        assert got["n"].to_list() == [10, 50, 70, 6]
        assert store.scan().select("id", "key").collect().equals(keys_before)
        np.testing.assert_array_equal(store.vectors(["a5"])[0], x[5])
        assert store.search(x[5], k=1, where=pl.col("n") == 50)["id"].to_list() == ["a5"]
        with pytest.raises(wb.errors.UnknownIdError, match="id: .*'zz'"):
            store.update({"id": ["a2", "zz"], "n": [0, 0]})
        with pytest.raises(wb.errors.InvalidInputError, match="'n'"):
            store.update({"id": ["a2"], "n": ["text"]})
        assert store.generation == gen + 1
        assert len(reader) == 300 and "label" not in reader.scan().collect_schema().names()
        reader.refresh()
        assert reader.get(["b7"])["label"].to_list() == ["z"]
        reader.close()
    with wb.Store.open(path) as store:
        assert store.get(["a1", "b7"])["label"].to_list() == ["x", "z"]
        store.compact()
        assert store.get(["a1", "b7"])["n"].to_list() == [10, 70]
