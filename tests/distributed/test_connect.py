from __future__ import annotations

import subprocess
import sys

import pytest

from workbench.errors import InvalidInputError, WorkbenchError

from .conftest import RAY_TIMEOUT

pytestmark = pytest.mark.timeout(RAY_TIMEOUT)


def test_connect_is_idempotent_and_local(ray_ok: dict) -> None:
    import workbench.distributed as wd

    again = wd.connect()
    assert again["address"] == ray_ok["address"]
    assert again["address"].startswith("127.0.0.1:")
    assert again["cpus"] == 2 and again["nodes"] == 1


def test_bad_num_cpus_is_named() -> None:
    import workbench.distributed as wd

    with pytest.raises(InvalidInputError, match="num_cpus"):
        wd.connect(num_cpus=0)
    assert issubclass(wd.DistributedError, WorkbenchError)


def test_import_workbench_does_not_load_ray() -> None:
    code = ("import sys, workbench, workbench.analysis, workbench.store.view; "
            "print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False"
