"""Regression tests for the store-hardening defects (issue 8): one or more per defect."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import workbench as wb
from tests.helpers import clustered
from workbench.errors import (
    CorruptStoreError,
    InvalidInputError,
    StoreWriteError,
    UnknownIdError,
)
from workbench.store.manifest import list_generations, manifest_path

ROOT = Path(__file__).resolve().parents[2]


def _store(path: Path, n: int = 50, dim: int = 8, **kw: object) -> wb.Store:
    st = wb.Store.create(path, dim=dim, **kw)  # type: ignore[arg-type]
    st.add({"id": [f"r{i}" for i in range(n)], "x": list(range(n))},
           vectors=clustered(n, dim, seed=3), progress=False)
    return st


# ---------------------------------------------------------------- 5: forged manifests
def _forge(path: Path, edit: object) -> None:
    """Rewrite the newest manifest through `edit(body)` with a valid checksum (a forger's)."""
    mpath = manifest_path(path, list_generations(path)[0])
    body = json.loads(mpath.read_bytes())
    body.pop("checksum")
    edit(body)  # type: ignore[operator]
    canon = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    body["checksum"] = f"{zlib.crc32(canon) & 0xFFFFFFFF:08x}"
    mpath.write_text(json.dumps(body))


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "segment_id", "other_segment",
                                  "negative_rows", "metric", "duplicate_segment"])
