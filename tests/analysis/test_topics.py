from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import adjusted_rand_score, silhouette_score

import workbench as wb
from workbench.analysis.keywords import KeywordsSkippedWarning
from workbench.analysis.topics import silhouette_curve
from workbench.errors import InvalidInputError

COARSE, FINE, PER = 3, 4, 90


@pytest.fixture(scope="module")
def nested() -> tuple[np.ndarray, pl.DataFrame, np.ndarray, np.ndarray]:
    """3 coarse topics of 4 fine ones each; every fine topic has its own words."""
    rng = np.random.default_rng(0)
    dim = 48
    coarse = rng.standard_normal((COARSE, dim)) * 3.0
    fine = np.repeat(coarse, FINE, axis=0) + rng.standard_normal((COARSE * FINE, dim)) * 1.0
    fine_label = np.repeat(np.arange(COARSE * FINE), PER)
    x = fine[fine_label] + rng.standard_normal((fine_label.size, dim)) * 0.25
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = [f"w{letters[c]}{letters[j]}" for c in range(COARSE * FINE) for j in range(5)]
    texts = [" ".join(rng.choice(vocab[5 * f:5 * f + 5], 6)) + f" topic{letters[f // FINE]}"
             for f in fine_label]
    frame = pl.DataFrame({"id": [f"p{i}" for i in range(x.shape[0])], "text": texts})
    return x.astype(np.float32), frame, fine_label, fine_label // FINE


@pytest.fixture(scope="module")
def result(nested: tuple) -> wb.ClusterResult:
    x, frame, _, _ = nested
    return wb.cluster(x, frame=frame, metric="cos", reducer="pca", layout=None,
                      min_cluster_size=30, progress=False)


def test_levels_recover_coarse_and_fine_partitions(result: wb.ClusterResult,
                                                   nested: tuple) -> None:
    _, _, fine, coarse = nested
    tree = result.hierarchy
    assert tree.n_clusters >= COARSE * FINE
    assert adjusted_rand_score(fine, result.at_level(COARSE * FINE).labels) >= 0.9
    assert adjusted_rand_score(coarse, result.at_level(COARSE).labels) >= 0.9
    # the label-free default found one of the two planted granularities
    assert result.metrics.n_clusters in (COARSE, COARSE * FINE)
    assert result.params["topics"]["default"] is True
    crit = tree.criterion
    assert crit.filter(pl.col("chosen"))["n_topics"].to_list() == [tree.best_n_topics]
    assert crit["silhouette"].max() == crit.filter(pl.col("chosen"))["silhouette"][0]


def test_at_level_exact_counts_and_recut_equals_direct(result: wb.ClusterResult) -> None:
    k = result.hierarchy.n_clusters
    for n in range(1, k + 1):
        r = result.at_level(n)
        assert r.metrics.n_clusters == n and r.clusters.height == n
        assert sorted(r.clusters["cluster"].to_list()) == list(range(n))
    direct = result.at_level(3)
    assert np.array_equal(result.at_level(7).at_level(3).labels, direct.labels)
    assert np.array_equal(direct.at_level(k).labels, result.at_level(k).labels)
    heights = result.hierarchy.nodes.filter(pl.col("left").is_not_null()).sort("n_topics")
    h = float(heights["height"][2])  # the merge that leaves 3 topics
    assert result.cut(h).metrics.n_clusters == 3
    assert np.array_equal(result.cut(h).labels, direct.labels)


def test_noise_reassigned_by_default_and_hdbscan_labels_kept(result: wb.ClusterResult) -> None:
    assert result.metrics.noise_fraction == 0.0
    pts = result.points
    assert {"hdbscan_cluster", "fine_cluster"} <= set(pts.columns)
    assert (pts["fine_cluster"] >= 0).all()
    raw = pts["hdbscan_cluster"].to_numpy()
    kept = raw >= 0
    # every point HDBSCAN clustered keeps its fine cluster
    assert np.array_equal(pts["fine_cluster"].to_numpy()[kept], raw[kept])


def test_nodes_have_keywords_sizes_and_a_root(result: wb.ClusterResult, nested: tuple) -> None:
    nodes = result.hierarchy.nodes
    k = result.hierarchy.n_clusters
    assert nodes.height == 2 * k - 1
    root = nodes.filter(pl.col("parent").is_null())
    assert root.height == 1 and root["size"][0] == len(nested[0])
    assert root["n_clusters"][0] == k
    coarse_nodes = nodes.filter(pl.col("n_topics") <= COARSE)
    assert all(any(w.startswith("topic") for w in kw) for kw in coarse_nodes["keywords"])
    leaves = nodes.filter(pl.col("cluster").is_not_null())
    assert leaves.height == k and all(len(kw) > 0 for kw in leaves["keywords"])
    # exemplars: members of the node, nearest its centroid; the root's come from all points
    ids = result.points["id"].to_list()
    fine = dict(zip(ids, result.points["fine_cluster"].to_list(), strict=True))
    for row in nodes.iter_rows(named=True):
        assert 1 <= len(row["exemplars"]) <= 5
        if row["cluster"] is not None:
            assert {fine[e] for e in row["exemplars"]} == {row["cluster"]}
    assert len(result.hierarchy.plot().axes) == 1


