"""Compare smaller embedders with a teacher on one corpus: :func:`compare_models`.

Every number comes from a run on the corpus given: the embedding speed is timed with the
embedding cache off, and each downstream tool (neighbour search, clustering, near-duplicate
pairs, drift) is run on the teacher's vectors and on each variant's, then compared.
"""

from __future__ import annotations

import math
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray
from tqdm.auto import tqdm

from .._validation import (
    check_column,
    check_frame,
    check_positive_int,
    check_texts,
    check_vectors,
)
from ..embed.base import BaseEmbedder, Embedder
from ..errors import EmptyInputError, InvalidInputError

__all__ = ["compare_models", "pareto_front"]

#: Share of a model's corpus pairs counted as near duplicates by default (its own 99.5th
#: percentile of pairwise cosine).
DUP_QUANTILE = 0.995
#: Rows whose pairs set the default duplicate threshold; larger corpora use a seeded sample.
_QUANTILE_ROWS = 4_000
#: Rows per block of the exact cosine self-join.
_BLOCK = 1_024
#: The planted drift stream: months, the first month holding the new topic, its target share.
#: Three months, the topic in the last only: one control window and one drifted window, each
#: a third of the corpus. With four months (topic from month 2) the teacher's own windows were
#: too small to be flagged reliably: hashing-256 on 300 python_docs texts flagged 3 of 6
#: drifted windows over three seeds, against 3 of 3 with this design.
DRIFT_PERIODS, DRIFT_CHANGE_AT, DRIFT_TOPIC_SHARE = 3, 2, 0.2
#: Fewest corpus texts for a drift stream (windows of about 20 rows).
DRIFT_MIN_TEXTS = 80

_SCHEMA: dict[str, Any] = {
    "name": pl.Utf8, "role": pl.Utf8, "dim": pl.Int64, "params": pl.Int64,
    "bytes_on_disk": pl.Int64, "texts_per_s": pl.Float64, "mean_cos_to_teacher": pl.Float64,
    "sts_spearman": pl.Float64, "knn_recall": pl.Float64, "cluster_ari": pl.Float64,
    "cluster_ari_reseed": pl.Float64,
    "dup_threshold": pl.Float64, "dup_pairs": pl.Int64, "dup_agreement": pl.Float64,
    "drift_agreement": pl.Float64, "drift_vs_truth": pl.Float64, "note": pl.Utf8,
}


# -- validation ---------------------------------------------------------------------------

def _check_embedder(obj: Any, name: str) -> Embedder:
    if not isinstance(obj, Embedder):
        raise InvalidInputError(
            f"{name}: expected an Embedder (dim, fingerprint and embed(texts)), got "
            f"{type(obj).__name__}")
    return obj


def _named_variants(variants: Any) -> dict[str, Embedder]:
    if isinstance(variants, Mapping):
        items = [(str(k), v) for k, v in variants.items()]
    elif isinstance(variants, Sequence) and not isinstance(variants, str):
        items = []
        for i, v in enumerate(variants):
            emb = _check_embedder(v, f"variants[{i}]")
            items.append((emb.fingerprint.name, emb))
    else:
        raise InvalidInputError(
            f"variants: expected a dict name -> Embedder or a list of Embedders, got "
            f"{type(variants).__name__}")
    if not items:
        raise EmptyInputError("variants: expected at least one embedder to compare, got none")
    names = [n for n, _ in items]
    if len(set(names)) != len(names):
        raise InvalidInputError(
            f"variants: expected distinct names, got {names}; pass a dict to name them")
    return {n: _check_embedder(v, f"variants[{n!r}]") for n, v in items}


def _check_sts(sts: Any) -> pl.DataFrame | None:
    if sts is None:
        return None
    df = check_frame(sts, name="sts")
    for col in ("a", "b", "score"):
        check_column(df, col, name="sts")
    df = df.select("a", "b", "score").drop_nulls()
    if df.height < 3:
        raise EmptyInputError(f"sts: expected at least 3 scored pairs, got {df.height}")
    if df["a"].dtype != pl.Utf8 or df["b"].dtype != pl.Utf8:
        raise InvalidInputError("sts: expected text columns a and b")
    if not df["score"].dtype.is_numeric():
        raise InvalidInputError(f"sts: expected a numeric score column, got {df['score'].dtype}")
    return df


