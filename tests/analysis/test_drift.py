from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits

import workbench as wb
from workbench.analysis import _drift_stats as ds
from workbench.analysis.drift import DriftResult, compute_drift
from workbench.datasets import synthetic_stream
from workbench.errors import EmptyInputError, InvalidInputError, MissingColumnError

# 4,000 rows over 120 days: weekly windows of ~230 rows, change points on 2025-02-10 (a
# Monday, so a window starts there) and 2025-03-22 (a Saturday, inside a window).
N, DIM, WEEK = 4_000, 16, timedelta(days=7)
FAST = {"n_permutations": 100, "progress": False}


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    # Small BLAS products on 2 shared cores are several times faster single-threaded.
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def stream() -> wb.datasets.SyntheticStream:
    return synthetic_stream(N, DIM, drift_points=2, duplicate_groups=0, random_state=1)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory,
          stream: wb.datasets.SyntheticStream) -> wb.Store:
    s = wb.Store.create(tmp_path_factory.mktemp("drift") / "s", dim=DIM)
    s.add(stream.frame, vectors=stream.vectors, progress=False)
    return s


@pytest.fixture(scope="module")
def weekly_first(store: wb.Store) -> DriftResult:
    with threadpool_limits(1):
        return compute_drift(store, every="1w", reference="first", **FAST)


def _mixture(rng: np.random.Generator, n: int, *, new: float = 0.0) -> NDArray[np.float32]:
    """Four well-separated Gaussian clusters in 16-d; a share `new` of rows from a fifth."""
    centres = np.random.default_rng(123).standard_normal((5, 16)) * 2
    label = rng.integers(4, size=n)
    label[: round(new * n)] = 4
    return (centres[label] + rng.standard_normal((n, 16))).astype(np.float32)


def test_planted_change_points_flagged_after_not_before(
        weekly_first: DriftResult, stream: wb.datasets.SyntheticStream) -> None:
    w = weekly_first.windows
    t0 = stream.drift_times[0]
    assert w.row(0, named=True)["status"] == "reference"
    assert (w.get_column("status").slice(1) == "tested").all()
    after = w.filter(pl.col("start") >= t0).get_column("start").to_list()
    assert weekly_first.flagged == after
    assert not w.filter(pl.col("end") <= t0).get_column("flagged").any()
    # the shift is large after the change, small before
    shift = w.filter(pl.col("status") == "tested")
    before = shift.filter(pl.col("end") <= t0).get_column("centroid_shift")
    later = shift.filter(pl.col("start") >= t0).get_column("centroid_shift")
    assert before.max() < 0.1 < 0.3 < later.min()
    assert weekly_first.summary["first_flagged"] == t0
    assert weekly_first.summary["flagged"] == len(after)


def test_previous_flags_the_windows_at_each_change(
        store: wb.Store, stream: wb.datasets.SyntheticStream) -> None:
    res = compute_drift(store, every="1w", reference="previous", **FAST)
    w = res.windows
    assert w.row(0, named=True)["status"] == "no reference"
    for t in stream.drift_times:  # the window holding the change or the next one
        near = w.filter((pl.col("end") > t) & (pl.col("start") <= t + WEEK))
        assert near.get_column("flagged").any(), t
    for start in res.flagged:  # and nothing else
        assert any(t - WEEK < start <= t + WEEK for t in stream.drift_times), start


def test_stationary_stream_flags_nothing(tmp_path: Path) -> None:
    st = synthetic_stream(2_000, DIM, drift_points=0, duplicate_groups=0, random_state=4)
    s = wb.Store.create(tmp_path / "s", dim=DIM)
    s.add(st.frame, vectors=st.vectors, progress=False)
    res = compute_drift(s, every="2w", reference="previous", **FAST)
    assert res.summary["tested"] >= res.windows.height - 2  # the last window is partial
    assert res.flagged == []
    tested = res.windows.filter(pl.col("status") == "tested")
    assert tested.get_column("centroid_shift").max() < 0.1


def test_window_against_itself(store: wb.Store) -> None:
    lo, hi = datetime(2025, 1, 13), datetime(2025, 1, 20)
    res = compute_drift(store, every="1w", reference=(lo, hi), **FAST)
    row = res.windows.filter(pl.col("start") == lo).row(0, named=True)
    assert row["status"] == "tested" and row["n"] == row["n_reference"] > 100
    assert row["centroid_shift"] == pytest.approx(0.0, abs=1e-9)
    assert row["mmd2"] == pytest.approx(0.0, abs=1e-9)
    for col in ("mmd_p", "classifier_p", "components_p", "p_value"):
        assert row[col] >= 0.5, col
    assert row["auc"] <= 0.55
    assert not row["flagged"]


