"""One local Ray cluster for the whole test session (started once: ~5 s per start), stopped at
the end; every test here has a timeout (see pytestmark in each module)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

for _k, _v in {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled",
               "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}.items():
    os.environ.setdefault(_k, _v)

ray = pytest.importorskip("ray")

#: Ray tests' own time limit (seconds), applied per module with pytest.mark.timeout.
RAY_TIMEOUT = 240


def _ray_processes() -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,comm"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines()
            if line.split()[-1:] and line.split()[-1] in ("raylet", "gcs_server")]


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[dict]:
    """The session's local cluster: 2 CPUs, small object store, no dashboard, loopback."""
    import workbench.distributed as wd

    before = _ray_processes()
    info = wd.connect(num_cpus=2)
    yield info
    ray.shutdown()
    left = [p for p in _ray_processes() if p not in before]
    assert not left, f"Ray processes left behind: {left}"


@pytest.fixture
def ray_ok(ray_cluster: dict) -> dict:
    """The session cluster, checked alive before each test."""
    assert ray.is_initialized()
    return ray_cluster
