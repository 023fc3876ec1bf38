from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import workbench as wb
from workbench.errors import (
    DuplicateIdError,
    InvalidInputError,
    MissingColumnError,
    ModelMismatchError,
    WorkbenchError,
)

from .conftest import RAY_TIMEOUT

pytestmark = pytest.mark.timeout(RAY_TIMEOUT)
ingest_mod = importlib.import_module("workbench.distributed.ingest")
TOPICS = ["markets and rates", "football scores", "new chips and phones", "elections abroad"]


def _frame(n: int, start: int = 0) -> pl.DataFrame:
    i = np.arange(start, start + n)
    return pl.DataFrame({
        "doc": [f"d{j}" for j in i],
        "text": [f"{TOPICS[j % 4]} story {j} with words {j * 7 % 13}" for j in i],
        "year": (2000 + i % 20).astype(np.int64),
        "label": [TOPICS[j % 4] for j in i],
    })


def _files(folder: Path, df: pl.DataFrame, parts: int, kind: str = "parquet") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for j in range(parts):
        part = df[j::parts]
        if kind == "parquet":
            part.write_parquet(folder / f"part{j}.parquet")
        elif kind == "csv":
            part.write_csv(folder / f"part{j}.csv")
        else:
            part.write_ndjson(folder / f"part{j}.jsonl")
    return folder


def _content(store: wb.Store) -> tuple[pl.DataFrame, np.ndarray]:
    meta = store.scan().collect().drop("key").sort("id")
    return meta, store.vectors(meta.get_column("id").to_list())


def _files_in(store_path: Path) -> set[str]:
    return {p.name for p in (store_path / "segments").iterdir()}


@pytest.mark.parametrize("kind", ["parquet", "csv", "jsonl"])
def test_ingest_equals_store_add(ray_ok: dict, tmp_path: Path, kind: str) -> None:
    df = _frame(1200)
    src = _files(tmp_path / "src", df, 3, kind)
    emb = wb.embed.Hashing(dim=32)
    report = wd_ingest(tmp_path / "ray", str(src / f"*.{kind}"), text="text", id="doc",
                       embedder=emb, workers=2, rows_per_segment=250, commit_every=2)
    ref = wb.Store.create(tmp_path / "one", embedder=emb)
    ref.add(df, text="text", id="doc", progress=False)
    got = wb.Store.open(tmp_path / "ray", readonly=True)
    assert report.added == 1200 and report.skipped == 0 and report.rows == 1200
    assert report.segments == len(got.segments) >= 5  # 250 rows a segment at most
    assert got.segments.get_column("rows").max() <= 250
    assert got.model == ref.model
    m_got, v_got = _content(got)
    m_ref, v_ref = _content(ref)
    assert m_got.equals(m_ref)
    np.testing.assert_allclose(v_got, v_ref, atol=1e-6)
    keys = got.scan().collect().get_column("key")
    assert keys.n_unique() == 1200


def wd_ingest(*args, **kwargs):  # noqa: ANN002, ANN003, ANN201
    import workbench.distributed as wd

    kwargs.setdefault("progress", False)
    return wd.ingest(*args, **kwargs)


def test_ingest_from_a_one_block_dataset_uses_every_worker(ray_ok: dict, tmp_path: Path) -> None:
    import ray

    df = _frame(600)
    ds = ray.data.from_arrow(df.to_arrow())  # one block
    emb = wb.embed.Hashing(dim=16)
    report = wd_ingest(tmp_path / "s", ds, id="doc", embedder=emb, workers=2,
                       rows_per_segment=100)
    st = wb.Store.open(tmp_path / "s", readonly=True)
    assert report.added == len(st) == 600 and len(st.segments) >= 6
    assert st.get(["d5"]).get_column("year").item() == 2005


def test_rerun_skips_committed_ids(ray_ok: dict, tmp_path: Path) -> None:
    df = _frame(900)
    emb = wb.embed.Hashing(dim=16)
    first = _files(tmp_path / "a", df.head(400), 2)
    everything = _files(tmp_path / "b", df, 3)
    r1 = wd_ingest(tmp_path / "s", str(first / "*.parquet"), id="doc", embedder=emb,
                   workers=2, rows_per_segment=150)
    r2 = wd_ingest(tmp_path / "s", str(everything / "*.parquet"), id="doc", embedder=emb,
                   workers=2, rows_per_segment=150)
    assert (r1.added, r2.added, r2.skipped) == (400, 500, 400)
    st = wb.Store.open(tmp_path / "s", readonly=True)
    ids = st.scan().collect().get_column("id")
    assert len(st) == 900 and ids.n_unique() == 900
    r3 = wd_ingest(st.path, str(everything / "*.parquet"), id="doc", embedder=emb)
    assert (r3.added, r3.skipped, r3.commits) == (0, 900, 0)


