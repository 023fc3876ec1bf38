"""``workbench ingest|dedup|drift|cluster --ray``: the same results as without, on the session
cluster; the Ray-only options are one-line errors without --ray."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import workbench as wb
from tests.test_cli import corpus, run, write
from tests.test_cli_drift import _store as drift_store
from workbench.cli import main

from .conftest import RAY_TIMEOUT

pytestmark = pytest.mark.timeout(RAY_TIMEOUT)


def _ray(info: dict) -> list[str]:
    """--ray with the session cluster's address, so the job joins it."""
    return ["--ray", info["address"]]


def _one_line_error(rc: int, out: str, err: str, expect: str) -> None:
    assert rc == 2 and out == ""
    assert err.startswith("workbench: error: ") and err.count("\n") == 1, err
    assert expect in err, err


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 600 rows: enough blocks for two embedding actors (Ray Data warns about idle ones)
    return write(corpus(200), tmp_path_factory.mktemp("docs") / "docs.parquet")


@pytest.fixture(scope="module")
def store_path(docs: Path) -> Path:
    """A hashing store of the 600-row corpus, ingested without Ray."""
    path = docs.parent / "store"
    rc = main(["ingest", "--store", str(path), "--model", "hashing", "--cache",
                      str(docs.parent / "cache"), "--no-progress", "--input", str(docs),
                      "--text", "text"])
    assert rc == 0
    return path


def _content(path: Path) -> tuple[pl.DataFrame, np.ndarray]:
    with wb.Store.open(path, readonly=True) as s:
        meta = s.scan().collect().drop("key").sort("id")
        return meta, s.vectors(meta.get_column("id").to_list())


