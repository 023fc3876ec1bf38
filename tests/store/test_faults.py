"""Fault injection in the spirit of SQLite's I/O-error tests.

For each write path, the n-th call of one filesystem operation (write, fsync, rename, folder
fsync) fails with an OSError, or is interrupted (``KeyboardInterrupt``) before or after it
runs, for n = 1, 2, ... until the operation gets through untouched. After every failure the
handle, a fresh reader and a reopened writer must all hold exactly the last commit that
returned, or the new one when the failure came after the manifest's rename (the commit
point); the failed handle must be able to run the operation again; reopening leaves no
garbage.
"""

from __future__ import annotations

import errno
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import workbench as wb
from workbench import _atomic
from workbench.errors import StoreWriteError
from workbench.store.manifest import MANIFEST_RE, list_generations, manifest_path, read_manifest

DIM = 8
POINTS = ("write", "fsync", "replace", "fsync_dir")
MODES = ("error", "interrupt_before", "interrupt_after")


class FaultyOps(_atomic.FileOps):
    """Fail the `n`-th call of `point` as `mode`; record whether a manifest was renamed."""

    def __init__(self, point: str, n: int, mode: str) -> None:
        self.point, self.n, self.mode = point, n, mode
        self.calls = 0
        self.fired = False
        self.manifest_renamed = False

    def _call(self, point: str, run: Callable[[], None], path: Path) -> None:
        if point != self.point:
            run()
            return
        self.calls += 1
        if self.calls != self.n:
            run()
            return
        self.fired = True
        if self.mode == "interrupt_before":
            raise KeyboardInterrupt
        if self.mode == "error":
            if point == "write":  # a short write: part of the bytes land, then ENOSPC
                run()
                with open(path, "r+b") as f:
                    f.truncate(path.stat().st_size // 2)
                raise OSError(errno.ENOSPC, "No space left on device (injected)", str(path))
            raise OSError(errno.EIO, "Input/output error (injected)", str(path))
        run()
        raise KeyboardInterrupt

    def write(self, path: Path, writer: Callable[[Path], None]) -> None:
        self._call("write", lambda: writer(path), path)

    def fsync(self, path: Path) -> None:
        self._call("fsync", lambda: super(FaultyOps, self).fsync(path), path)

    def replace(self, src: Path, dst: Path) -> None:
        def run() -> None:
            super(FaultyOps, self).replace(src, dst)
            if MANIFEST_RE.match(dst.name):
                self.manifest_renamed = True

        self._call("replace", run, dst)

    def fsync_dir(self, path: Path) -> None:
        self._call("fsync_dir", lambda: super(FaultyOps, self).fsync_dir(path), path)


def _vecs(ids: list[str], version: int = 0) -> np.ndarray:
    out = np.empty((len(ids), DIM), np.float32)
    for i, id_ in enumerate(ids):
        out[i] = np.random.default_rng(abs(hash((id_, version))) % 2**32).normal(size=DIM)
    return out


def _frame(ids: list[str], label: str) -> pl.DataFrame:
    return pl.DataFrame({"id": ids, "label": [label] * len(ids), "n": list(range(len(ids)))})


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three segments, one with tombstones, one with a metadata-only update."""
    path = tmp_path_factory.mktemp("faults") / "template"
    with wb.Store.create(path, dim=DIM, dtype="f16", exact_threshold=16) as st:
        for b in range(3):
            ids = [f"b{b}-{i}" for i in range(40)]
            st.add(_frame(ids, f"batch{b}"), vectors=_vecs(ids), progress=False)
        st.delete(["b0-0", "b0-1", "b1-5"])
        st.update({"id": ["b2-0", "b2-1"], "label": ["edited", "edited"]})
    return path


def _upsert_ids() -> list[str]:
    return [f"b1-{i}" for i in range(10, 30)] + [f"new-{i}" for i in range(5)]


OPERATIONS: dict[str, Callable[[wb.Store], object]] = {
    "add": lambda st: st.add(_frame([f"a-{i}" for i in range(30)], "added"),
                             vectors=_vecs([f"a-{i}" for i in range(30)]), progress=False),
    "upsert": lambda st: st.upsert(_frame(_upsert_ids(), "upserted"),
                                   vectors=_vecs(_upsert_ids(), 1), progress=False),
    "update": lambda st: st.update({"id": ["b0-5", "b1-6", "b2-7"], "label": ["u"] * 3,
                                    "score": [0.5, 1.5, 2.5]}),
    "delete": lambda st: st.delete(["b0-9", "b1-9", "b2-9", "b2-10"]),
    "compact": lambda st: st.compact(progress=False),
    "transaction": lambda st: _transaction(st),
}


def _transaction(st: wb.Store) -> None:
    with st.transaction():
        ids = [f"t-{i}" for i in range(12)]
        st.add(_frame(ids, "txn"), vectors=_vecs(ids), progress=False)
        st.delete(["b0-3", "t-0"])
        st.update({"id": ["b1-3", "t-1"], "label": ["txn-edit", "txn-edit"]})


def content(st: wb.Store) -> dict[str, tuple[bytes, str, object]]:
    """Every live row: id -> (vector bytes, label, score if present), read in one snapshot."""
    meta, vecs = st.fetch()
    scores = meta.get_column("score").to_list() if "score" in meta.columns else [None] * len(meta)
    return {i: (v.tobytes(), lab, sc) for i, v, lab, sc in
            zip(meta["id"].to_list(), vecs, meta["label"].to_list(), scores, strict=True)}


def _assert_no_garbage(path: Path) -> None:
    referenced: set[str] = set()
    for g in list_generations(path):
        referenced |= read_manifest(manifest_path(path, g)).referenced()
    assert set(p.name for p in (path / "segments").iterdir()) == referenced
    assert not [p for p in path.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("op", list(OPERATIONS))
def test_every_failure_point_leaves_the_last_commit(
    op: str, template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = OPERATIONS[op]
    with wb.Store.open(template, readonly=True) as st:
        before = content(st)
    ref = tmp_path / "ref"
    shutil.copytree(template, ref)
    with wb.Store.open(ref) as st:
        run(st)
        after = content(st)
    assert (after != before) != (op == "compact")  # compaction changes files, not rows
    cases = 0
    for point in POINTS:
        for mode in MODES:
            n = 1
            while True:
                path = tmp_path / f"{point}-{mode}-{n}"
                shutil.copytree(template, path)
                st = wb.Store.open(path)
                gen0 = st.generation
                faulty = FaultyOps(point, n, mode)
                monkeypatch.setattr(_atomic, "OPS", faulty)
                raised: BaseException | None = None
                try:
                    run(st)
                except (StoreWriteError, KeyboardInterrupt) as exc:
                    raised = exc
                finally:
                    monkeypatch.setattr(_atomic, "OPS", _atomic.FileOps())
                where = f"{op}: {mode} at {point} #{n}"
                if not faulty.fired:  # past the last call of that kind: the op got through
                    assert raised is None, where
                    assert content(st) == after, where
                    st.close()
                    break
                cases += 1
                assert raised is not None, f"{where}: the fault did not surface"
                committed = faulty.manifest_renamed
                if isinstance(raised, StoreWriteError):
                    assert raised.committed == committed, where
                    assert raised.path is not None and str(raised.path) in str(raised), where
                    assert isinstance(raised.__cause__, OSError), where
                expect = after if committed else before
                assert st.generation == gen0 + int(committed), where
                assert content(st) == expect, f"{where}: the handle"
                with wb.Store.open(path, readonly=True) as reader:
                    assert content(reader) == expect, f"{where}: a new reader"
                if not committed:  # the failed handle is clean: the same call now succeeds
                    run(st)
                    assert content(st) == after, f"{where}: retry on the same handle"
                st.close()
                with wb.Store.open(path) as reopened:  # verifies checksums, collects garbage
                    assert content(reopened) == after, f"{where}: reopened"
                _assert_no_garbage(path)
                shutil.rmtree(path)
                n += 1
    assert cases >= 30, cases


def test_failed_upsert_inside_a_transaction_leaves_no_trace(
    template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defect 3: the caught failure of one write must not commit half of it."""
    path = tmp_path / "s"
    shutil.copytree(template, path)
    existing = [f"b1-{i}" for i in range(10, 40)]
    with wb.Store.open(path) as st:
        before = content(st)
        with st.transaction():
            # the tombstones for the 30 replaced rows are written first; the segment fails
            monkeypatch.setattr(_atomic, "OPS", FaultyOps("write", 2, "error"))
            with pytest.raises(StoreWriteError, match="No space left"):
                st.upsert(_frame(existing, "x"), vectors=_vecs(existing, 2), progress=False)
            monkeypatch.setattr(_atomic, "OPS", _atomic.FileOps())
            assert content(st) == before  # inside the transaction, nothing of it is staged
            st.delete(["b2-3"])
        after = content(st)
    expected = dict(before)
    del expected["b2-3"]
    assert after == expected
    with wb.Store.open(path) as st:
        assert content(st) == expected
        assert set(existing) <= set(st.scan().collect()["id"])
    _assert_no_garbage(path)


def test_nested_transaction_is_a_savepoint(template: Path, tmp_path: Path) -> None:
    path = tmp_path / "s"
    shutil.copytree(template, path)
    with wb.Store.open(path) as st:
        before = content(st)
        gen = st.generation
        with st.transaction():
            st.delete(["b0-4"])
            with pytest.raises(RuntimeError, match="user"), st.transaction():
                st.delete(["b0-5"])
                raise RuntimeError("user code failed")
        assert st.generation == gen + 1
        got = content(st)
    assert set(before) - set(got) == {"b0-4"}
    _assert_no_garbage(path)


def test_interrupt_after_the_commit_point_keeps_the_commit(
    template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defect 2: Ctrl-C (or EIO) after the manifest rename must not delete committed files."""
    for mode, expected_exc in (("interrupt_after", KeyboardInterrupt), ("error", StoreWriteError)):
        path = tmp_path / mode
        shutil.copytree(template, path)
        with wb.Store.open(path) as st:
            # the manifest is the last file renamed, so its folder fsync is the last one
            probe = FaultyOps("fsync_dir", 10**6, mode)
            monkeypatch.setattr(_atomic, "OPS", probe)
            st.delete(["b0-7"])
            faulty = FaultyOps("fsync_dir", probe.calls, mode)
            monkeypatch.setattr(_atomic, "OPS", faulty)
            with pytest.raises(expected_exc):
                st.delete(["b0-8"])
            monkeypatch.setattr(_atomic, "OPS", _atomic.FileOps())
            assert faulty.fired and faulty.manifest_renamed
            assert "b0-8" not in content(st)
        with wb.Store.open(path) as st:
            ids = set(content(st))
        assert not {"b0-7", "b0-8"} & ids
