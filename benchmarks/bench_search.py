"""Search speed at equal recall: the store vs raw usearch, faiss-HNSW, hnswlib and exact numpy.

Two datasets. *clustered*: ``wb.datasets.clustered_vectors`` (normalised, shaped like text
embeddings), queries drawn from the same clusters with a different sample size, metric ``cos``,
ground truth by exact blocked numpy. *fmnist*: ``../shared/data/ann/fmnistsmall_*`` (1,000 x 784
pixels, 500 queries), metric ``l2sq`` on pixels / 255 (a uniform scale keeps the L2 order, so the
published ground truth, exact L2 top-100, still holds; its first 10 columns are used).

Every HNSW engine uses M = 16 and construction expansion 128 and is built once; the search
breadth (ef, ``expansion_search``) is swept at search time. At each ef all engines run in turn
(interleaved, so drifting CPU load hits them alike): one batched call of all queries, best of
`--repeats`, each engine with its own threading (usearch: all cores; faiss: OpenMP, one thread
per core; hnswlib: ``set_num_threads(cores)``). An engine leaves the sweep once it reaches
recall@10 >= 0.99 (a larger ef is only slower); settings below 0.95 are timed once.

"raw usearch" is ``Index.restore`` of the index file the store wrote, so it searches exactly the
store's graph: the store/raw ratio at one ef is the store's own overhead.

Ratios are *QPS / baseline QPS at the same recall target*: above 1 is faster than the baseline.

Examples
--------
    python benchmarks/bench_search.py --quick
    python benchmarks/bench_search.py --efs 16,32,64,128 --skip-fmnist
"""

from __future__ import annotations

import argparse
import importlib.metadata
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import faiss
import hnswlib
import numpy as np
import polars as pl
from _common import (  # noqa: E402
    cores,
    exact_knn,
    interleaved,
    log,
    name_list,
    recall_at_k,
    render,
    resolve_sizes,
    size_arguments,
    wall_timed,
)
from numpy.typing import NDArray
from usearch.index import Index

import workbench as wb
from workbench.errors import InvalidInputError
from workbench.evaldata import EvalDataMissingError, shared_data_path
from workbench.store._read import FILTER_EXACT_CELLS, _rescore_factor
from workbench.store.segment import signs

K = 10
CONNECTIVITY = 16
EXPANSION_ADD = 128
DEFAULT_EF = 64
EFS = (16, 24, 32, 40, 48, 56, 64, 80, 96, 128, 160, 192, 256)
TARGETS = (0.95, 0.99)
SELECTIVITIES = (0.001, 0.01, 0.1, 0.5, 1.0)
FILTER_RECALL_GOAL = 0.95
FILTER_QPS_GOAL = 0.5
STORE_DTYPES = ("f32", "f16", "i8", "b1")
QUICK_QUERIES = 300
# Chosen so the problem discriminates (measured, 100k x 384, raw usearch f32): recall@10 is
# 0.82 at ef=16, 0.96 at ef=64 and 0.99 only near ef=128-256. intrinsic_dim=64 gave 0.95 at ef=16
# and 96 or 128 gave 0.96-0.97 (every engine looks alike); spread=0.5 gave 0.98.
N_CLUSTERS = 1000
INTRINSIC_DIM = 32
SPREAD = 1.0


# ---------------------------------------------------------------------------- data
@dataclass
class Dataset:
    """Base vectors, queries and the true top-K row ids (int64, -1 where fewer exist)."""

    name: str
    metric: str
    base: NDArray[np.float32]
    queries: NDArray[np.float32]
    truth: NDArray[np.int64] | None = None
    note: str = ""


def clustered_data(n: int, n_queries: int, dim: int, *, seed: int) -> Dataset:
    params = {"n_clusters": N_CLUSTERS, "intrinsic_dim": INTRINSIC_DIM, "spread": SPREAD}
    base, _ = wb.datasets.clustered_vectors(n, dim, random_state=seed, **params)
    # same seed, different n: the same clusters, a different sample
    queries, _ = wb.datasets.clustered_vectors(n_queries, dim, random_state=seed, **params)
    note = (f"clustered_vectors(n_clusters={N_CLUSTERS}, intrinsic_dim={INTRINSIC_DIM}, "
            f"spread={SPREAD}, random_state={seed}), normalised; truth = exact numpy")
    return Dataset("clustered", "cos", base, queries, note=note)


