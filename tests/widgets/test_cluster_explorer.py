from __future__ import annotations

import base64
import colorsys
import io
import re
import warnings

import numpy as np
import polars as pl
import pytest
from matplotlib.colors import to_hex, to_rgba

import workbench as wb
from workbench.analysis import ClusterResult, cluster, recluster, rename_clusters
from workbench.errors import InvalidInputError
from workbench.widgets.cluster import (
    LEGEND_ONE_COLUMN,
    NOISE_LABEL,
    POINT_OPACITY,
    cluster_color,
    cluster_label,
    point_size,
)

NOISE_GREY = to_rgba("#c8ccd2")



def _same_partition(a: wb.ClusterResult, b: wb.ClusterResult) -> bool:
    """The same clusters (the explorer re-clusters with keep_numbers: numbers may differ)."""
    from sklearn.metrics import adjusted_rand_score

    return bool(adjusted_rand_score(a.labels, b.labels) == 1.0
                and ((a.labels < 0) == (b.labels < 0)).all())

def legend(ex: wb.widgets.ClusterExplorer) -> list[tuple[str, tuple[float, ...]]]:
    """The colour legend the browser draws: (label, rgba) in display order."""
    enc = ex.scatter.widget.legend_encoding["color"]
    return [(label, tuple(rgba)) for label, rgba, _ in enc["values"]]


def drawn_colors(ex: wb.widgets.ClusterExplorer) -> dict[str, tuple[float, ...]]:
    """The colour the browser gives the points of each category of the colour column.

    jupyter-scatter sends each point's category code and one colour per code (the widget's
    ``color`` trait); the codes are those of the data's categorical, unused categories dropped.
    """
    column = ex.scatter.color_data  # the colour column as jupyter-scatter holds it
    categories = column.cat.remove_unused_categories().cat.categories
    return {c: tuple(ex.scatter.widget.color[i]) for i, c in enumerate(categories)}


def number(label: str) -> int:
    """The cluster number a legend label starts with (``-1`` for noise)."""
    if label == NOISE_LABEL:
        return -1
    found = re.match(r"(?:cluster )?(\d+)", label)
    assert found, label
    return int(found.group(1))


@pytest.fixture(scope="module")
def clustered(tmp_path_factory: pytest.TempPathFactory) -> tuple[wb.Store, object]:
    d = wb.datasets.digits()
    store = wb.Store.create(tmp_path_factory.mktemp("ce") / "s", dim=64, metric="l2sq",
                            dtype="f32")
    frame = d.frame.with_columns(
        pl.format("<script>x</script> digit {}", pl.col("label")).alias("text"))
    store.add(frame, vectors=d.vectors, progress=False)
    # a text column for the escaping checks, but fine HDBSCAN clusters (noise included)
    return store, cluster(store, reducer="pca", layout="pca", topics=False, progress=False)


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
    assert new is not None and _same_partition(new, want)
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
    assert new is not None and _same_partition(new, want)
    assert new.params["clusterer"]["cluster_selection_method"] == "leaf"

    auto = ex.recluster(auto=True)
    want = recluster(result, min_cluster_size=15, auto=True)  # the grid around the slider
    assert auto is not None and _same_partition(auto, want)
    chosen = want.grid.filter(pl.col("chosen")).row(0, named=True)
    # the controls now show the picked settings, so a plain re-cluster reproduces them
    assert (ex.min_cluster_size, ex.min_samples, ex.selection_method) == (
        chosen["min_cluster_size"], chosen["min_samples"], chosen["cluster_selection_method"])
    assert (ex._mcs.value, ex._ms.value, ex._method.value) == (
        ex.min_cluster_size, ex.min_samples, ex.selection_method)
    assert "auto picked" in ex.status
    again = ex.recluster()
    assert again is not None and _same_partition(again, auto)


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


@pytest.fixture(scope="module")
def many(clustered: tuple) -> object:
    """More than ten clusters and some noise: text order would put 10 before 2."""
    _, result = clustered
    res = recluster(result, min_cluster_size=5, min_samples=2)
    assert res.clusters.height > 10 and (res.labels < 0).any()
    return res


def test_legend_is_in_cluster_order_with_noise_last(clustered: tuple, many: object) -> None:
    store, _ = clustered
    ex = wb.widgets.ClusterExplorer(many, store=store)
    labels = [label for label, _ in legend(ex)]
    assert labels[-1] == NOISE_LABEL
    numbers = [number(label) for label in labels[:-1]]
    assert numbers == sorted(many.clusters["cluster"].to_list())  # 0, 1, 2, ..., 10, 11
    # the colours the points get are the legend's
    assert drawn_colors(ex) == dict(legend(ex))


