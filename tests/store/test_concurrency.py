"""Readers never fail while a writer commits: other processes, and threads of one process.

Every observation a reader makes must be some committed generation exactly (its ids), and
every search must agree with the snapshot it ran on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import polars as pl

import workbench as wb
from tests.helpers import clustered
from tests.store.reader_child import check, ids_crc

ROOT = Path(__file__).resolve().parents[2]
DIM = 64


def _log(store: wb.Store, log: dict[int, int]) -> None:
    log[store.generation] = ids_crc(store.scan().collect()["id"].to_list())


def _writer_schedule(store: wb.Store, log: dict[int, int], steps: int) -> None:
    """Small deletes (the issue's reproduction), with adds and compactions among them."""
    x = clustered(steps * 4 + 10, DIM, seed=99)
    live = store.scan().select("id").collect()["id"].to_list()
    victims = iter([live[(i * 37) % len(live)] for i in range(len(live))])
    for step in range(steps):
        if step % 60 == 59:
            store.compact(progress=False)
        elif step % 15 == 14:
            ids = [f"w{step}-{j}" for j in range(4)]
            store.add({"id": ids}, vectors=x[step * 4:step * 4 + 4], progress=False)
        else:
            store.delete([next(victims)])
        _log(store, log)


def test_reader_processes_never_fail_while_a_writer_commits(tmp_path: Path) -> None:
    path = tmp_path / "s"
    store = wb.Store.create(path, dim=DIM, exact_threshold=32)
    # several segments: an open then loads long enough for commits to land meanwhile
    for s in range(6):
        store.add({"id": [f"r{s}-{i}" for i in range(1000)]},
                  vectors=clustered(1000, DIM, seed=20 + s), progress=False)
    log: dict[int, int] = {}
    _log(store, log)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    readers = [subprocess.Popen([sys.executable, "-m", "tests.store.reader_child", str(path)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env, cwd=ROOT) for _ in range(2)]
    try:
        for r in readers:
            assert r.stdout is not None
            assert json.loads(r.stdout.readline()) == {"ready": True}
        time.sleep(1.0)  # let the readers start a few loops before the commits begin
        _writer_schedule(store, log, steps=200)
        time.sleep(0.5)
    finally:
        Path(str(path) + ".stop").touch()
        outs = [r.communicate(timeout=120) for r in readers]
        store.close()
    errors, seen = [], []
    for out, err in outs:
        assert "Traceback" not in err, err
        for line in out.splitlines():
            rec = json.loads(line)
            if "error" in rec:
                errors.append(rec["error"] + "\n" + rec["trace"])
            elif "gen" in rec:
                seen.append((rec["gen"], rec["ids"]))
    assert not errors, f"{len(errors)} reader errors, first: {errors[0]}"
    gens = {g for g, _ in seen}
    assert len(seen) > 50 and len(gens) > 10, (len(seen), len(gens))
    wrong = [(g, c) for g, c in seen if log.get(g) != c]
    assert not wrong, f"observations matching no committed generation: {wrong[:5]}"


def _vec(id_: str, version: int) -> np.ndarray:
    seed = int.from_bytes(f"{id_}/{version}".encode()[-8:].rjust(8, b"\0"), "little")
    return np.random.default_rng(seed).normal(size=DIM).astype(np.float32)


def test_threads_share_one_handle_while_it_commits(tmp_path: Path) -> None:
    """Defect 4: 4 threads search (and 1 opens readers) while the handle adds and upserts."""
    path = tmp_path / "s"
    store = wb.Store.create(path, dim=DIM, dtype="f32", exact_threshold=64)
    ids = [f"i{j}" for j in range(400)]
    store.add({"id": ids, "version": [0] * 400}, vectors=np.stack([_vec(i, 0) for i in ids]),
              progress=False)
    stop = threading.Event()
    errors: list[str] = []
    searches = [0]
    log: dict[int, int] = {}
    _log(store, log)
    seen: list[tuple[int, int]] = []

    def searcher(seed: int) -> None:
        rng = np.random.default_rng(seed)
        while not stop.is_set():
            try:
                q = rng.normal(size=(8, DIM)).astype(np.float32)
                res = store.search(q, k=10)
                for qi, rid, dist, ver in res.select("query", "id", "distance",
                                                      "version").iter_rows():
                    v = _vec(rid, ver)
                    a = q[qi]
                    true = 1.0 - float(a @ v / (np.linalg.norm(a) * np.linalg.norm(v)))
                    if abs(true - dist) > 1e-4:
                        raise AssertionError(f"{rid!r} v{ver} reported at {dist:.4f}, "
                                             f"its vector is at {true:.4f}")
                if res.group_by("query").agg(pl.col("id").n_unique() == pl.len()).select(
                        pl.all().exclude("query")).to_series().not_().any():
                    raise AssertionError("an id appears twice in one query's results")
                meta, vecs = store.fetch()
                for rid, ver, vec in zip(meta["id"].to_list()[:20], meta["version"].to_list(),
                                         vecs, strict=False):
                    np.testing.assert_array_equal(vec, _vec(rid, ver))
                searches[0] += 1
            except Exception as exc:  # every error counts: the test expects none
                errors.append(f"{type(exc).__name__}: {exc}")

    def opener() -> None:
        while not stop.is_set():
            try:
                with wb.Store.open(path, readonly=True) as r:
                    seen.append((r.generation, ids_crc(r.scan().collect()["id"].to_list())))
                    check(r)
            except Exception as exc:
                errors.append(f"reader open: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=searcher, args=(s,)) for s in range(4)]
    threads.append(threading.Thread(target=opener))
    for t in threads:
        t.start()
    try:
        rng = np.random.default_rng(5)
        version = 0
        for step in range(60):
            if step % 3 == 0:
                new = [f"n{step}-{j}" for j in range(20)]
                store.add({"id": new, "version": [0] * 20},
                          vectors=np.stack([_vec(i, 0) for i in new]), progress=False)
            elif step % 3 == 1:
                version += 1
                up = [f"i{j}" for j in rng.choice(400, size=30, replace=False)]
                store.upsert({"id": up, "version": [version] * 30},
                             vectors=np.stack([_vec(i, version) for i in up]), progress=False)
            else:
                live = store.scan().select("id").collect()["id"].to_list()
                store.delete(live[step: step + 5])
            _log(store, log)
            if step % 20 == 19:
                store.compact(progress=False)
                _log(store, log)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
        store.close()
    assert not errors, f"{len(errors)} errors, first: {errors[:3]}"
    assert searches[0] > 20
    wrong = [(g, c, log.get(g)) for g, c in seen if log.get(g) != c]
    assert seen and not wrong, f"reader snapshots matching no commit: {wrong[:5]}"


def test_writes_from_two_threads_take_turns(tmp_path: Path) -> None:
    x = clustered(400, DIM, seed=8)
    with wb.Store.create(tmp_path / "s", dim=DIM) as store:
        def worker(t: int) -> None:
            for b in range(10):
                ids = [f"t{t}-{b}-{j}" for j in range(10)]
                i = (t * 10 + b) * 10
                with store.transaction():
                    store.add({"id": ids}, vectors=x[i:i + 10], progress=False)
                    store.delete(ids[:2])

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(store) == 2 * 10 * 8
        assert store.generation == 20  # one commit per transaction, from generation 0
