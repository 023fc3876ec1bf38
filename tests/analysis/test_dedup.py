from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import workbench as wb
from workbench.analysis._dedup_text import content_hash, lexical_features, normalized_text
from workbench.analysis.dedup import DedupWarning
from workbench.datasets import synthetic_stream
from workbench.errors import EmptyInputError, InvalidInputError, UnknownIdError


def _groups(result: wb.DedupResult) -> set[frozenset[str]]:
    g = result.groups.group_by("group").agg(pl.col("id"))
    return {frozenset(ids) for ids in g.get_column("id").to_list()}


def _pair_f1(found: set[frozenset[str]], truth: list[list[str]]) -> float:
    def pairs(groups: object) -> set[frozenset[str]]:
        return {frozenset(p) for g in groups for p in itertools.combinations(sorted(g), 2)}

    f, t = pairs(found), pairs(truth)
    tp = len(f & t)
    return 2 * tp / (len(f) + len(t)) if f or t else 1.0


@pytest.fixture(scope="module")
def stream() -> wb.datasets.SyntheticStream:
    return synthetic_stream(6_000, 32, duplicate_groups=30, duplicate_size=3, drift_points=1,
                            random_state=3)


@pytest.fixture(scope="module")
def planted_store(tmp_path_factory: pytest.TempPathFactory,
                  stream: wb.datasets.SyntheticStream) -> wb.Store:
    store = wb.Store.create(tmp_path_factory.mktemp("dedup") / "s", dim=32)
    store.add(stream.frame, vectors=stream.vectors, progress=False)
    return store


def _copy(store: wb.Store, dest: Path) -> wb.Store:
    shutil.copytree(store.path, dest)
    return wb.Store.open(dest)


@pytest.mark.parametrize(("threshold", "candidates"),
                         [(None, "auto"), (0.98, "index"), (0.98, "lsh")])
def test_planted_groups_found(planted_store: wb.Store, stream: wb.datasets.SyntheticStream,
                              threshold: float | None, candidates: str) -> None:
    r = wb.find_duplicates(planted_store, method="cosine", threshold=threshold,
                           candidates=candidates, progress=False)  # type: ignore[arg-type]
    assert r.info["candidates"] == ("index" if candidates == "auto" else candidates)
    assert _pair_f1(_groups(r), stream.duplicate_groups) >= 0.98
    assert r.summary["groups"] == 30 and r.summary["duplicates"] == 60
    assert r.summary["share"] == pytest.approx(60 / 6_000)
    assert (r.threshold_rule == "given") == (threshold is not None)
    if threshold is None:
        assert "Otsu" in r.threshold_rule and 0.9 <= r.threshold <= 0.99
    # every group has one representative, listed first
    firsts = r.groups.group_by("group", maintain_order=True).first()
    assert firsts.get_column("is_representative").all()
    assert r.groups.get_column("is_representative").sum() == r.summary["groups"]


def test_pairs_are_unique_symmetric_and_full_precision(planted_store: wb.Store) -> None:
    r = wb.find_duplicates(planted_store, method="cosine", threshold=0.95, progress=False)
    p = r.pairs
    assert (p["key_a"] < p["key_b"]).all()
    assert p.select("key_a", "key_b").is_unique().all()
    sample = p.sample(min(200, p.height), seed=0)
    meta, vecs = planted_store.fetch()
    row = {key: i for i, key in enumerate(meta["key"].to_list())}
    va = vecs[[row[x] for x in sample["key_a"].to_list()]]
    vb = vecs[[row[x] for x in sample["key_b"].to_list()]]
    exact = (va * vb).sum(1) / np.linalg.norm(va, axis=1) / np.linalg.norm(vb, axis=1)
    np.testing.assert_allclose(sample["cosine"].to_numpy(), exact, atol=1e-5)
    # the lexical scores are symmetric too
    a, b = ["the cat sat on the mat", "alpha beta"], ["on the mat the cat sat", "alpha gamma"]
    fab, fba = lexical_features(a, b), lexical_features(b, a)
    for name in fab:
        np.testing.assert_allclose(fab[name], fba[name])


