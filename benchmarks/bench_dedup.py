"""Deduplication: pair quality on labelled sentence pairs, and find_duplicates at scale.

*quality*: the labelled pairs of SICK and STS-B (``../shared/data``; a pair with score >= 4.5 is
a duplicate). Sentences are embedded with all-MiniLM-L6-v2 (through the repository's embedding
cache, ``data/cache``). On each test split: average precision and best F1 of the cosine alone,
of datasketch MinHash (the anchor: 128 permutations over lowercased word 1- and 2-gram
shingles, the estimated Jaccard as the score), of the hybrid blend fitted on that set's train
split (``fit_blend``) and of the shipped ``DEFAULT_BLEND`` (fitted on STS-B train). MinHash-LSH
(threshold 0.5) is shown at its operating point: precision and recall of a pair being returned
as a candidate, which is what LSH flags.

*scale*: ``synthetic_stream(n, 384, duplicate_groups=n // 300, duplicate_size=3, noise=0.05)``
(1 % of the rows planted in groups of 3, within-group cosine >= 0.995), or with ``--data
clustered`` bench_search's clustered_vectors (low intrinsic dimension, like text embeddings)
with groups planted the same way. Ingest into an f16 store; ``find_duplicates(method="cosine",
threshold=0.98)`` cold in a subprocess (so its peak RSS, VmHWM, is its own, not the ingest's);
a re-threshold from the cached graph and a ``regroup``; an incremental run (``only_new``) after
a 10,000-row commit holding near-duplicates of old rows; and the anchor, exact blockwise numpy
all-pairs on a 100k subset (its time extrapolated quadratically to n), against find_duplicates
on a store of the same subset, with the default candidates (LSH at this threshold) and with
``candidates="index"`` (the HNSW self-join) side by side.

Ratios: quality rows give AP / the cosine's AP and AP / MinHash's AP (>1 is better); timing rows
give ours / anchor (<1 is faster).

Examples
--------
    python benchmarks/bench_dedup.py --part quality
    python benchmarks/bench_dedup.py --part scale --n 100000
    python benchmarks/bench_dedup.py            # both parts, n = 1,000,000
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from _common import cores, log, name_list, render  # noqa: E402
from numpy.typing import NDArray

import workbench as wb
from workbench.analysis._dedup_text import (
    DEFAULT_BLEND,
    DedupBlend,
    fit_blend,
    text_pair_features,
)
from workbench.analysis.dedup_review import calibrate_threshold
from workbench.evaldata import EvalDataMissingError, sts_pairs

DUPLICATE_SCORE = 4.5
DATASETS = ("sick", "stsb")
TEST_SPLIT = {"sick": "test", "stsb": "test"}
NUM_PERM = 128
LSH_THRESHOLD = 0.5
SHINGLES = "lowercased \\w+ word 1-grams + 2-grams"

DIM = 384
DATA_KINDS = ("stream", "clustered")
#: bench_search's clustered data (nearest-neighbour cosine ~0.74 at 100k, so no natural pair
#: reaches the 0.98 threshold; clustered_vectors' defaults put it at ~0.955)
CLUSTERED = {"n_clusters": 1000, "intrinsic_dim": 32, "spread": 1.0}
THRESHOLD = 0.98
WARM_THRESHOLD = 0.97
REGROUP_THRESHOLD = 0.99
NOISE = 0.05
GROUP_SIZE = 3
ROWS_PER_GROUP_SHARE = 300  # G = n // 300 groups of 3: 1 % of the rows planted
NEW_ROWS = 10_000
NEW_DUP_SHARE = 0.1  # of the new rows, near-duplicates of old rows
ANCHOR_N = 100_000
ANCHOR_BLOCK = 4096
COLD_GOAL_S = 300.0
RSS_GOAL_GB = 6.0
WARM_GOAL_S = 5.0
INCREMENTAL_GOAL_S = 10.0
RECALL_CHECK = 0.99
CACHE = Path(__file__).resolve().parents[1] / "data" / "cache"


def fmt_ratio(r: float | None) -> str:
    return "" if r is None or not np.isfinite(r) else f"{r:.2f}x"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


# ============================================================================ quality
@dataclass
class QualityRow:
    method: str
    ap: float | None
    f1: float
    precision: float
    recall: float
    threshold: str


@dataclass
class QualityResult:
    dataset: str
    n_train: int
    n_test: int
    dup_train: int
    dup_test: int
    rows: list[QualityRow] = field(default_factory=list)
    blend: DedupBlend | None = None

    def ap(self, method: str) -> float:
        row = next(r for r in self.rows if r.method == method)
        assert row.ap is not None
        return row.ap


def shingles(text: str) -> list[bytes]:
    words = re.findall(r"\w+", text.lower())
    grams = set(words) | {f"{a} {b}" for a, b in zip(words, words[1:], strict=False)}
    return [g.encode("utf-8") for g in sorted(grams)]


def minhash_scores(a: list[str], b: list[str]) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Estimated Jaccard of each pair, and whether MinHash-LSH returns b as a candidate of a."""
    from datasketch import MinHash, MinHashLSH

    unique = sorted(set(a) | set(b))
    index = {s: i for i, s in enumerate(unique)}
    hashes = MinHash.bulk([shingles(s) for s in unique], num_perm=NUM_PERM)
    est = np.array([hashes[index[x]].jaccard(hashes[index[y]]) for x, y in zip(a, b, strict=True)])
    lsh = MinHashLSH(threshold=LSH_THRESHOLD, num_perm=NUM_PERM)
    for i, h in enumerate(hashes):
        lsh.insert(i, h)
    cand: dict[int, set[int]] = {}
    flagged = np.zeros(len(a), dtype=bool)
    for p, (x, y) in enumerate(zip(a, b, strict=True)):
        ia = index[x]
        if ia not in cand:
            cand[ia] = set(lsh.query(hashes[ia]))
        flagged[p] = index[y] in cand[ia]
    return est, flagged


