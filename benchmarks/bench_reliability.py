"""Reliability soak of the store: SIGKILL a committing writer, fuzz damaged files (not in CI).

What it measures
----------------
A. SIGKILL soak. A writer process runs a fixed schedule of commits (add, upsert, delete,
   metadata-only update, compact, and a transaction mixing add/upsert/delete/update; see
   ``_reliability_child.py``) and reports ``begin <step> <kind>`` / ``done <step>`` over a
   pipe. The harness picks one of the writer's next three steps, waits for its ``begin``,
   sleeps a random time up to ~1.3x that kind's typical duration (so kills land anywhere
   inside it, or just after) and SIGKILLs the writer. It then opens the store as a writer
   (CRC check of every file, garbage collection) and compares its content (every id with its
   step/vstep/tag metadata, and the vectors of 8 sampled ids) with the model of "steps
   0..last done" and of "0..in-flight" (the in-flight commit may have landed just before the
   kill). A new writer then resumes from the store's content. Writers are forked from a
   forkserver that has already imported workbench, so a restart costs milliseconds, not an
   interpreter start. Meanwhile two reader processes open read-only snapshots in a loop,
   ``refresh()`` them (sometimes after holding the old one for up to 0.3 s), search (exact and
   HNSW) and scan, and check each answer against the snapshot itself: result ids are in
   ``scan()``, each distance matches the one recomputed from ``vectors()``, exact search
   equals a brute-force top-k, sampled vectors equal what the schedule wrote, and
   ``refresh()`` never goes back a generation. The writer's ``Store.create`` is never killed
   (kills follow a ``begin``), and readers tolerate the store not existing until then.

B. Corrupted-file fuzzing. A small store with three segments, tombstones and a metadata-only
   update is copied per case, one of its files (manifest, index, vectors, meta, tombstones) is
   damaged (1-8 flipped bytes, truncation, or a zeroed range), and a long-lived worker process
   opens the copy read-only, searches, scans and reads vectors. A case ends as a clean
   ``CorruptStoreError`` (good), correct answers (fine: e.g. an old generation's file was hit),
   wrong answers without an error, another exception, or a crash/hang of the worker (bad).
   The goal applies to default settings (``verify=True``); a smaller ``verify=False`` set is
   shown as information (without checksums a damaged index may crash usearch).

How to read it
--------------
Every row with a goal must show PASS. ``corrupt stores``: a writer open after a kill raised.
``committed rows lost``: ids of a commit whose call had returned, missing after the kill.
``torn commits``: content equal to neither candidate model (a partial or mixed commit). Any
of these starts a fresh store (a new epoch) so the soak can go on. ``reader errors``: every
exception a snapshot reader got while commits ran (their messages, masked and counted, follow
the table); ``reader wrong answers``: a snapshot that contradicted itself. ``writer
failures``: a writer that raised or died without being killed (e.g. it could not open the
store it resumes). ``files left behind``: segment or temporary files that no kept manifest
names after the recovery open. ``in flight`` counts kills by the kind of operation running
at the kill; ``landed`` counts kills after which the in-flight commit was found committed.
The ``verify=False`` row has no goal. The exit status is 0 when every goal passes, else 1.

The default run (1,000 kills, 1,000 + 200 fuzz cases) took about 9 minutes on the 2-core
dev machine; ``--quick`` about 1. Stores live under the system temp folder (a real disk, so
every fsync is paid); ``--dir /dev/shm`` runs about twice as fast, and a SIGKILL test loses
nothing by it (a killed process's writes stay in the page cache either way).

Examples
--------
    python benchmarks/bench_reliability.py --quick
    python benchmarks/bench_reliability.py --kills 2000 --fuzz 3000 --dir /dev/shm
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import multiprocessing as mp
import os
import random
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import _reliability_child as child
import numpy as np
import polars as pl
from _common import log, render

import workbench as wb

try:  # internals, only for the "files left behind" check
    from workbench.store.manifest import list_generations, manifest_path, read_manifest
except ImportError:  # pragma: no cover - the store is being rewritten
    list_generations = None  # type: ignore[assignment]

SOAK_KINDS = child.KINDS
FUZZ_KINDS = ("manifest", "index", "vectors", "meta", "tombstones")
DAMAGES = ("flip", "truncate", "zero")
READERS = 2
WRITER_TIMEOUT = 30.0  # seconds a writer may take to report the next message
CASE_TIMEOUT = 30.0  # seconds a fuzz case may take before the worker counts as hung
START_GOAL = 0.3  # seconds from Process.start() to the writer's first message
MESSAGES_KEPT = 5


# ---------------------------------------------------------------------------- results
@dataclass
class Soak:
    """Counts of the SIGKILL soak."""

    kills: int = 0
    inside: Counter[str] = field(default_factory=Counter)  # kind in flight at the kill
    between: int = 0  # killed after a done, before the next begin
    landed: int = 0  # the in-flight commit was found committed
    corrupt: int = 0
    torn: int = 0
    rows_lost: int = 0
    writer_failures: int = 0
    left_behind: int = 0
    left_behind_checked: bool = False
    steps: int = 0
    epochs: int = 1
    start_s: list[float] = field(default_factory=list)  # start() -> first message
    ready_s: list[float] = field(default_factory=list)  # start() -> store open, step derived
    check_s: list[float] = field(default_factory=list)  # harness's verifying open
    durations: dict[str, list[float]] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)
    wall: float = 0.0
    reader_totals: list[int] = field(default_factory=lambda: [0] * child.R_FIELDS)
    reader_sigs: Counter[str] = field(default_factory=Counter)
    reader_first: list[str] = field(default_factory=list)
    reader_crashes: int = 0

    def note(self, kind: str, text: str) -> None:
        kept = self.notes.setdefault(kind, [])
        if len(kept) < MESSAGES_KEPT:
            kept.append(text.strip()[:800])

    def delay(self, kind: str) -> float:
        """Upper bound of the random kill delay after a ``begin`` of `kind`."""
        recent = self.durations.get(kind, [])[-50:]
        return 1.3 * statistics.median(recent) if len(recent) >= 3 else 0.05


@dataclass
class Fuzz:
    """Counts of one fuzz set."""

    verify: bool
    cases: int = 0
    outcome: Counter[str] = field(default_factory=Counter)
    bad_by_kind: Counter[str] = field(default_factory=Counter)
    signals: Counter[str] = field(default_factory=Counter)
    notes: dict[str, list[str]] = field(default_factory=dict)
    wall: float = 0.0

    def note(self, kind: str, text: str) -> None:
        kept = self.notes.setdefault(kind, [])
        if len(kept) < MESSAGES_KEPT:
            kept.append(text.strip()[:500])


# ---------------------------------------------------------------------------- processes
def forkserver() -> ForkServerContext:
    """A forkserver context whose server has imported workbench and the child module."""
    # Python 3.11's forkserver gets neither the script's folder on sys.path nor its main path
    # (it looks them up under the wrong keys), so preloading "__main__" does nothing and our
    # modules fail to preload silently. PYTHONPATH makes them importable there.
    here = str(Path(__file__).resolve().parent)
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if here not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([here, *paths])
    main = sys.modules["__main__"]
    if getattr(main, "__spec__", None) is None and Path(main.__file__ or "") == Path(__file__):
        # Every child re-runs the main script; named as a module it runs from cached bytecode
        # instead of compiling this file again (~30 ms a child here).
        main.__spec__ = importlib.util.spec_from_file_location("bench_reliability", __file__)
    ctx = mp.get_context("forkserver")
    assert isinstance(ctx, ForkServerContext)
    ctx.set_forkserver_preload(["numpy", "polars", "usearch.index", "workbench", "_common",
                                "_reliability_child"])
    t0 = time.perf_counter()
    warm = ctx.Process(target=time.sleep, args=(0,))  # pay the server's imports now, not in
    warm.start()  # the first writer's start
    warm.join()
    log(f"forkserver up in {time.perf_counter() - t0:.2f} s")
    return ctx


def exit_text(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
        return f"killed by signal {-code}"
    return f"exit status {code}"


def kill(proc: BaseProcess) -> None:
    if proc.exitcode is None and proc.pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
    proc.join(10)


@dataclass
class WriterRun:
    proc: BaseProcess
    conn: Connection
    started: float
    model: child.Model
    soak: Soak
    inflight: int | None = None
    begun_at: float = 0.0
    failure: str | None = None
    detached: bool = False  # the writer disagrees with the model: stop applying its steps

    def handle(self, msg: str, *, timed: bool) -> tuple[str, int, str]:
        """Apply one message of the writer; returns (verb, step, kind)."""
        verb, _, rest = msg.partition(" ")
        if verb == "error":
            self.failure = rest
            return verb, -1, ""
        if verb in ("hello", "ready"):
            return verb, int(rest or -1), ""
        parts = rest.split()
        step = int(parts[0])
        kind = child.kind_of(step)
        if verb == "begin":
            self.inflight, self.begun_at = step, time.perf_counter()
        elif verb == "done" and not self.detached:
            if step != self.inflight:
                raise RuntimeError(f"writer: done {step} without its begin ({self.inflight})")
            self.model.apply(step)
            self.soak.steps += 1
            if timed:
                self.soak.durations.setdefault(kind, []).append(
                    time.perf_counter() - self.begun_at)
            self.inflight = None
        return verb, step, kind

    def next(self, timeout: float = WRITER_TIMEOUT) -> tuple[str, int, str] | None:
        """The next message, or None when the writer ended or stayed silent."""
        try:
            if not self.conn.poll(timeout):
                self.failure = self.failure or f"writer silent for {timeout:.0f} s"
                return None
            return self.handle(self.conn.recv_bytes().decode(), timed=True)
        except (EOFError, OSError):
            self.proc.join(10)
            how = exit_text(self.proc.exitcode)
            self.failure = self.failure or f"writer ended by itself ({how})"
            return None

    def finish(self) -> None:
        """SIGKILL the writer (if alive) and apply what it reported before dying."""
        kill(self.proc)
        with contextlib.suppress(EOFError, OSError):
            while self.conn.poll(0):
                self.handle(self.conn.recv_bytes().decode(), timed=False)
        self.conn.close()


def start_writer(ctx: ForkServerContext, path: Path, model: child.Model, soak: Soak) -> WriterRun:
    r, w = ctx.Pipe(duplex=False)
    t0 = time.perf_counter()
    proc = ctx.Process(target=child.writer_main, args=(str(path), w), daemon=True)
    proc.start()
    w.close()
    return WriterRun(proc, r, t0, model, soak)


@dataclass
class Readers:
    ctx: ForkServerContext
    root: Path
    seed: int
    n: int
    epoch: Any = None
    ready: Any = None
    stop: Any = None
    counters: Any = None
    queue: Any = None
    procs: list[BaseProcess] = field(default_factory=list)
    crashes: list[str] = field(default_factory=list)
    sigs: Counter[str] = field(default_factory=Counter)
    first: list[str] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.epoch = self.ctx.Value("i", 0)
        self.ready = self.ctx.Value("i", -1)
        self.stop = self.ctx.Event()
        self.counters = self.ctx.Array("q", self.n * child.R_FIELDS)
        self.queue = self.ctx.Queue()
        self.procs = [self._start(i) for i in range(self.n)]

    def _start(self, i: int) -> BaseProcess:
        p = self.ctx.Process(
            target=child.reader_main, daemon=True,
            args=(i, str(self.root), self.epoch, self.ready, self.stop, self.counters,
                  self.queue, self.seed * 100 + i + 7 * len(self.crashes)),
        )
        p.start()
        return p

    def poll(self) -> None:
        """Collect reader messages; restart a reader that died by itself."""
        self.drain()
        for i, p in enumerate(self.procs):
            if p.exitcode is not None and not self.stop.is_set():
                self.crashes.append(f"reader {i}: {exit_text(p.exitcode)}")
                self.procs[i] = self._start(i)

    def drain(self) -> None:
        while True:
            try:
                item = self.queue.get_nowait()
            except Exception:  # queue.Empty
                return
            if item[0] == "msg":  # keep the first full message of each kind of error
                _, kind, sig, text = item
                if f"{kind}|{sig}" not in self.seen and len(self.first) < 2 * MESSAGES_KEPT:
                    self.seen.add(f"{kind}|{sig}")
                    self.first.append(f"{kind}: {text}")
            elif item[0] == "sigs":
                self.sigs.update(item[2])

    def close(self) -> None:
        self.stop.set()
        deadline = time.monotonic() + 60
        while any(p.exitcode is None for p in self.procs) and time.monotonic() < deadline:
            self.drain()
            time.sleep(0.05)
        for p in self.procs:
            if p.exitcode is None:
                self.crashes.append(f"reader {p.name}: did not stop within 60 s")
            kill(p)
        time.sleep(0.1)
        self.drain()


# ---------------------------------------------------------------------------- soak
def left_behind(path: Path) -> list[str] | None:
    """Files no kept manifest names, plus temporary files (None when it cannot tell)."""
    if list_generations is None:
        return None
    try:
        referenced: set[str] = set()
        for g in list_generations(path):
            referenced |= read_manifest(manifest_path(path, g)).referenced()
        stray = [n for n in os.listdir(path / "segments") if n not in referenced]
        return stray + [n for n in os.listdir(path) if n.endswith(".tmp")]
    except Exception:
        return None


def verify_after(path: Path, run: WriterRun, rng: random.Random) -> child.Model | None:
    """Open `path` as a writer; the model it matches, or None (counted) when it matches none."""
    soak, model, inflight = run.soak, run.model, run.inflight
    t0 = time.perf_counter()
    try:
        with wb.Store.open(path) as store:
            rows = child.content(store)
            sample = rng.sample(sorted(rows), min(8, len(rows)))
            vecs = store.vectors(sample) if sample else np.zeros((0, child.DIM), np.float32)
    except Exception as exc:
        soak.corrupt += 1
        soak.note("corrupt store", f"after step {model.step} (in flight {inflight}): "
                  f"{type(exc).__name__}: {exc}")
        return None
    soak.check_s.append(time.perf_counter() - t0)
    stray = left_behind(path)
    if stray is not None:
        soak.left_behind_checked = True
        if stray:
            soak.left_behind += len(stray)
            soak.note("files left behind", f"after step {model.step}: {sorted(stray)[:5]}")
    candidates = [model]
    if inflight is not None:
        candidates.append(model.copy().apply(inflight))
    for i, m in enumerate(candidates):
        if rows == m.rows and np.array_equal(vecs, m.vectors(sample)):
            if i == 1 and m.rows != model.rows:
                soak.landed += 1
            return m
    soak.torn += 1
    gone = set(child.plan_of(inflight).deletes) if inflight is not None else set()
    lost = sorted(i for i in model.rows if i not in rows and i not in gone)
    soak.rows_lost += len(lost)
    expect = candidates[-1].rows
    touched = [i for i in set(model.rows) | set(expect) if model.rows.get(i) != expect.get(i)]
    applied = sum(rows.get(i) == expect.get(i) for i in touched)
    neither = sorted(i for i in set(rows) | set(model.rows) | set(expect)
                     if rows.get(i) != model.rows.get(i) and rows.get(i) != expect.get(i))
    same_vecs = any(np.array_equal(vecs, m.vectors(sample)) for m in candidates
                    if all(i in m.rows for i in sample))
    where = (f"done {model.step}, in flight {inflight} ({child.kind_of(inflight)})"
             if inflight is not None else f"done {model.step}, nothing in flight")
    soak.note("torn commit", f"{where}: {len(lost)} committed ids missing {lost[:4]}; "
              f"{applied} of the {len(touched)} rows the in-flight step changes show its change; "
              f"{len(neither)} rows match neither model {neither[:4]}; sampled vectors "
              f"{'match a model' if same_vecs else 'match neither model'}")
    return None


def soak_run(args: argparse.Namespace, ctx: ForkServerContext, root: Path) -> Soak:
    soak = Soak()
    rng = random.Random(args.seed)
    readers = Readers(ctx, root, args.seed, args.readers)
    epoch = 0
    path = root / "store-0"
    model = child.Model()
    failures_in_a_row = 0
    t0 = time.perf_counter()

    def new_epoch() -> None:
        nonlocal epoch, path, model
        epoch += 1
        soak.epochs += 1
        path = root / f"store-{epoch}"
        model = child.Model()
        readers.epoch.value = epoch

    try:
        while soak.kills < args.kills:
            readers.poll()
            run = start_writer(ctx, path, model, soak)
            first = run.next()
            if first is not None:
                soak.start_s.append(time.perf_counter() - run.started)
                first = run.next()
            if first is not None and first[0] == "ready":
                soak.ready_s.append(time.perf_counter() - run.started)
                nxt = first[1]
                # Compactions change no content: the writer may redo one the model counts as
                # done, or skip one that committed before its "done" was reported.
                between = range(min(nxt, model.step + 1), max(nxt, model.step + 1))
                if all(child.kind_of(t) == "compact" for t in between):
                    model.step = nxt - 1
                else:
                    run.failure = (f"writer resumed at step {nxt}; the store matched the model "
                                   f"of step {model.step}")
                    run.detached = True
                readers.ready.value = epoch
            elif run.failure is None:
                run.failure = f"writer's first messages were {first}"
            killed = False
            if run.failure is None:
                # Kill inside one of the next three steps: which kind that is varies with
                # the step the writer resumed at, so every kind is hit; 0-2 commits land first.
                target = first[1] + rng.randint(0, 2)
                while (msg := run.next()) is not None:
                    verb, step, kind = msg
                    if verb == "begin" and step == target:
                        time.sleep(rng.uniform(0, soak.delay(kind)))
                        killed = True
                        break
            run.finish()
            if killed and run.failure is None:
                soak.kills += 1
                if run.inflight is None:
                    soak.between += 1
                else:
                    soak.inside[child.kind_of(run.inflight)] += 1
                failures_in_a_row = 0
            else:
                soak.writer_failures += 1
                failures_in_a_row += 1
                soak.note("writer failure", run.failure or "writer stopped")
            if run.detached:
                matched = None  # the store's steps no longer follow the model: start afresh
            else:
                matched = verify_after(path, run, rng) if path.exists() else run.model
            if matched is None or failures_in_a_row >= 3:
                if failures_in_a_row >= 20:
                    soak.note("writer failure", "20 writer failures in a row: soak stopped")
                    break
                new_epoch()
            else:
                model = matched
            if soak.kills and soak.kills % 100 == 0 and killed:
                rate = soak.kills / (time.perf_counter() - t0)
                errs = sum(readers.counters[i * child.R_FIELDS + child.R_ERRORS]
                           for i in range(args.readers))
                log(f"soak: {soak.kills}/{args.kills} kills, {rate:.1f} kills/s, "
                    f"{soak.corrupt} corrupt, {soak.torn} torn, {errs} reader errors")
    finally:
        readers.close()
    soak.wall = time.perf_counter() - t0
    for i in range(args.readers):
        for f in range(child.R_FIELDS):
            soak.reader_totals[f] += readers.counters[i * child.R_FIELDS + f]
    soak.reader_sigs = readers.sigs
    soak.reader_first = readers.first
    soak.reader_crashes = len(readers.crashes)
    for c in readers.crashes:
        soak.note("reader crash", c)
    return soak


# ---------------------------------------------------------------------------- fuzzing
@dataclass
class Base:
    path: Path
    files: dict[str, list[Path]]
    queries: np.ndarray
    ids: list[str]
    reference: dict[str, Any]


def build_base(path: Path, seed: int) -> Base:
    """A store with three segments (two HNSW-searched, one exact), tombstones and an update."""
    rng = np.random.default_rng(seed)
    store = wb.Store.create(path, dim=child.DIM, dtype="f16", exact_threshold=child.EXACT_THRESHOLD)
    with store:
        for b, n in enumerate((100, 100, 30)):
            ids = [f"f{b}-{j}" for j in range(n)]
            df = pl.DataFrame({"id": ids, "n": list(range(n)), "tag": ["new"] * n})
            store.add(df, vectors=rng.standard_normal((n, child.DIM)).astype(np.float32),
                      progress=False)
        store.delete([f"f0-{j}" for j in range(5)] + [f"f1-{j}" for j in range(5)])
        upd = [f"f0-{j}" for j in range(10, 30)] + [f"f2-{j}" for j in range(10)]
        store.update({"id": upd, "tag": ["updated"] * len(upd)})
    files = {
        "manifest": sorted(path.glob("manifest-*.json")),
        "index": sorted(path.glob("segments/*.index.usearch")),
        "vectors": sorted(path.glob("segments/*.vectors.npy")),
        "meta": sorted(path.glob("segments/*.meta*.parquet")),
        "tombstones": sorted(path.glob("segments/*.tomb-*.npy")),
    }
    missing = [k for k, v in files.items() if not v]
    if missing:
        raise RuntimeError(f"fuzz base store lacks files of kind {missing}: {os.listdir(path)}")
    queries = rng.standard_normal((4, child.DIM)).astype(np.float32)
    ids = ["f0-10", "f0-99", "f1-50", "f2-3", "f2-29"]
    with wb.Store.open(path, readonly=True) as ro:
        reference = child.answers(ro, queries, ids)
    return Base(path, files, queries, ids, reference)


def damage(path: Path, how: str, rng: random.Random) -> str:
    """Damage `path` in place (the bytes always change); a description of what was done."""
    data = path.read_bytes()
    n = len(data)
    for _ in range(50):
        new = bytearray(data)
        if how == "flip":
            pos = sorted(rng.sample(range(n), min(rng.randint(1, 8), n)))
            for p in pos:
                new[p] ^= rng.randint(1, 255)
            what = f"flip {len(pos)} byte(s) at {pos[:3]}{'...' if len(pos) > 3 else ''}"
        elif how == "truncate":
            length = rng.randrange(n)
            new = new[:length]
            what = f"truncate {n} -> {length} bytes"
        else:
            start = rng.randrange(n)
            length = max(1, int(2 ** rng.uniform(0, np.log2(n - start + 1))))
            length = min(length, n - start)
            new[start:start + length] = bytes(length)
            what = f"zero {length} byte(s) at {start}"
        if bytes(new) != data:
            path.write_bytes(bytes(new))
            return what
    raise RuntimeError(f"could not change {path} by {how}")


@dataclass
class Worker:
    ctx: ForkServerContext
    proc: BaseProcess | None = None
    conn: Connection | None = None

    def ensure(self) -> Connection:
        if self.proc is None or self.proc.exitcode is not None or self.conn is None:
            parent, kid = self.ctx.Pipe()
            self.proc = self.ctx.Process(target=child.fuzz_worker_main, args=(kid,), daemon=True)
            self.proc.start()
            kid.close()
            self.conn = parent
            if not parent.poll(60):
                raise RuntimeError("fuzz worker did not start")
            parent.recv()
        return self.conn

    def run(self, case: tuple[Any, ...]) -> tuple[Any, ...]:
        """The worker's reply, or ("crash", how) / ("hang", ...) after restarting it next time."""
        conn = self.ensure()
        assert self.proc is not None
        conn.send(case)
        try:
            if conn.poll(CASE_TIMEOUT):
                return conn.recv()
            kill(self.proc)
            return ("hang", f"no answer within {CASE_TIMEOUT:.0f} s")
        except (EOFError, OSError):
            self.proc.join(10)
            return ("crash", exit_text(self.proc.exitcode))
        finally:
            if self.proc.exitcode is not None or not self.proc.is_alive():
                conn.close()
                self.conn = None

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(OSError):
                self.conn.send(None)
            self.conn.close()
        if self.proc is not None:
            self.proc.join(5)
            kill(self.proc)


