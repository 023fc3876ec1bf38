"""Processes of bench_reliability.py: the killed writer, the snapshot readers, the fuzz worker.

They run in children forked from a forkserver that has already imported workbench, so a
child starts in milliseconds instead of the ~1 s a fresh interpreter needs. Everything they
share with the harness (the operation schedule, the deterministic vectors, the expected-content
model, the fuzz answers) lives here too, so the harness and its children agree by construction.

The schedule
------------
Step ``s`` belongs to cycle ``c = s // 8`` and runs the operation ``PHASES[s % 8]``:

=====  =======  =================================================================
phase  kind     what it does (R = 32 rows per batch)
=====  =======  =================================================================
0      add      add ``a{c}-0..31``
1      upsert   replace ``a{c}-0..7`` and insert ``u{c}-0..7``
2      delete   delete ``a{c}-8..11``
3      update   metadata only: set step/tag of ``a{c}-12..23``
4      txn      one transaction: add ``b{c}-0..15``, upsert ``a{c}-24..27``,
                delete ``a{c}-28..29``, update ``u{c}-0..3``
5      compact  merge every segment, purge deleted rows
6      delete   delete every live row of cycle ``c - 3`` (cycles 0-2: ``a{c}-30``)
7      upsert   replace ``a{c-1}-0..3`` (cycle 0: ``a0-0..3``)
=====  =======  =================================================================

Every plan is a pure function of the step, so the expected content after steps ``0..s`` is a
pure function of ``s`` (:class:`Model`). Each row carries ``step`` (the last step that wrote
the row or its metadata), ``vstep`` (the step that wrote its vector: the vector is
:func:`vector` of id and vstep) and ``tag``. A restarted writer derives where to resume from the
store's content alone (:func:`resume_step`): the largest ``step`` names the last step that
stamped rows; the deletes after it are applied when their ids are gone; a compaction leaves no
trace in the content, so it counts as applied when the store has the shape it leaves (one
segment, nothing deleted; before a compaction the schedule always leaves several), and is
redone otherwise (which would leave the content as it was).
"""

from __future__ import annotations

import os
import random
import re
import time
import traceback
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

import workbench as wb
from workbench.errors import CorruptStoreError, NotAStoreError

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.queues import Queue
    from multiprocessing.sharedctypes import Synchronized, SynchronizedArray
    from multiprocessing.synchronize import Event

DIM = 16
ROWS = 32
EXACT_THRESHOLD = 64
PHASES = ("add", "upsert", "delete", "update", "txn", "compact", "delete", "upsert")
KINDS = ("add", "upsert", "delete", "update", "txn", "compact")
#: Cycles a row of cycle c lives for: phase 6 of cycle c + KEEP_CYCLES deletes it.
KEEP_CYCLES = 3
TAG = {"add": "n", "upsert": "u", "update": "m"}

Row = tuple[int, int, str]  # (vstep, step, tag)


# ---------------------------------------------------------------------------- schedule
def kind_of(step: int) -> str:
    return PHASES[step % len(PHASES)]


@dataclass(frozen=True)
class Plan:
    """What one step does: ids to add, upsert, delete and update (disjoint)."""

    kind: str
    adds: tuple[str, ...] = ()
    upserts: tuple[str, ...] = ()
    deletes: tuple[str, ...] = ()
    updates: tuple[str, ...] = ()


def _ids(prefix: str, js: range | list[int]) -> tuple[str, ...]:
    return tuple(f"{prefix}-{j}" for j in js)


def survivors(cycle: int) -> tuple[str, ...]:
    """Ids of `cycle` still live once the cycle is over (until cycle + KEEP_CYCLES deletes them)."""
    gone = set(range(8, 12)) | {28, 29} | ({30} if cycle < KEEP_CYCLES else set())
    a = _ids(f"a{cycle}", [j for j in range(ROWS) if j not in gone])
    return a + _ids(f"u{cycle}", range(8)) + _ids(f"b{cycle}", range(16))


def plan_of(step: int) -> Plan:
    c, phase = divmod(step, len(PHASES))
    a = f"a{c}"
    if phase == 0:
        return Plan("add", adds=_ids(a, range(ROWS)))
    if phase == 1:
        return Plan("upsert", upserts=_ids(a, range(8)) + _ids(f"u{c}", range(8)))
    if phase == 2:
        return Plan("delete", deletes=_ids(a, range(8, 12)))
    if phase == 3:
        return Plan("update", updates=_ids(a, range(12, 24)))
    if phase == 4:
        return Plan("txn", adds=_ids(f"b{c}", range(16)), upserts=_ids(a, range(24, 28)),
                    deletes=_ids(a, range(28, 30)), updates=_ids(f"u{c}", range(4)))
    if phase == 5:
        return Plan("compact")
    if phase == 6:
        old = c - KEEP_CYCLES
        return Plan("delete", deletes=survivors(old) if old >= 0 else _ids(a, [30]))
    return Plan("upsert", upserts=_ids(f"a{max(c - 1, 0)}", range(4)))


