"""compare_vector_dtypes: recall, sizes, reductions, rescoring, errors; best_reduction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

import workbench as wb
from workbench import errors as E
from workbench.compress.vectors import SCHEMA, best_reduction, compare_vector_dtypes

DIM = 64


def _store(path: Path, x: np.ndarray, **meta: object) -> wb.Store:
    store = wb.Store.create(path, dim=x.shape[1], exact_threshold=256)
    df = pl.DataFrame({"id": [f"v{i}" for i in range(len(x))], **meta})
    store.add(df, vectors=x, progress=False)
    return store


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> wb.Store:
    x, labels = wb.datasets.clustered_vectors(2_100, DIM, n_clusters=40, spread=0.5)
    s = _store(tmp_path_factory.mktemp("cmp") / "s", x,
               u=np.random.default_rng(1).random(len(x)), cat=[f"c{c}" for c in labels])
    s.delete([f"v{i}" for i in range(100)])
    return s


@pytest.fixture(scope="module")
def frame(store: wb.Store) -> pl.DataFrame:
    return compare_vector_dtypes(store, dims=(None, 32), queries=200, progress=False)


def _pick(df: pl.DataFrame, **eq: object) -> pl.DataFrame:
    for col, val in eq.items():
        df = df.filter(pl.col(col).is_null() if val is None else pl.col(col) == val)
    return df


def test_schema_and_layout(frame: pl.DataFrame) -> None:
    assert frame.schema == pl.Schema(SCHEMA)
    # anchor + (full dim + pca + truncate) x 5 dtypes x 2 rescore settings
    assert frame.height == 1 + 3 * 5 * 2
    assert frame.row(0, named=True)["index"] == "exact"
    assert (frame["index"] == "exact").sum() == 1
    assert set(frame["reduce"].drop_nulls()) == {"pca", "truncate"}
    assert _pick(frame, reduce=None, index="hnsw")["dim"].unique().to_list() == [DIM]
    hnsw = frame.filter(pl.col("index") == "hnsw")
    assert hnsw["recall_at_k"].null_count() == 0
    assert (hnsw["qps"] > 0).all() and (hnsw["build_s"] > 0).all()


def test_exact_anchor_and_full_dim_f32_recall(frame: pl.DataFrame, store: wb.Store) -> None:
    exact = frame.row(0, named=True)
    assert exact["recall_at_k"] == 1.0 and exact["dtype"] == "f32" and not exact["rescore"]
    assert exact["bytes_per_vector"] == 4 * DIM and exact["note"]
    # deleted rows are not compared: the anchor's matrix holds the live rows only
    assert exact["index_mb"] == pytest.approx(len(store) * DIM * 4 / 2**20)
    f32 = _pick(frame, index="hnsw", dtype="f32", reduce=None, rescore=False)
    assert f32["recall_at_k"].item() >= 0.95


def test_recall_is_a_share(frame: pl.DataFrame) -> None:
    assert frame["recall_at_k"].is_between(0.0, 1.0).all()


def test_bytes_per_vector_order(frame: pl.DataFrame) -> None:
    for dim in (DIM, 32):
        size = dict(_pick(frame, index="hnsw", dim=dim, rescore=False)
                    .select("dtype", "bytes_per_vector").unique().iter_rows())
        assert size["f32"] > size["f16"] == size["bf16"] > size["i8"] > size["b1"]
        assert size == {"f32": 4 * dim, "f16": 2 * dim, "bf16": 2 * dim, "i8": dim,
                        "b1": dim // 8}
    mb = dict(_pick(frame, index="hnsw", reduce=None, rescore=False)
              .select("dtype", "index_mb").iter_rows())
    assert mb["f32"] > mb["f16"] > mb["i8"] > mb["b1"]


def test_rescoring_keeps_or_raises_recall(frame: pl.DataFrame) -> None:
    hnsw = frame.filter(pl.col("index") == "hnsw")
    pairs = hnsw.filter(~pl.col("rescore")).join(
        hnsw.filter(pl.col("rescore")), on=["dtype", "dim", "reduce"], nulls_equal=True,
        suffix="_r",
    )
    assert pairs.height == 15
    assert (pairs["recall_at_k_r"] >= pairs["recall_at_k"] - 0.02).all()
    b1 = pairs.filter(pl.col("dtype") == "b1")
    assert (b1["recall_at_k_r"] > b1["recall_at_k"] + 0.2).all()
    assert (b1["rescore_factor_r"] == 10).all()
    assert (pairs.filter(pl.col("dtype") != "b1")["rescore_factor_r"] == 4).all()
    assert _pick(frame, dtype="b1", rescore=False, reduce=None)["note"].item()


def test_pca_beats_truncation_on_a_rotated_subspace(tmp_path: Path) -> None:
    # an 8-d clustered signal in the first 8 of 64 coordinates, then a random rotation: its
    # variance lies in a subspace no 8 coordinates span
    latent, _ = wb.datasets.clustered_vectors(2_000, 8, n_clusters=20, intrinsic_dim=8)
    rng = np.random.default_rng(7)
    x = np.zeros((2_000, DIM))
    x[:, :8] = latent
    x += 0.01 * rng.normal(size=x.shape)
    rotation, _ = np.linalg.qr(rng.normal(size=(DIM, DIM)))
    store = _store(tmp_path / "s", (x @ rotation).astype(np.float32))
    df = compare_vector_dtypes(store, dtypes=("f32",), dims=(8,), rescore=(False,),
                               queries=200, progress=False)
    pca = _pick(df, reduce="pca")["recall_at_k"].item()
    trunc = _pick(df, reduce="truncate")["recall_at_k"].item()
    assert pca >= 0.9 and pca > trunc + 0.2
    best = best_reduction(df)
    assert best.columns == ["dim", "best", "recall_pca", "recall_truncate", "margin"]
    assert best.row(0, named=True) == pytest.approx(
        {"dim": 8, "best": "pca", "recall_pca": pca, "recall_truncate": trunc,
         "margin": pca - trunc})


def test_best_reduction_compares_matched_configurations(frame: pl.DataFrame) -> None:
    best = best_reduction(frame)
    assert best["dim"].to_list() == [32]
    cut = frame.filter(pl.col("dim") == 32)
    means = cut.group_by("reduce").agg(pl.col("recall_at_k").mean())
    want = dict(means.iter_rows())
    row = best.row(0, named=True)
    assert row["recall_pca"] == pytest.approx(want["pca"])
    assert row["recall_truncate"] == pytest.approx(want["truncate"])
    assert row["best"] == max(want, key=want.get)
    # a configuration measured with one reduction only is left out of both means
    extra = cut.head(1).with_columns(pl.lit("f64").alias("dtype"), pl.lit(0.0).alias(
        "recall_at_k"))
    assert best_reduction(pl.concat([frame, extra])).equals(best)


def test_best_reduction_by_dtype(frame: pl.DataFrame) -> None:
    best = best_reduction(frame, by=("dtype",))
    assert best.columns == ["dim", "dtype", "best", "recall_pca", "recall_truncate", "margin"]
    assert best.height == 5
    row = best.filter(pl.col("dtype") == "i8").row(0, named=True)
    i8 = _pick(frame, dim=32, dtype="i8").group_by("reduce").agg(pl.col("recall_at_k").mean())
    assert row["recall_pca"] == pytest.approx(dict(i8.iter_rows())["pca"])
    assert (best["margin"] >= 0).all()
    with pytest.raises(E.InvalidInputError, match="by: expected one of"):
        best_reduction(frame, by=("qps",))


def test_best_reduction_errors(frame: pl.DataFrame) -> None:
    with pytest.raises(E.MissingColumnError, match="reduce"):
        best_reduction(frame.drop("reduce"))
    with pytest.raises(E.EmptyInputError, match="reduced dimension"):
        best_reduction(frame.filter(pl.col("reduce").is_null()))


def test_where_and_full_dim_given_as_number(store: wb.Store) -> None:
    where = pl.col("u") < 0.5
    n = store.scan().filter(where).collect().height
    df = compare_vector_dtypes(store, dtypes=("f16",), dims=(None, DIM), rescore=(False,),
                               where=where, queries=100, progress=False)
    assert df.height == 2  # the anchor and one full-dimension index: DIM is None
    assert df["index_mb"][0] == pytest.approx(n * DIM * 4 / 2**20)
    assert df["recall_at_k"][1] >= 0.95


def test_tiny_store_skips_pca_beyond_its_rows(tmp_path: Path) -> None:
    x, _ = wb.datasets.clustered_vectors(20, DIM, n_clusters=3)
    store = _store(tmp_path / "s", x)
    df = compare_vector_dtypes(store, dtypes=("f32",), dims=(32,), rescore=(False,), k=5,
                               queries=1, progress=False)
    skipped = _pick(df, reduce="pca")
    assert skipped["recall_at_k"].item() is None and "skipped" in skipped["note"].item()
    assert _pick(df, reduce="truncate")["recall_at_k"].item() is not None
    assert best_reduction(df)["best"].to_list() == ["truncate"]


def _files(path: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(path)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in path.rglob("*") if p.is_file()}


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"dtypes": ("f32", "f8")}, E.InvalidInputError, "dtypes: expected one of"),
        ({"dtypes": ()}, E.EmptyInputError, "dtypes: expected at least one"),
        ({"dims": (None, DIM + 1)}, E.InvalidInputError, f"dims: .*1 to {DIM}.*got {DIM + 1}"),
        ({"dims": (0,)}, E.InvalidInputError, "dims: expected None or integers"),
        ({"dims": (16.5,)}, E.InvalidInputError, "dims:"),
        ({"reduce": ("umap",)}, E.InvalidInputError, "reduce: expected one of"),
        ({"rescore": (0,)}, E.InvalidInputError, "rescore: expected True, False or a factor"),
        ({"k": 0}, E.InvalidInputError, "k: expected a positive integer"),
        ({"queries": -1}, E.InvalidInputError, "queries: expected a positive integer"),
        ({"k": 2_000}, E.InvalidInputError, "k: expected at most 1999"),
        ({"where": pl.col("u") > 2}, E.EmptyInputError, "where: matches no rows"),
        ({"where": pl.col("nope") > 2}, E.MissingColumnError, "where: names a column"),
    ],
)
def test_bad_inputs_raise_and_leave_the_store_unchanged(
    store: wb.Store, kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    before = (store.generation, len(store), _files(Path(store.path)))
    with pytest.raises(error, match=match):
        compare_vector_dtypes(store, progress=False, **kwargs)  # type: ignore[arg-type]
    assert (store.generation, len(store), _files(Path(store.path))) == before


def test_empty_store_and_too_few_rows(tmp_path: Path) -> None:
    empty = wb.Store.create(tmp_path / "empty", dim=8)
    with pytest.raises(E.EmptyInputError, match="store: is empty"):
        compare_vector_dtypes(empty, dims=(None,), progress=False)
    x, _ = wb.datasets.clustered_vectors(10, 8, n_clusters=2)
    small = _store(tmp_path / "small", x)
    with pytest.raises(E.InvalidInputError, match="k: expected at most 9"):
        compare_vector_dtypes(small, dims=(None,), k=10, progress=False)
    assert len(compare_vector_dtypes(small, dtypes=("i8",), dims=(None,), k=9,
                                     progress=False)) == 3


def test_default_dims_leave_out_cuts_not_below_the_store_dim(tmp_path: Path) -> None:
    x, _ = wb.datasets.clustered_vectors(300, 128, n_clusters=5)
    df = compare_vector_dtypes(_store(tmp_path / "s", x), dtypes=("b1",), reduce=("truncate",),
                               rescore=(True,), queries=20, progress=False)
    assert df["dim"].to_list() == [128, 128, 64]
    assert df["bytes_per_vector"].to_list() == [512, 16, 8]