def scored_row(method: str, score: NDArray[np.float64], labels: NDArray[np.bool_]) -> QualityRow:
    c = calibrate_threshold(pl.DataFrame({"score": np.asarray(score, dtype=np.float64)}), labels)
    return QualityRow(method, c.average_precision, c.best_f1, c.precision, c.recall,
                      f"{c.best_threshold:.3f}")


def bench_quality_set(name: str, emb: Any) -> QualityResult:
    train = sts_pairs(name, "train")
    test = sts_pairs(name, TEST_SPLIT[name])
    y_train = (train.get_column("score") >= DUPLICATE_SCORE).to_numpy()
    y_test = (test.get_column("score") >= DUPLICATE_SCORE).to_numpy()
    res = QualityResult(name, train.height, test.height, int(y_train.sum()), int(y_test.sum()))
    log(f"{name}: embed + features, train {train.height:,} pairs")
    f_train = text_pair_features(train["a"].to_list(), train["b"].to_list(), embedder=emb)
    log(f"{name}: embed + features, test {test.height:,} pairs")
    a, b = test["a"].to_list(), test["b"].to_list()
    f_test = text_pair_features(a, b, embedder=emb)
    blend = fit_blend(f_train, y_train, model=DEFAULT_BLEND.model)
    res.blend = blend
    log(f"{name}: MinHash ({NUM_PERM} perm) + LSH (threshold {LSH_THRESHOLD})")
    est, flagged = minhash_scores(a, b)
    res.rows.append(scored_row("cosine (MiniLM)", f_test["cosine"], y_test))
    res.rows.append(scored_row("MinHash Jaccard", est, y_test))
    tp = int((flagged & y_test).sum())
    p = tp / max(int(flagged.sum()), 1)
    r = tp / max(int(y_test.sum()), 1)
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    res.rows.append(QualityRow(f"MinHash-LSH t={LSH_THRESHOLD} candidates", None, f1, p, r,
                               f"{int(flagged.sum())} flagged"))
    res.rows.append(scored_row(f"hybrid (fit on {name} train)", blend.score(f_test), y_test))
    res.rows.append(scored_row("hybrid DEFAULT_BLEND (stsb train)", DEFAULT_BLEND.score(f_test),
                               y_test))
    return res


