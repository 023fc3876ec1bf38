from __future__ import annotations

import polars as pl
import pytest

import workbench as wb
from workbench.analysis import cluster, recluster
from workbench.errors import InvalidInputError


@pytest.fixture(scope="module")
def clustered(tmp_path_factory: pytest.TempPathFactory) -> tuple[wb.Store, object]:
    d = wb.datasets.digits()
    store = wb.Store.create(tmp_path_factory.mktemp("ce") / "s", dim=64, metric="l2sq",
                            dtype="f32")
    frame = d.frame.with_columns(
        pl.format("<script>x</script> digit {}", pl.col("label")).alias("text"))
    store.add(frame, vectors=d.vectors, progress=False)
    return store, cluster(store, reducer="pca", layout="pca", progress=False)


def test_explorer_selection_and_recluster_through_traits(clustered: tuple) -> None:
    store, result = clustered
    ex = wb.widgets.ClusterExplorer(result, store=store)
    assert ex.selection.height == 0
    ex.select(["digit-3", "digit-7"])
    sel = ex.selection
    assert sorted(sel["id"]) == ["digit-3", "digit-7"]
    assert {"label", "cluster", "text"} <= set(sel.columns)  # metadata comes back too
    ex.min_cluster_size = 40
    new = ex.recluster()
    want = recluster(result, min_cluster_size=40, min_samples=ex.min_samples)
    assert new is not None and (new.labels == want.labels).all()
    assert "clusters" in ex.status
    ex.color_by = "label"
    assert ex.scatter.color()["by"] == "label"


def test_explorer_selection_method_and_auto(clustered: tuple) -> None:
    store, result = clustered
    ex = wb.widgets.ClusterExplorer(result, store=store)
    assert ex.selection_method == result.params["clusterer"]["cluster_selection_method"]
    ex.selection_method = "leaf"
    ex.min_cluster_size = 15
    new = ex.recluster()
    want = recluster(result, min_cluster_size=15, min_samples=ex.min_samples,
                     cluster_selection_method="leaf")
    assert new is not None and (new.labels == want.labels).all()
    assert new.params["clusterer"]["cluster_selection_method"] == "leaf"

    auto = ex.recluster(auto=True)
    want = recluster(result, min_cluster_size=15, auto=True)  # the grid around the slider
    assert auto is not None and (auto.labels == want.labels).all()
    chosen = want.grid.filter(pl.col("chosen")).row(0, named=True)
    # the controls now show the picked settings, so a plain re-cluster reproduces them
    assert (ex.min_cluster_size, ex.min_samples, ex.selection_method) == (
        chosen["min_cluster_size"], chosen["min_samples"], chosen["cluster_selection_method"])
    assert (ex._mcs.value, ex._ms.value, ex._method.value) == (
        ex.min_cluster_size, ex.min_samples, ex.selection_method)
    assert "auto picked" in ex.status
    again = ex.recluster()
    assert again is not None and (again.labels == auto.labels).all()


def test_explorer_escapes_and_reports_distortion(clustered: tuple) -> None:
    store, result = clustered
    ex = wb.widgets.ClusterExplorer(result, store=store)
    assert "trustworthiness" in ex._metrics.value
    assert f"{result.metrics.trustworthiness:.3f}" in ex._metrics.value
    assert "<script>" not in ex._table.value


def test_explorer_needs_a_layout(clustered: tuple) -> None:
    store, _ = clustered
    no_map = cluster(store, reducer="pca", layout=None, progress=False)
    with pytest.raises(InvalidInputError, match="layout"):
        wb.widgets.ClusterExplorer(no_map, store=store)
