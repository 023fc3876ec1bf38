from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import workbench as wb
from workbench.errors import CorruptStoreError, InvalidInputError

from ..helpers import clustered
from .conftest import RAY_TIMEOUT

pytestmark = pytest.mark.timeout(RAY_TIMEOUT)
search_mod = importlib.import_module("workbench.distributed.search")


def _store(path: Path, *, parts: int = 5, rows: int = 700, exact_threshold: int = 4096,
           dtype: str = "f16") -> wb.Store:
    x = clustered(parts * rows, 24, centers=12, seed=3)
    st = wb.Store.create(path, dim=24, dtype=dtype, exact_threshold=exact_threshold)
    for p in range(parts):
        lo = p * rows
        st.add(pl.DataFrame({"id": [f"r{i}" for i in range(lo, lo + rows)],
                             "group": [i % 5 for i in range(lo, lo + rows)],
                             "part": [p] * rows}), vectors=x[lo:lo + rows], progress=False)
    return st


def _service(st: wb.Store, actors: int):  # noqa: ANN202
    import workbench.distributed as wd

    return wd.SearchService(st, actors=actors)


def test_exact_search_equals_the_store(ray_ok: dict, tmp_path: Path) -> None:
    st = _store(tmp_path / "s")
    st.delete([f"r{i}" for i in range(0, 3500, 37)])
    q = clustered(30, 24, centers=12, seed=4)
    with _service(st, 3) as svc:
        assert svc.placement.get_column("segments").to_list() == [2, 2, 1]
        assert svc.generation == st.generation
        for kw in ({"exact": True}, {"exact": True, "where": pl.col("group") == 2},
                   {"exact": True, "where": (pl.col("part") == 4) & (pl.col("group") < 2)}):
            got = svc.search(q, k=9, **kw)
            want = st.search(q, k=9, **kw)
            assert got.equals(want), kw
        one = svc.search(q[0], k=3, exact=True)
        assert one.equals(st.search(q[0], k=3, exact=True))


def test_ann_recall_matches_the_store(ray_ok: dict, tmp_path: Path) -> None:
    st = _store(tmp_path / "s", exact_threshold=64, dtype="i8")
    x = st.vectors([f"r{i}" for i in range(3500)])
    q = clustered(60, 24, centers=12, seed=5)
    truth = st.search(q, k=10, exact=True)
    with _service(st, 2) as svc:
        got = svc.search(q, k=10)
        want = st.search(q, k=10)

        def recall(res: pl.DataFrame) -> float:
            hits = res.join(truth, on=["query", "id"], how="inner").height
            return hits / truth.height

        assert abs(recall(got) - recall(want)) <= 0.01
        assert recall(got) > 0.8
        filt = pl.col("group") == 1
        assert abs(recall(svc.search(q, k=10, where=filt))
                   - recall(st.search(q, k=10, where=filt))) <= 0.01
    assert x.shape == (3500, 24)


def test_refresh_moves_every_actor_together(ray_ok: dict, tmp_path: Path) -> None:
    st = _store(tmp_path / "s", parts=3, rows=300)
    q = clustered(5, 24, centers=12, seed=6)
    with _service(st, 2) as svc:
        old = svc.generation
        st.delete(["r1", "r2"])
        st.add(pl.DataFrame({"id": ["new"], "group": [9], "part": [9]}), vectors=q[:1],
               progress=False)
        before = svc.search(q, k=5, exact=True)
        assert svc.generation == old and "new" not in before.get_column("id").to_list()
        assert svc.refresh() == st.generation != old
        after = svc.search(q, k=5, exact=True)
        assert after.equals(st.search(q, k=5, exact=True))
        assert after.filter(pl.col("query") == 0).get_column("id").item(0) == "new"
        assert svc.refresh() == st.generation  # nothing newer: no change


def test_bad_queries_are_named(ray_ok: dict, tmp_path: Path) -> None:
    st = _store(tmp_path / "s", parts=2, rows=100)
    with _service(st, 2) as svc:
        with pytest.raises(InvalidInputError, match="^k: "):
            svc.search(np.ones(24, np.float32), k=500)
        with pytest.raises(InvalidInputError, match="^query: "):
            svc.search(np.ones(7, np.float32), k=5)
        with pytest.raises(InvalidInputError, match="^query: "):
            svc.search("text", k=5)  # a vectors-only store has no embedder
        assert svc.search(np.ones(24, np.float32), k=5,
                          where=pl.col("group") == 99).height == 0
        with pytest.raises(wb.errors.MissingColumnError):
            svc.search(np.ones(24, np.float32), k=5, where=pl.col("nope") == 1)


def test_text_queries_use_the_store_model(ray_ok: dict, tmp_path: Path) -> None:
    st = wb.Store.create(tmp_path / "t", embedder=wb.embed.Hashing(dim=32))
    texts = ["red apples and pears", "fast cars on tracks", "apples in a basket", "a car race"]
    st.add(pl.DataFrame({"id": ["a", "b", "c", "d"], "text": texts}), text="text",
           progress=False)
    with _service(st, 2) as svc:
        assert svc.search("apples", k=2).equals(st.search("apples", k=2))


def test_a_flipped_index_byte_is_an_error_not_a_crash(ray_ok: dict, tmp_path: Path) -> None:
    st = _store(tmp_path / "s", parts=2, rows=200, exact_threshold=16)
    entry = st.view().manifest.segments[1]
    path = tmp_path / "s" / "segments" / entry.index.name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x5A
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptStoreError, match="CRC-32"):
        _service(st, 2)


def test_placement_is_contiguous_and_balanced() -> None:
    groups = search_mod._groups
    assert groups([100, 100, 100, 100], 2) == [[0, 1], [2, 3]]
    assert groups([10, 10, 10], 8) == [[0], [1], [2]]  # never more actors than segments
    assert groups([1000, 1, 1, 1], 2) == [[0], [1, 2, 3]]
    runs = groups([5, 50, 5, 5, 50, 5, 5], 3)
    assert [i for r in runs for i in r] == list(range(7)) and len(runs) == 3
    assert groups([7], 1) == [[0]]