def fuzz_run(base: Base, worker: Worker, root: Path, *, n: int, verify: bool, seed: int) -> Fuzz:
    res = Fuzz(verify=verify)
    rng = random.Random(seed)
    t0 = time.perf_counter()
    for i in range(n):
        kind = FUZZ_KINDS[i % len(FUZZ_KINDS)]
        src = rng.choice(base.files[kind])
        how = rng.choice(DAMAGES)
        case = root / f"case-{i}"
        shutil.copytree(base.path, case)
        rel = src.relative_to(base.path)
        what = f"{kind} {rel.name}: {damage(case / rel, how, rng)}"
        reply = worker.run((str(case), verify, base.queries, base.ids))
        status = reply[0]
        if status == "ok":
            diff = child.differences(base.reference, reply[1])
            status = "correct" if diff is None else "wrong"
            if diff is not None:
                res.note("wrong", f"{what}: {diff}")
        elif status == "corrupt":
            status = "clean"
        elif status == "other":
            res.note("other", f"{what}: {reply[1]}: {reply[2]}")
        else:  # crash or hang
            res.signals[reply[1]] += 1
            res.note(status, f"{what}: {reply[1]}")
        res.outcome[status] += 1
        if status in ("wrong", "other", "crash", "hang"):
            res.bad_by_kind[f"{status} {kind}"] += 1
        res.cases += 1
        shutil.rmtree(case, ignore_errors=True)
        if (i + 1) % 250 == 0:
            log(f"fuzz verify={verify}: {i + 1}/{n} cases, {dict(res.outcome)}")
    res.wall = time.perf_counter() - t0
    return res


