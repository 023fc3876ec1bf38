"""Execute the project's notebooks (thin tours) and save executed copies as HTML."""

from __future__ import annotations

import base64
import copy
import html
import re
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl
from tqdm.auto import tqdm

from .errors import MissingDependencyError


def execute(nb: Any, *, path: str | Path, timeout: int = 900) -> Any:
    """Run a notebook in place in a fresh ``python3`` kernel, talking to it over IPC.

    Unix sockets in a private temporary folder instead of loopback TCP: nothing else on the
    machine can connect to the kernel, and ipykernel does not warn "Kernel is running over
    TCP without encryption" on every start.
    """
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    with tempfile.TemporaryDirectory(prefix="workbench-kernel-") as sockets:
        km = KernelManager(kernel_name="python3", transport="ipc",
                           ip=str(Path(sockets) / "kernel"))
        # cleanup_kc: shut the kernel down at the end (nbclient keeps a kernel it was handed
        # alive, and it would linger until this process exits, then print "Parent appears to
        # have exited")
        return NotebookClient(nb, timeout=timeout, km=km,
                              resources={"metadata": {"path": str(path)}}).execute(
                                  cleanup_kc=True)


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
        import nbclient  # noqa: F401
        import nbformat
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
        execute(nb, path=src.resolve(), timeout=timeout)
        seconds = time.perf_counter() - t0
        target = dst / nb_path.name
        nbformat.write(nb, target)
        try:
            # the browser tests' fresh screenshots, else the README's committed copies
            body = offline_html(nb, screenshots=[dst.parent / "screenshots",
                                                 src.resolve().parent / "data" / "screenshots"])
        except ImportError:
            pass
        else:
            target = target.with_suffix(".html")
            target.write_text(body, encoding="utf-8")
        rows.append({"notebook": nb_path.name, "seconds": round(seconds, 1),
                     "output": str(target)})
    return pl.DataFrame(rows, schema={"notebook": pl.Utf8, "seconds": pl.Float64,
                                      "output": pl.Utf8})


WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
#: Widget class -> screenshot the browser tests save (``reports/screenshots``).
SCREENSHOTS = {
    "SearchPanel": "search_panel.png",
    "LinkedViews": "linked_views.png",
    "ClusterExplorer": "cluster_explorer.png",
    "CompressionLab": "compression_lab.png",
    "DedupReviewer": "dedup_reviewer.png",
    "DriftDashboard": "drift_dashboard.png",
}
#: ``<script src=...>`` / ``<link href=...>`` tags that load from the network.
_REMOTE_TAG = re.compile(
    r"<script\b[^>]*\bsrc\s*=\s*[\"']?https?://[^>]*>\s*</script>"
    r"|<link\b[^>]*\bhref\s*=\s*[\"']?https?://[^>]*>", re.IGNORECASE)


def _widget_note(output: Any, screenshots: list[Path]) -> dict[str, Any]:
    """A static output standing in for a live widget: its screenshot (if any) and a note."""
    text = str(output.get("data", {}).get("text/plain", ""))
    name = re.match(r"\s*([A-Za-z_][A-Za-z0-9_]*)", text)
    cls = name.group(1) if name else "widget"
    found = [f / SCREENSHOTS[cls] for f in screenshots
             if cls in SCREENSHOTS and (f / SCREENSHOTS[cls]).is_file()]
    shot = found[0] if found else None
    note = (f"<p style='color:#5b6675;font-size:.85rem'><b>{html.escape(cls)}</b> is an "
            "interactive widget: run this notebook in JupyterLab (<code>make lab</code>) to "
            "use it.")
    data: dict[str, Any] = {}
    if shot is not None:
        b64 = base64.b64encode(shot.read_bytes()).decode("ascii")
        note += (" The picture shows the widget in JupyterLab on the demo corpus (other data "
                 "than this run).</p>"
                 f"<img alt='{html.escape(cls)}' style='max-width:100%;border:1px solid "
                 f"#dde3ea' src='data:image/png;base64,{b64}'>")
    else:
        note += "</p>"
    data["text/html"] = note
    data["text/plain"] = f"[{cls}: interactive widget, run the notebook to use it]"
    return {"output_type": "display_data", "data": data, "metadata": {}}


def offline_html(nb: Any, *, screenshots: Path | Sequence[Path] | None = None) -> str:
    """An executed notebook as HTML that opens offline and loads nothing from the network.

    nbconvert's page loads require.js, MathJax and (with widget state) the widget manager from
    CDNs; without them a widget output is an empty box. Here every widget output becomes a
    static stand-in (the widget's screenshot from the browser tests where there is one, and a
    note), the widget state is dropped, and the remaining remote ``<script>``/``<link>`` tags
    are removed (require.js served only the widgets; the notebooks hold no LaTeX for MathJax).

    Parameters
    ----------
    nb : nbformat.NotebookNode
        An executed notebook (not modified).
    screenshots : Path or sequence of Path, optional
        Folder(s) of the browser tests' screenshots (``reports/screenshots``, then the
        README's copies in ``data/screenshots``): the first holding a widget's picture wins.

    Returns
    -------
    str
        The HTML page.
    """
    import nbformat
    from nbconvert import HTMLExporter

    folders = ([] if screenshots is None else [Path(screenshots)]
               if isinstance(screenshots, str | Path) else [Path(f) for f in screenshots])
    nb = copy.deepcopy(nb)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        cell.outputs = [nbformat.from_dict(_widget_note(o, folders))
                        if WIDGET_MIME in o.get("data", {}) else o for o in cell.outputs]
    body, _ = HTMLExporter(mermaid_js_url="", mermaid_layout_elk_js_url="").from_notebook_node(nb)
    return _REMOTE_TAG.sub("", body)
