"""Sample data: a real offline text corpus and synthetic vectors with planted ground truth.

* :func:`python_docs` builds thousands of English paragraphs from the documentation that ships
  with the running Python (pydoc topics and standard-library docstrings), without a download.
* :func:`digits` wraps scikit-learn's bundled hand-written digits as labelled vectors.
* :func:`synthetic_stream` makes clustered, time-stamped vectors with planted drift points and
  near-duplicate groups, so drift and dedup analyses can be scored against the truth.
"""

from __future__ import annotations

import ast
import functools
import gc
import importlib.machinery
import math
import re
import sys
import sysconfig
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import polars as pl
from numpy.typing import NDArray

from .errors import InvalidInputError

__all__ = [
    "clustered_vectors",
    "LabeledVectors",
    "SyntheticStream",
    "digits",
    "python_docs",
    "synthetic_stream",
    "with_planted_drift",
]

# ---------------------------------------------------------------------------------------------
# python_docs
# ---------------------------------------------------------------------------------------------

# Packages that are tests, applications, bundled data, generated code or have side effects.
# ``encodings`` holds ~100 generated codec modules whose docstrings are one boilerplate line.
_SKIP_MODULES = frozenset(
    {
        "antigravity", "encodings", "ensurepip", "idlelib", "lib2to3", "pydoc_data", "test",
        "this", "turtledemo",
    }
)
_SKIP_PARTS = frozenset({"test", "tests", "idle_test"})
_BLANK_LINE = re.compile(r"\n[ \t]*\n")
# reST heading underlines ("*****", "=====") in the pydoc topics carry no text.
_RULE_LINE = re.compile(r"^[ \t]*([=*\-~^#+])\1{2,}[ \t]*$", re.MULTILINE)
_SHUFFLE_SEED = 0


class _Document(NamedTuple):
    key: str  # id prefix, e.g. "topic:assert" or "module:json.JSONDecoder"
    text: str
    source: str
    module: str
    kind: str


def _is_public(name: str) -> bool:
    """Public names and dunders (``__init__`` docstrings describe constructors)."""
    is_dunder = len(name) > 4 and name.startswith("__") and name.endswith("__")
    return is_dunder or not name.startswith("_")


def _stdlib_sources() -> list[tuple[str, Path]]:
    """Sorted ``(module name, source file)`` pairs of the public pure-Python stdlib."""
    root = sysconfig.get_path("stdlib")
    found: dict[str, Path] = {}
    for name in sorted(sys.stdlib_module_names):
        if name.startswith("_") or name in _SKIP_MODULES:
            continue
        # PathFinder on the stdlib directory only: unlike importlib.util.find_spec it skips
        # sys.meta_path hooks (setuptools' distutils hack imports a module on lookup), ignores
        # same-named files earlier on sys.path, and gives frozen modules (os, io) a .py origin.
        spec = importlib.machinery.PathFinder.find_spec(name, [root])
        if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
            continue
        origin = Path(spec.origin)
        found[name] = origin
        if spec.submodule_search_locations is None:
            continue
        for path in origin.parent.rglob("*.py"):
            parts = path.relative_to(origin.parent).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            if parts and all(
                p.isidentifier() and not p.startswith("_") and p not in _SKIP_PARTS for p in parts
            ):
                found[".".join((name, *parts))] = path
    return sorted(found.items())


def _definitions(body: list[ast.stmt], prefix: str) -> Iterator[tuple[str, str, str]]:
    """Yield ``(qualified name, kind, docstring)`` of public classes and functions in `body`."""
    try_types: tuple[type, ...] = (ast.Try, *((ast.TryStar,) if hasattr(ast, "TryStar") else ()))
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if not _is_public(node.name):
                continue
            qualname = prefix + node.name
            doc = ast.get_docstring(node)
            kind = "class" if isinstance(node, ast.ClassDef) else "function"
            if doc:
                yield qualname, kind, doc
            if isinstance(node, ast.ClassDef):
                yield from _definitions(node.body, qualname + ".")
        elif isinstance(node, ast.If):
            # Platform-specific definitions: the first one in source order wins (see caller).
            yield from _definitions(node.body, prefix)
            yield from _definitions(node.orelse, prefix)
        elif isinstance(node, try_types):
            for block in (node.body, *(h.body for h in node.handlers), node.orelse,
                          node.finalbody):
                yield from _definitions(block, prefix)


