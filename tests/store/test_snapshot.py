from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

import workbench as wb
from tests.helpers import clustered


def test_reader_keeps_its_snapshot(tmp_path: Path) -> None:
    x = clustered(400, 8, seed=11)
    path = tmp_path / "s"
    writer = wb.Store.create(path, dim=8)
    writer.add({"id": [f"a{i}" for i in range(100)]}, vectors=x[:100], progress=False)
    early = wb.Store.open(path, readonly=True)
    assert len(early) == 100
    # many commits (more than the kept generations) and a compaction after the reader opened
    for b in range(1, 4):
        writer.add({"id": [f"b{b}-{i}" for i in range(100)]}, vectors=x[b * 100:(b + 1) * 100],
                   progress=False)
    writer.delete(["a0", "a1"])
    writer.compact()
    late = wb.Store.open(path, readonly=True)
    assert len(early) == 100 and early.generation == 1
    assert set(early.scan().collect()["id"]) == {f"a{i}" for i in range(100)}
    res = early.search(x[:3], k=2, exact=True)
    assert res["id"].to_list()[0] == "a0"  # deleted later, still in the old snapshot
    np.testing.assert_array_equal(early.vectors(["a5"])[0], x[5])
    assert len(late) == 398 and late.generation == writer.generation
    assert "a0" not in set(late.scan().collect()["id"])
    early.refresh()
    assert early.generation == writer.generation and len(early) == 398
    writer.close()
    early.close()
    late.close()


def test_writer_sees_own_commits_and_reader_refreshes(tmp_path: Path) -> None:
    x = clustered(20, 4, seed=12)
    with wb.Store.create(tmp_path / "s", dim=4) as w:
        r = wb.Store.open(tmp_path / "s", readonly=True)
        assert len(r) == 0
        w.add(pl.DataFrame({"id": ["p"]}), vectors=x[:1])
        assert len(r) == 0
        assert len(r.refresh()) == 1
        r.close()
