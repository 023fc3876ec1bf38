"""wb.distributed.cluster: fit on a seeded sample, assign the other rows in Ray tasks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import adjusted_rand_score

from workbench.analysis import cluster as local_cluster
from workbench.datasets import clustered_vectors
from workbench.errors import InvalidInputError
from workbench.store import Store

from .conftest import RAY_TIMEOUT

pytestmark = pytest.mark.timeout(RAY_TIMEOUT)

N, DIM, SEGMENTS, SAMPLE = 3000, 32, 6, 1200


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, np.ndarray]]:
    """3,000 rows, 6 planted clusters, in 6 segments (one commit each)."""
    x, truth = clustered_vectors(N, DIM, n_clusters=6, spread=0.9, random_state=7)
    store = Store.create(tmp_path_factory.mktemp("dcluster") / "store", dim=DIM,
                         metric="cos", dtype="f32")
    step = N // SEGMENTS
    for s in range(0, N, step):
        frame = pl.DataFrame({"id": [f"doc-{i:05d}" for i in range(s, s + step)],
                              "truth": truth[s:s + step], "part": np.arange(s, s + step) % 5})
        store.add(frame, vectors=x[s:s + step], progress=False)
    assert len(store.view().segments) == SEGMENTS
    yield store, truth
    store.close()


def test_sample_fit_then_assign(ray_ok: dict, planted) -> None:
    from workbench.distributed.cluster import cluster

    store, _ = planted
    res = cluster(store, sample=SAMPLE, workers=2, text=None, progress=False, random_state=3)
    # the sample size is said, on the result and on its fit
    assert res.sample == SAMPLE and res.params["sample"] == SAMPLE
    assert res.fitted.params["sample"] == {"rows": SAMPLE, "of": N, "random_state": 3}
    assert res.params["tasks"] >= 2
    pts = res.points
    assert pts.height == N and pts["key"].is_sorted() and pts["id"].n_unique() == N
    assert int(pts["fitted"].sum()) == SAMPLE
    # fitted rows carry the fit's labels, and the fit is the single-machine one on those rows
    fit = pts.filter(pl.col("fitted")).sort("id")
    assert fit["cluster"].to_list() == res.fitted.points.sort("id")["cluster"].to_list()
    direct = local_cluster(store, where=pl.col("id").is_in(fit["id"].implode()), text=None,
                           cache=False, progress=False, random_state=3)
    assert direct.labels.tolist() == res.fitted.labels.tolist()
    # assigned rows follow the planted clusters as well as the fitted ones do
    truth = store.get(pts["id"].to_list())["truth"].to_numpy()
    fitted_mask = pts["fitted"].to_numpy()
    labels = pts["cluster"].to_numpy()
    fit_ari = adjusted_rand_score(truth[fitted_mask], labels[fitted_mask])
    ari = adjusted_rand_score(truth[~fitted_mask], labels[~fitted_mask])
    print(f"ARI vs planted: fitted {fit_ari:.4f}, assigned {ari:.4f}")
    assert ari >= 0.9 and ari >= fit_ari - 0.03
    conf = pts["confidence"].to_numpy()
    assert ((conf >= 0) & (conf <= 1)).all()
    assert pts["x"].null_count() == 0


def test_fewer_rows_than_sample_is_the_local_fit(ray_ok: dict, planted) -> None:
    from workbench.distributed.cluster import cluster

    store, _ = planted
    where = pl.col("part") == 0
    kw = {"text": None, "progress": False, "cache": False, "random_state": 5,
          "reducer": "pca", "min_cluster_size": 20}
    res = cluster(store, where=where, workers=2, **kw)
    local = local_cluster(store, where=where, **kw)
    assert res.sample == local.points.height == N // 5
    assert res.fitted.labels.tolist() == local.labels.tolist()
    assert res.fitted.points["id"].to_list() == local.points["id"].to_list()
    assert res.points.sort("id")["cluster"].to_list() == local.points.sort("id")[
        "cluster"].to_list()
    assert res.points["fitted"].all()


def test_bad_arguments_are_named(planted, tmp_path: Path) -> None:
    from workbench.distributed.cluster import MAX_SAMPLE, cluster

    store, _ = planted
    for bad in (0, MAX_SAMPLE + 1, 2.5, True):
        with pytest.raises(InvalidInputError, match="sample"):
            cluster(store, sample=bad)
    with pytest.raises(InvalidInputError, match="store"):
        cluster(np.zeros((10, DIM), dtype=np.float32))
