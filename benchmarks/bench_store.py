"""Store vs raw usearch, side by side: ingest, search, open time and bytes on disk.

Data are clustered (gaussian blobs around random unit centres, normalised), seeded, with queries
drawn the same way but not from the base. Ground truth is exact cosine top-k by blocked numpy
matmul. Raw usearch and the store use the same HNSW parameters (connectivity, expansion_add,
expansion_search) and the same thread count (usearch's default: all cores).

Ratios are *store cost / baseline cost*: 1.00x is equal, above 1 the store is slower or bigger.
For search rows the cost is the time per query (inverse QPS).

Examples
--------
    python benchmarks/bench_store.py --quick
    python benchmarks/bench_store.py --dtypes f32,f16 --batches 10
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import usearch
from _common import (  # noqa: E402
    Timing,
    best_of,
    cores,
    exact_knn,
    interleaved,
    log,
    name_list,
    recall_at_k,
    resolve_sizes,
    size_arguments,
    timed,
)
from _common import (
    render as render_table,
)
from numpy.typing import NDArray
from usearch.index import Index

import workbench as wb
from workbench.store import segment

K = 10
METRIC = "cos"
CONNECTIVITY = 16
EXPANSION_ADD = 128
INGEST_GOAL = 0.15
SEARCH_GOAL = 0.10
DTYPES = ("f32", "f16", "bf16", "i8")
QUICK_QUERIES = 500
# Noise of norm 1 around unit centres: cosine ~0.5 within a cluster, ~0 across, roughly what
# sentence embeddings of one topic look like; HNSW at ef=64 still finds ~99.9% of the top 10.
NOISE = 1.0


# ---------------------------------------------------------------------------- data
def clustered(
    n: int, dim: int, *, centres: NDArray[np.float32], noise: float, rng: np.random.Generator
) -> NDArray[np.float32]:
    """`n` unit vectors: a random centre plus isotropic gaussian noise, normalised."""
    labels = rng.integers(0, len(centres), size=n)
    out = rng.standard_normal((n, dim), dtype=np.float32)
    out *= np.float32(noise / np.sqrt(dim))
    out += centres[labels]
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def make_data(
    n: int, n_queries: int, dim: int, *, clusters: int, seed: int
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Base vectors and queries from the same mixture (noise of norm NOISE around unit centres)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    base = clustered(n, dim, centres=centres, noise=NOISE, rng=rng)
    queries = clustered(n_queries, dim, centres=centres, noise=NOISE, rng=rng)
    return base, queries


# ---------------------------------------------------------------------------- timing
def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# ---------------------------------------------------------------------------- results table
@dataclass
class Row:
    """One printed line: a measurement and, for store rows, its ratio to a baseline."""

    dtype: str
    section: str
    name: str
    time: Timing | None = None
    rate: str = ""
    recall: float | None = None
    ratio: float | None = None
    note: str = ""


def fmt_ratio(r: float | None) -> str:
    if r is None:
        return ""
    return f"{r:.2f}x ({(r - 1) * 100:+.1f}%)"


def fmt_seconds(s: float | None) -> str:
    if s is None or np.isnan(s):
        return ""
    return f"{s:.1f} s" if s >= 10 else f"{s:.3f} s" if s >= 0.1 else f"{s * 1000:.1f} ms"


def render(rows: list[Row]) -> str:
    header = ("dtype", "section", "measurement", "wall", "cpu", "rate", "recall@10", "ratio",
              "note")
    cells = [
        (
            r.dtype, r.section, r.name, fmt_seconds(r.time and r.time.wall),
            fmt_seconds(r.time and r.time.cpu), r.rate,
            "" if r.recall is None else f"{r.recall:.4f}", fmt_ratio(r.ratio), r.note,
        )
        for r in rows
    ]
    return render_table(header, cells, {3, 4, 5, 6}, [(r.dtype, r.section) for r in rows])


# ---------------------------------------------------------------------------- benchmark
def raw_index(dim: int, dtype: str, ef: int) -> Index:
    return Index(ndim=dim, metric=METRIC, dtype=dtype, connectivity=CONNECTIVITY,
                 expansion_add=EXPANSION_ADD, expansion_search=ef)


def raw_add_save(
    path: Path, base: NDArray[np.float32], keys: NDArray[np.uint64], *, dtype: str, ef: int
) -> tuple[Timing, Index]:
    """Time raw ``Index.add`` of everything in one call plus ``save``."""
    index = raw_index(base.shape[1], dtype, ef)
    t, _ = timed(lambda: (index.add(keys, base), index.save(str(path))))
    return t, index


def spread(times: list[Timing]) -> str:
    if len(times) == 1:
        return ""
    return f"best of {len(times)}: " + ", ".join(f"{t.wall:.1f}" for t in times) + " s"


def store_keys(frame: pl.DataFrame, nq: int) -> NDArray[np.uint64]:
    if frame.height != nq * K:
        raise RuntimeError(f"store.search returned {frame.height} rows, expected {nq * K}")
    return frame.get_column("key").to_numpy().reshape(nq, K)


@contextlib.contextmanager
def build_timer() -> Iterator[list[float]]:
    """Collect the wall seconds the store spends in ``segment.build_index`` (the HNSW build).

    The build is the same usearch work as the raw baseline; what ``store.add`` spends outside
    it (validation, writing vectors and metadata, fsync, CRC-32, manifest) is its overhead, and
    unlike the wall-clock ratio it barely moves when other processes share the CPU.
    """
    spent: list[float] = []
    original = segment.build_index

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - t0)

    segment.build_index = wrapped
    try:
        yield spent
    finally:
        segment.build_index = original


def add_in_batches(
    path: Path, base: NDArray[np.float32], ids: pl.DataFrame, *, dtype: str, ef: int, batches: int
) -> tuple[Timing, float | None, wb.Store]:
    """Create a store and time `batches` ``store.add`` calls (one commit each).

    Returns the timing, the seconds spent outside the HNSW build (None if unknown) and the store.
    """
    store = wb.Store.create(path, dim=base.shape[1], metric=METRIC, dtype=dtype,
                            connectivity=CONNECTIVITY, expansion_add=EXPANSION_ADD,
                            expansion_search=ef)
    bounds = np.linspace(0, len(base), batches + 1).astype(int)

    def add_all() -> None:
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
            keys = store.add(ids[lo:hi], vectors=base[lo:hi], progress=False)
            if keys[0] != lo or keys[-1] != hi - 1:
                raise RuntimeError("store keys do not follow row order; recall would be wrong")

    with build_timer() as builds:
        t, _ = timed(add_all)
    outside = t.wall - sum(builds) if len(builds) == batches else None
    return t, outside, store


def bench_dtype(
    dtype: str,
    base: NDArray[np.float32],
    queries: NDArray[np.float32],
    truth: NDArray[np.int64],
    *,
    ef: int,
    batches: int | None,
    tmp: Path,
    repeats: int,
    ingest_repeats: int,
) -> tuple[list[Row], dict[str, float]]:
    """All rows of one index dtype, and the ingest and search overheads for the goals."""
    n, dim = base.shape
    nq = len(queries)
    keys = np.arange(n, dtype=np.uint64)
    ids = pl.DataFrame({"id": pl.Series([str(i) for i in range(n)], dtype=pl.Utf8)})
    rows: list[Row] = []

    def add(
        section: str, name: str, t: Timing | None = None, *, per: str = "",
        recall: float | None = None, vs: Timing | None = None, rate: str = "", note: str = "",
    ) -> None:
        count = {"vec/s": n, "q/s": nq}.get(per)
        if count and t is not None:
            rate = f"{count / t.wall:,.0f} {per}"
        ratio = None if vs is None or t is None else t.wall / vs.wall
        rows.append(Row(dtype, section, name, t, rate, recall, ratio, note))

    # ---- ingest: alternate raw and store (ABBA...) so drifting CPU load hits both alike
    raw_path = tmp / f"raw-{dtype}.usearch"
    store_path = tmp / f"store-{dtype}"
    t_raws: list[Timing] = []
    t_stores: list[Timing] = []
    outsides: list[float] = []
    index: Index | None = None
    store: wb.Store | None = None
    for rep in range(ingest_repeats):
        for what in ("raw", "store") if rep % 2 == 0 else ("store", "raw"):
            log(f"{dtype}: {what} ingest {rep + 1}/{ingest_repeats} ({n:,} vectors, 1 commit)")
            if what == "raw":
                index = None
                raw_path.unlink(missing_ok=True)
                t, index = raw_add_save(raw_path, base, keys, dtype=dtype, ef=ef)
                t_raws.append(t)
            else:
                if store is not None:
                    store.close()
                    store = None
                    shutil.rmtree(store_path)
                t, outside, store = add_in_batches(store_path, base, ids, dtype=dtype, ef=ef,
                                                   batches=1)
                t_stores.append(t)
                if outside is not None:
                    outsides.append(outside)
    if index is None or store is None:
        raise RuntimeError("--ingest-repeats must be at least 1")
    t_raw, t_store = min(t_raws), min(t_stores)
    add("ingest", "raw usearch add+save", t_raw, per="vec/s",
        note="; ".join(filter(None, ["baseline", spread(t_raws)])))
    add("ingest", "store.add (1 commit)", t_store, per="vec/s", vs=t_raw, note=spread(t_stores))
    extra = min(outsides) / t_raw.wall if outsides else float("nan")
    if outsides:
        add("ingest", "  of which outside the HNSW build", Timing(min(outsides), float("nan")),
            note=f"= {extra:+.1%} of raw add+save (less noisy)")
    multi: wb.Store | None = None
    if batches:
        log(f"{dtype}: store.add, {batches} commits")
        t_multi, _, multi = add_in_batches(tmp / f"store-{dtype}-{batches}", base, ids, dtype=dtype,
                                        ef=ef, batches=batches)
        add("ingest", f"store.add ({batches} commits)", t_multi, per="vec/s", vs=t_raw,
            note=f"{len(multi.segments)} segments")

    # ---- search: one batched call of all queries; variants interleaved, best of `repeats`
    log(f"{dtype}: search")
    view = Index.restore(str(raw_path), view=True)
    if view is None:
        raise RuntimeError(f"usearch could not restore {raw_path}")
    view.expansion_search = ef
    ann: dict[str, Callable[[], NDArray[np.integer]]] = {
        "raw": lambda: np.asarray(index.search(queries, K).keys),
        "view": lambda: np.asarray(view.search(queries, K).keys),
        "store": lambda: store_keys(store.search(queries, k=K), nq),
    }
    if multi is not None:
        ann["multi"] = lambda: store_keys(multi.search(queries, k=K), nq)
    t_ann, found = interleaved(ann, repeats)
    rec = {name: recall_at_k(f, truth) for name, f in found.items()}
    t_rs = t_ann["raw"]
    add("search", "raw usearch search", t_rs, per="q/s", recall=rec["raw"],
        note=f"baseline, ef={ef}")
    add("search", "raw usearch search (view)", t_ann["view"], per="q/s", recall=rec["view"],
        vs=t_rs, note="memory-mapped, as the store")
    add("search", "store.search", t_ann["store"], per="q/s", recall=rec["store"], vs=t_rs)
    if multi is not None:
        add("search", f"store.search ({batches} segments)", t_ann["multi"], per="q/s",
            recall=rec["multi"], vs=t_rs)
    exact: dict[str, Callable[[], NDArray[np.integer]]] = {
        "numpy": lambda: exact_knn(base, queries, K),
        "store": lambda: store_keys(store.search(queries, k=K, exact=True), nq),
    }
    t_ex, found = interleaved(exact, max(1, repeats // 2))
    add("search", "exact numpy", t_ex["numpy"], per="q/s",
        recall=recall_at_k(found["numpy"], truth), note="blocked matmul; ground truth")
    add("search", "store.search exact=True", t_ex["store"], per="q/s",
        recall=recall_at_k(found["store"], truth), vs=t_ex["numpy"], note="vs exact numpy")

    # ---- open (page cache warm: this is the software cost, not the disk's)
    log(f"{dtype}: open")
    t_view, _ = best_of(lambda: Index.restore(str(raw_path), view=True), repeats)
    add("open", "raw Index.restore(view=True)", t_view, note="baseline")
    t_load, _ = best_of(lambda: Index.restore(str(raw_path)), repeats)
    add("open", "raw Index.restore (load)", t_load, vs=t_view)
    for verify in (True, False):
        def open_close(verify: bool = verify) -> None:
            wb.Store.open(store_path, readonly=True, verify=verify).close()

        t_open, _ = best_of(open_close, repeats)
        add("open", f"Store.open(readonly, verify={verify})", t_open, vs=t_view,
            note="vs raw view")

    # ---- bytes on disk
    raw_b = raw_path.stat().st_size / n
    store_b = folder_bytes(store_path) / n
    parts: dict[str, int] = {}
    for p in (store_path / "segments").iterdir():
        kind = p.name.split(".")[1]
        parts[kind] = parts.get(kind, 0) + p.stat().st_size
    breakdown = " + ".join(f"{kind} {size / n:,.0f}" for kind, size in sorted(parts.items()))
    add("disk", "raw index file", rate=f"{raw_b:,.0f} B/vec", note="baseline")
    rows.append(Row(dtype, "disk", "store folder", rate=f"{store_b:,.0f} B/vec",
                    ratio=store_b / raw_b, note=breakdown))
    add("disk", "float32 vector (reference)", rate=f"{dim * 4:,} B/vec")

    store.close()
    if multi is not None:
        multi.close()
    return rows, {
        "ingest": t_store.wall / t_raw.wall - 1,
        "ingest, work outside the HNSW build": extra,
        "search": t_ann["store"].wall / t_rs.wall - 1,
    }


# ---------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    size_arguments(p, quick_queries=QUICK_QUERIES)
    p.add_argument("--dtype", default="f16", choices=DTYPES, help="index dtype")
    p.add_argument("--dtypes", default=None, help="several dtypes, comma-separated (f32,f16)")
    p.add_argument("--batches", type=int, default=None,
                   help="also time store.add split into this many commits (e.g. 10)")
    p.add_argument("--ef", type=int, default=64, help="expansion_search")
    p.add_argument("--clusters", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=5,
                   help="best of this many search runs (exact search: half as many)")
    p.add_argument("--ingest-repeats", type=int, default=2,
                   help="best of this many builds each, raw and store alternating")
    p.add_argument("--tmp", type=Path, default=None, help="parent folder for temporary files")
    p.add_argument("--strict", action="store_true", help="exit 1 when a goal fails")
    args = p.parse_args(argv)
    resolve_sizes(p, args, quick_queries=QUICK_QUERIES, k=K)
    args.dtypes = name_list(p, "--dtypes", args.dtypes or args.dtype, DTYPES)
    if args.batches is not None and args.batches < 2:
        p.error(f"--batches: expected at least 2 (1 commit is always timed), got {args.batches}")
    if min(args.n, args.queries, args.dim, args.ef, args.repeats, args.ingest_repeats) < 1:
        p.error("--n, --queries, --dim, --ef, --repeats and --ingest-repeats must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    n_cores = cores()
    log(f"data: {args.n:,} x {args.dim} + {args.queries:,} queries, {args.clusters} clusters")
    base, queries = make_data(args.n, args.queries, args.dim, clusters=args.clusters,
                              seed=args.seed)
    log("exact numpy ground truth")
    truth = exact_knn(base, queries, K)

    rows: list[Row] = []
    goals: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench_store-", dir=args.tmp) as tmp:
        for dtype in args.dtypes:
            r, g = bench_dtype(dtype, base, queries, truth, ef=args.ef,
                               batches=args.batches, tmp=Path(tmp), repeats=args.repeats,
                               ingest_repeats=args.ingest_repeats)
            rows += r
            goals[dtype] = g
            gc.collect()  # drop this dtype's indexes and views before deleting their files
            for p in Path(tmp).iterdir():  # free the disk between dtypes
                shutil.rmtree(p) if p.is_dir() else p.unlink()

    print(
        f"store vs raw usearch {usearch.__version__}: n={args.n:,} dim={args.dim} "
        f"queries={args.queries:,} k={K} metric={METRIC} connectivity={CONNECTIVITY} "
        f"expansion_add={EXPANSION_ADD} ef={args.ef} cores={n_cores}"
    )
    print(f"data: {args.clusters} gaussian clusters (noise {NOISE}), normalised, seed={args.seed}; "
          f"ingest = best of {args.ingest_repeats} (raw and store alternating); "
          f"search = one batched call of all queries, best of {args.repeats}")
    print("ratio = store cost / baseline cost (time, time per query, or bytes); >1 is worse")
    print()
    print(render(rows))
    print()
    print(f"goals (overhead vs raw usearch at equal parameters; ingest <= {INGEST_GOAL:.0%}, "
          f"search <= {SEARCH_GOAL:.0%})")
    ok = True
    for dtype, g in goals.items():
        for what, value in g.items():
            limit = INGEST_GOAL if what.startswith("ingest") else SEARCH_GOAL
            if np.isnan(value):
                continue
            passed = value <= limit
            ok &= passed
            print(f"  {dtype:4}  {what:37}  overhead {value * 100:+6.1f}%  (limit "
                  f"{limit:.0%})  {'PASS' if passed else 'FAIL'}")
    return 1 if args.strict and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
