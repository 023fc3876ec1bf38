"""Issue #24, a newcomer's first hour with the Python API: what the results should carry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from sklearn.datasets import make_blobs

import workbench as wb
from workbench.analysis import rename_clusters
from workbench.analysis._cluster_plot import NOISE_COLOUR
from workbench.errors import InvalidInputError

WORDS = {0: "volcano lava eruption magma crater ash",
         1: "football striker goal referee penalty league",
         2: "bread flour oven dough yeast baker"}
MARKUP = "<script>alert('x')</script> <b>lava</b> & magma"


# ------------------------------------------------------------------------- dedup: texts
@pytest.fixture
def dup_store(tmp_path: Path) -> wb.Store:
    """Unrelated sentences with two planted groups: case/space variants, and a near copy."""
    rng = np.random.default_rng(0)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    texts = [" ".join("".join(rng.choice(letters, 6)) for _ in range(7)) for _ in range(60)]
    texts[5] = "The Quick Brown Fox jumps over the lazy dog"
    texts[17] = "the quick  brown fox JUMPS over the lazy dog"
    texts[41] = "the quick brown fox jumps over the lazy dog"
    texts[9] = "Meeting moved to Thursday at noon in room four"
    texts[30] = "Meeting moved to Thursday at noon in room four!"
    store = wb.Store.create(tmp_path / "s", embedder=wb.embed.Hashing(dim=128))
    store.add(pl.DataFrame({"id": [f"t{i}" for i in range(60)], "text": texts}), text="text",
              progress=False)
    return store


def test_dedup_groups_carry_the_texts_of_the_planted_duplicates(dup_store: wb.Store) -> None:
    r = wb.find_duplicates(dup_store, method="cosine", threshold=0.9, progress=False)
    assert r.groups.columns[:4] == ["group", "key", "id", "text"]
    assert r.groups.schema["text"] == pl.Utf8
    by_group = {frozenset(ids): texts for ids, texts in
                r.groups.group_by("group").agg("id", "text").select("id", "text").iter_rows()}
    assert set(by_group) == {frozenset({"t5", "t17", "t41"}), frozenset({"t9", "t30"})}
    assert sorted(by_group[frozenset({"t5", "t17", "t41"})]) == [
        "The Quick Brown Fox jumps over the lazy dog",
        "the quick  brown fox JUMPS over the lazy dog",
        "the quick brown fox jumps over the lazy dog"]
    # each member's own text, as the store holds it (no normalisation)
    stored = dict(dup_store.scan().select("id", "text").collect().iter_rows())
    assert all(stored[i] == t for i, t in r.groups.select("id", "text").iter_rows())
    # a re-grouping keeps them
    again = r.regroup(0.99)
    assert again.groups.height >= 3
    assert all(stored[i] == t for i, t in again.groups.select("id", "text").iter_rows())
    assert {"is_representative", "score_to_representative", "exact"} <= set(r.groups.columns)
    assert "text" not in r.to_frame().columns  # the full per-row frame stays as it was


def test_dedup_groups_without_text_have_no_text_column(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    v = rng.standard_normal((100, 16)).astype(np.float32)
    v[7] = v[3]
    store = wb.Store.create(tmp_path / "s", dim=16)
    store.add(pl.DataFrame({"id": [f"r{i}" for i in range(100)]}), vectors=v, progress=False)
    r = wb.find_duplicates(store, method="cosine", threshold=0.999, progress=False)
    assert set(r.groups["id"]) == {"r3", "r7"} and "text" not in r.groups.columns


# ------------------------------------------------------------------------- cluster: map
@pytest.fixture(scope="module")
def text_store(tmp_path_factory: pytest.TempPathFactory) -> wb.Store:
    """Three separated blobs, each with its own words; one text carries HTML markup."""
    x, y = make_blobs(n_samples=150, n_features=8, centers=3, cluster_std=0.3,
                      center_box=(-10, 10), random_state=1)
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(WORDS[int(c)].split(), 5)) for c in y]
    first_volcano = int(np.flatnonzero(y == 0)[0])
    texts[first_volcano] = MARKUP
    store = wb.Store.create(tmp_path_factory.mktemp("first-hour") / "s", dim=8,
                            metric="l2sq", dtype="f32")
    store.add(pl.DataFrame({"id": [f"doc-{i:03d}" for i in range(150)], "text": texts,
                            "truth": y.astype(np.int32)}),
              vectors=x.astype(np.float32), progress=False)
    return store


@pytest.fixture(scope="module")
def text_result(text_store: wb.Store) -> wb.ClusterResult:
    return wb.cluster(text_store, reducer=None, layout="pca", cache=False, progress=False)


def _hover(fig: object) -> list[str]:
    return [h for t in fig.data for h in t.hovertext]  # type: ignore[attr-defined]


def test_plot_has_every_point_once_and_a_label_per_topic(text_result: wb.ClusterResult,
                                                         text_store: wb.Store) -> None:
    res = text_result
    fig = res.plot(text_store)
    assert sum(len(t.x) for t in fig.data) == res.points.height
    # every point sits in its cluster's trace, at its map position
    for trace in fig.data:
        c = int(trace.name.split(":")[0])
        pts = res.points.filter(pl.col("cluster") == c)
        np.testing.assert_allclose(np.sort(trace.x), np.sort(pts["x"].to_numpy()), rtol=1e-6)
    labels = sorted(a.text for a in fig.layout.annotations)
    assert labels == sorted(res.clusters["name"].to_list()) and len(labels) == 3
    for a in fig.layout.annotations:  # at the cluster's centre
        row = res.clusters.filter(pl.col("name") == a.text)
        assert a.x == pytest.approx(row["x"][0]) and a.y == pytest.approx(row["y"][0])
    assert len({t.marker.color for t in fig.data}) == 3
    # hover: the point's text from the store, escaped
    hover = _hover(fig)
    assert sum("&lt;script&gt;alert('x')&lt;/script&gt;" in h for h in hover) == 1
    assert not any("<script>" in h or "<b>lava" in h for h in hover)
    assert sum("magma" in h for h in hover) >= 10


def test_plot_escapes_names_and_takes_texts_in_point_order(
        text_result: wb.ClusterResult) -> None:
    res = rename_clusters(text_result, {0: "<img src=x onerror=alert(1)> lava"})
    texts = [f"<i>row {i}</i>" for i in range(res.points.height)]
    fig = res.plot(texts)
    names = [a.text for a in fig.layout.annotations]
    assert "&lt;img src=x onerror=alert(1)&gt; lava" in names
    assert not any("<img" in n for n in names)
    assert not any("<img" in (t.name or "") for t in fig.data)
    hover = _hover(fig)
    assert all("&lt;i&gt;row " in h and "<i>" not in h for h in hover)
    with pytest.raises(InvalidInputError, match="texts: expected 150 texts"):
        res.plot(texts[:-1])


def test_plot_draws_noise_grey_and_refuses_a_result_without_a_map(tmp_path: Path) -> None:
    x, _ = make_blobs(n_samples=300, n_features=4, centers=3, cluster_std=0.4,
                      center_box=(-20, 20), random_state=2)
    rng = np.random.default_rng(2)
    x = np.vstack([x, rng.uniform(-60, 60, size=(30, 4))]).astype(np.float32)
    res = wb.cluster(x, reducer=None, layout="pca", text=None, progress=False,
                     min_cluster_size=20)
    noise = int((res.labels < 0).sum())
    assert noise > 0
    fig = res.plot()
    grey = [t for t in fig.data if t.marker.color == NOISE_COLOUR]
    assert len(grey) == 1 and len(grey[0].x) == noise and grey[0].name.startswith("noise")
    assert fig.data[0] is grey[0]  # drawn first, under the clusters
    assert len(fig.layout.annotations) == res.clusters.height
    assert len(res.plot(max_labels=1).layout.annotations) == 1
    bare = wb.cluster(x, reducer=None, layout=None, text=None, progress=False)
    with pytest.raises(InvalidInputError, match="layout=None"):
        bare.plot()


# ------------------------------------------------------------------ cluster: persistence
def test_every_topic_of_a_text_store_has_a_finite_persistence(
        text_result: wb.ClusterResult) -> None:
    res = text_result
    assert "topics" in res.params  # the text default: outliers reassigned, fine clusters cut
    pers = res.clusters["persistence"].to_numpy()
    assert pers.size == 3 and np.isfinite(pers).all() and ((pers > 0) & (pers <= 1)).all()
    # one topic: the union of the fine clusters, their persistence weighted by members
    fine = dict(res.clusters.select("cluster", "persistence").iter_rows())
    members = res.points.filter(pl.col("probability") > 0).group_by("cluster").len()
    w = dict(members.iter_rows())
    one = res.at_level(1).clusters["persistence"][0]
    expected = sum(fine[c] * w[c] for c in fine) / sum(w.values())
    assert one == pytest.approx(expected, rel=1e-5)
