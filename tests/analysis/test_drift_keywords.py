"""Keywords of what changed in a drifted window: new words, emerging and vanishing clusters."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from threadpoolctl import threadpool_limits

import workbench as wb
from workbench.analysis import _drift_changes as ch
from workbench.analysis.drift import compute_drift
from workbench.analysis.keywords import GENERIC_WORDS

TOPICS = ["river", "stone", "cloud", "field", "glacier", "widget"]  # glacier goes, widget comes
GENERIC = ["bytes", "used", "values", "file", "list"]


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    with threadpool_limits(1):
        yield


def _text(rng: np.random.Generator, topic: int, *, late: bool) -> str:
    """A topic's two words; generic words in every late row (one in five early ones); the
    common word "network" in 80 % of late rows against 30 % of early ones (1.8 times as
    frequent, the texts being longer)."""
    words = [TOPICS[topic], f"{TOPICS[topic]}s" if topic != 5 else "canvas"]
    if late or rng.random() < 0.2:
        words += GENERIC
    if rng.random() < (0.8 if late else 0.3):
        words += ["network"] * 4
    return " ".join(words) + " note"


def _stream(rng: np.random.Generator, n: int, *, late: bool) -> list[str]:
    # early: topics 0-4 (glacier 20 %); late: topics 0-3 and 5 (widget 20 %)
    topics = rng.integers(0, 4, size=n)
    topics[: n // 5] = 5 if late else 4
    return [_text(rng, int(t), late=late) for t in topics], topics


def test_new_keywords_are_the_new_topic_not_generic_or_merely_more_common() -> None:
    rng = np.random.default_rng(3)
    ref, _ = _stream(rng, 500, late=False)
    win, _ = _stream(rng, 500, late=True)
    got = ch.new_keywords(ref, win)
    assert set(got[:2]) == {"widget", "canvas"}
    assert not set(got) & (set(GENERIC) | GENERIC_WORDS)
    assert "network" not in got  # 1.8 times as frequent: under the 2x ratio
    # without the ratio its large KL contribution ranks the common word first
    assert ch.new_keywords(ref, win, min_ratio=1.0)[0] == "network"


def test_vanishing_keywords_come_from_the_reference_rows() -> None:
    rng = np.random.default_rng(4)
    ref, ref_topics = _stream(rng, 400, late=False)
    win, _ = _stream(rng, 400, late=True)
    got = ch.vanishing_keywords(ref, ref_topics.astype(np.int64), win, [4])
    assert got[4][:2] in (["glacier", "glaciers"], ["glaciers", "glacier"])
    assert not set(got[4]) & GENERIC_WORDS
    assert ch.vanishing_keywords(ref, ref_topics.astype(np.int64), win, []) == {}


def test_compute_drift_names_what_came_and_what_went(tmp_path: Path) -> None:
    """Month 2 loses the glacier topic (20 % of month 1) and gains a widget topic (20 %): the
    window is flagged, its new keywords are the widget's and the vanishing cluster carries the
    glacier's words, from the reference's rows. (The widget rows fall in no reference cluster,
    so no cluster emerges: they count in ``novel_share``.)"""
    rng = np.random.default_rng(8)
    d = 16
    centers = rng.standard_normal((len(TOPICS), d)) * 3
    rows: list[dict[str, object]] = []
    vecs = []
    for m, late in ((1, False), (2, True)):
        texts, topics = _stream(rng, 600, late=late)
        for j, (t, c) in enumerate(zip(texts, topics, strict=True)):
            rows.append({"id": f"m{m}-{j}", "timestamp": datetime(2025, m, 1 + j % 27),
                         "text": t})
            vecs.append(centers[c] + rng.standard_normal(d))
    store = wb.Store.create(tmp_path / "s", dim=d)
    store.add(pl.DataFrame(rows), vectors=np.asarray(vecs, dtype=np.float32), progress=False)
    res = compute_drift(store, every="1mo", n_clusters=5, methods=("centroid", "mmd"),
                        n_permutations=100, progress=False)
    feb = res.windows.filter(pl.col("start").dt.month() == 2)
    assert feb.get_column("flagged").item()
    c = res.changes[feb.get_column("start").item()]
    assert set(c["keywords"][:2]) == {"widget", "canvas"}
    assert not set(c["keywords"]) & GENERIC_WORDS and "network" not in c["keywords"]
    status = dict(zip(c["clusters"]["cluster"].to_list(), c["clusters"]["status"].to_list(),
                      strict=True))
    vanishing = [k for k, s in status.items() if s == "vanishing"]
    assert vanishing and set(c["vanishing_keywords"]) == set(vanishing)
    gone = [w for k in vanishing for w in c["vanishing_keywords"][k][:2]]
    assert "glacier" in gone
    assert not any("widget" in ws for ws in c["vanishing_keywords"].values())
    assert c["novel_share"] >= 0.1  # the widget rows, unlike any reference cluster
