"""Drift: two-sample tests on synthetic windows (speed, memory, calibration) and on numpy's commits.

Data (*speed*, *calibration*): a Gaussian mixture in 384-d, unit-normalised: ``CLUSTERS``
random unit centres (near orthogonal), uniform weights, each row ``centre + noise`` with noise
of norm ~``--spread``, then normalised (within-cluster cosine ~0.5 at spread 1). A *planted*
pair: the reference from the mixture, the window with a share (8 % unless said) of its rows
from one more cluster absent from the reference (a minority shift); a *null* pair: both sides
from the mixture, independent draws.

*speed*: per window size (``--sizes``, rows per side), in a subprocess of its own (peak RSS is
``VmHWM``, reset through ``/proc/self/clear_refs`` before each call, so it is the call's own
peak on top of the data already resident): ``mmd_test`` (200 permutations), ``classifier_test``
and ``components_test`` on a planted pair, against the anchor, an EXACT quadratic RBF-MMD
permutation test written plainly in torch (float32 kernel of all pooled rows, the same three
bandwidths 0.5 / 1 / 2 x the median pairwise distance of 1,000 pooled rows, the same
permutation-calibrated min-p aggregation; every permutation's MMD² is ``w' K w`` with ``w`` =
+1/m, -1/n, all of them as one ``(B + 1, N) @ (N, N)`` product). The anchor holds an N x N
kernel (N = 2 x size: 1.6 GB float32 at 10k per side, two of them at once) and runs only up to
``--anchor-max`` rows per side; with ``--anchor-permutations`` below 200 its permutation part
is extrapolated linearly to 200. One 100k vs 100k ``mmd_test`` (``--memory-size``) checks the
memory goal. Agreement: ours and the exact test on ``--agreement-pairs`` planted and as many
null pairs at ``--agreement-size`` rows per side, flags at alpha 0.05. Note that ``mmd_test``
subsamples 20,000 rows per side (``MMD_MAX_ROWS``) and ``classifier_test`` 10,000.

*calibration*: over ``--null-runs`` null pairs of ``--calib-size`` rows per side, the share
each test rejects at alpha 0.05 (a valid test: ~0.05), and over ``--power-runs`` planted pairs
its power at two planted shares (4 % and 8 %), for mmd, classifier, components and the exact
MMD anchor.

*real*: numpy's non-merge commits (``../shared/data/commits/numpy_commits.jsonl.gz``) since
``--since``, subjects embedded with all-MiniLM-L6-v2 through the repository's embedding cache
(``data/cache``), in a temporary store with ``author_date`` (UTC) as a Datetime column;
``compute_drift(every="1mo")`` with each reference of ``--references``: the per-window table,
the wall time, the flagged windows and their keywords.

Ratios: ours / anchor (time: <1 is faster; power: >1 is more powerful).

Examples
--------
    python benchmarks/bench_drift.py                       # all parts, full sizes
    python benchmarks/bench_drift.py --quick               # smaller sizes and run counts
    python benchmarks/bench_drift.py --part speed --sizes 2000,10000 --memory-size 0
    python benchmarks/bench_drift.py --part calibration --null-runs 500
    python benchmarks/bench_drift.py --part real --since 2024-01-01 --references previous
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from _common import cores, log, name_list, render, timed  # noqa: E402
from numpy.typing import NDArray

import workbench as wb
from workbench.analysis import _drift_stats as ds

DIM = 384
CLUSTERS = 20
SPREAD = 1.0
PLANTED_SHARE = 0.08
POWER_SHARES = (0.04, 0.08)
ALPHA = 0.05
PERMUTATIONS = 200
BANDWIDTHS = ds.BANDWIDTHS
MEDIAN_POINTS = 1_000
SIZES = (2_000, 10_000, 50_000)
ANCHOR_MAX = 10_000
MEMORY_SIZE = 100_000
SPEED_GOALS = {10_000: 1.0, 50_000: 5.0}  # mmd_test seconds per window at this size per side
MEMORY_GOAL_GB = 2.0
AGREEMENT_GOAL = 0.95
NULL_RATE_GOAL = (0.02, 0.08)
METHODS = ("mmd", "classifier", "components", "exact")
REFERENCES = ("previous", "first")
ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("WORKBENCH_CACHE_DIR", ROOT / "data" / "cache"))


def fmt_ratio(r: float | None) -> str:
    return "" if r is None or not np.isfinite(r) else f"{r:.2f}x"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def fmt_p(p: Any) -> str:
    return "-" if p is None or not np.isfinite(p) else f"{p:.3g}"


# ============================================================================ data
def centres(seed: int, n_clusters: int = CLUSTERS, dim: int = DIM) -> NDArray[np.float64]:
    """`n_clusters` + 1 random unit centres; the last one is the planted cluster."""
    c = np.random.default_rng([seed, 11]).standard_normal((n_clusters + 1, dim))
    return c / np.linalg.norm(c, axis=1, keepdims=True)


def draw(c: NDArray[np.float64], n: int, rng: np.random.Generator, *, planted: float = 0.0,
         spread: float = SPREAD) -> NDArray[np.float32]:
    """`n` unit rows of the mixture of all centres but the last, a share `planted` of them (in
    random positions) from the last centre instead. Made in chunks, float32."""
    k, dim = c.shape[0] - 1, c.shape[1]
    n_new = int(round(n * planted))
    labels = np.r_[rng.integers(0, k, n - n_new), np.full(n_new, k)]
    rng.shuffle(labels)
    out = np.empty((n, dim), dtype=np.float32)
    c32 = c.astype(np.float32)
    scale = np.float32(spread / np.sqrt(dim))
    for lo in range(0, n, 16_384):
        lab = labels[lo:lo + 16_384]
        x = rng.standard_normal((lab.size, dim), dtype=np.float32)
        x *= scale
        x += c32[lab]
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[lo:lo + lab.size] = x
    return out


def pair(seed: Any, size: int, planted: float, spread: float
         ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """(reference, window) of `size` rows each; `seed` seeds the draw (the centres come from
    the run's ``--seed`` alone, so every pair shares one mixture)."""
    base = seed[0] if isinstance(seed, list | tuple) else seed
    c = centres(int(base))
    rng = np.random.default_rng(seed)
    return draw(c, size, rng, spread=spread), draw(c, size, rng, planted=planted, spread=spread)


# ============================================================================ exact anchor
@dataclass
class ExactMMD:
    p_value: float
    statistics: NDArray[np.float64]
    t_kernel: float  # distances + per-bandwidth exp: independent of B
    t_perm: float  # the (B + 1, N) @ (N, N) products: linear in B
    n_permutations: int


def exact_mmd_test(ref: NDArray[np.float32], win: NDArray[np.float32], *,
                   n_permutations: int = PERMUTATIONS, bandwidths: tuple[float, ...] = BANDWIDTHS,
                   random_state: Any = 0) -> ExactMMD:
    """Exact quadratic RBF-MMD² permutation test (biased V-statistic, as ours), min-p over
    bandwidths calibrated by the same permutations."""
    import torch

    rng = np.random.default_rng(random_state)
    m, n = ref.shape[0], win.shape[0]
    t0 = time.perf_counter()
    z = torch.from_numpy(np.ascontiguousarray(np.concatenate([ref, win]), dtype=np.float32))
    big = z.shape[0]
    sub = z[torch.from_numpy(rng.choice(big, min(big, MEDIAN_POINTS), replace=False))].double()
    dist = torch.pdist(sub)
    sigma0 = float(dist[dist > 1e-12].median()) if dist.numel() else 1.0
    sq = (z * z).sum(dim=1)
    d2 = z @ z.T  # one N x N buffer: |x|^2 + |y|^2 - 2 x.y in place
    d2.mul_(-2.0).add_(sq[:, None]).add_(sq[None, :]).clamp_min_(0.0)
    del sq
    side = np.zeros((n_permutations + 1, big), dtype=bool)
    side[:, :m] = True
    for i in range(1, n_permutations + 1):
        rng.shuffle(side[i])
    w = torch.from_numpy(np.where(side, np.float32(1.0 / m), np.float32(-1.0 / n)))
    kern = torch.empty_like(d2)
    stats = np.empty((n_permutations + 1, len(bandwidths)), dtype=np.float64)
    t_perm = 0.0
    for b, mult in enumerate(bandwidths):
        s = mult * sigma0
        torch.mul(d2, -1.0 / (2.0 * s * s), out=kern)
        kern.exp_()
        t1 = time.perf_counter()
        wk = w @ kern
        stats[:, b] = (wk.double() * w.double()).sum(dim=1).numpy()
        t_perm += time.perf_counter() - t1
    del kern, d2
    t_kernel = time.perf_counter() - t0 - t_perm
    # p of every split per bandwidth: share of the B + 1 splits at or above it
    pv = (stats[None, :, :] >= stats[:, None, :]).mean(axis=1)
    minp = pv.min(axis=1)
    return ExactMMD(float(np.mean(minp <= minp[0])), stats[0], t_kernel, t_perm, n_permutations)


# ============================================================================ speed: child
def vm_kib(key: str) -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) if key == "VmHWM" else 0


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        return True
    except OSError:
        return False