def test_same_seed_same_p_values(store: wb.Store) -> None:
    kw = {"every": "2w", "reference": "previous", "where": pl.col("timestamp")
          < datetime(2025, 3, 1), **FAST}
    a = compute_drift(store, random_state=5, **kw)
    b = compute_drift(store, random_state=5, **kw)
    assert a.windows.equals(b.windows)
    c = compute_drift(store, random_state=6, **kw)
    assert not a.windows.get_column("mmd_p").equals(c.windows.get_column("mmd_p"))


def test_calibration_under_the_null() -> None:
    """Rejection rate of each test over 200 null splits at alpha 0.05 (binomial sd 0.015)."""
    seeds = 200
    p: dict[str, list[float]] = {"mmd": [], "classifier": [], "components": []}
    for s in range(seeds):
        rng = np.random.default_rng([7, s])
        a, b = _mixture(rng, 100), _mixture(rng, 100)
        p["mmd"].append(ds.mmd_test(a, b, n_permutations=100, random_state=s).p_value)
        # n_splits only changes the AUC; the p-value comes from the held-out half
        p["classifier"].append(ds.classifier_test(a, b, n_splits=2, random_state=s).p_value)
        p["components"].append(ds.components_test(a, b, random_state=s).p_value)
    rates = {k: float(np.mean(np.asarray(v) <= 0.05)) for k, v in p.items()}
    for k, r in rates.items():
        assert 0.02 <= r <= 0.08, (k, rates)


def test_mmd_power_for_a_minority_shift() -> None:
    """8 % of the window's rows from a new cluster: detected in at least 9 of 10 seeds."""
    hits = 0
    for s in range(10):
        rng = np.random.default_rng([11, s])
        ref, win = _mixture(rng, 800), _mixture(rng, 800, new=0.08)
        hits += ds.mmd_test(ref, win, n_permutations=100, random_state=s).p_value <= 0.05
    assert hits >= 9


def test_mmd_permutation_p_value_bounds() -> None:
    rng = np.random.default_rng(0)
    a, b = _mixture(rng, 60), _mixture(rng, 60) + 3.0
    r = ds.mmd_test(a, b, n_permutations=49, random_state=0)
    assert r.p_value == pytest.approx(1 / 50)
    assert r.statistics.shape == r.p_values.shape == (3,)
    assert np.all(r.p_values >= 1 / 50)


def test_holm() -> None:
    adj = ds.holm(np.array([0.01, 0.04, 0.03, 0.5]))
    np.testing.assert_allclose(adj, [0.04, 0.09, 0.09, 0.5])


@pytest.mark.parametrize(("kwargs", "error", "name"), [
    ({"time": "created_at"}, MissingColumnError, "time"),
    ({"time": "regime"}, InvalidInputError, "time"),
    ({"every": "monthly"}, InvalidInputError, "every"),
    ({"every": "1month"}, InvalidInputError, "every"),
    ({"reference": (datetime(2030, 1, 1), datetime(2030, 2, 1))}, EmptyInputError,
     "reference"),
    ({"reference": (datetime(2025, 2, 1), datetime(2025, 1, 1))}, InvalidInputError,
     "reference"),
    ({"reference": "rolling:0"}, InvalidInputError, "reference"),
    ({"reference": "last"}, InvalidInputError, "reference"),
    ({"methods": ("mmd", "energy")}, InvalidInputError, "methods"),
    ({"methods": ()}, EmptyInputError, "methods"),
    ({"alpha": 1.5}, InvalidInputError, "alpha"),
    ({"min_rows": 3}, InvalidInputError, "min_rows"),
    ({"where": pl.col("nope") > 1}, MissingColumnError, "where"),
])
def test_bad_input(store: wb.Store, kwargs: dict, error: type[Exception], name: str) -> None:
    with pytest.raises(error, match=name) as info:
        compute_drift(store, **{"progress": False, **kwargs})
    assert isinstance(info.value, wb.errors.WorkbenchError)


def test_too_few_rows_reported_not_tested(store: wb.Store) -> None:
    res = compute_drift(store, every="1w", reference="previous", min_rows=200,
                        methods=("centroid", "mmd"), **FAST)
    w = res.windows
    small = w.filter(pl.col("status") == "too few rows")
    assert small.height >= 2  # the second window (reference of 147 rows), the last (108)
    assert ((small.get_column("n") < 200) | (small.get_column("n_reference") < 200)).all()
    for col in ("mmd_p", "p_value", "p_adjusted"):
        assert small.get_column(col).null_count() == small.height
    assert not small.get_column("flagged").any()
    assert small.get_column("centroid_shift").null_count() == 0  # still measured
    tested = w.filter(pl.col("status") == "tested")
    assert tested.height == res.summary["tested"] == w.height - small.height - 1
    assert (tested.get_column("mmd_p").null_count(), tested.get_column("auc").null_count()) == (
        0, tested.height)  # classifier not run