def test_labels_show_the_cluster_number_once(clustered: tuple) -> None:
    store, result = clustered
    names = result.clusters["name"].to_list()
    numbers = result.clusters["cluster"].to_list()
    assert not any(n.startswith(f"{c}:") for c, n in zip(numbers, names, strict=True))
    ex = wb.widgets.ClusterExplorer(result, store=store)
    labels = [label for label, _ in legend(ex) if label != NOISE_LABEL]
    assert labels == [f"{c}: {n}" for c, n in zip(numbers, names, strict=True)]
    assert not any(re.match(r"(\d+): \1:", label) for label in labels)
    # the tooltip shows the same column, so the same labels
    tooltip = set(ex.scatter.color_data.astype(str))
    assert tooltip <= {*labels, NOISE_LABEL}
    # the cluster table has a number column: the name cell does not repeat it
    for c in result.clusters["cluster"]:
        assert f"<td>{c}</td><td>{c}: " not in ex._table.value
    # a name given by hand gets the number in front, once
    first = int(result.clusters["cluster"][0])
    named = rename_clusters(result, {first: "Sports"})
    assert f"{first}: Sports" in [label for label, _ in legend(
        wb.widgets.ClusterExplorer(named, store=store))]
    assert cluster_label(9, "9: widget, requests, file") == "9: widget, requests, file"
    assert cluster_label(9, "cluster 9") == "cluster 9"
    assert cluster_label(1, "10: x") == "1: 10: x"
    assert cluster_label(-1, None) == NOISE_LABEL


def test_noise_is_light_grey_and_clusters_are_coloured(clustered: tuple, many: object) -> None:
    store, _ = clustered
    ex = wb.widgets.ClusterExplorer(many, store=store)
    colors = dict(legend(ex))
    assert colors.pop(NOISE_LABEL) == NOISE_GREY
    assert len(set(colors.values())) == len(colors)  # one colour per cluster
    for rgba in colors.values():
        r, g, b = rgba[:3]
        assert max(r, g, b) - min(r, g, b) >= 0.2  # a hue, never another grey
        assert colorsys.rgb_to_hls(r, g, b)[1] <= 0.85


def test_a_cluster_keeps_its_colour_after_recluster(clustered: tuple) -> None:
    store, result = clustered
    ex = wb.widgets.ClusterExplorer(result, store=store)
    before = {number(label): rgba for label, rgba in legend(ex)}
    ex.min_cluster_size, ex.min_samples = 5, 2
    new = ex.recluster()
    assert new is not None and new.clusters.height != result.clusters.height
    after = {number(label): rgba for label, rgba in legend(ex)}
    assert 0 in before and 0 in after
    assert after[0] == before[0] == to_rgba(cluster_color(0))
    for c in set(before) & set(after):
        assert after[c] == before[c]
    assert drawn_colors(ex) == dict(legend(ex))  # the points follow the legend
    ex.color_by = "label"
    ex.color_by = "cluster"  # back from another column: the same colours again
    assert {number(label): rgba for label, rgba in legend(ex)} == after


def test_digit_labels_colour_as_categories(clustered: tuple) -> None:
    store, result = clustered
    ex = wb.widgets.ClusterExplorer(result, store=store)
    ex.color_by = "label"
    enc = ex.scatter.widget.legend_encoding["color"]
    assert enc["categorical"] is True
    assert [label for label, _ in legend(ex)] == [str(i) for i in range(10)]
    assert len(set(dict(legend(ex)).values())) == 10
    assert drawn_colors(ex) == dict(legend(ex))
    ex.color_by = "probability"  # a real number: a gradient
    assert ex.scatter.widget.legend_encoding["color"]["categorical"] is False
    ex.color_by = "outlier_score"  # its own range, not probability's
    values = [v for v, _ in legend(ex)]
    outlier = result.points["outlier_score"]
    assert min(values) == pytest.approx(outlier.min()) and max(values) == pytest.approx(
        outlier.max())


def test_colour_by_offers_every_colourable_column(clustered: tuple) -> None:
    store, result = clustered
    meta = store.scan().collect().with_columns(
        pl.format("note {}", pl.col("id")).alias("note"),  # free text: one value per row
        (pl.col("label") * 0.5).alias("score"),
        (pl.col("label") * 37).alias("big"),  # ten values, though large ones
        pl.int_range(pl.len()).alias("row"),  # many integers: a gradient
    )
    ex = wb.widgets.ClusterExplorer(result, metadata=meta, text="label")
    options = list(ex._color.options)
    assert options[0] == "cluster" and options[-2:] == ["probability", "outlier_score"]
    assert {"label", "text", "score", "big", "row"} <= set(options)  # label is the text=
    assert not {"note", "id", "key", "x", "y", "name"} & set(options)
    for column, categorical in (("label", True), ("big", True), ("text", True),
                                ("score", False), ("row", False)):
        ex.color_by = column
        assert ex.scatter.color()["by"] == column
        assert ex.scatter.widget.legend_encoding["color"]["categorical"] is categorical
    ex.color_by = "big"
    assert [label for label, _ in legend(ex)] == [str(37 * i) for i in range(10)]