def measure(fn: Any) -> tuple[dict[str, Any], Any]:
    """Wall and CPU seconds, resident KiB before, peak KiB during (VmHWM after a reset)."""
    import gc

    gc.collect()
    reset = reset_peak()
    base = vm_kib("VmRSS")
    t, out = timed(fn)
    return {"wall": t.wall, "cpu": t.cpu, "base_kib": base, "peak_kib": vm_kib("VmHWM"),
            "reset": reset}, out


def child_speed(args: argparse.Namespace) -> int:
    size = args.child_size
    methods = args.child_methods.split(",")
    ref, win = pair([args.seed, size, 1], size, PLANTED_SHARE, args.spread)
    res: dict[str, Any] = {"size": size, "data_kib": vm_kib("VmRSS")}
    if "mmd" in methods:
        ds.mmd_test(ref[:500], win[:500], n_permutations=10)  # warm-up: imports, BLAS threads
        info, r = measure(lambda: ds.mmd_test(ref, win, n_permutations=PERMUTATIONS,
                                              random_state=0))
        res["mmd"] = {**info, "p": r.p_value, "rows": [r.n_ref, r.n_win]}
    if "classifier" in methods:
        ds.classifier_test(ref[:200], win[:200])
        info, r = measure(lambda: ds.classifier_test(ref, win, random_state=0))
        res["classifier"] = {**info, "p": r.p_value, "auc": r.auc, "rows": [r.n_ref, r.n_win]}
    if "components" in methods:
        ds.components_test(ref[:200], win[:200])
        info, r = measure(lambda: ds.components_test(ref, win, random_state=0))
        res["components"] = {**info, "p": r.p_value, "rows": [size, size]}
    if "exact" in methods:
        b = args.child_permutations
        exact_mmd_test(ref[:200], win[:200], n_permutations=10)
        info, r = measure(lambda: exact_mmd_test(ref, win, n_permutations=b, random_state=0))
        # extrapolated to PERMUTATIONS: the kernel part stays, the products scale with B + 1
        info["wall_200"] = r.t_kernel + r.t_perm * (PERMUTATIONS + 1) / (b + 1)
        res["exact"] = {**info, "p": r.p_value, "permutations": b, "t_kernel": r.t_kernel,
                        "t_perm": r.t_perm, "rows": [size, size]}
    Path(args.child_out).write_text(json.dumps(res))
    return 0


