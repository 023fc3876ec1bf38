"""``workbench compress`` and ``distill``: what compression costs on a store, and a student."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInputError, MissingColumnError
from ._common import _fit, _plural, _split, _text_column, _where

if TYPE_CHECKING:
    import polars as pl

#: Recall@k (vector dtypes) or knn_recall (models) the advice asks of a configuration.
GOOD_RECALL = 0.95
GOOD_KNN_RECALL = 0.9

#: ``workbench compress --out`` writers, by file suffix.
WRITERS = {".parquet": "write_parquet", ".csv": "write_csv", ".json": "write_json"}


def _dims(value: str) -> list[int | None]:
    out: list[int | None] = []
    for item in _split(value, option="--dims"):
        if item.lower() in ("full", "none"):
            out.append(None)
            continue
        try:
            d = int(item)
        except ValueError:
            d = 0
        if d < 1:
            raise InvalidInputError(
                f"--dims: expected positive integers or 'full', e.g. full,256,64; got {item!r}")
        out.append(d)
    return out


def _variants(args: argparse.Namespace, teacher: Any) -> dict[str, Any]:
    """The quantized copies (--models) and saved students (--student) to compare."""
    from ..compress import SCHEMES, StudentEmbedder, quantize_model

    schemes = [] if args.models is None else _split(args.models, option="--models")
    unknown = [s for s in schemes if s not in SCHEMES]
    if unknown:
        raise InvalidInputError(f"--models: expected schemes among {list(SCHEMES)}, got "
                                f"{unknown}")
    if teacher is None:
        raise InvalidInputError("--models/--student: the store has no embedding model to "
                                "compare against (its vectors were added without one)")
    variants: dict[str, Any] = {}
    for folder in args.student or []:
        student = StudentEmbedder.load(folder)
        if student.config["teacher"]["weights_hash"] != teacher.fingerprint.weights_hash:
            print(f"workbench: warning: --student {folder}: distilled from "
                  f"{student.config['teacher']['name']}, not from the store's model "
                  f"{teacher.fingerprint.name}", file=sys.stderr)
        variants[f"{student.fingerprint.name} ({Path(folder).name})"] = student
    for scheme in schemes:
        variants[scheme] = quantize_model(teacher, scheme)
    return variants


def _sts(name: str) -> pl.DataFrame | None:
    from ..evaldata import EvalDataMissingError, sts_pairs

    if name == "none":
        return None
    try:
        return sts_pairs(name, "test")
    except EvalDataMissingError as exc:
        print(f"workbench: warning: --sts {name}: {_fit(exc, 200)}; sts_spearman left out",
              file=sys.stderr)
        return None


def compress(args: argparse.Namespace) -> int:
    """Measure what compression costs on a store, print the table and write it to --out.

    Without --models or --student: workbench.compare_vector_dtypes over the store's vectors:
    for each index dtype (f32, f16, bf16, i8, b1) x dimension cut (PCA fitted on the store, or
    plain truncation) x rescoring with the full-precision vectors, the bytes per vector, index
    memory, build time, queries per second and recall@k against exact float32 search, and
    which reduction keeps more recall at each cut. With them: workbench.compare_models of each
    quantized copy of the store's model (--models, e.g. onnx-int8,bf16) and each saved
    distilled student (--student DIR) against the store's model on a seeded sample of its
    texts: size, texts/s, mean cosine, neighbours kept, k-means cluster agreement,
    near-duplicate pair agreement, drift-flag agreement on a planted stream and, where the
    evaluation data is found, STS Spearman. The file is Parquet, CSV or JSON by its suffix.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed options of ``workbench compress``.

    Returns
    -------
    int
        The exit status, 0.

    Raises
    ------
    NotAStoreError
        --store is not a store.
    InvalidInputError
        An --out suffix other than .parquet/.csv/.json, an unknown dtype or scheme, bad
        --dims, a --where that does not parse, --models on a store without a model, a
        scheme this machine cannot run (UnsupportedSchemeError names what is missing).
    MissingColumnError
        --text or --where names a missing column.
    """
    import polars as pl

    from ..compress import best_reduction, compare_models, compare_vector_dtypes
    from ..store import Store

    out = Path(args.out)
    writer = WRITERS.get(out.suffix.lower())
    if writer is None:
        raise InvalidInputError(f"--out: expected a .parquet, .csv or .json file, got "
                                f"{out.name!r}")
    where = _where(args.where)
    models = args.models is not None or bool(args.student)
    with Store.open(args.store, readonly=True) as store:
        if not models:
            table = compare_vector_dtypes(
                store, dtypes=_split(args.dtypes, option="--dtypes"), dims=_dims(args.dims),
                k=args.k, queries=args.queries, where=where, random_state=args.seed,
                progress=args.progress)
            cut = table["reduce"].drop_nulls().n_unique() > 1
            extra = best_reduction(table, by=("dtype",)) if cut else None
            what = f"{table.height} index configurations of {len(store):,} rows"
        else:
            schema = store.scan().collect_schema()
            text = _text_column(schema, args.text, what="the store")
            if text is None:
                raise MissingColumnError("--text: the store has no text column to embed; "
                                         f"columns are {schema.names()}")
            variants = _variants(args, store.embedder)
            lf = store.scan() if where is None else store.scan().filter(where)
            texts = lf.select(text).collect()[text].drop_nulls()
            texts = texts.sample(min(args.texts, texts.len()), seed=args.seed, shuffle=True)
            table = compare_models(store.embedder, variants, corpus=texts.to_list(),
                                   sts=_sts(args.sts), k=args.k, drift=not args.no_drift,
                                   random_state=args.seed, progress=args.progress)
            extra = None
            what = (f"{len(variants)} models against {store.embedder.fingerprint.name} on "
                    f"{texts.len():,} stored texts")
    out.parent.mkdir(parents=True, exist_ok=True)
    getattr(table, writer)(out)
    objectives = ({"bytes_on_disk": "min", "texts_per_s": "max", "knn_recall": "max"} if models
                  else {"bytes_per_vector": "min", "qps": "max", "recall_at_k": "max"})
    front = pareto_front(table, objectives)
    config = pl.Config(tbl_rows=200, tbl_cols=-1, tbl_width_chars=200,
                       tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True,
                       fmt_str_lengths=40)
    print(_advice(front, models=models))
    with config:
        print(f"Pareto front ({_plural(front.height, 'configuration')} of {table.height} that "
              "nothing beats on size, speed and quality at once):")
        print(_readable(front, models=models))
        if args.full:
            print("full table:")
            print(table.drop("note", strict=False))
        if extra is not None:
            print("PCA or truncation at each cut (best_reduction):")
            print(extra)
    print(f"wrote {out} ({what}, the full table: {', '.join(table.columns)})")
    return 0


#: What the printed Pareto front shows of each kind of table: column -> decimals (None: as
#: is). The file written by --out keeps every column at full precision.
SHOWN = {
    True: {"name": None, "role": None, "dim": None, "mb_on_disk": 1, "texts_per_s": 0,
           "knn_recall": 3, "mean_cos_to_teacher": 3, "cluster_ari": 3, "dup_agreement": 3},
    False: {"dtype": None, "index": None, "dim": None, "reduce": None, "rescore": None,
            "bytes_per_vector": None, "index_mb": 2, "qps": 0, "recall_at_k": 3},
}


def _readable(front: pl.DataFrame, *, models: bool) -> pl.DataFrame:
    """The columns of the front a reader compares, rounded (sizes in MB)."""
    import polars as pl

    if "bytes_on_disk" in front.columns:
        front = front.with_columns(mb_on_disk=pl.col("bytes_on_disk") / 1e6)
    cols = {c: d for c, d in SHOWN[models].items() if c in front.columns}
    return front.select(
        pl.col(c).round(d).cast(pl.Int64 if d == 0 else pl.Float64) if d is not None
        else pl.col(c) for c, d in cols.items())


def pareto_front(table: pl.DataFrame, objectives: dict[str, str]) -> pl.DataFrame:
    """The rows of `table` no other row beats on every objective, by the first objective.

    Parameters
    ----------
    table : polars.DataFrame
        One row per configuration.
    objectives : dict of str to {"min", "max"}
        Columns to minimise or maximise; those missing from `table` are left out, and a null
        counts as the worst value.

    Returns
    -------
    polars.DataFrame
        The non-dominated rows, sorted by the first objective (best first).
    """
    import numpy as np

    cols = {c: d for c, d in objectives.items() if c in table.columns}
    if not cols or table.height == 0:
        return table
    # Each objective as a value to maximise, nulls worst.
    x = np.column_stack([
        (table[c].cast(float).to_numpy() * (1 if d == "max" else -1)) for c, d in cols.items()])
    x = np.where(np.isnan(x), -np.inf, x)
    ge = (x[:, None, :] >= x[None, :, :]).all(-1)
    gt = (x[:, None, :] > x[None, :, :]).any(-1)
    dominated = (ge & gt).any(0)
    first, how = next(iter(cols.items()))
    return table.filter(~dominated).sort(first, descending=how == "max", nulls_last=True)


def _advice(front: pl.DataFrame, *, models: bool) -> str:
    """One sentence: the configuration of `front` to pick, and why."""
    import polars as pl

    if models:
        variants = front.filter(pl.col("role") == "variant") if "role" in front.columns else front
        good = variants.filter(pl.col("knn_recall") >= GOOD_KNN_RECALL)
        if good.height == 0:
            return (f"advice: no model keeps {GOOD_KNN_RECALL:.0%} of the store model's "
                    "neighbours (knn_recall); stay with the store's model, or distill a "
                    "student on more texts (workbench distill --epochs N)")
        best = good.sort("texts_per_s", descending=True, nulls_last=True).row(0, named=True)
        return (f"advice: {best['name']} keeps {best['knn_recall']:.1%} of the neighbours at "
                f"{best['texts_per_s']:,.0f} texts/s, the fastest model keeping at least "
                f"{GOOD_KNN_RECALL:.0%}")
    good = front.filter(pl.col("recall_at_k") >= GOOD_RECALL)
    pick = (good.sort(["bytes_per_vector", "qps"], descending=[False, True])
            if good.height else front.sort("recall_at_k", descending=True))
    best = pick.row(0, named=True)
    how = (f"{best['dtype']} {best['index']}, dim {best['dim']}"
           + (f" by {best['reduce']}" if best.get("reduce") else "")
           + (" with rescoring" if best.get("rescore") else ""))
    if not good.height:
        return (f"advice: no configuration reaches recall@k {GOOD_RECALL:.0%}; the best is "
                f"{how} (recall {best['recall_at_k']:.3f}); keep the vectors at full precision")
    return (f"advice: {how} is the smallest index keeping recall@k >= {GOOD_RECALL:.0%}: "
            f"{best['bytes_per_vector']:,} bytes per vector, recall {best['recall_at_k']:.3f}, "
            f"{best['qps']:,.0f} queries/s")


def distill(args: argparse.Namespace) -> int:
    """Train a small student of a store's model on the store's texts and save it to --out.

    Runs workbench.distill with the store's embedding model as the teacher and its --text
    column (a seeded sample of --texts rows, after --where) as the corpus. A static student
    is a token table of --dim dimensions (small and fast on CPU); a layers student keeps
    some of the teacher's layers. The folder written is what compress --student DIR reads,
    to measure what the student keeps of the teacher.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed options of ``workbench distill``.

    Returns
    -------
    int
        The exit status, 0.

    Raises
    ------
    NotAStoreError
        --store is not a store.
    InvalidInputError
        --out exists (without --force), the store has no transformer model to distill (its
        vectors were added without one, or with the hashing embedder), a --where that does
        not parse or selects no texts.
    MissingColumnError
        --text or --where names a missing column.
    """
    from ..compress import distill as run_distill
    from ..store import Store

    out = Path(args.out)
    if out.exists() and not args.force:
        raise InvalidInputError(f"--out: {out} exists; expected a new folder (or --force to "
                                "replace it)")
    _where(args.where)  # a syntax error before the store is opened
    with Store.open(args.store, readonly=True) as store:
        schema = store.scan().collect_schema()
        where = _where(args.where, schema)
        text = _text_column(schema, args.text, what="the store")
        if text is None:
            raise MissingColumnError("--text: the store has no text column to train on; "
                                     f"columns are {schema.names()}")
        teacher = store.embedder
        if teacher is None or not hasattr(teacher, "load"):
            name = "none" if teacher is None else teacher.fingerprint.name
            raise InvalidInputError(
                f"--store: expected a store embedded with a transformer model (minilm) to "
                f"distill, got {name}")
        lf = store.scan() if where is None else store.scan().filter(where)
        texts = lf.select(text).collect()[text].drop_nulls()
        if args.texts is not None:
            texts = texts.sample(min(args.texts, texts.len()), seed=args.seed, shuffle=True)
        if texts.len() == 0:
            raise InvalidInputError("--where: selects no texts to train on")
        if out.exists():
            shutil.rmtree(out)
        student = run_distill(teacher, student=args.student, corpus=texts.to_list(),
                              dim=args.dim, epochs=args.epochs, random_state=args.seed,
                              progress=args.progress, out=out)
    print(f"wrote {out}: a {args.student} student ({student.fingerprint.name}) of "
          f"{teacher.fingerprint.name}, trained on {_plural(texts.len(), 'text')}")
    print(f"compare it: workbench compress --store {args.store} --student {out} --out "
          "models.csv")
    return 0
