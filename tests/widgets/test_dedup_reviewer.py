from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

import workbench as wb
from workbench.analysis.dedup import DedupResult
from workbench.datasets import synthetic_stream
from workbench.errors import InvalidInputError
from workbench.widgets import DedupReviewer
from workbench.widgets.dedup import DECISIONS_SCHEMA, word_diff

IMG = "<img src=x onerror=alert(1)>"
#: Near copies of row-000000 added to the synthetic stream: a group larger than the planted ones.
COPIES = 4


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> wb.Store:
    st = synthetic_stream(2_000, 32, duplicate_groups=10, drift_points=0)
    frame = st.frame.with_columns(text=pl.format("row {} <b>text</b>", pl.col("id")))
    rng = np.random.default_rng(1)
    base = st.vectors[0]
    noise = rng.normal(size=(COPIES, base.size)).astype(np.float32)
    noise -= np.outer(noise @ base, base)  # orthogonal offsets: cosine ~0.9998 to row 0
    copies = base + 0.02 * noise / np.linalg.norm(noise, axis=1, keepdims=True)
    copies /= np.linalg.norm(copies, axis=1, keepdims=True)
    extra = pl.concat([frame.head(1)] * COPIES).with_columns(
        id=pl.Series([f"copy-{i}" for i in range(COPIES)]),
        text=pl.Series([f"copy {IMG} of row-000000 <b>text</b> {i}" for i in range(COPIES)]))
    s = wb.Store.create(tmp_path_factory.mktemp("dedup") / "s", dim=32)
    s.add(pl.concat([frame, extra]), vectors=np.vstack([st.vectors, copies]), progress=False)
    return s


@pytest.fixture(scope="module")
def result(store: wb.Store) -> DedupResult:
    return wb.find_duplicates(store, method="cosine", progress=False)


def _groups_in(reviewer: DedupReviewer) -> int:
    m = re.search(r"<span class='wb-dedup-groups'>(\d+)</span> groups", reviewer._summary.value)
    assert m, reviewer._summary.value
    return int(m.group(1))


def _sizes(reviewer: DedupReviewer) -> list[int]:
    return [int(re.search(r" · (\d+) rows · ", label).group(1))
            for label, _ in reviewer._groups.options]


