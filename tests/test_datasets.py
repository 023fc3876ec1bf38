from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from workbench import datasets
from workbench.datasets import (
    LabeledVectors,
    SyntheticStream,
    digits,
    python_docs,
    synthetic_stream,
)
from workbench.errors import InvalidInputError

# ---------------------------------------------------------------------------------------------
# python_docs
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def docs() -> pl.DataFrame:
    return python_docs()


def test_python_docs_schema_and_size(docs: pl.DataFrame) -> None:
    assert docs.schema == pl.Schema(
        {"id": pl.String, "text": pl.String, "source": pl.String, "module": pl.String,
         "kind": pl.String}
    )
    assert docs.height > 3000
    assert docs.null_count().sum_horizontal().item() == 0


def test_python_docs_ids_and_texts_are_unique(docs: pl.DataFrame) -> None:
    assert docs["id"].n_unique() == docs.height
    assert docs["text"].n_unique() == docs.height


def test_python_docs_texts_within_bounds_and_normalised(docs: pl.DataFrame) -> None:
    lengths = docs["text"].str.len_chars()
    assert lengths.min() >= 80
    assert lengths.max() <= 1200
    assert docs["text"].str.strip_chars().str.len_chars().min() > 0
    # whitespace is collapsed: no newlines, tabs or double spaces survive
    assert not docs["text"].str.contains(r"\s\s|\n|\t").any()
    assert not docs["text"].str.starts_with(">>>").any()


def test_python_docs_sources_kinds_and_ids_agree(docs: pl.DataFrame) -> None:
    assert set(docs["source"].unique()) == {"pydoc-topic", "docstring"}
    assert set(docs["kind"].unique()) == {"topic", "module", "class", "function"}
    topics = docs.filter(pl.col("source") == "pydoc-topic")
    assert (topics["kind"] == "topic").all()
    assert topics["id"].str.starts_with("topic:").all()
    assert (topics["id"].str.split(":").list.get(1) == topics["module"]).all()
    docstrings = docs.filter(pl.col("source") == "docstring")
    assert docstrings["kind"].is_in(["module", "class", "function"]).all()
    assert docstrings["id"].str.starts_with("module:").all()
    # the id names the module (module docstrings) or a definition inside it
    qualified = docstrings["id"].str.replace(r"^module:", "").str.replace(r":\d+$", "")
    module = docstrings["module"]
    assert ((qualified == module) | qualified.str.starts_with(module + ".")).all()
    is_module = docstrings["kind"] == "module"
    assert (qualified.filter(is_module) == module.filter(is_module)).all()


def test_python_docs_finds_known_paragraphs(docs: pl.DataFrame) -> None:
    assert docs.filter(pl.col("module") == "assert").height >= 1
    assert docs.filter(pl.col("module") == "json").height >= 1
    # classes and methods of submodules are found by parsing, e.g. json.decoder.JSONDecoder
    assert docs["id"].str.starts_with("module:json.decoder.JSONDecoder").any()
    # skipped packages and private modules stay out
    top = docs.filter(pl.col("source") == "docstring")["module"].str.split(".").list.first()
    assert not top.is_in(["test", "idlelib", "lib2to3", "encodings", "this"]).any()
    assert not top.str.starts_with("_").any()


def test_python_docs_does_not_import_the_modules() -> None:
    # In a fresh interpreter: importing `antigravity` opens a browser, `this` prints.
    code = (
        "import sys\n"
        "from workbench.datasets import python_docs\n"
        "before = set(sys.modules)\n"
        "python_docs(limit=5)\n"
        "print(' '.join(sorted(set(sys.modules) - before)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    imported = set(done.stdout.split())
    parsed_not_imported = {
        "antigravity", "this", "turtle", "tkinter", "webbrowser", "imaplib", "nntplib",
        "telnetlib", "smtplib", "mailbox",
    }
    assert not imported & parsed_not_imported


def test_python_docs_is_deterministic(docs: pl.DataFrame) -> None:
    datasets._raw_documents.cache_clear()  # rebuild from the sources, not the memory cache
    again = python_docs()
    assert again.equals(docs)


def test_python_docs_limit_is_a_seeded_mixed_sample(docs: pl.DataFrame) -> None:
    sample = python_docs(limit=300)
    assert sample.height == 300
    assert sample.equals(python_docs(limit=300))
    assert python_docs(limit=100).equals(sample.head(100))
    assert set(sample["id"]) <= set(docs["id"])
    # the shuffle mixes sources: both show up in a small sample
    assert set(sample["source"].unique()) == {"pydoc-topic", "docstring"}
    # the sample rows are the same rows as in the full corpus
    joined = sample.join(docs, on="id", how="left", suffix="_full")
    assert (joined["text"] == joined["text_full"]).all()


def test_python_docs_limit_larger_than_corpus(docs: pl.DataFrame) -> None:
    everything = python_docs(limit=docs.height + 10)
    assert everything.height == docs.height
    assert set(everything["id"]) == set(docs["id"])


def test_python_docs_char_bounds(docs: pl.DataFrame) -> None:
    short = python_docs(min_chars=200, max_chars=400)
    lengths = short["text"].str.len_chars()
    assert lengths.min() >= 200
    assert lengths.max() <= 400
    assert 0 < short.height < docs.height
    # ids do not depend on the bounds
    assert set(short["id"]) <= set(python_docs(min_chars=1, max_chars=10_000)["id"])


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": -5}, "limit"),
        ({"limit": 2.5}, "limit"),
        ({"limit": True}, "limit"),
        ({"min_chars": 0}, "min_chars"),
        ({"max_chars": "big"}, "max_chars"),
        ({"min_chars": 500, "max_chars": 100}, "max_chars"),
    ],
)
def test_python_docs_rejects_bad_arguments(kwargs: dict, name: str) -> None:
    with pytest.raises(InvalidInputError, match=f"^{name}: expected"):
        python_docs(**kwargs)


