"""Execute the project's notebooks (thin tours) and save executed copies as HTML."""

from __future__ import annotations

import time
from pathlib import Path

import polars as pl
from tqdm.auto import tqdm

from .errors import MissingDependencyError


def run_notebooks(folder: str | Path, out: str | Path, *, timeout: int = 900) -> pl.DataFrame:
    """Execute every ``*.ipynb`` in `folder` in order; write executed HTML copies to `out`.

    Returns
    -------
    polars.DataFrame
        ``notebook: str, seconds: f64, output: str``.

    Raises
    ------
    MissingDependencyError
        nbclient/nbformat are not installed.
    """
    try:
        import nbformat
        from nbclient import NotebookClient
    except ImportError as exc:
        raise MissingDependencyError(
            "running notebooks needs nbclient and nbformat: pip install nbclient"
        ) from exc
    src, dst = Path(folder), Path(out)
    dst.mkdir(parents=True, exist_ok=True)
    rows = []
    for nb_path in tqdm(sorted(src.glob("*.ipynb")), desc="notebooks", unit="nb"):
        nb = nbformat.read(nb_path, as_version=4)
        t0 = time.perf_counter()
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(src.resolve())}}).execute()
        seconds = time.perf_counter() - t0
        target = dst / nb_path.name
        nbformat.write(nb, target)
        try:
            from nbconvert import HTMLExporter

            body, _ = HTMLExporter().from_notebook_node(nb)
            target = target.with_suffix(".html")
            target.write_text(body, encoding="utf-8")
        except ImportError:
            pass
        rows.append({"notebook": nb_path.name, "seconds": round(seconds, 1),
                     "output": str(target)})
    return pl.DataFrame(rows, schema={"notebook": pl.Utf8, "seconds": pl.Float64,
                                      "output": pl.Utf8})
