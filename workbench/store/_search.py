"""Search kernels: exact top-k over memory-mapped vectors, ANN per segment, and top-k merging."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .._kernels import gather_dots
from .segment import LoadedSegment, to_index_form

# Bound the (queries x rows) distance block to ~256 MB of float32.
_BLOCK_CELLS = 1 << 26


def _isin_sorted(values: NDArray[np.uint64], sorted_set: NDArray[np.uint64]) -> NDArray[np.bool_]:
    if sorted_set.size == 0:
        return np.zeros(values.shape, dtype=bool)
    pos = np.searchsorted(sorted_set, values)
    pos = np.minimum(pos, sorted_set.size - 1)
    return sorted_set[pos] == values


def exact_topk(
    queries: NDArray[np.float32],
    vectors: NDArray[np.float32],
    k: int,
    *,
    metric: str,
    norms: NDArray[np.float32] | None = None,
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Brute-force top-k: row positions (q, k) and distances, padded with -1 / inf.

    Works on a similarity computed in place (one matmul and one scaling per block) and turns
    only the selected k into distances: building full distance matrices cost 1.6x numpy.
    """
    nq, n = queries.shape[0], vectors.shape[0]
    best_pos = np.full((nq, k), -1, dtype=np.int64)
    best_sim = np.full((nq, k), -np.inf, dtype=np.float32)
    if n == 0:
        return best_pos, np.full((nq, k), np.inf, dtype=np.float32)
    if norms is None and metric != "ip":
        norms = np.linalg.norm(vectors, axis=1).astype(np.float32)
    q = queries
    if metric == "cos":
        q = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-30)
    block = max(1024, _BLOCK_CELLS // max(nq, 1))
    for start in range(0, n, block):
        stop = min(start + block, n)
        vb = np.asarray(vectors[start:stop])
        sim = q @ vb.T  # higher is better
        if metric == "cos":
            vn = norms[start:stop]  # type: ignore[index]
            sim *= (1.0 / np.maximum(vn, 1e-30)).astype(np.float32)[None, :]
        elif metric == "l2sq":
            vn = norms[start:stop]  # type: ignore[index]
            sim *= 2.0
            sim -= (vn.astype(np.float32) ** 2)[None, :]
        kk = min(k, stop - start)
        if kk < sim.shape[1]:
            part = np.argpartition(sim, sim.shape[1] - kk, axis=1)[:, -kk:]
        else:
            part = np.broadcast_to(np.arange(sim.shape[1]), (nq, sim.shape[1]))
        cand = np.take_along_axis(sim, part, axis=1)
        all_pos = np.concatenate([best_pos, part + start], axis=1)
        all_sim = np.concatenate([best_sim, cand], axis=1)
        order = np.argsort(-all_sim, axis=1, kind="stable")[:, :k]
        best_pos = np.take_along_axis(all_pos, order, axis=1)
        best_sim = np.take_along_axis(all_sim, order, axis=1)
    if metric == "l2sq":
        qn2 = np.einsum("ij,ij->i", queries, queries)
        best_d = np.maximum(qn2[:, None] - best_sim, 0.0)
    elif metric == "cos":
        best_d = np.maximum(1.0 - best_sim, 0.0)
    else:
        best_d = 1.0 - best_sim
    best_d = np.where(np.isfinite(best_sim), best_d, np.inf).astype(np.float32)
    best_pos[~np.isfinite(best_d)] = -1
    return best_pos, best_d


def merge_topk(
    parts: list[tuple[NDArray[np.uint64], NDArray[np.float32]]], k: int, nq: int
) -> tuple[NDArray[np.uint64], NDArray[np.float32]]:
    """Merge per-segment (keys, distances) with inf marking empty slots into a global top-k."""
    if not parts:
        return np.zeros((nq, 0), dtype=np.uint64), np.zeros((nq, 0), dtype=np.float32)
    keys = np.concatenate([p[0] for p in parts], axis=1)
    dist = np.concatenate([p[1] for p in parts], axis=1)
    kk = min(k, dist.shape[1])
    order = np.argsort(dist, axis=1, kind="stable")[:, :kk]
    return np.take_along_axis(keys, order, axis=1), np.take_along_axis(dist, order, axis=1)


def segment_exact(
    seg: LoadedSegment,
    queries: NDArray[np.float32],
    k: int,
    *,
    metric: str,
    rows: NDArray[np.int64] | None = None,
) -> tuple[NDArray[np.uint64], NDArray[np.float32]]:
    """Exact top-k over the live rows of `seg` (or the given live `rows`)."""
    if rows is None:
        mask = seg.live_mask()
        rows = None if mask.all() else np.flatnonzero(mask)
    keys_all = seg.keys
    if rows is None:
        vecs, norms, keys = seg.vectors, seg.norms() if metric != "ip" else None, keys_all
    else:
        vecs = np.asarray(seg.vectors[rows])
        norms = seg.norms()[rows] if metric != "ip" else None
        keys = keys_all[rows]
    pos, d = exact_topk(queries, vecs, k, metric=metric, norms=norms)
    out_keys = np.where(pos >= 0, keys[np.maximum(pos, 0)], 0).astype(np.uint64)
    return out_keys, d


def _ann(
    seg: LoadedSegment, queries: NDArray[np.float32], count: int
) -> tuple[NDArray[np.uint64], NDArray[np.float32], NDArray[np.int64]]:
    """usearch search of queries already in the index's form (:func:`to_index_form`), returning
    (keys, distances) of shape (q, count) and valid counts."""
    m = seg.index.search(queries, count)
    if hasattr(m, "counts"):
        return (np.asarray(m.keys, dtype=np.uint64), np.asarray(m.distances, dtype=np.float32),
                np.asarray(m.counts, dtype=np.int64))
    # a single query comes back as Matches holding only the found entries
    found = len(m.keys)
    keys = np.zeros((1, count), dtype=np.uint64)
    dist = np.full((1, count), np.inf, dtype=np.float32)
    keys[0, :found], dist[0, :found] = m.keys, m.distances
    return keys, dist, np.array([found])


def rescore(
    seg: LoadedSegment,
    queries: NDArray[np.float32],
    keys: NDArray[np.uint64],
    dist: NDArray[np.float32],
    k: int,
    *,
    metric: str,
) -> tuple[NDArray[np.uint64], NDArray[np.float32]]:
    """Re-rank candidate `keys` of `seg` with the full-precision vectors; keep the best `k`."""
    valid = np.isfinite(dist)
    seg_keys = seg.keys
    nq = keys.shape[0]
    first = int(seg_keys[0]) if seg_keys.size else 0
    if seg_keys.size and int(seg_keys[-1]) - first == seg_keys.size - 1:
        # keys are consecutive (any segment written by one add or a compaction without gaps)
        rows = keys.astype(np.int64) - first
    else:
        rows = np.searchsorted(seg_keys, keys).astype(np.int64)
    rows = np.where(valid, np.clip(rows, 0, max(seg_keys.size - 1, 0)), 0)
    dots = gather_dots(seg.vectors, rows, queries)
    if metric == "ip":
        exact = 1.0 - dots
    elif metric == "cos":
        qn = np.linalg.norm(queries, axis=1)
        vn = seg.norms()[rows]
        exact = np.maximum(1.0 - dots / np.maximum(qn[:, None] * vn, 1e-30), 0.0)
    else:
        qn2 = np.einsum("ij,ij->i", queries, queries)
        exact = np.maximum(qn2[:, None] + seg.norms()[rows] ** 2 - 2.0 * dots, 0.0)
    exact = np.where(valid, exact, np.inf).astype(np.float32)
    return merge_topk([(keys, exact)], k, nq)


def segment_ann(
    seg: LoadedSegment,
    queries: NDArray[np.float32],
    k: int,
    *,
    metric: str,
    allowed: NDArray[np.uint64] | None = None,
    n_allowed: int | None = None,
    rescore_factor: int = 0,
) -> tuple[NDArray[np.uint64], NDArray[np.float32]]:
    """HNSW top-k in one segment, skipping tombstones and keys outside `allowed`.

    Each query asks for enough candidates to expect `k` admissible ones (``k / selectivity``);
    queries left short retry with a 4x larger pool until the pool covers the segment, then fall
    back to exact search over the admissible rows. With `rescore_factor` the best
    ``k * rescore_factor`` admissible candidates are re-ranked with the full-precision vectors.
    """
    nq = queries.shape[0]
    rows = seg.entry.rows
    iq = to_index_form(queries, seg.form)  # once, not per retry
    if allowed is None and not seg.tombstones.size and not rescore_factor and k <= rows:
        # Fast path: usearch's own sorted top-k is the answer (saves ~1 ms per call).
        keys, dist, counts = _ann(seg, iq, k)
        if (counts >= k).all():
            return keys, dist
    admissible = n_allowed if allowed is not None and n_allowed is not None else seg.entry.live
    want = max(1, min(k * max(rescore_factor, 1), admissible))
    target = min(k, admissible)
    if allowed is not None:
        # The admissible share of the pool should be as deep as an unfiltered search (ef), or
        # filtered recall falls below unfiltered recall (0.94 vs 0.96 at 50% selectivity,
        # 100k x 384, ef=64); 2x the expected need keeps retries rare.
        # Scaling the ef part by 1/sqrt(selectivity) instead of 1/selectivity kept recall at
        # 0.97 for 50% selectivity at ~0.65x unfiltered QPS (the full 1/s pool gave 0.40x).
        share = max(admissible, 1) / rows
        count = int(np.ceil(max(2 * want / share,
                                int(seg.index.expansion_search) / np.sqrt(share)))) + 16
    else:
        count = want + seg.entry.deleted
    count = min(max(count, want), rows)
    out_keys = np.zeros((nq, want), dtype=np.uint64)
    out_dist = np.full((nq, want), np.inf, dtype=np.float32)
    todo = np.arange(nq)
    fallback = np.zeros(nq, dtype=bool)
    while todo.size:
        keys, dist, counts = _ann(seg, iq[todo], count)
        valid = np.arange(keys.shape[1])[None, :] < counts[:, None]
        if seg.tombstones.size:
            valid &= ~_isin_sorted(keys, seg.tombstones)
        if allowed is not None:
            valid &= _isin_sorted(keys, allowed)
        n_valid = valid.sum(axis=1)
        exhausted = count >= rows
        done = (n_valid >= want) | exhausted
        if done.any():
            sel = np.flatnonzero(done)
            d = np.where(valid[sel], dist[sel], np.inf).astype(np.float32)
            kk, dd = merge_topk([(keys[sel], d)], want, sel.size)
            out_keys[todo[sel], : kk.shape[1]] = kk
            out_dist[todo[sel], : dd.shape[1]] = dd
            fallback[todo[sel]] = n_valid[sel] < target
        todo = todo[~done]
        count = min(count * 4, rows)
    if rescore_factor:
        out_keys, out_dist = rescore(seg, queries, out_keys, out_dist, k, metric=metric)
    else:
        out_keys, out_dist = out_keys[:, :k], out_dist[:, :k]
    if fallback.any():
        live = seg.live_mask()
        if allowed is not None:
            live &= _isin_sorted(seg.keys, allowed)
        ek, ed = segment_exact(seg, queries[fallback], k, metric=metric,
                               rows=np.flatnonzero(live))
        width = out_keys.shape[1]
        out_keys[fallback], out_dist[fallback] = ek[:, :width], ed[:, :width]
    if out_keys.shape[1] < k:
        pad = k - out_keys.shape[1]
        out_keys = np.pad(out_keys, ((0, 0), (0, pad)))
        out_dist = np.pad(out_dist, ((0, 0), (0, pad)), constant_values=np.inf)
    return out_keys, out_dist