def fmnist_data() -> Dataset:
    """The fmnistsmall files; raises EvalDataMissingError when they are absent."""
    base, queries, gt = (np.load(shared_data_path("ann", f"fmnistsmall_{part}.npy"))
                         for part in ("base", "queries", "gt"))
    note = "pixels / 255, l2sq; truth = published exact L2 ground truth[:, :10]"
    # Scaled into [0, 1] (the store's i8 and b1 are cosine-only and refuse this l2sq data).
    # The files are column-major; usearch wants rows contiguous.
    return Dataset(
        "fmnist", "l2sq",
        np.ascontiguousarray(base / 255.0, dtype=np.float32),
        np.ascontiguousarray(queries / 255.0, dtype=np.float32),
        np.ascontiguousarray(gt[:, :K], dtype=np.int64), note=note,
    )


# ---------------------------------------------------------------------------- engines
@dataclass
class Point:
    ef: int
    recall: float
    qps: float


@dataclass
class Engine:
    """One searchable configuration: sets its ef, then searches all queries at once."""

    name: str
    set_ef: Callable[[int], None]
    search: Callable[[], NDArray[np.int64]]
    family: str  # "store", "usearch", "faiss", "hnswlib"
    dtype: str = "f32"
    #: candidates asked of the HNSW per query (k x rescore factor): below it, ef changes nothing
    pool: int = 0
    curve: list[Point] = field(default_factory=list)

    def best(self, target: float) -> Point | None:
        """The fastest measured setting whose recall reaches `target`."""
        ok = [p for p in self.curve if p.recall >= target]
        return max(ok, key=lambda p: p.qps) if ok else None


def frame_keys(frame: pl.DataFrame, nq: int) -> NDArray[np.int64]:
    """Store results as (nq, K) keys, -1 where a query got fewer than K rows."""
    keys = frame.get_column("key").to_numpy().astype(np.int64)
    if frame.height == nq * K:
        return keys.reshape(nq, K)
    qrow = frame.get_column("query").to_numpy().astype(np.int64)
    first = np.searchsorted(qrow, qrow, side="left")
    out = np.full((nq, K), -1, dtype=np.int64)
    out[qrow, np.arange(len(qrow)) - first] = keys
    return out


def make_store(
    path: Path, data: Dataset, u: NDArray[np.float64], *, dtype: str, exact_threshold: int
) -> wb.Store:
    n, dim = data.base.shape
    store = wb.Store.create(path, dim=dim, metric=data.metric, dtype=dtype,
                            connectivity=CONNECTIVITY, expansion_add=EXPANSION_ADD,
                            expansion_search=DEFAULT_EF, exact_threshold=exact_threshold)
    keys = store.add(pl.DataFrame({"u": u}), vectors=data.base, progress=False)
    if keys[0] != 0 or keys[-1] != n - 1:
        raise RuntimeError("store keys do not follow row order; recall would be wrong")
    return store


def store_engine(store: wb.Store, queries: NDArray[np.float32], *, rescore: bool) -> Engine:
    nq = len(queries)

    def set_ef(ef: int) -> None:
        store.expansion_search = ef

    def search() -> NDArray[np.int64]:
        return frame_keys(store.search(queries, k=K, rescore=rescore), nq)

    search()  # warm up: the first rescoring call compiles its numba kernel (once per process)
    name = f"store {store.dtype}" + (" + rescore" if rescore else "")
    factor = _rescore_factor(True, store.dtype) if rescore else 0
    return Engine(name, set_ef, search, "store", store.dtype, pool=K * factor)


