"""One local Ray cluster for the whole test session (started once: ~5 s per start), stopped at
the end; every test here has a timeout (see pytestmark in each module)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator

import pytest

for _k, _v in {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled",
               "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}.items():
    os.environ.setdefault(_k, _v)

ray = pytest.importorskip("ray")

#: Ray tests' own time limit (seconds), applied per module with pytest.mark.timeout.
RAY_TIMEOUT = 240


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped) is gone for our purposes
    state = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True,
                           text=True).stdout.strip()
    return bool(state) and not state.startswith("Z")


def _session_pids() -> dict[str, list[int]]:
    """Processes of the cluster this process started (other sessions' clusters not counted)."""
    node = ray._private.worker._global_node
    if node is None:
        return {}
    return {kind: [p.process.pid for p in procs if p.process is not None]
            for kind, procs in node.all_processes.items()}


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[dict]:
    """The session's local cluster: 2 CPUs, small object store, no dashboard, loopback."""
    import workbench.distributed as wd

    info = wd.connect(num_cpus=2)
    pids = _session_pids()
    yield info
    ray.shutdown()
    deadline = time.monotonic() + 10
    left = pids
    while left and time.monotonic() < deadline:
        left = {k: [p for p in v if _alive(p)] for k, v in pids.items()}
        left = {k: v for k, v in left.items() if v}
        time.sleep(0.2)
    assert not left, f"Ray processes left behind: {left}"


@pytest.fixture
def ray_ok(ray_cluster: dict) -> dict:
    """The session cluster, checked alive before each test."""
    assert ray.is_initialized()
    return ray_cluster