def test_representatives_never_chain_components_do(tmp_path: Path) -> None:
    # a ~ b ~ c along a great circle: cos(a, b) = cos(b, c) = 0.96, cos(a, c) = 0.843
    rng = np.random.default_rng(0)
    dim = 16
    base = rng.standard_normal((200, dim)).astype(np.float32)
    e1, e2 = np.eye(dim, dtype=np.float32)[:2]
    ang = np.arccos(0.96)
    chain = np.stack([np.cos(t) * e1 + np.sin(t) * e2 for t in (0, ang, 2 * ang)])
    base[:, :2] = 0  # keep the background away from the chain's plane
    vecs = np.concatenate([chain, base]).astype(np.float32)
    ids = ["a", "b", "c"] + [f"x{i}" for i in range(200)]
    store = wb.Store.create(tmp_path / "s", dim=dim)
    store.add(pl.DataFrame({"id": ids}), vectors=vecs, progress=False)
    r = wb.find_duplicates(store, method="cosine", threshold=0.95, progress=False)
    groups = _groups(r)
    assert frozenset({"a", "b"}) in groups and not any({"a", "c"} <= g for g in groups)
    # the guarantee: every member passes against its representative
    assert (r.groups["score_to_representative"] >= 0.95).all()
    comp = r.regroup(grouping="components")
    assert frozenset({"a", "b", "c"}) in _groups(comp)
    assert comp.summary["longest_chain"] == 2
    c_row = comp.groups.filter(pl.col("id") == "c")
    assert c_row["score_to_representative"].is_null().all()  # no direct pair with "a"


def test_guarantee_holds_on_dense_data(planted_store: wb.Store) -> None:
    # a low threshold makes large overlapping neighbourhoods: still no member below it
    r = wb.find_duplicates(planted_store, method="cosine", threshold=0.8, progress=False)
    assert r.summary["groups"] > 30
    assert (r.groups["score_to_representative"] >= 0.8).all()
    assert r.groups.select("key").is_unique().all()


def test_exact_duplicates_despite_case_whitespace_unicode(tmp_path: Path) -> None:
    texts = ["Café  Menu\tToday", "café menu today", "Cafe\u0301 MENU today",
             "ｃａｆé menu today", "a different sentence entirely", "Hello, world!",
             "hello world", "   "," "]
    h = content_hash(pl.Series(texts))
    assert len(set(h[:4].tolist())) == 1 and h[4] != h[0]
    assert h[5] != h[6]  # punctuation counts unless asked
    assert content_hash(pl.Series(texts), punctuation=True)[5] == \
        content_hash(pl.Series(texts), punctuation=True)[6]
    assert h[7] != h[8]  # blank texts are never exact duplicates of each other
    assert normalized_text(pl.Series(["Ａ  b\n"])).to_list() == ["a b"]
    store = wb.Store.create(tmp_path / "s", embedder=wb.embed.Hashing(dim=64))
    extra = [f"unrelated row number {i} about topic {i * 7}" for i in range(40)]
    store.add(pl.DataFrame({"id": [f"t{i}" for i in range(len(texts) + 40)],
                            "text": texts + extra}), text="text", progress=False)
    r = wb.find_duplicates(store, method="cosine", threshold=0.99, progress=False)
    g = r.groups.filter(pl.col("id").is_in(["t0", "t1", "t2", "t3"]))
    assert g.height == 4 and g["group"].n_unique() == 1
    assert g.filter(~pl.col("is_representative"))["exact"].all()
    assert g.filter(pl.col("is_representative"))["id"].to_list() == ["t0"]  # keep="first"
    assert r.summary["exact_duplicates"] >= 3