# -- what the model is: parameters and files ----------------------------------------------

def _torch_module(embedder: Any) -> Any:
    """The embedder's torch module, if it exposes one (itself, ``.model`` or ``.load()``)."""
    # A torch module exists only once torch is imported (the embedder has run by now), and
    # importing it here would cost seconds for embedders without one (hashing).
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    if isinstance(embedder, torch.nn.Module):
        return embedder
    model = getattr(embedder, "model", None)
    if isinstance(model, torch.nn.Module):
        return model
    load = getattr(embedder, "load", None)
    # Only an instance method: a classmethod ``load(path)`` (a saved student's) opens a folder.
    if callable(load) and getattr(load, "__self__", None) is embedder:
        model = load()
        if isinstance(model, torch.nn.Module):
            return model
    return None


def _count_params(embedder: Any) -> tuple[int | None, Any]:
    module = _torch_module(embedder)
    declared = getattr(embedder, "n_params", None)
    # A quantized model packs its weights (no torch parameters left): it says its count.
    if isinstance(declared, int) and not isinstance(declared, bool):
        return declared, module
    if module is not None:
        return int(sum(p.numel() for p in module.parameters())), module
    params = getattr(embedder, "parameters", None)
    if callable(params):
        try:
            return int(sum(int(np.prod(p.shape)) for p in params())), None
        except (TypeError, AttributeError):
            return None, None
    return None, None


def _model_folder(embedder: Any, module: Any) -> Path | None:
    params = dict(embedder.fingerprint.params)
    candidates: list[Any] = [params.get("path"), getattr(embedder, "path", None)]
    # An embedder that says where it lives (a student: None until saved) is taken at its word:
    # a layer student's copied encoder still names the teacher's folder in its config.
    declared = "path" in params or hasattr(embedder, "path")
    if module is not None and not declared:
        inner = [module]
        if hasattr(module, "__getitem__") and len(getattr(module, "_modules", {})) > 0:
            first = next(iter(module._modules.values()))
            inner.append(getattr(first, "auto_model", first))
        for m in inner:
            cfg = getattr(m, "config", None)
            candidates += [getattr(m, "name_or_path", None),
                           getattr(cfg, "_name_or_path", None)]
    for c in candidates:
        if isinstance(c, str | Path) and str(c) and Path(c).exists():
            return Path(c)
    return None


def _model_bytes(embedder: Any, module: Any) -> int | None:
    """Bytes of the model as saved, else None.

    What the embedder declares (``nbytes``: a quantized model has no folder of its own), else
    the files of its folder.
    """
    declared = getattr(embedder, "nbytes", None)
    if isinstance(declared, int) and not isinstance(declared, bool):
        return declared
    folder = _model_folder(embedder, module)
    return None if folder is None else _size_on_disk(folder)


