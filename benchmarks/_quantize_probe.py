"""fp32 vs each quantization scheme of MiniLM: speed, STS-B Spearman, neighbour recall@10.

Usage: python benchmarks/_quantize_probe.py [--limit 2000] [--schemes bf16,onnx-int8,...]
       [--threads 2]

Throughput is the best of 3 interleaved rounds (wall and process CPU seconds) on 64 python-docs
paragraphs ("long") and 256 STS-B sentences ("short"); quality uses the STS-B test pairs and
`--limit` python-docs paragraphs and AG News texts (top-10 cosine neighbours vs fp32's).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# onnxruntime before workbench: see workbench.compress.quantize._onnx_int8 (usearch breaks it).
with contextlib.suppress(ImportError):
    import onnxruntime  # noqa: F401

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

from workbench.compress.quantize import SCHEMES, quantize_model  # noqa: E402
from workbench.datasets import python_docs  # noqa: E402
from workbench.embed import MiniLM  # noqa: E402
from workbench.evaldata import ag_news, sts_pairs  # noqa: E402


def _ag_news(limit: int) -> list[str]:
    df = ag_news()
    rows = np.sort(np.random.default_rng(0).choice(df.height, min(limit, df.height),
                                                   replace=False))
    return df["text"].to_numpy()[rows].tolist()


def _topk(v: np.ndarray, k: int = 10) -> np.ndarray:
    s = v @ v.T
    np.fill_diagonal(s, -np.inf)
    return np.argpartition(-s, k, axis=1)[:, :k]


def _recall(ref: np.ndarray, got: np.ndarray, k: int = 10) -> float:
    a, b = _topk(ref, k), _topk(got, k)
    return float(np.mean([len(set(x) & set(y)) / k for x, y in zip(a, b, strict=True)]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=2000)
    ap.add_argument("--schemes", default=",".join(SCHEMES))
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    base = MiniLM(cache=False)
    models = {"fp32": base}
    for scheme in args.schemes.split(","):
        try:
            models[scheme] = quantize_model(base, scheme)
            models[scheme].cache = False
        except Exception as exc:  # noqa: BLE001 - report and go on
            print(f"{scheme}: {type(exc).__name__}: {exc}")
    sts = sts_pairs("stsb", "test")
    long_t = python_docs(limit=64)["text"].to_list()
    short_t = sts["a"].to_list()[:256]
    best: dict[tuple[str, str], tuple[float, float]] = {}
    for _ in range(3):
        for name, m in models.items():
            for kind, texts in (("long", long_t), ("short", short_t)):
                w, c = time.perf_counter(), time.process_time()
                m.embed(texts, progress=False)
                w, c = time.perf_counter() - w, time.process_time() - c
                old = best.get((name, kind), (np.inf, np.inf))
                best[(name, kind)] = (min(old[0], w), min(old[1], c))
    docs = python_docs(limit=args.limit)["text"].to_list()
    ag = _ag_news(args.limit)
    rows, ref = [], {}
    for name, m in models.items():
        va, vb = m.embed(sts["a"].to_list(), progress=False), m.embed(sts["b"].to_list(),
                                                                       progress=False)
        vd, vg = m.embed(docs, progress=False), m.embed(ag, progress=False)
        if name == "fp32":
            ref = {"a": va, "d": vd, "g": vg}
        sp = float(spearmanr(np.sum(va * vb, axis=1), sts["score"].to_numpy()).statistic)
        f32 = best[("fp32", "long")], best[("fp32", "short")]
        lw, lc = best[(name, "long")]
        sw, sc = best[(name, "short")]
        rows.append({
            "scheme": name, "long_tps": len(long_t) / lw, "long_x": f32[0][0] / lw,
            "long_x_cpu": f32[0][1] / lc, "short_tps": len(short_t) / sw,
            "short_x": f32[1][0] / sw, "short_x_cpu": f32[1][1] / sc, "sts_spearman": sp,
            "cos_to_fp32": float(np.mean(np.sum(va * ref["a"], axis=1))),
            "recall10_docs": _recall(ref["d"], vd), "recall10_ag": _recall(ref["g"], vg),
        })
        print(rows[-1], flush=True)
    table = pl.DataFrame(rows)
    fp = table.filter(pl.col("scheme") == "fp32")["sts_spearman"][0]
    table = table.with_columns((pl.col("sts_spearman") / fp).alias("sts_vs_fp32"))
    with pl.Config(tbl_rows=20, tbl_cols=20, float_precision=3, tbl_width_chars=250):
        print(f"threads={args.threads} limit={args.limit} (x = speed-up vs fp32, wall / CPU)")
        print(table)


if __name__ == "__main__":
    main()