# ---------------------------------------------------------------------------------------------
# digits
# ---------------------------------------------------------------------------------------------


def test_digits() -> None:
    data = digits()
    assert isinstance(data, LabeledVectors)
    assert data.vectors.shape == (1797, 64)
    assert data.vectors.dtype == np.float32
    assert data.vectors.flags.c_contiguous
    assert data.frame.schema == pl.Schema({"id": pl.String, "label": pl.Int32})
    assert data.frame["id"][0] == "digit-0"
    assert data.frame["id"][-1] == "digit-1796"
    assert data.frame["id"].n_unique() == 1797
    assert sorted(data.frame["label"].unique()) == list(range(10))
    assert data.vectors.min() >= 0
    assert data.vectors.max() <= 16


# ---------------------------------------------------------------------------------------------
# synthetic_stream
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stream() -> SyntheticStream:
    return synthetic_stream()


def _rows(stream: SyntheticStream, ids: list[str]) -> np.ndarray:
    index = {key: i for i, key in enumerate(stream.frame["id"])}
    return np.array([index[key] for key in ids])


def test_stream_shapes_and_schema(stream: SyntheticStream) -> None:
    assert stream.vectors.shape == (10_000, 32)
    assert stream.vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(stream.vectors, axis=1), 1.0, atol=1e-5)
    assert stream.frame.schema == pl.Schema(
        {"id": pl.String, "timestamp": pl.Datetime("us"), "cluster": pl.Int32,
         "regime": pl.Int32, "dup_group": pl.Int32}
    )
    assert stream.frame.height == 10_000
    assert stream.frame["id"].n_unique() == 10_000
    assert set(stream.frame["cluster"].unique()) == set(range(8))


def test_stream_timestamps_sorted_within_span(stream: SyntheticStream) -> None:
    ts = stream.frame["timestamp"]
    assert ts.is_sorted()
    assert ts.min() >= datetime(2025, 1, 1)
    assert ts.max() < datetime(2025, 1, 1) + timedelta(days=120)


def test_stream_regimes_change_at_drift_times(stream: SyntheticStream) -> None:
    assert len(stream.drift_times) == 2
    assert stream.drift_times == sorted(stream.drift_times)
    frame = stream.frame
    assert frame["regime"].is_sorted()
    assert set(frame["regime"].unique()) == {0, 1, 2}
    expected = sum(
        (frame["timestamp"] >= t).cast(pl.Int32) for t in stream.drift_times
    )
    assert (frame["regime"] == expected).all()


def test_stream_drift_is_visible(stream: SyntheticStream) -> None:
    regime = stream.frame["regime"].to_numpy()
    cluster = stream.frame["cluster"].to_numpy()
    means = [stream.vectors[regime == r].mean(axis=0) for r in range(3)]
    first = np.flatnonzero(regime == 0)
    half = first.size // 2
    null_shift = np.linalg.norm(
        stream.vectors[first[:half]].mean(axis=0) - stream.vectors[first[half:]].mean(axis=0)
    )
    for r in (1, 2):
        # centroid shift across a change point dwarfs the shift within a regime
        assert np.linalg.norm(means[r] - means[r - 1]) > 5 * null_shift
        # cluster mixing weights change strongly (total variation distance)
        before = np.bincount(cluster[regime == r - 1], minlength=8) / (regime == r - 1).sum()
        after = np.bincount(cluster[regime == r], minlength=8) / (regime == r).sum()
        assert 0.5 * np.abs(before - after).sum() > 0.3


