"""The kNN self-join behind deduplication: every selected row searched against the selection
through the store's own HNSW index, in batches, cached beside the store and grown incrementally.

The graph depends only on the selected keys (a key is never reused and its vector never
changes), k, the search breadth and the index: it is cached under a digest of those, so a
metadata-only commit (``apply_dedup`` writes columns) still hits it. A run log per parameter
family (``runs.json``) remembers which generation each graph was built at, for ``only_new``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
from numpy.typing import NDArray
from tqdm.auto import tqdm

from .._atomic import write_atomic
from ..errors import InvalidInputError
from ..store.view import isin_sorted, rescore_factor
from ._cache import ArrayCache

if TYPE_CHECKING:
    from ..store.manifest import Manifest
    from ..store.view import SegmentView, StoreView

#: Queries per batch of the self-join: large enough for usearch to spread over the cores,
#: small enough that one batch's results (batch x (k + 1) keys and distances) stay small.
BATCH = 8192
#: Bump when the meaning of a cached graph changes.
GRAPH_VERSION = 1
#: Rows searched again deeper when their own search missed them: at least this many, or 1 %
#: of the rows searched; beyond that they are counted as ``unreached``.
DEEPER_MIN = 2_000
#: The exact fallback runs only while (rows left) x (rows in the store) stays below this: 500
#: rows against 1M (~2e11 multiply-adds at 384-d, ~10 s on 2 cores).
EXACT_CELLS = 500_000_000
#: Graphs kept per parameter family (the newest generations' runs); older ones are deleted.
KEEP_RUNS = 3


@dataclass(frozen=True)
class KnnGraph:
    """Neighbour lists of the selected rows.

    ``keys`` (n,) sorted; ``nbr`` (n, k) neighbour keys and ``sim`` (n, k) similarities
    (``1 - distance`` of the index, re-ranked with full-precision vectors for i8/b1), ``-inf``
    where a row has fewer than k neighbours. ``searched`` is how many rows this run searched,
    ``deeper`` how many of them were searched again deeper, ``exact`` exactly, ``unreached``
    how many still missed themselves when the bounded second pass gave up.
    """

    keys: NDArray[np.uint64]
    nbr: NDArray[np.uint64]
    sim: NDArray[np.float32]
    generation: int
    searched: int
    cached: bool
    base_generation: int | None = None
    deeper: int = 0
    exact: int = 0
    unreached: int = 0
    #: The LSH plan (bits, bands, floor, recall) of a ``candidates="lsh"`` graph; None: HNSW.
    lsh: dict[str, float | int] | None = None


def _digest(*parts: Any) -> str:
    h = hashlib.blake2b(digest_size=16)
    for p in parts:
        h.update(p.tobytes() if isinstance(p, np.ndarray)
                 else json.dumps(p, sort_keys=True, default=repr).encode())
        h.update(b"\x00")
    return h.hexdigest()


def family(m: Manifest, *, k: int, expansion: int, where: Any, lsh: bool = False) -> str:
    """What the graph's neighbours depend on besides the keys: one run log per value. An LSH
    graph depends on the vectors only (not the index); its floor is kept beside it."""
    if lsh:
        return _digest(GRAPH_VERSION, "lsh", k, m.dim, m.model,
                       None if where is None else str(where))
    return _digest(GRAPH_VERSION, k, expansion, m.metric, m.dtype, m.index_params,
                   m.model,
                   None if where is None else str(where))


def _self_join(
    view: StoreView, rows: pl.DataFrame, allowed: pl.DataFrame | None, k: int, *,
    expansion: int, progress: bool,
) -> tuple[NDArray[np.uint64], NDArray[np.float32], dict[str, int]]:
    """Neighbour lists (k, self excluded) of `rows` (live rows with _seg/_row) within
    `allowed` (None: all live rows), and how many rows needed a deeper search.

    Every row is in the index, so a search that does not return the row itself (nor an
    identical copy) has missed its own neighbourhood: HNSW's pruning can leave a tight clique of
    near-duplicates reachable through one member only (measured: 3 of 60 planted triples in
    20k x 384 missed at ef 24, 2 at ef 64). Such rows are searched again at 4x and 16x the
    breadth, and exactly if still unreached.
    """
    n = rows.height
    nbr = np.zeros((n, k), dtype=np.uint64)
    sim = np.full((n, k), -np.inf, dtype=np.float32)
    stats = {"deeper": 0, "exact": 0, "unreached": 0}
    if n == 0:
        return nbr, sim, stats
    pool = len(view) if allowed is None else allowed.height
    kk = min(k + 1, pool)
    factor = rescore_factor(None, view.dtype)
    qkeys = rows.get_column("key").to_numpy()
    views = {expansion: view.with_search_breadth(expansion)}

    def search(idx: NDArray[np.int64], breadth: int | None) -> NDArray[np.bool_]:
        """Search rows `idx`; store their lists; True where the row reached itself."""
        q = view.vectors(rows[idx])
        if breadth is None:
            keys, dist = view.knn(q, kk, allowed=allowed, exact=True)
        else:
            if breadth not in views:
                views[breadth] = view.with_search_breadth(breadth)
            keys, dist = views[breadth].knn(q, kk, allowed=allowed, rescore=factor)
        own = keys == qkeys[idx, None]
        reached = own.any(axis=1) | (dist[:, :1] <= 1e-6).any(axis=1)
        d = np.where(own, np.inf, dist)
        order = np.argsort(d, axis=1, kind="stable")[:, :k]
        d = np.take_along_axis(d, order, axis=1)
        got = np.take_along_axis(keys, order, axis=1)
        w = got.shape[1]
        nbr[idx, :w] = np.where(np.isfinite(d), got, 0)
        sim[idx, :w] = np.where(np.isfinite(d), 1.0 - d, -np.inf)
        return reached

    missed: list[NDArray[np.int64]] = []
    with tqdm(total=n, desc="dedup self-join", unit="row", disable=not progress) as bar:
        for start in range(0, n, BATCH):
            idx = np.arange(start, min(start + BATCH, n))
            missed.append(idx[~search(idx, expansion)])
            bar.update(idx.size)
    todo = np.concatenate(missed)
    # Bounded: on hard data (high intrinsic dimension) many rows can miss themselves, and deep
    # or exact searches of all of them would cost more than the whole self-join.
    cap = max(DEEPER_MIN, n // 100)
    stats["unreached"] = max(0, int(todo.size) - cap)
    todo = todo[:cap]
    stats["deeper"] = int(todo.size)
    rows_total = len(view)
    for breadth in (expansion * 4, expansion * 16):
        if not todo.size or breadth >= rows_total:
            break
        todo = np.concatenate([c[~search(c, breadth)] for c in np.array_split(
            todo, max(1, todo.size // BATCH + 1))])
    if todo.size and todo.size * rows_total <= EXACT_CELLS:
        stats["exact"] = int(todo.size)
        for c in np.array_split(todo, max(1, todo.size // 256 + 1)):
            search(c, None)
    else:
        stats["unreached"] += int(todo.size)
    return nbr, sim, stats


class GraphCache:
    """Cached graphs in ``<store>/cache/dedup`` (``folder=None``: no caching)."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self.arrays = ArrayCache(folder)

    def load(self, name: str) -> tuple[NDArray[np.uint64], NDArray[np.uint64],
                                       NDArray[np.float32]] | None:
        parts = [self.arrays.load(f"{name}-{p}") for p in ("keys", "nbr", "sim")]
        if any(p is None for p in parts):
            return None
        keys, nbr, sim = parts
        assert keys is not None and nbr is not None and sim is not None
        if (keys.dtype != np.uint64 or nbr.dtype != np.uint64 or sim.dtype != np.float32
                or nbr.shape != sim.shape or nbr.shape[0] != keys.shape[0]):
            return None
        return keys, nbr, sim

    def save(self, name: str, graph: KnnGraph, fam: str) -> None:
        meta = {"generation": graph.generation, "family": fam}
        # keys last: load() needs all three, so a crash in between leaves no usable entry
        self.arrays.save(f"{name}-nbr", graph.nbr, meta)
        self.arrays.save(f"{name}-sim", graph.sim, meta)
        self.arrays.save(f"{name}-keys", graph.keys, meta)

    def runs(self) -> dict[str, dict[str, str]]:
        """family -> {generation (str): graph name}."""
        if self.folder is None:
            return {}
        try:
            data = json.loads((self.folder / "runs.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def record(self, fam: str, generation: int, name: str) -> None:
        if self.folder is None:
            return
        runs = self.runs()
        entry = runs.setdefault(fam, {})
        entry[str(generation)] = name
        # a graph of 1M rows is ~200 MB: keep the newest KEEP_RUNS per family, delete the rest
        for g in sorted(entry, key=int)[:-KEEP_RUNS]:
            del entry[g]
        text = json.dumps(runs, sort_keys=True, indent=1)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            write_atomic(self.folder / "runs.json",
                         lambda p: p.write_text(text, encoding="utf-8"))
        except OSError:
            return  # the graph is computed; only only_new loses its starting point
        kept = {n for fam_runs in runs.values() for n in fam_runs.values()}
        for p in self.folder.glob("*-*.*"):
            stem = p.name.split("-", 1)[0]
            if p.suffix in (".npy", ".json") and stem not in kept and p.name != "runs.json":
                p.unlink(missing_ok=True)


def build_graph(
    view: StoreView,
    selection: pl.DataFrame,
    *,
    where: Any,
    k: int,
    expansion: int,
    cache: GraphCache,
    since_generation: int | None,
    only_new: bool,
    progress: bool,
    lsh_floor: float | None = None,
    lsh_accept: float | None = None,
) -> tuple[KnnGraph, str]:
    """The kNN graph of `selection` (live rows, sorted by key): from the cache, incrementally
    from an earlier run's graph, or searched in full. Returns the graph and a note.

    With `lsh_floor` the candidates come from random-hyperplane LSH instead of the index
    (``_dedup_lsh``): the graph then holds each row's top-k neighbours at cosine >= the floor.
    A cached LSH graph whose floor is at most `lsh_accept` (the threshold) is used as it is.
    """
    if lsh_floor is not None:
        return _build_lsh(view, selection, where=where, k=k, cache=cache,
                          since_generation=since_generation, only_new=only_new,
                          progress=progress, floor=lsh_floor,
                          accept=lsh_floor if lsh_accept is None else lsh_accept)
    keys = selection.get_column("key").to_numpy()
    fam = family(view.manifest, k=k, expansion=expansion, where=where)
    name = _digest(fam, keys)
    generation = view.generation
    hit = cache.load(name)
    if hit is not None and np.array_equal(hit[0], keys):
        cache.record(fam, generation, name)
        return KnnGraph(keys=hit[0], nbr=hit[1], sim=hit[2], generation=generation,
                        searched=0, cached=True), "kNN graph read from the cache"
    allowed = None if where is None else selection
    base = None
    note = "kNN graph searched in full"
    if since_generation is not None or only_new:
        found = _base_run(cache, fam, since_generation)
        if found is not None:
            base = (found[0], *found[2])
        else:
            note = "no earlier dedup run recorded: kNN graph searched in full"
    if base is None:
        nbr, sim, stats = _self_join(view, selection, allowed, k,
                                     expansion=expansion, progress=progress)
        graph = KnnGraph(keys=keys, nbr=nbr, sim=sim, generation=generation,
                         searched=keys.size, cached=False, **stats)
    else:
        base_gen, old_keys, old_nbr, old_sim = base
        keep = isin_sorted(old_keys, keys)
        old_keys, old_nbr, old_sim = old_keys[keep], old_nbr[keep], old_sim[keep]
        # edges to rows deleted (or filtered out) since: dropped, not refilled
        gone = ~isin_sorted(old_nbr, keys) & np.isfinite(old_sim)
        old_sim = np.where(gone, -np.inf, old_sim).astype(np.float32)
        new_mask = ~isin_sorted(keys, old_keys)
        new_rows = selection.filter(pl.Series(new_mask))
        nbr, sim, stats = _self_join(view, new_rows, allowed, k,
                                     expansion=expansion, progress=progress)
        all_keys = np.concatenate([old_keys, keys[new_mask]])
        order = np.argsort(all_keys, kind="stable")
        graph = KnnGraph(keys=all_keys[order], nbr=np.concatenate([old_nbr, nbr])[order],
                         sim=np.concatenate([old_sim, sim])[order], generation=generation,
                         searched=int(new_mask.sum()), cached=False, base_generation=base_gen,
                         **stats)
        note = (f"incremental: {graph.searched} row(s) new since generation {base_gen} searched "
                f"against all {keys.size}")
    cache.save(name, graph, fam)
    cache.record(fam, generation, name)
    return graph, note


def _base_run(cache: GraphCache, fam: str, since_generation: int | None
              ) -> tuple[int, str, tuple[NDArray[np.uint64], NDArray[np.uint64],
                                         NDArray[np.float32]]] | None:
    """The earlier run an incremental run starts from: (generation, graph name, arrays), or
    None when `since_generation` is None and no run is recorded."""
    runs = cache.runs().get(fam, {})
    if since_generation is not None:
        if str(since_generation) not in runs:
            known = sorted(int(g) for g in runs)
            raise InvalidInputError(
                f"since_generation: expected a generation with a recorded dedup run of the "
                f"same k, where and candidates ({known or 'none recorded'}), got "
                f"{since_generation}"
            )
        base_gen = since_generation
    else:
        base_gen = max((int(g) for g in runs), default=None)
    loaded = None if base_gen is None else cache.load(runs[str(base_gen)])
    if loaded is None:
        if since_generation is not None:
            raise InvalidInputError(
                f"since_generation: the cached graph of generation {since_generation} is gone "
                "from the cache folder; run find_duplicates without it"
            )
        return None
    assert base_gen is not None
    return base_gen, runs[str(base_gen)], loaded


def _lsh_meta(cache: GraphCache, name: str) -> tuple[dict[str, float | int],
                                                     NDArray[np.uint64]] | None:
    """The plan and codes saved beside an LSH graph."""
    plan_arr = cache.arrays.load(f"{name}-plan")
    codes = cache.arrays.load(f"{name}-codes")
    if (plan_arr is None or codes is None or plan_arr.shape != (5,)
            or codes.dtype not in (np.uint32, np.uint64)):
        return None
    floor, bits, bands, recall, probe = plan_arr.tolist()
    if codes.ndim != 2 or codes.shape[1] != int(bands):
        return None
    return ({"bits": int(bits), "bands": int(bands), "floor": float(floor),
             "recall": float(recall), "probe_pairs": int(probe)}, codes)


def _build_lsh(
    view: StoreView, selection: pl.DataFrame, *, where: Any, k: int,
    cache: GraphCache, since_generation: int | None, only_new: bool, progress: bool,
    floor: float, accept: float,
) -> tuple[KnnGraph, str]:
    """build_graph's LSH path: cached (a graph of a floor at or below `accept`), incremental
    (new rows' codes joined against the cached codes of the others), or in full."""
    from . import _dedup_lsh as lsh

    keys = selection.get_column("key").to_numpy()
    fam = family(view.manifest, k=k, expansion=0, where=where, lsh=True)
    name = _digest(fam, keys)
    generation = view.generation
    hit = cache.load(name)
    meta = _lsh_meta(cache, name) if hit is not None else None
    if (hit is not None and meta is not None and np.array_equal(hit[0], keys)
            and float(meta[0]["floor"]) <= accept + 1e-9 and meta[1].shape[0] == keys.size):
        cache.record(fam, generation, name)
        return KnnGraph(keys=hit[0], nbr=hit[1], sim=hit[2], generation=generation,
                        searched=0, cached=True, lsh=meta[0]), "LSH graph read from the cache"
    base = None
    note = "LSH candidates over all rows, verified exactly"
    if since_generation is not None or only_new:
        found = _base_run(cache, fam, since_generation)
        bmeta = None if found is None else _lsh_meta(cache, found[1])
        if found is not None and bmeta is not None and float(bmeta[0]["floor"]) <= accept + 1e-9:
            base = (found[0], found[2], bmeta)
        elif since_generation is not None:
            raise InvalidInputError(
                f"since_generation: the LSH run of generation {since_generation} has a floor "
                f"above {accept:.3f} or lost its codes; run find_duplicates without it"
            )
        else:
            note = "no earlier LSH dedup run at this floor: LSH over all rows"
    if base is None:
        x = lsh.unit_vectors(view, selection)
        p = lsh.plan(x, floor)
        pos, sim, codes = lsh.self_join(x, p, k, progress=progress)
        del x
        nbr = np.where(pos >= 0, keys[np.maximum(pos, 0)], 0).astype(np.uint64)
        graph = KnnGraph(keys=keys, nbr=nbr, sim=sim, generation=generation,
                         searched=keys.size, cached=False, lsh=p.to_dict())
    else:
        base_gen, (old_keys, old_nbr, old_sim), (pdict, old_codes) = base
        p = lsh.LshPlan(**pdict)  # type: ignore[arg-type]
        keep = isin_sorted(old_keys, keys)
        if not keep.all():  # rows deleted (or filtered out) since: drop them and their edges
            old_keys, old_nbr, old_sim = old_keys[keep], old_nbr[keep], old_sim[keep]
            old_codes = old_codes[keep]
            gone = ~isin_sorted(old_nbr, keys) & np.isfinite(old_sim)
            old_sim = np.where(gone, -np.inf, old_sim).astype(np.float32)
        new_mask = ~isin_sorted(keys, old_keys)
        new_rows = selection.filter(pl.Series(new_mask))
        new_keys = keys[new_mask]
        x = lsh.unit_vectors(view, new_rows)
        pos, nsim, new_codes = lsh.self_join(x, p, k, progress=progress)
        qa, qb = lsh.probe_old(new_codes, old_codes)
        cos, _ = exact_cosine(view, new_keys[qa], old_keys[qb])
        nn = pos >= 0
        rows_of = np.broadcast_to(np.arange(x.shape[0])[:, None], pos.shape)
        edges = pl.concat([
            pl.DataFrame({"i": rows_of[nn], "j": new_keys[pos[nn]], "s": nsim[nn]}),
            pl.DataFrame({"i": qa, "j": old_keys[qb], "s": cos.astype(np.float32)}),
        ], how="vertical_relaxed").filter(pl.col("s") >= floor)
        top = (edges.sort(["i", "s"], descending=[False, True])
               .group_by("i", maintain_order=True).head(k)
               .with_columns(r=pl.int_range(pl.len()).over("i")))
        nbr_new = np.zeros((x.shape[0], k), dtype=np.uint64)
        sim_new = np.full((x.shape[0], k), -np.inf, dtype=np.float32)
        ti, tr = top.get_column("i").to_numpy(), top.get_column("r").to_numpy()
        nbr_new[ti, tr] = top.get_column("j").to_numpy()
        sim_new[ti, tr] = top.get_column("s").to_numpy()
        all_keys = np.concatenate([old_keys, new_keys])
        order = np.argsort(all_keys, kind="stable")
        graph = KnnGraph(keys=all_keys[order], nbr=np.concatenate([old_nbr, nbr_new])[order],
                         sim=np.concatenate([old_sim, sim_new])[order], generation=generation,
                         searched=int(new_mask.sum()), cached=False, base_generation=base_gen,
                         lsh=p.to_dict())
        codes = np.concatenate([old_codes, new_codes])[order]
        note = (f"incremental: {graph.searched} row(s) new since generation {base_gen} hashed "
                f"and joined against all {keys.size} by LSH bucket")
    cache.save(name, graph, fam)
    meta_arr = np.array([p.floor, p.bits, p.bands, p.recall, p.probe_pairs], dtype=np.float64)
    cache.arrays.save(f"{name}-codes", codes, {"family": fam})
    cache.arrays.save(f"{name}-plan", meta_arr, {"family": fam})
    cache.record(fam, generation, name)
    return graph, note


def candidate_pairs(graph: KnnGraph, floor: float) -> tuple[NDArray[np.uint64],
                                                             NDArray[np.uint64],
                                                             NDArray[np.float32]]:
    """Undirected pairs (key_a < key_b) of the graph with similarity >= `floor`, each once
    (the larger similarity when both directions are present), sorted by (key_a, key_b)."""
    n, k = graph.nbr.shape
    mask = graph.sim >= floor
    a = np.broadcast_to(graph.keys[:, None], (n, k))[mask]
    b = graph.nbr[mask]
    s = graph.sim[mask]
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    keep = lo != hi
    # polars' multi-threaded group-by: ~10x numpy's lexsort on millions of edges
    f = (pl.DataFrame({"a": lo[keep], "b": hi[keep], "s": s[keep]})
         .group_by("a", "b").agg(pl.col("s").max()).sort("a", "b"))
    return (f.get_column("a").to_numpy(), f.get_column("b").to_numpy(),
            f.get_column("s").to_numpy())


def exact_cosine(view: StoreView, a: NDArray[np.uint64], b: NDArray[np.uint64],
                 ) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    """Full-precision cosine of key pairs, and whether the two vectors are identical."""
    from .._kernels import pair_dots

    out = np.empty(a.size, dtype=np.float32)
    same = np.zeros(a.size, dtype=bool)
    if a.size == 0:
        return out, same
    seg_a, row_a = view.positions(a)
    seg_b, row_b = view.positions(b)
    combo = seg_a.astype(np.int64) * (len(view.manifest.segments) + 1) + seg_b
    for c in np.unique(combo).tolist():
        m = np.flatnonzero(combo == c)
        sa, sb = view.segment(int(seg_a[m[0]])), view.segment(int(seg_b[m[0]]))
        dots, eq = pair_dots(sa.vectors, row_a[m], sb.vectors, row_b[m])
        norms = _norms_of(sa, row_a[m]) * _norms_of(sb, row_b[m])
        out[m] = np.clip(dots / np.maximum(norms, 1e-30), -1.0, 1.0)
        same[m] = eq
    return out, same


def _norms_of(seg: SegmentView, rows: NDArray[np.int64]) -> NDArray[np.float32]:
    """L2 norms of `rows` of a segment: a few rows without a pass over its file."""
    if rows.size * 8 >= seg.rows:
        return seg.norms()[rows]
    uniq, inv = np.unique(rows, return_inverse=True)
    return np.linalg.norm(seg.vectors[uniq], axis=1).astype(np.float32)[inv]