def raw_engine(store: wb.Store, queries: NDArray[np.float32]) -> Engine:
    """Raw usearch over the store's own index file, loaded into memory."""
    files = sorted((store.path / "segments").glob("*.usearch"))
    if len(files) != 1:
        raise RuntimeError(f"expected one index file in {store.path}, found {len(files)}")
    index = Index.restore(str(files[0]))
    if index is None:
        raise RuntimeError(f"usearch could not restore {files[0]}")

    def set_ef(ef: int) -> None:
        index.expansion_search = ef

    if store.dtype == "b1":
        queries = signs(queries)  # the store's sign bits, hamming order

    def search() -> NDArray[np.int64]:
        return np.asarray(index.search(queries, K).keys).astype(np.int64)

    name = f"usearch {store.dtype}" + (" raw (no rescore)" if store.dtype in ("i8", "b1")
                                       else "")
    return Engine(name, set_ef, search, "usearch", store.dtype)


def faiss_engine(data: Dataset, threads: int) -> Engine:
    faiss.omp_set_num_threads(threads)
    metric = faiss.METRIC_L2 if data.metric == "l2sq" else faiss.METRIC_INNER_PRODUCT
    index = faiss.IndexHNSWFlat(data.base.shape[1], CONNECTIVITY, metric)
    index.hnsw.efConstruction = EXPANSION_ADD
    index.add(data.base)
    queries = data.queries

    def set_ef(ef: int) -> None:
        index.hnsw.efSearch = ef

    def search() -> NDArray[np.int64]:
        return index.search(queries, K)[1].astype(np.int64)

    return Engine("faiss IndexHNSWFlat", set_ef, search, "faiss")


def hnswlib_engine(data: Dataset, threads: int, seed: int) -> Engine:
    n, dim = data.base.shape
    index = hnswlib.Index(space="l2" if data.metric == "l2sq" else "cosine", dim=dim)
    index.init_index(max_elements=n, ef_construction=EXPANSION_ADD, M=CONNECTIVITY,
                     random_seed=seed)
    index.set_num_threads(threads)
    index.add_items(data.base, np.arange(n))
    queries = data.queries

    def search() -> NDArray[np.int64]:
        return index.knn_query(queries, k=K)[0].astype(np.int64)

    return Engine("hnswlib", index.set_ef, search, "hnswlib")


def sweep(engines: list[Engine], truth: NDArray[np.int64], efs: list[int], repeats: int) -> None:
    """Fill each engine's curve; interleave engines at each ef; drop those at the top target."""
    nq = len(truth)
    active = list(engines)
    for ef in efs:
        if not active:
            break
        # usearch searches with max(ef, candidates asked): an engine whose pool exceeds this ef
        # and the last one would run the very same search again; its point is copied instead
        # (timing it again would only add best-of samples of one configuration).
        same = [e for e in active if e.curve and ef <= e.pool]
        for e in same:
            e.curve.append(replace(e.curve[-1], ef=ef))
        timed = [e for e in active if e not in same]
        log(f"ef={ef}: " + ", ".join(e.name for e in timed))
        recall: dict[str, float] = {e.name: e.curve[-1].recall for e in same}
        best: dict[str, float] = {}
        for e in timed:
            e.set_ef(ef)
        for rep in range(repeats):
            for e in timed:
                if rep and recall[e.name] < TARGETS[0]:
                    continue  # its QPS is never reported: one run is enough
                t, found = wall_timed(e.search)
                if not rep:
                    recall[e.name] = recall_at_k(found, truth)
                best[e.name] = min(best.get(e.name, float("inf")), t)
        for e in timed:
            e.curve.append(Point(ef, recall[e.name], nq / best[e.name]))
        active = [e for e in active if recall[e.name] < TARGETS[-1]]


# ---------------------------------------------------------------------------- tables
def fmt_qps(q: float | None) -> str:
    return "" if q is None else f"{q:,.0f}"


def fmt_ratio(r: float | None) -> str:
    return "" if r is None or not np.isfinite(r) else f"{r:.2f}x"