def _module_documents(module: str, path: Path) -> list[_Document]:
    try:
        source = path.read_bytes()
        with warnings.catch_warnings():
            # Old escape sequences in some sources warn at parse time; they are not our concern.
            warnings.simplefilter("ignore")
            tree = ast.parse(source, filename=str(path))
    except (OSError, SyntaxError, ValueError):
        return []
    docs = []
    doc = ast.get_docstring(tree)
    if doc:
        docs.append(_Document(f"module:{module}", doc, "docstring", module, "module"))
    for qualname, kind, doc in _definitions(tree.body, ""):
        docs.append(_Document(f"module:{module}.{qualname}", doc, "docstring", module, kind))
    return docs


@functools.cache
def _raw_documents() -> tuple[_Document, ...]:
    """All pydoc topics, then all stdlib docstrings, in a fixed order (parsed once a process)."""
    try:
        from pydoc_data.topics import topics
    except ImportError:  # some distributions package the pydoc data separately
        topics = {}
    docs = [_Document(f"topic:{name}", topics[name], "pydoc-topic", name, "topic")
            for name in sorted(topics)]
    # AST nodes form no cycles, yet their millions of allocations trigger the cyclic garbage
    # collector over and over: pausing it makes parsing ~1.5x faster (measured, CPython 3.11).
    collecting = gc.isenabled()
    gc.disable()
    try:
        for module, path in _stdlib_sources():
            docs.extend(_module_documents(module, path))
    finally:
        if collecting:
            gc.enable()
    return tuple(docs)


def _paragraphs(text: str) -> Iterator[tuple[int, str]]:
    """Yield ``(index, paragraph)`` with whitespace collapsed; the index counts every block."""
    for i, block in enumerate(_BLANK_LINE.split(text)):
        yield i, " ".join(_RULE_LINE.sub("", block).split())