def test_rolling_reference_pools_previous_windows(store: wb.Store) -> None:
    res = compute_drift(store, every="1w", reference="rolling:3", methods=("centroid",),
                        **FAST)
    n = res.windows.get_column("n").to_list()
    n_ref = res.windows.get_column("n_reference").to_list()
    assert n_ref[:4] == [0, n[0], n[0] + n[1], n[0] + n[1] + n[2]]
    assert n_ref[5] == sum(n[2:5])
    assert res.windows.get_column("p_value").null_count() == res.windows.height


def test_result_helpers(weekly_first: DriftResult) -> None:
    import matplotlib

    matplotlib.use("Agg")
    assert weekly_first.to_frame() is weekly_first.windows
    assert weekly_first.windows.columns == [
        "start", "end", "n", "n_reference", "status", "centroid_shift", "mmd2", "mmd_p",
        "auc", "classifier_p", "components_drifted", "components_p", "p_value",
        "p_adjusted", "flagged"]
    assert weekly_first.params["every"] == "1w"
    assert weekly_first.summary["windows"] == weekly_first.windows.height
    fig = weekly_first.plot()
    assert len(fig.axes) == 5


def _interest_store(tmp_path: Path) -> tuple[wb.Store, set[str]]:
    """40 users over four months, 12 rows each a month around their topic; users 0-4 switch
    to another topic from the third month."""
    from datetime import datetime, timedelta

    rng = np.random.default_rng(4)
    d = 16
    topics = rng.standard_normal((8, d))
    rows, vecs = [], []
    for u in range(40):
        for month in range(4):
            topic = (u % 8 + 3) % 8 if (u < 5 and month >= 2) else u % 8
            for j in range(12):
                rows.append({"id": f"u{u}-{month}-{j}", "user": f"user{u}",
                             "timestamp": datetime(2025, month + 1, 1) + timedelta(days=j)})
                vecs.append(topics[topic] + 0.4 * rng.standard_normal(d))
    store = wb.Store.create(tmp_path / "users", dim=d)
    store.add(pl.DataFrame(rows), vectors=np.asarray(vecs, dtype=np.float32), progress=False)
    return store, {f"user{u}" for u in range(5)}


@pytest.mark.parametrize("reference", ["first", "previous", "rolling:2"])
def test_group_by_finds_the_entities_whose_interest_moved(tmp_path: Path,
                                                          reference: str) -> None:
    store, movers = _interest_store(tmp_path)
    res = compute_drift(store, every="1mo", reference=reference, group_by="user",
                        methods=("centroid",), progress=False)
    assert res.entities is not None and res.summary["entities"] == 40
    assert res.entities.height == 160  # every user in every month
    top = res.moved_most(5)
    assert set(top.get_column("entity").to_list()) == movers
    # the move is seen from the third month (2025-03) on, against the entity's own reference:
    # a "first" reference sees it in months 3 and 4 alike, the others in month 3 most
    months = set(top.get_column("at").dt.month().to_list())
    assert months <= ({3, 4} if reference == "first" else {3})
    stable = res.entities.filter(~pl.col("entity").is_in(list(movers)))
    assert stable.get_column("shift").drop_nulls().max() < top.get_column("max_shift").min()
    # the first month has no reference of its own
    first = res.entities.filter(pl.col("start").dt.month() == 1)
    assert first.get_column("shift").null_count() == first.height


def test_group_by_bad_column_and_result_without_it(tmp_path: Path) -> None:
    store, _ = _interest_store(tmp_path)
    with pytest.raises(MissingColumnError, match="group_by"):
        compute_drift(store, every="1mo", group_by="nope", progress=False)
    res = compute_drift(store, every="1mo", methods=("centroid",), progress=False)
    assert res.entities is None
    with pytest.raises(InvalidInputError, match="group_by"):
        res.moved_most()


