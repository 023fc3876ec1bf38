# ruff: noqa: F811 - the fixtures opts and store_path come from tests.test_cli
"""Issue #24: a newcomer's own CSV/Parquet through the CLI (dates, encodings, empty files,
info, search columns, cluster topics, compress advice, distill, start-up time)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

import workbench as wb
from tests.test_cli import TOPICS, corpus, opts, run, store_path, write  # noqa: F401


def dated(n: int = 240) -> pl.DataFrame:
    """`n` rows of three topics over three months, ``date`` as ISO text."""
    day = date(2025, 8, 1)
    return pl.DataFrame({
        "id": [f"p{i}" for i in range(n)],
        "text": [f"{TOPICS[i % 3]} package {i}" for i in range(n)],
        "date": [(day + timedelta(days=i * 90 // n)).isoformat() for i in range(n)],
        "stars": [i % 7 for i in range(n)],
    })


def ingest(capsys: pytest.CaptureFixture[str], opts: list[str], path: Path,
           *extra: str) -> tuple[int, str, str]:
    return run(capsys, "ingest", *opts, "--input", str(path), "--text", "text", *extra)


# ------------------------------------------------------------------------------------ dates
def test_csv_dates_are_parsed_on_ingest_unless_asked_not_to(
    tmp_path: Path, opts: list[str], capsys: pytest.CaptureFixture[str],
) -> None:
    src = write(dated(30), tmp_path / "p.csv")
    rc, out, err = ingest(capsys, opts, src)
    assert rc == 0, err
    assert "date columns: date (Date)" in out
    with wb.Store.open(tmp_path / "store", readonly=True) as s:
        assert s.scan().collect_schema()["date"] == pl.Date
    other = ["--store", str(tmp_path / "raw"), *opts[2:]]
    rc, _, err = ingest(capsys, other, src, "--no-parse-dates")
    assert rc == 0, err
    with wb.Store.open(tmp_path / "raw", readonly=True) as s:
        assert s.scan().collect_schema()["date"] == pl.Utf8


def test_time_format_reads_non_iso_dates(
    tmp_path: Path, opts: list[str], capsys: pytest.CaptureFixture[str],
) -> None:
    df = dated(6).with_columns(
        pl.col("date").str.to_date().dt.strftime("%d/%m/%Y"))  # 13/08/2025: day first
    rc, _, err = ingest(capsys, opts, write(df, tmp_path / "p.jsonl"), "--time-format",
                        "%d/%m/%Y")
    assert rc == 0, err
    with wb.Store.open(tmp_path / "store", readonly=True) as s:
        got = s.scan().select("id", "date").collect().sort("id")
    assert got["date"].dtype == pl.Date
    assert got.filter(pl.col("id") == "p5")["date"].item() == date(2025, 8, 1) + timedelta(
        days=5 * 90 // 6)


def test_drift_parses_a_text_time_column_and_says_so(
    tmp_path: Path, opts: list[str], capsys: pytest.CaptureFixture[str],
) -> None:
    rc, _, err = ingest(capsys, opts, write(dated(), tmp_path / "p.csv"), "--no-parse-dates")
    assert rc == 0, err
    store = str(tmp_path / "store")
    rc, out, err = run(capsys, "drift", "--store", store, "--time", "date", "--out",
                       str(tmp_path / "d.html"), "--methods", "centroid", "--no-progress")
    assert rc in (0, 1), err
    assert err.count("\n") == 1 and "parsed it as Date" in err and "re-ingest" in err
    assert "3 windows" in out and (tmp_path / "d.html").exists()
    # text that is not dates: what to do instead
    rc, _, err = run(capsys, "drift", "--store", store, "--time", "text", "--out",
                     str(tmp_path / "x.html"), "--no-progress")
    assert rc == 2 and err.count("\n") == 1
    assert "expected a Date or Datetime column" in err and "--time-format" in err
    assert not (tmp_path / "x.html").exists()


@pytest.mark.parametrize("where", ["date > '2025-10-01'", "'2025-10-01' < date",
                                   "date BETWEEN '2025-10-01' AND '2025-12-31'",
                                   "date > DATE '2025-10-01'"])
def test_where_compares_a_date_column_with_an_iso_string(
    tmp_path: Path, opts: list[str], capsys: pytest.CaptureFixture[str], where: str,
) -> None:
    df = dated(30)
    rc, _, err = ingest(capsys, opts, write(df, tmp_path / "p.csv"))
    assert rc == 0, err
    rc, out, err = run(capsys, "search", "--store", str(tmp_path / "store"), "apple", "-k",
                       "30", "--where", where, "--json")
    assert rc == 0, err
    got = {json.loads(line)["id"] for line in out.splitlines()}
    assert got == set(df.filter(pl.col("date") > "2025-10-01")["id"])


def test_where_with_a_non_iso_date_string_says_what_to_write(
    tmp_path: Path, opts: list[str], capsys: pytest.CaptureFixture[str],
) -> None:
    rc, _, err = ingest(capsys, opts, write(dated(30), tmp_path / "p.csv"))
    assert rc == 0, err
    rc, _, err = run(capsys, "search", "--store", str(tmp_path / "store"), "apple",
                     "--where", "date > '01/10/2025'")
    assert rc == 2 and err.count("\n") == 1 and "DATE '2025-10-01'" in err


# ------------------------------------------------------------------------------------ files
def test_empty_and_badly_encoded_csv_name_the_file(
    tmp_path: Path, opts: list[str], capsys: pytest.CaptureFixture[str],
) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    rc, _, err = ingest(capsys, opts, empty)
    assert rc == 2 and err.count("\n") == 1 and str(empty) in err and "empty" in err
    latin = tmp_path / "latin.csv"
    latin.write_bytes("id,text\na,caf\xe9 cr\xe8me\n".encode("latin-1"))
    rc, _, err = ingest(capsys, opts, latin)
    assert rc == 2 and err.count("\n") == 1 and str(latin) in err
    assert "invalid UTF-8" in err and "--encoding latin-1" in err
    assert not (tmp_path / "store").exists()
    rc, out, err = ingest(capsys, opts, latin, "--encoding", "latin-1")
    assert rc == 0, err
    assert out.startswith("added 1 row, ") and "holds 1 row " in out  # singular
    with wb.Store.open(tmp_path / "store", readonly=True) as s:
        assert s.scan().collect()["text"].to_list() == ["café crème"]


def test_header_only_csv_warns_creates_nothing_and_exits_2(
    tmp_path: Path, opts: list[str], capsys: pytest.CaptureFixture[str],
) -> None:
    src = tmp_path / "header.csv"
    src.write_text("id,text,date\n")
    rc, out, err = ingest(capsys, opts, src)
    assert rc == 2 and out == ""
    assert err.startswith("workbench: warning:") and "no rows" in err
    assert not (tmp_path / "store").exists()


def test_ingest_draws_one_progress_bar_over_all_batches(
    tmp_path: Path, opts: list[str], capsys: pytest.CaptureFixture[str],
) -> None:
    with_bar = [o for o in opts if o != "--no-progress"]
    rc, _, err = ingest(capsys, with_bar, write(corpus(), tmp_path / "d.csv"), "--batch", "7")
    assert rc == 0
    # one bar counting the 30 rows (tqdm redraws it with \r), not one bar per batch of 7
    assert err.count("embedding:") >= 1 and "30/30" in err
    assert "7/7" not in err and "/2 " not in err


# ------------------------------------------------------------------------------------ info
def test_info_takes_store_or_path_and_lists_the_columns(
    store_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    rc, by_option, err = run(capsys, "info", "--store", str(store_path))
    assert rc == 0, err
    rc, by_path, _ = run(capsys, "info", str(store_path))
    assert rc == 0 and by_path == by_option
    assert "metadata columns (3):" in by_option
    lines = {tuple(line.split()) for line in by_option.splitlines()}
    assert {("text", "String"), ("lang", "String"), ("topic", "Int64")} <= lines
    rc, _, err = run(capsys, "info")
    assert rc == 2 and "--store" in err


# ------------------------------------------------------------------------------------ search
def test_search_columns_shows_chosen_metadata(
    store_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    target = corpus().filter(pl.col("id") == "d17").row(0, named=True)
    rc, out, err = run(capsys, "search", "--store", str(store_path), target["text"], "-k", "3",
                       "--columns", "lang,topic")
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["id", "distance", "lang", "topic", "text"]
    assert lines[2].split()[:4] == ["d17", "0.0000", target["lang"], str(target["topic"])]
    rc, _, err = run(capsys, "search", "--store", str(store_path), "q", "--columns", "year")
    assert rc == 2 and "--columns" in err and "'year'" in err


# ------------------------------------------------------------------------------------ cluster
def test_cluster_reports_reassigned_noise_topics_and_writes_keywords(
    tmp_path: Path, store_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    out_file = tmp_path / "c.parquet"
    base = ["cluster", "--store", str(store_path), "--out", str(out_file),
            "--min-cluster-size", "5", "--reducer", "pca", "--layout", "pca", "--no-progress",
            "--no-cache"]
    rc, out, err = run(capsys, *base, "--topics", "2")
    assert rc == 0, err
    res = pl.read_parquet(out_file)
    assert res["cluster"].n_unique() == 2 and res["cluster"].min() >= 0
    assert "HDBSCAN noise" in out and "reassigned to the nearest topic" in out
    assert "(cut at --topics)" in out
    noise = (res["hdbscan_cluster"] < 0).sum()
    assert f"({noise} row{'s' * (noise != 1)})" in out
    topics = pl.read_csv(tmp_path / "c.parquet.topics.csv")
    assert topics.columns == ["cluster", "name", "size", "keywords"]
    assert topics["size"].sum() == 30 and topics.height == 2
    assert all(topics["keywords"].str.len_chars() > 0)
    rc, help_text, _ = run(capsys, "cluster", "--help")
    assert "-1 is noise" not in help_text and "--topics N" in help_text


# ------------------------------------------------------------------------------------ compress
def test_compress_leads_with_advice_and_the_pareto_front(
    tmp_path: Path, store_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    out_file = tmp_path / "t.parquet"
    rc, out, err = run(capsys, "compress", "--store", str(store_path), "--out", str(out_file),
                       "--dims", "full,64", "--dtypes", "f32,i8,b1", "--queries", "20",
                       "-k", "5", "--no-progress")
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("advice: ") and lines[0].count(".") <= 3
    assert lines[1].startswith("Pareto front (")
    # the printed front: the columns a reader compares, rounded (the file keeps the rest)
    header = next(line for line in lines if "dtype" in line and "qps" in line)
    assert "build_s" not in header and "rescore_factor" not in header
    qps_cells = [line.split("┆")[-2].strip() for line in lines[2:]
                 if line.count("┆") == 8 and "dtype" not in line]
    assert qps_cells and all(c.isdigit() for c in qps_cells)
    table = pl.read_parquet(out_file)
    from workbench.cli.compress import pareto_front

    front = pareto_front(table, {"bytes_per_vector": "min", "qps": "max",
                                 "recall_at_k": "max"})
    assert 0 < front.height < table.height
    # no row of the table beats a front row on all three at once
    for row in front.iter_rows(named=True):
        assert table.filter((pl.col("bytes_per_vector") <= row["bytes_per_vector"])
                            & (pl.col("qps") >= row["qps"])
                            & (pl.col("recall_at_k") >= row["recall_at_k"])
                            & ((pl.col("bytes_per_vector") < row["bytes_per_vector"])
                               | (pl.col("qps") > row["qps"])
                               | (pl.col("recall_at_k") > row["recall_at_k"]))).height == 0


# ------------------------------------------------------------------------------------ distill
def test_distill_refuses_a_store_without_a_transformer_model(
    tmp_path: Path, store_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    rc, _, err = run(capsys, "distill", "--store", str(store_path), "--out",
                     str(tmp_path / "student"), "--no-progress")
    assert rc == 2 and err.count("\n") == 1 and "transformer model" in err
    assert not (tmp_path / "student").exists()


@pytest.mark.slow
def test_distill_makes_a_student_that_compress_measures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    # MiniLM as the teacher: distill writes the folder compress --student reads
    store = tmp_path / "store"
    data = write(corpus(20), tmp_path / "docs.csv")
    rc, _, err = run(capsys, "ingest", "--store", str(store), "--input", str(data), "--text",
                     "text", "--cache", str(tmp_path / "cache"), "--no-progress")
    assert rc == 0, err
    student = tmp_path / "student"
    rc, out, err = run(capsys, "distill", "--store", str(store), "--out", str(student),
                       "--dim", "32", "--epochs", "1", "--no-progress")
    assert rc == 0, err
    assert out.startswith(f"wrote {student}: a static student")
    assert (student / "student.json").is_file()
    rc, out, err = run(capsys, "compress", "--store", str(store), "--student", str(student),
                       "--out", str(tmp_path / "m.csv"), "--texts", "60", "--no-drift",
                       "--no-progress")
    assert rc == 0, err
    table = pl.read_csv(tmp_path / "m.csv")
    row = table.filter(pl.col("role") == "variant").row(0, named=True)
    assert row["dim"] == 32 and row["name"].startswith("student-static-32")
    # a student is far smaller than its teacher
    teacher = table.filter(pl.col("role") == "teacher").row(0, named=True)
    assert row["bytes_on_disk"] * 20 < teacher["bytes_on_disk"]


# ------------------------------------------------------------------------------------ start-up
LAZY_CHECK = """
import importlib.util, sys, types
# The workbench package without its __init__ (which loads the library): what the CLI modules
# import by themselves to parse arguments and print help.
pkg = types.ModuleType("workbench")
pkg.__path__ = list(importlib.util.find_spec("workbench").submodule_search_locations)
sys.modules["workbench"] = pkg
from workbench.cli import main
for argv in (["--help"], ["ingest", "--help"], ["cluster", "--topics", "x"]):
    try:
        main(argv)
    except SystemExit:
        pass
print(sorted(m for m in ("torch", "polars", "numpy", "workbench.store", "workbench.analysis")
             if m in sys.modules))
"""


def test_cli_modules_parse_and_print_help_without_heavy_imports() -> None:
    done = subprocess.run([sys.executable, "-c", LAZY_CHECK], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stderr


def test_help_does_not_import_torch() -> None:
    code = ("import runpy, sys; sys.argv = ['workbench', '--help']\n"
            "try:\n    runpy.run_module('workbench.cli', run_name='__main__')\n"
            "except SystemExit:\n    pass\nprint('torch' in sys.modules, file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)
    assert "usage: workbench" in done.stdout
    assert done.stderr.strip().splitlines()[-1] == "False"