def vector(id_: str, vstep: int) -> NDArray[np.float32]:
    """The vector that step `vstep` writes for `id_` (never zero)."""
    rng = np.random.default_rng([vstep, zlib.crc32(id_.encode())])
    return rng.standard_normal(DIM).astype(np.float32)


def vectors_of(ids: tuple[str, ...] | list[str], vsteps: list[int]) -> NDArray[np.float32]:
    if not ids:
        return np.zeros((0, DIM), np.float32)
    return np.stack([vector(i, v) for i, v in zip(ids, vsteps, strict=True)])


def _frame(ids: tuple[str, ...], step: int, tag: str) -> pl.DataFrame:
    n = len(ids)
    return pl.DataFrame(
        {"id": list(ids), "step": [step] * n, "vstep": [step] * n, "tag": [f"{tag}{step}"] * n},
        schema={"id": pl.Utf8, "step": pl.Int64, "vstep": pl.Int64, "tag": pl.Utf8},
    )


def run_step(store: wb.Store, step: int) -> None:
    """Apply `step` to a writer handle."""
    p = plan_of(step)

    def body() -> None:
        if p.adds:
            store.add(_frame(p.adds, step, TAG["add"]),
                      vectors=vectors_of(p.adds, [step] * len(p.adds)), progress=False)
        if p.upserts:
            store.upsert(_frame(p.upserts, step, TAG["upsert"]),
                         vectors=vectors_of(p.upserts, [step] * len(p.upserts)), progress=False)
        if p.deletes:
            store.delete(list(p.deletes))
        if p.updates:
            n = len(p.updates)
            store.update({"id": list(p.updates), "step": [step] * n,
                          "tag": [f"{TAG['update']}{step}"] * n})

    if p.kind == "compact":
        store.compact(progress=False)
    elif p.kind == "txn":
        with store.transaction():
            body()
    else:
        body()


# ---------------------------------------------------------------------------- model
@dataclass
class Model:
    """Expected content after steps 0..step: id -> (vstep, step, tag)."""

    step: int = -1
    rows: dict[str, Row] = field(default_factory=dict)

    def copy(self) -> Model:
        return Model(self.step, dict(self.rows))

    def apply(self, step: int) -> Model:
        """Advance by `step` (which must be the next one) in place; returns self."""
        if step != self.step + 1:
            raise ValueError(f"model: expected step {self.step + 1}, got {step}")
        p = plan_of(step)
        for i in p.deletes:
            del self.rows[i]
        for i in p.adds:
            if i in self.rows:
                raise ValueError(f"model: step {step} adds {i!r}, which exists")
            self.rows[i] = (step, step, f"{TAG['add']}{step}")
        for i in p.upserts:
            self.rows[i] = (step, step, f"{TAG['upsert']}{step}")
        for i in p.updates:
            self.rows[i] = (self.rows[i][0], step, f"{TAG['update']}{step}")
        self.step = step
        return self

    def vectors(self, ids: list[str]) -> NDArray[np.float32]:
        return vectors_of(ids, [self.rows[i][0] for i in ids])


def content(store: wb.Store) -> dict[str, Row]:
    """A store's live rows as the model writes them (raises on a repeated id)."""
    df = store.scan().collect()
    if df.height == 0:
        return {}  # an empty store has no user columns yet
    df = df.select("id", "vstep", "step", "tag")
    out = {i: (int(v), int(s), str(t)) for i, v, s, t in df.iter_rows()}
    if len(out) != df.height:
        raise ValueError(f"scan: {df.height - len(out)} repeated ids")
    return out


def compacted(store: wb.Store) -> bool:
    """Whether the store has the shape a compaction leaves: one segment, nothing deleted."""
    segs = store.segments
    return segs.height == 1 and int(segs.get_column("deleted").sum()) == 0


