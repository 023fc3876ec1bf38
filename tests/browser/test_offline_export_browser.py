"""An exported notebook opened in Chromium with the network cut: no request, stand-ins shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.harness import browser_missing_reason, chromium, open_offline
from tests.test_notebook_export import PNG, _notebook
from workbench.notebooks import offline_html

pytestmark = [pytest.mark.browser]


def test_exported_notebook_makes_no_request(tmp_path: Path) -> None:
    reason = browser_missing_reason()
    if reason:
        pytest.skip(reason)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    (shots / "dedup_reviewer.png").write_bytes(PNG)
    page_file = tmp_path / "nb.html"
    page_file.write_text(offline_html(_notebook(), screenshots=shots), encoding="utf-8")
    with chromium() as page:
        requests = open_offline(page, page_file)
        page.wait_for_load_state("load")
        page.wait_for_timeout(500)  # a module script would fire its imports by now
        notes = page.locator("text=is an interactive widget").count()
        images = page.locator("img[alt='DedupReviewer']").count()
    assert requests == []
    assert notes == 2 and images == 1