def test_identical_vectors_are_exact_in_a_vectors_only_store(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    v = rng.standard_normal((300, 24)).astype(np.float32)
    v[10] = v[3]
    v[11] = v[3]
    store = wb.Store.create(tmp_path / "s", dim=24)
    store.add(pl.DataFrame({"id": [f"r{i}" for i in range(300)]}), vectors=v, progress=False)
    r = wb.find_duplicates(store, method="cosine", threshold=0.999, text=None, progress=False)
    assert _groups(r) == {frozenset({"r3", "r10", "r11"})}
    assert r.groups.filter(~pl.col("is_representative"))["exact"].all()


def test_keep_rule_picks_the_representative(tmp_path: Path) -> None:
    store = wb.Store.create(tmp_path / "s", embedder=wb.embed.Hashing(dim=64))
    texts = ["short dup", "Short dup", "SHORT   DUP"] + [
        f"filler text {i} {i*i}" for i in range(30)]
    store.add(pl.DataFrame({"id": [f"k{i}" for i in range(len(texts))], "text": texts}),
              text="text", progress=False)
    last = wb.find_duplicates(store, method="cosine", threshold=0.99, keep="last", progress=False)
    assert last.groups.filter(pl.col("is_representative"))["id"].to_list() == ["k2"]
    longest = wb.find_duplicates(store, method="cosine", threshold=0.99, keep="longest",
                                 progress=False)
    assert longest.groups.filter(pl.col("is_representative"))["id"].to_list() == ["k2"]


def test_regroup_from_cache_equals_a_cold_run(planted_store: wb.Store) -> None:
    cold = wb.find_duplicates(planted_store, method="cosine", threshold=0.9, cache=False,
                              progress=False)
    wb.find_duplicates(planted_store, method="cosine", threshold=0.97, progress=False)
    warm = wb.find_duplicates(planted_store, method="cosine", threshold=0.9, progress=False)
    assert warm.info["cached"] and warm.info["searched"] == 0
    assert not cold.info["cached"] and cold.info["searched"] == planted_store.__len__()
    assert warm.groups.equals(cold.groups) and warm.pairs.equals(cold.pairs)
    again = cold.regroup(0.97)
    direct = wb.find_duplicates(planted_store, method="cosine", threshold=0.97, progress=False)
    assert again.groups.equals(direct.groups)
    with pytest.raises(InvalidInputError, match="threshold"):
        cold.regroup(0.5)  # below the pairs it kept


@pytest.mark.parametrize("candidates", ["index", "lsh"])
def test_incremental_run_searches_only_new_rows(tmp_path: Path, planted_store: wb.Store,
                                                candidates: str) -> None:
    store = _copy(planted_store, tmp_path / "s")
    full = wb.find_duplicates(store, method="cosine", threshold=0.98, progress=False,
                              candidates=candidates)  # type: ignore[arg-type]
    rng = np.random.default_rng(5)
    old = store.vectors(["row-000100", "row-004000"])
    jitter = rng.standard_normal(old.shape).astype(np.float32) * 0.01
    new_vecs = np.concatenate([old + jitter, rng.standard_normal((48, 32)).astype(np.float32)])
    new_ids = ["new-dup-100", "new-dup-4000"] + [f"new-{i}" for i in range(48)]
    store.add(pl.DataFrame({"id": new_ids}), vectors=new_vecs, progress=False)
    inc = wb.find_duplicates(store, method="cosine", threshold=0.98, only_new=True,
                             candidates=candidates, progress=False)  # type: ignore[arg-type]
    assert inc.info["searched"] == 50 and inc.info["base_generation"] == full.info["generation"]
    groups = _groups(inc)
    assert any({"row-000100", "new-dup-100"} <= g for g in groups)
    assert any({"row-004000", "new-dup-4000"} <= g for g in groups)
    # the old groups are all still there, and a cold run agrees
    assert _groups(full) <= groups
    cold = wb.find_duplicates(store, method="cosine", threshold=0.98, cache=False,
                              candidates=candidates, progress=False)  # type: ignore[arg-type]
    assert _groups(cold) == groups
    by_gen = wb.find_duplicates(store, method="cosine", threshold=0.98, progress=False,
                                candidates=candidates,  # type: ignore[arg-type]
                                since_generation=full.info["generation"])
    assert by_gen.info["cached"]  # the incremental graph was cached under the new rows
    with pytest.raises(InvalidInputError, match="since_generation"):
        wb.find_duplicates(store, method="cosine", threshold=0.98, cache=True,
                           since_generation=999, k=5, progress=False)


@pytest.mark.parametrize("candidates", ["index", "lsh"])
def test_deleted_rows_and_where_are_excluded(tmp_path: Path, planted_store: wb.Store,
                                            stream: wb.datasets.SyntheticStream,
                                            candidates: str) -> None:
    store = _copy(planted_store, tmp_path / "s")
    g0 = stream.duplicate_groups[0]
    store.delete(g0[1:])
    r = wb.find_duplicates(store, method="cosine", threshold=0.98, progress=False,
                           candidates=candidates)  # type: ignore[arg-type]
    assert not set(g0[1:]) & set(r.groups["id"].to_list())
    assert r.summary["groups"] == 29 and r.summary["rows"] == len(store)
    # where restricts both sides: regime 0 only
    w = wb.find_duplicates(store, method="cosine", threshold=0.98, progress=False,
                           candidates=candidates,  # type: ignore[arg-type]
                           where=pl.col("regime") == 0)
    kept = set(store.scan().filter(pl.col("regime") == 0).collect()["id"].to_list())
    assert set(w.pairs["id_a"].to_list()) | set(w.pairs["id_b"].to_list()) <= kept
    assert w.summary["rows"] == len(kept) and 0 < w.summary["groups"] < 29


def test_i8_store_rescored(tmp_path: Path, stream: wb.datasets.SyntheticStream) -> None:
    store = wb.Store.create(tmp_path / "s", dim=32, dtype="i8")
    store.add(stream.frame, vectors=stream.vectors, progress=False)
    r = wb.find_duplicates(store, method="cosine", threshold=0.98, progress=False)
    assert _pair_f1(_groups(r), stream.duplicate_groups) >= 0.98


def test_apply_dedup_survives_reopen_and_delete_keeps_history(
        tmp_path: Path, planted_store: wb.Store, stream: wb.datasets.SyntheticStream) -> None:
    store = _copy(planted_store, tmp_path / "s")
    r = wb.find_duplicates(store, method="cosine", threshold=0.98, progress=False)
    before = store.generation
    out = wb.apply_dedup(store, r, delete=True)
    assert out["labelled_generation"] == before + 1 and out["generation"] == before + 2
    assert out["duplicates"] == out["deleted"] == 60
    path = store.path
    store.close()
    reopened = wb.Store.open(path, readonly=True)
    assert len(reopened) == 6_000 - 60
    labelled = wb.Store.open(path, readonly=True, generation=out["labelled_generation"])
    meta = labelled.scan().collect()
    assert len(labelled) == 6_000 and meta["is_duplicate"].sum() == 60
    grp = meta.filter(pl.col("id").is_in(stream.duplicate_groups[0]))
    assert grp["dup_group"].n_unique() == 1
    assert grp["dup_representative"].unique().to_list() == [stream.duplicate_groups[0][0]]
    assert meta.filter(pl.col("dup_group").is_null())["is_duplicate"].sum() == 0
    # a stale result (its rows deleted since) is refused and changes nothing
    rw = wb.Store.open(path)
    gen = rw.generation
    with pytest.raises(UnknownIdError, match="find_duplicates again"):
        wb.apply_dedup(rw, r)
    assert rw.generation == gen


def test_calibrate_threshold_known_answers(planted_store: wb.Store,
                                           stream: wb.datasets.SyntheticStream) -> None:
    r = wb.find_duplicates(planted_store, method="cosine", threshold=0.9, progress=False)
    truth = {frozenset(p) for g in stream.duplicate_groups
             for p in itertools.combinations(g, 2)}
    labels = [frozenset(x) in truth for x in zip(r.pairs["id_a"], r.pairs["id_b"], strict=True)]
    cal = wb.calibrate_threshold(r, labels)
    assert cal.average_precision == pytest.approx(1.0)
    assert cal.best_f1 == pytest.approx(1.0) and cal.n_duplicates == 90
    assert cal.at(cal.best_threshold)["recall"] == pytest.approx(1.0)
    # decisions keyed by pair, in either order
    dec = pl.DataFrame({"key_a": r.pairs["key_b"][:4], "key_b": r.pairs["key_a"][:4],
                        "is_duplicate": [True, False, True, False]})
    assert wb.calibrate_threshold(r, dec).n_pairs == 4
    with pytest.raises(InvalidInputError, match="labels"):
        wb.calibrate_threshold(r, labels[:-1])
    with pytest.raises(InvalidInputError, match="both"):
        wb.calibrate_threshold(r, [True] * r.pairs.height)
    bad = pl.DataFrame({"key_a": [1], "key_b": [1], "is_duplicate": [True]}).cast(
        {"key_a": pl.UInt64, "key_b": pl.UInt64})
    with pytest.raises(UnknownIdError):
        wb.calibrate_threshold(r, bad)


def test_hybrid_on_text_and_fallbacks(tmp_path: Path) -> None:
    store = wb.Store.create(tmp_path / "s", embedder=wb.embed.Hashing(dim=128))
    texts = ["the quick brown fox jumps over the lazy dog",
             "the quick brown fox jumped over the lazy dog",
             "a completely unrelated line about databases"] + [
        f"sentence {i} on subject {i % 7} with words {i * 3}" for i in range(60)]
    store.add(pl.DataFrame({"id": [f"h{i}" for i in range(len(texts))], "text": texts}),
              text="text", progress=False)
    with pytest.warns(DedupWarning, match="fitted on"):
        r = wb.find_duplicates(store, progress=False)  # hybrid, hashing embedder
    assert r.method == "hybrid" and r.threshold == 0.5
    assert r.pairs["lexical"].is_not_null().all()
    assert ((r.pairs["score"] >= 0) & (r.pairs["score"] <= 1)).all()
    own = wb.fit_blend(r.pairs, (r.pairs["token_sort"] > 0.9).to_numpy() | (
        r.pairs["cosine"] > 0.95).to_numpy())
    r2 = wb.find_duplicates(store, blend=wb.DedupBlend(own.coef, own.intercept),
                            progress=False)
    assert r2.info["blend"]["coef"] == list(own.coef)
    lex = wb.find_duplicates(store, method="lexical", threshold=0.9, progress=False)
    assert any({"h0", "h1"} <= g for g in _groups(lex))
    # no text column: cosine, with a warning
    with pytest.warns(DedupWarning, match="no text column"):
        c = wb.find_duplicates(store, text="body", progress=False)
    assert c.method == "cosine" and c.pairs["lexical"].is_null().all()


def test_bad_input_is_refused_and_changes_nothing(planted_store: wb.Store,
                                                  tmp_path: Path) -> None:
    gen = planted_store.generation
    files = sorted(p.name for p in (planted_store.path / "segments").iterdir())
    for bad in (0, -0.1, 1.5, float("nan"), "0.9", True):
        with pytest.raises(InvalidInputError, match="threshold"):
            wb.find_duplicates(planted_store, method="cosine", threshold=bad, progress=False)
    with pytest.raises(InvalidInputError, match="k"):
        wb.find_duplicates(planted_store, method="cosine", k=0, progress=False)
    with pytest.raises(InvalidInputError, match="method"):
        wb.find_duplicates(planted_store, method="fuzzy", progress=False)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="candidates"):
        wb.find_duplicates(planted_store, candidates="lsh", progress=False)  # hybrid
    with pytest.raises(InvalidInputError, match="candidates"):
        wb.find_duplicates(planted_store, method="cosine", candidates="lsh", progress=False)
    with pytest.raises(InvalidInputError, match="candidates"):
        wb.find_duplicates(planted_store, candidates="kmeans",  # type: ignore[arg-type]
                           progress=False)
    with pytest.raises(EmptyInputError, match="where"):
        wb.find_duplicates(planted_store, method="cosine", where=pl.col("regime") == 99,
                           progress=False)
    with pytest.raises(InvalidInputError, match="where"):
        wb.find_duplicates(planted_store, method="cosine", where=pl.col("nope") == 1,
                           progress=False)
    assert planted_store.generation == gen
    assert sorted(p.name for p in (planted_store.path / "segments").iterdir()) == files
    empty = wb.Store.create(tmp_path / "empty", dim=8)
    with pytest.raises(EmptyInputError, match="empty"):
        wb.find_duplicates(empty, progress=False)
    with pytest.raises(InvalidInputError, match="result"):
        wb.apply_dedup(planted_store, "not a result")  # type: ignore[arg-type]


