"""Real-browser harness: JupyterLab on localhost driven by Playwright in Debian's Chromium.

Every widget test reuses it: write a notebook, open it in JupyterLab, run all cells, then
interact with the rendered widgets and assert on the DOM.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHROMIUM = os.environ.get("WORKBENCH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "reports" / "screenshots"


def browser_missing_reason() -> str | None:
    """Why a browser test cannot run here, or None."""
    if not Path(CHROMIUM).exists():
        return (f"no Chromium at {CHROMIUM} (install Debian's chromium: apt-get install -y "
                "chromium; `make test` does this when run as root)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is not installed (pip install playwright)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Lab:
    """A running JupyterLab server."""

    url: str
    token: str
    root: Path
    proc: subprocess.Popen[bytes]
    log: Path

    def notebook_url(self, name: str) -> str:
        return f"{self.url}/lab/tree/{name}?token={self.token}&reset"


def write_notebook(path: Path, cells: list[str]) -> None:
    """Write a notebook of code cells (no outputs)."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                 "language": "python"}
    nbformat.write(nb, path)


@contextlib.contextmanager
def jupyter_lab(root: Path, home: Path, *, timeout: float = 90) -> Iterator[Lab]:
    """Start JupyterLab on a free localhost port with a token; config kept under `home`."""
    env = dict(os.environ)
    for var, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                     ("JUPYTER_RUNTIME_DIR", "runtime"), ("JUPYTERLAB_WORKSPACES_DIR", "ws"),
                     ("JUPYTERLAB_SETTINGS_DIR", "settings"), ("IPYTHONDIR", "ipython")):
        (home / sub).mkdir(parents=True, exist_ok=True)
        env[var] = str(home / sub)
    # no first-run news popup covering the page
    news = home / "settings" / "@jupyterlab" / "apputils-extension"
    news.mkdir(parents=True, exist_ok=True)
    (news / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    project = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = project + os.pathsep + env.get("PYTHONPATH", "")
    port, token = _free_port(), secrets.token_hex(16)
    log = home / "lab.log"
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}",
           "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}", "--allow-root",
           f"--ServerApp.root_dir={root}", "--LabApp.news_url=",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=root)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited: {log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2):
                    break
            except OSError as exc:
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"JupyterLab did not start: {log.read_text()[-3000:]}") from exc
                time.sleep(0.5)
        yield Lab(url=url, token=token, root=root, proc=proc, log=log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A headless Debian Chromium page via Playwright (never `playwright install`)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                     headless=True)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            yield context.new_page()
        finally:
            browser.close()


def run_all_cells(page: Any, *, ready_selector: str, timeout: float = 120) -> None:
    """Run every cell once the kernel is idle; retry if the first run-all was dropped."""
    page.wait_for_selector(".jp-NotebookPanel", timeout=60_000)
    deadline = time.monotonic() + timeout
    attempt = 0
    while time.monotonic() < deadline:
        # a "run all" sent before the kernel is ready is silently dropped: wait for Idle
        with contextlib.suppress(Exception):
            page.wait_for_selector("text=/Idle/", timeout=30_000)
        for text in ("No", "Dismiss"):  # any toast (news, updates) that may cover the page
            with contextlib.suppress(Exception):
                page.get_by_role("button", name=text).first.click(timeout=500)
        attempt += 1
        page.click("div.lm-MenuBar-itemLabel:text-is('Run')")
        page.click("li.lm-Menu-item:has-text('Run All Cells')")
        try:
            page.wait_for_selector(ready_selector, timeout=30_000)
            return
        except Exception:
            if attempt >= 3:
                raise
    raise TimeoutError(f"{ready_selector} never appeared after {attempt} run-all attempts")


def rerun_cell(page: Any, index: int, output_pattern: str, *, timeout: float = 30) -> None:
    """Run cell `index` again in place (Ctrl+Enter, no new cell) and wait until some output
    matches the JavaScript regular expression `output_pattern`."""
    cell = page.locator(".jp-Cell").nth(index)
    cell.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Control+Enter")
    page.wait_for_function(
        "(p) => [...document.querySelectorAll('.jp-OutputArea-output')]"
        ".some(e => new RegExp(p).test(e.innerText))", arg=output_pattern,
        timeout=timeout * 1000)


