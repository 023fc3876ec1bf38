"""What the benchmark scripts share: timing, exact ground truth, recall, progress lines."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Hashable, Sequence
from typing import Any, NamedTuple, TypeVar

import numpy as np
from numpy.typing import NDArray

T = TypeVar("T")


class Timing(NamedTuple):
    """Wall-clock and process CPU seconds (all threads) of one run."""

    wall: float
    cpu: float


def timed(fn: Callable[[], T]) -> tuple[Timing, T]:
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return Timing(time.perf_counter() - t0, time.process_time() - c0), out


def wall_timed(fn: Callable[[], T]) -> tuple[float, T]:
    t, out = timed(fn)
    return t.wall, out


def best_of(fn: Callable[[], T], repeats: int) -> tuple[Timing, T]:
    best, out = Timing(float("inf"), float("inf")), None
    for _ in range(repeats):
        t, out = timed(fn)
        best = min(best, t)
    return best, out  # type: ignore[return-value]


def interleaved(
    fns: dict[str, Callable[[], T]], repeats: int,
    measure: Callable[[Callable[[], T]], tuple[Any, T]] = timed,
) -> tuple[dict[str, Any], dict[str, T]]:
    """Best time of each function over `repeats` rounds that run them in turn (so drifting
    CPU load hits them alike); `measure` is :func:`timed` or :func:`wall_timed`.

    Each round runs them in another order (a seeded shuffle), so none always runs right after
    the same one: a runtime's worker threads keep spinning for a while after its last call (a
    torch model right after ONNX Runtime ran 4 % slower on 2 cores). Rotating the start by
    one per round did not do that with fewer rounds than functions: of 9 models timed in 5
    rounds, the one listed after the ONNX model followed it in every round.
    """
    best: dict[str, Any] = {}
    outs: dict[str, T] = {}
    names = list(fns)
    rng = np.random.default_rng(0)
    for _ in range(repeats):
        for i in rng.permutation(len(names)):
            name = names[int(i)]
            t, outs[name] = measure(fns[name])
            best[name] = t if name not in best else min(best[name], t)
    return best, outs


def exact_knn(
    base: NDArray[np.float32], queries: NDArray[np.float32], k: int, *, metric: str = "cos",
    block: int = 16_384,
) -> NDArray[np.int64]:
    """Exact top-k row ids by blocked matmul and a running top-k (padded with -1).

    ``cos`` assumes unit vectors (ranks by dot product); ``l2sq`` ranks by ``|b|^2 - 2 q.b`` in
    float64, since pixel-scale squared distances (~1e7) overflow float32's exact integers.
    """
    nq = len(queries)
    l2 = metric == "l2sq"
    q = queries.astype(np.float64) if l2 else queries
    best_i = np.zeros((nq, 0), dtype=np.int64)
    best_d = np.zeros((nq, 0), dtype=q.dtype)
    for start in range(0, len(base), block):
        chunk = base[start : start + block]
        if l2:
            chunk = chunk.astype(np.float64)
            d = np.einsum("ij,ij->i", chunk, chunk)[None, :] - 2.0 * (q @ chunk.T)
        else:
            d = -(q @ chunk.T)
        kk = min(k, d.shape[1])
        part = np.argpartition(d, kk - 1, axis=1)[:, :kk]
        all_i = np.concatenate([best_i, part + start], axis=1)
        all_d = np.concatenate([best_d, np.take_along_axis(d, part, axis=1)], axis=1)
        top = np.argsort(all_d, axis=1, kind="stable")[:, :k]
        best_i = np.take_along_axis(all_i, top, axis=1)
        best_d = np.take_along_axis(all_d, top, axis=1)
    if best_i.shape[1] < k:
        best_i = np.pad(best_i, ((0, 0), (0, k - best_i.shape[1])), constant_values=-1)
    return best_i


def recall_at_k(found: NDArray[np.integer], truth: NDArray[np.integer]) -> float:
    """Share of the true top-k (ignoring -1 padding) found, over all queries."""
    truth = truth.astype(np.int64)
    valid = truth >= 0
    hits = (truth[:, :, None] == found.astype(np.int64)[:, None, :]).any(axis=2) & valid
    return float(hits.sum() / max(valid.sum(), 1))


def log(msg: str) -> None:
    print(f"  .. {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- command line
def size_arguments(p: argparse.ArgumentParser, *, quick_queries: int) -> None:
    """``--n``, ``--dim``, ``--queries`` and ``--quick`` (resolved by :func:`resolve_sizes`)."""
    p.add_argument("--n", type=int, default=None, help="base vectors (default 100000)")
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--queries", type=int, default=None, help="queries (default 1000)")
    p.add_argument("--quick", action="store_true", help=f"n=20000, queries={quick_queries}")


def resolve_sizes(
    p: argparse.ArgumentParser, args: argparse.Namespace, *, quick_queries: int, k: int
) -> None:
    """Fill ``args.n`` / ``args.queries`` from ``--quick`` and check that n holds `k`."""
    if args.n is None:
        args.n = 20_000 if args.quick else 100_000
    if args.queries is None:
        args.queries = quick_queries if args.quick else 1_000
    if args.n < k:
        p.error(f"--n: expected at least {k}, got {args.n}")


def name_list(
    p: argparse.ArgumentParser, flag: str, value: str, allowed: Sequence[str]
) -> list[str]:
    """A comma-separated option as a list, each item one of `allowed` (else a usage error)."""
    items = [v.strip() for v in value.split(",") if v.strip()]
    for v in items:
        if v not in allowed:
            p.error(f"{flag}: expected some of {', '.join(allowed)}, got {v!r}")
    return items


# ---------------------------------------------------------------------------- output
def cores() -> int:
    """CPU cores this process may use."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def render(header: Sequence[str], rows: Sequence[Sequence[str]], right: set[int],
           groups: Sequence[Hashable] | None = None) -> str:
    """Aligned columns (`right`: right-aligned column numbers); a blank line between groups."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(header)]

    def line(vals: Sequence[str]) -> str:
        parts = [v.rjust(w) if i in right else v.ljust(w)
                 for i, (v, w) in enumerate(zip(vals, widths, strict=True))]
        return "  ".join(parts).rstrip()

    out = [line(header), line(["-" * w for w in widths])]
    for i, r in enumerate(rows):
        if groups and i and groups[i] != groups[i - 1]:
            out.append("")
        out.append(line(r))
    return "\n".join(out)