def resume_step(rows: dict[str, Row], *, is_compacted: bool = False) -> int:
    """The next step to run, derived from the store's content alone (see the module docstring).

    `is_compacted` (see :func:`compacted`) tells a compaction that committed from one that did
    not; without it a compaction that had committed is run again (which changes no content).
    """
    last = max((s for _, s, _ in rows.values()), default=-1)
    nxt = t = last + 1
    while kind_of(t) in ("delete", "compact"):
        if kind_of(t) == "compact" and is_compacted:
            nxt = t + 1  # before a compaction the schedule always leaves several segments
        elif kind_of(t) == "delete":
            wanted = plan_of(t).deletes
            present = [i for i in wanted if i in rows]
            if len(present) == len(wanted):
                break  # not applied yet
            if present:
                raise ValueError(f"resume: step {t} deleted only some of its ids: {present[:3]}")
            nxt = t + 1
        t += 1
    return nxt


# ---------------------------------------------------------------------------- writer
def writer_main(path: str, conn: Connection) -> None:
    """Commit the schedule forever, reporting ``begin <step> <kind>`` and ``done <step>``.

    The messages go over a pipe (an unbuffered write per message, atomic below PIPE_BUF), so
    whatever the process reported before SIGKILL reaches the harness.
    """
    conn.send_bytes(b"hello")
    try:
        try:
            store = wb.Store.open(path)
        except NotAStoreError:
            store = wb.Store.create(path, dim=DIM, dtype="f16", exact_threshold=EXACT_THRESHOLD)
        step = resume_step(content(store), is_compacted=compacted(store))
        conn.send_bytes(f"ready {step}".encode())
        while True:
            conn.send_bytes(f"begin {step} {kind_of(step)}".encode())
            run_step(store, step)
            conn.send_bytes(f"done {step}".encode())
            step += 1
    except BaseException:
        conn.send_bytes(("error " + traceback.format_exc()).encode())
        os._exit(3)


# ---------------------------------------------------------------------------- readers
#: Per-reader counters in the shared array.
R_LOOPS, R_SNAPSHOTS, R_CHECKS, R_ERRORS, R_WRONG, R_FIELDS = range(6)
MAX_MESSAGES = 200


def signature(exc: BaseException | str) -> str:
    """A message with paths, ids and numbers masked, so alike errors count together."""
    text = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
    text = text.strip().splitlines()[0] if text.strip() else text
    text = re.sub(r"/\S*/(store-\d+|case-\d+)", "<store>", text)
    text = re.sub(r"seg-[0-9a-f]{16}", "seg-X", text)
    text = re.sub(r"\b[0-9a-f]{8}\b", "H", text)
    text = re.sub(r"\d+", "N", text)
    return text[:200]


class WrongAnswer(Exception):
    """A reader saw an answer inconsistent with its own snapshot."""


def check_snapshot(store: wb.Store, rng: np.random.Generator) -> None:
    """Search, scan and vectors of one snapshot must agree with each other and the schedule."""
    try:
        rows = content(store)
    except ValueError as exc:  # repeated ids
        raise WrongAnswer(str(exc)) from exc
    if len(store) != len(rows):
        raise WrongAnswer(f"len(store) is {len(store)}, scan has {len(rows)} rows")
    if not rows:
        return
    ids = list(rows)
    sample = [ids[i] for i in rng.choice(len(ids), size=min(4, len(ids)), replace=False)]
    got = store.vectors(sample)
    for i, v in zip(sample, got, strict=True):
        if not np.array_equal(v, vector(i, rows[i][0])):
            raise WrongAnswer(f"vectors([{i!r}]) differs from the vector step {rows[i][0]} wrote")
    allv = store.vectors(ids)
    allv = allv / np.linalg.norm(allv, axis=1, keepdims=True)
    q = rng.standard_normal((3, DIM)).astype(np.float32)
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    true_d = np.sort(1.0 - qn @ allv.T, axis=1)
    k = min(5, len(ids))
    idset = set(ids)
    for exact, tol in ((True, 1e-4), (False, 2e-2)):
        res = store.search(q, k=k, exact=exact)
        for qi, rid, dist in res.select("query", "id", "distance").iter_rows():
            if rid not in idset:
                raise WrongAnswer(f"search(exact={exact}) returned {rid!r}, not in scan()")
            v = store.vectors([rid])[0]
            d = 1.0 - float(qn[qi] @ (v / np.linalg.norm(v)))
            if abs(d - dist) > tol:
                raise WrongAnswer(
                    f"search(exact={exact}): distance of {rid!r} is {dist:.5f}, its vector "
                    f"gives {d:.5f}"
                )
        if exact:
            counts = res.group_by("query").len().sort("query").get_column("len").to_list()
            if counts != [k] * len(q):
                raise WrongAnswer(f"search(exact=True, k={k}) returned {counts} rows per query")
            dists = res.sort("query", "distance").get_column("distance").to_numpy().reshape(-1, k)
            if not np.allclose(dists, true_d[:, :k], atol=1e-4):
                raise WrongAnswer("search(exact=True) is not the brute-force top-k of scan()")