def run_child(size: int, methods: list[str], out: Path, args: argparse.Namespace
              ) -> dict[str, Any] | None:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child-size", str(size),
           "--child-methods", ",".join(methods), "--child-out", str(out),
           "--child-permutations", str(args.anchor_permutations), "--seed", str(args.seed),
           "--spread", str(args.spread)]
    proc = subprocess.run(cmd, check=False)
    if proc.returncode != 0:
        log(f"size {size:,}: subprocess failed with exit code {proc.returncode}")
        return None
    text = out.read_text()
    log(f"subprocess result: {text}")
    return dict(json.loads(text))


# ============================================================================ speed
def gib(kib: float) -> float:
    return kib / 2**20


def agreement(args: argparse.Namespace) -> dict[str, Any]:
    size, k = args.agreement_size, args.agreement_pairs
    same = {"planted": 0, "null": 0}
    rej = {"ours planted": 0, "exact planted": 0, "ours null": 0, "exact null": 0}
    dp: list[float] = []
    for kind, share in (("planted", PLANTED_SHARE), ("null", 0.0)):
        for i in range(k):
            ref, win = pair([args.seed, size, 2, i, int(share * 100)], size, share, args.spread)
            ours = ds.mmd_test(ref, win, n_permutations=PERMUTATIONS, random_state=i)
            ex = exact_mmd_test(ref, win, n_permutations=PERMUTATIONS, random_state=[i, 1])
            a, b = ours.p_value <= ALPHA, ex.p_value <= ALPHA
            same[kind] += int(a == b)
            rej[f"ours {kind}"] += int(a)
            rej[f"exact {kind}"] += int(b)
            dp.append(abs(ours.p_value - ex.p_value))
        log(f"agreement: {kind} pairs done ({same[kind]}/{k} same decision)")
    return {"same": same, "rej": rej, "k": k, "size": size, "share": (same["planted"] + same[
        "null"]) / (2 * k), "mean_abs_dp": float(np.mean(dp))}


