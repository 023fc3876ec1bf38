"""torch and onnxruntime are loaded before usearch (workbench._preload), in fresh interpreters."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

# torch's schema of aten::slice: with usearch's static libstdc++ loaded first it is cut off
# after "int dim=" (numbers are formatted through the wrong locale facets).
SLICE = ("aten::slice.Tensor(Tensor(a) self, int dim=0, SymInt? start=None, SymInt? end=None, "
         "SymInt step=1) -> Tensor(a)")


def _run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


def test_import_workbench_loads_torch_before_usearch() -> None:
    out = _run(
        "import sys, workbench\n"
        "workbench.Store  # loads the store, and usearch with it\n"
        "import torch\n"
        "mods = list(sys.modules)\n"
        "print(mods.index('torch') < mods.index('usearch.compiled'))\n"
        "print(torch.ops.aten.slice.Tensor._schema)\n"
        # an error message with numbers in it, formatted by c10
        "try:\n    torch.zeros(2, 3) @ torch.zeros(4, 5)\n"
        "except RuntimeError as e:\n    print(e)\n"
    )
    first, schema, error = out.splitlines()
    assert first == "True"
    assert schema == SLICE
    assert "2x3" in error and "4x5" in error


needs_onnxruntime = pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None,
                                       reason="needs onnxruntime")


@needs_onnxruntime
def test_onnxruntime_loaded_before_usearch() -> None:
    out = _run(
        "import sys, workbench\n"
        "workbench.Store\n"
        "from workbench.compress.quantize import _onnxruntime_loaded_before_usearch as ok\n"
        "print(ok())\n"
    )
    assert out == "True"


@needs_onnxruntime
def test_too_late_is_said_not_hidden() -> None:
    # usearch imported by the user before workbench: preload does nothing (it would be too
    # late), and onnx-int8 refuses with the fix named instead of failing inside ONNX Runtime.
    out = _run(
        "import usearch.index\n"
        "import workbench\n"
        "from workbench._preload import preload\n"
        "from workbench.compress.quantize import quantize_model, UnsupportedSchemeError\n"
        "print(preload())\n"
        "try:\n"
        "    quantize_model(workbench.embed.MiniLM(cache=False), 'onnx-int8')\n"
        "except UnsupportedSchemeError as e:\n"
        "    print('refused:', e)\n"
    )
    first, refused = out.splitlines()[0], out.splitlines()[-1]
    assert first == "[]"
    assert refused.startswith("refused:") and "import onnxruntime" in refused