def lasso(page: Any, map_selector: str, box: tuple[float, float, float, float]) -> None:
    """Draw a lasso over the jupyter-scatter map in `map_selector` with the toolbar's lasso
    mode: a loop around the rectangle `box` = (x0, y0, x1, y1) in fractions of the canvas.

    The loop ends away from its start (a mouse-up where the mouse went down is also a click,
    which would replace the selection with one point) and is paced: the lasso samples the
    pointer every few milliseconds.
    """
    canvas = page.locator(f"{map_selector} canvas").first
    canvas.scroll_into_view_if_needed()
    rect = canvas.bounding_box()
    assert rect is not None
    page.locator(f"{map_selector} button[title='Activate lasso selection']").click()
    fx0, fy0, fx1, fy1 = box
    x0, x1 = rect["x"] + rect["width"] * fx0, rect["x"] + rect["width"] * fx1
    y0, y1 = rect["y"] + rect["height"] * fy0, rect["y"] + rect["height"] * fy1
    loop = [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, (y0 + y1) / 2)]
    page.mouse.move(*loop[0])
    page.mouse.down()
    for (ax, ay), (bx, by) in zip(loop, loop[1:], strict=False):
        for t in range(1, 16):
            page.mouse.move(ax + (bx - ax) * t / 15, ay + (by - ay) * t / 15)
            page.wait_for_timeout(20)
    page.mouse.up()
    page.wait_for_timeout(1500)


def cell_errors(page: Any) -> list[str]:
    """Texts of error outputs in the notebook."""
    nodes = page.query_selector_all(
        ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr'], "
        ".jp-RenderedText[data-mime-type='application/vnd.jupyter.error']"
    )
    # textContent: JupyterLab does not render cells out of view, and their innerText is empty
    texts = [n.text_content() or "" for n in nodes]
    return [t for t in texts if "Traceback" in t or "Error" in t]


def screenshot(page: Any, name: str, *, widget: str | None = None) -> Path:
    """Save a screenshot under reports/screenshots/: of the `widget` element (a CSS selector;
    the exported notebooks show it in place of the live widget), else of the whole page."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    if widget is not None:
        # JupyterLab scrolls the notebook inside a panel the size of the window: make the
        # window tall enough for the whole widget, shoot it, and put the window back
        size = page.viewport_size
        el = page.locator(widget).first
        height = int(el.evaluate("e => e.scrollHeight")) + 400
        page.set_viewport_size({"width": size["width"], "height": max(size["height"], height)})
        page.wait_for_timeout(700)  # let the lab re-layout and plotly redraw
        el.scroll_into_view_if_needed()
        el.screenshot(path=str(path))
        page.set_viewport_size(size)
    else:
        page.screenshot(path=str(path), full_page=True)
    return path


def open_offline(page: Any, path: Path) -> list[str]:
    """Open a local file with every http(s) request aborted; returns the URLs it tried
    (filled in as the page runs: read it after waiting for what the page draws)."""
    requests: list[str] = []

    def block(route: Any) -> None:
        requests.append(route.request.url)
        route.abort()

    page.route("http://**/*", block)
    page.route("https://**/*", block)
    page.goto(path.as_uri())
    return requests


def hover_map(page: Any, shown_js: str) -> bool:
    """Move the mouse over the cluster map until `shown_js` (a JS expression) is truthy.

    Tries a grid of points around the map's centre; False if `shown_js` never held.
    """
    canvas = page.locator(".wb-cluster-map canvas").first
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    assert box is not None
    for fy, fx in itertools.product((0.5, 0.4, 0.6, 0.3, 0.7), (0.5, 0.4, 0.6, 0.3, 0.7)):
        page.mouse.move(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy, steps=5)
        page.wait_for_timeout(700)
        if page.evaluate(shown_js):
            return True
    return False
