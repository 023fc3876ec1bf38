"""ClusterResult.assign: fit on some rows, assign others (round trip, ground truth, writes)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import adjusted_rand_score

from workbench.analysis import ClusterResult, cluster, merge_clusters
from workbench.datasets import clustered_vectors
from workbench.errors import (
    DimensionMismatchError,
    InvalidInputError,
    MissingColumnError,
    WorkbenchError,
)
from workbench.store import Store

N, DIM, K = 2400, 32, 8
SPREAD = 1.2  # clusters that overlap: HDBSCAN leaves some noise, ARI ~0.73
SCHEMA_TAIL = {"cluster": pl.Int32, "topic": pl.Utf8, "x": pl.Float32, "y": pl.Float32,
               "confidence": pl.Float32}


def _store(path: Path, x: np.ndarray, truth: np.ndarray) -> Store:
    frame = pl.DataFrame({"id": [f"doc-{i:05d}" for i in range(x.shape[0])],
                          "truth": truth.astype(np.int32),
                          "part": (np.arange(x.shape[0]) % 2).astype(np.int32)})
    store = Store.create(path, dim=x.shape[1], metric="cos", dtype="f32")
    store.add(frame, vectors=x, progress=False)
    return store


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    return clustered_vectors(N, DIM, n_clusters=K, spread=SPREAD, random_state=4)


@pytest.fixture(scope="module")
def store(data, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    s = _store(tmp_path_factory.mktemp("assign") / "store", *data)
    yield s
    s.close()


@pytest.fixture(scope="module")
def fitted(store: Store) -> ClusterResult:
    """UMAP + HDBSCAN + UMAP map on half the store (``part == 0``), models kept."""
    return cluster(store, where=pl.col("part") == 0, text=None, cache=False, progress=False)


# ----------------------------------------------------------------------------- acceptance
def test_round_trip_agrees_with_fitted_labels(fitted: ClusterResult, store: Store) -> None:
    meta, x = store.fetch(pl.col("part") == 0)
    order = np.argsort(meta["id"].to_numpy(), kind="stable")  # the result's point order
    x = x[order]
    perm = np.random.default_rng(0).permutation(x.shape[0])  # unlike the fit: a real transform
    out = fitted.assign(x[perm])
    assert out.schema == {"row": pl.UInt32, **SCHEMA_TAIL}
    assert out["row"].to_list() == list(range(x.shape[0]))
    agree = float((out["cluster"].to_numpy() == fitted.labels[perm]).mean())
    print(f"round-trip agreement with fitted labels: {agree:.4f}")
    assert agree >= 0.95
    conf = out["confidence"].to_numpy()
    assert ((conf >= 0) & (conf <= 1)).all() and conf.mean() > 0.9
    assert out["x"].null_count() == 0
    # each point lands near where the fit put it on the map
    xy = out.select("x", "y").to_numpy()
    span = np.ptp(fitted.layout, axis=0).max()
    assert np.median(np.linalg.norm(xy - fitted.layout[perm], axis=1)) < 0.05 * span


def test_new_rows_follow_ground_truth(fitted: ClusterResult, store: Store) -> None:
    out = fitted.assign(store, where=pl.col("part") == 1)
    assert out.schema == {"key": pl.UInt64, "id": pl.Utf8, **SCHEMA_TAIL}
    meta = store.fetch(pl.col("part") == 1)[0]
    assert out["id"].to_list() == meta["id"].to_list()
    truth = meta["truth"].to_numpy()
    fit_truth = store.get(fitted.points["id"].to_list())["truth"].to_numpy()
    fit_ari = adjusted_rand_score(fit_truth, fitted.labels)
    ari = adjusted_rand_score(truth, out["cluster"].to_numpy())
    print(f"ARI vs ground truth: fitted half {fit_ari:.4f}, assigned half {ari:.4f}")
    assert ari >= fit_ari - 0.05
    names = dict(zip(fitted.clusters["cluster"].to_list(), fitted.clusters["name"].to_list(),
                     strict=True))
    for c, t in out.select("cluster", "topic").unique().iter_rows():
        assert t == names.get(c)


def test_vectors_one_row_and_edited_result(fitted: ClusterResult, data) -> None:
    x = data[0]
    one = fitted.assign(x[1])  # one vector, as a (dim,) array
    assert one.height == 1
    a, b = fitted.clusters["cluster"].to_list()[:2]
    merged = merge_clusters(fitted, [a, b])
    out = merged.assign(x[:200])
    assert set(out["cluster"].to_list()) <= {-1, *merged.clusters["cluster"].to_list()}


# ----------------------------------------------------------------------------- writing
def test_write_is_one_commit(fitted: ClusterResult, data, tmp_path: Path) -> None:
    target = _store(tmp_path / "target", *data)
    before = target.generation
    out = fitted.assign(target, where=pl.col("part") == 1, write=True)
    assert target.generation == before + 1
    got = target.get(out["id"].to_list())
    assert got["cluster"].to_list() == out["cluster"].to_list()
    assert got["topic"].to_list() == out["topic"].to_list()
    assert got["map_x"].to_list() == out["x"].to_list()
    assert got["cluster_confidence"].to_list() == out["confidence"].to_list()
    # rows outside `where` get nulls in the new columns
    assert target.fetch(pl.col("part") == 0)[0]["cluster"].null_count() == N // 2
    fitted.assign(target, write=True, columns={"cluster": "c2", "topic": None, "x": "px",
                                               "y": "py", "confidence": None})
    assert target.generation == before + 2
    assert {"c2", "px", "py"} <= set(target.fetch()[0].columns)
    target.close()


# ----------------------------------------------------------------------------- bad input
def test_bad_input_is_named(fitted: ClusterResult, store: Store, data) -> None:
    x = data[0]
    with pytest.raises(DimensionMismatchError, match="data: expected vectors of dimension 32"):
        fitted.assign(x[:, :16])
    with pytest.raises(MissingColumnError, match="nope"):
        fitted.assign(store, where=pl.col("nope") == 1)
    with pytest.raises(InvalidInputError, match="where"):
        fitted.assign(x, where=pl.col("part") == 1)
    with pytest.raises(InvalidInputError, match="write"):
        fitted.assign(x, write=True)
    with pytest.raises(InvalidInputError, match="columns"):
        fitted.assign(x, columns={"colour": "c"})
    with pytest.raises(InvalidInputError, match="columns"):
        fitted.assign(x, columns={"cluster": "id"})
    with pytest.raises(InvalidInputError, match="k"):
        fitted.assign(x, k=0)
    assert issubclass(DimensionMismatchError, WorkbenchError)
    assert issubclass(MissingColumnError, WorkbenchError)


def test_cached_result_says_to_recluster(data, tmp_path: Path) -> None:
    x = data[0][:400]
    kw = {"reducer": "pca", "layout": "pca", "text": None, "progress": False,
          "cache": tmp_path / "cache"}
    first = cluster(x, **kw)
    assert first.assign(x[:5]).height == 5  # fitted here: models kept
    again = cluster(x, **kw)  # reduction and map read from the disk cache
    assert again.params["cache_hits"] == {"reduce": True, "layout": True}
    with pytest.raises(InvalidInputError, match=r"cache=False"):
        again.assign(x[:5])


def test_no_reducer_no_layout() -> None:
    # Separated clusters: in the raw 32-d space HDBSCAN's noise among overlapping clusters is
    # scattered between members, where no neighbour vote can tell it apart (77 % at SPREAD).
    x, _ = clustered_vectors(400, DIM, n_clusters=4, spread=0.5, random_state=1)
    res = cluster(x, reducer=None, layout=None, text=None, progress=False, cache=False)
    out = res.assign(x[::-1])
    assert out["x"].null_count() == out.height
    assert (out["cluster"].to_numpy() == res.labels[::-1]).mean() >= 0.95
