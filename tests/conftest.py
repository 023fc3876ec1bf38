from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

# Keep tests hermetic: no model downloads, caches under a temporary folder.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(autouse=True, scope="session")
def _cache_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    os.environ["WORKBENCH_CACHE_DIR"] = str(tmp_path_factory.mktemp("wb-cache"))


@pytest.fixture
def shared_data() -> Callable[..., Path]:
    """Return a function giving a path under ../shared/data, skipping when it is absent."""
    from workbench.evaldata import EvalDataMissingError, shared_data_path

    def get(*parts: str) -> Path:
        try:
            return shared_data_path(*parts)
        except EvalDataMissingError as exc:
            pytest.skip(str(exc))

    return get
