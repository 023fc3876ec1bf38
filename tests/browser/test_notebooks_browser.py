"""Every notebook in notebooks/ runs in a real JupyterLab, in headless Chromium: no error output,
and every widget it displays renders (the first hour of a new user, as they would see it)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.browser.harness import Lab, run_all_cells, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))

# All code cells ran: each prompt shows a number, none is queued or running ("[*]").
# textContent, not innerText: JupyterLab skips rendering cells out of view
# (content-visibility), and their innerText is empty.
_DONE_JS = """() => {
  const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];
  return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
}"""
# Error outputs anywhere in the notebook, rendered or not.
_ERRORS_JS = """() => [...document.querySelectorAll(
    ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr'], "
    + ".jp-RenderedText[data-mime-type='application/vnd.jupyter.error']")]
  .map(e => e.textContent).filter(t => /Traceback|Error/.test(t))"""
_PROMPTS_JS = """() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]
  .map(p => p.textContent.trim())"""
# JupyterLab's widget manager writes this where a widget view cannot be built.
_WIDGET_FAILURES_JS = """() => [...document.querySelectorAll('.jp-OutputArea-output')]
  .map(e => e.textContent)
  .filter(t => /Error displaying widget|Failed to load model class/.test(t))"""


def _shows_widgets(path: Path) -> bool:
    """Whether the notebook's code builds a workbench widget."""
    return "wb.widgets." in path.read_text(encoding="utf-8")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_in_the_browser(lab: Lab, page: Any, path: Path) -> None:
    shutil.copy(path, lab.root / path.name)
    page.goto(lab.notebook_url(path.name))
    run_all_cells(page, ready_selector=".jp-CodeCell .jp-InputPrompt:has-text('[')",
                  timeout=180)
    try:
        page.wait_for_function(_DONE_JS, timeout=600_000, polling=2000)
    except Exception as exc:
        prompts = page.evaluate(_PROMPTS_JS)
        screenshot(page, f"failed_{path.stem}.png")
        raise AssertionError(f"{path.name}: not every cell ran; prompts {prompts}") from exc
    page.wait_for_timeout(2000)  # the last widget views attach
    assert page.evaluate(_ERRORS_JS) == []
    assert page.evaluate(_WIDGET_FAILURES_JS) == []
    if _shows_widgets(path):
        assert page.locator(".jp-OutputArea-output .jupyter-widgets").count() >= 1