def run_quality(args: argparse.Namespace) -> list[str]:
    emb = wb.embed.MiniLM(cache=CACHE)
    results: list[QualityResult] = []
    skipped: list[str] = []
    for name in args.datasets:
        try:
            t0 = time.perf_counter()
            results.append(bench_quality_set(name, emb))
            log(f"{name}: done in {time.perf_counter() - t0:.1f} s")
        except EvalDataMissingError as exc:
            skipped.append(f"  skipped {name}: {exc}")
    print(f"quality: labelled pairs, duplicate = score >= {DUPLICATE_SCORE}; metrics on the test "
          "split; cosine of all-MiniLM-L6-v2")
    print(f"  MinHash: datasketch MinHash(num_perm={NUM_PERM}) over {SHINGLES}, score = "
          f"estimated Jaccard; MinHash-LSH: MinHashLSH(threshold={LSH_THRESHOLD}, "
          f"num_perm={NUM_PERM}), P/R/F1 of 'pair returned as a candidate'")
    print("  AP = average precision; best F1 with its precision P, recall R and threshold; "
          "ratios = AP / AP of the cosine or of MinHash (>1 is better)")
    for line in skipped:
        print(line)
    if not results:
        return ["  SKIP  quality: no labelled dataset found"]
    rows: list[tuple[str, ...]] = []
    groups: list[str] = []
    for res in results:
        cos_ap, mh_ap = res.ap("cosine (MiniLM)"), res.ap("MinHash Jaccard")
        for r in res.rows:
            rows.append((
                f"{res.dataset} ({res.n_test:,} pairs, {res.dup_test} dup)", r.method,
                "-" if r.ap is None else f"{r.ap:.3f}", f"{r.f1:.3f}", f"{r.precision:.3f}",
                f"{r.recall:.3f}", r.threshold,
                "" if r.ap is None else fmt_ratio(r.ap / cos_ap),
                "" if r.ap is None else fmt_ratio(r.ap / mh_ap),
            ))
            groups.append(res.dataset)
    print()
    print(render(("test set", "method", "AP", "best F1", "P", "R", "threshold", "AP vs cosine",
                  "AP vs MinHash"), rows, {2, 3, 4, 5, 7, 8}, groups))
    print()
    for res in results:
        assert res.blend is not None
        coef = ", ".join(f"{c:+.3f}" for c in res.blend.coef)
        print(f"  {res.dataset} blend: intercept {res.blend.intercept:+.3f}, coef ({coef}) over "
              f"cosine, ratio, token_set, token_sort, word_jaccard, length_ratio; "
              f"train {res.n_train:,} pairs, {res.dup_train} dup")
    ok = True
    parts = []
    for res in results:
        h = res.ap(f"hybrid (fit on {res.dataset} train)")
        c, m = res.ap("cosine (MiniLM)"), res.ap("MinHash Jaccard")
        ok &= h > c and h > m
        parts.append(f"{res.dataset} {h:.3f} vs cosine {c:.3f}, MinHash {m:.3f}")
    missing = [d for d in args.datasets if d not in {r.dataset for r in results}]
    note = f" (missing: {', '.join(missing)})" if missing else ""
    line = (f"hybrid above both cosine and MinHash on every set (AP){note}: {verdict(ok)}  "
            f"[{'; '.join(parts)}]")
    print()
    print(line)
    return [f"  {verdict(ok)}  quality: hybrid above both cosine and MinHash on every set "
            f"(AP){note}"]


