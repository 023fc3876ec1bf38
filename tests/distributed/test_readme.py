"""The README's "Beyond one machine" example runs as written on the session's cluster."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import workbench as wb

from .conftest import RAY_TIMEOUT

pytestmark = pytest.mark.timeout(RAY_TIMEOUT)
README = Path(__file__).resolve().parents[2] / "README.md"


def test_beyond_one_machine_runs(ray_ok: dict, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    text = README.read_text(encoding="utf-8")
    start = text.index("\n## Beyond one machine\n")
    section = text[start:text.index("\n## ", start + 5)]
    blocks = re.findall(r"^```python\n(.*?)^```$", section, flags=re.MULTILINE | re.DOTALL)
    assert len(blocks) == 1
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    ns: dict = {}
    exec(compile(blocks[0], str(README), "exec"), ns)  # noqa: S102 - our own README
    assert (ns["report"].added, ns["report"].segments) == (2000, 4)
    store = wb.Store.open(ns["folder"] / "news.store", readonly=True)
    assert ns["hits"].equals(store.search("football final", k=3))
    local = wb.find_duplicates(store, threshold=0.95, method="cosine", candidates="lsh",
                               progress=False)
    assert ns["dups"].pairs.equals(local.pairs)
    d = wb.compute_drift(store, time="day", every="1mo", changes=False, progress=False)
    got, want = ns["drift"].windows, d.windows
    assert got.height == want.height == 4
    assert got.get_column("flagged").to_list() == want.get_column("flagged").to_list()
