"""The store's public segment API: StoreView / SegmentView, and committing segments written
elsewhere (Store.layout, staging_folder, commit_segments)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

import workbench as wb
from workbench.errors import CorruptStoreError, DuplicateIdError, InvalidInputError
from workbench.store import view as view_mod
from workbench.store.segment import write_segment
from workbench.store.view import ROW_COLUMNS, StoreView, merge_topk

from ..helpers import clustered


def _store(path: Path, parts: int = 3, rows: int = 200) -> wb.Store:
    x = clustered(parts * rows, 16, seed=1)
    st = wb.Store.create(path, dim=16, exact_threshold=64)
    for p in range(parts):
        lo = p * rows
        st.add(pl.DataFrame({"id": [f"r{i}" for i in range(lo, lo + rows)],
                             "g": [i % 3 for i in range(lo, lo + rows)]}),
               vectors=x[lo:lo + rows], progress=False)
    st.delete(["r3", "r250"] if parts > 1 else ["r3"])
    return st


def test_view_search_equals_store_search(tmp_path: Path) -> None:
    st = _store(tmp_path / "s")
    v = st.view()
    q = clustered(7, 16, seed=2)
    for exact in (True, False):
        keys, dist = v.knn(q, 5, exact=exact)
        assert v.result_frame(keys, dist).equals(st.search(q, k=5, exact=exact))
    allowed = v.rows(pl.col("g") == 1)
    keys, dist = v.knn(q, 5, allowed=allowed, exact=True)
    assert v.result_frame(keys, dist).equals(st.search(q, k=5, where=pl.col("g") == 1,
                                                       exact=True))
    # per segment, merged by the store's merge, gives the same top-k
    parts = [seg.search(q, 5, exact=True) for seg in v.segments]
    mk, md = merge_topk(parts, 5, q.shape[0])
    np.testing.assert_array_equal(mk, v.knn(q, 5, exact=True)[0])
    np.testing.assert_allclose(md, v.knn(q, 5, exact=True)[1])


def test_view_rows_vectors_and_segments(tmp_path: Path) -> None:
    st = _store(tmp_path / "s")
    v = st.view()
    rows = v.rows()
    assert len(v) == rows.height == 598 and set(ROW_COLUMNS) <= set(rows.columns)
    assert "_seg" not in v.frame().columns
    ids = ["r0", "r399", "r599"]
    sel = rows.filter(pl.col("id").is_in(ids)).sort("id")
    np.testing.assert_array_equal(v.vectors(sel), st.vectors(sel.get_column("id").to_list()))
    segs = v.segments
    assert [s.rows for s in segs] == [200, 200, 200] and [s.live for s in segs] == [199, 199, 200]
    assert segs[0].live_mask().sum() == 199 and segs[1].tombstones.size == 1
    seg_ord, row = v.positions(sel.get_column("key").to_numpy())
    assert seg_ord.tolist() == sel.get_column("_seg").to_list()
    assert row.tolist() == sel.get_column("_row").to_list()
    with pytest.raises(InvalidInputError, match="^keys: "):
        v.positions(np.array([10**9], np.uint64))
    chunks = list(v.unit_vectors(rows, chunk=250))
    assert [lo for lo, _ in chunks] == [0, 250, 500]
    np.testing.assert_allclose(np.linalg.norm(chunks[1][1], axis=1), 1.0, rtol=1e-5)
    # the view stays on its generation
    st.delete(["r0"])
    assert len(v) == 598 and len(st.view()) == 597


def test_open_some_segments(tmp_path: Path) -> None:
    st = _store(tmp_path / "s")
    ids = [s.id for s in st.view().segments]
    part = StoreView.open(tmp_path / "s", segments=ids[1:])
    assert len(part) == 399 and [s.id for s in part.segments] == ids[1:]
    assert part.generation == st.generation
    old = StoreView.open(tmp_path / "s", generation=st.generation - 1)
    assert len(old) == 600  # before the delete
    with pytest.raises(InvalidInputError, match="^segments: "):
        StoreView.open(tmp_path / "s", segments=["seg-0000000000000000"])
    with pytest.raises(InvalidInputError, match="^generation: "):
        StoreView.open(tmp_path / "s", generation=99)


def test_checksums_are_checked_once_per_node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    st = _store(tmp_path / "s", parts=1)
    calls: list[Path] = []
    real = view_mod.crc32_file
    monkeypatch.setattr(view_mod, "crc32_file", lambda p: calls.append(p) or real(p))
    StoreView.open(st.path)
    first = len(calls)
    assert first == len(st.view().manifest.segments[0].files())
    StoreView.open(st.path)
    assert len(calls) == first  # remembered on this node
    # an altered file is a new version: checked again, and refused
    entry = st.view().manifest.segments[0]
    p = st.path / "segments" / entry.index.name
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(CorruptStoreError, match="CRC-32"):
        StoreView.open(st.path)
    with pytest.raises(CorruptStoreError, match="CRC-32"):
        StoreView.open(st.path, segments=[entry.id])


def _write(st: wb.Store, folder: Path, ids: list[str], start: int, *, seed: int = 0):  # noqa: ANN202
    lay = st.layout
    keys = np.arange(start, start + len(ids), dtype=np.uint64)
    meta = pl.DataFrame({"key": keys, "id": ids, "g": [7] * len(ids)})
    vecs = clustered(len(ids), lay["dim"], seed=seed)
    return write_segment(folder, keys, vecs, meta, metric=lay["metric"], dtype=lay["dtype"],
                         params=lay["params"], progress=False), vecs


def test_commit_segments_written_elsewhere(tmp_path: Path) -> None:
    st = _store(tmp_path / "s")
    g0, n0 = st.generation, len(st)
    folder = st.staging_folder()
    start = st.layout["next_key"]
    e1, v1 = _write(st, folder, ["n1", "n2"], start, seed=5)
    e2, v2 = _write(st, folder, ["n3"], start + 10, seed=6)
    assert st.commit_segments([e1, e2], staging=folder) == g0 + 1
    assert len(st) == n0 + 3 and not any(folder.iterdir())
    np.testing.assert_array_equal(st.vectors(["n1", "n2", "n3"]), np.vstack([v1, v2]))
    assert st.layout["next_key"] == start + 11
    again = wb.Store.open(st.path, readonly=True)
    assert again.get(["n3"]).get_column("g").item() == 7
    assert st.commit_segments([]) == st.generation


def test_commit_segments_refuses_and_changes_nothing(tmp_path: Path) -> None:
    st = _store(tmp_path / "s")
    g0, n0 = st.generation, len(st)
    folder = st.staging_folder()
    start = st.layout["next_key"]
    dup, _ = _write(st, folder, ["r5"], start)  # an id already live
    with pytest.raises(DuplicateIdError, match="^id: "):
        st.commit_segments([dup], staging=folder)
    a, _ = _write(st, folder, ["x1"], start + 1)
    b, _ = _write(st, folder, ["x1"], start + 2)  # the same id in two segments
    with pytest.raises(DuplicateIdError, match="^id: "):
        st.commit_segments([a, b], staging=folder)
    clash, _ = _write(st, folder, ["y1"], 0)  # key 0 is used
    with pytest.raises(InvalidInputError, match="^entries: "):
        st.commit_segments([clash], staging=folder)
    bad, _ = _write(st, folder, ["z1"], start + 3)
    p = folder / bad.vectors.name
    data = bytearray(p.read_bytes())
    data[-1] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(CorruptStoreError, match="CRC-32"):
        st.commit_segments([bad], staging=folder)
    with pytest.raises(InvalidInputError, match="^entries: "):
        st.commit_segments(["not an entry"])  # type: ignore[list-item]
    assert (st.generation, len(st)) == (g0, n0)
    assert len(wb.Store.open(st.path, readonly=True)) == n0


def test_a_writer_open_removes_stale_staging(tmp_path: Path) -> None:
    st = _store(tmp_path / "s", parts=1)
    folder = st.staging_folder()
    _write(st, folder, ["n1"], st.layout["next_key"])
    st.close()
    assert any(folder.iterdir())
    wb.Store.open(tmp_path / "s", readonly=True).close()
    assert folder.exists()  # a reader never collects
    wb.Store.open(tmp_path / "s").close()
    assert not (tmp_path / "s" / "staging").exists()
    ro = wb.Store.open(tmp_path / "s", readonly=True)
    with pytest.raises(wb.errors.ReadOnlyStoreError):
        ro.staging_folder()
