"""What Store.add returns: the new rows' keys, as an array that prints one short line."""

from __future__ import annotations

import numpy as np
import polars as pl

import workbench as wb
from workbench.store import KeyArray


def test_add_returns_keys_that_print_short(tmp_path) -> None:
    store = wb.Store.create(tmp_path / "s", dim=4)
    rng = np.random.default_rng(0)
    keys = store.add({"id": [f"r{i}" for i in range(2_000)]},
                     vectors=rng.normal(size=(2_000, 4)), progress=False)
    assert isinstance(keys, KeyArray)
    assert repr(keys) == "KeyArray(2,000 keys: 0 1 2 … 1999)"
    assert str(keys) == repr(keys)
    # still the keys, usable as an array
    assert keys.dtype == np.uint64 and len(keys) == 2_000
    np.testing.assert_array_equal(np.asarray(keys), np.arange(2_000, dtype=np.uint64))
    first = store.scan().filter(pl.col("key").is_in(keys[:2].tolist())).collect()
    assert first.get_column("id").to_list() == ["r0", "r1"]
    again = store.upsert({"id": ["r5"]}, vectors=rng.normal(size=(1, 4)), progress=False)
    assert repr(again).startswith("KeyArray(1 key: ")


def test_arithmetic_and_reductions_are_plain() -> None:
    keys = KeyArray.of(np.arange(10, dtype=np.uint64))
    assert type(keys.sum()) is np.uint64 and keys.sum() == 45
    assert type(keys + 1) is np.ndarray
    assert type(np.asarray(keys)) is np.ndarray
    assert repr(keys[keys > 7]) == "KeyArray(2 keys: 8 9)"
    assert repr(KeyArray.of(np.array([], dtype=np.uint64))) == "KeyArray(0 keys)"