# ============================================================================ scale: child
def peak_rss_kib() -> int:
    """This process's peak resident set (KiB): ``VmHWM`` on Linux. Not ``ru_maxrss``: Linux
    keeps that across fork + exec, so a child would report its parent's peak (the parent
    here held the 1M-row data: the child read 9.3 GB before doing anything)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB on Linux, B on macOS


def child_dedup(args: argparse.Namespace) -> int:
    """Open the store, run one cold find_duplicates, write timings, RSS and groups."""
    out = Path(args.child_out)
    t0 = time.perf_counter()
    store = wb.Store.open(args.child_dedup, readonly=True)
    t_open = time.perf_counter() - t0
    rss_before = peak_rss_kib()
    t0 = time.perf_counter()
    res = wb.find_duplicates(store, method="cosine", threshold=args.child_threshold,
                             progress=True)
    wall = time.perf_counter() - t0
    rss = peak_rss_kib()
    res.groups.select("group", "id").write_parquet(out.with_suffix(".parquet"))
    res.pairs.filter(pl.col("cosine") >= args.child_threshold).select(
        "key_a", "key_b", "cosine").write_parquet(out.with_suffix(".pairs.parquet"))
    out.write_text(json.dumps({
        "wall": wall, "open": t_open, "rss_kib": rss, "rss_before_kib": rss_before,
        "summary": res.summary, "info": res.info,
    }, default=str))
    store.close()
    return 0


# ============================================================================ scale
def rss_gb(kib: float) -> float:
    return kib * 1024 / 1e9


def pair_set(groups: list[list[str]]) -> set[tuple[str, str]]:
    out = set()
    for g in groups:
        s = sorted(g)
        out |= {(s[i], s[j]) for i in range(len(s)) for j in range(i + 1, len(s))}
    return out


def found_groups(groups: pl.DataFrame) -> list[list[str]]:
    agg = groups.group_by("group").agg(pl.col("id"))
    return agg.get_column("id").to_list()


def grouping_quality(found: list[list[str]], truth: list[list[str]]) -> dict[str, float]:
    """Planted-pair recall, pair precision and exact-match group precision / recall / F1."""
    tp_pairs, fp_pairs = pair_set(truth), pair_set(found)
    hit = len(tp_pairs & fp_pairs)
    ft = {frozenset(g) for g in found}
    tt = {frozenset(g) for g in truth}
    gm = len(ft & tt)
    gp = gm / max(len(ft), 1)
    gr = gm / max(len(tt), 1)
    return {
        "pair_recall": hit / max(len(tp_pairs), 1),
        "pair_precision": hit / max(len(fp_pairs), 1),
        "group_precision": gp, "group_recall": gr,
        "group_f1": 2 * gp * gr / (gp + gr) if gp + gr else 0.0,
        "found_groups": len(ft), "true_groups": len(tt),
    }


def exact_pairs(x: NDArray[np.float32], thr: float, block: int = ANCHOR_BLOCK,
                ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """All pairs i < j with x_i . x_j >= thr (unit rows), blockwise upper triangle."""
    n = len(x)
    ia: list[NDArray[np.int64]] = []
    ib: list[NDArray[np.int64]] = []
    for s in range(0, n, block):
        xs = x[s : s + block]
        for t in range(s, n, block):
            sim = xs @ x[t : t + block].T
            if t == s:
                sim[np.tril_indices(sim.shape[0], 0, sim.shape[1])] = -np.inf  # j <= i
            r, c = np.nonzero(sim >= thr)
            ia.append(r.astype(np.int64) + s)
            ib.append(c.astype(np.int64) + t)
    return np.concatenate(ia), np.concatenate(ib)


def pair_recall(pairs: pl.DataFrame, exact: set[tuple[int, int]]) -> tuple[float, float]:
    """Recall and precision of pairs (keys) >= THRESHOLD against the exact pairs."""
    sp = pairs.filter(pl.col("cosine") >= THRESHOLD)
    ours = set(zip(sp["key_a"].to_numpy().tolist(), sp["key_b"].to_numpy().tolist(),
                   strict=True))
    hit = len(ours & exact)
    return hit / max(len(exact), 1), hit / max(len(ours), 1)


@dataclass
class Summary:
    step: str
    unit: str
    ours: float | None
    anchor: float | None = None
    goal: str = ""
    ok: bool | None = None
    note: str = ""

    def __post_init__(self) -> None:  # a progress line per result, so a cut run keeps them
        log(f"result: {self.step}: {self.ours} {self.unit}"
            + (f" (anchor {self.anchor})" if self.anchor is not None else "")
            + (f" [{self.note}]" if self.note else ""))


def near_copies(rng: np.random.Generator, v: NDArray[np.float32], noise: float,
                ) -> NDArray[np.float32]:
    """Each row moved by an offset of norm `noise` orthogonal to it (as synthetic_stream)."""
    v64 = v.astype(np.float64)
    jitter = rng.standard_normal(v64.shape)
    jitter -= (jitter * v64).sum(axis=1, keepdims=True) * v64
    jitter *= noise / np.linalg.norm(jitter, axis=1, keepdims=True)
    out = v64 + jitter
    return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


@dataclass
class ScaleData:
    frame: pl.DataFrame
    vectors: NDArray[np.float32]
    truth: list[list[str]]
    note: str


def clustered_with_groups(n: int, groups: int, *, seed: int) -> ScaleData:
    """``clustered_vectors`` (bench_search's parameters) with planted near-duplicate groups made
    the way ``synthetic_stream`` makes them: the lowest row of each group keeps its vector, the
    others become copies moved by `NOISE` orthogonally."""
    x, labels = wb.datasets.clustered_vectors(n, DIM, random_state=seed, **CLUSTERED)
    rng = np.random.default_rng([seed, 3])
    members = np.sort(rng.choice(n, size=(groups, GROUP_SIZE), replace=False), axis=1)
    x[members[:, 1:].ravel()] = near_copies(rng, np.repeat(x[members[:, 0]], GROUP_SIZE - 1,
                                                            axis=0), NOISE)
    dup = np.full(n, -1, dtype=np.int32)
    dup[members.ravel()] = np.repeat(np.arange(groups, dtype=np.int32), GROUP_SIZE)
    width = max(6, len(str(n - 1)))
    ids = [f"row-{i:0{width}d}" for i in range(n)]
    frame = pl.DataFrame({"id": ids, "cluster": labels,
                          "dup_group": pl.Series(dup).set(pl.Series(dup < 0), None)})
    truth = [[ids[i] for i in m] for m in members.tolist()]
    params = ", ".join(f"{k}={v}" for k, v in CLUSTERED.items())
    return ScaleData(frame, x, truth, f"clustered_vectors({n:,}, {DIM}, {params}, "
                     f"random_state={seed}) + {groups:,} planted groups of {GROUP_SIZE} "
                     f"(noise={NOISE}, as synthetic_stream plants them)")


def scale_data(kind: str, n: int, groups: int, *, seed: int) -> ScaleData:
    if kind == "clustered":
        return clustered_with_groups(n, groups, seed=seed)
    st = wb.datasets.synthetic_stream(n, DIM, duplicate_groups=groups,
                                      duplicate_size=GROUP_SIZE, drift_points=0, noise=NOISE,
                                      random_state=seed)
    return ScaleData(st.frame, st.vectors, st.duplicate_groups,
                     f"synthetic_stream({n:,}, {DIM}, duplicate_groups={groups:,}, "
                     f"duplicate_size={GROUP_SIZE}, drift_points=0, noise={NOISE}, "
                     f"random_state={seed})")


def fresh_rows(kind: str, n: int, like: pl.DataFrame, *, seed: int
               ) -> tuple[pl.DataFrame, NDArray[np.float32]]:
    """`n` new rows of the same kind and schema (unique ids ``new-...``, no planted groups)."""
    ids = pl.Series("id", [f"new-{i:06d}" for i in range(n)])
    if kind == "clustered":
        # the same seed with another n: the same clusters, a new sample
        x, labels = wb.datasets.clustered_vectors(n, DIM, random_state=seed, **CLUSTERED)
        frame = pl.DataFrame({"id": ids, "cluster": labels,
                              "dup_group": pl.Series([None] * n, dtype=pl.Int32)})
    else:
        st = wb.datasets.synthetic_stream(n, DIM, duplicate_groups=0, drift_points=0,
                                          random_state=seed + 1)
        frame, x = st.frame.with_columns(ids), st.vectors
    return frame.select(like.columns).cast(dict(like.schema)), x


def run_child(path: Path, out: Path, thr: float) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child-dedup", str(path),
           "--child-out", str(out), "--child-threshold", str(thr)]
    proc = subprocess.run(cmd, check=False)
    if proc.returncode != 0:
        log(f"find_duplicates subprocess failed with exit code {proc.returncode}")
        raise RuntimeError(f"find_duplicates subprocess failed with exit code {proc.returncode}")
    text = out.read_text()
    log(f"subprocess result: {text}")
    info: dict[str, Any] = json.loads(text)
    info["groups"] = pl.read_parquet(out.with_suffix(".parquet"))
    info["pairs"] = pl.read_parquet(out.with_suffix(".pairs.parquet"))
    return info


def anchor_step(
    args: argparse.Namespace, frame: pl.DataFrame, vectors: NDArray[np.float32], n: int,
    tmp: Path, summary: list[Summary], details: list[str],
    whole: tuple[wb.Store, pl.DataFrame, float, int] | None,
) -> None:
    """(e): exact numpy all-pairs on the first `anchor_n` rows against find_duplicates on a store
    of those rows (`whole`: the main store, its cold pairs and time, when they are all rows)."""
    m = min(args.anchor_n, n)
    sub = np.ascontiguousarray(vectors[:m])
    log(f"(e) exact numpy all-pairs on {m:,} rows (blocks of {ANCHOR_BLOCK})")
    t0 = time.perf_counter()
    ea, eb = exact_pairs(sub, THRESHOLD)
    t_exact = time.perf_counter() - t0
    exact = set(zip(ea.tolist(), eb.tolist(), strict=True))
    log(f"(e) exact {t_exact:.1f} s, {ea.size:,} pairs")
    if whole is None:
        log(f"(e) store of the {m:,}-row subset")
        sstore = wb.Store.create(tmp / "subset", dim=DIM)
        skeys = sstore.add(frame.slice(0, m), vectors=sub, progress=False)
        if skeys[0] != 0 or skeys[-1] != m - 1:
            raise RuntimeError("subset store keys do not follow row order")
        t0 = time.perf_counter()
        sres = wb.find_duplicates(sstore, method="cosine", threshold=THRESHOLD, progress=True)
        t_sub = time.perf_counter() - t0
        spairs, default_ef = sres.pairs, int(sres.info["expansion"] or 24)
        what = f"a {m:,}-row subset store"
    else:
        sstore, spairs, t_sub, default_ef = whole
        what = f"the {m:,}-row store (the cold run of (b))"
    r_sub, p_sub = pair_recall(spairs, exact)
    rows = [
        Summary(f"(e) find_duplicates on {what}", "s", t_sub, t_exact,
                note=f"anchor = exact numpy, {ea.size:,} pairs >= {THRESHOLD}"),
        Summary(f"(e) pair recall vs exact ({m:,} rows)", "", r_sub,
                goal=f">= {RECALL_CHECK} (check)", ok=r_sub >= RECALL_CHECK,
                note=f"precision {p_sub:.4f}"),
    ]
    # the same dedup with HNSW candidates (the store's index), side by side with LSH
    log(f"(e) find_duplicates on the {m:,} rows, candidates='index' (no cache)")
    t0 = time.perf_counter()
    ires = wb.find_duplicates(sstore, method="cosine", threshold=THRESHOLD, candidates="index",
                              cache=False, progress=True)
    t_idx = time.perf_counter() - t0
    r_idx = pair_recall(ires.pairs, exact)[0]
    rows.append(Summary("(e) same with candidates='index' (HNSW self-join)", "s", t_idx, t_exact,
                        note=f"pair recall {r_idx:.4f}; searched deeper "
                             f"{ires.info['searched_deeper']:,}, exactly "
                             f"{ires.info['searched_exactly']:,}, unreached "
                             f"{ires.info['unreached']:,}"))
    log(f"(e) index {t_idx:.1f} s, recall {r_idx:.4f}")
    for ef in args.expansions:
        if ef == default_ef:
            continue
        log(f"(e) find_duplicates on the {m:,} rows, expansion={ef} (no cache)")
        t0 = time.perf_counter()
        eres = wb.find_duplicates(sstore, method="cosine", threshold=THRESHOLD, expansion=ef,
                                  candidates="index", cache=False, progress=True)
        t_ef = time.perf_counter() - t0
        rows.append(Summary(f"(e) same, expansion={ef} (default {default_ef})", "s", t_ef,
                            t_exact, note=f"pair recall {pair_recall(eres.pairs, exact)[0]:.4f}"))
    if whole is None:
        sstore.close()
    scale = (n / m) ** 2
    t_extrap = t_exact * scale
    summary += rows
    for s in summary:
        if s.step.startswith("(b) find_duplicates cold"):
            s.anchor = t_extrap
    details.append(f"  (e) exact numpy at n extrapolated: t(n) = t({m:,}) x (n / {m:,})^2 = "
                   f"{t_exact:.1f} s x {scale:,.1f} = {t_extrap:,.0f} s ({t_extrap / 3600:.2f} h)")


def run_scale(args: argparse.Namespace) -> list[str]:
    n = args.n
    g = n // ROWS_PER_GROUP_SHARE
    tmp = Path(tempfile.mkdtemp(prefix="bench_dedup-", dir=args.tmp))
    summary: list[Summary] = []
    details: list[str] = []
    try:
        log(f"data: {args.data}, {n:,} x {DIM}, {g:,} planted groups of {GROUP_SIZE}")
        t0 = time.perf_counter()
        data = scale_data(args.data, n, g, seed=args.seed)
        log(f"data generated in {time.perf_counter() - t0:.1f} s")
        frame, vectors, truth = data.frame, data.vectors, data.truth

        # (a) ingest (or a copy of a store ingested earlier by this script: --store-cache)
        path = tmp / "store"
        kept = (None if args.store_cache is None
                else args.store_cache / f"{args.data}-{n}-seed{args.seed}")
        if kept is not None and (kept / "ingest.json").exists():
            t_ingest = float(json.loads((kept / "ingest.json").read_text())["seconds"])
            log(f"(a) copying the store ingested earlier from {kept}")
            shutil.copytree(kept / "store", path)
            store = wb.Store.open(path)
            how = f"measured when {kept} was built"
        else:
            log(f"(a) ingest {n:,} rows into an f16 store")
            t0 = time.perf_counter()
            store = wb.Store.create(path, dim=DIM)
            keys = store.add(frame, vectors=vectors, progress=True)
            t_ingest = time.perf_counter() - t0
            if keys[0] != 0 or keys[-1] != n - 1:
                raise RuntimeError("store keys do not follow row order")
            how = "this run"
            if kept is not None:
                store.close()
                shutil.rmtree(kept, ignore_errors=True)
                kept.mkdir(parents=True)
                shutil.copytree(path, kept / "store")
                (kept / "ingest.json").write_text(json.dumps({"seconds": t_ingest}))
                store = wb.Store.open(path)
        disk = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        summary.append(Summary(f"(a) ingest {n:,} rows (create + add, f16)", "s", t_ingest,
                               note=f"{n / t_ingest:,.0f} rows/s, {disk / 1e9:.2f} GB on disk"
                                    f" ({how})"))
        log(f"(a) ingest {t_ingest:.1f} s ({n / t_ingest:,.0f} rows/s)")
        if args.ingest_only:
            return []

        # (b) cold, in a subprocess
        shutil.rmtree(path / "cache" / "dedup", ignore_errors=True)
        log(f"(b) find_duplicates cold (subprocess), cosine >= {THRESHOLD}")
        child = run_child(path, tmp / "child.json", THRESHOLD)
        q = grouping_quality(found_groups(child["groups"]), truth)
        t_cold = child["wall"]
        rss = rss_gb(child["rss_kib"])
        summary.append(Summary(f"(b) find_duplicates cold, {n:,} rows (subprocess)", "s",
                               t_cold, goal=f"<= {COLD_GOAL_S:.0f} s", ok=t_cold <= COLD_GOAL_S,
                               note=f"store open {child['open']:.2f} s, not counted"))
        summary.append(Summary("(b) find_duplicates peak RSS (subprocess)", "GB", rss,
                               goal=f"<= {RSS_GOAL_GB:.0f} GB", ok=rss <= RSS_GOAL_GB,
                               note=f"VmHWM; {rss_gb(child['rss_before_kib']):.2f} GB "
                                    "after imports + open"))
        summary.append(Summary("(b) planted-pair recall", "", q["pair_recall"],
                               goal=f">= {RECALL_CHECK} (check)",
                               ok=q["pair_recall"] >= RECALL_CHECK,
                               note=f"pair precision {q['pair_precision']:.4f}"))
        summary.append(Summary("(b) group F1 vs planted groups", "", q["group_f1"],
                               note=f"{q['found_groups']:,} found / {q['true_groups']:,} planted,"
                                    f" P {q['group_precision']:.4f} R {q['group_recall']:.4f}"))
        ci = child["info"]
        details.append(f"  (b) summary {child['summary']}; k={ci['k']} "
                       f"expansion={ci['expansion']} searched={ci['searched']:,} "
                       f"searched_deeper={ci.get('searched_deeper')} "
                       f"searched_exactly={ci.get('searched_exactly')} "
                       f"unreached={ci.get('unreached')} candidates={ci.get('candidates')} "
                       f"lsh={ci.get('lsh')} "
                       f"seconds={ci['seconds']}")
        log(f"(b) cold {t_cold:.1f} s, peak RSS {rss:.2f} GB, recall {q['pair_recall']:.4f}")

        # (c) warm re-threshold and regroup
        log(f"(c) find_duplicates warm, threshold {WARM_THRESHOLD}")
        t0 = time.perf_counter()
        warm = wb.find_duplicates(store, method="cosine", threshold=WARM_THRESHOLD,
                                  progress=False)
        t_warm = time.perf_counter() - t0
        cached = bool(warm.info["cached"])
        summary.append(Summary(f"(c) re-threshold {WARM_THRESHOLD} from the cache", "s", t_warm,
                               goal=f"<= {WARM_GOAL_S:.0f} s (cache hit)",
                               ok=t_warm <= WARM_GOAL_S and cached,
                               note=f"cached={cached}, {warm.summary['groups']:,} groups"))
        t0 = time.perf_counter()
        rg = warm.regroup(REGROUP_THRESHOLD)
        t_regroup = time.perf_counter() - t0
        summary.append(Summary(f"(c) result.regroup({REGROUP_THRESHOLD})", "s", t_regroup,
                               note=f"{rg.summary['groups']:,} groups"))
        log(f"(c) warm {t_warm:.2f} s (cached={cached}), regroup {t_regroup:.2f} s")
        del warm, rg

        m = min(args.anchor_n, n)
        if m == n:
            anchor_step(args, frame, vectors, n, tmp, summary, details,
                        (store, child["pairs"], t_cold, int(child["info"]["expansion"] or 24)))

        # (d) incremental
        rng = np.random.default_rng([args.seed, 7])
        new = args.new_rows
        n_dup = max(1, int(new * NEW_DUP_SHARE))
        new_frame, new_vecs = fresh_rows(args.data, new, frame, seed=args.seed)
        planted = frame.get_column("dup_group").is_not_null().to_numpy()
        old = rng.choice(np.flatnonzero(~planted), size=n_dup, replace=False)
        new_vecs[:n_dup] = near_copies(rng, vectors[old], NOISE)
        new_ids = new_frame.get_column("id").to_list()
        min_cos = float(np.einsum("ij,ij->i", new_vecs[:n_dup], vectors[old]).min())
        truth_new = [[frame["id"][int(o)], new_ids[i]] for i, o in enumerate(old)]
        log(f"(d) add {new:,} rows ({n_dup:,} near-duplicates of old rows, cos >= "
            f"{min_cos:.4f}) in one commit")
        t0 = time.perf_counter()
        store.add(new_frame, vectors=new_vecs, progress=False)
        t_add = time.perf_counter() - t0
        log("(d) find_duplicates only_new")
        t0 = time.perf_counter()
        inc = wb.find_duplicates(store, method="cosine", threshold=THRESHOLD, only_new=True,
                                 progress=True)
        t_inc = time.perf_counter() - t0
        searched = int(inc.info["searched"])
        gid = dict(zip(inc.groups["id"].to_list(), inc.groups["group"].to_list(), strict=True))
        hit = sum(1 for a, b in truth_new if a in gid and gid.get(a) == gid.get(b))
        r_new = hit / len(truth_new)
        q_all = grouping_quality(found_groups(inc.groups), truth + truth_new)
        summary.append(Summary(f"(d) only_new after +{new:,} rows", "s", t_inc,
                               goal=f"<= {INCREMENTAL_GOAL_S:.0f} s",
                               ok=t_inc <= INCREMENTAL_GOAL_S,
                               note=f"commit {t_add:.1f} s; {inc.info['notes'][0]}"))
        summary.append(Summary("(d) rows searched", "rows", searched, goal=f"== {new:,}",
                               ok=searched == new))
        summary.append(Summary("(d) new-vs-old planted recall", "", r_new,
                               goal=f">= {RECALL_CHECK} (check)", ok=r_new >= RECALL_CHECK,
                               note=f"{hit:,}/{len(truth_new):,}; all planted pairs "
                                    f"{q_all['pair_recall']:.4f}, group F1 "
                                    f"{q_all['group_f1']:.4f}"))
        log(f"(d) only_new {t_inc:.2f} s, searched {searched:,}, recall {r_new:.4f}")
        details.append(f"  (d) searched={searched:,} "
                       f"searched_deeper={inc.info.get('searched_deeper')} "
                       f"searched_exactly={inc.info.get('searched_exactly')} "
                       f"seconds={inc.info['seconds']}")
        del inc
        store.close()

        # (e) anchor on a subset (done before (d) when the subset is the whole store)
        if m < n:
            anchor_step(args, frame, vectors, n, tmp, summary, details, None)
        note = data.note
    finally:
        load = " ".join(f"{x:.1f}" for x in os.getloadavg())
        if args.keep:
            log(f"stores kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    print(f"scale: {note}: {g * GROUP_SIZE:,} planted rows ({g * GROUP_SIZE / n:.1%}); store "
          f"f16 (connectivity 16, expansion_add 128); find_duplicates(method='cosine', "
          f"threshold={THRESHOLD}, k=16; candidates='auto', i.e. LSH at this threshold); "
          f"cores={cores()}, load average {load}")
    print("  ratio = ours / anchor (<1 is faster); anchor of the cold row = exact numpy "
          "extrapolated quadratically from the subset; recall = share of true pairs found")
    print()
    rows = []
    summary.sort(key=lambda s: s.step[:3])  # (a) .. (e), each step's rows in order
    for s in summary:
        def num(v: float | None, unit: str) -> str:
            if v is None:
                return "-"
            if unit == "rows":
                return f"{v:,.0f}"
            if unit == "":
                return f"{v:.4f}"
            return f"{v:,.2f}"
        ratio = fmt_ratio(s.ours / s.anchor) if s.ours is not None and s.anchor else ""
        rows.append((s.step, s.unit, num(s.ours, s.unit), num(s.anchor, s.unit), ratio, s.goal,
                     "" if s.ok is None else verdict(s.ok), s.note))
    print(render(("step", "unit", "ours", "anchor", "ratio", "goal", "result", "note"), rows,
                 {2, 3, 4}))
    print()
    print("\n".join(details))
    return [f"  {verdict(bool(s.ok))}  scale: {s.step}: {s.ours:.4g} {s.unit} ({s.goal})"
            for s in summary if s.ok is not None and s.ours is not None]


# ============================================================================ main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--part", default="all", choices=("quality", "scale", "all"))
    p.add_argument("--datasets", default=",".join(DATASETS), help="quality: labelled sets")
    p.add_argument("--n", type=int, default=1_000_000, help="scale: rows of the synthetic store")
    p.add_argument("--data", default="stream", choices=DATA_KINDS,
                   help="scale: synthetic_stream (8 near-isotropic clusters) or "
                        "clustered_vectors (low intrinsic dimension, like text embeddings), "
                        "both with planted groups")
    p.add_argument("--expansions", default="",
                   help="scale: extra search breadths of find_duplicates on the subset "
                        "(comma-separated; empty for none)")
    p.add_argument("--new-rows", type=int, default=NEW_ROWS, help="scale: rows of the "
                   "incremental commit")
    p.add_argument("--anchor-n", type=int, default=ANCHOR_N,
                   help="scale: rows of the exact-numpy subset")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tmp", type=Path, default=Path("/tmp"),
                   help="parent folder for temporary stores")
    p.add_argument("--keep", action="store_true", help="keep the temporary stores")
    p.add_argument("--store-cache", type=Path, default=None,
                   help="scale: keep the ingested store in this folder and, when it is there "
                        "already (same --data, --n, --seed), copy it instead of ingesting again")
    p.add_argument("--ingest-only", action="store_true",
                   help="scale: stop after the ingest (with --store-cache: build the store)")
    p.add_argument("--strict", action="store_true", help="exit 1 when a goal fails")
    p.add_argument("--child-dedup", default=None, help=argparse.SUPPRESS)
    p.add_argument("--child-out", default=None, help=argparse.SUPPRESS)
    p.add_argument("--child-threshold", type=float, default=THRESHOLD, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.datasets = name_list(p, "--datasets", args.datasets, DATASETS)
    try:
        args.expansions = sorted({int(x) for x in args.expansions.split(",") if x.strip()})
    except ValueError:
        p.error(f"--expansions: expected comma-separated integers, got {args.expansions!r}")
    min_n = 2 * GROUP_SIZE * max(1, args.n // ROWS_PER_GROUP_SHARE)
    if args.child_dedup is None and args.part != "quality" and args.n < max(min_n, 1000):
        p.error(f"--n: expected at least {max(min_n, 1000)}, got {args.n}")
    if min(args.new_rows, args.anchor_n) < 10:
        p.error("--new-rows and --anchor-n: expected at least 10")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child_dedup is not None:
        return child_dedup(args)
    t_start = time.perf_counter()
    lines: list[str] = []
    if args.part in ("quality", "all"):
        lines += run_quality(args)
        print()
    if args.part in ("scale", "all"):
        lines += run_scale(args)
        print()
    print("goals")
    print("\n".join(lines))
    print(f"\ntotal {time.perf_counter() - t_start:.0f} s")
    return 1 if args.strict and any(ln.lstrip().startswith("FAIL") for ln in lines) else 0


if __name__ == "__main__":
    sys.exit(main())
