from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from workbench.analysis import (
    CacheWriteWarning,
    ClusterResult,
    KeywordsSkippedWarning,
    apply_labels,
    cluster,
    cluster_keywords,
    knn_preservation,
    merge_clusters,
    reassign_outliers,
    recluster,
    relative_validity,
    rename_clusters,
    trustworthiness,
)
from workbench.datasets import digits
from workbench.errors import EmptyInputError, InvalidInputError, MissingColumnError
from workbench.store import Store

TOPICS = {
    "volcano": "volcano lava eruption magma crater ash",
    "football": "football striker goal referee penalty league",
    "bakery": "bread flour oven dough yeast baker",
}
FILLER = ["the", "of", "and", "a", "to", "in", "is", "it", "that", "was", "for", "on", "are",
          "with", "as"]


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def digits_data():
    return digits()


@pytest.fixture(scope="session")
def digits_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cluster-cache")


@pytest.fixture(scope="session")
def digits_result(digits_data, digits_cache: Path) -> ClusterResult:
    """The default pipeline (UMAP 5-d, HDBSCAN, UMAP 2-D map) on scikit-learn's digits."""
    return cluster(digits_data.vectors, frame=digits_data.frame, text=None, progress=False,
                   cache=digits_cache)


@pytest.fixture(scope="session")
def blobs() -> tuple[np.ndarray, np.ndarray]:
    x, y = make_blobs(n_samples=400, n_features=16, centers=4, cluster_std=0.4,
                      center_box=(-20, 20), random_state=3)
    return x.astype(np.float32), y


