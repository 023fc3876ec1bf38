"""Bad input: each a specific WorkbenchError naming the argument; the store is left unchanged."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

import workbench as wb
from tests.helpers import clustered
from workbench import errors as E

DIM = 16


@pytest.fixture
def store_path(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "s"
    x = clustered(300, DIM, seed=7)
    with wb.Store.create(path, dim=DIM, model="test-model-v1") as store:
        store.add(pl.DataFrame({"id": [f"a{i}" for i in range(200)], "n": range(200)}),
                  vectors=x[:200], progress=False)
        store.add(pl.DataFrame({"id": [f"b{i}" for i in range(100)], "n": range(100)}),
                  vectors=x[200:], progress=False)
    yield path


def _state(path: Path) -> tuple[int, pl.DataFrame, pl.DataFrame]:
    with wb.Store.open(path, readonly=True) as s:
        return s.generation, s.scan().collect(), s.search(np.ones(DIM), k=5, exact=True)


def assert_unchanged(path: Path, before: tuple[int, pl.DataFrame, pl.DataFrame]) -> None:
    after = _state(path)
    assert after[0] == before[0]
    assert_frame_equal(after[1], before[1])
    assert_frame_equal(after[2], before[2])


GOOD = np.ones((1, DIM), dtype=np.float32)
BAD_CASES: dict[str, tuple[Callable[[wb.Store], object], type[Exception], list[str]]] = {
    "wrong_dim": (lambda s: s.add({"id": ["x"]}, vectors=np.ones((1, DIM + 1))),
                  E.DimensionMismatchError, ["vectors", str(DIM), str(DIM + 1)]),
    "nan": (lambda s: s.add({"id": ["x", "y"]}, vectors=np.vstack([GOOD, GOOD * np.nan])),
            E.InvalidInputError, ["vectors", "NaN", "row 1"]),
    "inf": (lambda s: s.add({"id": ["x"]}, vectors=GOOD * np.inf),
            E.InvalidInputError, ["vectors", "finite"]),
    "empty_batch": (lambda s: s.add(pl.DataFrame({"id": []}, schema={"id": pl.Utf8}),
                                    vectors=np.empty((0, DIM))), E.EmptyInputError, ["data"]),
    "empty_vectors": (lambda s: s.add({"id": ["x"]}, vectors=np.empty((0, DIM))),
                      E.EmptyInputError, ["vectors"]),
    "dup_in_batch": (lambda s: s.add({"id": ["x", "x"]}, vectors=np.vstack([GOOD, GOOD])),
                     E.DuplicateIdError, ["id", "'x'"]),
    "dup_in_store": (lambda s: s.add({"id": ["a3"]}, vectors=GOOD),
                     E.DuplicateIdError, ["id", "'a3'", "upsert"]),
    "count_mismatch": (lambda s: s.add({"id": ["x", "y"]}, vectors=GOOD),
                       E.InvalidInputError, ["vectors", "2 rows"]),
    "model_mismatch": (lambda s: s.add({"id": ["x"]}, vectors=GOOD, model="other-model"),
                       E.ModelMismatchError, ["test-model-v1", "other-model"]),
    "reserved_column": (lambda s: s.add({"id": ["x"], "distance": [1]}, vectors=GOOD),
                        E.InvalidInputError, ["distance", "reserved"]),
    "column_type": (lambda s: s.add({"id": ["x"], "n": ["text"]}, vectors=GOOD),
                    E.InvalidInputError, ["'n'", "Int64"]),
    "missing_id_column": (lambda s: s.upsert({"key2": ["x"]}, vectors=GOOD),
                          E.MissingColumnError, ["id", "'id'"]),
    "text_without_embedder": (lambda s: s.add({"id": ["x"], "t": ["hi"]}, text="t"),
                              E.InvalidInputError, ["text", "embedder"]),
    "delete_unknown": (lambda s: s.delete(["a1", "nope"]), E.UnknownIdError, ["ids", "'nope'"]),
    "where_missing_column": (lambda s: s.search(GOOD, k=3, where=pl.col("lang") == "en"),
                             E.MissingColumnError, ["where", "lang"]),
    "k_zero": (lambda s: s.search(GOOD, k=0), E.InvalidInputError, ["k", "positive"]),
    "k_too_big": (lambda s: s.search(GOOD, k=10_000), E.InvalidInputError, ["k", "300"]),
    "empty_query": (lambda s: s.search([], k=3), E.EmptyInputError, ["query"]),
    "text_query_no_embedder": (lambda s: s.search("hello", k=3), E.InvalidInputError,
                               ["query", "embedder"]),
    "zero_vector_cos": (lambda s: s.add({"id": ["z"]}, vectors=np.zeros((1, DIM))),
                        E.InvalidInputError, ["vectors", "zero"]),
    "vectors_unknown_id": (lambda s: s.vectors(["a1", "zz"]), E.UnknownIdError, ["ids", "'zz'"]),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_input_is_named_and_changes_nothing(store_path: Path, case: str) -> None:
    call, exc_type, words = BAD_CASES[case]
    before = _state(store_path)
    with wb.Store.open(store_path) as store, pytest.raises(exc_type) as info:
        call(store)
    assert isinstance(info.value, E.WorkbenchError)
    for w in words:
        assert w in str(info.value), (w, str(info.value))
    assert_unchanged(store_path, before)
    # no stray files either
    with wb.Store.open(store_path) as store:
        named = {f.name for s in store._manifest.segments for f in s.files()}
    assert named <= set(os.listdir(store_path / "segments"))


def test_bad_input_inside_transaction_rolls_back(store_path: Path) -> None:
    before = _state(store_path)
    with wb.Store.open(store_path) as store:
        with pytest.raises(E.DuplicateIdError), store.transaction():
            store.add({"id": ["new1"]}, vectors=GOOD)
            store.add({"id": ["a1"]}, vectors=GOOD)
        assert len(store) == 300
    assert_unchanged(store_path, before)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"dim": 8, "metric": "euclid"}, ["metric", "euclid", "cos"]),
        ({"dim": 8, "dtype": "f64"}, ["dtype", "f64", "f16"]),
        ({}, ["dim"]),
        ({"dim": 0}, ["dim", "positive"]),
        ({"dim": 8, "embedder": wb.embed.Hashing(dim=16)}, ["dim", "16", "8"]),
    ],
)
def test_create_rejects_bad_arguments(tmp_path: Path, kwargs: dict, words: list[str]) -> None:
    with pytest.raises(E.InvalidInputError) as info:
        wb.Store.create(tmp_path / "s", **kwargs)
    for w in words:
        assert w in str(info.value)
    assert not (tmp_path / "s").exists() or not list((tmp_path / "s").glob("manifest-*"))


def test_create_refuses_existing_store(store_path: Path) -> None:
    with pytest.raises(E.InvalidInputError, match="store exists"):
        wb.Store.create(store_path, dim=DIM)


def test_not_a_store(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "file.txt").write_text("hello")
    for p in (tmp_path / "plain", tmp_path / "missing"):
        with pytest.raises(E.NotAStoreError, match="path: expected a workbench store"):
            wb.Store.open(p)


def test_second_writer_is_locked_out(store_path: Path) -> None:
    before = _state(store_path)
    with wb.Store.open(store_path) as writer:
        with pytest.raises(E.StoreLockedError, match="readonly=True"):
            wb.Store.open(store_path)
        with wb.Store.open(store_path, readonly=True) as reader:  # readers never block
            assert len(reader) == 300
            with pytest.raises(E.ReadOnlyStoreError):
                reader.add({"id": ["x"]}, vectors=GOOD)
        writer.add({"id": ["c0"]}, vectors=GOOD)
    with wb.Store.open(store_path) as writer:  # the lock is released on close
        assert len(writer) == 301
    assert before[0] + 1 == _state(store_path)[0]


def test_model_mismatch_on_open(tmp_path: Path) -> None:
    with wb.Store.create(tmp_path / "h", embedder=wb.embed.Hashing(dim=32)) as s:
        s.add({"id": ["a"], "t": ["hello world"]}, text="t", progress=False)
    other = wb.embed.FromCallable(lambda t: np.ones((len(t), 32)), name="ones", dim=32)
    with pytest.raises(E.ModelMismatchError) as info:
        wb.Store.open(tmp_path / "h", embedder=other)
    assert "hashing" in str(info.value) and "ones" in str(info.value)
    with pytest.raises(E.DimensionMismatchError):
        wb.Store.open(tmp_path / "h", embedder=wb.embed.Hashing(dim=64))
    with wb.Store.open(tmp_path / "h") as s:
        assert s.search("hello world", k=1)["id"].to_list() == ["a"]


def _latest_file(path: Path, suffix: str) -> Path:
    with wb.Store.open(path, readonly=True) as s:
        seg = s._manifest.segments[-1]
    name = {"index": seg.index.name, "vectors": seg.vectors.name, "meta": seg.meta.name}[suffix]
    return path / "segments" / name


@pytest.mark.parametrize("target", ["index", "vectors", "meta", "manifest"])
@pytest.mark.parametrize("damage", ["truncate", "bitflip"])
def test_corrupt_file_is_named_and_previous_generation_opens(
    store_path: Path, target: str, damage: str
) -> None:
    with wb.Store.open(store_path, readonly=True) as s:
        gen = s.generation
        prev_rows = s.generation - 1
    victim = (store_path / f"manifest-{gen:08d}.json" if target == "manifest"
              else _latest_file(store_path, target))
    data = bytearray(victim.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:
        data[len(data) // 2] ^= 0x10
    victim.write_bytes(bytes(data))
    for readonly in (True, False):
        with pytest.raises(E.CorruptStoreError) as info:
            wb.Store.open(store_path, readonly=readonly)
        assert str(victim) in str(info.value)
        assert info.value.path == victim
    with wb.Store.open(store_path, readonly=True, generation=prev_rows) as old:
        assert len(old) == 200
        assert old.search(np.ones(DIM), k=3).height == 3


def test_open_old_generation_needs_readonly(store_path: Path) -> None:
    with pytest.raises(E.InvalidInputError, match="readonly=True"):
        wb.Store.open(store_path, generation=1)
    with pytest.raises(E.InvalidInputError, match="generation"):
        wb.Store.open(store_path, readonly=True, generation=99)


def test_i8_needs_cosine(tmp_path: Path) -> None:
    for metric in ("l2sq", "ip"):
        with pytest.raises(E.InvalidInputError, match="dtype: 'i8' needs metric='cos'"):
            wb.Store.create(tmp_path / metric, dim=4, metric=metric, dtype="i8")
        assert not list((tmp_path / metric).glob("manifest-*"))