def test_slider_regroups_the_original_result_once(result: DedupResult,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    reviewer = DedupReviewer(result, None)
    assert reviewer.slider.value == pytest.approx(result.threshold)
    assert reviewer.slider.continuous_update is False and reviewer.slider.max == 1.0
    assert reviewer.slider.min <= result.threshold
    assert _groups_in(reviewer) == result.summary["groups"] > 0
    calls: list[tuple[Any, float]] = []
    real = DedupResult.regroup

    def spy(self: DedupResult, threshold: float | None = None, **kw: Any) -> DedupResult:
        calls.append((self, threshold))
        return real(self, threshold, **kw)

    monkeypatch.setattr(DedupResult, "regroup", spy)
    before = _groups_in(reviewer)
    for t in (0.9995, 1.0, reviewer.slider.min):
        calls.clear()
        reviewer.slider.value = t  # as if the handle was released at t
        assert len(calls) == 1 and calls[0][0] is result and calls[0][1] == pytest.approx(t)
        expected = real(result, t).summary["groups"]
        assert _groups_in(reviewer) == reviewer.result.summary["groups"] == expected
        assert reviewer.result.threshold == pytest.approx(t)
        assert f"data-threshold='{t:.4f}'" in reviewer._hist.value  # the histogram follows
        if t > result.threshold:
            assert expected <= before
    assert _groups_in(reviewer) >= before  # the lowest threshold groups at least as much
    calls.clear()
    reviewer.threshold = 0.0  # the trait is clamped to the slider's range, like the slider
    assert reviewer.threshold == reviewer.slider.value == reviewer.slider.min and not calls


def test_group_list_is_sorted_by_size_and_capped(result: DedupResult, store: wb.Store) -> None:
    reviewer = DedupReviewer(result, store)
    sizes = _sizes(reviewer)
    assert sizes == sorted(sizes, reverse=True) and sizes[0] == COPIES + 1
    assert len(sizes) == result.summary["groups"]
    assert reviewer.group == 0 and reviewer._groups.value == 0
    # labels are option text (set as textContent in the browser): the text, unescaped
    assert "row row-0" in reviewer._groups.options[1][0]
    small = DedupReviewer(result, store, max_groups=3)
    assert len(small._groups.options) == 3
    assert "(the largest 3 listed)" in small._summary.value
    with pytest.raises(InvalidInputError, match="max_groups"):
        DedupReviewer(result, store, max_groups=0)
    with pytest.raises(InvalidInputError, match="result: expected a DedupResult"):
        DedupReviewer(result.groups)  # type: ignore[arg-type]


def test_decisions_are_member_representative_pairs_and_replace(result: DedupResult,
                                                               store: wb.Store) -> None:
    reviewer = DedupReviewer(result, store)
    assert reviewer.decisions.height == 0 and dict(reviewer.decisions.schema) == DECISIONS_SCHEMA
    rows = result.groups.filter(pl.col("group") == 0)
    rep = int(rows["key"][0])
    members = rows["key"][1:].to_list()
    assert reviewer.member == members[0]
    assert reviewer.accept() == 1
    d = reviewer.decisions
    assert d.height == 1 and d.row(0, named=True) | {"score": None} == {
        "key_a": min(rep, members[0]), "key_b": max(rep, members[0]),
        "id_a": rows["id"][0] if rep < members[0] else rows["id"][1],
        "id_b": rows["id"][1] if rep < members[0] else rows["id"][0],
        "score": None, "is_duplicate": True, "decided": 1}
    pair = result.pairs.filter((pl.col("key_a") == d["key_a"][0])
                               & (pl.col("key_b") == d["key_b"][0]))
    assert d["score"][0] == pair["score"][0]
    assert reviewer.member == members[1]  # moved on to the next member
    assert "duplicate" in reviewer._table.value
    # the Reject button re-decides the first member: replaced, not added
    reviewer.member = members[0]
    reviewer._buttons["reject"].click()
    d = reviewer.decisions
    assert d.height == 1 and d["is_duplicate"].to_list() == [False] and d["decided"][0] == 2
    assert reviewer.status == "1 pair labelled not duplicate; 1 decision in all"
    assert reviewer.accept_group() == COPIES
    d = reviewer.decisions
    assert d.height == COPIES and d["is_duplicate"].all()
    assert (d["key_a"] < d["key_b"]).all() and d["decided"].is_sorted()
    assert "<span class='wb-dedup-decided'>4</span> decisions" in reviewer._summary.value
    reviewer._buttons["reject-group"].click()
    assert reviewer.decisions.height == COPIES and not reviewer.decisions["is_duplicate"].any()


def test_decisions_feed_calibrate_threshold(result: DedupResult, store: wb.Store) -> None:
    reviewer = DedupReviewer(result, store)
    reviewer.slider.value = max(reviewer.slider.min, 0.9)  # the copies are group 0
    reviewer.accept_group(0)
    reviewer.reject_group(1)
    reviewer.reject_group(2)
    cal = wb.calibrate_threshold(reviewer.result, reviewer.decisions)
    assert cal.n_pairs == reviewer.decisions.height and 0 < cal.n_duplicates < cal.n_pairs
    assert cal.n_duplicates == COPIES
    # the original result has the same candidate pairs
    assert wb.calibrate_threshold(result, reviewer.decisions).n_pairs == cal.n_pairs


def test_diff_escapes_text_before_marking_it(result: DedupResult, store: wb.Store) -> None:
    reviewer = DedupReviewer(result, store)
    assert reviewer.group == 0  # row-000000 and its copies
    page = reviewer._pair.value
    assert "<img" not in page and "<b>" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "&lt;b&gt;text&lt;/b&gt;" in page
    assert "<ins>" in page and "<del>" in page
    assert "representative row-000000" in page and "member copy-0" in page
    for html in (reviewer._table.value, reviewer._summary.value, reviewer._status.value):
        assert "<img" not in html and "<b>" not in html
    left, right = word_diff("a <b>cat</b> sat on it", f"a dog {IMG} sat on it")
    assert left == "a <del>&lt;b&gt;cat&lt;/b&gt;</del> sat on it"
    assert right == "a <ins>dog &lt;img src=x onerror=alert(1)&gt;</ins> sat on it"
    long_a, long_b = word_diff(" ".join(["w"] * 900), "w", max_words=10)
    assert long_a.endswith("…") and long_a.count("w") == 10 and long_b == "w"


def test_without_store_ids_and_scores_only(result: DedupResult) -> None:
    reviewer = DedupReviewer(result)
    assert "row-000000" in reviewer._groups.options[0][0]
    assert "(no text)" in reviewer._pair.value and "score " in reviewer._pair.value
    assert reviewer.accept() == 1  # deciding needs no text


def test_zero_groups_show_an_empty_state(result: DedupResult, store: wb.Store) -> None:
    reviewer = DedupReviewer(result, store)
    reviewer.threshold = 1.0
    assert reviewer.result.summary["groups"] == 0 and _groups_in(reviewer) == 0
    assert reviewer._groups.options == () and reviewer.group == -1 and reviewer.member == -1
    assert "wb-dedup-empty" in reviewer._pair.value and "No duplicate groups" in reviewer.status
    assert all(b.disabled for b in reviewer._buttons.values())
    assert reviewer.accept() == 0 and reviewer.accept_group() == 0
    assert reviewer.decisions.height == 0
    reviewer.threshold = result.threshold  # back: groups and buttons return
    n = result.summary["groups"]
    assert _groups_in(reviewer) == n
    assert reviewer.status == f"Re-grouped at threshold {result.threshold:.3f}: {n} groups."
    assert not any(b.disabled for b in reviewer._buttons.values())
    none = wb.find_duplicates(store, method="cosine", threshold=1.0, progress=False)
    empty = DedupReviewer(none, store)
    assert _groups_in(empty) == 0 and "wb-dedup-empty" in empty._pair.value


def test_regroup_errors_are_shown_not_raised(result: DedupResult, store: wb.Store) -> None:
    reviewer = DedupReviewer(result, store)
    assert reviewer.regroup(reviewer.slider.min / 2) is None
    assert reviewer.status.startswith("Error: threshold") and "color:#b00020" in \
        reviewer._status.value
    assert reviewer.result is result


def test_members_without_a_candidate_pair_are_skipped(tmp_path: Path) -> None:
    s = wb.Store.create(tmp_path / "x", dim=4)
    s.add(pl.DataFrame({"id": ["a", "b", "c", "d"],
                        "text": ["The same <b>text</b>", "the  same <b>text</b>", "c", "d"]}),
          vectors=np.eye(4, dtype=np.float32), progress=False)
    res = wb.find_duplicates(s, method="cosine", progress=False)
    reviewer = DedupReviewer(res, s)  # an exact (text) group whose vectors are orthogonal
    assert _groups_in(reviewer) == 1 and "exact" in reviewer._members.options[0][0]
    assert reviewer.accept() == 0 and reviewer.decisions.height == 0
    assert "1 skipped (no candidate pair" in reviewer.status


def test_buttons_say_duplicate_or_not(result: DedupResult, store: wb.Store) -> None:
    reviewer = DedupReviewer(result, store)
    labels = [b.description for b in reviewer._buttons.values()]
    assert labels == ["Duplicate", "Not duplicate", "Whole group: duplicates",
                      "Whole group: not duplicates"]
    assert "Accept" not in " ".join(labels) and "Reject" not in " ".join(labels)


def test_histogram_has_axis_titles_and_the_slider_sits_under_it(result: DedupResult) -> None:
    reviewer = DedupReviewer(result)
    svg = reviewer._hist.value
    assert "class='wb-dedup-hist-xtitle'" in svg and "pair score" in svg
    assert "class='wb-dedup-hist-ytitle'" in svg and "pairs (log)" in svg
    row = reviewer.children[2]
    assert list(row.children) == [reviewer._hist, reviewer.slider]
    assert isinstance(row, __import__("ipywidgets").VBox)  # stacked, not side by side


def test_rows_carry_the_decisions_and_export(result: DedupResult, store: wb.Store) -> None:
    reviewer = DedupReviewer(result, store)
    assert reviewer.rows.height == reviewer.result.groups.height
    assert reviewer.rows.get_column("is_duplicate").null_count() == reviewer.rows.height
    assert reviewer.accept() == 1
    decided = reviewer.decisions.row(0, named=True)
    rows = reviewer.rows
    assert rows.height == reviewer.result.groups.height
    marked = rows.filter(pl.col("is_duplicate").is_not_null())
    assert marked.height == 1
    assert marked["key"][0] in (decided["key_a"], decided["key_b"])
    assert marked["is_duplicate"][0] is True
    html = reviewer.export.export("csv")
    assert "duplicate_groups.csv" in html and "data:text/csv;base64," in html
    text = repr(reviewer)
    assert text.startswith("DedupReviewer(") and "1 decisions" in text and "<" not in text


def test_no_null_comparison_warning(result: DedupResult) -> None:
    import warnings

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        reviewer = DedupReviewer(result)
        reviewer.accept()
    assert [str(w.message) for w in seen if "None" in str(w.message)] == []
