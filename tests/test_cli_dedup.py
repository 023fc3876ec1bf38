from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

import workbench as wb
from tests.test_cli import run
from workbench.cli import main

WORDS = [f"word{i}" for i in range(24)]


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[list[str]]]:
    """A vectors-only store (no model) of 2,000 rows with 10 planted groups of 3, and text.

    Each row has its own random words; a copy repeats its original's text with one or two "!"
    appended, except in the first planted group, whose copies repeat it exactly.
    """
    stream = wb.datasets.synthetic_stream(2000, 32, duplicate_groups=10, drift_points=0)
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(WORDS, 12)) + f" note {i}" for i in range(2000)]
    for g, members in enumerate(stream.duplicate_groups):
        rows = [int(i.removeprefix("row-")) for i in members]
        for j, row in enumerate(rows[1:], 1):
            texts[row] = texts[rows[0]] + ("" if g == 0 else "!" * j)
    path = tmp_path_factory.mktemp("dedup") / "store"
    with wb.Store.create(path, dim=32) as store:
        store.add(stream.frame.with_columns(text=pl.Series(texts)), vectors=stream.vectors,
                  progress=False)
    return path, [sorted(g) for g in stream.duplicate_groups]


def test_dedup_writes_every_row_with_the_planted_groups(
    planted: tuple[Path, list[list[str]]], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    path, truth = planted
    out_file = tmp_path / "out" / "groups.parquet"
    rc, out, err = run(capsys, "dedup", "--store", str(path), "--out", str(out_file),
                       "--show", "3", "--no-progress")
    assert rc == 0
    # hybrid's blend is fitted on MiniLM cosines: a store without a model gets one warning line
    assert err.startswith("workbench: warning: find_duplicates: the blend was fitted on")
    assert err.count("\n") == 1
    res = pl.read_parquet(out_file)
    assert res.columns == ["key", "id", "group", "is_representative", "is_duplicate",
                           "score_to_representative", "exact"]
    assert res.height == 2000 and res["id"].n_unique() == 2000
    got = (res.filter(pl.col("group").is_not_null()).group_by("group")
           .agg(pl.col("id").sort())["id"].to_list())
    assert sorted(got) == sorted(truth)
    # keep="first": each group is represented by its original (the lowest id), and only the
    # copies that repeat the text exactly are exact
    reps = res.filter(pl.col("is_representative"))["id"].sort().to_list()
    assert reps == sorted(g[0] for g in truth)
    assert res["is_duplicate"].sum() == 20
    assert sorted(res.filter(pl.col("exact") & pl.col("is_duplicate"))["id"]) == truth[0][1:]
    lines = out.splitlines()
    assert lines[0] == ("10 duplicate groups over 2,000 rows: 20 duplicates (1.0% of the rows), "
                        "2 of them exact")
    assert lines[1].startswith("threshold 0.500 (0.5: the hybrid score is a calibrated")
    assert lines[2].startswith("30 of ") and lines[2].endswith("pass; largest group 3 rows")
    # the three largest groups, one line per member, with the start of each text
    assert lines[3].split() == ["group", "size", "id", "score", "text"]
    table = lines[5:14]
    assert all(len(line) <= 100 for line in lines[3:14])
    heads = [line.split() for line in table[::3]]
    assert [(h[0], h[1], h[3]) for h in heads] == [("0", "3", "rep"), ("1", "3", "rep"),
                                                    ("2", "3", "rep")]
    members = [line for i, line in enumerate(table) if i % 3]
    planted_ids = {i for g in truth for i in g}
    assert all(line.startswith(" " * 11) and line.split()[0] in planted_ids for line in members)
    with wb.Store.open(path, readonly=True) as store:
        text = dict(store.scan().select("id", "text").collect().iter_rows())
    assert all(text[h[2]][:30] in line for h, line in zip(heads, table[::3], strict=True))
    assert lines[14] == "... 7 smaller groups not shown (--show)"
    assert lines[15].startswith(f"wrote {out_file} (2,000 rows: key, id, group")


def test_dedup_cosine_components_and_where(
    planted: tuple[Path, list[list[str]]], tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    path, truth = planted
    out_file = tmp_path / "groups.parquet"
    # only the rows of the first five planted groups and the odd-numbered rest
    keep = {i for g in truth[:5] for i in g}
    where = f"id IN ({', '.join(repr(i) for i in sorted(keep))}) OR text LIKE '%1'"
    rc, out, err = run(capsys, "dedup", "--store", str(path), "--out", str(out_file),
                       "--method", "cosine", "--grouping", "components", "--where", where,
                       "--no-progress")
    assert rc == 0 and err == ""
    res = pl.read_parquet(out_file)
    assert 15 < res.height < 2000
    got = (res.filter(pl.col("group").is_not_null()).group_by("group")
           .agg(pl.col("id").sort())["id"].to_list())
    assert sorted(got) == sorted(truth[:5])
    assert "Otsu's split" in out.splitlines()[1] and "grouping components" in out
    assert "longest chain" in out


def test_dedup_lsh_candidates(
    planted: tuple[Path, list[list[str]]], tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    path, truth = planted
    out_file = tmp_path / "groups.parquet"
    rc, out, err = run(capsys, "dedup", "--store", str(path), "--out", str(out_file),
                       "--method", "cosine", "--threshold", "0.98", "--candidates", "lsh",
                       "--no-progress")
    assert rc == 0 and err == ""
    res = pl.read_parquet(out_file)
    got = (res.filter(pl.col("group").is_not_null()).group_by("group")
           .agg(pl.col("id").sort())["id"].to_list())
    assert sorted(got) == sorted(sorted(g) for g in truth)
    rc, _, err = run(capsys, "dedup", "--store", str(path), "--out", str(out_file),
                     "--candidates", "lsh", "--no-progress")  # hybrid: LSH needs cosine
    assert rc == 2 and "candidates" in err


@pytest.mark.parametrize("case", ["threshold above 1", "missing store", "missing text column",
                                  "bad where SQL"])
def test_dedup_bad_input_exits_2_with_one_line(
    case: str, planted: tuple[Path, list[list[str]]], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path, _ = planted
    out_file = tmp_path / "groups.parquet"
    base = ["dedup", "--store", str(path), "--out", str(out_file), "--no-progress"]
    args, expect = {
        "threshold above 1": ([*base, "--threshold", "1.5"],
                              "threshold: expected a number in (0, 1], got 1.5"),
        "missing store": (["dedup", "--store", str(tmp_path / "nope"), "--out", str(out_file)],
                          "expected a workbench store"),
        "missing text column": ([*base, "--text", "body"], "--text: the store has no column"),
        "bad where SQL": ([*base, "--where", "text = = 1"], "--where: expected a SQL expression"),
    }[case]
    rc, out, err = run(capsys, *args)
    assert rc == 2 and out == ""
    assert err.startswith("workbench: error: ") and err.count("\n") == 1, err
    assert expect in err
    assert not out_file.exists()


def test_demo_report_has_a_dedup_section(tmp_path: Path) -> None:
    # the hashing embedder: the hybrid blend is fitted on MiniLM cosines, so the demo uses cosine
    args = ["demo", "--store", str(tmp_path / "store"), "--reports", str(tmp_path / "rep"),
            "--cache", str(tmp_path / "cache"), "--limit", "300", "--embedder", "hashing",
            "--no-notebooks"]
    assert main(args) == 0
    html = (tmp_path / "rep" / "index.html").read_text()
    section = html[html.index("<h2>Near-duplicates (cosine)</h2>"):html.index("<h2>Timing</h2>")]
    assert "<td>rows</td><td>300</td>" in section and "Otsu&#x27;s split" in section
    assert "near-duplicates (find_duplicates)" in html[html.index("<h2>Timing</h2>"):]
    # the compression section (same run, to spare CI a second demo): the store's vectors in
    # each dtype, the exact f32 anchor at recall 1, and a hashing model of a quarter the dims
    comp = html[html.index("<h2>Compression: vector dtypes and a smaller model</h2>"):
                html.index("<h2>Timing</h2>")]
    assert ('<tr><td>f32</td><td>exact</td><td class="num">384</td><td></td><td>no</td>'
            '<td class="num">1,536</td>') in comp
    assert comp.split("<td>exact</td>")[1].split("</tr>")[0].endswith(
        '<td class="num">1.000</td>')
    for dtype in ("f16", "bf16", "i8", "b1"):
        assert f"<td>{dtype}</td><td>hnsw</td>" in comp
    assert '<td>hashing-96</td><td>variant</td><td class="num">96</td>' in comp
    assert "data:image/png;base64," in comp
    assert "compression (vector dtypes, a smaller model)" in html[html.index("<h2>Timing"):]
