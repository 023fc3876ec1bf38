"""Near-duplicate groups on Ray: the LSH dedup as a map-reduce over a store's segments.

:func:`find_duplicates` gives the same groups and pairs as
``workbench.find_duplicates(store, candidates="lsh", method="cosine", threshold=t)``; only the
kNN graph is built differently, and from it on both run the same code
(``workbench.analysis.dedup._from_graph``).

What runs where:

- **driver**: checks the arguments, selects the rows (metadata only: keys and places), chooses
  the LSH plan from the rows' probe keys exactly as :func:`~workbench.analysis._dedup_lsh.plan`
  does, merges the verified neighbour lists into the kNN graph, then re-scores the graph's pairs
  and groups them as the single-machine dedup does. No vector of the store passes through it.
- **map** (Ray tasks, one per group of segments): opens its segments
  (:meth:`StoreView.open` of the run's generation), scales its selected rows' vectors to unit
  length and hashes them: once with the probe band (for the plan), once with the plan's bands,
  emitting ``(band, bucket key, row key)`` per row and band, partitioned by a hash of
  ``(band, bucket key)``.
- **reduce** (Ray tasks, one per partition): groups its entries into buckets, opens the
  segments holding the rows of buckets of two or more, and verifies every pair in a bucket
  exactly with :func:`~workbench._kernels.band_topk` (band by band, the same kernel and row
  order as the single-machine self-join), keeping each row's top-k. It returns, per kept
  neighbour, the similarity and the first band the two share in the partition.

Merging the partial lists by (similarity descending, first band shared, key) and keeping k per
row gives exactly the single-machine lists, ties included: the self-join meets a row's
band-mates band by band, in key order within a bucket, and never lets a tie displace a
neighbour already listed (see :func:`~workbench.analysis._dedup_lsh.join_band`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import polars as pl
from numpy.typing import NDArray
from tqdm.auto import tqdm

from ..analysis import _dedup_lsh as lsh
from ..analysis._dedup_graph import KnnGraph
from ..analysis.dedup import DedupResult, _empty_graph, _from_graph, _Job, _prepare
from ..errors import InvalidInputError
from ._cluster import DistributedError, default_workers, ensure

if TYPE_CHECKING:
    from ..analysis._dedup_text import DedupBlend
    from ..store import Store

__all__ = ["find_duplicates"]

#: Reduce partitions per worker: a few more than workers evens out uneven buckets.
PARTITIONS_PER_WORKER = 2
# Odd 64-bit constants mixing (band, bucket key) into a partition number.
_MIX_CODE = np.uint64(0x9E3779B97F4A7C15)
_MIX_BAND = np.uint64(0xC2B2AE3D27D4EB4F)


def find_duplicates(
    store: Store,
    *,
    threshold: float | None = None,
    k: int = 16,
    where: pl.Expr | None = None,
    text: str | None = "text",
    method: Literal["cosine"] = "cosine",
    grouping: Literal["representative", "components"] = "representative",
    keep: Literal["first", "last", "longest"] = "first",
    punctuation: bool = False,
    blend: DedupBlend | None = None,
    expansion: int | None = None,
    candidates: Literal["lsh"] = "lsh",
    since_generation: int | None = None,
    only_new: bool = False,
    cache: bool = True,
    progress: bool = True,
    workers: int | None = None,
) -> DedupResult:
    """Near-duplicate groups of the store's live rows, LSH candidates verified on Ray.

    The distributed twin of :func:`workbench.find_duplicates` for
    ``candidates="lsh", method="cosine"`` with a threshold: the same groups, pairs and nearest
    similarities (see the module docstring for what runs where). The store's folder must be
    readable by every worker at the same path (a shared filesystem on a multi-node cluster).

    Parameters
    ----------
    store : Store
    threshold : float
        Cosine a pair needs, in (0, 1] (required).
    k, where, text, grouping, keep, punctuation, progress
        As in :func:`workbench.find_duplicates`.
    method : {"cosine"}
    blend, expansion
        Unused (cosine LSH); accepted for the same signature.
    candidates : {"lsh"}
    since_generation, only_new
        Not supported here: the distributed dedup always hashes every selected row.
    cache : bool
        Unused: the distributed graph is neither read from nor written to the dedup cache.
    workers : int, optional
        Parallelism (map tasks and reduce partitions scale with it); default: the cluster's
        CPUs.

    Returns
    -------
    DedupResult
        As :func:`workbench.find_duplicates`; ``info["distributed"]`` holds the task counts.

    Raises
    ------
    InvalidInputError
        `candidates` other than ``"lsh"``, `method` other than ``"cosine"``, no `threshold`,
        `since_generation` or `only_new` given, `workers` < 1, or any argument that
        :func:`workbench.find_duplicates` rejects.
    EmptyInputError
        The store is empty, or `where` selects no rows.
    DistributedError
        A task failed (a worker died, or could not read the store's files).

    Examples
    --------
    >>> import workbench.distributed as wd  # doctest: +SKIP
    >>> wd.find_duplicates(store, threshold=0.97).summary  # doctest: +SKIP
    {'rows': 10000, 'groups': 20, 'duplicates': 40, 'share': 0.004, ...}
    """
    t0 = time.perf_counter()
    if candidates != "lsh":
        raise InvalidInputError(
            f"candidates: the distributed dedup finds candidates by LSH only; expected 'lsh', "
            f"got {candidates!r}")
    if method != "cosine":
        raise InvalidInputError(
            f"method: the distributed dedup scores pairs by cosine only; expected 'cosine', "
            f"got {method!r}")
    if threshold is None:
        raise InvalidInputError(
            "threshold: the distributed dedup needs the cosine a pair must reach, in (0, 1]; "
            "got None")
    if since_generation is not None or only_new:
        name = "since_generation" if since_generation is not None else "only_new"
        raise InvalidInputError(
            f"{name}: the distributed dedup hashes every selected row (no incremental runs); "
            f"expected {'None' if name == 'since_generation' else 'False'}, got "
            f"{since_generation if name == 'since_generation' else only_new!r}")
    n_workers = default_workers(workers)
    job = _prepare(store, threshold=threshold, k=k, where=where, text=text, method=method,
                   grouping=grouping, keep=keep, punctuation=punctuation, blend=blend,
                   expansion=expansion, candidates=candidates, stacklevel=3)
    if job.k >= 1:
        graph, counts = _lsh_graph(job, n_workers, progress=progress)
        note = (f"LSH candidates over all rows, verified exactly on Ray ({counts['map']} map "
                f"and {counts['reduce']} reduce tasks)")
    else:
        graph, counts = _empty_graph(job), {"map": 0, "reduce": 0}
        note = "one row: nothing to compare"
    out = _from_graph(job, graph, note, t0=t0, stacklevel=3)
    out.info["distributed"] = {**counts, "workers": n_workers}
    return out


# ---------------------------------------------------------------------- driver
def _lsh_graph(job: _Job, workers: int, *, progress: bool
               ) -> tuple[KnnGraph, dict[str, int]]:
    """The LSH kNN graph of `job`'s rows, built by Ray tasks (the driver handles keys only)."""
    ray = ensure()
    view, rows = job.view, job.rows
    assert job.lsh_floor is not None
    keys = rows.get_column("key").to_numpy()
    seg_ord = rows.get_column("_seg").to_numpy().astype(np.int64)
    seg_ids = [e.id for e in view.manifest.segments]
    shares = _split_segments(np.bincount(seg_ord, minlength=len(seg_ids)), workers)
    path, gen = str(view.path), view.generation
    # the selected keys of each map task's segments (keys are sorted; so are these)
    task_keys = [keys[np.isin(seg_ord, share)] for share in shares]
    task_segs = [[seg_ids[o] for o in share] for share in shares]
    parts = max(1, workers * PARTITIONS_PER_WORKER)

    probe = ray.remote(_probe_task)
    bands = ray.remote(_band_task).options(num_returns=parts)
    verify = ray.remote(_verify_task)
    try:
        probes = _gather(ray, [probe.remote(path, gen, s, kk)
                               for s, kk in zip(task_segs, task_keys, strict=True)],
                         "dedup LSH plan", progress)
        plan = lsh.plan_from_probe(np.concatenate(probes), job.lsh_floor)
        owner = ray.put((keys, seg_ord, seg_ids))
        mapped = [bands.remote(path, gen, s, kk, plan.to_dict(), parts)
                  for s, kk in zip(task_segs, task_keys, strict=True)]
        by_part = [[m[p] if parts > 1 else m for m in mapped] for p in range(parts)]
        found = _gather(ray, [verify.remote(path, gen, owner, plan.floor, job.k, *refs)
                              for refs in by_part], "dedup LSH verify", progress)
    except ray.exceptions.RayError as exc:
        raise DistributedError(f"find_duplicates: a Ray task failed: {exc}") from exc
    nbr, sim = _merge(keys, found, job.k)
    graph = KnnGraph(keys=keys, nbr=nbr, sim=sim, generation=gen, searched=keys.size,
                     cached=False, lsh=plan.to_dict())
    return graph, {"map": len(shares), "reduce": parts}


def _split_segments(rows_per_seg: NDArray[np.int64], workers: int) -> list[list[int]]:
    """Segments with selected rows in up to 2 x `workers` groups of similar row counts.

    Largest first, each to the lightest group so far.
    """
    used = np.flatnonzero(rows_per_seg > 0)
    n_groups = max(1, min(used.size, 2 * workers))
    groups: list[list[int]] = [[] for _ in range(n_groups)]
    load = np.zeros(n_groups, dtype=np.int64)
    for o in used[np.argsort(-rows_per_seg[used], kind="stable")].tolist():
        g = int(np.argmin(load))
        groups[g].append(o)
        load[g] += rows_per_seg[o]
    return [sorted(g) for g in groups if g]


def _gather(ray: Any, refs: list[Any], what: str, progress: bool) -> list[Any]:
    """Results of `refs` in order, with a progress bar over the tasks as they finish."""
    with tqdm(total=len(refs), desc=what, unit="task", disable=not progress) as bar:
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            bar.update(len(done))
    return list(ray.get(refs))


def _merge(keys: NDArray[np.uint64], found: list[pl.DataFrame], k: int
           ) -> tuple[NDArray[np.uint64], NDArray[np.float32]]:
    """The partitions' neighbour lists merged into each row's top-k (``nbr``, ``sim``).

    Order: similarity descending, then the first band the pair shares, then key, the order in
    which the single-machine self-join keeps them; a pair found in several partitions keeps its
    first band.
    """
    n = keys.size
    nbr = np.zeros((n, k), dtype=np.uint64)
    sim = np.full((n, k), -np.inf, dtype=np.float32)
    edges = pl.concat(found, how="vertical")
    if edges.height == 0:
        return nbr, sim
    top = (edges.sort(["i", "s", "band", "j"], descending=[False, True, False, False])
           .unique(["i", "j"], keep="first", maintain_order=True)
           .group_by("i", maintain_order=True).head(k)
           .with_columns(r=pl.int_range(pl.len()).over("i")))
    pos = np.searchsorted(keys, top.get_column("i").to_numpy())
    r = top.get_column("r").to_numpy()
    nbr[pos, r] = top.get_column("j").to_numpy()
    sim[pos, r] = top.get_column("s").to_numpy()
    return nbr, sim


# ---------------------------------------------------------------------- tasks
def _unit_rows(path: str, generation: int, segments: list[str], keys: NDArray[np.uint64]
               ) -> NDArray[np.float32]:
    """Unit vectors of the live rows `keys` (sorted) of these segments, in key order."""
    from ..store.view import StoreView, isin_sorted

    v = StoreView.open(path, generation=generation, segments=segments)
    live = v.rows()
    sel = live.filter(pl.Series(isin_sorted(live.get_column("key").to_numpy(), keys)))
    if sel.height != keys.size:
        raise DistributedError(
            f"find_duplicates: {keys.size - sel.height} selected row(s) are not live in "
            f"segments {segments[:3]} of generation {generation}")
    return lsh.unit_vectors(v, sel)


def _probe_task(path: str, generation: int, segments: list[str], keys: NDArray[np.uint64]
                ) -> NDArray[np.uint64]:
    """Map, first pass: the probe band's keys of the rows (for the plan)."""
    return lsh.probe_codes(_unit_rows(path, generation, segments, keys))


def _band_task(path: str, generation: int, segments: list[str], keys: NDArray[np.uint64],
               plan: dict[str, Any], parts: int) -> Any:
    """Map, second pass: ``(band, code, key)`` of every row and band, in `parts` frames.

    The frames split the entries by a hash of ``(band, code)``: one per reduce partition.
    """
    p = lsh.LshPlan(**plan)
    x = _unit_rows(path, generation, segments, keys)
    codes = lsh._codes(x, p.hyperplanes(x.shape[1]), p.bits).astype(np.uint64)
    del x
    m, n_bands = codes.shape
    band = np.broadcast_to(np.arange(n_bands, dtype=np.uint64)[None, :], (m, n_bands))
    key = np.broadcast_to(keys[:, None], (m, n_bands))
    mixed = codes * _MIX_CODE + band * _MIX_BAND
    part = ((mixed >> np.uint64(33)) % np.uint64(parts)).astype(np.int64).ravel()
    frame = pl.DataFrame({"band": band.ravel().astype(np.uint32), "code": codes.ravel(),
                          "key": key.ravel(), "p": part})
    out = [frame.filter(pl.col("p") == q).drop("p") for q in range(parts)]
    return tuple(out) if parts > 1 else out[0]


def _verify_task(path: str, generation: int, owner: tuple[Any, Any, list[str]], floor: float,
                 k: int, *frames: pl.DataFrame) -> pl.DataFrame:
    """Reduce: every bucket of the partition verified exactly, each row's top-k kept.

    Returns ``i``, ``j`` (row and neighbour keys), ``s`` (similarity) and ``band`` (the first
    band of this partition in which the two share a bucket).
    """
    empty = pl.DataFrame(schema={"i": pl.UInt64, "j": pl.UInt64, "s": pl.Float32,
                                 "band": pl.UInt32})
    entries = pl.concat(frames, how="vertical").sort("band", "code", "key")
    # buckets of one row compare nothing
    entries = entries.filter(pl.len().over("band", "code") > 1)
    if entries.height == 0:
        return empty
    all_keys, seg_ord, seg_ids = owner
    needed = np.unique(entries.get_column("key").to_numpy())
    segs = sorted({seg_ids[o] for o in np.unique(
        seg_ord[np.searchsorted(all_keys, needed)]).tolist()})
    x = _unit_rows(path, generation, segs, needed)
    n = needed.size
    nbr = np.full((n, k), -1, dtype=np.int64)
    sim = np.full((n, k), -np.inf, dtype=np.float32)
    local = np.searchsorted(needed, entries.get_column("key").to_numpy()).astype(np.int64)
    band_col = entries.get_column("band").to_numpy()
    code_col = entries.get_column("code").to_numpy()
    brk = np.flatnonzero(band_col[1:] != band_col[:-1]) + 1
    for lo, hi in zip(np.concatenate([[0], brk]).tolist(),
                      np.concatenate([brk, [band_col.size]]).tolist(), strict=True):
        # bands in ascending order, rows in key order within a bucket: the self-join's order
        lsh.join_band(x, local[lo:hi], code_col[lo:hi], floor, nbr, sim)
    kept = nbr >= 0
    if not kept.any():
        return empty
    ri, rr = np.nonzero(kept)
    lists = pl.DataFrame({"li": ri.astype(np.int64), "lj": nbr[ri, rr], "s": sim[ri, rr]})
    # the first band of this partition in which each kept pair shares a bucket
    where = pl.DataFrame({"band": band_col, "code": code_col, "li": local})
    first = (lists.join(where, on="li")
             .join(where.rename({"li": "lj"}), on=["band", "code", "lj"], how="semi")
             .group_by("li", "lj").agg(pl.col("band").min()))
    out = lists.join(first, on=["li", "lj"], how="left")
    return pl.DataFrame({
        "i": needed[out.get_column("li").to_numpy()],
        "j": needed[out.get_column("lj").to_numpy()],
        "s": out.get_column("s").to_numpy().astype(np.float32),
        "band": out.get_column("band").to_numpy().astype(np.uint32),
    })
