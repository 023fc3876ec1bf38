"""One committed (or staged) state of a store, immutable, swapped in with one assignment.

A search takes one :class:`Snapshot` and reads everything from it (manifest, loaded segments,
live rows), so a commit in another thread can never give it one generation's row positions
and another's metadata.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType

import numpy as np
import polars as pl
from numpy.typing import NDArray

from ..errors import CorruptStoreError, InvalidInputError
from ._schema import unified
from .manifest import SEGMENTS_DIR, Manifest
from .segment import LoadedSegment, _view_index, load_segment, read_meta, read_tombstones

#: Internal columns of :attr:`Snapshot.live`: segment ordinal and row within the segment.
HIDDEN = ("_seg", "_row")


@dataclass(frozen=True, eq=False)
class Snapshot:
    """Manifest, loaded segments and the live rows (``key``, ``id``, metadata, ``_seg``,
    ``_row``; sorted by key) of one generation."""

    manifest: Manifest
    segs: Mapping[str, LoadedSegment]
    live: pl.DataFrame
    live_keys: NDArray[np.uint64]

    @classmethod
    def build(cls, manifest: Manifest, segs: Mapping[str, LoadedSegment], *,
              check: bool = False) -> Snapshot:
        """The snapshot of `manifest` over its loaded `segs`.

        With `check` (states read from disk), keys and ids must be unique across segments
        and the segments' column types must widen into one schema.
        """
        frames = []
        for i, entry in enumerate(manifest.segments):
            seg = segs[entry.id]
            f = seg.meta.with_columns(
                pl.lit(i, dtype=pl.UInt32).alias("_seg"),
                pl.int_range(seg.meta.height, dtype=pl.UInt32).alias("_row"),
            )
            if seg.tombstones.size:
                f = f.filter(~pl.col("key").is_in(pl.Series(seg.tombstones).implode()))
            frames.append(f)
        if check and len({tuple(f.schema.items()) for f in frames}) > 1:
            try:
                unified(f.schema for f in frames)
            except InvalidInputError as exc:
                raise CorruptStoreError(
                    f"generation {manifest.generation}: segments' metadata types conflict "
                    f"({exc})"
                ) from exc
        if frames:
            live = pl.concat(frames, how="diagonal_relaxed").sort("key")
        else:
            live = pl.DataFrame(
                schema={"key": pl.UInt64, "id": pl.Utf8, "_seg": pl.UInt32, "_row": pl.UInt32}
            )
        keys = live.get_column("key").to_numpy()
        if check:
            _check_unique(manifest, live, keys)
        return cls(manifest=manifest, segs=MappingProxyType(dict(segs)), live=live,
                   live_keys=keys)

    def with_params(self, params: dict[str, int]) -> Snapshot:
        """The same state with other index parameters (``expansion_search``)."""
        return replace(self, manifest=replace(self.manifest, index_params=params))

    def seg(self, ordinal: int) -> LoadedSegment:
        """The loaded segment at position `ordinal` of the manifest (``_seg`` values)."""
        return self.segs[self.manifest.segments[ordinal].id]

    @property
    def schema(self) -> dict[str, pl.DataType]:
        """Metadata columns and types (``key``, ``id`` and the user's columns)."""
        return {k: v for k, v in self.live.schema.items() if k not in HIDDEN}


def _check_unique(manifest: Manifest, live: pl.DataFrame, keys: NDArray[np.uint64]) -> None:
    if keys.size > 1 and not (np.diff(keys.astype(np.int64, copy=False)) != 0).all():
        raise CorruptStoreError(
            f"generation {manifest.generation}: a key appears in two segments"
        )
    if keys.size and int(keys[-1]) >= manifest.next_key:
        raise CorruptStoreError(
            f"generation {manifest.generation}: key {int(keys[-1])} is not below the "
            f"manifest's next_key {manifest.next_key}"
        )
    if live.get_column("id").is_duplicated().any():
        raise CorruptStoreError(f"generation {manifest.generation}: an id is live twice")


def load_segments(
    root: Path, manifest: Manifest, reuse: Mapping[str, LoadedSegment] | None = None
) -> dict[str, LoadedSegment]:
    """Load the segments of `manifest`, reusing unchanged ones from `reuse`."""
    seg_dir = root / SEGMENTS_DIR
    reuse = reuse or {}
    segs: dict[str, LoadedSegment] = {}
    for entry in manifest.segments:
        old = reuse.get(entry.id)
        if old is not None and old.entry == entry:
            segs[entry.id] = old
            continue
        if (old is not None and old.entry.index == entry.index
                and old.entry.vectors == entry.vectors and old.entry.rows == entry.rows):
            # Immutable index and vectors kept (a delete or a metadata-only update): reload
            # only the file that changed.
            meta = old.meta if old.entry.meta == entry.meta else read_meta(seg_dir, entry)
            if meta is not old.meta and not np.array_equal(meta.get_column("key").to_numpy(),
                                                           old.keys):
                raise CorruptStoreError(
                    f"metadata file {seg_dir / entry.meta.name}: its keys differ from its "
                    "segment's", path=seg_dir / entry.meta.name)
            tombs = (old.tombstones if old.entry.tombstones == entry.tombstones
                     else read_tombstones(seg_dir, entry, keys=old.keys))
            segs[entry.id] = replace(old, entry=entry, meta=meta, tombstones=tombs)
            continue
        segs[entry.id] = load_segment(
            seg_dir, entry, dim=manifest.dim, metric=manifest.metric, dtype=manifest.dtype,
            params=manifest.index_params,
        )
    return segs


def with_search_breadth(root: Path, s: Snapshot, expansion: int) -> Snapshot:
    """`s` over private views of its index files searching with breadth `expansion`, so one
    job (a dedup self-join) can search shallower or deeper without changing the handle's
    setting under other threads. A segment whose file cannot be viewed again (collected
    meanwhile) keeps the shared index."""
    params = {**s.manifest.index_params, "expansion_search": int(expansion)}
    seg_dir = root / SEGMENTS_DIR
    segs: dict[str, LoadedSegment] = {}
    for entry in s.manifest.segments:
        seg = s.segs[entry.id]
        try:
            index = _view_index(seg_dir / entry.index.name, entry, dim=s.manifest.dim,
                                metric=s.manifest.metric, dtype=s.manifest.dtype,
                                params=params)
        except CorruptStoreError:
            segs[entry.id] = seg
            continue
        segs[entry.id] = replace(seg, index=index)
    return replace(s, segs=MappingProxyType(segs))