def test_map_is_padded_and_legend_beside_it(clustered: tuple) -> None:
    store, result = clustered
    ex = wb.widgets.ClusterExplorer(result, store=store)
    for axis in ("x", "y"):
        values = result.points[axis]
        scale = getattr(ex.scatter, axis)()["scale"]
        margin = 0.05 * (values.max() - values.min())
        assert scale.vmin < values.min() - margin and scale.vmax > values.max() + margin
    # the legend is drawn beside the map, not over the points, with the points' colours
    assert ex.scatter.legend()["legend"] is False
    html = ex._legend.value
    noise = int((ex.result.labels < 0).any())
    assert html.count("wb-legend-entry") == len(legend(ex)) == ex.result.clusters.height + noise
    for label, rgba in legend(ex):
        assert label in html and to_hex(rgba) in html
    assert [(lab, to_rgba(c)) for lab, c in ex.legend] == legend(ex)
    ex.color_by = "probability"  # a gradient: a bar from the lowest to the highest value
    assert "wb-legend-bar" in ex._legend.value and "wb-legend-entry" not in ex._legend.value
    ex.color_by = "cluster"
    ex.min_cluster_size = 40
    ex.recluster()  # new data, same points: the padding stays
    assert ex.scatter.x()["scale"].vmin < result.points["x"].min()


# ------------------------------------------------------------------ the topic hierarchy
@pytest.fixture(scope="module")
def topical(clustered: tuple) -> object:
    """The default for text: outliers reassigned, cut at the silhouette's level of the tree."""
    store, _ = clustered
    res = cluster(store, reducer="pca", layout="pca", progress=False)
    assert "topics" in res.params and res.hierarchy.n_clusters >= 4
    assert (res.points["hdbscan_cluster"] < 0).any() and not (res.labels < 0).any()
    return res


def _current(ex: wb.widgets.ClusterExplorer) -> int:
    """How many nodes the hierarchy view marks as topics of the current level."""
    return ex._tree.value.count("class='wb-topic wb-topic-current")


def test_granularity_slider_cuts_the_tree_with_one_call(
        clustered: tuple, topical: object, monkeypatch: pytest.MonkeyPatch) -> None:
    store, _ = clustered
    k = topical.hierarchy.n_clusters
    ex = wb.widgets.ClusterExplorer(topical, store=store)
    assert (ex._granularity.min, ex._granularity.max) == (1, k)
    assert ex._granularity.value == ex.n_topics == topical.params["topics"]["n_topics"]
    assert ex._granularity.continuous_update is False
    calls: list[int] = []
    real = ClusterResult.at_level

    def counted(self: ClusterResult, n_topics: int) -> ClusterResult:
        calls.append(n_topics)
        return real(self, n_topics)

    monkeypatch.setattr(ClusterResult, "at_level", counted)
    for n in (1, 3, k, 2):
        ex._granularity.value = n
        assert calls[-1] == n and len(calls) == [1, 3, k, 2].index(n) + 1  # one call a move
        assert ex.result.metrics.n_clusters == ex.n_topics == n
        assert (ex.result.labels == real(topical, n).labels).all()  # the same tree's level
        labels = [label for label, _ in legend(ex)]
        assert len(labels) == n and NOISE_LABEL not in labels
        assert drawn_colors(ex) == dict(legend(ex))  # the points follow the legend
        assert ex._table.value.count("<tr><td>") == n  # the table follows
        assert _current(ex) == n
        assert f"{n} cluster{'' if n == 1 else 's'} of {k} fine clusters" in ex.status
    # a topic keeps its colour across levels (topics are numbered by their first fine cluster)
    assert dict(legend(ex))[labels[0]] == to_rgba(cluster_color(0))