def test_stream_duplicate_groups_are_near_copies(stream: SyntheticStream) -> None:
    assert len(stream.duplicate_groups) == 20
    for group in stream.duplicate_groups:
        assert len(group) == 3
        rows = _rows(stream, group)
        sims = stream.vectors[rows] @ stream.vectors[rows].T
        assert sims[np.triu_indices(3, k=1)].min() > 0.98


def test_stream_ground_truth_matches_frame(stream: SyntheticStream) -> None:
    frame = stream.frame
    planted = frame.filter(pl.col("dup_group").is_not_null())
    assert planted.height == 20 * 3
    assert frame["dup_group"].null_count() == 10_000 - 60
    for g, group in enumerate(stream.duplicate_groups):
        members = frame.filter(pl.col("dup_group") == g)
        assert members["id"].to_list() == group
        # a group is one event: same cluster, same regime
        assert members["cluster"].n_unique() == 1
        assert members["regime"].n_unique() == 1


def test_stream_non_duplicates_are_apart(stream: SyntheticStream) -> None:
    free = np.flatnonzero(stream.frame["dup_group"].is_null().to_numpy())
    rng = np.random.default_rng(123)
    a, b = rng.choice(free, size=(2, 20_000))
    keep = a != b
    sims = np.einsum("ij,ij->i", stream.vectors[a[keep]], stream.vectors[b[keep]])
    assert (sims < 0.9).mean() > 0.999
    # the closest free row to each planted row is far below the duplicate similarity
    planted = np.flatnonzero(stream.frame["dup_group"].is_not_null().to_numpy())
    assert (stream.vectors[planted] @ stream.vectors[free].T).max() < 0.95


def test_stream_is_seeded() -> None:
    a = synthetic_stream(500, 8, duplicate_groups=3, random_state=7)
    b = synthetic_stream(500, 8, duplicate_groups=3, random_state=7)
    c = synthetic_stream(500, 8, duplicate_groups=3, random_state=8)
    assert a.frame.equals(b.frame)
    np.testing.assert_array_equal(a.vectors, b.vectors)
    assert a.duplicate_groups == b.duplicate_groups
    assert not np.array_equal(a.vectors, c.vectors)


def test_stream_options() -> None:
    s = synthetic_stream(
        300, 16, n_clusters=3, drift_points=0, duplicate_groups=0,
        start=datetime(2020, 6, 1, 12), span_days=7, noise=0.0,
    )
    assert s.drift_times == []
    assert s.duplicate_groups == []
    assert (s.frame["regime"] == 0).all()
    assert s.frame["dup_group"].null_count() == 300
    assert s.frame["timestamp"].min() >= datetime(2020, 6, 1, 12)
    assert s.frame["timestamp"].max() < datetime(2020, 6, 8, 12)

    exact = synthetic_stream(200, 16, drift_points=4, duplicate_groups=7, noise=0.0)
    assert len(exact.drift_times) == 4
    assert set(exact.frame["regime"].unique()) == set(range(5))
    for group in exact.duplicate_groups:
        rows = _rows(exact, group)
        np.testing.assert_allclose(exact.vectors[rows] @ exact.vectors[rows[0]], 1.0, atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"n": 0}, "n"),
        ({"n": 10.0}, "n"),
        ({"n": 50}, "n"),  # too small for 20 groups of 3 over 3 regimes
        ({"dim": 1}, "dim"),
        ({"dim": True}, "dim"),
        ({"n_clusters": 1}, "n_clusters"),
        ({"drift_points": -1}, "drift_points"),
        ({"duplicate_groups": -1}, "duplicate_groups"),
        ({"duplicate_size": 1}, "duplicate_size"),
        ({"span_days": 0}, "span_days"),
        ({"noise": -0.1}, "noise"),
        ({"noise": 2.0}, "noise"),
        ({"noise": "low"}, "noise"),
        ({"random_state": -1}, "random_state"),
        ({"start": "2025-01-01"}, "start"),
        ({"start": datetime(2025, 1, 1).astimezone()}, "start"),
    ],
)
def test_stream_rejects_bad_arguments(kwargs: dict, name: str) -> None:
    with pytest.raises(InvalidInputError, match=f"^{name}: expected"):
        synthetic_stream(**kwargs)


def test_stream_single_cluster_without_drift() -> None:
    s = synthetic_stream(100, 8, n_clusters=1, drift_points=0, duplicate_groups=2)
    assert (s.frame["cluster"] == 0).all()
