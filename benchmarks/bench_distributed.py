"""Distributed (Ray) against in-process: ingest, dedup and drift side by side, and extrapolation.

One local Ray cluster per run (``wd.connect(num_cpus=2)``, its start timed once), shut down at
the end. Every workload runs in-process and through ``workbench.distributed`` with each of
``--workers``, at two sizes: a *tiny* job (its wall time is the job's fixed cost: worker and
actor start, model load, Ray Data planning, task fan-out) and the *big* one. Columns:

- ``wall s`` and ``rows/s`` of the big job (rows / wall);
- ``fixed s``: the tiny job's wall (best of ``--tiny-repeats``); for ingest also
  ``IngestReport.setup_seconds`` of the big job (connect + reading and checking the input
  through Ray Data);
- ``per-row rows/s``: the rate apart from the fixed cost, (N_big - N_tiny) / (T_big - T_tiny);
- ``peak MB`` / ``+MB``: the peak, during the big job, of the summed RSS of the driver and every
  process it started (the raylet, GCS and Ray worker processes; sampled every 0.2 s by a
  background thread with psutil), and its rise over the sum just before the job. In-process
  rows count the driver alone (the idle cluster is not theirs). RSS counts shared pages (the
  object store, memory-mapped vectors) once per process that maps them;
- agreement with the in-process result of the same size: ingest ``same ids+meta`` and max
  |delta vector|; dedup ``pairs`` / ``groups`` (1.0 = equal frames, else the Jaccard share of
  pairs / of grouped rows); drift the max |delta| over the window statistics and equal flags.

Workloads:

- *minilm*: ``--minilm-rows`` AG News texts (the 7,600 of the test set, then more made by
  pairing each title with another item's description, so every text is distinct; no embedding
  is repeated) through ``wb.embed.MiniLM()``. The embedding cache stays cold on both sides:
  ``WORKBENCH_CACHE_DIR`` is a temporary folder, set before the cluster starts (so the Ray
  actors' ``MiniLM()`` sees it too) and emptied before every run; both sides write to it.
- *hashing*: ``--hashing-rows`` short synthetic texts through ``wb.embed.Hashing``.
- *dedup*: a vectors-only store (``dim=384``, 10 segments of at most 100,000 rows) of
  ``--dedup-rows`` random unit vectors with 1 % of rows planted in near-duplicate triples
  (noise 0.05, cosine >= 0.995); ``wb.find_duplicates(candidates="lsh", method="cosine",
  threshold=0.98, cache=False)`` against ``wd.find_duplicates(threshold=0.98, workers=w)``.
- *drift*: ``--drift-windows`` weekly windows of ``--drift-window-rows`` rows (384-d, from
  ``synthetic_stream`` with two change points), one segment per window;
  ``wb.compute_drift(every="1w")`` against ``wd.compute_drift(every="1w", workers=w)``.

The extrapolation to 8 / 32 / 128 nodes of 16 cores prints every assumption it uses.

Examples
--------
    python benchmarks/bench_distributed.py                      # all parts, full sizes
    python benchmarks/bench_distributed.py --quick              # all parts, scaled down
    python benchmarks/bench_distributed.py --part dedup --dedup-rows 200000 --workers 2
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import polars as pl
from _common import cores, interleaved, log, render  # noqa: E402

import workbench as wb

PARTS = ("ingest", "hashing", "dedup", "drift")
DIM = 384
THRESHOLD = 0.98
NOISE = 0.05
GROUP_SIZE = 3
SEGMENT_ROWS = 100_000
NODES = (8, 32, 128)
CORES_PER_NODE = 16
# goals, measured on this machine
INGEST_RATIO_GOAL = 0.8
FIXED_GOAL_S = 10.0
VECTOR_TOL = 1e-5
DRIFT_TOL = 1e-6
DRIFT_STATS = ("centroid_shift", "mmd2", "mmd_p", "auc", "classifier_p", "components_drifted",
               "components_p", "p_value", "p_adjusted")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def fmt_rate(r: float | None) -> str:
    return "-" if r is None or not np.isfinite(r) or r <= 0 else f"{r:,.0f}"


def fmt_s(s: float | None, spec: str = ".2f") -> str:
    return "-" if s is None or not np.isfinite(s) else format(s, spec)


def fmt_ratio(r: float | None) -> str:
    return "" if r is None or not np.isfinite(r) else f"{r:.2f}x"


# ============================================================================ memory
class Sampler:
    """Peak summed RSS of the driver and of all its descendant processes (a thread)."""

    def __init__(self, period: float = 0.2) -> None:
        import psutil

        self.me = psutil.Process()
        self.period = period
        self.stop = threading.Event()
        self.peak_all = self.peak_driver = 0
        self.base_all = self.base_driver = 0
        self.thread: threading.Thread | None = None

    def sample(self) -> tuple[int, int]:
        import psutil

        driver = self.me.memory_info().rss
        total = driver
        try:
            kids = self.me.children(recursive=True)
        except psutil.Error:
            kids = []
        for p in kids:
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
        return driver, total

    def _run(self) -> None:
        while not self.stop.wait(self.period):
            d, t = self.sample()
            self.peak_driver, self.peak_all = max(self.peak_driver, d), max(self.peak_all, t)

    def __enter__(self) -> Sampler:
        self.base_driver, self.base_all = self.sample()
        self.peak_driver, self.peak_all = self.base_driver, self.base_all
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        assert self.thread is not None
        self.thread.join()
        d, t = self.sample()
        self.peak_driver, self.peak_all = max(self.peak_driver, d), max(self.peak_all, t)


class Run(NamedTuple):
    """One timed call: wall, and peak / base MB of the driver and of driver + descendants."""

    wall: float
    peak_all: float
    base_all: float
    peak_driver: float
    base_driver: float


def measured(fn: Callable[[], Any]) -> tuple[Run, Any]:
    import gc

    gc.collect()
    with Sampler() as s:
        t0 = time.perf_counter()
        out = fn()
        wall = time.perf_counter() - t0
    mb = 1024.0**2
    return Run(wall, s.peak_all / mb, s.base_all / mb, s.peak_driver / mb,
               s.base_driver / mb), out


def memory_cols(mode: str, r: Run) -> list[str]:
    if mode == "in-process":
        return [f"{r.peak_driver:,.0f}", f"{r.peak_driver - r.base_driver:+,.0f}"]
    return [f"{r.peak_all:,.0f}", f"{r.peak_all - r.base_all:+,.0f}"]


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# ============================================================================ results
class Part(NamedTuple):
    """What one workload measured, for the tables, goals and extrapolation."""

    name: str
    n_big: int
    n_tiny: int
    big: dict[str, Run]
    tiny: dict[str, Run]
    agree: dict[str, dict[str, Any]]  # mode -> agreement fields (and "ok")
    extra: dict[str, Any]  # per-part facts: setup seconds, bytes per row, ...


def modes(workers: list[int]) -> list[str]:
    return ["in-process", *(f"ray w={w}" for w in workers)]


def per_row_rate(p: Part, mode: str) -> float:
    dt = p.big[mode].wall - p.tiny[mode].wall
    return (p.n_big - p.n_tiny) / dt if dt > 0 else float("nan")


def part_table(p: Part, workers: list[int], agree_header: list[str],
               agree_cols: Callable[[dict[str, Any]], list[str]]) -> str:
    rows = []
    ref_wall = p.big["in-process"].wall
    ref_rate = per_row_rate(p, "in-process")
    for mode in modes(workers):
        b, t = p.big[mode], p.tiny[mode]
        rate = per_row_rate(p, mode)
        setup = p.extra.get("setup", {}).get(mode)
        row = [mode, f"{p.n_big:,}", f"{b.wall:.2f}", fmt_rate(p.n_big / b.wall),
               fmt_ratio(ref_wall / b.wall), f"{t.wall:.2f}",
               "-" if setup is None else f"{setup:.2f}", fmt_rate(rate),
               fmt_ratio(rate / ref_rate), *memory_cols(mode, b)]
        row += agree_cols(p.agree.get(mode, {})) if mode != "in-process" else \
            ["(reference)"] + [""] * (len(agree_header) - 1)
        rows.append(row)
    header = ["mode", "rows", "wall s", "rows/s", "vs in-proc", f"fixed s ({p.n_tiny:,})",
              "setup s", "per-row rows/s", "vs in-proc", "peak MB", "+MB", *agree_header]
    return render(header, rows, set(range(1, 11 + len(agree_header))))


# ============================================================================ ingest
def ag_texts(n: int) -> pl.DataFrame | None:
    from workbench.evaldata import EvalDataMissingError, ag_news

    try:
        ag = ag_news()
    except EvalDataMissingError as exc:
        print(f"ingest: skipped ({exc})")
        return None
    m = ag.height
    titles = ag.get_column("title").to_numpy()
    descs = ag.get_column("description").to_numpy()
    labels = ag.get_column("label").to_numpy()
    i = np.arange(n)
    copy, j = i // m, i % m
    # copy 0: the item itself; copy c: its title with the description of item j + 7919 c
    dj = (j + 7919 * copy) % m
    text = [f"{t}. {d}" for t, d in zip(titles[j], descs[dj], strict=True)]
    df = pl.DataFrame({"id": [f"ag-{k:07d}" for k in i], "text": text, "label": labels[j]})
    assert df.get_column("text").n_unique() == n, "texts repeat"
    return df


def hashing_texts(n: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng([seed, 3])
    syll = np.array(["ka", "lo", "mi", "ne", "ru", "ta", "so", "vi", "de", "po", "an", "el",
                     "ir", "om", "us", "be", "zo", "fa", "gu", "ch"])
    vocab = np.array([a + b + c for a in syll for b in syll for c in syll[:5]])  # 2,000 words
    w = vocab[rng.integers(0, vocab.size, (n, 4))]
    text = pl.DataFrame({f"w{k}": w[:, k] for k in range(4)}).select(
        pl.concat_str([pl.col(f"w{k}") for k in range(4)], separator=" ")
        + pl.lit(" no. ") + pl.int_range(pl.len()).cast(pl.Utf8)).to_series()
    return pl.DataFrame({"id": pl.int_range(n, eager=True).cast(pl.Utf8).str.zfill(8),
                         "text": text.alias("text"),
                         "score": rng.random(n)})


def content_check(ref: Path, got: Path, chunk: int = 100_000) -> dict[str, Any]:
    """Same ids and metadata, and the max |delta| of the vectors, of two stores."""
    a = wb.Store.open(ref, readonly=True)
    b = wb.Store.open(got, readonly=True)
    try:
        va, vb = a.view(), b.view()
        ra, rb = va.rows().sort("id"), vb.rows().sort("id")
        hidden = [c for c in ra.columns if c == "key" or c.startswith("_")]
        same = ra.drop(hidden).equals(rb.drop([c for c in rb.columns if c == "key"
                                               or c.startswith("_")]))
        delta = 0.0
        if ra.height == rb.height and same:
            for lo in range(0, ra.height, chunk):
                x = va.vectors(ra.slice(lo, chunk))
                y = vb.vectors(rb.slice(lo, chunk))
                delta = max(delta, float(np.abs(x - y).max()) if x.size else 0.0)
        else:
            delta = float("nan")
        return {"same": same, "delta": delta, "model": a.model == b.model,
                "ok": bool(same and delta <= VECTOR_TOL and a.model == b.model)}
    finally:
        a.close()
        b.close()


def run_ingest(name: str, df: pl.DataFrame, n_tiny: int, make: Callable[[], Any],
               args: argparse.Namespace, tmp: Path, cache_dir: Path | None) -> Part:
    import workbench.distributed as wd

    src: dict[int, Path] = {}
    for n in (n_tiny, df.height):
        d = tmp / f"{name}-src-{n}"
        d.mkdir()
        df.head(n).write_parquet(d / "part.parquet")
        src[n] = d / "part.parquet"
    stores = tmp / f"{name}-stores"
    stores.mkdir()
    setup: dict[str, float] = {}
    paths: dict[tuple[str, int], Path] = {}
    cache_used: list[bool] = []

    def cold() -> None:
        if cache_dir is not None:
            shutil.rmtree(cache_dir, ignore_errors=True)
            cache_dir.mkdir()

    def fresh(mode: str, n: int) -> Path:
        p = stores / f"{mode.replace(' ', '').replace('=', '')}-{n}"
        shutil.rmtree(p, ignore_errors=True)
        paths[mode, n] = p
        return p

    def inproc(n: int) -> Callable[[], Any]:
        def fn() -> Any:
            path = fresh("in-process", n)
            frame = pl.read_parquet(src[n])
            st = wb.Store.create(path, embedder=make())
            st.add(frame, text="text", id="id", progress=False)
            st.close()
        return fn

    def ray(n: int, w: int) -> Callable[[], Any]:
        def fn() -> Any:
            path = fresh(f"ray w={w}", n)
            rep = wd.ingest(path, str(src[n]), text="text", id="id", embedder=make(),
                            workers=w, progress=False)
            key = f"ray w={w}" if n == df.height else f"ray w={w} tiny"
            setup[key] = min(setup.get(key, float("inf")), rep.setup_seconds)
            if cache_dir is not None:
                cache_used.append(any(cache_dir.iterdir()))
            return rep
        return fn

    def with_cold(fn: Callable[[], Any]) -> tuple[Run, Any]:
        cold()
        return measured(fn)

    result: dict[int, dict[str, Run]] = {}
    for n, reps in ((n_tiny, args.tiny_repeats), (df.height, args.repeats)):
        fns: dict[str, Callable[[], Any]] = {"in-process": inproc(n)}
        for w in args.workers:
            fns[f"ray w={w}"] = ray(n, w)
        log(f"{name}: {n:,} rows, {', '.join(fns)} ({reps} round(s), order shuffled)")
        result[n], _ = interleaved(fns, reps, measure=with_cold)
        log(f"{name}: {n:,} rows: " + ", ".join(f"{k} {v.wall:.1f} s"
                                                   for k, v in result[n].items()))
    agree = {f"ray w={w}": content_check(paths["in-process", df.height],
                                          paths[f"ray w={w}", df.height])
             for w in args.workers}
    ref = paths["in-process", df.height]
    extra = {"setup": setup, "store_bytes_row": folder_bytes(ref) / df.height,
             "input_bytes_row": src[df.height].stat().st_size / df.height,
             "text_bytes_row": float(df.get_column("text").str.len_bytes().mean() or 0.0),
             "dim": make().dim, "cache_used_by_ray": all(cache_used) if cache_used else None}
    shutil.rmtree(stores, ignore_errors=True)
    return Part(name, df.height, n_tiny, result[df.height], result[n_tiny], agree, extra)


def ingest_agree(a: dict[str, Any]) -> list[str]:
    return ["yes" if a.get("same") else "NO", fmt_s(a.get("delta"), ".1e"),
            verdict(bool(a.get("ok")))]


INGEST_AGREE = ["same ids+meta", "max |dv|", f"<= {VECTOR_TOL:g}"]


# ============================================================================ dedup
def planted_vectors(n: int, seed: int) -> tuple[np.ndarray, int]:
    """`n` random unit 384-d rows, 1 % of them in near-duplicate triples (noise 0.05)."""
    rng = np.random.default_rng([seed, 5])
    x = np.empty((n, DIM), dtype=np.float32)
    for lo in range(0, n, 65_536):
        c = rng.standard_normal((min(65_536, n - lo), DIM), dtype=np.float32)
        x[lo:lo + c.shape[0]] = c / np.linalg.norm(c, axis=1, keepdims=True)
    groups = max(1, n // 300)
    rows = rng.choice(n, groups * GROUP_SIZE, replace=False).reshape(groups, GROUP_SIZE)
    orig = x[rows[:, 0]]
    for g in range(1, GROUP_SIZE):
        off = rng.standard_normal((groups, DIM), dtype=np.float32)
        off -= (off * orig).sum(axis=1, keepdims=True) * orig  # orthogonal to the original
        off *= NOISE / np.linalg.norm(off, axis=1, keepdims=True)
        y = orig + off
        x[rows[:, g]] = y / np.linalg.norm(y, axis=1, keepdims=True)
    return x, groups


def build_vector_store(path: Path, x: np.ndarray, frame: pl.DataFrame | None = None,
                       step: int = 0) -> wb.Store:
    st = wb.Store.create(path, dim=DIM)
    n = x.shape[0]
    if frame is None:
        frame = pl.DataFrame({"id": pl.int_range(n, eager=True).cast(pl.Utf8).str.zfill(8)})
    if step <= 0:  # about 10 segments (at most SEGMENT_ROWS rows each), so tasks can split
        step = min(SEGMENT_ROWS, -(-n // 10))
    for lo in range(0, n, step):
        st.add(frame.slice(lo, step), vectors=x[lo:lo + step], progress=False)
    return st


def run_dedup(args: argparse.Namespace, tmp: Path) -> Part:
    import workbench.distributed as wd

    n, n_tiny = args.dedup_rows, args.dedup_tiny
    log(f"dedup: making {n:,} x {DIM} vectors and the stores")
    x, groups = planted_vectors(n, args.seed)
    t0 = time.perf_counter()
    big = build_vector_store(tmp / "dedup-big", x)
    t_build = time.perf_counter() - t0
    tiny = build_vector_store(tmp / "dedup-tiny", x[:n_tiny])
    del x
    log(f"dedup: stores built ({t_build:.0f} s for {n:,} rows)")
    kw = {"threshold": THRESHOLD, "progress": False}

    def fns(st: wb.Store) -> dict[str, Callable[[], Any]]:
        out: dict[str, Callable[[], Any]] = {
            "in-process": lambda: wb.find_duplicates(st, candidates="lsh", method="cosine",
                                                     cache=False, **kw)}
        for w in args.workers:
            out[f"ray w={w}"] = (lambda w=w: wd.find_duplicates(st, workers=w, **kw))
        return out

    log(f"dedup: tiny ({n_tiny:,} rows)")
    t_tiny, _ = interleaved(fns(tiny), args.tiny_repeats, measure=measured)
    log(f"dedup: big ({n:,} rows)")
    t_big, outs = interleaved(fns(big), args.repeats, measure=measured)
    log("dedup: " + ", ".join(f"{k} {v.wall:.1f} s" for k, v in t_big.items()))
    ref = outs["in-process"]
    agree = {}
    for w in args.workers:
        got = outs[f"ray w={w}"]
        agree[f"ray w={w}"] = dedup_agreement(ref, got)
    lsh = ref.info.get("lsh") or {}
    extra = {"groups_planted": groups, "build_s": t_build, "bands": lsh.get("bands"),
             "bits": lsh.get("bits"), "summary": ref.summary,
             "store_bytes_row": folder_bytes(big.path) / n,
             "segments": len(big.view().segments)}
    big.close()
    tiny.close()
    return Part("dedup", n, n_tiny, t_big, t_tiny, agree, extra)


def dedup_agreement(a: Any, b: Any) -> dict[str, Any]:
    from polars.testing import assert_frame_equal

    def equal(x: pl.DataFrame, y: pl.DataFrame) -> bool:
        try:
            assert_frame_equal(x, y)
            return True
        except AssertionError:
            return False

    pairs_eq, groups_eq = equal(a.pairs, b.pairs), equal(a.groups, b.groups)

    def jaccard(x: pl.DataFrame, y: pl.DataFrame, cols: list[str]) -> float:
        sx, sy = set(x.select(cols).iter_rows()), set(y.select(cols).iter_rows())
        return len(sx & sy) / max(len(sx | sy), 1)

    gcols = [c for c in ("group", "key") if c in a.groups.columns]
    return {"pairs": 1.0 if pairs_eq else jaccard(a.pairs, b.pairs, ["key_a", "key_b"]),
            "groups": 1.0 if groups_eq else jaccard(a.groups, b.groups, gcols),
            "n_pairs": a.pairs.height, "ok": pairs_eq and groups_eq}


def dedup_agree_cols(a: dict[str, Any]) -> list[str]:
    return [f"{a['pairs']:.4g}", f"{a['groups']:.4g}", verdict(bool(a.get("ok")))]


DEDUP_AGREE = ["pairs", "groups", "exact"]


# ============================================================================ drift
def drift_store(path: Path, windows: int, per: int, seed: int) -> wb.Store:
    n = windows * per
    s = wb.datasets.synthetic_stream(n, DIM, drift_points=2, duplicate_groups=0,
                                     random_state=seed)
    start = datetime(2025, 1, 6)  # a Monday: weekly windows start on Mondays
    step = timedelta(days=7) / per
    ts = [start + timedelta(days=7 * (i // per)) + step * (i % per) for i in range(n)]
    frame = s.frame.select("id").with_columns(pl.Series("timestamp", ts,
                                                        dtype=pl.Datetime("us")))
    return build_vector_store(path, s.vectors, frame, step=per)


def run_drift(args: argparse.Namespace, tmp: Path) -> Part:
    import workbench.distributed as wd

    w_n, per, per_tiny = args.drift_windows, args.drift_window_rows, args.drift_tiny_rows
    log(f"drift: {w_n} windows of {per:,} rows (and of {per_tiny:,})")
    big = drift_store(tmp / "drift-big", w_n, per, args.seed)
    tiny = drift_store(tmp / "drift-tiny", w_n, per_tiny, args.seed)
    kw = {"time": "timestamp", "every": "1w", "progress": False}

    def fns(st: wb.Store) -> dict[str, Callable[[], Any]]:
        out: dict[str, Callable[[], Any]] = {"in-process": lambda: wb.compute_drift(st, **kw)}
        for w in args.workers:
            out[f"ray w={w}"] = (lambda w=w: wd.compute_drift(st, workers=w, **kw))
        return out

    t_tiny, _ = interleaved(fns(tiny), args.tiny_repeats, measure=measured)
    t_big, outs = interleaved(fns(big), args.repeats, measure=measured)
    log("drift: " + ", ".join(f"{k} {v.wall:.1f} s" for k, v in t_big.items()))
    ref = outs["in-process"]
    agree = {f"ray w={w}": drift_agreement(ref, outs[f"ray w={w}"]) for w in args.workers}
    extra = {"windows": w_n, "per": per, "flagged": len(ref.flagged),
             "tested": ref.summary.get("tested"), "segments": len(big.view().segments)}
    big.close()
    tiny.close()
    return Part("drift", w_n * per, w_n * per_tiny, t_big, t_tiny, agree, extra)


def drift_agreement(a: Any, b: Any) -> dict[str, Any]:
    wa, wb_ = a.windows, b.windows
    keys = ["start", "end", "n", "n_reference", "status", "flagged"]
    same = wa.select(keys).equals(wb_.select(keys))
    delta = 0.0
    nulls = True
    for c in DRIFT_STATS:
        if c not in wa.columns:
            continue
        x, y = wa.get_column(c).cast(pl.Float64), wb_.get_column(c).cast(pl.Float64)
        nulls &= x.is_null().equals(y.is_null())
        d = (x - y).abs().max()
        delta = max(delta, float(d)) if d is not None else delta  # type: ignore[arg-type]
    flags = a.flagged == b.flagged
    return {"delta": delta, "flags": flags and same and nulls,
            "ok": bool(flags and same and nulls and delta <= DRIFT_TOL)}


def drift_agree_cols(a: dict[str, Any]) -> list[str]:
    return [f"{a['delta']:.1e}", "yes" if a["flags"] else "NO", verdict(bool(a.get("ok")))]


DRIFT_AGREE = ["max |d stat|", "flags equal", f"<= {DRIFT_TOL:g}"]


# ============================================================================ extrapolation
def extrapolate(parts: dict[str, Part], args: argparse.Namespace, cluster_s: float) -> None:
    fs = args.fs_mbps * 1e6
    net = args.net_mbps * 1e6
    task_s = args.task_ms / 1e3
    c = cores()
    print(f"extrapolation to {' / '.join(map(str, NODES))} nodes of {CORES_PER_NODE} cores "
          "(every number below is an assumption or measured above; check the arithmetic):")
    print(f"  A1 per-core rate = the best Ray per-row rate above / {c} cores (the cluster had "
          f"{c} CPUs; 1 worker used both through torch threads, 2 workers one each), scaling "
          "linearly with cores (no efficiency loss, no hyper-threads: optimistic)")
    print(f"  A2 shared filesystem: {args.fs_mbps:,.0f} MB/s aggregate, read + write, the same "
          "whatever the node count (every segment file goes through it)")
    print(f"  A3 network: {args.net_mbps:,.0f} MB/s per node (full bisection); ingest sends each "
          "embedded row (vector + metadata) from its actor to a write task on another node "
          "(worst case); dedup shuffles n_bands x 20 B per row (band u32, code u64, key u64); "
          "drift sends only sums")
    print(f"  A4 fan-out: {args.task_ms:g} ms of driver time per task or actor, serial; ingest: "
          f"{CORES_PER_NODE} x nodes actors + one write task per {SEGMENT_ROWS:,} rows; dedup: "
          "2 x map tasks (probe + bands, 2 per worker) + reduce tasks (2 per worker); "
          "drift: 1 map task per worker")
    print(f"  A5 Ray fixed cost per job = the tiny job's wall measured here (2 cores; model "
          f"loads and worker starts run in parallel on a cluster); the cluster itself starts "
          f"once ({cluster_s:.1f} s here, local), not per job")
    print("  A6 driver-side serial work is not modelled for ingest/dedup (commits; dedup merges "
          "the kNN graph on the driver: n x k x 12 B, 16 x 12 B = 192 B a row, 192 GB at 1e9 "
          "rows); drift runs its non-sum tests on the driver on at most 20,000 rows a side: "
          "per tested window assumed = the Ray job's wall here / tested windows (upper bound: "
          "it includes the map part), at 10,000 rows a window; x2 for windows >= 20,000 rows")
    rows = []
    for key, part in parts.items():
        ray_modes = [m for m in part.big if m != "in-process"]
        if not ray_modes:
            continue
        finite = [m for m in ray_modes if np.isfinite(per_row_rate(part, m))]
        if finite:
            best = max(finite, key=lambda m: per_row_rate(part, m))
            per_core, how = per_row_rate(part, best) / c, f"{best}, per-row"
        else:  # the tiny job took as long as the big one: use the wall rate
            best = max(ray_modes, key=lambda m: part.n_big / part.big[m].wall)
            per_core, how = part.n_big / part.big[best].wall / c, f"{best}, wall rate"
        fixed = min(part.tiny[m].wall for m in ray_modes)
        target = getattr(args, f"target_{key}")
        if key in ("ingest", "hashing"):
            fs_b = part.extra["store_bytes_row"] + part.extra["input_bytes_row"]
            net_b = part.extra["dim"] * 4 + part.extra["text_bytes_row"] + 16
            what = (f"store {part.extra['store_bytes_row']:,.0f} B/row written (measured) + "
                    f"input {part.extra['input_bytes_row']:,.0f} B/row read (parquet)")
        elif key == "dedup":
            bands = int(part.extra.get("bands") or 0)
            fs_b = 3 * DIM * 4
            net_b = bands * 20
            what = (f"3 reads of {DIM * 4:,} B/row (probe, bands, verify; verify reads only "
                    f"rows in shared buckets: upper bound); shuffle {bands} bands x 20 B")
        else:
            fs_b, net_b = DIM * 4, 0
            what = f"1 read of {DIM * 4:,} B/row (map sums)"
        print(f"  {key}: per-core {per_core:,.0f} rows/s ({how}); FS {fs_b:,.0f} B/row "
              f"({what}); network {net_b:,.0f} B/row; fixed {fixed:.1f} s; job of "
              f"{target:,} rows")
        for nodes in NODES:
            k = nodes * CORES_PER_NODE
            r_cpu = k * per_core
            r_fs = fs / fs_b
            r_net = nodes * net / net_b if net_b else float("inf")
            rate = min(r_cpu, r_fs, r_net)
            bound = {r_cpu: "cores", r_fs: "shared FS", r_net: "network"}[rate]
            if key in ("ingest", "hashing"):
                tasks = k + int(np.ceil(target / SEGMENT_ROWS))
            elif key == "dedup":
                tasks = 2 * (2 * k) + 2 * k
            else:
                tasks = k
            fan = tasks * task_s
            serial = 0.0
            if key == "drift":
                tested = int(part.extra.get("tested") or part.extra["windows"] - 1)
                per_win = (part.big[best].wall - fixed) / max(tested, 1)
                win_rows = target // part.extra["windows"]
                serial = tested * per_win * (2.0 if win_rows >= 20_000 else 1.0)
            total = fixed + fan + serial + target / rate
            rows.append((key, f"{nodes}", f"{k:,}", fmt_rate(r_cpu), fmt_rate(r_fs),
                         fmt_rate(r_net) if np.isfinite(r_net) else "-", fmt_rate(rate), bound,
                         f"{fixed:.1f}", f"{fan:.1f}", f"{serial:.1f}", f"{target / rate:,.0f}",
                         f"{total:,.0f}", f"{total / 60:,.1f}"))
    print()
    print(render(("workload", "nodes", "cores", "cores rows/s", "FS rows/s", "net rows/s",
                  "rows/s", "bound", "fixed s", "fan-out s", "driver s", "rows/rate s",
                  "total s", "min"), rows, set(range(1, 14)) - {7}, groups=[r[0] for r in rows]))
    print("  total = fixed + fan-out + driver + rows / min(cores, FS, network) rows/s")


# ============================================================================ main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--part", default="all", choices=(*PARTS, "all"))
    p.add_argument("--quick", action="store_true",
                   help="scaled down: minilm 4,000, hashing 200,000, dedup 200,000, drift "
                        "windows of 2,000 rows (explicit options win)")
    p.add_argument("--workers", default="1,2", help="Ray worker counts, comma-separated")
    p.add_argument("--minilm-rows", type=int, default=None, help="default 20000")
    p.add_argument("--minilm-tiny", type=int, default=200)
    p.add_argument("--hashing-rows", "--rows", dest="hashing_rows", type=int, default=None,
                   help="default 1000000")
    p.add_argument("--hashing-tiny", type=int, default=2_000)
    p.add_argument("--hashing-dim", type=int, default=256)
    p.add_argument("--dedup-rows", type=int, default=None, help="default 1000000")
    p.add_argument("--dedup-tiny", type=int, default=5_000)
    p.add_argument("--drift-windows", type=int, default=12)
    p.add_argument("--drift-window-rows", type=int, default=None, help="default 10000")
    p.add_argument("--drift-tiny-rows", type=int, default=100,
                   help="rows per window of the tiny drift job")
    p.add_argument("--repeats", type=int, default=1, help="rounds of the big jobs (best)")
    p.add_argument("--tiny-repeats", type=int, default=2, help="rounds of the tiny jobs (best)")
    p.add_argument("--fs-mbps", type=float, default=1_000.0,
                   help="extrapolation: shared filesystem bandwidth, MB/s aggregate")
    p.add_argument("--net-mbps", type=float, default=1_250.0,
                   help="extrapolation: network bandwidth per node, MB/s (10 GbE)")
    p.add_argument("--task-ms", type=float, default=10.0,
                   help="extrapolation: driver time per task or actor started, ms")
    p.add_argument("--target-ingest", type=int, default=100_000_000,
                   help="extrapolation: MiniLM texts of the job")
    p.add_argument("--target-hashing", type=int, default=1_000_000_000)
    p.add_argument("--target-dedup", type=int, default=1_000_000_000)
    p.add_argument("--target-drift", type=int, default=120_000_000,
                   help="extrapolation: drift rows (over --drift-windows windows)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tmp", type=Path, default=Path(tempfile.gettempdir()),
                   help="parent folder for temporary stores and files")
    p.add_argument("--strict", action="store_true", help="exit 1 when a goal fails")
    args = p.parse_args(argv)
    q = args.quick
    for name, full, quick in (("minilm_rows", 20_000, 4_000),
                              ("hashing_rows", 1_000_000, 200_000),
                              ("dedup_rows", 1_000_000, 200_000),
                              ("drift_window_rows", 10_000, 2_000)):
        if getattr(args, name) is None:
            setattr(args, name, quick if q else full)
    try:
        args.workers = sorted({int(x) for x in args.workers.split(",") if x.strip()})
    except ValueError:
        p.error(f"--workers: expected comma-separated integers, got {args.workers!r}")
    if not args.workers or min(args.workers) < 1:
        p.error("--workers: expected integers >= 1")
    for big, tiny in (("minilm_rows", "minilm_tiny"), ("hashing_rows", "hashing_tiny"),
                      ("dedup_rows", "dedup_tiny"), ("drift_window_rows", "drift_tiny_rows")):
        if not 0 < getattr(args, tiny) < getattr(args, big):
            p.error(f"--{tiny.replace('_', '-')}: expected 1 .. --{big.replace('_', '-')} - 1")
    if args.drift_tiny_rows < 50:
        p.error("--drift-tiny-rows: expected at least 50 (compute_drift's min_rows)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t_start = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="bench_distributed-", dir=args.tmp))
    cache_dir = tmp / "embedding-cache"
    cache_dir.mkdir()
    # before the cluster starts: its workers inherit the driver's environment
    os.environ["WORKBENCH_CACHE_DIR"] = str(cache_dir)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    import ray

    import workbench.distributed as wd

    parts: dict[str, Part] = {}
    lines: list[str] = []
    todo = PARTS if args.part == "all" else (args.part,)
    try:
        log(f"starting a local Ray cluster (num_cpus={cores()})")
        t0 = time.perf_counter()
        info = wd.connect(num_cpus=cores())
        cluster_s = time.perf_counter() - t0
        print(f"Ray {ray.__version__}: local cluster started in {cluster_s:.1f} s "
              f"({info['cpus']} CPUs, {info['nodes']} node); machine: {cores()} cores, load "
              f"average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        print("  rows/s = rows / wall of the big job; fixed s = wall of the tiny job (best of "
              f"{args.tiny_repeats}); per-row rows/s = (N_big - N_tiny) / (T_big - T_tiny); "
              "setup s = IngestReport.setup_seconds; vs in-proc = Ray / in-process (>1 is "
              "faster); peak MB = summed RSS (in-process: driver only; Ray: driver + raylet, "
              "GCS and workers), +MB its rise during the job")
        if "ingest" in todo:
            df = ag_texts(args.minilm_rows)
            if df is not None:
                from workbench.embed import MiniLM

                parts["ingest"] = run_ingest("minilm", df, args.minilm_tiny, MiniLM, args, tmp,
                                             cache_dir)
                p = parts["ingest"]
                print(f"\n(a) MiniLM ingest: {p.n_big:,} AG News texts (mean "
                      f"{p.extra['text_bytes_row']:.0f} B), cold embedding cache on both sides "
                      f"(Ray actors wrote to it: {p.extra['cache_used_by_ray']}); in-process = "
                      "Store.create(embedder=MiniLM()).add(df, text=...), Ray = wd.ingest(parquet)")
                print(part_table(p, args.workers, INGEST_AGREE, ingest_agree))
        if "hashing" in todo:
            dim = args.hashing_dim
            df = hashing_texts(args.hashing_rows, args.seed)
            parts["hashing"] = run_ingest(
                "hashing", df, args.hashing_tiny, lambda: wb.embed.Hashing(dim=dim), args, tmp,
                None)
            p = parts["hashing"]
            print(f"\n(b) Hashing(dim={dim}) ingest: {p.n_big:,} short synthetic texts (mean "
                  f"{p.extra['text_bytes_row']:.0f} B)")
            print(part_table(p, args.workers, INGEST_AGREE, ingest_agree))
        if "dedup" in todo:
            parts["dedup"] = run_dedup(args, tmp)
            p = parts["dedup"]
            s = p.extra["summary"]
            print(f"\n(c) LSH dedup: {p.n_big:,} x {DIM} store ({p.extra['segments']} segments, "
                  f"built in {p.extra['build_s']:.0f} s), {p.extra['groups_planted']:,} planted "
                  f"triples; threshold {THRESHOLD}; LSH plan {p.extra['bands']} bands x "
                  f"{p.extra['bits']} bits; found {s.get('groups')} groups, "
                  f"{s.get('duplicates')} duplicates")
            print(part_table(p, args.workers, DEDUP_AGREE, dedup_agree_cols))
        if "drift" in todo:
            parts["drift"] = run_drift(args, tmp)
            p = parts["drift"]
            print(f"\n(d) drift: {p.extra['windows']} weekly windows of {p.extra['per']:,} rows "
                  f"x {DIM} ({p.extra['segments']} segments), reference 'first', default "
                  f"methods; {p.extra['tested']} tested, {p.extra['flagged']} flagged")
            print(part_table(p, args.workers, DRIFT_AGREE, drift_agree_cols))
        print()
        if parts:
            extrapolate(parts, args, cluster_s)
    finally:
        ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)

    # ------------------------------------------------------------------ goals
    if "ingest" in parts:
        p = parts["ingest"]
        ref, ref_wall = per_row_rate(p, "in-process"), p.n_big / p.big["in-process"].wall
        for w in args.workers:
            m = f"ray w={w}"
            r = per_row_rate(p, m) / ref
            wall_r = (p.n_big / p.big[m].wall) / ref_wall
            lines.append(f"  {verdict(r >= INGEST_RATIO_GOAL)}  MiniLM ingest, {m}: per-row "
                         f"rate apart from the fixed cost {per_row_rate(p, m):,.0f} rows/s = "
                         f"{r:.2f}x in-process ({ref:,.0f}), goal >= {INGEST_RATIO_GOAL}x "
                         f"(wall rows/s ratio {wall_r:.2f}x, not the goal)")
    for key, p in parts.items():
        for w in args.workers:
            m = f"ray w={w}"
            fixed = p.tiny[m].wall
            setup = p.extra.get("setup", {}).get(m)
            tiny_setup = p.extra.get("setup", {}).get(f"{m} tiny")
            extra = "" if setup is None else (
                f"; setup_seconds {tiny_setup:.2f} s of it (big job: {setup:.2f} s)")
            lines.append(f"  {verdict(fixed <= FIXED_GOAL_S)}  Ray fixed cost, {key} {m}: "
                         f"tiny job ({p.n_tiny:,} rows) {fixed:.2f} s{extra}, goal <= "
                         f"{FIXED_GOAL_S:g} s")
    for key, p in parts.items():
        for m, a in p.agree.items():
            what = {"ingest": f"same ids+metadata+model, max |dv| <= {VECTOR_TOL:g}",
                    "hashing": f"same ids+metadata+model, max |dv| <= {VECTOR_TOL:g}",
                    "dedup": "pairs and groups equal",
                    "drift": f"flags equal, max |d stat| <= {DRIFT_TOL:g}"}[key]
            lines.append(f"  {verdict(bool(a.get('ok')))}  agreement, {key} {m}: {what}")
    print("goals (measured on this machine)")
    print("\n".join(lines) if lines else "  (none for this part)")
    print(f"\ntotal {time.perf_counter() - t_start:.0f} s; load average at the end "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} (above ~2 on 2 cores: disturbed)")
    return 1 if args.strict and any(ln.lstrip().startswith("FAIL") for ln in lines) else 0


if __name__ == "__main__":
    sys.exit(main())