def test_forged_manifest_is_contained(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "s"
    outside = tmp_path / "outside.npy"
    x = clustered(20, 8, seed=1)
    np.save(outside, x)
    with _store(path, n=20) as st:
        st.add({"id": ["extra"]}, vectors=x[:1], progress=False)  # a second segment

    def edit(body: dict) -> None:
        seg = body["segments"][0]
        if kind == "dotdot":
            seg["vectors"]["name"] = "../../outside.npy"
        elif kind == "absolute":
            seg["vectors"]["name"] = str(outside)
        elif kind == "segment_id":
            seg["id"] = "../../escape"
        elif kind == "other_segment":
            seg["meta"]["name"] = body["segments"][1]["meta"]["name"]
        elif kind == "negative_rows":
            seg["rows"] = -5
        elif kind == "metric":
            body["metric"] = "manhattan"
        else:
            body["segments"].append(seg)

    _forge(path, edit)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    for readonly in (True, False):
        with pytest.raises(CorruptStoreError, match="manifest"):
            wb.Store.open(path, readonly=readonly)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing written anywhere
    # the earlier generation is intact and opens
    with wb.Store.open(path, readonly=True, generation=list_generations(path)[1]) as old:
        assert len(old) == 20


# ---------------------------------------------------------------- 6: metadata schema
def test_int_column_widens_to_float_instead_of_truncating(tmp_path: Path) -> None:
    x = clustered(4, 8, seed=2)
    with wb.Store.create(tmp_path / "s", dim=8) as st:
        st.add({"id": ["a", "b"], "v": [1, 2]}, vectors=x[:2], progress=False)
        st.add({"id": ["c"], "v": [1.5]}, vectors=x[2:3], progress=False)
        got = st.get(["a", "c"])
        assert got.schema["v"] == pl.Float64
        assert got["v"].to_list() == [1.0, 1.5]
        st.update({"id": ["b"], "v": [2.25]})
        st.compact(progress=False)
    with wb.Store.open(tmp_path / "s", readonly=True) as st:
        assert st.get(["a", "b", "c"])["v"].to_list() == [1.0, 2.25, 1.5]


def test_struct_widens_to_the_union_of_fields(tmp_path: Path) -> None:
    x = clustered(4, 8, seed=2)
    with wb.Store.create(tmp_path / "s", dim=8) as st:
        st.add({"id": ["a"], "s": [{"p": 1, "q": "x"}]}, vectors=x[:1], progress=False)
        st.add({"id": ["b"], "s": [{"p": 2.5, "r": True}]}, vectors=x[1:2], progress=False)
        st.update({"id": ["a"], "s": [{"p": 3, "t": "new"}]})
        rows = st.get(["a", "b"])["s"].to_list()
    assert rows[0] == {"p": 3.0, "q": None, "r": None, "t": "new"}
    assert rows[1] == {"p": 2.5, "q": None, "r": True, "t": None}


def test_all_null_first_batch_then_values(tmp_path: Path) -> None:
    x = clustered(4, 8, seed=2)
    with wb.Store.create(tmp_path / "s", dim=8) as st:
        st.add(pl.DataFrame({"id": ["a"], "note": [None]}), vectors=x[:1], progress=False)
        st.add({"id": ["b"], "note": ["hello"]}, vectors=x[1:2], progress=False)
        st.update({"id": ["a"], "note": ["later"]})
        assert st.get(["a", "b"])["note"].to_list() == ["later", "hello"]


def test_type_changes_are_refused_by_name(tmp_path: Path) -> None:
    x = clustered(4, 8, seed=2)
    with wb.Store.create(tmp_path / "s", dim=8) as st:
        st.add({"id": ["a"], "v": [1], "flag": [True]}, vectors=x[:1], progress=False)
        gen = st.generation
        with pytest.raises(InvalidInputError, match="column 'v' holds String"):
            st.add({"id": ["b"], "v": ["one"]}, vectors=x[1:2], progress=False)
        with pytest.raises(InvalidInputError, match="column 'flag'"):
            st.update({"id": ["a"], "flag": [3]})
        with pytest.raises(InvalidInputError, match="2\\*\\*53"):
            st.add({"id": ["c"], "v": [2**60]}, vectors=x[2:3], progress=False)
            st.add({"id": ["d"], "v": [0.5]}, vectors=x[3:4], progress=False)
        assert st.generation == gen + 1  # only the exact int 2**60 landed
        assert sorted(st.scan().collect()["id"]) == ["a", "c"]


def test_internal_names_and_bad_columns_are_named_errors(tmp_path: Path) -> None:
    x = clustered(4, 8, seed=2)
    with wb.Store.create(tmp_path / "s", dim=8) as st:
        with pytest.raises(InvalidInputError, match="'_ord' is reserved"):
            st.add({"id": ["a"], "_ord": [1]}, vectors=x[:1], progress=False)
        with pytest.raises(InvalidInputError, match="both an 'id' column and id='name'"):
            st.add({"name": ["a"], "id": ["b"]}, id="name", vectors=x[:1], progress=False)
        with pytest.raises(InvalidInputError, match="column 'o' holds Python objects"):
            st.add(pl.DataFrame({"id": ["a"], "o": [object()]}), vectors=x[:1], progress=False)
        assert len(st) == 0 and st.generation == 0


# ---------------------------------------------------------------- 7: generated ids
def test_generated_ids_never_collide(tmp_path: Path) -> None:
    x = clustered(12, 8, seed=2)
    with wb.Store.create(tmp_path / "s", dim=8) as st:
        st.add({"id": ["3", "7"]}, vectors=x[:2], progress=False)
        keys = st.add({"n": list(range(5))}, vectors=x[2:7], progress=False)
        ids = st.scan().collect()["id"].to_list()
        assert len(ids) == len(set(ids)) == 7
        assert sorted(st.get([str(k) for k in keys])["id"]) == sorted(str(k) for k in keys)
        np.testing.assert_array_equal(st.vectors(["3"])[0], x[0])
        gen_ids = [str(k) for k in keys]
        assert "3" not in gen_ids and "7" not in gen_ids
        np.testing.assert_array_equal(st.vectors(gen_ids), x[2:7])


# ---------------------------------------------------------------- 8: write failures
def test_a_real_file_size_limit_gives_store_write_error(tmp_path: Path) -> None:
    """RLIMIT_FSIZE makes the kernel refuse the write (EFBIG), as a full disk would."""
    path = tmp_path / "s"
    _store(path, n=30, dim=64).close()
    script = textwrap.dedent(f"""
        import resource, signal, sys
        import numpy as np
        import workbench as wb
        from workbench.errors import StoreWriteError
        st = wb.Store.open({str(path)!r})
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, resource.RLIM_INFINITY))
        x = np.random.default_rng(0).normal(size=(5000, 64)).astype(np.float32)
        try:
            st.add({{"id": [f"big{{i}}" for i in range(5000)]}}, vectors=x, progress=False)
        except StoreWriteError as exc:
            print("STORE_WRITE_ERROR", exc.errno, type(exc.__cause__).__name__, exc)
            sys.exit(0)
        print("NO ERROR")
        sys.exit(1)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "STORE_WRITE_ERROR" in out.stdout and "failed" in out.stdout
    assert str(path / "segments") in out.stdout
    with wb.Store.open(path) as st:
        assert len(st) == 30
        assert not [p for p in (path / "segments").iterdir() if "big" in p.name]


# ---------------------------------------------------------------- 9: mapped files released
def _mapped_under(path: Path) -> set[str]:
    maps = Path("/proc/self/maps")
    if not maps.exists():
        pytest.skip("needs /proc/self/maps (Linux)")
    root = str(path.resolve())
    return {line.split(maxsplit=5)[5].replace(" (deleted)", "").strip()
            for line in maps.read_text().splitlines()
            if len(line.split(maxsplit=5)) == 6 and root in line}


def test_long_lived_writer_unmaps_compacted_segments(tmp_path: Path) -> None:
    path = tmp_path / "s"
    x = clustered(4000, 32, seed=4)
    with wb.Store.create(path, dim=32, exact_threshold=64) as st:
        for r in range(3):
            for b in range(4):
                i = (r * 4 + b) * 300
                st.add({"id": [f"r{r}b{b}-{j}" for j in range(300)]}, vectors=x[i:i + 300],
                       progress=False)
            st.search(x[:5], k=3)
            st.compact(progress=False)
        current = {str((path / "segments" / f.name).resolve())
                   for s in st._manifest.segments for f in s.files()}
        mapped = _mapped_under(path)
        assert mapped <= current, sorted(mapped - current)
        assert mapped  # the live segment is mapped (the check looks at the right thing)


# ---------------------------------------------------------------- 10: damaged index
def test_index_with_foreign_keys_is_caught_without_checksums(tmp_path: Path) -> None:
    """verify=False skips CRCs; the always-on structural checks still refuse the file."""
    path = tmp_path / "s"
    with _store(path, n=300, dim=8, exact_threshold=16) as st:
        entry = st._manifest.segments[0]
    other = tmp_path / "other"
    with wb.Store.create(other, dim=8, exact_threshold=16) as st2:
        st2.add({"id": [f"o{i}" for i in range(300)]}, vectors=clustered(300, 8, seed=9),
                progress=False)
        st2.add({"id": ["pad"]}, vectors=clustered(1, 8, seed=5), progress=False)
        st2.delete(["o0"])
        st2.compact(progress=False)  # keys 1..300: same count, other keys
        foreign = other / "segments" / st2._manifest.segments[0].index.name
    target = path / "segments" / entry.index.name
    data = foreign.read_bytes()
    assert len(data) == target.stat().st_size
    target.write_bytes(data)
    with pytest.raises(CorruptStoreError, match="keys differ"):
        wb.Store.open(path, readonly=True, verify=False)
    with pytest.raises(CorruptStoreError, match="CRC-32"):
        wb.Store.open(path, readonly=True)


def test_index_header_damage_is_caught_without_checksums(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with _store(path, n=100, dim=8) as st:
        entry = st._manifest.segments[0]
    target = path / "segments" / entry.index.name
    raw = bytearray(target.read_bytes())
    raw[:8] = b"\xff" * 8  # the magic and version of the header
    target.write_bytes(bytes(raw))
    with pytest.raises(CorruptStoreError, match="index file"):
        wb.Store.open(path, readonly=True, verify=False)


def test_unknown_id_errors_still_work_after_the_refactor(tmp_path: Path) -> None:
    with _store(tmp_path / "s") as st, pytest.raises(UnknownIdError, match="'nope'"):
        st.vectors(["r1", "nope"])


def test_store_write_error_is_a_workbench_and_os_error() -> None:
    exc = StoreWriteError("x failed", path="/tmp/x", errno=28)
    assert isinstance(exc, wb.errors.WorkbenchError) and isinstance(exc, OSError)
    assert exc.errno == 28 and str(exc) == "x failed" and exc.committed is False


# ---------------------------------------------------------------- 1: readers vs collection
def test_reader_moves_on_when_the_writer_collects_what_it_is_loading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deterministic form of the race: mid-load, the writer compacts and commits enough
    generations to collect every file of the one being loaded."""
    from workbench.store import _snapshot
    from workbench.store.store import KEEP_GENERATIONS

    path = tmp_path / "s"
    writer = _store(path, n=60)
    writer.add({"id": [f"s{i}" for i in range(40)]}, vectors=clustered(40, 8, seed=8),
               progress=False)
    real = _snapshot.load_segment
    victims = iter(f"r{i}" for i in range(60))
    fired: list[int] = []

    def racing_load(*args: object, **kwargs: object) -> object:
        if not fired:
            fired.append(writer.generation)
            writer.compact(progress=False)
            for _ in range(KEEP_GENERATIONS):
                writer.delete([next(victims)])
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(_snapshot, "load_segment", racing_load)
    reader = wb.Store.open(path, readonly=True)
    assert fired and reader.generation == writer.generation > fired[0] + KEEP_GENERATIONS
    assert set(reader.scan().collect()["id"]) == set(writer.scan().collect()["id"])
    # the same during refresh (which reuses unchanged segments)
    writer.add({"id": ["late"]}, vectors=clustered(1, 8, seed=9), progress=False)
    fired.clear()
    reader.refresh()
    assert fired and reader.generation == writer.generation
    assert set(reader.scan().collect()["id"]) == set(writer.scan().collect()["id"])
    reader.close()
    writer.close()


def test_real_damage_is_still_raised_by_readers(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with _store(path) as st:
        entry = st._manifest.segments[0]
    (path / "segments" / entry.meta.name).unlink()
    with pytest.raises(CorruptStoreError, match="missing"):
        wb.Store.open(path, readonly=True)


def test_search_never_returns_a_key_the_store_does_not_hold(tmp_path: Path) -> None:
    """The last guard behind verify=False: an index answering with foreign keys is an error,
    never another row's metadata (the damage is simulated after the open-time checks)."""
    from usearch.index import Index

    with _store(tmp_path / "s", n=300, dim=8, exact_threshold=16) as st:
        seg = next(iter(st._committed.segs.values()))
        rogue = Index(ndim=8, metric="ip", dtype="f16")
        rogue.add(np.arange(10_000, 10_300, dtype=np.uint64), clustered(300, 8, seed=3))
        seg.index = rogue
        with pytest.raises(CorruptStoreError, match="does not hold"):
            st.search(clustered(3, 8, seed=4), k=5)