def test_noise_toggle_is_a_view_of_the_same_result(clustered: tuple, topical: object) -> None:
    store, _ = clustered
    ex = wb.widgets.ClusterExplorer(topical, store=store)
    assert ex.show_noise is False and not ex._noise.disabled
    before = legend(ex)
    assert NOISE_LABEL not in dict(before)
    ex._noise.value = True
    assert ex.show_noise is True
    assert ex.result is topical  # no library call, nothing recomputed
    now = legend(ex)
    assert now[:-1] == before and now[-1] == (NOISE_LABEL, NOISE_GREY)
    noise = int((topical.points["hdbscan_cluster"] < 0).sum())
    assert int((ex.scatter.color_data.astype(str) == NOISE_LABEL).sum()) == noise
    assert drawn_colors(ex) == dict(now)
    assert f"{noise} points" in ex.status
    assert ex.selection.height == 0 and (ex._frame["cluster"] >= 0).all()  # data unchanged
    ex.n_topics = 2  # the view state survives a move along the tree
    assert [label for label, _ in legend(ex)][-1] == NOISE_LABEL and len(legend(ex)) == 3
    ex.show_noise = False
    assert len(legend(ex)) == 2 and NOISE_LABEL not in dict(legend(ex))


def test_hierarchy_view_is_escaped_and_marks_the_current_topics(
        clustered: tuple, topical: object) -> None:
    store, _ = clustered
    named = rename_clusters(topical, {0: "<script>alert(1)</script> & co"})
    ex = wb.widgets.ClusterExplorer(named, store=store)
    html = ex._tree.value
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in html
    assert "<script>" not in ex._table.value  # the digits' text column: <script>x</script>
    n, k = named.params["topics"]["n_topics"], named.hierarchy.n_clusters
    assert _current(ex) == n
    assert html.count("class='wb-topic") == 2 * k - 1  # every node of the tree, root first
    assert html.index(f"{k} fine clusters · {topical.points.height} points") < html.index(
        "fine cluster 0 ·")
    # open down to the current topics, collapsed below them
    assert html.count("<details class='wb-topic' open>") == n - 1
    ex.n_topics = 1
    assert _current(ex) == 1 and " open>" not in ex._tree.value
    assert ex._tree.value.count("class='wb-topic wb-topic-current") == 1
    ex.n_topics = k
    assert _current(ex) == k and ex._tree.value.count(" open>") == k - 1


def test_fine_result_builds_its_tree_on_the_first_move(clustered: tuple) -> None:
    store, result = clustered
    k = result.clusters.height
    ex = wb.widgets.ClusterExplorer(result, store=store)
    assert (ex._granularity.max, ex._granularity.value) == (k, k)
    assert "not built yet" in ex._tree.value and _current(ex) == 0
    assert ex._noise.disabled  # its noise is noise already
    ex.n_topics = 3
    assert ex.result.metrics.n_clusters == 3
    assert (ex.result.labels == result.at_level(3).labels).all()
    assert [label for label, _ in legend(ex)][-1] == NOISE_LABEL  # noise stays noise
    assert len(legend(ex)) == 4 and _current(ex) == 3
    ex.n_topics = 5
    assert ex.result.metrics.n_clusters == 5 and _current(ex) == 5
    # Re-cluster keeps the fine policy of the result given (no outliers reassigned)
    ex.min_cluster_size = 40
    new = ex.recluster()
    want = recluster(result, min_cluster_size=40, min_samples=ex.min_samples)
    assert new is not None and "topics" not in new.params and _same_partition(new, want)
    # the clusters slider keeps the level chosen: the new clustering is cut there
    level = min(5, want.clusters.height)
    assert (ex._granularity.max, ex._granularity.value) == (want.clusters.height, level)
    assert ex.result.metrics.n_clusters == ex.n_topics == level
    assert (ex.result.labels == want.at_level(level).labels).all()
    assert "not built yet" not in ex._tree.value and _current(ex) == level


def test_hierarchy_message_matches_the_slider(clustered: tuple) -> None:
    store, result = clustered
    k = result.clusters.height
    ex = wb.widgets.ClusterExplorer(result, store=store)
    assert ex._granularity.value == k
    assert f"all {k} fine clusters (the clusters slider at {k})" in ex._tree.value
    # untouched, Re-cluster shows every new fine cluster (no tree built behind the user)
    ex.min_cluster_size = 40
    new = ex.recluster()
    assert new is not None and ex._granularity.value == new.clusters.height
    assert f"the clusters slider at {new.clusters.height})" in ex._tree.value


def test_recluster_of_a_topic_result_keeps_the_level(clustered: tuple,
                                                       topical: object) -> None:
    store, _ = clustered
    ex = wb.widgets.ClusterExplorer(topical, store=store)
    ex.n_topics = 2
    ex.min_cluster_size, ex.min_samples = 5, 2
    new = ex.recluster()
    assert new is not None and "topics" in new.params
    assert ex._granularity.max == new.hierarchy.n_clusters > topical.hierarchy.n_clusters
    # the slider stays where the user put it, and the map shows that level of the new tree
    assert ex.n_topics == ex._granularity.value == 2 == ex.result.metrics.n_clusters
    assert (ex.result.labels == new.at_level(2).labels).all()
    assert _current(ex) == ex.n_topics and len(legend(ex)) == ex.n_topics
    ex.n_topics = 4  # the new tree
    assert (ex.result.labels == new.at_level(4).labels).all()


