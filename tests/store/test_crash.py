"""Crash safety: SIGKILL a committing child at random moments; every open sees a whole commit."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import workbench as wb
from tests.store import crash_child
from workbench.store.manifest import list_generations, manifest_path, read_manifest

KILLS = int(os.environ.get("WORKBENCH_CRASH_KILLS", "60"))


def _run_until_killed(path: Path, target: str, rng: random.Random) -> tuple[int | None, int | None]:
    """Start the child, kill it during an operation of kind `target`; return (done, inflight)."""
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.store.crash_child", str(path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=root,
    )
    assert proc.stdout is not None
    last_done: int | None = None
    inflight: int | None = None
    skip = rng.randint(0, 2)  # let a few operations of that kind finish first
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            _, err = proc.communicate(timeout=30)
            raise AssertionError(f"child exited early: {err}")
        parts = line.split()
        if parts[0] == "begin":
            inflight = int(parts[1])
            if parts[2] == target and skip:
                skip -= 1
            elif parts[2] == target:
                # land anywhere inside the commit, or just after it
                time.sleep(rng.uniform(0, 0.03 if target == "add" else 0.08))
                break
        elif parts[0] == "done":
            last_done, inflight = int(parts[1]), None
    os.kill(proc.pid, signal.SIGKILL)
    # Read the rest through the same buffered reader: readline() may already hold lines the
    # child wrote before the kill (communicate() would read the pipe past them and lose them).
    out = proc.stdout.read()
    proc.wait(timeout=30)
    proc.stdout.close()
    if proc.stderr is not None:
        proc.stderr.close()
    for line in out.splitlines():
        parts = line.split()
        if parts[0] == "begin":
            inflight = int(parts[1])
        elif parts[0] == "done":
            last_done, inflight = int(parts[1]), None
    return last_done, inflight


def test_sigkill_during_commits_and_compactions(tmp_path: Path) -> None:
    path = tmp_path / "crash"
    rng = random.Random(1234)
    committed = -1  # last step whose call returned
    landed_in = {"add": 0, "compact": 0}
    kill = -1
    # At least KILLS kills; more (bounded) if timing let too few land inside an operation.
    while kill + 1 < KILLS or (
        kill + 1 < 3 * KILLS and (landed_in["add"] < 10 or landed_in["compact"] < 5)
    ):
        kill += 1
        target = "compact" if kill % 3 == 2 else "add"
        done, inflight = _run_until_killed(path, target, rng)
        if done is not None:
            committed = max(committed, done)
        if inflight is not None:
            landed_in["compact" if crash_child.is_compaction(inflight) else "add"] += 1
        with wb.Store.open(path) as store:  # writer open: verifies checksums, collects garbage
            ids = set(store.scan().collect()["id"])
            assert len(store) == len(ids)
        allowed = [crash_child.expected_ids(committed)]
        if inflight is not None and inflight == committed + 1:
            allowed.append(crash_child.expected_ids(inflight))
        assert ids in allowed, (
            f"kill {kill}: torn or lost commit (committed={committed}, inflight={inflight}, "
            f"done={done}): missing {sorted(allowed[0] - ids)[:10]}, "
            f"extra {sorted(ids - allowed[-1])[:10]}"
        )
        if ids != allowed[0]:
            committed = inflight  # the in-flight commit had landed before the kill
        # garbage from the killed commit is gone; every kept manifest is intact
        gens = list_generations(path)
        referenced = set()
        for g in gens:
            referenced |= read_manifest(manifest_path(path, g)).referenced()
        assert set(os.listdir(path / "segments")) == referenced
    assert committed > 20
    assert landed_in["add"] >= 10 and landed_in["compact"] >= 5, landed_in


@pytest.mark.parametrize("step", [0, 3, 6, 7])
def test_expected_ids_model(step: int) -> None:
    ids = crash_child.expected_ids(step)
    adds = crash_child.add_steps(step)
    assert len(ids) == len(adds) * crash_child.ROWS - (len(adds) - 1)
