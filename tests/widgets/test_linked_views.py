"""LinkedViews: a search highlights its hits on the map; a lasso on the map filters the search."""

from __future__ import annotations

import warnings

import numpy as np
import polars as pl
import pytest

import workbench as wb
from workbench.analysis import cluster
from workbench.errors import InvalidInputError
from workbench.widgets.cluster import HIGHLIGHT_LEVELS, HIGHLIGHT_SIZES


@pytest.fixture(scope="module")
def views_parts(tmp_path_factory: pytest.TempPathFactory) -> tuple[wb.Store, object]:
    docs = wb.datasets.python_docs(limit=400)
    store = wb.Store.create(tmp_path_factory.mktemp("lv") / "s",
                            embedder=wb.embed.Hashing(dim=128))
    store.add(docs.select("id", "text", "module"), text="text", progress=False)
    result = cluster(store, reducer="pca", layout="pca", progress=False)
    return store, result


@pytest.fixture
def views(views_parts: tuple[wb.Store, object]) -> wb.widgets.LinkedViews:
    store, result = views_parts
    return wb.widgets.LinkedViews.from_store(store, result, k=5, neighbours=15)


def levels(views: wb.widgets.LinkedViews) -> dict[str, str]:
    """Each point's highlight level as the map draws it (id -> level)."""
    ex = views.explorer
    data = ex.scatter.size()
    assert data["by"] is not None, "no size encoding: nothing highlighted"
    values = ex._highlight_levels()
    ids = ex._frame.get_column("id").to_list()
    return dict(zip(ids, [HIGHLIGHT_LEVELS[v] for v in values], strict=True))


def test_search_highlights_results_and_neighbourhood(views: wb.widgets.LinkedViews) -> None:
    views.panel.query = "parse an xml document"
    res = views.panel.search()
    assert res is not None and res.height == 5
    hits = res.get_column("id").to_list()
    near = views.panel.neighbourhood.get_column("id").to_list()
    assert len(near) == 15 and not set(near) & set(hits)
    # the neighbourhood is the same ranking continued: every hit at least as close
    assert res.get_column("distance").max() <= views.panel.neighbourhood.get_column(
        "distance").min()
    assert views.explorer.highlighted == hits
    assert views.explorer.neighbourhood == near
    drawn = levels(views)
    assert sorted(i for i, v in drawn.items() if v == "result") == sorted(hits)
    assert sorted(i for i, v in drawn.items() if v == "neighbour") == sorted(near)
    # the widget sends a size per level: results drawn largest
    assert views.explorer.scatter.size()["map"] == list(HIGHLIGHT_SIZES)
    assert HIGHLIGHT_LEVELS[-1] == "result"
    # "More like this" highlights its own results
    other = views.panel.more_like(hits[0])
    assert other is not None
    assert views.explorer.highlighted == other.get_column("id").to_list()


def test_lasso_restricts_and_reruns_the_search(views: wb.widgets.LinkedViews) -> None:
    store = views.panel.store
    views.panel.query = "logging handler"
    everywhere = set(views.panel.search().get_column("id").to_list())
    # a "lasso" around the side of the map away from most of the unrestricted hits
    frame = views.explorer._frame
    mid = frame.get_column("x").median()
    left = frame.filter(pl.col("x") < mid).get_column("id").to_list()
    right = frame.filter(pl.col("x") >= mid).get_column("id").to_list()
    chosen = left if len(everywhere & set(left)) <= len(everywhere & set(right)) else right
    assert len(everywhere & set(chosen)) < len(everywhere)
    views.explorer.select(chosen)
    assert sorted(views.panel.restricted_to) == sorted(chosen)
    res = views.panel.results  # re-run by the selection change
    assert res is not None and res.height == 5
    assert set(res.get_column("id").to_list()) <= set(chosen)
    # the restricted hits are the exact best of the selected rows
    q = store.embedder.embed(["logging handler"], progress=False)[0]
    sub = store.get(chosen)
    vecs = store.vectors(sub.get_column("id").to_list())
    sims = vecs @ q / (np.linalg.norm(vecs, axis=1) * np.linalg.norm(q))
    best = set(np.asarray(sub.get_column("id"))[np.argsort(-sims)[:5]].tolist())
    assert set(res.get_column("id").to_list()) == best
    assert f"map selection: {len(chosen)} rows" in views.panel.status
    assert "Filters (1)" in views.panel._accordion.get_title(0)
    # clearing the selection lifts the restriction and searches everywhere again
    views.explorer.select([])
    assert views.panel.restricted_to is None
    assert set(views.panel.results.get_column("id").to_list()) == everywhere
    assert "map selection" not in views.panel.status


def test_unticking_follow_selection_lifts_the_restriction(
        views: wb.widgets.LinkedViews) -> None:
    ids = views.explorer._frame.get_column("id").to_list()[:40]
    views.explorer.select(ids)
    assert views.panel.restricted_to is not None
    views.follow_selection = False
    assert views.panel.restricted_to is None
    views.explorer.select(ids[:10])
    assert views.panel.restricted_to is None
    views.follow_selection = True
    assert sorted(views.panel.restricted_to) == sorted(ids[:10])


def test_highlight_survives_recluster_and_clears(views: wb.widgets.LinkedViews) -> None:
    ex = views.explorer
    plain = ex.scatter.size()["default"]
    views.panel.query = "socket connection"
    hits = views.panel.search().get_column("id").to_list()
    ex.min_cluster_size = max(5, ex.min_cluster_size + 5)
    assert ex.recluster() is not None
    assert sorted(i for i, v in levels(views).items() if v == "result") == sorted(hits)
    ex.highlight()
    assert ex.highlighted == [] and ex.scatter.size()["by"] is None
    assert ex.scatter.size()["default"] == plain


def test_bad_input(views_parts: tuple[wb.Store, object]) -> None:
    store, result = views_parts
    with pytest.raises(InvalidInputError, match="panel, explorer"):
        wb.widgets.LinkedViews(wb.widgets.SearchPanel(store), result)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="neighbours"):
        wb.widgets.SearchPanel(store, neighbours=-1)


def test_lasso_shows_a_banner_with_a_clear_button(views: wb.widgets.LinkedViews) -> None:
    assert views._cue.layout.display == "none"
    views.panel.query = "parse an xml document"
    ids = views.explorer._frame.get_column("id").head(40).to_list()
    views.explorer.select(ids)
    assert views._cue.layout.display is None
    assert "Searching only the <b>40</b> points selected" in views._cue_text.value
    assert set(views.rows.get_column("id").to_list()) <= set(ids)
    assert "restricted to 40 points" in repr(views) and "<style>" not in repr(views)
    views._cue_clear.click()
    assert views.explorer.selected_ids == [] and views.panel.restricted_to is None
    assert views._cue.layout.display == "none"
    assert not set(views.rows.get_column("id").to_list()) <= set(ids)  # searched everything


def test_from_store_warns_nothing(views_parts: tuple[wb.Store, object]) -> None:
    """Traits holding frames once compared a polars frame with None (a UserWarning;
    traitlets swallows it as an exception when warnings are errors, so it is recorded)."""
    store, result = views_parts
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        views = wb.widgets.LinkedViews.from_store(store, result, k=5, neighbours=5)
        views.panel.query = "xml"
        views.panel.search()
    assert views.panel.results is not None
    assert [str(w.message) for w in seen if "None" in str(w.message)] == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        views.panel.query = "json"
        assert views.panel.search() is not None
