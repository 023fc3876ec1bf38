"""The distributed dedup equals the single-machine LSH dedup (pairs, groups, nearest)."""

from __future__ import annotations

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import workbench as wb
from workbench.datasets import synthetic_stream
from workbench.errors import InvalidInputError

from .conftest import RAY_TIMEOUT

pytestmark = pytest.mark.timeout(RAY_TIMEOUT)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> wb.Store:
    """3,000 rows in four segments with planted near-duplicate triples, exact copies and
    some deletions."""
    stream = synthetic_stream(3_000, 32, duplicate_groups=40, duplicate_size=3, drift_points=1,
                              noise=0.08, random_state=5)
    frame = stream.frame.with_columns(part=pl.int_range(pl.len()) % 3)
    vectors = stream.vectors.copy()
    # exact copies: ties in similarity, which both paths must break the same way (eight
    # copies of one row: more tied neighbours than k)
    vectors[2_990:] = vectors[:10]
    vectors[2_980:2_988] = vectors[50]
    s = wb.Store.create(tmp_path_factory.mktemp("ddedup") / "s", dim=32)
    for lo, hi in [(0, 700), (700, 1_500), (1_500, 2_200), (2_200, 3_000)]:
        s.add(frame[lo:hi], vectors=vectors[lo:hi], progress=False)
    ids = frame.get_column("id").to_list()
    s.delete(ids[100:130] + ids[1_600:1_620])
    return s


def _single(store: wb.Store, **kw: object) -> wb.DedupResult:
    return wb.find_duplicates(store, candidates="lsh", method="cosine", cache=False,
                              progress=False, **kw)  # type: ignore[arg-type]


def _same(a: wb.DedupResult, b: wb.DedupResult) -> None:
    assert_frame_equal(a.pairs, b.pairs)
    assert_frame_equal(a.groups, b.groups)
    assert_frame_equal(a.nearest, b.nearest)
    assert a.summary == b.summary
    assert a.info["lsh"] == b.info["lsh"]


def test_equals_single_machine_lsh(ray_ok: dict, store: wb.Store) -> None:
    from workbench.distributed.dedup import find_duplicates

    assert len(store.view().segments) == 4
    single = _single(store, threshold=0.97, k=4)
    dist = find_duplicates(store, threshold=0.97, k=4, progress=False)
    _same(single, dist)
    assert dist.summary["groups"] >= 40 and dist.info["distributed"]["map"] >= 2
    # the ten exact copies: each with its original
    exact = dist.groups.filter(pl.col("exact") & ~pl.col("is_representative"))
    assert exact.height >= 10
    assert dist.groups.group_by("group").len().get_column("len").max() >= 9


def test_where_and_components(ray_ok: dict, store: wb.Store) -> None:
    from workbench.distributed.dedup import find_duplicates

    where = pl.col("part") != 1
    single = _single(store, threshold=0.96, k=2, where=where, grouping="components")
    dist = find_duplicates(store, threshold=0.96, k=2, where=where, grouping="components",
                           workers=3, progress=False)
    _same(single, dist)
    keys = set(dist.groups.get_column("key").to_list())
    part = store.scan().filter(pl.col("part") == 1).select("key").collect()
    assert keys.isdisjoint(part.get_column("key").to_list())


@pytest.mark.parametrize(("kw", "name"), [
    ({"threshold": 0.95, "method": "hybrid"}, "method"),
    ({"threshold": 0.95, "candidates": "index"}, "candidates"),
    ({}, "threshold"),
    ({"threshold": 0.95, "only_new": True}, "only_new"),
    ({"threshold": 0.95, "workers": 0}, "workers"),
    ({"threshold": 1.5}, "threshold"),
])
def test_bad_arguments_are_named(ray_ok: dict, store: wb.Store, kw: dict, name: str) -> None:
    from workbench.distributed.dedup import find_duplicates

    with pytest.raises(InvalidInputError, match=name):
        find_duplicates(store, progress=False, **kw)
