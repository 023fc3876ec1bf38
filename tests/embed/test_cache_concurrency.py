"""EmbeddingCache shared by several processes at once (several Jupyter kernels on one cache).

Child processes open the cache in the same fresh folder at the same moment, so the ``__init__``
(switch to WAL, ``CREATE TABLE``) races, then write overlapping texts in many small batches
interleaved with reads. The opening race is lost only now and then (SQLite answers "database
is locked" without waiting when two connections switch a new file to WAL together: in 0-28 % of
3-process opens, measured over runs of 50-100, varying with load), so it is run on 20 fresh
folders per test; without the retry in ``EmbeddingCache`` this test failed 8 times in 10.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

import workbench as wb
from workbench.embed.cache import EmbeddingCache

REPO = Path(__file__).resolve().parents[2]
MODEL = "toy-model"
DIM = 8
N_PROCS = 3
ROUNDS = 20  # fresh folders opened together; the last one gets the heavy write load
N_OWN, N_SHARED = 300, 150  # last round: texts one process writes / all processes write
N_OWN_LIGHT, N_SHARED_LIGHT = 12, 12  # the earlier rounds
BATCH = 6


def _vector(text: str) -> NDArray[np.float32]:
    """Deterministic vector of `text`, so processes writing the same text write the same bytes."""
    seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
    return np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)


def _sizes(rnd: int) -> tuple[int, int]:
    return (N_OWN, N_SHARED) if rnd == ROUNDS - 1 else (N_OWN_LIGHT, N_SHARED_LIGHT)


def _own_texts(worker: int, rnd: int) -> list[str]:
    return [f"worker {worker} text {i}" for i in range(_sizes(rnd)[0])]


def _shared_texts(rnd: int) -> list[str]:
    return [f"shared text {i}" for i in range(_sizes(rnd)[1])]


def _wait_for(path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():  # busy-wait: the children leave it within ~1 ms of each other
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {path.name}")
        time.sleep(0.0005)


def _worker(tmp: str, worker: int) -> None:
    """Body of one child process: per round, wait for the start signal, open, write and read."""
    # A warning from the cache (a put skipped on a lock it could not get, the file bypassed)
    # fails the child instead of passing quietly. Set here, after the imports, so that import
    # noise from third-party packages does not count.
    warnings.simplefilter("error")
    rng = np.random.default_rng(worker)
    for rnd in range(ROUNDS):
        (Path(tmp) / f"ready{rnd}-{worker}").touch()
        _wait_for(Path(tmp) / f"go{rnd}")
        cache = EmbeddingCache(Path(tmp) / f"cache{rnd}")
        texts = _own_texts(worker, rnd) + _shared_texts(rnd)
        texts = [texts[i] for i in rng.permutation(len(texts))]
        written: list[str] = []
        for start in range(0, len(texts), BATCH):
            batch = texts[start : start + BATCH]
            cache.put(MODEL, batch, np.stack([_vector(t) for t in batch]))
            written.extend(batch)
            # Read back some of what this process wrote so far (must be there), a text of
            # another process (may or may not be there yet) and one nobody writes.
            probe = [written[i] for i in rng.choice(len(written), size=min(10, len(written)))]
            probe += [f"worker {(worker + 1) % N_PROCS} text {start}", "never written"]
            found = cache.get(MODEL, probe)
            for i, text in enumerate(probe[:-2]):
                assert i in found, f"worker {worker}: own text {text!r} missing after put"
            for i, vec in found.items():
                assert np.array_equal(vec, _vector(probe[i])), f"worker {worker}: wrong vector"
            assert len(probe) - 1 not in found
        cache.close()


def test_processes_open_and_write_one_cache_at_once(tmp_path: Path) -> None:
    pythonpath = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": pythonpath}
    procs = []
    for worker in range(N_PROCS):
        code = (
            "from tests.embed.test_cache_concurrency import _worker; "
            f"_worker({str(tmp_path)!r}, {worker})"
        )
        procs.append(subprocess.Popen(
            [sys.executable, "-c", code], cwd=REPO, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ))
    try:
        for rnd in range(ROUNDS):
            deadline = time.monotonic() + 60
            # Each folder is new: every child creates it and the database file.
            while not all((tmp_path / f"ready{rnd}-{w}").exists() for w in range(N_PROCS)):
                if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
                    break  # a child died (its traceback is reported below) or hangs
                time.sleep(0.002)
            (tmp_path / f"go{rnd}").touch()
        failures = []
        for worker, proc in enumerate(procs):
            _, err = proc.communicate(timeout=60)
            if proc.returncode != 0:
                failures.append(f"worker {worker} exited {proc.returncode}:\n{err}")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert not failures, "\n".join(failures)

    for rnd in range(ROUNDS):
        texts = [t for w in range(N_PROCS) for t in _own_texts(w, rnd)] + _shared_texts(rnd)
        cache = EmbeddingCache(tmp_path / f"cache{rnd}")
        try:
            found = cache.get(MODEL, texts)
            missing = [t for i, t in enumerate(texts) if i not in found]
            assert not missing, f"round {rnd}: {len(missing)} texts missing, e.g. {missing[:3]}"
            wrong = [t for i, t in enumerate(texts) if not np.array_equal(found[i], _vector(t))]
            assert not wrong, f"round {rnd}: {len(wrong)} wrong vectors, e.g. {wrong[:3]}"
            assert len(cache) == len(set(texts)) == N_PROCS * _sizes(rnd)[0] + _sizes(rnd)[1]
        finally:
            cache.close()


def test_damaged_cache_file_warns_and_is_bypassed(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    folder.mkdir()
    (folder / "embeddings.sqlite").write_bytes(b"not a database " * 100)
    with pytest.warns(RuntimeWarning, match=r"embeddings\.sqlite cannot be used") as rec:
        cache = EmbeddingCache(folder)
    assert str(folder / "embeddings.sqlite") in str(rec[0].message)
    assert cache.get(MODEL, ["a"]) == {}
    cache.put(MODEL, ["a"], np.ones((1, DIM), dtype=np.float32))  # stores nothing, no error
    assert len(cache) == 0
    cache.close()

    # Embedding goes on without the cache, and gives the same vectors as with no cache at all.
    def fn(texts: list[str]) -> NDArray[np.float32]:
        return np.stack([_vector(t) for t in texts])

    emb = wb.embed.FromCallable(fn, name="toy", dim=DIM, cache=folder)
    with pytest.warns(RuntimeWarning, match="embedding continues without the cache"):
        out = emb.embed(["a", "b", "a"], progress=False)
    np.testing.assert_array_equal(out, fn(["a", "b", "a"]))
    assert emb.calls == 2


def test_cache_damaged_after_opening_warns_once_and_is_bypassed(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path)
    texts = [f"text {i}" for i in range(2000)]  # enough rows for several pages past the header
    cache.put(MODEL, texts, np.stack([_vector(t) for t in texts]))
    cache.close()
    data = bytearray(cache.path.read_bytes())
    page = 4096
    data[page : len(data)] = b"\xff" * (len(data) - page)  # every page but the first: garbage
    cache.path.write_bytes(bytes(data))
    for extra in ("-wal", "-shm"):
        Path(str(cache.path) + extra).unlink(missing_ok=True)

    cache = EmbeddingCache(tmp_path)  # the header and schema page are intact: opens fine
    with pytest.warns(RuntimeWarning, match="cannot be used") as rec:
        assert cache.get(MODEL, texts[:5]) == {}
    assert len(rec) == 1 and str(cache.path) in str(rec[0].message)
    assert cache.get(MODEL, texts[:5]) == {}  # bypassed from now on, without more warnings
    cache.close()


def test_use_after_close_still_raises(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path)
    cache.close()
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        cache.get(MODEL, ["a"])
