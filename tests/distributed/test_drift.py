from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import polars as pl
import pytest

import workbench as wb
from workbench.analysis.drift import DriftResult, compute_drift
from workbench.datasets import synthetic_stream
from workbench.errors import InvalidInputError

from .conftest import RAY_TIMEOUT

pytestmark = pytest.mark.timeout(RAY_TIMEOUT)

# 2,400 rows over 120 days in 4 segments, one planted change point (2025-03-02).
N, DIM, SEGMENTS = 2_400, 16, 4
FAST = {"n_permutations": 100, "progress": False}
STATS = ("centroid_shift", "mmd2", "mmd_p", "auc", "classifier_p", "components_drifted",
         "components_p", "p_value", "p_adjusted")


@pytest.fixture(scope="module")
def stream() -> wb.datasets.SyntheticStream:
    return synthetic_stream(N, DIM, drift_points=1, duplicate_groups=0, random_state=2)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory,
          stream: wb.datasets.SyntheticStream) -> wb.Store:
    s = wb.Store.create(tmp_path_factory.mktemp("ddrift") / "s", dim=DIM)
    frame = stream.frame.with_columns(user=(pl.int_range(pl.len()) % 5).cast(pl.Utf8))
    step = N // SEGMENTS
    for lo in range(0, N, step):  # one segment per add
        s.add(frame[lo:lo + step], vectors=stream.vectors[lo:lo + step], progress=False)
    assert len(s.view().segments) == SEGMENTS
    return s


def _same(a: DriftResult, b: DriftResult) -> None:
    wa, wb_ = a.windows, b.windows
    assert wa.select("start", "end", "n", "n_reference", "status", "flagged").equals(
        wb_.select("start", "end", "n", "n_reference", "status", "flagged"))
    for c in STATS:
        x, y = wa.get_column(c), wb_.get_column(c)
        assert x.is_null().equals(y.is_null()), c
        d = (x - y).abs().max()
        assert d is None or d <= 1e-6, (c, d)
    assert a.summary == b.summary
    assert list(a.changes) == list(b.changes)
    if a.entities is not None:
        assert b.entities is not None
        assert a.entities.drop("shift").equals(b.entities.drop("shift"))
        assert ((a.entities.get_column("shift") - b.entities.get_column("shift")).abs()
                .max() or 0.0) <= 1e-6


def test_equals_single_machine_and_finds_the_change(
        ray_ok: dict, store: wb.Store, stream: wb.datasets.SyntheticStream) -> None:
    import workbench.distributed.drift as dd

    kw = {"every": "1mo", "reference": "previous", "group_by": "user", **FAST}
    got = dd.compute_drift(store, workers=3, **kw)
    _same(got, compute_drift(store, **kw))
    assert got.flagged == [datetime(2025, 3, 1)] and stream.drift_times == [
        datetime(2025, 3, 2)]
    assert got.entities is not None and got.entities.height > 0


def test_where_and_range_reference(ray_ok: dict, store: wb.Store) -> None:
    import workbench.distributed.drift as dd

    kw = {"every": "2w", "reference": (datetime(2025, 1, 1), datetime(2025, 1, 29)),
          "where": pl.col("timestamp") >= datetime(2025, 1, 15), "changes": False, **FAST}
    got = dd.compute_drift(store, **kw)
    _same(got, compute_drift(store, **kw))
    assert got.summary["rows"] < N and got.summary["flagged"] > 0


def test_a_text_time_column_is_parsed_as_on_one_machine(
        ray_ok: dict, tmp_path: Path, stream: wb.datasets.SyntheticStream) -> None:
    import workbench.distributed.drift as dd

    s = wb.Store.create(tmp_path / "s", dim=DIM)
    frame = stream.frame.with_columns(day=pl.col("timestamp").dt.strftime("%d/%m/%Y"))
    s.add(frame, vectors=stream.vectors, progress=False)
    kw = {"every": "1mo", "changes": False, **FAST}
    got = dd.compute_drift(s, time="day", time_format="%d/%m/%Y", workers=2, **kw)
    _same(got, compute_drift(s, time="day", time_format="%d/%m/%Y", **kw))
    # parsed as dates; the windows after the change point differ from the first one
    assert got.flagged == [date(2025, 3, 1), date(2025, 4, 1)]


def test_bad_arguments_are_named(ray_ok: dict, store: wb.Store) -> None:
    import workbench.distributed.drift as dd

    with pytest.raises(InvalidInputError, match="workers"):
        dd.compute_drift(store, workers=0)
    with pytest.raises(InvalidInputError, match="every"):
        dd.compute_drift(store, every="monthly")


def test_empty_selection(ray_ok: dict, tmp_path: Path, store: wb.Store) -> None:
    import workbench.distributed.drift as dd
    from workbench.errors import EmptyInputError

    with pytest.raises(EmptyInputError, match="where"):
        dd.compute_drift(store, where=pl.col("timestamp") < datetime(2000, 1, 1))