def _topic_texts(labels: np.ndarray, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    names = list(TOPICS)
    out = []
    for lab in labels:
        words = TOPICS[names[lab]].split()
        picked = list(rng.choice(words, size=3)) + list(rng.choice(FILLER, size=6))
        rng.shuffle(picked)
        out.append(" ".join(picked))
    return out


@pytest.fixture
def topic_store(tmp_path: Path):
    x, y = make_blobs(n_samples=150, n_features=8, centers=3, cluster_std=0.3,
                      center_box=(-10, 10), random_state=1)
    frame = pl.DataFrame({"id": [f"doc-{i:03d}" for i in range(len(y))],
                          "text": _topic_texts(y), "truth": y.astype(np.int32)})
    store = Store.create(tmp_path / "store", dim=8, metric="l2sq", dtype="f32")
    store.add(frame, vectors=x.astype(np.float32), progress=False)
    yield store
    store.close()


# ----------------------------------------------------------------------------- acceptance
def test_digits_ari_with_defaults(digits_result: ClusterResult, digits_data) -> None:
    truth = digits_data.frame["label"].to_numpy()
    assert adjusted_rand_score(truth, digits_result.labels) >= 0.80
    pts = digits_result.points
    assert pts.schema == {"key": pl.UInt64, "id": pl.Utf8, "cluster": pl.Int32,
                          "probability": pl.Float32, "outlier_score": pl.Float32,
                          "x": pl.Float32, "y": pl.Float32}
    assert pts["id"].to_list() == digits_data.frame["id"].to_list()
    assert digits_result.reduced.shape == (1797, 5)
    assert digits_result.clusters["size"].sum() == (digits_result.labels >= 0).sum()
    m = digits_result.metrics
    assert 0.0 <= m.noise_fraction < 0.2 and m.silhouette > 0.3 and m.relative_validity > 0.3
    assert set(digits_result.to_frame().columns) >= {"key", "id", "cluster", "name"}


def test_map_trustworthiness_in_unit_interval_and_beats_random_projection(
    digits_result: ClusterResult, digits_data
) -> None:
    m = digits_result.metrics
    assert 0.0 <= m.trustworthiness <= 1.0 and 0.0 <= m.knn_preservation <= 1.0
    assert 0.0 <= m.reduction_trustworthiness <= 1.0
    x = digits_data.vectors
    random_map = x @ np.random.default_rng(0).normal(size=(x.shape[1], 2)).astype(np.float32)
    assert m.trustworthiness > trustworthiness(x, random_map) + 0.05
    assert m.knn_preservation > knn_preservation(x, random_map) + 0.1


def test_recluster_from_cache_equals_cold_run(digits_result: ClusterResult, digits_data) -> None:
    import hdbscan

    t0 = time.perf_counter()
    warm = recluster(digits_result, min_cluster_size=40)
    assert time.perf_counter() - t0 < 2.0
    # The same settings from scratch: UMAP again (same seed), no cache, no map.
    cold = cluster(digits_data.vectors, frame=digits_data.frame, text=None, layout=None,
                   min_cluster_size=40, cache=False, progress=False)
    np.testing.assert_array_equal(cold.reduced, digits_result.reduced)
    np.testing.assert_array_equal(warm.labels, cold.labels)
    ref = hdbscan.HDBSCAN(min_cluster_size=40, min_samples=5).fit(digits_result.reduced)
    np.testing.assert_array_equal(warm.labels, ref.labels_)
    np.testing.assert_allclose(warm.points["probability"].to_numpy(), ref.probabilities_,
                               rtol=1e-5)
    # A new min_samples rebuilds the tree; the selection method alone re-extracts.
    leaf = recluster(digits_result, cluster_selection_method="leaf", min_samples=10)
    ref = hdbscan.HDBSCAN(min_cluster_size=digits_result.params["clusterer"]["min_cluster_size"],
                          min_samples=10, cluster_selection_method="leaf").fit(
                              digits_result.reduced)
    np.testing.assert_array_equal(leaf.labels, ref.labels_)
    assert leaf.metrics.trustworthiness == digits_result.metrics.trustworthiness


def test_second_run_hits_the_disk_cache(digits_result, digits_data, digits_cache) -> None:
    t0 = time.perf_counter()
    again = cluster(digits_data.vectors, frame=digits_data.frame, text=None, progress=False,
                    cache=digits_cache)
    assert again.params["cache_hits"] == {"reduce": True, "layout": True}
    assert time.perf_counter() - t0 < 10.0
    np.testing.assert_array_equal(again.labels, digits_result.labels)
    assert list(digits_cache.glob("*.npy")) and list(digits_cache.glob("*.json"))


def test_auto_reports_its_grid(digits_result: ClusterResult, digits_data) -> None:
    res = recluster(digits_result, auto=True)
    grid = res.grid
    assert grid is not None and grid.height >= 12 and grid["chosen"].sum() == 1
    best = grid.filter(pl.col("chosen")).row(0, named=True)
    assert best["relative_validity"] == pytest.approx(grid["relative_validity"].max())
    assert res.params["clusterer"]["min_cluster_size"] == best["min_cluster_size"]
    assert res.metrics.relative_validity == pytest.approx(best["relative_validity"])
    truth = digits_data.frame["label"].to_numpy()
    assert adjusted_rand_score(truth, res.labels) >= 0.75


def test_soft_membership_reassignment_on_digits(digits_result, digits_data) -> None:
    # umap-learn 0.5.12's defaults leave no digit as noise; a larger min_cluster_size does
    # (27 of 1,797 measured), so the reassignment has outliers to work on.
    base = recluster(digits_result, min_cluster_size=40)
    assert (base.labels == -1).sum() > 0
    soft = reassign_outliers(base, strategy="probabilities")
    assert (soft.labels == -1).sum() < (base.labels == -1).sum()
    truth = digits_data.frame["label"].to_numpy()
    assert adjusted_rand_score(truth, soft.labels) >= 0.80
    assert soft.params["edits"] == ["reassign_outliers(strategy='probabilities')"]


def test_unwritable_cache_warns_once_and_still_clusters(blobs, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    with pytest.warns(CacheWriteWarning, match="could not write"):
        res = cluster(blobs[0], reducer="pca", layout="pca", text=None, cache=blocker,
                      progress=False)
    assert res.metrics.n_clusters == 4


def test_separated_blobs_recovered_exactly(blobs) -> None:
    x, y = blobs
    res = cluster(x, reducer="pca", layout="pca", text=None, progress=False)
    assert adjusted_rand_score(y, res.labels) == 1.0
    assert res.metrics.n_clusters == 4 and res.metrics.noise_fraction == 0.0
    km = cluster(x, reducer=None, clusterer=KMeans(n_clusters=4, n_init=3, random_state=0),
                 layout=None, text=None, progress=False)
    assert adjusted_rand_score(y, km.labels) == 1.0
    assert np.isnan(km.metrics.relative_validity) and np.isnan(km.metrics.trustworthiness)
    assert km.points["x"].null_count() == km.points.height and km.layout is None
    with pytest.raises(InvalidInputError, match="built-in HDBSCAN"):
        recluster(km, min_cluster_size=5)


def test_keywords_of_a_planted_topic_contain_its_words(topic_store: Store) -> None:
    res = cluster(topic_store, reducer=None, layout=None, progress=False)
    assert res.metrics.n_clusters == 3
    truth = topic_store.fetch()[0].sort("id")["truth"].to_numpy()
    assert adjusted_rand_score(truth, res.labels) == 1.0
    names = list(TOPICS)
    for row in res.clusters.iter_rows(named=True):
        members = res.points.filter(pl.col("cluster") == row["cluster"])["id"].to_list()
        topic = names[np.bincount(truth[np.isin(res.points["id"].to_numpy(), members)]).argmax()]
        planted = set(TOPICS[topic].split())
        assert len(planted & set(row["keywords"][:6])) >= 5, (topic, row["keywords"])
        assert not set(row["keywords"]) & set(FILLER)
        assert len(row["exemplars"]) == 5 and set(row["exemplars"]) <= set(members)


def test_cluster_keywords_function() -> None:
    labels = np.array([0, 0, 1, 1, -1])
    texts = ["lava volcano", "volcano magma", "goal striker", "striker goal league", "the"]
    kw = cluster_keywords(texts, labels, top_n=2)
    assert kw[0][0] == "volcano" and set(kw[1]) == {"goal", "striker"} and -1 not in kw
    with pytest.warns(KeywordsSkippedWarning):
        assert cluster_keywords(["the", "and a"], np.array([0, 1])) == {}


def test_missing_text_column_warns_and_skips_keywords(blobs) -> None:
    x, _ = blobs
    frame = pl.DataFrame({"id": [f"r{i}" for i in range(len(x))]})
    with pytest.warns(KeywordsSkippedWarning, match="no column 'text'"):
        res = cluster(x, frame=frame, reducer=None, layout=None, progress=False)
    assert res.metrics.n_clusters == 4
    assert all(k == [] for k in res.clusters["keywords"].to_list())


# ----------------------------------------------------------------------------- bad input
def test_fewer_points_than_n_neighbors(blobs) -> None:
    with pytest.raises(InvalidInputError, match="n_neighbors"):
        cluster(blobs[0][:12], text=None, progress=False)


def test_all_identical_vectors() -> None:
    with pytest.raises(InvalidInputError, match="identical"):
        cluster(np.ones((50, 8), dtype=np.float32), text=None, progress=False)


def test_where_selecting_nothing(topic_store: Store) -> None:
    with pytest.raises(EmptyInputError, match="where: selected no rows"):
        cluster(topic_store, where=pl.col("truth") > 99, progress=False)
    with pytest.raises(MissingColumnError, match="where"):
        cluster(topic_store, where=pl.col("nope") > 1, progress=False)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"clusterer": "dbscan"}, "clusterer"),
        ({"min_cluster_size": 1}, "min_cluster_size"),
        ({"metric": "hamming"}, "metric"),
        ({"reducer": "tsne"}, "reducer"),
        ({"where": pl.col("a") > 1}, "where"),
        ({"clusterer": KMeans(n_clusters=2), "auto": True}, "auto"),
        ({"clusterer": KMeans(n_clusters=2), "min_samples": 3}, "min_samples"),
    ],
)
def test_bad_arguments_name_the_argument(blobs, kwargs, match) -> None:
    with pytest.raises(InvalidInputError, match=match):
        cluster(blobs[0], text=None, layout=None, progress=False, **kwargs)