def run_speed(args: argparse.Namespace) -> list[str]:
    lines: list[str] = []
    tmp = Path(tempfile.mkdtemp(prefix="bench_drift-", dir=args.tmp))
    results: dict[int, dict[str, Any]] = {}
    try:
        for size in args.sizes:
            methods = ["mmd", "classifier", "components"]
            if size <= args.anchor_max:
                methods.append("exact")
            log(f"speed: {size:,} vs {size:,} x {DIM}: {', '.join(methods)} (subprocess)")
            r = run_child(size, methods, tmp / f"speed-{size}.json", args)
            if r is not None:
                results[size] = r
        mem = None
        if args.memory_size:
            log(f"memory: mmd_test {args.memory_size:,} vs {args.memory_size:,} (subprocess)")
            mem = run_child(args.memory_size, ["mmd"], tmp / "memory.json", args)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    agree = agreement(args) if args.agreement_pairs else None

    print(f"speed: planted pairs ({PLANTED_SHARE:.0%} of the window from a new cluster), "
          f"{CLUSTERS}-cluster Gaussian mixture in {DIM}-d (spread {args.spread}); "
          f"mmd_test({PERMUTATIONS} permutations, bandwidths {BANDWIDTHS} x median, "
          f"{ds.N_FEATURES} random features each), classifier_test, components_test; "
          f"cores={cores()}, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print("  anchor: exact quadratic RBF-MMD permutation test in torch (same bandwidths, same "
          "min-p aggregation, float32 kernel); ratio = ours / anchor (<1 is faster)")
    print("  peak = VmHWM during the call (reset before it), resident data and interpreter "
          "included; +peak = peak - resident before the call")
    rows = []
    for size, r in sorted(results.items()):
        ex = r.get("exact")
        for name in ("mmd", "classifier", "components", "exact"):
            if name not in r:
                if name == "exact":
                    rows.append((f"{size:,}", "exact MMD (torch)", "-", "-", "-", "-", "", "",
                                 f"not run (> --anchor-max {args.anchor_max:,}: "
                                 f"{(2 * size) ** 2 * 4 / 1e9:,.1f} GB kernel)"))
                continue
            m = r[name]
            note = f"rows {m['rows'][0]:,}+{m['rows'][1]:,}"
            wall = m["wall"]
            ratio = ""
            if name == "exact":
                label = "exact MMD (torch)"
                note += (f"; distances+exp {m['t_kernel']:.2f} s, products {m['t_perm']:.2f} s"
                         f" for B={m['permutations']}")
                if m["permutations"] != PERMUTATIONS:
                    note += f"; wall extrapolated linearly to B={PERMUTATIONS}"
                    wall = m["wall_200"]
            else:
                label = f"{name}_test"
                if name == "mmd" and ex is not None:
                    ratio = fmt_ratio(wall / ex["wall_200"])
                if name == "classifier":
                    note += f"; auc {m['auc']:.3f}"
            if not m.get("reset", True):
                note += "; peak not reset (includes data generation)"
            rows.append((f"{size:,}", label, f"{wall:.2f}", f"{m['cpu']:.2f}",
                         f"{gib(m['peak_kib']):.2f}", f"{gib(m['peak_kib'] - m['base_kib']):.2f}",
                         fmt_p(m["p"]), ratio, note))
        if all(k in r for k in ("mmd", "classifier", "components")):
            tot = sum(r[k]["wall"] for k in ("mmd", "classifier", "components"))
            rows.append((f"{size:,}", "all three (a compute_drift window)", f"{tot:.2f}", "",
                         "", "", "", "", ""))
    if mem is not None and "mmd" in mem:
        m = mem["mmd"]
        rows.append((f"{args.memory_size:,}", "mmd_test (memory run)", f"{m['wall']:.2f}",
                     f"{m['cpu']:.2f}", f"{gib(m['peak_kib']):.2f}",
                     f"{gib(m['peak_kib'] - m['base_kib']):.2f}", fmt_p(m["p"]), "",
                     f"rows {m['rows'][0]:,}+{m['rows'][1]:,}; data {gib(mem['data_kib']):.2f}"
                     " GB resident before"))
    print()
    print(render(("rows/side", "test", "wall s", "cpu s", "peak GB", "+peak GB", "p", "ratio",
                  "note"), rows, {2, 3, 4, 5, 6, 7}, [r[0] for r in rows]))
    print()
    try:
        import evidently  # noqa: F401

        print("Evidently: installed, but not benchmarked here")
    except ImportError:
        print("Evidently: not installed (needs pandas < 3); skipped")

    for size, goal in SPEED_GOALS.items():
        r = results.get(size, {}).get("mmd")
        if r is None:
            lines.append(f"  SKIP  speed: mmd_test at {size:,} vs {size:,} <= {goal:g} s "
                         "(size not run)")
            continue
        lines.append(f"  {verdict(r['wall'] <= goal)}  speed: mmd_test at {size:,} vs {size:,}: "
                     f"{r['wall']:.2f} s (<= {goal:g} s)")
    if mem is not None and "mmd" in mem:
        peak = gib(mem["mmd"]["peak_kib"])
        lines.append(f"  {verdict(peak <= MEMORY_GOAL_GB)}  speed: mmd_test peak RSS at "
                     f"{args.memory_size:,} + {args.memory_size:,}: {peak:.2f} GB "
                     f"(<= {MEMORY_GOAL_GB:g} GB)")
    else:
        lines.append(f"  SKIP  speed: mmd_test peak RSS <= {MEMORY_GOAL_GB:g} GB "
                     "(no memory run)")
    if agree is not None:
        s, rj, k = agree["same"], agree["rej"], agree["k"]
        print()
        print(f"agreement at {agree['size']:,} vs {agree['size']:,}, alpha {ALPHA}: same decision "
              f"on {s['planted']}/{k} planted ({PLANTED_SHARE:.0%}) and {s['null']}/{k} null "
              f"pairs ({agree['share']:.1%}); rejections: ours {rj['ours planted']}/{k} planted, "
              f"{rj['ours null']}/{k} null; exact {rj['exact planted']}/{k} planted, "
              f"{rj['exact null']}/{k} null; mean |p ours - p exact| {agree['mean_abs_dp']:.3f}")
        lines.append(f"  {verdict(agree['share'] >= AGREEMENT_GOAL)}  speed: same decision as "
                     f"the exact test on {agree['share']:.1%} of {2 * k} pairs at "
                     f"{agree['size']:,} (>= {AGREEMENT_GOAL:.0%})")
    return lines


# ============================================================================ calibration
def run_calibration(args: argparse.Namespace) -> list[str]:
    size = args.calib_size
    rej: dict[tuple[str, float], int] = {}
    secs: dict[str, float] = dict.fromkeys(METHODS, 0.0)
    calls: dict[str, int] = dict.fromkeys(METHODS, 0)
    runs = {0.0: args.null_runs, **dict.fromkeys(POWER_SHARES, args.power_runs)}

    def tests(ref: NDArray[np.float32], win: NDArray[np.float32], i: int) -> dict[str, float]:
        out = {}
        for name, fn in [t for t in (
            ("mmd", lambda: ds.mmd_test(ref, win, n_permutations=PERMUTATIONS,
                                        random_state=i).p_value),
            ("classifier", lambda: ds.classifier_test(ref, win, random_state=i).p_value),
            ("components", lambda: ds.components_test(ref, win, random_state=i).p_value),
            ("exact", lambda: exact_mmd_test(ref, win, n_permutations=PERMUTATIONS,
                                             random_state=[i, 1]).p_value),
        ) if t[0] in args.calib_methods]:
            t0 = time.perf_counter()
            out[name] = fn()
            secs[name] += time.perf_counter() - t0
            calls[name] += 1
        return out

    t_start = time.perf_counter()
    for share, k in runs.items():
        for i in range(k):
            ref, win = pair([args.seed, size, 3, i, int(round(share * 100))], size, share,
                            args.spread)
            for name, p in tests(ref, win, i).items():
                rej[name, share] = rej.get((name, share), 0) + int(p <= ALPHA)
            if (i + 1) % 50 == 0:
                log(f"calibration: share {share:.0%}: {i + 1}/{k} pairs, "
                    f"{time.perf_counter() - t_start:.0f} s")
    from scipy.stats import binomtest

    print(f"calibration: {size:,} vs {size:,} x {DIM} pairs from the {CLUSTERS}-cluster mixture "
          f"(spread {args.spread}); reject at p <= {ALPHA}; null: {args.null_runs} pairs with no "
          f"drift; power: {args.power_runs} pairs per planted share (rows of the window from a "
          "new cluster)")
    print("  95% CI: Clopper-Pearson; ratio = power / the exact anchor's power (>1 is more "
          "powerful)")
    lo, hi = NULL_RATE_GOAL
    rows = []
    lines = []
    for name in args.calib_methods:
        k0 = rej.get((name, 0.0), 0)
        rate = k0 / max(args.null_runs, 1)
        ci = binomtest(k0, args.null_runs).proportion_ci() if args.null_runs else None
        ok = lo <= rate <= hi
        row = ["exact MMD (torch)" if name == "exact" else f"{name}_test", f"{rate:.3f}",
               "" if ci is None else f"[{ci.low:.3f}, {ci.high:.3f}]", f"[{lo}, {hi}]",
               verdict(ok)]
        for share in POWER_SHARES:
            pw = rej.get((name, share), 0) / max(args.power_runs, 1)
            ex = rej.get(("exact", share), 0) / max(args.power_runs, 1)
            row += [f"{pw:.3f}", "" if name == "exact" or ex == 0 or "exact" not in
                    args.calib_methods else fmt_ratio(pw / ex)]
        row.append(f"{secs[name] / max(calls[name], 1):.3f}")
        rows.append(tuple(row))
        lines.append(f"  {verdict(ok)}  calibration: {name} null rejection rate {rate:.3f} over "
                     f"{args.null_runs} pairs (in [{lo}, {hi}])")
    header = ["method", "null rejection", "95% CI", "goal", "result"]
    for share in POWER_SHARES:
        header += [f"power {share:.0%}", "ratio"]
    header.append("s / pair")
    print()
    print(render(header, rows, {1, 5, 6, 7, 8, 9}))
    print(f"\n  calibration total {time.perf_counter() - t_start:.0f} s")
    return lines


# ============================================================================ real
def load_commits(since: str) -> pl.DataFrame | None:
    from workbench.evaldata import EvalDataMissingError, shared_data_path

    try:
        path = shared_data_path("commits", "numpy_commits.jsonl.gz")
    except EvalDataMissingError as exc:
        print(f"real: skipped ({exc})")
        return None
    with gzip.open(path, "rb") as f:
        df = pl.read_ndjson(f.read())
    return (df.with_columns(
        pl.col("author_date").str.to_datetime("%Y-%m-%dT%H:%M:%S%z", time_zone="UTC")
        .dt.replace_time_zone(None).alias("author_date"))
        .filter(pl.col("author_date") >= pl.lit(since).str.to_datetime("%Y-%m-%d"))
        .sort("author_date")
        .select(pl.col("sha").alias("id"), "author_date", pl.col("subject").alias("text"),
                "prefix"))


def run_real(args: argparse.Namespace) -> list[str]:
    df = load_commits(args.since)
    if df is None:
        return ["  SKIP  real: numpy commits not found"]
    from workbench.embed import MiniLM

    t_real = time.perf_counter()
    log(f"real: embedding {df.height:,} commit subjects since {args.since} (cache {CACHE})")
    t0 = time.perf_counter()
    vectors = MiniLM(cache=CACHE).embed(df.get_column("text").to_list(), progress=True)
    t_embed = time.perf_counter() - t0
    tmp = Path(tempfile.mkdtemp(prefix="bench_drift-real-", dir=args.tmp))
    try:
        store = wb.Store.create(tmp / "store", dim=vectors.shape[1])
        store.add(df, vectors=vectors, progress=False)
        print(f"real: {df.height:,} numpy commits since {args.since} "
              f"({df['author_date'].min()} .. {df['author_date'].max()}), subjects embedded "
              f"with all-MiniLM-L6-v2 in {t_embed:.1f} s (cache {CACHE}); "
              f"compute_drift(time='author_date', every='{args.every}', text='text')")
        for ref in args.references:
            log(f"real: compute_drift(reference={ref!r})")
            t0 = time.perf_counter()
            res = wb.compute_drift(store, time="author_date", every=args.every, reference=ref,
                                   text="text", progress=False)
            wall = time.perf_counter() - t0
            w = res.windows

            def num(v: Any, spec: str) -> str:
                return "-" if v is None else format(v, spec)

            rows = [(str(r["start"])[:10], f"{r['n']:,}", f"{r['n_reference']:,}", r["status"],
                     num(r["centroid_shift"], ".4f"), num(r["mmd_p"], ".3g"),
                     num(r["auc"], ".3f"), num(r["classifier_p"], ".3g"),
                     num(r["components_p"], ".3g"), num(r["p_adjusted"], ".3g"),
                     "FLAG" if r["flagged"] else "")
                    for r in w.iter_rows(named=True)]
            s = res.summary
            print()
            print(f"reference={ref!r}: {s.get('windows')} windows, {s.get('tested')} tested, "
                  f"{s.get('flagged')} flagged in {wall:.1f} s "
                  f"({wall / max(int(s.get('tested') or 0), 1):.2f} s per tested window); "
                  f"mmd_p_floor {s.get('mmd_p_floor')}")
            print(render(("start", "n", "n_ref", "status", "centroid", "mmd_p", "auc",
                          "classifier_p", "components_p", "p_adjusted", "flagged"), rows,
                         {1, 2, 4, 5, 6, 7, 8, 9}))
            flagged = res.flagged
            if flagged:
                print("  flagged windows, keywords of what is new (DriftResult.changes):")
            for start in flagged:
                ch = res.changes.get(start, {})
                kw = ", ".join(ch.get("keywords") or []) or "-"
                novel = ch.get("novel_share")
                extra = "" if novel is None else f" (novel share {novel:.1%})"
                print(f"    {str(start)[:10]}: {kw}{extra}")
        store.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\n  real total {time.perf_counter() - t_real:.1f} s (embedding {t_embed:.1f} s)")
    return []


# ============================================================================ main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--part", default="all", choices=("speed", "calibration", "real", "all"))
    p.add_argument("--quick", action="store_true",
                   help="sizes 2000,10000, memory run 50000, 60 null / 30 power runs, "
                        "10 + 10 agreement pairs, real since 2025-01-01 (explicit options win)")
    p.add_argument("--sizes", default=None, help="speed: rows per side, comma-separated "
                   f"(default {','.join(map(str, SIZES))})")
    p.add_argument("--memory-size", type=int, default=None,
                   help=f"speed: rows per side of the memory run, 0 for none (default "
                        f"{MEMORY_SIZE})")
    p.add_argument("--anchor-max", type=int, default=ANCHOR_MAX,
                   help="speed: largest rows per side the exact anchor runs at")
    p.add_argument("--anchor-permutations", type=int, default=PERMUTATIONS,
                   help="speed: permutations of the timed exact anchor (extrapolated to 200)")
    p.add_argument("--agreement-pairs", type=int, default=None,
                   help="speed: planted pairs and null pairs each for the agreement (default 20)")
    p.add_argument("--agreement-size", type=int, default=2_000,
                   help="speed: rows per side of the agreement pairs")
    p.add_argument("--null-runs", type=int, default=None,
                   help="calibration: null pairs (default 200)")
    p.add_argument("--power-runs", type=int, default=None,
                   help="calibration: planted pairs per share (default 50)")
    p.add_argument("--calib-methods", default=",".join(METHODS),
                   help="calibration: tests to run (the classifier takes ~2/3 of the time)")
    p.add_argument("--calib-size", type=int, default=500, help="calibration: rows per side")
    p.add_argument("--spread", type=float, default=SPREAD,
                   help="noise norm of a row around its centre, before normalising")
    p.add_argument("--since", default=None, help="real: first commit date (default 2022-01-01)")
    p.add_argument("--every", default="1mo", help="real: window length")
    p.add_argument("--references", default=",".join(REFERENCES),
                   help="real: compute_drift references, comma-separated")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tmp", type=Path, default=Path("/tmp"),
                   help="parent folder for temporary files and stores")
    p.add_argument("--strict", action="store_true", help="exit 1 when a goal fails")
    p.add_argument("--child-size", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--child-methods", default="", help=argparse.SUPPRESS)
    p.add_argument("--child-out", default=None, help=argparse.SUPPRESS)
    p.add_argument("--child-permutations", type=int, default=PERMUTATIONS,
                   help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    q = args.quick
    if args.sizes is None:
        args.sizes = "2000,10000" if q else ",".join(map(str, SIZES))
    try:
        args.sizes = sorted({int(x) for x in args.sizes.split(",") if x.strip()})
    except ValueError:
        p.error(f"--sizes: expected comma-separated integers, got {args.sizes!r}")
    if args.memory_size is None:
        args.memory_size = 50_000 if q else MEMORY_SIZE
    if args.agreement_pairs is None:
        args.agreement_pairs = 10 if q else 20
    if args.null_runs is None:
        args.null_runs = 60 if q else 200
    if args.power_runs is None:
        args.power_runs = 30 if q else 50
    if args.since is None:
        args.since = "2025-01-01" if q else "2022-01-01"
    args.calib_methods = name_list(p, "--calib-methods", args.calib_methods, METHODS)
    args.references = name_list(p, "--references", args.references, REFERENCES)
    if args.child_size is None and min([*args.sizes, args.calib_size, args.agreement_size]) < 20:
        p.error("--sizes, --calib-size, --agreement-size: expected at least 20 rows per side")
    if min(args.null_runs, args.power_runs, args.agreement_pairs, args.memory_size) < 0:
        p.error("run counts and --memory-size: expected non-negative integers")
    if args.anchor_permutations < 1:
        p.error("--anchor-permutations: expected at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child_size is not None:
        return child_speed(args)
    t_start = time.perf_counter()
    lines: list[str] = []
    if args.part in ("speed", "all"):
        lines += run_speed(args)
        print()
    if args.part in ("calibration", "all"):
        lines += run_calibration(args)
        print()
    if args.part in ("real", "all"):
        lines += run_real(args)
        print()
    print("goals")
    print("\n".join(lines) if lines else "  (none for this part)")
    print(f"\ntotal {time.perf_counter() - t_start:.0f} s")
    return 1 if args.strict and any(ln.lstrip().startswith("FAIL") for ln in lines) else 0


if __name__ == "__main__":
    sys.exit(main())
