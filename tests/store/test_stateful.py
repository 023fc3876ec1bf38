"""Random add/upsert/delete/compact/reopen sequences against a dict model."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import polars as pl
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import workbench as wb

DIM = 6
ID = st.integers(min_value=0, max_value=40).map(lambda i: f"id{i}")


class StoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="wb-stateful-"))
        self.model: dict[str, tuple[np.ndarray, int]] = {}
        self.counter = 0

    @initialize(metric=st.sampled_from(["cos", "ip", "l2sq"]),
                dtype=st.sampled_from(["f32", "f16", "i8", "b1"]))
    def create(self, metric: str, dtype: str) -> None:
        if dtype in ("i8", "b1") and metric != "cos":
            dtype = "f16"  # i8 and b1 are cosine-only
        self.metric = metric
        # a tiny exact threshold so that the HNSW path with tombstones is exercised too
        self.store = wb.Store.create(self.dir / "s", dim=DIM, metric=metric, dtype=dtype,
                                     exact_threshold=8)

    def _vec(self, seed: int) -> np.ndarray:
        v = np.random.default_rng(seed).uniform(-1, 1, DIM).astype(np.float32)
        v[0] += 0.1 if abs(v[0]) < 0.1 else 0  # never the zero vector
        return v

    def _frame(self, ids: list[str]) -> tuple[pl.DataFrame, np.ndarray]:
        vecs = []
        tags = []
        for _ in ids:
            self.counter += 1
            vecs.append(self._vec(self.counter))
            tags.append(self.counter)
        return pl.DataFrame({"id": ids, "tag": tags}), np.array(vecs)

    @rule(ids=st.lists(ID, min_size=1, max_size=8, unique=True))
    def add(self, ids: list[str]) -> None:
        new = [i for i in ids if i not in self.model]
        if not new:
            return
        df, vecs = self._frame(new)
        self.store.add(df, vectors=vecs, progress=False)
        for i, v, t in zip(new, vecs, df["tag"], strict=True):
            self.model[i] = (v, t)

    @rule(ids=st.lists(ID, min_size=1, max_size=8, unique=True))
    def upsert(self, ids: list[str]) -> None:
        df, vecs = self._frame(ids)
        self.store.upsert(df, vectors=vecs, progress=False)
        for i, v, t in zip(ids, vecs, df["tag"], strict=True):
            self.model[i] = (v, t)

    @precondition(lambda self: bool(self.model))
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        ids = data.draw(st.lists(st.sampled_from(sorted(self.model)), min_size=1, max_size=5,
                                 unique=True))
        assert self.store.delete(ids) == len(ids)
        for i in ids:
            del self.model[i]

    @rule()
    def compact(self) -> None:
        self.store.compact(progress=False)

    @rule()
    def reopen(self) -> None:
        self.store.close()
        self.store = wb.Store.open(self.dir / "s")

    @invariant()
    def matches_model(self) -> None:
        if not hasattr(self, "store"):
            return
        assert len(self.store) == len(self.model)
        if not self.model:
            return
        scan = self.store.scan().collect()
        assert dict(zip(scan["id"], scan["tag"], strict=True)) == {
            i: t for i, (_, t) in self.model.items()
        }
        ids = sorted(self.model)
        np.testing.assert_array_equal(self.store.vectors(ids), np.array([self.model[i][0]
                                                                          for i in ids]))
        q = self._vec(10_000 + len(self.model))[None, :]
        k = min(4, len(ids))
        res = self.store.search(q, k=k, exact=True)
        x = np.array([self.model[i][0] for i in ids], dtype=np.float64)
        if self.metric == "cos":
            d = 1 - (x @ q[0]) / (np.linalg.norm(x, axis=1) * np.linalg.norm(q[0]))
        elif self.metric == "ip":
            d = 1 - x @ q[0]
        else:
            d = ((x - q[0]) ** 2).sum(1)
        want = np.sort(d)[:k]
        np.testing.assert_allclose(res["distance"].to_numpy(), want, rtol=1e-4, atol=1e-5)
        got_d = {i: d[ids.index(i)] for i in res["id"]}
        for i, dist in zip(res["id"], res["distance"], strict=True):
            assert abs(got_d[i] - dist) < 1e-4
        ann = self.store.search(q, k=k)
        assert ann.height == k and set(ann["id"]) <= set(ids)

    def teardown(self) -> None:
        if hasattr(self, "store"):
            self.store.close()
        shutil.rmtree(self.dir, ignore_errors=True)


TestStoreMachine = StoreMachine.TestCase
TestStoreMachine.settings = settings(
    max_examples=30, stateful_step_count=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