def test_an_open_store_and_checkpoint_commits(ray_ok: dict, tmp_path: Path) -> None:
    emb = wb.embed.Hashing(dim=16)
    st = wb.Store.create(tmp_path / "s", embedder=emb)
    g0 = st.generation
    src = _files(tmp_path / "src", _frame(800), 4)
    report = wd_ingest(st, str(src / "*.parquet"), id="doc", workers=2, rows_per_segment=100,
                       commit_every=1)
    assert report.added == 800 and st.generation == report.generation
    assert report.commits == st.generation - g0 >= 1
    assert len(st) == 800  # the handle sees its own commits
    st.close()


def _bad_cases(tmp_path: Path) -> dict[str, tuple[dict, type[WorkbenchError], str]]:
    good = _files(tmp_path / "good", _frame(300), 2)
    dup = _files(tmp_path / "dup", pl.concat([_frame(200), _frame(50, start=100)]), 2)
    broken = _files(tmp_path / "broken", _frame(300), 2)
    (broken / "part1.parquet").write_bytes(b"PAR1 this is not parquet at all PAR1")
    return {
        "no text column": ({"source": str(good / "*.parquet"), "text": "body"},
                           MissingColumnError, "text"),
        "no id column": ({"source": str(good / "*.parquet"), "id": "uid"},
                         MissingColumnError, "id"),
        "repeated ids across files": ({"source": str(dup / "*.parquet")}, DuplicateIdError,
                                      "id"),
        "unreadable file": ({"source": str(broken / "*.parquet")}, InvalidInputError, "source"),
        "no file": ({"source": str(tmp_path / "none" / "*.parquet")}, InvalidInputError,
                    "source"),
        "other model": ({"source": str(good / "*.parquet"),
                         "embedder": wb.embed.Hashing(dim=24)}, ModelMismatchError, "embedder"),
    }


def test_bad_input_is_named_and_changes_nothing(ray_ok: dict, tmp_path: Path) -> None:
    emb = wb.embed.Hashing(dim=16)
    path = tmp_path / "s"
    st = wb.Store.create(path, embedder=emb)
    st.add(_frame(10, start=10_000), text="text", id="doc", progress=False)
    st.close()
    before = (wb.Store.open(path, readonly=True).generation, _files_in(path))
    for name, (kwargs, error, arg) in _bad_cases(tmp_path).items():
        kwargs = {"id": "doc", "workers": 2, **kwargs}
        source = kwargs.pop("source")
        with pytest.raises(error, match=f"^{arg}: ") as info:
            wd_ingest(path, source, **kwargs)
        assert isinstance(info.value, WorkbenchError), name
        after = (wb.Store.open(path, readonly=True).generation, _files_in(path))
        assert after == before, name


def test_a_failed_first_ingest_leaves_no_store(ray_ok: dict, tmp_path: Path) -> None:
    src = _files(tmp_path / "src", _frame(50), 1)
    with pytest.raises(MissingColumnError):
        wd_ingest(tmp_path / "new", str(src / "*.parquet"), text="body", id="doc",
                  embedder=wb.embed.Hashing(dim=8))
    assert not (tmp_path / "new").exists()


def _by_value() -> None:
    """Ship this module's classes to Ray workers by value (they cannot import tests/)."""
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


class SlowHashing:
    """A callable model (shipped to the actors, not rebuilt) slow enough to be killed."""

    def __init__(self, dim: int, delay: float) -> None:
        self.inner = wb.embed.Hashing(dim=dim)
        self.delay = delay

    def __call__(self, texts: list[str]) -> np.ndarray:
        time.sleep(self.delay)
        return self.inner.embed(texts, progress=False)


def _embedding_actor_pids() -> list[int]:
    import ray

    table = ray._private.state.actors()
    return [int(a["Pid"]) for a in table.values()
            if a.get("State") == "ALIVE" and "_Embed" in a.get("ActorClassName", "")
            and a.get("Pid")]


