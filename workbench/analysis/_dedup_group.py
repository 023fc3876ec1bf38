"""Grouping of duplicate pairs: representatives that never chain, or connected components.

Rows are positions ``0..n-1``; ``rank`` orders them by the ``keep`` rule (rank 0 is kept first).
Exact duplicates (same ``exact_class``) always share a group, represented by their best-ranked
member; near-duplicate pairs are moved onto those class representatives first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import breadth_first_order, connected_components


@dataclass(frozen=True)
class Grouping:
    """Per row: ``rep`` (its representative's position, -1 outside any group), ``score`` (to
    the representative; NaN where there is no direct pair, only possible for components),
    ``exact`` (an exact duplicate of the representative); ``longest_chain`` in hops (0 for
    representative grouping, whose groups are stars)."""

    rep: NDArray[np.int64]
    score: NDArray[np.float32]
    exact: NDArray[np.bool_]
    longest_chain: int


def exact_representatives(
    exact_class: NDArray[np.int64], rank: NDArray[np.int64]
) -> NDArray[np.int64]:
    """Position of each row's exact-class representative (best rank); itself when alone.

    `exact_class` is -1 for rows with no exact duplicate."""
    n = exact_class.size
    crep = np.arange(n, dtype=np.int64)
    inclass = np.flatnonzero(exact_class >= 0)
    if inclass.size:
        order = inclass[np.lexsort((rank[inclass], exact_class[inclass]))]
        cls = exact_class[order]
        start = np.ones(order.size, dtype=bool)
        start[1:] = cls[1:] != cls[:-1]
        heads = order[start]
        crep[order] = heads[np.cumsum(start) - 1]
    return crep


def _onto_classes(
    crep: NDArray[np.int64], ia: NDArray[np.int64], ib: NDArray[np.int64],
    score: NDArray[np.float32],
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float32]]:
    a, b = crep[ia], crep[ib]
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    keep = lo != hi
    lo, hi, s = lo[keep], hi[keep], score[keep]
    order = np.lexsort((-s, hi, lo))
    lo, hi, s = lo[order], hi[order], s[order]
    first = np.ones(lo.size, dtype=bool)
    first[1:] = (lo[1:] != lo[:-1]) | (hi[1:] != hi[:-1])
    return lo[first], hi[first], s[first]


def group_representative(
    n: int, rank: NDArray[np.int64], crep: NDArray[np.int64], ia: NDArray[np.int64],
    ib: NDArray[np.int64], score: NDArray[np.float32],
) -> Grouping:
    """Greedy representatives: in rank order, each row not yet grouped becomes a
    representative and claims the not-yet-grouped rows it has a passing pair with (and their
    exact duplicates). Every member therefore passes against its own representative, so a
    chain a~b~c with a !~ c can never put a and c together."""
    rep = np.full(n, -1, dtype=np.int64)
    sc = np.full(n, np.nan, dtype=np.float32)
    exact = np.zeros(n, dtype=bool)
    lo, hi, s = _onto_classes(crep, ia, ib, score)
    # exact classes: members of a class point at its representative
    members = np.flatnonzero(crep != np.arange(n))
    heads = np.unique(crep[members])
    if lo.size == 0 and heads.size == 0:
        return Grouping(rep=rep, score=sc, exact=exact, longest_chain=0)
    # adjacency of the class representatives, both directions, by node
    src = np.concatenate([lo, hi])
    dst = np.concatenate([hi, lo])
    w = np.concatenate([s, s])
    order = np.argsort(src, kind="stable")
    src, dst, w = src[order], dst[order], w[order]
    bounds = np.searchsorted(src, np.arange(n + 1))
    # members of each exact class, by class representative
    by_head = members[np.argsort(crep[members], kind="stable")]
    head_of = crep[by_head]
    hb = np.searchsorted(head_of, np.arange(n + 1))
    involved = np.union1d(np.unique(src), heads)
    involved = involved[np.argsort(rank[involved], kind="stable")]
    taken = np.zeros(n, dtype=bool)
    bounds_l, dst_l, w_l, hb_l = bounds.tolist(), dst.tolist(), w.tolist(), hb.tolist()
    by_head_l = by_head.tolist()
    for u in involved.tolist():
        if taken[u]:
            continue
        taken[u] = True
        claimed = False
        for m in by_head_l[hb_l[u]:hb_l[u + 1]]:
            rep[m], sc[m], exact[m] = u, 1.0, True
            taken[m] = True
            claimed = True
        for j in range(bounds_l[u], bounds_l[u + 1]):
            v = dst_l[j]
            if taken[v]:
                continue
            taken[v] = True
            claimed = True
            rep[v], sc[v] = u, w_l[j]
            for m in by_head_l[hb_l[v]:hb_l[v + 1]]:
                rep[m], sc[m] = u, w_l[j]
                taken[m] = True
        if claimed:
            rep[u], sc[u] = u, 1.0
    return Grouping(rep=rep, score=sc, exact=exact, longest_chain=0)


def group_components(
    n: int, rank: NDArray[np.int64], crep: NDArray[np.int64], ia: NDArray[np.int64],
    ib: NDArray[np.int64], score: NDArray[np.float32],
) -> Grouping:
    """Connected components of the passing pairs (plus exact classes); the best-ranked row of
    a component represents it. Members need not pass against it: a chain can join rows that
    are not similar at all, measured by ``longest_chain`` (the largest hop diameter)."""
    members = np.flatnonzero(crep != np.arange(n))
    src = np.concatenate([ia, members])
    dst = np.concatenate([ib, crep[members]])
    if src.size == 0:
        return Grouping(rep=np.full(n, -1, np.int64), score=np.full(n, np.nan, np.float32),
                        exact=np.zeros(n, bool), longest_chain=0)
    g = coo_matrix((np.ones(src.size, np.int8), (src, dst)), shape=(n, n)).tocsr()
    g = ((g + g.T) > 0).astype(np.int8).tocsr()
    _, labels = connected_components(g, directed=False)
    sizes = np.bincount(labels)
    in_group = sizes[labels] >= 2
    rows = np.flatnonzero(in_group)
    order = rows[np.lexsort((rank[rows], labels[rows]))]
    lab = labels[order]
    start = np.ones(order.size, dtype=bool)
    start[1:] = lab[1:] != lab[:-1]
    rep = np.full(n, -1, dtype=np.int64)
    rep[order] = order[start][np.cumsum(start) - 1]
    exact = np.zeros(n, dtype=bool)
    exact[rows] = (crep[rows] == crep[rep[rows]]) & (rows != rep[rows])
    sc = np.full(n, np.nan, dtype=np.float32)
    sc[rows[exact[rows]]] = 1.0
    sc[rows[rows == rep[rows]]] = 1.0
    # direct pair scores to the representative, where such a pair exists
    for x, y, s in ((ia, ib, score), (ib, ia, score)):
        hit = (rep[x] == y) & (rep[x] >= 0)
        sc[x[hit]] = np.fmax(sc[x[hit]], s[hit])
    return Grouping(rep=rep, score=sc, exact=exact,
                    longest_chain=_longest_chain(g, labels, sizes))


def _longest_chain(g: csr_matrix, labels: NDArray[np.int64], sizes: NDArray[np.int64]) -> int:
    """Largest hop diameter over the components of 3+ rows (double-sweep BFS on each, exact
    for trees and a lower bound otherwise)."""
    best = 1 if (sizes >= 2).any() else 0
    big = np.flatnonzero(sizes >= 3)
    if big.size == 0:
        return best
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(sizes.size + 1))
    for c in big.tolist():
        idx = order[bounds[c]:bounds[c + 1]]
        sub = g[idx][:, idx]
        far, _ = _bfs_far(sub, 0)
        _, depth = _bfs_far(sub, far)
        best = max(best, depth)
    return best


def _bfs_far(g: csr_matrix, start: int) -> tuple[int, int]:
    nodes, pred = breadth_first_order(g, start, directed=False, return_predecessors=True)
    depth = np.zeros(g.shape[0], dtype=np.int64)
    for v in nodes[1:].tolist():
        depth[v] = depth[pred[v]] + 1
    far = int(nodes[np.argmax(depth[nodes])])
    return far, int(depth[far])