def test_plot_and_to_frame(planted_store: wb.Store) -> None:
    r = wb.find_duplicates(planted_store, method="cosine", threshold=0.98, progress=False)
    fig = r.plot()
    assert len(fig.axes) == 2
    f = r.to_frame()
    assert f.height == len(planted_store) and f["is_duplicate"].sum() == 60
    assert f.filter(pl.col("group").is_null())["is_representative"].sum() == 0


@pytest.mark.parametrize(("candidates", "files"), [("index", 3), ("lsh", 5)])
def test_graph_cache_keeps_the_newest_runs_only(tmp_path: Path, candidates: str,
                                                files: int) -> None:
    rng = np.random.default_rng(2)
    store = wb.Store.create(tmp_path / "s", dim=16)
    folder = store.path / "cache" / "dedup"
    for i in range(5):
        v = rng.standard_normal((40, 16)).astype(np.float32)
        store.add(pl.DataFrame({"id": [f"b{i}-{j}" for j in range(40)]}), vectors=v,
                  progress=False)
        r = wb.find_duplicates(store, method="cosine", threshold=0.99, only_new=True,
                               candidates=candidates, progress=False)  # type: ignore[arg-type]
        assert r.info["searched"] == 40  # the first run in full, then the new batch only
        assert r.info["candidates"] == candidates
    names = {p.name.split("-", 1)[0] for p in folder.glob("*.npy")}
    assert len(names) == 3
    # keys, neighbours, similarities (+ LSH codes and plan) of each kept run
    assert len(list(folder.glob("*.npy"))) == 3 * files