# ---------------------------------------------------------------------------- report
def ms(xs: list[float], q: float = 0.5) -> str:
    if not xs:
        return "-"
    return f"{float(np.quantile(xs, q)) * 1000:.0f} ms"


def fuzz_cells(f: Fuzz) -> str:
    o = f.outcome
    return (f"{o['clean']} clean error / {o['correct']} correct / {o['wrong']} wrong / "
            f"{o['other']} other exc / {o['crash'] + o['hang']} crash")


def report(args: argparse.Namespace, soak: Soak, fz: Fuzz, fz_nv: Fuzz | None,
           wall: float) -> tuple[str, list[tuple[bool, str]]]:
    r = soak.reader_totals
    reader_err = r[child.R_ERRORS]
    inside = " / ".join(f"{soak.inside[k]}" for k in SOAK_KINDS)
    crash_fz = fz.outcome["crash"] + fz.outcome["hang"]
    min_inside = max(1, args.kills // 50)
    rows: list[tuple[str, str, str, str]] = [
        ("A soak", "kills", f"{soak.kills}", f">= {args.kills}"),
        ("", f"  in flight: {'/'.join(SOAK_KINDS)}", inside, f">= {min_inside} each"),
        ("", "  between ops / in-flight commit had landed", f"{soak.between} / {soak.landed}",
         ""),
        ("", "kills/s", f"{soak.kills / max(soak.wall, 1e-9):.2f}", ""),
        ("", "writer start: first message / store open (median, p95)",
         f"{ms(soak.start_s)}, {ms(soak.start_s, 0.95)} / {ms(soak.ready_s)}, "
         f"{ms(soak.ready_s, 0.95)}", f"< {START_GOAL * 1000:.0f} ms"),
        ("", "recovery open + content check by the harness (median)", ms(soak.check_s), ""),
        ("", "steps committed / stores (epochs)", f"{soak.steps} / {soak.epochs}", ""),
        ("", "corrupt stores", f"{soak.corrupt}", "0"),
        ("", "committed rows lost", f"{soak.rows_lost}", "0"),
        ("", "torn commits", f"{soak.torn}", "0"),
        ("", "writer failures (not killed by us)", f"{soak.writer_failures}", "0"),
        ("", "files left behind after recovery open",
         f"{soak.left_behind}" if soak.left_behind_checked else "n/a", "0"),
        ("", "reader snapshots / checks", f"{r[child.R_SNAPSHOTS]} / {r[child.R_CHECKS]}", ""),
        ("", "reader errors during commits", f"{reader_err}", "0"),
        ("", "reader wrong answers", f"{r[child.R_WRONG]}", "0"),
        ("", "reader process crashes", f"{soak.reader_crashes}", "0"),
        ("", "soak wall time", f"{soak.wall:.1f} s", ""),
    ] if args.kills else []
    rows += [
        ("B fuzz", "cases (verify=True)", f"{fz.cases}", f">= {args.fuzz}"),
        ("", "  outcome", fuzz_cells(fz), ""),
        ("", "wrong answers without error", f"{fz.outcome['wrong']}", "0"),
        ("", "other exception types", f"{fz.outcome['other']}", "0"),
        ("", "process crashes on corrupted input", f"{crash_fz}", "0"),
        ("", "fuzz wall time", f"{fz.wall:.1f} s", ""),
    ] if args.fuzz else []
    if fz_nv is not None:
        rows += [
            ("B info", f"cases (verify=False): {fz_nv.cases}", fuzz_cells(fz_nv), "info"),
            ("", "  crashes by signal (verify=False)",
             ", ".join(f"{k}: {v}" for k, v in fz_nv.signals.items()) or "-", "info"),
        ]
    rows.append(("total", "wall time", f"{wall:.1f} s", ""))
    groups, part = [], ""
    for row in rows:
        part = row[0] or part
        groups.append(part)
    table = render(("part", "measurement", "value", "goal"), rows, set(), groups)
    soak_goals = [
        (soak.kills >= args.kills, f"kills: {soak.kills} (goal >= {args.kills})"),
        (min(soak.inside[k] for k in SOAK_KINDS) >= min_inside,
         f"kills in flight of every kind: min {min(soak.inside[k] for k in SOAK_KINDS)} "
         f"(goal >= {min_inside})"),
        (bool(soak.start_s) and statistics.median(soak.start_s) < START_GOAL,
         f"writer start median: {ms(soak.start_s)} (goal < {START_GOAL * 1000:.0f} ms)"),
        (soak.corrupt == 0, f"corrupt stores: {soak.corrupt} (goal 0)"),
        (soak.rows_lost == 0, f"committed rows lost: {soak.rows_lost} (goal 0)"),
        (soak.torn == 0, f"torn commits: {soak.torn} (goal 0)"),
        (soak.writer_failures == 0, f"writer failures: {soak.writer_failures} (goal 0)"),
        (soak.left_behind == 0, f"files left behind after recovery: {soak.left_behind} (goal 0)"),
        (reader_err == 0, f"reader errors during commits: {reader_err} (goal 0)"),
        (r[child.R_WRONG] == 0, f"reader wrong answers: {r[child.R_WRONG]} (goal 0)"),
        (soak.reader_crashes == 0, f"reader process crashes: {soak.reader_crashes} (goal 0)"),
    ]
    fuzz_goals = [
        (fz.cases >= args.fuzz, f"fuzz cases: {fz.cases} (goal >= {args.fuzz})"),
        (fz.outcome["wrong"] == 0,
         f"fuzz wrong answers without error: {fz.outcome['wrong']} (goal 0)"),
        (fz.outcome["other"] == 0, f"fuzz other exception types: {fz.outcome['other']} (goal 0)"),
        (crash_fz == 0, f"process crashes on corrupted input: {crash_fz} (goal 0)"),
    ]
    return table, (soak_goals if args.kills else []) + (fuzz_goals if args.fuzz else [])


def details(soak: Soak, fz: Fuzz, fz_nv: Fuzz | None) -> Iterator[str]:
    if soak.reader_sigs:
        yield "reader errors by kind (masked message: count):"
        for sig, n in soak.reader_sigs.most_common(8):
            yield f"  {n:6d}  {sig}"
    if soak.reader_first:
        yield "first reader error of each kind:"
        yield from (f"  {m}" for m in soak.reader_first)
    for kind, msgs in soak.notes.items():
        yield f"{kind}:"
        yield from (f"  {m}" for m in msgs)
    if soak.durations:
        yield "writer op duration, median (ms): " + ", ".join(
            f"{k} {statistics.median(v) * 1000:.1f}" for k, v in sorted(soak.durations.items()))
    for f in (fz, fz_nv):
        if f is None:
            continue
        if f.bad_by_kind:
            yield f"fuzz verify={f.verify} bad outcomes by file kind: " + ", ".join(
                f"{k}: {v}" for k, v in sorted(f.bad_by_kind.items()))
        for kind, msgs in f.notes.items():
            yield f"fuzz verify={f.verify} {kind}:"
            yield from (f"  {m}" for m in msgs)


# ---------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--kills", type=int, default=None, help="SIGKILLs (default 1000)")
    p.add_argument("--fuzz", type=int, default=None, help="fuzz cases, verify=True (1000)")
    p.add_argument("--fuzz-noverify", type=int, default=None,
                   help="extra fuzz cases with verify=False, information only (200)")
    p.add_argument("--readers", type=int, default=READERS, help="snapshot reader processes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dir", type=Path, default=None, help="folder for the temporary stores")
    p.add_argument("--quick", action="store_true", help="100 kills, 100 + 40 fuzz cases")
    args = p.parse_args(argv)
    quick = args.quick
    if args.kills is None:
        args.kills = 100 if quick else 1000
    if args.fuzz is None:
        args.fuzz = 100 if quick else 1000
    if args.fuzz_noverify is None:
        args.fuzz_noverify = 40 if quick else 200
    for name in ("kills", "fuzz", "fuzz_noverify", "readers"):
        if getattr(args, name) < 0:
            p.error(f"--{name.replace('_', '-')}: expected >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t0 = time.perf_counter()
    ctx = forkserver()
    tmp = Path(tempfile.mkdtemp(prefix="wb-reliability-", dir=args.dir))
    worker = Worker(ctx)
    try:
        soak = Soak()
        if args.kills:
            log(f"soak: {args.kills} kills, {args.readers} readers, stores under {tmp}")
            (tmp / "soak").mkdir()
            soak = soak_run(args, ctx, tmp / "soak")
            shutil.rmtree(tmp / "soak", ignore_errors=True)
        log(f"fuzz: {args.fuzz} cases (verify=True), {args.fuzz_noverify} (verify=False)")
        fz, fz_nv = Fuzz(verify=True), None
        try:
            base = build_base(tmp / "fuzz-base", args.seed)
        except Exception as exc:  # the store under test may be broken: report, don't crash
            fz.note("base store failed", f"{type(exc).__name__}: {exc}")
        else:
            (tmp / "fuzz").mkdir()
            fz = fuzz_run(base, worker, tmp / "fuzz", n=args.fuzz, verify=True, seed=args.seed)
            if args.fuzz_noverify:
                fz_nv = fuzz_run(base, worker, tmp / "fuzz", n=args.fuzz_noverify,
                                 verify=False, seed=args.seed + 1)
    finally:
        worker.close()
        shutil.rmtree(tmp, ignore_errors=True)
    table, goals = report(args, soak, fz, fz_nv, time.perf_counter() - t0)
    print(table)
    print()
    for ok, text in goals:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    print()
    for line in details(soak, fz, fz_nv):
        print(line)
    sys.stdout.flush()
    return 0 if all(ok for ok, _ in goals) else 1


if __name__ == "__main__":
    sys.exit(main())
