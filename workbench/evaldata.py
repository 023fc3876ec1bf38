"""Locate the real evaluation datasets in ``../shared/data`` (never copied into the project).

Tests and benchmarks read them through :func:`shared_data_path`, which raises
:class:`~workbench.errors.MissingDataError`-style errors the test suite turns into clean skips.
"""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl

from .errors import InvalidInputError, WorkbenchError

__all__ = ["EvalDataMissingError", "ag_news", "shared_data_dir", "shared_data_path",
           "sts_pairs"]


class EvalDataMissingError(WorkbenchError, FileNotFoundError):
    """The shared evaluation data (or one file of it) is not on this machine."""


def shared_data_dir() -> Path:
    """The evaluation data folder: ``$WORKBENCH_SHARED_DATA`` or ``<project>/../shared/data``.

    Raises
    ------
    EvalDataMissingError
        The folder does not exist.
    """
    env = os.environ.get("WORKBENCH_SHARED_DATA")
    candidates = [Path(env)] if env else []
    project = Path(__file__).resolve().parent.parent
    candidates += [project.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"]
    for c in candidates:
        if c.is_dir():
            return c
    raise EvalDataMissingError(
        "shared data: expected the evaluation datasets in ../shared/data (or "
        "$WORKBENCH_SHARED_DATA); not found"
    )


def shared_data_path(*parts: str) -> Path:
    """Path of one dataset file or folder, e.g. ``shared_data_path("ann", "fmnistsmall_gt.npy")``.

    Raises
    ------
    EvalDataMissingError
        The folder or the file is absent.
    """
    p = shared_data_dir().joinpath(*parts)
    if not p.exists():
        raise EvalDataMissingError(f"shared data: expected {p}; not found")
    return p


def sts_pairs(dataset: str, split: str) -> pl.DataFrame:
    """Labelled sentence pairs of STS-B or SICK: ``a: str, b: str, score: f64``.

    Parameters
    ----------
    dataset : {"stsb", "sick"}
        STS-B (scores 0-5) or SICK (relatedness 1-5).
    split : str
        ``"train"``, ``"dev"``/``"trial"`` or ``"test"``.

    Raises
    ------
    EvalDataMissingError
        The file is absent.
    InvalidInputError
        An unknown dataset or split.
    """
    files = {
        ("stsb", "train"): "sts-train.csv", ("stsb", "dev"): "sts-dev.csv",
        ("stsb", "test"): "sts-test.csv", ("sick", "train"): "SICK_train.txt",
        ("sick", "trial"): "SICK_trial.txt", ("sick", "test"): "SICK_test_annotated.txt",
    }
    if (dataset, split) not in files:
        raise InvalidInputError(
            f"dataset, split: expected one of {sorted(files)}, got {(dataset, split)}"
        )
    path = shared_data_path(dataset, files[(dataset, split)])
    a: list[str] = []
    b: list[str] = []
    score: list[float] = []
    # STS-B: genre, file, year, id, score, s1, s2 (some lines carry extra columns);
    # SICK: pair_ID, sentence_A, sentence_B, relatedness, entailment (header optional)
    col = (4, 5, 6) if dataset == "stsb" else (3, 1, 2)
    with path.open(encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) <= max(col) or parts[0] == "pair_ID":
                continue
            score.append(float(parts[col[0]]))
            a.append(parts[col[1]])
            b.append(parts[col[2]])
    return pl.DataFrame({"a": a, "b": b, "score": score})


def ag_news() -> pl.DataFrame:
    """AG News test set: 7,600 news items in 4 classes.

    Columns ``label: i64`` (1-4), ``title: str``, ``description: str`` and ``text: str``
    (``"title. description"``). The descriptions escape line breaks as a lone backslash;
    those become spaces.

    Raises
    ------
    EvalDataMissingError
        The file is absent.
    """
    df = pl.read_csv(shared_data_path("ag_news", "test.csv"), has_header=False,
                     new_columns=["label", "title", "description"])
    df = df.with_columns(pl.col("description").str.replace_all("\\", " ", literal=True))
    return df.with_columns(text=pl.col("title") + ". " + pl.col("description"))
