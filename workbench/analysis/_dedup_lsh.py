"""Near-duplicate candidates by random-hyperplane LSH (Charikar's SimHash, banded), verified
exactly: the candidate stage of ``find_duplicates(candidates="lsh")``.

Why a second candidate stage beside the HNSW self-join: on high-dimensional data HNSW's
neighbour pruning leaves tight cliques of near duplicates reachable through one member only, and
a search at a small breadth misses them (planted-pair recall 0.75 at 100k x 384 in
``benchmarks/bench_dedup.py``); searching deeper costs more than the whole join. Near duplicates
are *very* close pairs, which is exactly what hyperplane LSH finds with a guarantee.

**Guarantee.** For a Gaussian random hyperplane the two unit vectors at angle theta fall on the
same side with probability ``p = 1 - theta / pi`` (Charikar 2002). A band of ``b`` independent
hyperplanes is a bucket key; ``L`` independent bands. A pair with cosine ``>= floor`` shares a
bucket in at least one band with probability ``>= 1 - (1 - p(floor)**b)**L`` (``recall`` in
the plan, 0.999 by default), whatever the data, and every candidate is verified with the exact
cosine, so nothing below the floor is reported. ``b`` is chosen on the data (one probe band's
bucket sizes, so that the cost, bands x (rows + pairs compared), is lowest); ``L`` then follows
from the recall target.

Not a library: faiss' ``IndexLSH`` compares codes by brute force (quadratic), datasketch's LSH is
for MinHash signatures of sets, FALCONN is unmaintained; the banding here is a matrix product, a
sort per band and a compiled loop over the buckets (``workbench._kernels.band_topk``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
from numpy.typing import NDArray
from tqdm.auto import tqdm

if TYPE_CHECKING:
    from ..store.view import StoreView

#: Per-pair probability that a pair at the floor cosine collides in at least one band.
RECALL = 0.999
#: Rows gathered per read of the store's vectors.
CHUNK = 32_768
#: Rows projected per matrix product (its (rows, bands x bits) float32 result is ~45 MB).
PROJECT_CHUNK = 8_192
#: At most this many bands (the plan's recall is reported lower when more would be needed).
MAX_BANDS = 512
#: Seed of the hyperplanes (fixed: cached codes stay comparable with new rows' codes).
SEED = 0x5EED
#: Cost of one row in one band (sort, bookkeeping) and per bit of its key (projection), in
#: units of one pair compared (two 384-d dot products at random addresses, ~200 ns here).
ROW_COST = 0.5
BIT_COST = 0.1


@dataclass(frozen=True)
class LshPlan:
    """Bits per band, bands, the floor cosine and the per-pair recall at the floor."""

    bits: int
    bands: int
    floor: float
    recall: float
    probe_pairs: int = 0

    def hyperplanes(self, dim: int) -> NDArray[np.float32]:
        rng = np.random.default_rng([SEED, dim, self.bits, self.bands])
        return rng.standard_normal((dim, self.bands * self.bits), dtype=np.float32)

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def collision_recall(cos: float, bits: int, bands: int) -> float:
    """Probability that a pair at cosine `cos` shares a bucket in at least one band."""
    p = 1.0 - math.acos(max(-1.0, min(1.0, cos))) / math.pi
    return 1.0 - (1.0 - p ** bits) ** bands


def _bands_for(cos: float, bits: int, recall: float) -> int:
    p = 1.0 - math.acos(max(-1.0, min(1.0, cos))) / math.pi
    hit = p ** bits
    if hit >= 1.0:
        return 1
    if hit <= 0.0:
        return MAX_BANDS + 1
    return max(1, math.ceil(math.log(1.0 - recall) / math.log1p(-hit)))


def _codes(x: NDArray[np.float32], planes: NDArray[np.float32], bits: int
           ) -> NDArray[np.unsignedinteger[Any]]:
    """(n, bands) bucket keys: the sign bits of ``x @ planes``, `bits` per band (uint32 up to
    32 bits, else uint64), computed in chunks of PROJECT_CHUNK rows."""
    n = x.shape[0]
    bands = planes.shape[1] // bits
    width = 4 if bits <= 32 else 8
    out = np.empty((n, bands), dtype=np.uint32 if width == 4 else np.uint64)
    nbytes = (bits + 7) // 8
    for start in range(0, n, PROJECT_CHUNK):
        proj = x[start:start + PROJECT_CHUNK] @ planes
        m = proj.shape[0]
        packed = np.packbits((proj > 0).reshape(m, bands, bits), axis=2, bitorder="little")
        del proj
        wide = np.zeros((m, bands, width), dtype=np.uint8)
        wide[:, :, :nbytes] = packed
        out[start:start + m] = wide.view(out.dtype)[:, :, 0]
    return out


def _pairs_in(sorted_codes: NDArray[np.uint64]) -> int:
    """Pairs sharing a key, from sorted keys."""
    if sorted_codes.size < 2:
        return 0
    brk = np.flatnonzero(sorted_codes[1:] != sorted_codes[:-1]) + 1
    sizes = np.diff(np.concatenate([[0], brk, [sorted_codes.size]])).astype(np.int64)
    return int((sizes * (sizes - 1) // 2).sum())


def probe_codes(x: NDArray[np.float32]) -> NDArray[np.uint64]:
    """The 64-bit probe band's keys of `x` (unit rows): what :func:`plan` measures the data
    with. Row by row, so the rows may be hashed in parts (segment by segment) and concatenated.
    """
    probe = np.random.default_rng([SEED, x.shape[1], 64]).standard_normal(
        (x.shape[1], 64), dtype=np.float32)
    return _codes(x, probe, 64)[:, 0].astype(np.uint64)


def plan(x: NDArray[np.float32], floor: float, *, recall: float = RECALL) -> LshPlan:
    """Choose bits per band and bands for `x` (unit rows) so that a pair at cosine `floor`
    collides with probability >= `recall` at the lowest estimated cost."""
    return plan_from_probe(probe_codes(x), floor, recall=recall)


def plan_from_probe(probe: NDArray[np.uint64], floor: float, *, recall: float = RECALL
                    ) -> LshPlan:
    """:func:`plan` from the rows' probe keys (:func:`probe_codes`, in any row order)."""
    n = probe.shape[0]
    # one probe band of 64 bits: the pairs sharing a b-bit prefix, for every b at once
    full = np.sort(probe)
    best: tuple[float, int, int, int] | None = None
    for bits in range(4, 65):
        pairs = _pairs_in(full >> np.uint64(64 - bits)) if bits < 64 else _pairs_in(full)
        bands = _bands_for(floor, bits, recall)
        if bands > MAX_BANDS:
            break  # more bits only need more bands
        cost = bands * (n * (ROW_COST + BIT_COST * bits) + pairs)
        if best is None or cost < best[0]:
            best = (cost, bits, bands, pairs)
    if best is None:  # the floor is too low for MAX_BANDS at any width: the widest that fits
        bits, bands = 4, MAX_BANDS
        pairs = _pairs_in(full >> np.uint64(60))
    else:
        _, bits, bands, pairs = best
    return LshPlan(bits=bits, bands=bands, floor=float(floor),
                   recall=collision_recall(floor, bits, bands), probe_pairs=pairs)