def reader_main(
    idx: int, root: str, epoch: Synchronized[int], ready: Synchronized[int], stop: Event,
    counters: SynchronizedArray[int], queue: Queue[Any], seed: int,
) -> None:
    """Open snapshots in a loop while the writer commits; report every exception.

    Each round opens the newest generation, checks it, and three times refreshes and checks
    again; now and then it first holds the old snapshot for up to 0.3 s and checks it again.
    """
    rng = np.random.default_rng(seed)
    sigs: Counter[str] = Counter()
    sent = 0
    base = idx * R_FIELDS

    def report(kind: str, exc: BaseException) -> None:
        nonlocal sent
        counters[base + (R_WRONG if kind == "wrong" else R_ERRORS)] += 1
        sig = signature(exc)
        sigs[f"{kind}|{sig}"] += 1
        if sent < MAX_MESSAGES:
            sent += 1
            queue.put(("msg", kind, sig, f"{type(exc).__name__}: {exc}"[:600]))

    while not stop.is_set():
        counters[base + R_LOOPS] += 1
        e = epoch.value
        path = os.path.join(root, f"store-{e}")
        try:
            store = wb.Store.open(path, readonly=True)
        except NotAStoreError as exc:
            if ready.value < e:  # the writer has not created this store yet
                time.sleep(0.01)
                continue
            report("error", exc)
            continue
        except Exception as exc:
            report("error", exc)
            continue
        counters[base + R_SNAPSHOTS] += 1
        try:
            with store:
                check_snapshot(store, rng)
                counters[base + R_CHECKS] += 1
                for _ in range(3):
                    if rng.random() < 0.3:
                        # Hold the snapshot while the writer commits (and collects the files
                        # of generations it no longer keeps), then ask it again.
                        time.sleep(rng.uniform(0, 0.3))
                        check_snapshot(store, rng)
                        counters[base + R_CHECKS] += 1
                    before = store.generation
                    store.refresh()
                    counters[base + R_SNAPSHOTS] += 1
                    if store.generation < before:
                        raise WrongAnswer(f"refresh() went back from generation {before} "
                                          f"to {store.generation}")
                    check_snapshot(store, rng)
                    counters[base + R_CHECKS] += 1
        except WrongAnswer as exc:
            report("wrong", exc)
        except Exception as exc:
            report("error", exc)
        time.sleep(random.uniform(0, 0.005))
    queue.put(("sigs", idx, dict(sigs)))


# ---------------------------------------------------------------------------- fuzz worker
def answers(store: wb.Store, queries: NDArray[np.float32], ids: list[str]) -> dict[str, Any]:
    """What a fuzz case compares: two searches, a scan and some vectors."""
    out: dict[str, Any] = {}
    for name, exact in (("search", False), ("exact", True)):
        res = store.search(queries, k=10, exact=exact)
        out[name] = (res.get_column("id").to_list(), res.get_column("distance").to_numpy())
    out["scan"] = store.scan().collect()
    out["vectors"] = store.vectors(ids)
    return out


def differences(ref: dict[str, Any], got: dict[str, Any]) -> str | None:
    """How `got` differs from the undamaged store's answers, or None."""
    for name in ("search", "exact"):
        if ref[name][0] != got[name][0]:
            return f"{name}: other ids"
        if not np.allclose(ref[name][1], got[name][1], atol=1e-6, rtol=0):
            return f"{name}: other distances"
    if not ref["scan"].equals(got["scan"]):
        return "scan: other rows"
    if not np.array_equal(ref["vectors"], got["vectors"]):
        return "vectors: other values"
    return None


def fuzz_worker_main(conn: Connection) -> None:
    """Serve fuzz cases: (path, verify, queries, ids) -> ("ok", answers) or ("error", ...)."""
    conn.send(("hello", os.getpid()))
    while True:
        try:
            case = conn.recv()
        except EOFError:
            return
        if case is None:
            return
        path, verify, queries, ids = case
        try:
            with wb.Store.open(path, readonly=True, verify=verify) as store:
                got = answers(store, queries, ids)
            conn.send(("ok", got))
        except CorruptStoreError as exc:
            conn.send(("corrupt", type(exc).__name__, str(exc)))
        except Exception as exc:
            conn.send(("other", type(exc).__name__, str(exc)))