def test_silhouette_curve_equals_sklearn(nested: tuple, result: wb.ClusterResult) -> None:
    x = nested[0]
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    tree = result.hierarchy
    fine = result.points["fine_cluster"].to_numpy()
    for n in (2, 3, 6):
        topic_of = tree.assignment(n)
        labels = topic_of[np.searchsorted(tree.clusters, fine)]
        ours = silhouette_curve(unit, fine, tree.clusters, {n: topic_of})[n]
        assert ours == pytest.approx(silhouette_score(unit, labels, metric="cosine"), abs=1e-5)


def test_ctfidf_tree_and_options(result: wb.ClusterResult, nested: tuple) -> None:
    t = wb.analysis.topic_tree(result, similarity="ctfidf")
    assert t.similarity == "ctfidf" and t.linkage.shape == (t.n_clusters - 1, 4)
    x, frame, _, coarse = nested
    forced = wb.cluster(x, frame=frame, metric="cos", reducer="pca", layout=None,
                        min_cluster_size=30, n_topics=5, progress=False)
    assert forced.metrics.n_clusters == 5 and forced.params["topics"]["default"] is False
    fine_only = wb.cluster(x, frame=frame, metric="cos", reducer="pca", layout=None,
                           min_cluster_size=30, topics=False, progress=False)
    assert "topics" not in fine_only.params and "fine_cluster" not in fine_only.points.columns
    assert fine_only.at_level(COARSE).metrics.n_clusters == COARSE  # tree built on demand
    re = wb.recluster(result, min_cluster_size=40)
    assert re.metrics.noise_fraction == 0.0 and "topics" in re.params


def test_bad_levels_and_no_text(result: wb.ClusterResult, nested: tuple) -> None:
    k = result.hierarchy.n_clusters
    for bad in (0, k + 1, -1, 2.5, True):
        with pytest.raises(InvalidInputError, match="n_topics"):
            result.at_level(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="threshold"):
        result.cut(-1.0)
    with pytest.raises(InvalidInputError, match="similarity"):
        wb.analysis.topic_tree(result, similarity="words")
    x, frame, _, coarse = nested
    with pytest.warns(KeywordsSkippedWarning):
        r = wb.cluster(x, frame=frame.drop("text"), metric="cos", reducer="pca", layout=None,
                       min_cluster_size=30, topics=True, progress=False)
    assert r.metrics.noise_fraction == 0.0
    assert all(len(kw) == 0 for kw in r.hierarchy.nodes["keywords"])
    assert adjusted_rand_score(coarse, r.at_level(COARSE).labels) >= 0.9
    with pytest.raises(InvalidInputError, match="ctfidf"):
        wb.analysis.topic_tree(r, similarity="ctfidf")
    with pytest.raises(InvalidInputError, match="n_topics"):
        wb.cluster(x, frame=frame, metric="cos", reducer="pca", layout=None, topics=False,
                   n_topics=3, progress=False)


def test_topic_persistence_is_hdbscans_for_the_union_of_its_clusters(
        result: wb.ClusterResult) -> None:
    """Known answer from hdbscan itself: a topic's persistence is the stability of its fine
    clusters together over (their members x max lambda), i.e. hdbscan's
    ``cluster_persistence_`` averaged with the member counts as weights."""
    import hdbscan

    ref = hdbscan.HDBSCAN(min_cluster_size=result.params["clusterer"]["min_cluster_size"],
                          min_samples=result.params["clusterer"]["min_samples"]
                          ).fit(result.reduced)
    raw = result.points["hdbscan_cluster"].to_numpy()
    np.testing.assert_array_equal(raw, ref.labels_)
    counts = np.bincount(raw[raw >= 0])
    stability = ref.cluster_persistence_ * counts  # up to the common factor max lambda
    k = result.hierarchy.n_clusters
    for n in (1, COARSE, k):
        r = result.at_level(n)
        got = r.clusters.sort("cluster")["persistence"].to_numpy()
        topic = r.points["cluster"].to_numpy()
        want = [stability[np.unique(raw[(topic == t) & (raw >= 0)])].sum()
                / counts[np.unique(raw[(topic == t) & (raw >= 0)])].sum() for t in range(n)]
        np.testing.assert_allclose(got, want, rtol=1e-5)
    # at the fine level each topic is one HDBSCAN cluster and keeps its persistence
    fine = result.at_level(k)
    assert np.isfinite(fine.clusters["persistence"].to_numpy()).all()
    np.testing.assert_allclose(np.sort(fine.clusters["persistence"].to_numpy()),
                               np.sort(ref.cluster_persistence_), rtol=1e-5)