def unit_vectors(view: StoreView, rows: pl.DataFrame) -> NDArray[np.float32]:
    """Full-precision vectors of `rows` (rows of `view` with ROW_COLUMNS), at unit length."""
    out = np.empty((rows.height, view.dim), dtype=np.float32)
    for lo, x in view.unit_vectors(rows, chunk=CHUNK):
        out[lo:lo + x.shape[0]] = x
    return out


def self_join(x: NDArray[np.float32], lsh: LshPlan, k: int, *, progress: bool
              ) -> tuple[NDArray[np.int64], NDArray[np.float32], NDArray[np.uint64]]:
    """Each row's k most similar rows at cosine >= the plan's floor among its band-mates.

    Returns positions (n, k) (``-1`` empty), similarities (n, k) (``-inf`` empty) and the
    (n, bands) codes (kept for incremental runs).
    """
    n = x.shape[0]
    nbr = np.full((n, k), -1, dtype=np.int64)
    sim = np.full((n, k), -np.inf, dtype=np.float32)
    codes = _codes(x, lsh.hyperplanes(x.shape[1]), lsh.bits)
    every = np.arange(n, dtype=np.int64)
    for band in tqdm(range(lsh.bands), desc="dedup LSH bands", unit="band",
                     disable=not progress):
        join_band(x, every, codes[:, band], lsh.floor, nbr, sim)
    return nbr, sim, codes


def join_band(x: NDArray[np.float32], rows: NDArray[np.int64],
              col: NDArray[np.unsignedinteger[Any]], floor: float, nbr: NDArray[np.int64],
              sim: NDArray[np.float32]) -> None:
    """One band: rows `rows` of `x` (ascending) with keys `col` are compared within their
    buckets and the pairs at >= `floor` enter the top-k lists `nbr` / `sim` in place.

    Bands taken in order, each row's list is its best k band-mates by (similarity descending,
    first band shared, position): a row meets its bucket's rows in ascending position (the
    stable sort), and ties never displace a neighbour already listed. The distributed
    dedup relies on this order to merge partial lists into the same graph.
    """
    from .._kernels import band_topk

    by_key = np.argsort(col, kind="stable")
    order = rows[by_key]
    sc = col[by_key]
    brk = np.flatnonzero(sc[1:] != sc[:-1]) + 1
    starts = np.concatenate([[0], brk]).astype(np.int64)
    ends = np.concatenate([brk, [rows.size]]).astype(np.int64)
    sizes = ends - starts
    band_topk(x, order, np.repeat(starts, sizes), np.repeat(ends, sizes), floor, nbr, sim)


def probe_old(new_codes: NDArray[np.uint64], old_codes: NDArray[np.uint64]
              ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Pairs (new position, old position) sharing a bucket in any band, each once: one hash
    join per band of the new rows' keys against the old rows' (cached) keys; no old vector is
    read here."""
    ia: list[NDArray[np.int64]] = []
    ib: list[NDArray[np.int64]] = []
    new_pos = pl.Series("i", np.arange(new_codes.shape[0], dtype=np.int64))
    old_pos = pl.Series("j", np.arange(old_codes.shape[0], dtype=np.int64))
    for band in range(new_codes.shape[1]):
        q = pl.DataFrame({"c": new_codes[:, band], "i": new_pos})
        o = pl.DataFrame({"c": old_codes[:, band], "j": old_pos})
        hit = q.join(o, on="c", how="inner")
        ia.append(hit.get_column("i").to_numpy())
        ib.append(hit.get_column("j").to_numpy())
    if not ia:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    both = pl.DataFrame({"i": np.concatenate(ia), "j": np.concatenate(ib)}).unique()
    return both.get_column("i").to_numpy(), both.get_column("j").to_numpy()