def test_an_embedding_actor_killed_mid_ingest(ray_ok: dict, tmp_path: Path) -> None:
    _by_value()
    df = _frame(1500)
    src = _files(tmp_path / "src", df, 6)
    emb = wb.embed.FromCallable(SlowHashing(16, 0.15), dim=16, name="slow-hash")
    path = tmp_path / "s"
    wb.Store.create(path, embedder=emb).close()
    killed: list[int] = []

    def killer() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed:
            pids = _embedding_actor_pids()
            if pids:
                time.sleep(1.0)  # mid-job: some batches embedded
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
            time.sleep(0.2)

    t = threading.Thread(target=killer, daemon=True)
    t.start()
    try:
        wd_ingest(path, str(src / "*.parquet"), id="doc", embedder=emb, workers=2,
                  batch_size=50, rows_per_segment=100, commit_every=1)
        recovered = True
    except WorkbenchError:
        recovered = False
    t.join()
    assert killed, "no embedding actor was found to kill"
    st = wb.Store.open(path, embedder=emb)  # opens whole; collects orphans
    ids = st.scan().collect().get_column("id")
    assert ids.n_unique() == ids.len()
    if not recovered:
        st.close()
        wd_ingest(path, str(src / "*.parquet"), id="doc", embedder=emb, workers=2,
                  batch_size=50, rows_per_segment=100)
        st = wb.Store.open(path, embedder=emb)
    meta, vecs = _content(st)
    assert meta.get_column("id").to_list() == sorted(df.get_column("doc").to_list())
    np.testing.assert_allclose(vecs, emb.embed(meta.get_column("text").to_list(),
                                               progress=False), atol=1e-6)
    named = {f.name for e in st.view().manifest.segments for f in e.files()}
    assert _files_in(path) == named  # no orphan files after the writer's open
    st.close()


CHILD = textwrap.dedent("""
    import sys, time
    import numpy as np
    import workbench as wb, workbench.distributed as wd

    class Slow:
        def __call__(self, texts):
            time.sleep(0.2)
            return wb.embed.Hashing(dim=16).embed(texts, progress=False)

    wd.connect(address=sys.argv[1])
    emb = wb.embed.FromCallable(Slow(), dim=16, name="slow-hash")
    wd.ingest(sys.argv[2], sys.argv[3], id="doc", embedder=emb, workers=2, batch_size=50,
              rows_per_segment=100, commit_every=1, progress=False)
""")


def test_the_driver_killed_mid_ingest_leaves_a_whole_store(ray_ok: dict, tmp_path: Path
                                                           ) -> None:
    _by_value()
    df = _frame(2000)
    src = _files(tmp_path / "src", df, 4)
    path = tmp_path / "s"
    emb = wb.embed.FromCallable(SlowHashing(16, 0.0), dim=16, name="slow-hash")
    wb.Store.create(path, embedder=emb).close()
    env = {**os.environ, "PYTHONPATH": str(Path(wb.__file__).parent.parent)}
    child = subprocess.Popen([sys.executable, "-c", CHILD, ray_ok["address"], str(path),
                              str(src / "*.parquet")], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and child.poll() is None:
            gens = sorted(p.name for p in path.glob("manifest-*.json"))
            if len(gens) >= 3:  # two checkpoint commits landed: the job is mid-way
                break
            time.sleep(0.1)
        assert child.poll() is None, "the job ended before it could be killed"
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    st = wb.Store.open(path, embedder=emb)  # whole: every named file there and checked
    n_before = len(st)
    assert 0 < n_before < 2000
    st.close()
    wd_ingest(path, str(src / "*.parquet"), id="doc", embedder=emb, workers=2,
              rows_per_segment=500)
    st = wb.Store.open(path, embedder=emb)
    ids = st.scan().collect().get_column("id")
    assert ids.len() == ids.n_unique() == 2000
    st.close()


def test_report_to_frame(ray_ok: dict, tmp_path: Path) -> None:
    src = _files(tmp_path / "src", _frame(100), 1)
    r = wd_ingest(tmp_path / "s", str(src / "*.parquet"), id="doc",
                  embedder=wb.embed.Hashing(dim=8), workers=1)
    f = r.to_frame()
    assert f.height == 1 and f.get_column("added").item() == 100
    assert r.rows_per_second > 0 and 0 < r.setup_seconds <= r.seconds
    assert ingest_mod.IngestReport is type(r)


def test_two_nodes_write_segments(tmp_path: Path) -> None:
    # Its own cluster (ray.cluster_utils.Cluster: two raylets on this machine), in a child
    # process: one driver connects to one cluster.
    import json

    df = _frame(1200)
    src = _files(tmp_path / "src", df, 4)
    child = Path(__file__).with_name("two_nodes_child.py")
    env = {**os.environ, "PYTHONPATH": str(Path(wb.__file__).parent.parent)}
    env.pop("RAY_ADDRESS", None)
    out = subprocess.run([sys.executable, str(child), str(tmp_path / "s"),
                          str(src / "*.parquet")], capture_output=True, text=True, env=env,
                         timeout=RAY_TIMEOUT - 20)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["nodes_in_cluster"] == 2
    assert report["added"] == 1200 and report["segments"] >= 12
    assert len(set(report["nodes"])) == 2, report  # both raylets' tasks wrote segments
    st = wb.Store.open(tmp_path / "s", readonly=True)
    assert sorted(st.scan().collect().get_column("id").to_list()) == sorted(
        df.get_column("doc").to_list())