def test_lsh_recall_guarantee_at_the_floor() -> None:
    """Pairs planted at exactly the floor cosine, in random directions: the banded hyperplanes
    find them at the promised rate (>= 0.999 each; >= 0.99 of 3,000 allows for sampling),
    one band collides at p ** bits (Charikar: p = 1 - angle / pi), and nothing below the floor
    is ever reported."""
    from workbench.analysis import _dedup_lsh as lsh

    rng = np.random.default_rng(11)
    m, d, floor = 3_000, 64, 0.95
    a = rng.standard_normal((m, d)).astype(np.float32)
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    o = rng.standard_normal((m, d)).astype(np.float32)
    o -= (o * a).sum(axis=1, keepdims=True) * a
    o /= np.linalg.norm(o, axis=1, keepdims=True)
    b = floor * a + np.sqrt(1 - floor**2) * o  # cos(a, b) == floor exactly
    x = np.concatenate([a, b]).astype(np.float32)
    plan = lsh.plan(x, floor - 1e-4)
    assert plan.recall >= lsh.RECALL
    assert plan.recall == pytest.approx(lsh.collision_recall(floor - 1e-4, plan.bits, plan.bands))
    pos, sim, codes = lsh.self_join(x, plan, 4, progress=False)
    found = (pos[:m] == np.arange(m, 2 * m)[:, None]).any(axis=1)
    assert found.mean() >= 0.99
    assert (sim[np.isfinite(sim)] >= floor - 1e-4).all()
    p = 1 - np.arccos(floor) / np.pi
    band0 = (codes[:m, 0] == codes[m:, 0]).mean()
    expect = p ** plan.bits
    assert abs(band0 - expect) <= 4 * np.sqrt(expect * (1 - expect) / m) + 1e-3