def test_what_changed_names_a_planted_new_topic(tmp_path: Path) -> None:
    """Month 2 gets 15 % of its rows from a topic absent in month 1, with its own word:
    the window is flagged; its rows unlike the reference, the keywords and the examples point
    at that topic; the clusters' shift contributions add up to 1."""
    rng = np.random.default_rng(8)
    d = 16
    centers = rng.standard_normal((7, d)) * 3
    words = ["river", "stone", "cloud", "field", "grain", "amber", "frost"]

    def month(m: int, n: int, new_share: float) -> tuple[list[dict[str, object]], list]:
        rows, vecs = [], []
        for j in range(n):
            new = j < int(n * new_share)
            c = 6 if new else int(rng.integers(0, 6))
            rows.append({"id": f"m{m}-{j}", "timestamp": datetime(2025, m, 1 + j % 27),
                         "text": f"{words[c]} note {'quantum' if new else 'plain'} {j}"})
            vecs.append(centers[c] + rng.standard_normal(d))
        return rows, vecs

    r1, v1 = month(1, 600, 0.0)
    r2, v2 = month(2, 600, 0.15)
    store = wb.Store.create(tmp_path / "s", dim=d)
    store.add(pl.DataFrame(r1 + r2), vectors=np.asarray(v1 + v2, dtype=np.float32),
              progress=False)
    res = compute_drift(store, every="1mo", n_clusters=6, progress=False)
    feb = res.windows.filter(pl.col("start").dt.month() == 2)
    assert feb.get_column("flagged").item()
    ch = res.changes[feb.get_column("start").item()]
    assert ch["novel_share"] >= 0.1  # the new topic's 15 %, unlike any reference cluster
    assert "quantum" in ch["keywords"][:3] and "frost" in ch["keywords"][:3]
    assert all("quantum" in t for t in ch["examples"].get_column("text").to_list())
    contrib = ch["clusters"].get_column("shift_contribution").sum()
    assert contrib == pytest.approx(1.0, abs=1e-6)
    assert ch["source"].startswith("k-means")


@pytest.fixture(scope="module")
def text_time_store(tmp_path_factory: pytest.TempPathFactory) -> wb.Store:
    """A stream whose day is stored three ways: Date, ISO text, day-first text."""
    st = synthetic_stream(1_500, DIM, drift_points=1, duplicate_groups=0, random_state=2)
    ts = pl.col("timestamp")
    frame = st.frame.with_columns(day=ts.dt.date(), iso=ts.dt.strftime("%Y-%m-%d"),
                                  eu=ts.dt.strftime("%d/%m/%Y"),
                                  iso_time=ts.dt.strftime("%Y-%m-%d %H:%M:%S"))
    s = wb.Store.create(tmp_path_factory.mktemp("drift_text") / "s", dim=DIM)
    s.add(frame, vectors=st.vectors, progress=False)
    return s


@pytest.mark.parametrize(("time", "time_format", "like"), [
    ("iso", None, "day"), ("eu", "%d/%m/%Y", "day"), ("iso_time", None, "timestamp"),
])
def test_text_time_column_is_parsed(text_time_store: wb.Store, time: str,
                                    time_format: str | None, like: str) -> None:
    kw = {"every": "1mo", "methods": ("centroid", "mmd"), **FAST}
    got = compute_drift(text_time_store, time=time, time_format=time_format, **kw)
    want = compute_drift(text_time_store, time=like, **kw)
    assert got.windows.height >= 4
    assert got.windows.equals(want.windows)  # same windows, dtypes and statistics
    assert got.params["time_format"] == time_format


def test_text_time_where_sees_dates(text_time_store: wb.Store) -> None:
    kw = {"every": "1mo", "methods": ("centroid",), **FAST}
    got = compute_drift(text_time_store, time="iso",
                        where=pl.col("iso") >= datetime(2025, 2, 1).date(), **kw)
    assert got.windows.get_column("start").min() == datetime(2025, 2, 1).date()


@pytest.mark.parametrize(("time", "time_format", "bad"), [
    ("eu", None, "/2025"),           # day-first text needs its layout
    ("iso", "%d/%m/%Y", "2025-"),    # the wrong layout
])
def test_text_time_column_that_does_not_parse(text_time_store: wb.Store, time: str,
                                              time_format: str | None, bad: str) -> None:
    with pytest.raises(InvalidInputError, match="time_format=") as info:
        compute_drift(text_time_store, time=time, time_format=time_format, progress=False)
    msg = str(info.value)
    assert repr(time) in msg and bad in msg  # names the column and a value


def test_time_format_must_be_a_format(text_time_store: wb.Store) -> None:
    with pytest.raises(InvalidInputError, match="time_format"):
        compute_drift(text_time_store, time="iso", time_format="dd/mm/yyyy", progress=False)
    with pytest.raises(InvalidInputError, match="Date or Datetime"):
        compute_drift(text_time_store, time="regime", progress=False)  # an integer column


def test_missing_time_column_says_to_pass_time(text_time_store: wb.Store) -> None:
    with pytest.raises(MissingColumnError, match="time=") as info:
        compute_drift(text_time_store, time="date", progress=False)
    assert "'day'" in str(info.value) and "'iso'" in str(info.value)  # the candidates