@dataclass
class Result:
    """One dataset's engines and exact baselines, for the tables and the goals."""

    data: Dataset
    engines: list[Engine]
    exact: dict[str, Point]  # name -> (ef 0, recall, qps)

    def engine(self, family: str) -> Engine | None:
        return next((e for e in self.engines if e.family == family), None)

    def best_store(self, target: float) -> tuple[Engine, Point] | None:
        found = [(e, p) for e in self.engines if e.family == "store"
                 for p in [e.best(target)] if p is not None]
        return max(found, key=lambda ep: ep[1].qps) if found else None


def main_rows(res: Result) -> tuple[list[tuple[str, ...]], list[int]]:
    faiss_e, hnsw_e = res.engine("faiss"), res.engine("hnswlib")
    rows: list[tuple[str, ...]] = []
    groups: list[int] = []
    for g, target in enumerate(TARGETS):
        ref_f = faiss_e.best(target) if faiss_e else None
        ref_h = hnsw_e.best(target) if hnsw_e else None

        def vs(qps: float | None, ref: Point | None) -> str:
            return "" if qps is None or ref is None else fmt_ratio(qps / ref.qps)

        for e in res.engines:
            p = e.best(target)
            note = ""
            if p is None:
                top = max(e.curve, key=lambda q: q.recall)
                rows.append((res.data.name, f">={target}", e.name, "", f"{top.recall:.4f}", "",
                             "", "", f"never reached; max recall at ef={top.ef}"))
                groups.append(g)
                continue
            if e.family == "store":
                raw = next((r for r in res.engines if r.family == "usearch" and
                            r.dtype == e.dtype), None)
                same = next((q for q in raw.curve if q.ef == p.ef), None) if raw else None
                if same is not None and raw is not None:
                    note = f"{p.qps / same.qps:.2f}x {raw.name} at ef={p.ef}"
            if e is faiss_e or e is hnsw_e:
                note = "baseline"
            rows.append((res.data.name, f">={target}", e.name, str(p.ef), f"{p.recall:.4f}",
                         fmt_qps(p.qps), vs(p.qps, ref_f), vs(p.qps, ref_h), note))
            groups.append(g)
        for name, p in res.exact.items():
            rows.append((res.data.name, f">={target}", name, "-", f"{p.recall:.4f}",
                         fmt_qps(p.qps), vs(p.qps, ref_f), vs(p.qps, ref_h), "exact"))
            groups.append(g)
    return rows, groups


def curve_rows(res: Result, efs: list[int]) -> list[tuple[str, ...]]:
    rows = []
    for e in res.engines:
        by_ef = {p.ef: p for p in e.curve}
        cells = tuple(f"{by_ef[ef].recall:.3f} {by_ef[ef].qps / 1000:5.1f}k" if ef in by_ef
                      else "" for ef in efs)
        rows.append((res.data.name, e.name, *cells))
    return rows


