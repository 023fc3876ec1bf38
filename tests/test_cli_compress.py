"""``workbench compress``: vector dtypes and smaller models measured on a store, headless."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

import workbench as wb
from tests.helpers import clustered
from tests.test_cli import run
from workbench.compress import SCHEMES


@pytest.fixture(scope="module")
def vectors_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """600 clustered 32-d vectors with a text column, no embedding model."""
    vecs = clustered(600, 32, centers=8, seed=0)
    path = tmp_path_factory.mktemp("compress") / "store"
    frame = pl.DataFrame({"id": [f"r{i}" for i in range(600)],
                          "text": [f"row {i}" for i in range(600)],
                          "part": [i % 2 for i in range(600)]})
    with wb.Store.create(path, dim=32) as store:
        store.add(frame, vectors=vecs, progress=False)
    return path


def test_compress_writes_the_vector_dtype_table(
    vectors_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "o" / "dtypes.parquet"
    rc, stdout, err = run(capsys, "compress", "--store", str(vectors_store), "--out", str(out),
                          "--dims", "full,16", "--dtypes", "f32,i8,b1", "--queries", "60",
                          "--no-progress")
    assert rc == 0, err
    table = pl.read_parquet(out)
    first = table.row(0, named=True)
    assert (first["dtype"], first["index"], first["dim"]) == ("f32", "exact", 32)
    assert first["recall_at_k"] == 1.0
    assert table["recall_at_k"].max() <= 1.0 and table["recall_at_k"].min() >= 0.0
    assert set(table["dtype"]) == {"f32", "i8", "b1"}
    assert set(table["dim"]) == {32, 16}
    assert set(table["reduce"].drop_nulls()) == {"pca", "truncate"}
    hnsw = table.filter(pl.col("index") == "hnsw")
    assert hnsw.height == 3 * (1 + 2) * 2  # dtypes x (full + two cuts at 16) x rescoring
    assert "best_reduction" in stdout and f"wrote {out}" in stdout
    # the same table as the library call, in the other formats
    for suffix in (".csv", ".json"):
        other = tmp_path / f"dtypes{suffix}"
        rc, _, err = run(capsys, "compress", "--store", str(vectors_store), "--out", str(other),
                         "--dims", "full", "--dtypes", "f32", "--queries", "30",
                         "--where", "part = 1", "--no-progress")
        assert rc == 0, err
        back = pl.read_csv(other) if suffix == ".csv" else pl.read_json(other)
        assert back["dtype"].to_list()[0] == "f32" and back.height == 3  # exact + 2 hnsw


@pytest.mark.parametrize(("extra", "message"), [
    (["--out", "x.txt"], "--out: expected a .parquet, .csv or .json file"),
    (["--out", "x.parquet", "--dims", "full,abc"], "--dims: expected positive integers"),
    (["--out", "x.parquet", "--dtypes", "f32,q3"], "dtypes"),
    (["--out", "x.parquet", "--models", "int3"], "--models: expected schemes among"),
    (["--out", "x.parquet", "--models", "bf16"], "the store has no embedding model"),
    (["--out", "x.parquet", "--where", "part = = 1"], "--where"),
])
def test_compress_bad_input_is_one_line(
    vectors_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, extra: list[str], message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    rc, _, err = run(capsys, "compress", "--store", str(vectors_store), "--no-progress", *extra)
    assert rc == 2
    assert err.startswith("workbench: error: ") and message in err and err.count("\n") == 1
    assert not list(tmp_path.glob("x.*"))  # nothing written


def test_compress_help_names_every_scheme(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "compress", "--help")
    assert rc == 0
    for scheme in SCHEMES:
        assert scheme in " ".join(out.split())


def test_compress_models_of_a_hashing_store_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "h"
    with wb.Store.create(path, embedder=wb.embed.Hashing(dim=64, cache=False)) as store:
        store.add(pl.DataFrame({"id": [str(i) for i in range(40)],
                                "text": [f"text number {i}" for i in range(40)]}),
                  text="text", progress=False)
    rc, _, err = run(capsys, "compress", "--store", str(path), "--out",
                     str(tmp_path / "m.parquet"), "--models", "bf16", "--no-progress")
    assert rc == 2 and "expected a torch model embedder" in err


@pytest.mark.slow
def test_compress_compares_models_against_the_stores(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    docs = wb.datasets.python_docs(limit=150)
    path = tmp_path / "m"
    with wb.Store.create(path, embedder=wb.embed.MiniLM()) as store:
        store.add(docs, text="text", progress=False)
    out = tmp_path / "models.csv"
    rc, stdout, err = run(capsys, "compress", "--store", str(path), "--out", str(out),
                          "--models", "bf16", "--texts", "120", "--sts", "none",
                          "--no-drift", "--no-progress")
    assert rc == 0, err
    table = pl.read_csv(out)
    assert table["name"].to_list()[1:] == ["bf16"] and table.height == 2  # teacher first
    bf16 = table.row(1, named=True)
    assert bf16["knn_recall"] > 0.9 and bf16["mean_cos_to_teacher"] > 0.999
    assert np.isclose(table.row(0, named=True)["knn_recall"], 1.0)
    assert "1 models against sentence-transformers/all-MiniLM-L6-v2 on 120" in stdout
