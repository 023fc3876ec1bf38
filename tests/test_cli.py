from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

import workbench as wb
from workbench.cli import build_parser, main

TOPICS = ("apple banana fruit orchard", "car engine wheel garage", "river lake water boat")


def corpus(n_per_topic: int = 10, *, start: int = 0) -> pl.DataFrame:
    """Three well separated topics (ground truth in ``topic``), ids ``d<i>``, three languages."""
    rows = [
        {"id": f"d{start + t * n_per_topic + i}", "text": f"{words} note {start + i}",
         "lang": ("en", "de", "fr")[i % 3], "topic": t}
        for t, words in enumerate(TOPICS) for i in range(n_per_topic)
    ]
    return pl.DataFrame(rows)


def write(df: pl.DataFrame, path: Path) -> Path:
    {".csv": df.write_csv, ".parquet": df.write_parquet, ".jsonl": df.write_ndjson}[
        path.suffix](path)
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`main(args)` in-process: exit status (argparse's SystemExit too), stdout, stderr."""
    try:
        rc = main(list(args))
    except SystemExit as exc:
        rc = int(exc.code or 0)
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture
def opts(tmp_path: Path) -> list[str]:
    """Store, hashing model, private cache, no progress bars (stderr stays for errors)."""
    return ["--store", str(tmp_path / "store"), "--model", "hashing",
            "--cache", str(tmp_path / "cache"), "--no-progress"]


@pytest.fixture
def store_path(tmp_path: Path, opts: list[str], capsys: pytest.CaptureFixture[str]) -> Path:
    rc, _, err = run(capsys, "ingest", *opts, "--input",
                     str(write(corpus(), tmp_path / "docs.parquet")), "--text", "text")
    assert rc == 0, err
    return tmp_path / "store"


# ------------------------------------------------------------------------------------ ingest
@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_ingest_creates_the_store_with_the_file_rows(
    tmp_path: Path, opts: list[str], capsys: pytest.CaptureFixture[str], suffix: str
) -> None:
    df = corpus()
    rc, out, err = run(capsys, "ingest", *opts, "--input", str(write(df, tmp_path / f"d{suffix}")),
                       "--text", "text")
    assert rc == 0 and err == ""
    assert out.startswith("added 30 rows, skipped 0") and "holds 30 rows" in out
    with wb.Store.open(tmp_path / "store", readonly=True) as s:
        assert s.model is not None and s.model.kind == "hashing"
        got = s.scan().select("id", "text", "lang", "topic").collect().sort("id")
    assert got.equals(df.sort("id"))


def test_reingest_skips_rows_already_in_the_store(
    tmp_path: Path, opts: list[str], store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with wb.Store.open(store_path, readonly=True) as s:
        gen = s.generation
    # the same file again, without --model: the store's own model is used, nothing is written
    same = ["--store", str(store_path), "--cache", opts[5], "--no-progress"]
    rc, out, _ = run(capsys, "ingest", *same, "--input", str(tmp_path / "docs.parquet"),
                     "--text", "text")
    assert rc == 0 and out.startswith("added 0 rows, skipped 30 already")
    with wb.Store.open(store_path, readonly=True) as s:
        assert s.generation == gen
    # 3 new rows and 2 old ones, in batches of 2: two commits, the old rows untouched
    old = corpus().filter(pl.col("id").is_in(["d0", "d11"]))
    mixed = pl.concat([corpus(1, start=100), old])
    rc, out, _ = run(capsys, "ingest", *same, "--input", str(write(mixed, tmp_path / "m.csv")),
                     "--text", "text", "--batch", "2")
    assert rc == 0 and out.startswith("added 3 rows, skipped 2 already") and "33 rows" in out
    with wb.Store.open(store_path, readonly=True) as s:
        assert len(s) == 33 and s.generation == gen + 2
        assert set(s.get(["d100", "d101", "d102"])["text"]) == set(
            corpus(1, start=100)["text"])


def test_ingest_resumes_after_an_interruption(
    tmp_path: Path, opts: list[str], capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    src = str(write(corpus(), tmp_path / "docs.jsonl"))
    add = wb.Store.add
    calls = []

    def flaky_add(self: wb.Store, *args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return add(self, *args, **kwargs)

    monkeypatch.setattr(wb.Store, "add", flaky_add)
    rc, _, err = run(capsys, "ingest", *opts, "--input", src, "--text", "text", "--batch", "8")
    assert rc == 130 and "16 rows added so far are kept" in err
    with wb.Store.open(tmp_path / "store", readonly=True) as s:
        assert len(s) == 16
    monkeypatch.setattr(wb.Store, "add", add)
    rc, out, _ = run(capsys, "ingest", *opts, "--input", src, "--text", "text", "--batch", "8")
    assert rc == 0 and out.startswith("added 14 rows, skipped 16") and "holds 30 rows" in out


def test_ingest_with_an_id_column_stores_ids_as_strings(
    tmp_path: Path, opts: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    df = corpus(2).rename({"id": "name"}).with_columns(doc=pl.int_range(6) * 10)
    rc, _, err = run(capsys, "ingest", *opts, "--input", str(write(df, tmp_path / "d.csv")),
                     "--text", "text", "--id", "doc")
    assert rc == 0, err
    with wb.Store.open(tmp_path / "store", readonly=True) as s:
        assert sorted(s.scan().collect()["id"].to_list()) == sorted(str(i * 10) for i in range(6))
        assert "name" in s.scan().collect_schema()


# ------------------------------------------------------------------------------------ search
def test_search_ranks_the_identical_text_first(
    store_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    target = corpus().filter(pl.col("id") == "d17").row(0, named=True)
    rc, out, err = run(capsys, "search", "--store", str(store_path), target["text"], "-k", "5")
    assert rc == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].split() == ["id", "distance", "text"] and set(lines[1]) == {"-"}
    assert len(lines) == 2 + 5 and all(len(line) <= 60 for line in lines)
    top = lines[2].split()
    assert top[0] == "d17" and float(top[1]) == pytest.approx(0.0, abs=1e-4)
    assert lines[2].endswith(target["text"])


def test_search_where_restricts_results_and_json_parses(
    store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    query = corpus().filter(pl.col("id") == "d11")["text"].item()  # a German row
    rc, out, _ = run(capsys, "search", "--store", str(store_path), query, "-k", "4",
                     "--where", "lang = 'en'", "--json")
    assert rc == 0
    hits = [json.loads(line) for line in out.splitlines()]
    assert len(hits) == 4 and {h["lang"] for h in hits} == {"en"}
    assert "d11" not in {h["id"] for h in hits}
    assert [h["distance"] for h in hits] == sorted(h["distance"] for h in hits)
    assert {"id", "distance", "key", "text", "topic"} <= set(hits[0])
    # without the filter the German row itself comes first
    rc, out, _ = run(capsys, "search", "--store", str(store_path), query, "-k", "4", "--json")
    assert json.loads(out.splitlines()[0])["id"] == "d11"


def test_search_where_matching_nothing_and_k_beyond_the_store(
    store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out, _ = run(capsys, "search", "--store", str(store_path), "boat", "--where",
                     "lang = 'xx'")
    assert rc == 0 and out.strip() == "no results match --where"
    rc, out, _ = run(capsys, "search", "--store", str(store_path), "boat", "-k", "100", "--json")
    assert rc == 0 and len(out.splitlines()) == 30


# ------------------------------------------------------------------------------------ cluster
def test_cluster_writes_one_row_per_store_row(
    tmp_path: Path, store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "out" / "clusters.parquet"
    rc, out, _ = run(capsys, "cluster", "--store", str(store_path), "--out", str(out_file),
                     "--min-cluster-size", "5", "--reducer", "pca", "--layout", "pca",
                     "--no-progress", "--no-cache")
    assert rc == 0
    res = pl.read_parquet(out_file)
    assert {"key", "id", "cluster", "probability", "x", "y"} <= set(res.columns)
    assert res.height == 30 and sorted(res["id"]) == sorted(corpus()["id"])
    # the three topics come back as three pure clusters, and their keywords are printed
    truth = res.join(corpus().select("id", "topic"), on="id")
    assert truth.filter(pl.col("cluster") >= 0).group_by("cluster").agg(
        pl.col("topic").n_unique())["topic"].to_list() == [1, 1, 1]
    assert out.startswith("3 clusters over 30 rows, HDBSCAN noise ")
    assert "reassigned to the nearest topic" in out
    assert all(word in out for topic in TOPICS for word in topic.split())
    assert f"wrote {out_file}" in out


# ------------------------------------------------------------------------------------ errors
@pytest.mark.parametrize("case", [
    "missing file", "unknown extension", "missing text column", "missing id column",
    "repeated ids", "text not strings", "model mismatch", "unknown store", "bad where SQL",
    "where on a missing column", "info on a missing path", "missing notebooks folder",
    "cluster missing text column",
])
def test_bad_input_exits_2_with_one_line(
    case: str, tmp_path: Path, opts: list[str], store_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    good = str(tmp_path / "docs.parquet")
    ing = ["ingest", *opts]
    new = ["ingest", "--store", str(tmp_path / "new"), *opts[2:]]
    df = corpus(2)
    args, expect = {
        "missing file": ([*ing, "--input", str(tmp_path / "no.csv"), "--text", "text"],
                         "no such file"),
        "unknown extension": ([*ing, "--input", str(tmp_path / "d.xlsx"), "--text", "text"],
                              "expected a .parquet, .csv or .jsonl file"),
        "missing text column": ([*new, "--input", good, "--text", "body"],
                                "has no column 'body'"),
        "missing id column": ([*new, "--input", str(write(df.drop("id"), tmp_path / "x.csv")),
                               "--text", "text"], "has no 'id' column"),
        "repeated ids": ([*new, "--input", str(write(pl.concat([df, df]), tmp_path / "r.csv")),
                          "--text", "text"], "repeats 6 id(s)"),
        "text not strings": ([*new, "--input", good, "--text", "topic"],
                             "to hold strings without nulls"),
        "model mismatch": ([*ing[:3], "--model", "minilm", *ing[5:], "--input", good, "--text",
                            "text"], "the store holds vectors of hashing"),
        "unknown store": (["search", "--store", str(tmp_path / "nope"), "q"],
                          "expected a workbench store"),
        "bad where SQL": (["search", "--store", str(store_path), "q", "--where", "lang = = 1"],
                          "--where: expected a SQL expression"),
        "where on a missing column": (["search", "--store", str(store_path), "q", "--where",
                                       "year > 2020"], "does not have"),
        "info on a missing path": (["info", str(tmp_path / "no" / "such")], "does not exist"),
        "missing notebooks folder": (["notebooks", "--notebooks", str(tmp_path / "none"),
                                      "--reports", str(tmp_path / "rep")], "no such folder"),
        "cluster missing text column": (["cluster", "--store", str(store_path), "--out",
                                         str(tmp_path / "c.parquet"), "--text", "body"],
                                        "has no column 'body'"),
    }[case]
    rc, out, err = run(capsys, *args)
    assert rc == 2
    assert err.startswith("workbench: error: ") and err.count("\n") == 1, err
    assert expect in err and "Traceback" not in err + out
    assert not (tmp_path / "new").exists()  # a failed first ingest leaves no store behind


def test_failed_first_write_leaves_no_empty_store(
    tmp_path: Path, opts: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    bad = corpus(2).with_columns(distance=pl.lit(1.0))  # a column name the store reserves
    rc, _, err = run(capsys, "ingest", *opts, "--input", str(write(bad, tmp_path / "b.csv")),
                     "--text", "text")
    assert rc == 2 and "reserved" in err
    assert not (tmp_path / "store").exists()


def test_missing_required_option_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run(capsys, "ingest", "--input", "x.csv", "--text", "t")
    assert rc == 2 and "the following arguments are required: --store" in err


# ------------------------------------------------------------------------------------ help
def test_every_option_has_plain_help() -> None:
    parser = build_parser()
    subs = next(a for a in parser._actions if a.dest == "command")
    assert set(subs.choices) >= {"ingest", "search", "cluster", "demo", "info", "notebooks"}
    assert all(a.help for a in subs._choices_actions)
    for name, sub in [("workbench", parser), *subs.choices.items()]:
        for action in sub._actions:
            assert action.help or action is subs, (name, action.dest)
        text = sub.format_help()
        for markup in ("``", ":func:", ":class:", "----------", "Parameters"):
            assert markup not in text, (name, markup)
        assert sub.description and sub.description.strip(), name


def test_version_in_a_subprocess() -> None:
    done = subprocess.run([sys.executable, "-m", "workbench.cli", "--version"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0 and done.stdout.strip() == f"workbench {wb.__version__}"


# ------------------------------------------------------------------------------------ existing
def test_demo_builds_store_and_escaped_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["demo", "--store", str(tmp_path / "store"), "--reports", str(tmp_path / "rep"),
            "--cache", str(tmp_path / "cache"), "--limit", "300", "--embedder", "hashing",
            "--no-notebooks"]
    assert main(args) == 0
    html = (tmp_path / "rep" / "index.html").read_text()
    assert "Embedding Workbench demo" in html and "Search: read a text file" in html
    # self-contained: nothing loaded from elsewhere; the only scripts are the drift chart's
    # (plotly's config, plotly.js inlined and its newPlot call)
    assert not re.search(r"<(script|link|img|iframe)\b[^>]*\b(src|href)\s*=\s*[\"']?https?:",
                         html)
    assert html.count("<script") == 3 * html.count("Plotly.newPlot") == 3
    with wb.Store.open(tmp_path / "store", readonly=True) as s:
        assert len(s) == 300
        gen = s.generation
    # a second run with the same data commits nothing new; a missing notebooks folder is
    # reported, in the output and in the report
    capsys.readouterr()
    assert main([*args[:-1], "--notebooks", str(tmp_path / "nb")]) == 0
    out = capsys.readouterr().out
    assert "notebooks skipped: the folder" in out and "is missing" in out
    assert "notebooks skipped" in (tmp_path / "rep" / "index.html").read_text()
    with wb.Store.open(tmp_path / "store", readonly=True) as s:
        assert s.generation == gen
    # a different limit syncs the store: rows added and removed in one commit
    assert main([*args[:-4], "200", *args[-3:]]) == 0
    with wb.Store.open(tmp_path / "store", readonly=True) as s:
        assert len(s) == 200 and s.generation == gen + 1


def test_info_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with wb.Store.create(tmp_path / "s", dim=4) as s:
        s.add(pl.DataFrame({"id": ["a"]}), vectors=[[1.0, 0, 0, 0]])
    assert main(["info", str(tmp_path / "s")]) == 0
    assert "rows=1" in capsys.readouterr().out


def test_report_escapes_user_text() -> None:
    from workbench.reports import frame_table

    out = frame_table(pl.DataFrame({"text": ["<script>alert(1)</script>", "<img onerror=x>"]}))
    assert "<script>" not in out and "&lt;script&gt;" in out and "&lt;img onerror=x&gt;" in out