# ----------------------------------------------------------------------------- editing
def test_editing_verbs(blobs) -> None:
    x, y = blobs
    # Two far-away stragglers become noise.
    x = np.vstack([x, np.full((2, x.shape[1]), 60.0, np.float32) + np.eye(2, x.shape[1]) * 5])
    res = cluster(x, reducer=None, layout="pca", text=None, progress=False)
    assert (res.labels == -1).sum() >= 2

    near = reassign_outliers(res)
    assert (near.labels >= 0).all()
    np.testing.assert_array_equal(near.labels[res.labels >= 0], res.labels[res.labels >= 0])
    soft = reassign_outliers(res, strategy="probabilities")
    assert (soft.labels == -1).sum() <= (res.labels == -1).sum()
    np.testing.assert_array_equal(soft.labels[res.labels >= 0], res.labels[res.labels >= 0])
    with pytest.raises(InvalidInputError, match="strategy"):
        reassign_outliers(res, strategy="vote")

    merged = merge_clusters(res, [3, 1], name="one+three")
    assert merged.metrics.n_clusters == 3
    row = merged.clusters.filter(pl.col("cluster") == 1).row(0, named=True)
    assert row["name"] == "one+three" and np.isnan(row["persistence"])
    assert row["size"] == res.clusters.filter(pl.col("cluster").is_in([1, 3]))["size"].sum()
    with pytest.raises(InvalidInputError, match="clusters"):
        merge_clusters(res, [0, 42])
    with pytest.raises(InvalidInputError, match="two distinct"):
        merge_clusters(res, [2, 2])

    named = rename_clusters(merged, {0: "zero"})
    assert named.clusters["name"].to_list()[:2] == ["zero", "one+three"]
    assert named.to_frame().filter(pl.col("cluster") == 0)["name"].unique().to_list() == ["zero"]
    with pytest.raises(InvalidInputError, match="names"):
        rename_clusters(res, {0: ""})
    # Edits keep the input untouched (frozen results).
    assert res.metrics.n_clusters == 4