# ---------------------------------------------------------------------------- benchmark
def bench_dataset(
    data: Dataset, *, efs: list[int], repeats: int, tmp: Path, threads: int, seed: int,
    store_exact_threshold: int | None,
) -> tuple[Result, dict[str, wb.Store], NDArray[np.float64]]:
    n, dim = data.base.shape
    nq = len(data.queries)
    log(f"{data.name}: {n:,} x {dim}, {nq:,} queries, metric {data.metric}")
    exact_fns: dict[str, Callable[[], NDArray[np.int64]]] = {
        "exact numpy": lambda: exact_knn(data.base, data.queries, K, metric=data.metric),
    }
    t_ex, found = interleaved(exact_fns, repeats, wall_timed)
    if data.truth is None:
        data.truth = found["exact numpy"]
    truth = data.truth

    u = np.random.default_rng([seed, 1]).random(n)
    thr = store_exact_threshold if store_exact_threshold is not None else 4096
    stores: dict[str, wb.Store] = {}
    engines: list[Engine] = []
    raws: list[Engine] = []
    for dtype in STORE_DTYPES:
        log(f"{data.name}: build store {dtype}")
        try:
            t, store = wall_timed(lambda dtype=dtype: make_store(
                tmp / f"{data.name}-{dtype}", data, u, dtype=dtype, exact_threshold=thr))
        except InvalidInputError as exc:
            log(f"{data.name}: store {dtype} skipped: {exc}")
            data.note += f"; store {dtype} refused the data"
            continue
        log(f"{data.name}: store {dtype} built in {t:.1f} s")
        stores[dtype] = store
        engines.append(store_engine(store, data.queries, rescore=dtype in ("i8", "b1")))
        raws.append(raw_engine(store, data.queries))
    log(f"{data.name}: build faiss")
    t, fe = wall_timed(lambda: faiss_engine(data, threads))
    log(f"{data.name}: faiss built in {t:.1f} s; build hnswlib")
    t, he = wall_timed(lambda: hnswlib_engine(data, threads, seed))
    log(f"{data.name}: hnswlib built in {t:.1f} s")
    engines += [*raws, fe, he]
    sweep(engines, truth, efs, repeats)

    exact = {"exact numpy": Point(0, recall_at_k(found["exact numpy"], truth),
                                  nq / t_ex["exact numpy"])}
    st = next(iter(stores.values()))
    t_st, f_st = interleaved(
        {"s": lambda: frame_keys(st.search(data.queries, k=K, exact=True), nq)}, repeats,
        wall_timed)
    exact[f"store {st.dtype} exact=True"] = Point(0, recall_at_k(f_st["s"], truth), nq / t_st["s"])
    return Result(data, engines, exact), stores, u


@dataclass
class FilterRow:
    dtype: str
    selectivity: float
    allowed: int
    path: str
    recall: float
    qps: float
    ratio: float


def filtered_truths(
    data: Dataset, u: NDArray[np.float64]
) -> dict[str, tuple[NDArray[np.int64], int]]:
    """Per selectivity: the exact top-K among the rows with ``u < s``, and how many rows."""
    out = {}
    for s in SELECTIVITIES:
        rows = np.flatnonzero(u < s)
        if rows.size == len(u) and data.truth is not None:
            out[f"{s:g}"] = (data.truth, rows.size)  # every row allowed: the unfiltered truth
            continue
        sub = exact_knn(data.base[rows], data.queries, K, metric=data.metric)
        out[f"{s:g}"] = (np.where(sub >= 0, rows[np.maximum(sub, 0)], -1), rows.size)
    return out


def bench_filtered(
    data: Dataset, store: wb.Store, truths: dict[str, tuple[NDArray[np.int64], int]], *,
    ef: int, repeats: int,
) -> tuple[list[FilterRow], Point]:
    """Filtered recall@10 and QPS per selectivity, and the unfiltered search at the same ef."""
    dim = data.base.shape[1]
    nq = len(data.queries)
    q = data.queries
    store.expansion_search = ef
    thr = store.index_params["exact_threshold"]
    fns: dict[str, Callable[[], NDArray[np.int64]]] = {
        "none": lambda: frame_keys(store.search(q, k=K), nq)
    }
    for s in SELECTIVITIES:
        fns[f"{s:g}"] = lambda s=s: frame_keys(store.search(q, k=K, where=pl.col("u") < s), nq)
    log(f"{data.name}: filtered search, store {store.dtype}, ef={ef}")
    t, found = interleaved(fns, repeats, wall_timed)
    base_qps = nq / t["none"]
    unfiltered = Point(ef, recall_at_k(found["none"], data.truth), base_qps) \
        if data.truth is not None else Point(ef, float("nan"), base_qps)
    out = []
    for s in SELECTIVITIES:
        key = f"{s:g}"
        truth, m = truths[key]
        exact_path = m <= thr or m * dim <= FILTER_EXACT_CELLS
        path = ("exact scan of allowed rows" if exact_path
                else "HNSW + key filter (oversampled)")
        qps = nq / t[key]
        out.append(FilterRow(store.dtype, s, m, path, recall_at_k(found[key], truth), qps,
                             qps / base_qps))
    return out, unfiltered


