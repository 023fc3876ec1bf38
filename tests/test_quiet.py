"""What a newcomer sees: importing workbench, embedding with MiniLM and a CLI job print nothing
on stderr but progress bars (no torchao, torch or polars warnings)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

# One tqdm refresh: "desc:  50%|#####     | 1/2 [00:01<00:01,  1.00row/s]"
BAR = re.compile(r"^[^|]*\d+%\|.*\| *[\d.,]+[kM]?/[\d.,?]+[kM]? \[.*\]$"  # with a total
                 r"|^[^|]*: *[\d.,]+[kM]? ?[\w/]* \[.*\]$")  # without one


def _noise(stderr: str) -> list[str]:
    """The stderr lines that are not a progress bar's refresh."""
    parts = (p.strip() for p in re.split(r"[\r\n]+", stderr))
    return [p for p in parts if p and not BAR.match(p)]


def _run(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "WORKBENCH_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("PYTHONWARNINGS", None)
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env,
                          timeout=300, check=False, cwd=tmp_path)


def test_the_bar_pattern_tells_bars_from_noise() -> None:
    stderr = ("\rembedding:   0%|          | 0/2 [00:00<?, ?row/s]"
              "\rembedding: 100%|##########| 2/2 [00:05<00:00,  2.64s/row]\n"
              "Failed to load /x/torchao/_C_mxfp8.so\n")
    assert _noise(stderr) == ["Failed to load /x/torchao/_C_mxfp8.so"]


def test_import_and_embed_with_minilm_are_silent(tmp_path: Path) -> None:
    done = _run(["-c", "import sys, workbench as wb\n"
                       "v = wb.embed.MiniLM(cache=False).embed(['a cat', 'a dog'])\n"
                       "print(v.shape, 'torchao' in sys.modules)"], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["(2,", "384)", "False"]
    assert _noise(done.stderr) == []


def test_a_cli_job_prints_only_progress_on_stderr(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("id,text,date\n1,a cat on a mat,2025-01-02\n"
                                    "2,a dog in the fog,2025-02-03\n", encoding="utf-8")
    done = _run(["-m", "workbench.cli", "ingest", "--store", "st", "--input", "a.csv",
                 "--text", "text"], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "added 2 rows" in done.stdout
    assert _noise(done.stderr) == []
    done = _run(["-m", "workbench.cli", "search", "--store", "st", "a kitten", "-k", "1"],
                tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert _noise(done.stderr) == []


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))


def test_running_notebooks_is_silent(tmp_path: Path) -> None:
    # make demo runs the notebooks: no "Kernel is running over TCP without encryption", no
    # kernel left to say "Parent appears to have exited" when the command ends
    import nbformat

    nbs = tmp_path / "nbs"
    nbs.mkdir()
    for name in ("a", "b"):
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell("print(6 * 7)")]
        nbformat.write(nb, nbs / f"{name}.ipynb")
    done = _run(["-c", "from workbench.notebooks import run_notebooks\n"
                       f"print(run_notebooks({str(nbs)!r}, {str(tmp_path / 'out')!r}).height)"],
                tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-1] == "2"
    assert _noise(done.stderr) == []


def test_the_compression_lab_loads_torchao_quietly(tmp_path: Path) -> None:
    # a torchao scheme imports torchao, whose import warns about its own CUDA build
    done = _run(["-c", "import logging, sys\n"
                       "import workbench.compress.quantize\n"
                       "import torchao\n"
                       "logging.getLogger('torchao').warning('kept: other warnings pass')\n"
                       "print('torchao' in sys.modules)"], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["True"]
    assert _noise(done.stderr) == ["kept: other warnings pass"]