def test_apply_labels_survives_reopen_and_keeps_the_cache(topic_store: Store) -> None:
    path = topic_store.path
    res = cluster(topic_store, reducer="pca", layout="pca", progress=False)
    gen = topic_store.generation
    res = rename_clusters(res, {0: "first"})
    assert apply_labels(topic_store, res, name_column="topic") == 150
    assert topic_store.generation == gen + 1
    topic_store.close()
    with Store.open(path, readonly=True) as reopened:
        meta, _ = reopened.fetch()
        got = meta.select("id", "cluster", "topic").sort("id")
        want = res.to_frame().select("id", "cluster", "name").sort("id")
        assert got["id"].to_list() == want["id"].to_list()
        assert got["cluster"].to_list() == want["cluster"].to_list()
        assert got["topic"].to_list() == want["name"].to_list()
        assert "first" in got["topic"].to_list()
        # Metadata changed, vectors did not: the reduction and the layout come from the cache.
        again = cluster(reopened, reducer="pca", layout="pca", progress=False)
        assert again.params["cache_hits"] == {"reduce": True, "layout": True}
        np.testing.assert_array_equal(again.labels, res.labels)
        sub = cluster(reopened, where=pl.col("cluster") == 0, reducer=None, layout=None,
                      progress=False)
        assert sub.points.height == (res.labels == 0).sum()


# ----------------------------------------------------------------------------- metrics
def test_metric_functions() -> None:
    x = np.random.default_rng(0).normal(size=(300, 6)).astype(np.float32)
    assert knn_preservation(x, x[:, :6]) == 1.0
    assert trustworthiness(x, x) == pytest.approx(1.0)
    noise = np.random.default_rng(1).normal(size=(300, 2))
    assert knn_preservation(x, noise) < 0.2
    with pytest.raises(InvalidInputError, match="embedded"):
        knn_preservation(x, noise[:10])
    mst = np.array([[0, 1, 0.1], [1, 2, 0.1], [2, 3, 5.0], [3, 4, 0.1], [4, 5, 0.1]])
    good = relative_validity(mst, np.array([0, 0, 0, 1, 1, 1]))
    bad = relative_validity(mst, np.array([0, 0, 1, 1, 0, 1]))
    assert good > 0.9 and bad < good
    assert np.isnan(relative_validity(mst, np.full(6, -1)))


@pytest.mark.parametrize("method", ["eom", "leaf"])
@pytest.mark.parametrize("min_cluster_size", [2, 15, 60])
def test_tree_extraction_matches_hdbscan(method: str, min_cluster_size: int) -> None:
    """The vectorised extraction equals hdbscan's, labels, probabilities and GLOSH scores."""
    from hdbscan._hdbscan_tree import outlier_scores
    from hdbscan.hdbscan_ import _tree_to_labels

    from workbench.analysis._cache import ArrayCache
    from workbench.analysis.cluster import _extract, _get_tree

    rng = np.random.default_rng(min_cluster_size)
    x, _ = make_blobs(n_samples=600, n_features=3, centers=6, cluster_std=1.5, random_state=0)
    dup = np.repeat(rng.normal(size=(3, 3)) * 8, 20, axis=0)  # exact duplicates: infinite lambda
    x = np.vstack([x, dup, rng.uniform(-15, 15, size=(60, 3))]).astype(np.float32)
    tree = _get_tree(x, 5, cache=ArrayCache(None), digest="test")
    labels, probs, scores, persistence = _extract(tree, min_cluster_size, method)
    ref_labels, ref_probs, ref_stab, condensed, _ = _tree_to_labels(
        None, tree.slt, min_cluster_size=min_cluster_size, cluster_selection_method=method)
    np.testing.assert_array_equal(labels, ref_labels)
    np.testing.assert_allclose(probs, ref_probs, atol=1e-6)
    np.testing.assert_allclose(scores, np.nan_to_num(outlier_scores(condensed), nan=1.0),
                               atol=1e-5)
    n = int(labels.max()) + 1
    np.testing.assert_allclose([persistence[i] for i in range(n)], ref_stab[:n], rtol=1e-5)


def test_recluster_keep_numbers_follows_the_old_clusters(digits_result) -> None:
    from sklearn.metrics import adjusted_rand_score

    base = recluster(digits_result, min_cluster_size=40)
    cold = recluster(base, min_cluster_size=25, min_samples=8)
    kept = recluster(base, min_cluster_size=25, min_samples=8, keep_numbers=True)
    # the same clusters, numbered differently
    assert adjusted_rand_score(cold.labels, kept.labels) == 1.0
    assert sorted(set(kept.labels.tolist())) == sorted(set(cold.labels.tolist()))
    same = lambda r: float(((r.labels == base.labels) & (base.labels >= 0)).mean())  # noqa: E731
    assert same(kept) >= same(cold) and same(kept) >= 0.8
    by_size = dict(zip(kept.clusters["cluster"].to_list(), kept.clusters["size"].to_list(),
                       strict=True))
    assert sum(by_size.values()) == int((kept.labels >= 0).sum())