# ---------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    size_arguments(p, quick_queries=QUICK_QUERIES)
    p.add_argument("--efs", default=",".join(map(str, EFS)),
                   help="search breadths to sweep, comma-separated")
    p.add_argument("--filter-dtypes", default="f16",
                   help="store dtypes for the filtered table, comma-separated")
    p.add_argument("--filter-ef", type=int, default=DEFAULT_EF)
    p.add_argument("--repeats", type=int, default=3, help="best of this many timed calls")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-fmnist", action="store_true", help="only the clustered dataset")
    p.add_argument("--tmp", type=Path, default=None, help="parent folder for temporary stores")
    p.add_argument("--strict", action="store_true", help="exit 1 when a goal fails")
    args = p.parse_args(argv)
    resolve_sizes(p, args, quick_queries=QUICK_QUERIES, k=K)
    try:
        args.efs = sorted({int(x) for x in args.efs.split(",") if x.strip()})
    except ValueError:
        p.error(f"--efs: expected comma-separated integers, got {args.efs!r}")
    if not args.efs or min(args.efs) < 1:
        p.error("--efs: expected positive integers")
    args.filter_dtypes = name_list(p, "--filter-dtypes", args.filter_dtypes, STORE_DTYPES)
    if min(args.n, args.queries, args.dim, args.repeats, args.filter_ef) < 1:
        p.error("--n, --queries, --dim, --repeats and --filter-ef must be positive")
    if args.n == args.queries:
        p.error("--n and --queries must differ (the same n draws the same sample)")
    return args


def goal_line(ok: bool, text: str) -> str:
    return f"  {'PASS' if ok else 'FAIL'}  {text}"