def _size_on_disk(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return int(sum(f.stat().st_size for f in path.rglob("*") if f.is_file()))


@contextmanager
def _cache_off(embedder: Any) -> Iterator[bool]:
    """Disable a :class:`BaseEmbedder`'s cache for the block; yields whether it could."""
    if not isinstance(embedder, BaseEmbedder):
        yield False
        return
    saved = embedder.cache
    embedder.cache = False
    try:
        yield True
    finally:
        embedder.cache = saved


def _embed_timed(embedder: Embedder, texts: list[str], name: str
                 ) -> tuple[NDArray[np.float32], float, str | None]:
    with _cache_off(embedder) as off:
        embedder.embed(texts[:1], progress=False)  # loads the model outside the timing
        start = time.perf_counter()
        vecs = embedder.embed(texts, progress=False)
        seconds = time.perf_counter() - start
    vecs = check_vectors(vecs, dim=embedder.dim, name=f"{name} embeddings", allow_1d=False)
    if vecs.shape[0] != len(texts):
        raise InvalidInputError(
            f"{name}: expected {len(texts)} vectors from embed, got {vecs.shape[0]}")
    note = None if off else "timed as is: not a BaseEmbedder, its caching is unknown"
    return vecs, len(texts) / max(seconds, 1e-9), note


# -- the comparisons ----------------------------------------------------------------------

def _unit(x: NDArray[np.float32]) -> NDArray[np.float32]:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def _threshold(u: NDArray[np.float32], rng: np.random.Generator) -> float:
    n = u.shape[0]
    rows = np.arange(n) if n <= _QUANTILE_ROWS else np.sort(
        rng.choice(n, _QUANTILE_ROWS, replace=False))
    sims = u[rows] @ u[rows].T
    return float(np.quantile(sims[np.triu_indices(rows.size, 1)], DUP_QUANTILE))


def _self_join(u: NDArray[np.float32], k: int, threshold: float
               ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Exact cosine: each row's `k` nearest other rows, and the pairs ``i < j`` >= threshold.

    Pairs are coded ``i * n + j``.
    """
    n = u.shape[0]
    knn = np.empty((n, k), dtype=np.int64)
    pairs: list[NDArray[np.int64]] = []
    for start in range(0, n, _BLOCK):
        stop = min(start + _BLOCK, n)
        sims = u[start:stop] @ u.T
        local = np.arange(stop - start)
        sims[local, local + start] = -np.inf
        knn[start:stop] = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        i, j = np.nonzero(sims >= threshold)
        i = i + start
        keep = j > i
        pairs.append(i[keep].astype(np.int64) * n + j[keep])
    return knn, np.unique(np.concatenate(pairs))


def _knn_recall(got: NDArray[np.int64], truth: NDArray[np.int64]) -> float:
    hits = sum(np.intersect1d(g, t).size for g, t in zip(got, truth, strict=True))
    return hits / truth.size


def _kmeans(u: NDArray[np.float32], n_clusters: int, random_state: int) -> NDArray[np.int64]:
    from sklearn.cluster import KMeans

    km = KMeans(n_clusters=n_clusters, n_init=4, random_state=random_state)
    return km.fit_predict(u).astype(np.int64)


def _drift_stream(labels: NDArray[np.int64], random_state: int
                  ) -> tuple[pl.DataFrame, list[int]]:
    """Timestamps for the corpus rows: the teacher's largest clusters appear at month 2."""
    from ..datasets import with_planted_drift

    sizes = np.bincount(labels)
    topic: list[int] = []
    for c in np.argsort(-sizes, kind="stable"):
        if sizes[topic].sum() >= DRIFT_TOPIC_SHARE * labels.size:
            break
        topic.append(int(c))
    frame = pl.DataFrame({"id": [str(i) for i in range(labels.size)],
                          "row": np.arange(labels.size), "topic": labels})
    stream = with_planted_drift(frame, "topic", topic, periods=DRIFT_PERIODS,
                                change_at=DRIFT_CHANGE_AT, random_state=random_state)
    return stream, topic


def _drift_flags(vectors: NDArray[np.float32], stream: pl.DataFrame, folder: Path,
                 random_state: int) -> pl.DataFrame:
    from ..analysis.drift import MIN_ROWS_FLOOR, compute_drift
    from ..store import Store

    rows = stream.get_column("row").to_numpy()
    min_rows = max(MIN_ROWS_FLOOR, min(50, stream.height // 10))
    with Store.create(folder, dim=vectors.shape[1], metric="cos") as store:
        store.add(stream.drop("row"), vectors=vectors[rows], progress=False)
        res = compute_drift(store, every="1mo", reference="first", min_rows=min_rows,
                            text=None, changes=False, random_state=random_state,
                            progress=False)
    return res.windows.select("start", "status", pl.col("flagged").fill_null(False))


def _drift_agreement(teacher: pl.DataFrame, other: pl.DataFrame) -> float | None:
    t = teacher.filter(pl.col("status") == "tested")
    joined = t.join(other.rename({"flagged": "other", "status": "other_status"}), on="start",
                    how="left")
    if joined.height == 0:
        return None
    same = joined["flagged"] == joined["other"].fill_null(False)
    return float(same.mean())  # type: ignore[arg-type]


def _drift_truth(windows: pl.DataFrame) -> float | None:
    w = windows.with_row_index("month").filter(pl.col("status") == "tested")
    if w.height == 0:
        return None
    truth = w["month"] >= DRIFT_CHANGE_AT
    return float((w["flagged"] == truth).mean())  # type: ignore[arg-type]


def _sts(embedder: Embedder, sts: pl.DataFrame) -> float | None:
    from scipy.stats import spearmanr

    texts = sorted(set(sts["a"].to_list()) | set(sts["b"].to_list()))
    vecs = _unit(check_vectors(embedder.embed(texts, progress=False), dim=embedder.dim,
                               name="sts embeddings", allow_1d=False))
    pos = {t: i for i, t in enumerate(texts)}
    a = vecs[[pos[t] for t in sts["a"].to_list()]]
    b = vecs[[pos[t] for t in sts["b"].to_list()]]
    rho = spearmanr(np.sum(a * b, axis=1), sts["score"].to_numpy()).statistic
    return None if not np.isfinite(rho) else float(rho)


def _jaccard(a: NDArray[np.int64], b: NDArray[np.int64]) -> float | None:
    union = np.union1d(a, b).size
    return None if union == 0 else np.intersect1d(a, b).size / union


def compare_models(
    teacher: Embedder,
    variants: Mapping[str, Embedder] | Sequence[Embedder],
    *,
    corpus: Sequence[str] | pl.Series,
    sts: pl.DataFrame | None = None,
    k: int = 10,
    n_clusters: int | None = None,
    dedup_threshold: float | None = None,
    drift: bool = True,
    random_state: int = 0,
    progress: bool = True,
) -> pl.DataFrame:
    """What each smaller embedder keeps of the teacher's behaviour on `corpus`, one row each.

    Each model embeds the corpus once, timed with its embedding cache off (after a one-text
    warm-up that loads the model). Its vectors are then compared with the teacher's by what
    the workbench's tools would do with them:

    - ``knn_recall``: of each text's `k` nearest other texts under the teacher (exact cosine),
      the share the model also ranks among its `k` nearest.
    - ``cluster_ari``: adjusted Rand index of k-means on the model's L2-normalised vectors
      against k-means on the teacher's (same `n_clusters`, same seed). k-means on the raw
      vectors, not the UMAP + HDBSCAN of :func:`~workbench.analysis.cluster.cluster`:
      it is deterministic for a seed and takes a fraction of a second on small corpora, and
      HDBSCAN's noise label and UMAP's stochastic layout would blur the comparison with
      variation that is not the model's. Read it against ``cluster_ari_reseed``, the ARI of
      the model's own k-means under another seed: where a corpus has no clear cluster
      structure, k-means moves that much by itself (400 MiniLM paragraphs of the Python
      docs, 14 clusters: ~0.4, and ~0.34 after noise of norm 0.003 per vector), and a variant
      near that value clusters as stably as the teacher does, not worse.
    - ``dup_agreement``: Jaccard index of the sets of near-duplicate pairs (exact cosine at
      least ``dup_threshold``) of the model and the teacher. By default each model's
      threshold is its own 99.5th percentile of pairwise cosine (on a 4,000-row sample above
      that size): cosine scales differ between models (hashing into fewer dimensions raises
      every cosine), so one absolute threshold would compare how many pairs each model
      finds rather than which; each model then flags the same share of pairs.
    - ``drift_agreement``: the corpus becomes a planted drift stream: the teacher's largest
      k-means clusters, about a fifth of the texts, appear only in the last of 3 months
      (:func:`~workbench.datasets.with_planted_drift`), so month 1 is a control and month 2
      drifted. Each model's vectors go into a temporary store and
      :func:`~workbench.analysis.drift.compute_drift` tests both months against the first;
      the column is the share of the tested windows whose flag matches the teacher's,
      ``drift_vs_truth`` the share matching the planted truth. The topic is the teacher's
      notion of one, and small corpora give small windows: below a few hundred texts even
      the teacher may miss it (then ``drift_vs_truth`` of the teacher says so).

    Parameters
    ----------
    teacher : Embedder
        The reference model.
    variants : dict of name -> Embedder, or list of Embedder
        The models to compare; a list is named by each fingerprint's name (distinct).
    corpus : sequence of str or polars Series
        Texts (e.g. ``python_docs()["text"]``); more than `k` of them. Memory grows as
        ``corpus**2`` for the duplicate threshold up to 4,000 texts, then linearly.
    sts : polars.DataFrame, optional
        Scored sentence pairs ``a, b, score`` (e.g. ``evaldata.sts_pairs("stsb", "test")``);
        ``sts_spearman`` is the Spearman correlation of the pairs' cosines with the scores.
    k : int, default 10
        Neighbours per text for ``knn_recall``.
    n_clusters : int, optional
        Clusters of the k-means; default ``round(sqrt(n / 2))``, between 2 and 30.
    dedup_threshold : float, optional
        One cosine threshold in (-1, 1] for every model, instead of each model's own 99.5th
        percentile.
    drift : bool, default True
        Run the planted-drift comparison (the slowest part: one store and one drift test
        per model). Needs at least 80 texts.
    random_state : int, default 0
        Seed of the k-means, the drift stream and tests and the threshold's sample.
    progress : bool, default True
        Show a progress bar over models.

    Returns
    -------
    polars.DataFrame
        One row per model, the teacher first: ``name: str``, ``role: str`` (``"teacher"`` or
        ``"variant"``), ``dim: i64``, ``params: i64`` (parameters of the torch module the
        embedder exposes as itself, ``.model`` or ``.load()``; else null), ``bytes_on_disk:
        i64`` (files of the model folder found in the fingerprint's ``path``, the embedder's
        ``path`` or the loaded model's ``name_or_path``; else null), ``texts_per_s: f64``,
        ``mean_cos_to_teacher: f64`` (mean cosine of each text's two vectors; null unless
        the dimensions match, and meaningful only for models trained into the teacher's
        space), ``sts_spearman: f64``, ``knn_recall: f64``, ``cluster_ari: f64``,
        ``dup_threshold: f64``, ``dup_pairs: i64``, ``dup_agreement: f64``,
        ``drift_agreement: f64``, ``drift_vs_truth: f64`` and ``note: str`` (why a value is
        null, or how it was measured; null when there is nothing to say). The teacher's
        own comparisons are computed too (1 by construction: a check of the pipeline).

    Raises
    ------
    InvalidInputError
        `teacher` or a variant is not an Embedder; repeated variant names; `k` not below the
        number of texts; a bad `n_clusters`, `dedup_threshold` or `random_state`; an
        embedder returning vectors of the wrong shape.
    EmptyInputError
        `corpus` or `variants` is empty; `sts` has fewer than 3 pairs.
    MissingColumnError
        `sts` lacks ``a``, ``b`` or ``score``.

    Examples
    --------
    >>> from workbench.compress.compare import compare_models
    >>> from workbench.datasets import python_docs
    >>> from workbench.embed import Hashing
    >>> texts = python_docs(limit=200)["text"]
    >>> df = compare_models(Hashing(256), {"h64": Hashing(64)}, corpus=texts, drift=False,
    ...                     progress=False)
    >>> df.select("name", "dim", "knn_recall").height
    2
    """
    teacher = _check_embedder(teacher, "teacher")
    named = _named_variants(variants)
    texts = check_texts(corpus, name="corpus")
    n = len(texts)
    k = check_positive_int(k, name="k")
    if k >= n:
        raise InvalidInputError(f"k: expected fewer neighbours than the corpus's {n} texts, "
                                f"got {k}")
    if n_clusters is None:
        n_clusters = int(min(30, max(2, round(math.sqrt(n / 2)))))
    else:
        n_clusters = check_positive_int(n_clusters, name="n_clusters")
        if not 2 <= n_clusters < n:
            raise InvalidInputError(
                f"n_clusters: expected 2 to {n - 1} (below the corpus size), got {n_clusters}")
    if dedup_threshold is not None:
        if isinstance(dedup_threshold, bool) or not isinstance(
                dedup_threshold, int | float) or not -1.0 < float(dedup_threshold) <= 1.0:
            raise InvalidInputError(
                f"dedup_threshold: expected a cosine in (-1, 1], got {dedup_threshold!r}")
        dedup_threshold = float(dedup_threshold)
    if isinstance(random_state, bool) or not isinstance(random_state, int | np.integer) or (
            random_state < 0):
        raise InvalidInputError(
            f"random_state: expected a non-negative integer, got {random_state!r}")
    pairs_df = _check_sts(sts)

    from sklearn.metrics import adjusted_rand_score

    models: list[tuple[str, str, Embedder]] = [(teacher.fingerprint.name, "teacher", teacher)]
    models += [(name, "variant", emb) for name, emb in named.items()]
    rows: list[dict[str, Any]] = []
    ref: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="wb-compare-") as tmp, tqdm(
            models, desc="comparing models", unit="model", disable=not progress) as bar:
        for i, (name, role, emb) in enumerate(bar):
            bar.set_postfix_str(name)
            notes: list[str] = []
            vecs, speed, note = _embed_timed(emb, texts, name)
            if note:
                notes.append(note)
            n_params, module = _count_params(emb)
            if n_params is None:
                notes.append("params: no torch model exposed")
            size = _model_bytes(emb, module)
            if size is None:
                notes.append("bytes_on_disk: no model files found")
            u = _unit(vecs)
            thr = dedup_threshold if dedup_threshold is not None else _threshold(
                u, np.random.default_rng(random_state))
            knn, dup = _self_join(u, k, thr)
            labels = _kmeans(u, n_clusters, random_state)
            # the same model, another seed: how stable k-means is here at all
            reseed = float(adjusted_rand_score(labels, _kmeans(u, n_clusters,
                                                               random_state + 1)))
            if role == "teacher":
                ref = {"u": u, "knn": knn, "dup": dup, "labels": labels}
            if vecs.shape[1] == ref["u"].shape[1]:
                mean_cos: float | None = float(np.mean(np.sum(u * ref["u"], axis=1)))
            else:
                mean_cos = None
                notes.append(f"mean_cos_to_teacher: dim {vecs.shape[1]} differs from the "
                             f"teacher's {ref['u'].shape[1]}")
            dup_agree = _jaccard(dup, ref["dup"])
            if dup_agree is None:
                notes.append("dup_agreement: no pair above either threshold")
            sts_rho = None
            if pairs_df is not None:
                sts_rho = _sts(emb, pairs_df)
                if sts_rho is None:
                    notes.append("sts_spearman: constant cosines")
            drift_agree = drift_truth = None
            if drift and n >= DRIFT_MIN_TEXTS:
                if role == "teacher":
                    ref["stream"], _ = _drift_stream(labels, random_state)
                windows = _drift_flags(vecs, ref["stream"], Path(tmp) / f"m{i}", random_state)
                if role == "teacher":
                    ref["windows"] = windows
                drift_agree = _drift_agreement(ref["windows"], windows)
                drift_truth = _drift_truth(windows)
                if drift_agree is None:
                    notes.append("drift: no window could be tested")
            elif drift:
                notes.append(f"drift: needs at least {DRIFT_MIN_TEXTS} texts, got {n}")
            rows.append({
                "name": name, "role": role, "dim": int(vecs.shape[1]), "params": n_params,
                "bytes_on_disk": size, "texts_per_s": speed, "mean_cos_to_teacher": mean_cos,
                "sts_spearman": sts_rho, "knn_recall": _knn_recall(knn, ref["knn"]),
                "cluster_ari": float(adjusted_rand_score(ref["labels"], labels)),
                "cluster_ari_reseed": reseed,
                "dup_threshold": thr, "dup_pairs": int(dup.size), "dup_agreement": dup_agree,
                "drift_agreement": drift_agree, "drift_vs_truth": drift_truth,
                "note": "; ".join(notes) or None,
            })
    return pl.DataFrame(rows, schema=_SCHEMA)


def pareto_front(frame: pl.DataFrame, x: str, y: str, *, x_better: str = "min") -> np.ndarray:
    """Which rows are on the Pareto front of cost `x` against quality `y` (higher is better).

    A row is on the front when no other row is at least as good on both and better on one.
    Rows with a null in either column are not.

    Parameters
    ----------
    frame : polars.DataFrame
        One row per model.
    x, y : str
        Cost and quality columns.
    x_better : {"min", "max"}
        Whether a smaller `x` is better (bytes) or a larger one (texts/s).

    Returns
    -------
    numpy.ndarray
        Boolean mask, one per row.
    """
    for col in (x, y):
        if col not in frame.columns:
            raise InvalidInputError(f"x, y: expected columns of the frame, got {col!r}")
    if x_better not in ("min", "max"):
        raise InvalidInputError(f"x_better: expected 'min' or 'max', got {x_better!r}")
    xs = frame.get_column(x).cast(pl.Float64).to_numpy()
    ys = frame.get_column(y).cast(pl.Float64).to_numpy()
    cost = xs if x_better == "min" else -xs
    ok = ~(np.isnan(cost) | np.isnan(ys))
    front = np.zeros(frame.height, dtype=bool)
    for i in np.flatnonzero(ok):
        others = ok & (np.arange(frame.height) != i)
        dominated = others & (cost <= cost[i]) & (ys >= ys[i]) & ((cost < cost[i]) | (ys > ys[i]))
        front[i] = not dominated.any()
    return front
