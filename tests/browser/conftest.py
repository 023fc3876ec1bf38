from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.harness import Lab, browser_missing_reason, chromium, jupyter_lab


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    reason = browser_missing_reason()
    if reason:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("lab-root")
    home = tmp_path_factory.mktemp("lab-home")
    with jupyter_lab(root, home) as running:
        yield running


@pytest.fixture
def page(lab: Lab) -> Iterator[Any]:
    with chromium() as p:
        yield p