def goals(results: list[Result], filtered: list[tuple[list[FilterRow], Point]]) -> list[str]:
    out = []
    for res in results:
        faiss_e, hnsw_e = res.engine("faiss"), res.engine("hnswlib")
        for target in TARGETS:
            best = res.best_store(target)
            ref_f = faiss_e.best(target) if faiss_e else None
            ref_h = hnsw_e.best(target) if hnsw_e else None
            if best is None:
                out.append(goal_line(False, f"{res.data.name} recall>={target}: no store "
                                            "configuration reaches it"))
                continue
            e, p = best
            head = f"{res.data.name} recall>={target}: best store = {e.name} ef={p.ef} " \
                   f"{p.qps:,.0f} QPS"
            if ref_f is not None:
                out.append(goal_line(p.qps > ref_f.qps, f"{head} beats faiss-HNSW "
                                     f"{ref_f.qps:,.0f} (ef={ref_f.ef}): {p.qps / ref_f.qps:.2f}x"))
            if ref_h is not None:
                out.append(goal_line(p.qps >= ref_h.qps, f"{head} reaches hnswlib "
                                     f"{ref_h.qps:,.0f} (ef={ref_h.ef}): {p.qps / ref_h.qps:.2f}x"))
    for rows, _ in filtered:
        for r in rows:
            out.append(goal_line(
                r.recall >= FILTER_RECALL_GOAL and r.ratio >= FILTER_QPS_GOAL,
                f"filtered {r.dtype} selectivity {r.selectivity:>6.1%}: recall {r.recall:.4f} "
                f"(>= {FILTER_RECALL_GOAL}), QPS {r.ratio:.2f}x unfiltered "
                f"(>= {FILTER_QPS_GOAL}x)",
            ))
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    n_cores = cores()
    threads = n_cores
    t_start = time.perf_counter()
    datasets = [clustered_data(args.n, args.queries, args.dim, seed=args.seed)]
    if not args.skip_fmnist:
        try:
            datasets.append(fmnist_data())
        except EvalDataMissingError as exc:
            log(f"skipping fmnist: {exc}")
    results: list[Result] = []
    filtered: list[tuple[list[FilterRow], Point]] = []
    with tempfile.TemporaryDirectory(prefix="bench_search-", dir=args.tmp) as tmp:
        for data in datasets:
            # fmnist's 1,000 rows sit under the default exact_threshold (4096): lower it so the
            # store's HNSW path is what gets measured (the exact path has its own row)
            thr = 1 if len(data.base) <= 4096 else None
            if thr is not None:
                data.note += "; store exact_threshold=1 (HNSW path; default would scan)"
            res, stores, u = bench_dataset(data, efs=args.efs, repeats=args.repeats,
                                           tmp=Path(tmp), threads=threads, seed=args.seed,
                                           store_exact_threshold=thr)
            results.append(res)
            if data.name == "clustered":
                truths = filtered_truths(data, u)
                for dtype in (d for d in args.filter_dtypes if d in stores):
                    filtered.append(bench_filtered(data, stores[dtype], truths,
                                                   ef=args.filter_ef, repeats=args.repeats))
            for s in stores.values():
                s.close()

    versions = ", ".join(f"{m} {importlib.metadata.version(m)}"
                         for m in ("usearch", "faiss-cpu", "hnswlib", "numpy"))
    print(f"search at equal recall: k={K} M={CONNECTIVITY} expansion_add={EXPANSION_ADD} "
          f"cores={n_cores} repeats={args.repeats} ({versions})")
    for data in datasets:
        print(f"  {data.name}: {len(data.base):,} x {data.base.shape[1]}, "
              f"{len(data.queries):,} queries; {data.note}")
    print("QPS = queries / wall seconds of one batched call (best of repeats); per engine the "
          "fastest ef whose recall@10 reaches the target")
    print("ratio = QPS / baseline QPS at the same target; >1 is faster. note on store rows: its "
          "QPS / raw usearch's on the same graph and ef")
    print()
    rows: list[tuple[str, ...]] = []
    groups: list[int] = []
    for i, res in enumerate(results):
        r, g = main_rows(res)
        rows += r
        groups += [i * len(TARGETS) + x for x in g]
    print(render(("dataset", "target", "engine", "ef", "recall@10", "QPS", "vs faiss",
                  "vs hnswlib", "note"), rows, {3, 4, 5, 6, 7}, groups))
    print()
    print("sweep: recall@10 and QPS per ef (blank: not run, the engine had reached "
          f"{TARGETS[-1]})")
    crows = [row for res in results for row in curve_rows(res, args.efs)]
    cgroups = [i for i, res in enumerate(results) for _ in res.engines]
    print(render(("dataset", "engine", *(f"ef={ef}" for ef in args.efs)), crows,
                 set(range(2, 2 + len(args.efs))), cgroups))
    if filtered:
        print()
        print(f"filtered search (clustered; where=pl.col('u') < s, u uniform [0, 1); "
              f"ef={args.filter_ef}; truth = exact numpy over the allowed rows; "
              f"FILTER_EXACT_CELLS={FILTER_EXACT_CELLS:,})")
        frows: list[tuple[str, ...]] = []
        fgroups: list[int] = []
        for i, (rows_f, base) in enumerate(filtered):
            frows.append((rows_f[0].dtype if rows_f else "", "none", f"{args.n:,}",
                          "HNSW (unfiltered)", f"{base.recall:.4f}", fmt_qps(base.qps),
                          "1.00x"))
            fgroups.append(i)
            for r in rows_f:
                frows.append((r.dtype, f"{r.selectivity:.1%}", f"{r.allowed:,}", r.path,
                              f"{r.recall:.4f}", fmt_qps(r.qps), fmt_ratio(r.ratio)))
                fgroups.append(i)
        print(render(("store", "selectivity", "allowed", "path", "recall@10", "QPS",
                      "vs unfiltered"), frows, {1, 2, 4, 5, 6}, fgroups))
    print()
    print("goals (store's best configuration vs faiss-HNSW and hnswlib at equal recall; "
          f"filtered recall >= {FILTER_RECALL_GOAL} and QPS >= {FILTER_QPS_GOAL}x unfiltered)")
    lines = goals(results, filtered)
    print("\n".join(lines))
    print(f"\ntotal {time.perf_counter() - t_start:.0f} s")
    return 1 if args.strict and any(ln.lstrip().startswith("FAIL") for ln in lines) else 0


if __name__ == "__main__":
    sys.exit(main())