def _check_int(value: Any, name: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidInputError(f"{name}: expected an int >= {minimum}, got {value!r}")
    if value < minimum:
        raise InvalidInputError(f"{name}: expected an int >= {minimum}, got {value}")
    return int(value)


def python_docs(
    *, limit: int | None = None, min_chars: int = 80, max_chars: int = 1200
) -> pl.DataFrame:
    """Build a text corpus from the documentation of the running Python's standard library.

    Two sources, read offline: the pydoc topics (``pydoc_data.topics``: the language reference
    pages behind ``help("assert")``) and the docstrings of public modules, classes and functions
    of the pure-Python standard library, read by parsing source files with :mod:`ast` (no module
    is imported). Tests, IDLE, lib2to3, ``encodings`` and private modules or names are skipped.
    Texts are split into blank-line separated paragraphs, whitespace is collapsed, paragraphs
    outside ``[min_chars, max_chars]`` and doctest blocks are dropped, and each distinct
    paragraph is kept once (its first occurrence). CPython 3.11 gives about 5,500 paragraphs.

    The order is fixed for a given Python: topics sorted by name, then modules sorted by name,
    each in source order. The parsed sources are kept in memory, so later calls are fast.

    Parameters
    ----------
    limit : int or None, default None
        Return only the first `limit` rows of a seeded shuffle (``numpy`` ``default_rng(0)``),
        so a small sample mixes topics and docstrings. The same `limit` always gives the same
        rows, and a smaller `limit` gives a prefix of a larger one. ``None`` returns every
        paragraph in the fixed order above.
    min_chars : int, default 80
        Shortest paragraph kept, in characters after whitespace is collapsed.
    max_chars : int, default 1200
        Longest paragraph kept.

    Returns
    -------
    polars.DataFrame
        One row per paragraph:

        - ``id: str`` stable and unique: ``"topic:<topic>:<i>"``, ``"module:<module>:<i>"`` or
          ``"module:<module>.<qualname>:<i>"``, where ``i`` counts the paragraphs of that text
          (including dropped ones, so ids do not depend on `min_chars` or `max_chars`).
        - ``text: str`` the paragraph.
        - ``source: str`` ``"pydoc-topic"`` or ``"docstring"``.
        - ``module: str`` the topic name or the dotted module name.
        - ``kind: str`` ``"topic"``, ``"module"``, ``"class"`` or ``"function"``.

    Raises
    ------
    InvalidInputError
        If `limit`, `min_chars` or `max_chars` is not a positive int, or ``max_chars <
        min_chars``.

    Examples
    --------
    >>> from workbench.datasets import python_docs
    >>> docs = python_docs(limit=500)
    >>> docs.shape
    (500, 5)
    >>> docs.columns
    ['id', 'text', 'source', 'module', 'kind']
    >>> sorted(docs["source"].unique())
    ['docstring', 'pydoc-topic']
    """
    if limit is not None:
        limit = _check_int(limit, "limit", minimum=1)
    min_chars = _check_int(min_chars, "min_chars", minimum=1)
    max_chars = _check_int(max_chars, "max_chars", minimum=1)
    if max_chars < min_chars:
        raise InvalidInputError(
            f"max_chars: expected an int >= min_chars ({min_chars}), got {max_chars}"
        )
    columns: dict[str, list[str]] = {k: [] for k in ("id", "text", "source", "module", "kind")}
    seen_texts: set[str] = set()
    seen_ids: set[str] = set()
    for doc in _raw_documents():
        for i, text in _paragraphs(doc.text):
            if not min_chars <= len(text) <= max_chars or text.startswith(">>>"):
                continue
            row_id = f"{doc.key}:{i}"
            # A repeated id comes from a name defined twice (platform branches): keep the first.
            if text in seen_texts or row_id in seen_ids:
                continue
            seen_texts.add(text)
            seen_ids.add(row_id)
            for column, value in zip(
                columns, (row_id, text, doc.source, doc.module, doc.kind), strict=True
            ):
                columns[column].append(value)
    frame = pl.DataFrame(columns, schema={k: pl.String for k in columns})
    if limit is not None:
        order = np.random.default_rng(_SHUFFLE_SEED).permutation(frame.height)[:limit]
        frame = frame[order]
    return frame


# ---------------------------------------------------------------------------------------------
# digits
# ---------------------------------------------------------------------------------------------


# eq=False: field-wise == would compare arrays and frames element-wise and fail in bool().
@dataclass(frozen=True, eq=False)
class LabeledVectors:
    """Vectors with one row of metadata each.

    Attributes
    ----------
    frame : polars.DataFrame
        ``id: str, label: i32``, row ``i`` describes ``vectors[i]``.
    vectors : numpy.ndarray
        ``float32`` array of shape ``(n, dim)``.
    """

    frame: pl.DataFrame
    vectors: NDArray[np.float32]


def digits() -> LabeledVectors:
    """Load scikit-learn's bundled 8x8 hand-written digits (no download).

    Returns
    -------
    LabeledVectors
        ``frame`` with ``id: str`` (``"digit-0"`` ... ``"digit-1796"``) and ``label: i32``
        (0-9), and ``vectors``, a ``float32`` array of shape ``(1797, 64)`` holding the raw
        pixel intensities 0-16 (not normalised).

    Examples
    --------
    >>> from workbench.datasets import digits
    >>> data = digits()
    >>> data.vectors.shape, data.vectors.dtype.name
    ((1797, 64), 'float32')
    >>> data.frame.columns
    ['id', 'label']
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    vectors = np.ascontiguousarray(bunch.data, dtype=np.float32)
    labels = np.asarray(bunch.target, dtype=np.int32)
    frame = pl.DataFrame(
        {
            "id": [f"digit-{i}" for i in range(labels.size)],
            "label": pl.Series(labels, dtype=pl.Int32),
        }
    )
    return LabeledVectors(frame=frame, vectors=vectors)


# ---------------------------------------------------------------------------------------------
# synthetic_stream
# ---------------------------------------------------------------------------------------------

# Norm of a point's offset from its cluster centre (before normalisation). With 1.0, points of
# one cluster have cosine ~0.5 +- 0.1 in 32 dimensions; over three seeds of the default stream
# the closest pair outside the planted groups had cosine 0.89-0.91 (0.90-0.92 with 0.9).
_CLUSTER_SPREAD = 1.0
# Norm of the random step that moves every cluster centre at a change point (cosine ~0.8
# between a centre before and after).
_CENTRE_SHIFT = 0.75
# Cluster weights decay geometrically with a cluster's rank in the regime.
_WEIGHT_DECAY = 0.6


@dataclass(frozen=True, eq=False)
class SyntheticStream:
    """Time-stamped clustered vectors with planted drift points and near-duplicate groups.

    Attributes
    ----------
    frame : polars.DataFrame
        ``id: str, timestamp: datetime[us], cluster: i32, regime: i32, dup_group: i32``
        (null outside planted groups); row ``i`` describes ``vectors[i]``; sorted by time.
    vectors : numpy.ndarray
        L2-normalised ``float32`` array of shape ``(n, dim)``.
    drift_times : list of datetime
        The planted change points; ``regime`` counts the change points at or before a row.
    duplicate_groups : list of list of str
        The ids of each planted near-duplicate group (``dup_group`` ``g`` is entry ``g``), in
        time order; the first id is the original the others were copied from.
    """

    frame: pl.DataFrame
    vectors: NDArray[np.float32]
    drift_times: list[datetime]
    duplicate_groups: list[list[str]]


def _normalise(x: NDArray[np.float64]) -> NDArray[np.float64]:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def synthetic_stream(
    n: int = 10_000,
    dim: int = 32,
    *,
    n_clusters: int = 8,
    drift_points: int = 2,
    duplicate_groups: int = 20,
    duplicate_size: int = 3,
    start: datetime = datetime(2025, 1, 1),  # noqa: B008 - immutable value
    span_days: int = 120,
    noise: float = 0.05,
    random_state: int = 0,
) -> SyntheticStream:
    """Make a stream of clustered unit vectors with planted change points and near-duplicates.

    The timeline ``[start, start + span_days)`` is cut by `drift_points` evenly spaced change
    points into ``drift_points + 1`` regimes of equal row counts, with timestamps uniform within
    each regime. Each row belongs to one of `n_clusters` clusters: a point is its cluster's
    centre plus a Gaussian offset of norm ~1, L2-normalised. At every change point two things
    change, so both centroid-shift and distribution tests can see it: the cluster weights
    (geometric, ratio 0.6, over a ranking of the clusters that rotates by ``max(1, n_clusters //
    (drift_points + 1))`` places, so the dominant cluster changes) and the centres themselves
    (each moves to cosine ~0.8 of where it was).

    Each planted near-duplicate group takes `duplicate_size` rows of one regime: the earliest
    keeps its vector and the others are set to copies of it moved by an offset of norm `noise`
    orthogonal to it, and take its cluster. Within a group the cosine similarity is at least
    ``(1 - noise**2) / (1 + noise**2)`` (0.995 for the default, above 0.98 up to ``noise =
    0.1``). Rows outside the groups have cosine below 0.9 to each other with high probability
    when `dim` is 32 or more (same-cluster pairs average ~0.5).

    Parameters
    ----------
    n : int, default 10_000
        Number of rows. Must leave the planted groups at most half of each regime's rows.
    dim : int, default 32
        Vector dimension, at least 2.
    n_clusters : int, default 8
        Number of clusters, at least 2 when there are change points.
    drift_points : int, default 2
        Number of planted change points (0 for a stationary stream).
    duplicate_groups : int, default 20
        Number of planted near-duplicate groups (0 for none).
    duplicate_size : int, default 3
        Rows per near-duplicate group, at least 2.
    start : datetime, default datetime(2025, 1, 1)
        First instant of the timeline, naive (no time zone).
    span_days : int, default 120
        Length of the timeline in days.
    noise : float, default 0.05
        Norm of the offset between a near-duplicate and its original, in ``[0, 1]``; ``0``
        plants exact duplicates.
    random_state : int, default 0
        Seed; the same arguments always give the same stream.

    Returns
    -------
    SyntheticStream
        ``frame`` (``id: str`` ``"row-000000"`` ..., ``timestamp: datetime[us]`` non-decreasing,
        ``cluster: i32``, ``regime: i32`` in ``0..drift_points``, ``dup_group: i32`` or null),
        ``vectors`` (``float32``, ``(n, dim)``, unit norm), ``drift_times`` and
        ``duplicate_groups`` (ids per group).

    Raises
    ------
    InvalidInputError
        If an argument has the wrong type or range, naming it; if `n` is too small for the
        regimes and planted groups; or if `start` has a time zone.

    Examples
    --------
    >>> from workbench.datasets import synthetic_stream
    >>> stream = synthetic_stream(2_000, 16, drift_points=1, duplicate_groups=5)
    >>> stream.vectors.shape
    (2000, 16)
    >>> stream.frame.columns
    ['id', 'timestamp', 'cluster', 'regime', 'dup_group']
    >>> stream.drift_times
    [datetime.datetime(2025, 3, 2, 0, 0)]
    >>> [len(g) for g in stream.duplicate_groups]
    [3, 3, 3, 3, 3]
    """
    n = _check_int(n, "n", minimum=1)
    dim = _check_int(dim, "dim", minimum=2)
    drift_points = _check_int(drift_points, "drift_points", minimum=0)
    n_clusters = _check_int(n_clusters, "n_clusters", minimum=2 if drift_points else 1)
    n_groups = _check_int(duplicate_groups, "duplicate_groups", minimum=0)
    group_size = _check_int(duplicate_size, "duplicate_size", minimum=2)
    span_days = _check_int(span_days, "span_days", minimum=1)
    random_state = _check_int(random_state, "random_state", minimum=0)
    if not isinstance(start, datetime):
        raise InvalidInputError(f"start: expected a datetime, got {type(start).__name__}")
    if start.tzinfo is not None:
        raise InvalidInputError(f"start: expected a naive datetime (no time zone), got {start}")
    if isinstance(noise, bool) or not isinstance(noise, (int, float, np.floating, np.integer)):
        raise InvalidInputError(f"noise: expected a float in [0, 1], got {noise!r}")
    noise = float(noise)
    if not 0.0 <= noise <= 1.0:
        raise InvalidInputError(f"noise: expected a float in [0, 1], got {noise}")
    n_regimes = drift_points + 1
    groups_per_regime = math.ceil(n_groups / n_regimes)
    min_n = n_regimes * max(1, 2 * groups_per_regime * group_size)
    if n < min_n:
        raise InvalidInputError(
            f"n: expected at least {min_n} rows so that each of the {n_regimes} regimes has rows "
            f"and {n_groups} duplicate groups of {group_size} take at most half of each, got {n}"
        )

    rng = np.random.default_rng(random_state)

    # Regimes: equal row counts, timestamps uniform within each, change points evenly spaced.
    span_us = span_days * 86_400 * 1_000_000
    bounds = [span_us * r // n_regimes for r in range(n_regimes + 1)]
    sizes = [n // n_regimes + (r < n % n_regimes) for r in range(n_regimes)]
    regime = np.repeat(np.arange(n_regimes, dtype=np.int32), sizes)
    offsets = np.concatenate(
        [np.sort(rng.integers(bounds[r], bounds[r + 1], size=sizes[r])) for r in range(n_regimes)]
    )
    drift_times = [start + timedelta(microseconds=bounds[r]) for r in range(1, n_regimes)]

    # Cluster weights per regime: a geometric profile over a ranking that rotates each regime.
    ranking = rng.permutation(n_clusters)
    step = max(1, n_clusters // n_regimes)
    profile = _WEIGHT_DECAY ** np.arange(n_clusters)
    profile /= profile.sum()
    weights = np.empty((n_regimes, n_clusters))
    for r in range(n_regimes):
        weights[r, np.roll(ranking, -r * step)] = profile
    cluster = np.concatenate(
        [rng.choice(n_clusters, size=sizes[r], p=weights[r]) for r in range(n_regimes)]
    ).astype(np.int32)

    # Cluster centres: random directions, each moved by a random step at every change point.
    centres = np.empty((n_regimes, n_clusters, dim))
    centres[0] = _normalise(rng.standard_normal((n_clusters, dim)))
    for r in range(1, n_regimes):
        step_vectors = rng.standard_normal((n_clusters, dim)) * (_CENTRE_SHIFT / math.sqrt(dim))
        centres[r] = _normalise(centres[r - 1] + step_vectors)
    offsets_from_centre = rng.standard_normal((n, dim)) * (_CLUSTER_SPREAD / math.sqrt(dim))
    vectors = _normalise(centres[regime, cluster] + offsets_from_centre)

    # Near-duplicate groups: group g lives in regime g % n_regimes; the earliest row is the
    # original, the others become copies moved by exactly `noise`, orthogonally.
    dup_group = np.full(n, -1, dtype=np.int32)
    regime_starts = np.concatenate([[0], np.cumsum(sizes)])
    members_by_group: list[NDArray[np.int64]] = []
    for g in range(n_groups):
        r = g % n_regimes
        free = np.flatnonzero(dup_group[regime_starts[r]:regime_starts[r + 1]] < 0)
        members = np.sort(rng.choice(free, size=group_size, replace=False)) + regime_starts[r]
        original, copies = members[0], members[1:]
        jitter = rng.standard_normal((copies.size, dim))
        jitter -= np.outer(jitter @ vectors[original], vectors[original])
        jitter *= noise / np.linalg.norm(jitter, axis=1, keepdims=True)
        vectors[copies] = _normalise(vectors[original] + jitter)
        cluster[copies] = cluster[original]
        dup_group[members] = g
        members_by_group.append(members)

    vectors32 = np.ascontiguousarray(vectors, dtype=np.float32)
    width = max(6, len(str(n - 1)))
    ids = [f"row-{i:0{width}d}" for i in range(n)]
    start_us = (start - datetime(1970, 1, 1)) // timedelta(microseconds=1)
    frame = pl.DataFrame(
        {
            "id": ids,
            "timestamp": pl.Series(start_us + offsets, dtype=pl.Int64).cast(pl.Datetime("us")),
            "cluster": pl.Series(cluster, dtype=pl.Int32),
            "regime": pl.Series(regime, dtype=pl.Int32),
            "dup_group": pl.Series(dup_group, dtype=pl.Int32),
        }
    ).with_columns(
        pl.when(pl.col("dup_group") >= 0).then(pl.col("dup_group")).alias("dup_group")
    )
    return SyntheticStream(
        frame=frame,
        vectors=vectors32,
        drift_times=drift_times,
        duplicate_groups=[[ids[i] for i in members] for members in members_by_group],
    )


def clustered_vectors(
    n: int,
    dim: int = 384,
    *,
    n_clusters: int = 100,
    intrinsic_dim: int = 32,
    spread: float = 0.35,
    noise: float = 0.02,
    random_state: int = 0,
) -> tuple[NDArray[np.float32], NDArray[np.int32]]:
    """Normalised clustered vectors shaped like text embeddings, with their cluster labels.

    Points are drawn around `n_clusters` centres in an `intrinsic_dim`-dimensional latent space,
    mapped to `dim` dimensions by a fixed random linear map, given a little isotropic noise and
    L2-normalised. The low intrinsic dimension is what real embeddings have and what makes
    nearest neighbours meaningful; isotropic Gaussian noise in 384 dimensions would make every
    in-cluster point nearly equidistant and ANN recall meaningless.

    Parameters
    ----------
    n : int
        Number of vectors.
    dim : int
        Ambient dimension.
    n_clusters : int
        Number of clusters.
    intrinsic_dim : int
        Dimension of the latent space.
    spread : float
        Within-cluster standard deviation relative to the distance between centres.
    noise : float
        Isotropic noise added in the ambient space.
    random_state : int
        Seed; the same seed with a different `n` draws from the same clusters.

    Returns
    -------
    tuple of (numpy.ndarray, numpy.ndarray)
        float32 vectors (n, dim) with unit norm, and int32 cluster labels (n,).

    Examples
    --------
    >>> x, labels = clustered_vectors(1000, 64, n_clusters=5)
    >>> x.shape, int(labels.max())
    ((1000, 64), 4)
    """
    n = _check_int(n, "n", minimum=1)
    dim = _check_int(dim, "dim", minimum=2)
    n_clusters = _check_int(n_clusters, "n_clusters", minimum=1)
    intrinsic_dim = _check_int(intrinsic_dim, "intrinsic_dim", minimum=1)
    structure = np.random.default_rng(random_state)
    centres = structure.normal(size=(n_clusters, intrinsic_dim))
    mixing = structure.normal(size=(intrinsic_dim, dim)) / np.sqrt(intrinsic_dim)
    draw = np.random.default_rng([random_state, n])
    labels = draw.integers(0, n_clusters, n).astype(np.int32)
    latent = centres[labels] + spread * draw.normal(size=(n, intrinsic_dim))
    x = latent @ mixing + noise * draw.normal(size=(n, dim))
    return _normalise(x).astype(np.float32), labels


def with_planted_drift(
    frame: pl.DataFrame,
    column: str,
    values: Sequence[Any],
    *,
    start: datetime = datetime(2025, 1, 1),  # noqa: B008 - immutable value
    periods: int = 6,
    change_at: int = 3,
    time: str = "timestamp",
    random_state: int = 0,
) -> pl.DataFrame:
    """Give the rows of a frame timestamps so that a topic appears partway: planted drift.

    Rows whose `column` is not in `values` are spread uniformly over `periods` calendar months
    from `start`; rows whose `column` is in `values` (the new topic) only over the months from
    `change_at` on. So a drift test with monthly windows should flag exactly the months from
    `change_at` on (against the first month), and "what changed" should name that topic.

    Parameters
    ----------
    frame : polars.DataFrame
        Rows of any kind (e.g. the demo store's ``scan().collect()``).
    column : str
        The column holding the topic (e.g. ``"module"``).
    values : sequence
        The `column` values that make up the new topic.
    start : datetime, default 2025-01-01
    periods : int, default 6
        Months covered (at least 2).
    change_at : int, default 3
        First month (0-based) holding the new topic, in ``[1, periods)``.
    time : str, default "timestamp"
        Name of the added Datetime column.
    random_state : int, default 0

    Returns
    -------
    polars.DataFrame
        `frame` with `time` added, sorted by it.

    Raises
    ------
    InvalidInputError
        `column` missing, `values` matching no row or every row, or bad `periods` /
        `change_at`.
    """
    periods = _check_int(periods, "periods", minimum=2)
    change_at = _check_int(change_at, "change_at", minimum=1)
    if change_at >= periods:
        raise InvalidInputError(f"change_at: expected a month in [1, {periods}), got {change_at}")
    if column not in frame.columns:
        raise InvalidInputError(f"column: expected one of {frame.columns}, got {column!r}")
    new = frame.get_column(column).is_in(list(values)).to_numpy()
    if not new.any() or new.all():
        raise InvalidInputError(
            f"values: expected values of {column!r} held by some rows but not all, got "
            f"{list(values)!r} ({int(new.sum())} of {frame.height} rows)")
    rng = np.random.default_rng(random_state)
    first = np.where(new, change_at, 0)
    month = first + np.floor(rng.random(frame.height) * (periods - first)).astype(np.int64)
    # a uniform moment within the month: days 0..27 keep every month's start inside it
    seconds = rng.integers(0, 28 * 86_400, frame.height)
    months = [datetime(start.year + (start.month - 1 + m) // 12, (start.month - 1 + m) % 12 + 1,
                       1) for m in range(periods)]
    stamps = [months[m] + timedelta(seconds=int(s)) for m, s in zip(month.tolist(),
                                                                      seconds.tolist(),
                                                                      strict=True)]
    return frame.with_columns(pl.Series(time, stamps, dtype=pl.Datetime("us"))).sort(time)