# ------------------------------------------------------------------------------------ ingest
def test_ingest_on_ray_gives_the_store_of_ingest_without(
    ray_ok: dict, docs: Path, store_path: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "store"
    opts = ["ingest", "--store", str(path), "--model", "hashing", "--cache",
            str(tmp_path / "cache"), "--no-progress", "--text", "text"]
    # a first part without Ray: the Ray job skips those ids and adds the rest
    first = write(pl.read_parquet(docs).head(100), tmp_path / "first.parquet")
    rc, _, err = run(capsys, *opts, "--input", str(first))
    assert rc == 0, err
    rc, out, err = run(capsys, *opts, "--input", str(docs), *_ray(ray_ok), "--workers", "2",
                       "--batch", "200", "--rows-per-segment", "100")
    assert rc == 0, err
    assert re.fullmatch(r"added 500 rows, skipped 100 already in the store; \S+ holds 600 "
                        r"rows \(\d+\.\d s; 2 workers, \d+ segments\)\n", out), out
    want_meta, want_vecs = _content(store_path)
    got_meta, got_vecs = _content(path)
    assert got_meta.equals(want_meta)
    np.testing.assert_allclose(got_vecs, want_vecs, atol=1e-6)
    with wb.Store.open(path, readonly=True) as s:
        assert s.model is not None and s.model.kind == "hashing"


@pytest.mark.parametrize(("extra", "expect"), [
    (["--text", "body"], "--text: "),
    (["--text", "text", "--id", "doc"], "--id: "),
])
def test_ingest_on_ray_bad_input_is_one_line_and_writes_nothing(
    ray_ok: dict, docs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    extra: list[str], expect: str,
) -> None:
    path = tmp_path / "store"
    rc, out, err = run(capsys, "ingest", "--store", str(path), "--model", "hashing",
                       "--no-progress", "--input", str(docs), *extra, *_ray(ray_ok))
    _one_line_error(rc, out, err, expect)
    assert not path.exists()


# ------------------------------------------------------------------------------------ dedup
@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A vectors-only store of 600 rows with text and 6 planted groups of 3."""
    stream = wb.datasets.synthetic_stream(600, 32, duplicate_groups=6, drift_points=0)
    texts = [f"row {i}" for i in range(600)]
    path = tmp_path_factory.mktemp("dedup") / "store"
    with wb.Store.create(path, dim=32) as store:
        store.add(stream.frame.with_columns(text=pl.Series(texts)), vectors=stream.vectors,
                  progress=False)
    return path


def test_dedup_on_ray_equals_lsh_cosine_without(
    ray_ok: dict, planted: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    base = ["dedup", "--store", str(planted), "--threshold", "0.98", "--no-progress"]
    rc, want, err = run(capsys, *base, "--out", str(tmp_path / "a.parquet"),
                        "--method", "cosine", "--candidates", "lsh")
    assert rc == 0, err
    rc, got, err = run(capsys, *base, "--out", str(tmp_path / "b.parquet"), *_ray(ray_ok),
                       "--workers", "2")
    assert rc == 0, err
    assert got.startswith("6 duplicate groups over 600 rows: 12 duplicates")
    assert got.replace("b.parquet", "a.parquet") == want
    assert pl.read_parquet(tmp_path / "b.parquet").equals(pl.read_parquet(tmp_path / "a.parquet"))


@pytest.mark.parametrize(("extra", "expect"), [
    ([], "--threshold: with --ray the cosine a pair must reach is required"),
    (["--threshold", "0.9", "--method", "hybrid"], "--method: with --ray pairs are scored by "
                                                   "cosine only"),
    (["--threshold", "0.9", "--candidates", "index"], "--candidates: with --ray candidate "
                                                      "pairs come from LSH only"),
])
def test_dedup_on_ray_rejects_what_it_cannot_do(
    planted: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str],
    expect: str,
) -> None:
    out_file = tmp_path / "d.parquet"
    rc, out, err = run(capsys, "dedup", "--store", str(planted), "--out", str(out_file),
                       *extra, "--ray", "--no-progress")
    _one_line_error(rc, out, err, expect)
    assert not out_file.exists()


# ------------------------------------------------------------------------------------ drift
def test_drift_on_ray_equals_drift_without(
    ray_ok: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    path = drift_store(tmp_path / "s", drift_points=2)
    base = ["drift", "--store", str(path), "--no-progress"]
    rc, want, err = run(capsys, *base, "--out", str(tmp_path / "a.html"), "--json",
                        str(tmp_path / "a.json"))
    assert rc == 1, err
    rc, got, err = run(capsys, *base, "--out", str(tmp_path / "b.html"), "--json",
                       str(tmp_path / "b.json"), *_ray(ray_ok), "--workers", "2")
    assert rc == 1, err
    # the windows, tests and flags agree; statistics within float rounding
    assert got.splitlines()[-2] == want.splitlines()[-2]
    assert "flagged: 2025-02-01" in got
    a, b = (json.loads((tmp_path / f).read_text()) for f in ("a.json", "b.json"))
    assert len(a) == len(b)
    for wa, wb_ in zip(a, b, strict=True):
        assert wa.keys() == wb_.keys()
        for k, v in wa.items():
            if isinstance(v, float):
                assert wb_[k] == pytest.approx(v, rel=1e-5, abs=1e-9), k
            else:
                assert wb_[k] == v, k
    assert (tmp_path / "b.html").stat().st_size > 0


# ------------------------------------------------------------------------------------ cluster
def test_cluster_on_ray_equals_cluster_without(
    ray_ok: dict, store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    base = ["cluster", "--store", str(store_path), "--min-cluster-size", "5", "--reducer",
            "pca", "--layout", "pca", "--no-progress"]
    rc, want, err = run(capsys, *base, "--out", str(tmp_path / "a.parquet"))
    assert rc == 0, err
    rc, got, err = run(capsys, *base, "--out", str(tmp_path / "b.parquet"), *_ray(ray_ok))
    assert rc == 0, err
    got_lines = got.splitlines()
    assert got_lines[1] == "fitted on 600 of 600 rows (--sample); 0 assigned in 0 Ray tasks " \
                           "with 0 workers"
    # the same clusters, metrics and keywords; only the file's columns differ
    assert got_lines[:1] + got_lines[2:-1] == want.splitlines()[:-1]
    a = pl.read_parquet(tmp_path / "a.parquet").sort("key")
    b = pl.read_parquet(tmp_path / "b.parquet").sort("key")
    assert b.columns == ["key", "id", "cluster", "topic", "x", "y", "confidence", "fitted"]
    assert b["cluster"].to_list() == a["cluster"].to_list()
    assert b["topic"].to_list() == a["name"].to_list()
    np.testing.assert_allclose(b["x"].to_numpy(), a["x"].to_numpy(), atol=1e-6)
    assert b["fitted"].all()


def test_cluster_on_ray_fits_a_sample_and_assigns_the_rest(
    ray_ok: dict, store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    out_file = tmp_path / "c.parquet"
    rc, out, err = run(capsys, "cluster", "--store", str(store_path), "--out", str(out_file),
                       "--min-cluster-size", "4", "--reducer", "pca", "--layout", "pca",
                       "--no-progress", *_ray(ray_ok), "--sample", "200", "--workers", "2")
    assert rc == 0, err
    assert "fitted on 200 of 600 rows (--sample); 400 assigned in " in out
    res = pl.read_parquet(out_file)
    assert res.height == 600 and res["fitted"].sum() == 200
    # the three topics stay three pure clusters, assigned rows included
    truth = corpus(200).select("id", "topic").join(res, on="id")
    clustered = truth.filter(pl.col("cluster") >= 0)
    assert clustered.group_by("cluster").agg(pl.col("topic").n_unique())["topic"].max() == 1
    # the printed sizes count every row, not only the fitted ones
    sizes = [int(line.split()[1]) for line in out.splitlines() if line[:7].strip().isdigit()]
    assert sum(sizes) == clustered.height


# ------------------------------------------------------------------- options without --ray
@pytest.mark.parametrize(("command", "option"), [
    ("ingest", "--workers"), ("dedup", "--workers"), ("drift", "--workers"),
    ("cluster", "--workers"), ("cluster", "--sample"), ("ingest", "--rows-per-segment"),
])
def test_ray_options_without_ray_are_one_line_errors(
    command: str, option: str, store_path: Path, docs: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    target = tmp_path / ("new-store" if command == "ingest" else "out.x")
    args = {"ingest": ["--store", str(target), "--input", str(docs), "--text", "text"],
            "dedup": ["--store", str(store_path), "--out", str(target)],
            "drift": ["--store", str(store_path), "--out", str(target)],
            "cluster": ["--store", str(store_path), "--out", str(target)]}[command]
    rc, out, err = run(capsys, command, *args, option, "2")
    _one_line_error(rc, out, err, f"{option}: only with --ray")
    assert not target.exists()


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_workers_must_be_a_positive_integer(
    value: str, store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    out_file = tmp_path / "d.parquet"
    rc, out, err = run(capsys, "dedup", "--store", str(store_path), "--out", str(out_file),
                       "--ray", "--workers", value)
    assert rc == 2 and out == ""
    assert f"--workers: expected a positive integer, got {value!r}" in err
    assert not out_file.exists()


def test_the_jobs_without_ray_do_not_load_it(store_path: Path, tmp_path: Path) -> None:
    code = ("import sys; from workbench.cli import main; "
            f"rc = main(['dedup', '--store', {str(store_path)!r}, '--out', "
            f"{str(tmp_path / 'd.parquet')!r}, '--no-progress']); "
            "print(rc, 'ray' in sys.modules, 'workbench.distributed' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.split()[-3:] == ["0", "False", "False"]


def test_an_address_nothing_listens_on_is_a_one_line_error(
    store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    out_file = tmp_path / "d.html"
    for address, expect in (("127.0.0.1:1", "--ray: no Ray cluster answers at 127.0.0.1:1"),
                            ("nohost", "--ray: expected HOST:PORT or 'auto', got 'nohost'")):
        rc, out, err = run(capsys, "drift", "--store", str(store_path), "--out", str(out_file),
                           "--ray", address, "--no-progress")
        _one_line_error(rc, out, err, expect)
    assert not out_file.exists()