def test_a_bad_level_is_reported(clustered: tuple, topical: object) -> None:
    store, _ = clustered
    ex = wb.widgets.ClusterExplorer(topical, store=store)
    level = ex.n_topics
    assert ex.at_level(0) is None
    assert ex.status.startswith("Error: n_topics") and ex.result is topical
    assert ex._granularity.value == ex.n_topics == level


def test_thumbnails_are_inline_pngs_of_each_row() -> None:
    import base64
    import io

    import matplotlib.image as mpimg
    import numpy as np

    images = np.zeros((3, 4, 2))
    images[1, 0, 0] = 5.0  # one dark pixel, top left
    thumbs = wb.widgets.thumbnails(images.reshape(3, 8), (4, 2), scale=3)
    assert isinstance(thumbs, pl.Series) and thumbs.len() == 3 and thumbs.name == "image"
    assert all(t.startswith("data:image/png;base64,") for t in thumbs)
    png = mpimg.imread(io.BytesIO(base64.b64decode(thumbs[1].split(",", 1)[1])), format="png")
    assert png.shape[:2] == (12, 6)  # each pixel a 3x3 block
    assert png[0, 0, 0] < 0.1 and png[-1, -1, 0] > 0.9  # gray_r: high values dark
    with pytest.raises(InvalidInputError, match="images"):
        wb.widgets.thumbnails(images.reshape(3, 8), (3, 3))


def test_image_column_must_exist(clustered: tuple) -> None:
    store, result = clustered
    with pytest.raises(InvalidInputError, match="image"):
        wb.widgets.ClusterExplorer(result, store=store, image="picture")
    meta = store.scan().collect()
    meta = meta.with_columns(wb.widgets.thumbnails(np.zeros((meta.height, 4)), (2, 2)))
    ex = wb.widgets.ClusterExplorer(result, metadata=meta, image="image")
    assert ex.scatter.widget.tooltip_preview == "image"
    assert ex.scatter.widget.tooltip_preview_type == "image"
    assert "image" not in ex._color.options


def test_selection_count_clear_button_and_rows(clustered: tuple) -> None:
    store, result = clustered
    ex = wb.widgets.ClusterExplorer(result, store=store)
    assert " selected</b>" not in ex._selected.value and ex._clear.layout.display == "none"
    assert ex.rows.height == result.points.height  # nothing selected: every point
    ids = ex._frame.get_column("id").head(7).to_list()
    ex.select(ids)
    assert "<b>7 selected</b>" in ex._selected.value and ex._clear.layout.display is None
    assert sorted(ex.rows.get_column("id").to_list()) == sorted(ids)
    html = ex.export.export("csv")
    data = base64.b64decode(html.split("href='")[1].split("'")[0].split(",", 1)[1])
    assert sorted(pl.read_csv(io.BytesIO(data)).get_column("id").cast(pl.Utf8).to_list()) \
        == sorted(ids)
    assert "7 selected" in repr(ex) and "<" not in repr(ex)
    ex._clear.click()
    assert ex.selected_ids == [] and " selected</b>" not in ex._selected.value


def test_legend_goes_to_two_columns_past_twelve(clustered: tuple, many: object) -> None:
    store, _ = clustered
    ex = wb.widgets.ClusterExplorer(many, store=store)
    n = len(legend(ex))
    assert n > LEGEND_ONE_COLUMN
    assert "wb-legend-cols" in ex._legend.value
    assert ex._legend.value.count("class='wb-legend-entry'") == n  # none cut off


def test_points_are_large_and_opaque_on_small_maps(clustered: tuple) -> None:
    store, result = clustered
    ex = wb.widgets.ClusterExplorer(result, store=store)
    assert ex.scatter.size()["default"] == point_size(result.points.height) >= 5
    assert ex.scatter.opacity()["default"] == POINT_OPACITY >= 0.8
    assert point_size(150_000) < point_size(1_000)


def test_no_null_comparison_warning(clustered: tuple) -> None:
    store, result = clustered
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        ex = wb.widgets.ClusterExplorer(result, store=store)
        ex.select(ex._frame.get_column("id").head(3).to_list())
    assert [str(w.message) for w in seen if "None" in str(w.message)] == []
