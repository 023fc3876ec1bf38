from __future__ import annotations

import os
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_notebooks_are_committed_without_outputs() -> None:
    import nbformat

    assert NOTEBOOKS
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, path.name


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path: Path, tmp_path: Path) -> None:
    """Headless (nbclient) run, where no browser can run them in JupyterLab: with one,
    tests/browser/test_notebooks_browser.py runs each there (errors and widget views)."""
    from tests.browser.harness import browser_missing_reason

    if browser_missing_reason() is None and not os.environ.get("WORKBENCH_NBCLIENT"):
        pytest.skip("run in the real browser by tests/browser/test_notebooks_browser.py "
                    "(WORKBENCH_NBCLIENT=1 runs it here too)")
    import nbformat

    from workbench.notebooks import execute

    nb = nbformat.read(path, as_version=4)
    execute(nb, path=tmp_path, timeout=600)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors
