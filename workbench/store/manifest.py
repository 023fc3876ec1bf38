"""The store manifest: a small JSON file naming the live segments of one generation.

A generation is committed by atomically renaming ``manifest-<generation>.json`` into place; the
newest manifest that exists is the current generation. Each manifest carries a CRC-32 of its own
body, and names every file it depends on with its size and CRC-32.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .._atomic import crc32_bytes, crc32_file, write_bytes_atomic
from .._validation import DTYPES, METRICS
from ..errors import CorruptStoreError, NotAStoreError

FORMAT = "workbench-store"
FORMAT_VERSION = 1
MANIFEST_RE = re.compile(r"^manifest-(\d{8})\.json$")
SEGMENTS_DIR = "segments"
#: Segments written by other processes wait here (one folder per job) until committed.
STAGING_DIR = "staging"
#: A segment id as the store makes them (:func:`~workbench.store.segment.new_segment_id`).
SEGMENT_ID_RE = re.compile(r"^seg-[0-9a-f]{16}$")
#: The name each file of a segment must have: a plain name inside ``segments/``, so a forged
#: manifest cannot make the store read or write outside its folder ("../x", "/etc/x").
FILE_RE = {
    "index": r"\.index\.usearch",
    "vectors": r"\.vectors\.npy",
    "meta": r"\.meta(-[0-9a-f]{8})?\.parquet",
    "tombstones": r"\.tomb-[0-9a-f]{8}\.npy",
}
#: Largest dimension a manifest may declare (usearch's own limit is far above any model's).
MAX_DIM = 1 << 16


@dataclass(frozen=True)
class FileEntry:
    """One file of a segment: its name (relative to ``segments/``), size and CRC-32."""

    name: str
    size: int
    crc32: str


@dataclass(frozen=True)
class SegmentEntry:
    """An immutable segment: index, vectors and metadata, plus its current tombstones."""

    id: str
    rows: int
    index: FileEntry
    vectors: FileEntry
    meta: FileEntry
    tombstones: FileEntry | None = None
    deleted: int = 0

    @property
    def live(self) -> int:
        """Rows not deleted."""
        return self.rows - self.deleted

    def files(self) -> list[FileEntry]:
        """Every file the segment needs."""
        out = [self.index, self.vectors, self.meta]
        if self.tombstones is not None:
            out.append(self.tombstones)
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready fields, as the manifest stores them (see :meth:`from_dict`)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SegmentEntry:
        """The entry of :meth:`to_dict`'s fields, checked as a manifest's are.

        Raises
        ------
        ValueError
            A field outside what the store writes (bad id, file name, size or checksum).
        """
        return _segment_entry(d)


@dataclass(frozen=True)
class Manifest:
    """One generation of a store."""

    generation: int
    dim: int
    metric: str
    dtype: str
    model: dict[str, Any] | None
    index_params: dict[str, int]
    next_key: int = 0
    segments: tuple[SegmentEntry, ...] = field(default_factory=tuple)

    def body(self) -> dict[str, Any]:
        """The JSON body without its checksum."""
        d = asdict(self)
        d["segments"] = [asdict(s) for s in self.segments]
        return {"format": FORMAT, "version": FORMAT_VERSION, **d}

    def to_bytes(self) -> bytes:
        """Serialised manifest with its own CRC-32."""
        body = self.body()
        canon = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        return json.dumps({**body, "checksum": crc32_bytes(canon)}, indent=1).encode()

    def referenced(self) -> set[str]:
        """Names of all files this generation needs."""
        return {f.name for s in self.segments for f in s.files()}


def manifest_path(root: Path, generation: int) -> Path:
    """Path of the manifest of `generation`."""
    return root / f"manifest-{generation:08d}.json"


def list_generations(root: Path) -> list[int]:
    """Generations with a manifest in `root`, newest first."""
    if not root.is_dir():
        return []
    gens = [int(m.group(1)) for p in root.iterdir() if (m := MANIFEST_RE.match(p.name))]
    return sorted(gens, reverse=True)


class _Invalid(ValueError):
    """A manifest field outside what the store writes."""


def _file_entry(d: Any, seg_id: str, role: str) -> FileEntry:
    entry = FileEntry(name=str(d["name"]), size=int(d["size"]), crc32=str(d["crc32"]))
    if not re.fullmatch(re.escape(seg_id) + FILE_RE[role], entry.name):
        raise _Invalid(f"segment {seg_id}: {role} file name {entry.name!r} is not a plain "
                       f"file of that segment inside {SEGMENTS_DIR}/")
    if entry.size < 0 or not re.fullmatch(r"[0-9a-f]{8}", entry.crc32):
        raise _Invalid(f"segment {seg_id}: {role} file {entry.name!r} has an invalid size or "
                       "checksum")
    return entry


def _segment_entry(s: Any) -> SegmentEntry:
    seg_id = str(s["id"])
    if not SEGMENT_ID_RE.fullmatch(seg_id):
        raise _Invalid(f"segment id {seg_id!r} is not of the form seg-<16 hex digits>")
    entry = SegmentEntry(
        id=seg_id,
        rows=int(s["rows"]),
        index=_file_entry(s["index"], seg_id, "index"),
        vectors=_file_entry(s["vectors"], seg_id, "vectors"),
        meta=_file_entry(s["meta"], seg_id, "meta"),
        tombstones=(_file_entry(s["tombstones"], seg_id, "tombstones")
                    if s.get("tombstones") else None),
        deleted=int(s.get("deleted", 0)),
    )
    if entry.rows < 1 or not 0 <= entry.deleted < entry.rows:
        raise _Invalid(f"segment {seg_id}: expected rows >= 1 and 0 <= deleted < rows, got "
                       f"rows={entry.rows}, deleted={entry.deleted}")
    if (entry.tombstones is None) != (entry.deleted == 0):
        raise _Invalid(f"segment {seg_id}: a tombstone file goes with deleted > 0")
    return entry


def _check_manifest(m: Manifest, expected_generation: int | None) -> None:
    if expected_generation is not None and m.generation != expected_generation:
        raise _Invalid(f"generation {m.generation} inside a file named for generation "
                       f"{expected_generation}")
    if m.metric not in METRICS or m.dtype not in DTYPES:
        raise _Invalid(f"metric {m.metric!r} / dtype {m.dtype!r} is not one the store knows")
    if not 1 <= m.dim <= MAX_DIM or m.next_key < 0 or m.generation < 0:
        raise _Invalid(f"dim={m.dim}, next_key={m.next_key}, generation={m.generation} "
                       "out of range")
    for name in ("connectivity", "expansion_add", "expansion_search", "exact_threshold"):
        if m.index_params.get(name, 0) < 1:
            raise _Invalid(f"index_params[{name!r}] missing or not positive")
    if m.model is not None and not isinstance(m.model, dict):
        raise _Invalid("model is neither null nor an object")
    ids = [s.id for s in m.segments]
    if len(set(ids)) != len(ids):
        raise _Invalid("a segment is listed twice")


def read_manifest(path: Path) -> Manifest:
    """Parse and verify one manifest file, raising :class:`CorruptStoreError` naming it."""
    try:
        raw = path.read_bytes()
        data = json.loads(raw)
        checksum = data.pop("checksum")
        canon = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    except (OSError, ValueError, KeyError, AttributeError, TypeError) as exc:
        raise CorruptStoreError(
            f"manifest {path} is unreadable or truncated ({exc}); "
            "open an earlier generation with Store.open(path, generation=...)",
            path=path,
        ) from exc
    if crc32_bytes(canon) != checksum:
        raise CorruptStoreError(
            f"manifest {path} fails its checksum (altered or partially written); "
            "open an earlier generation with Store.open(path, generation=...)",
            path=path,
        )
    if data.get("format") != FORMAT or data.get("version") != FORMAT_VERSION:
        raise CorruptStoreError(
            f"manifest {path}: expected format {FORMAT} v{FORMAT_VERSION}, "
            f"got {data.get('format')} v{data.get('version')}",
            path=path,
        )
    named = MANIFEST_RE.match(path.name)
    try:
        manifest = Manifest(
            generation=int(data["generation"]),
            dim=int(data["dim"]),
            metric=str(data["metric"]),
            dtype=str(data["dtype"]),
            model=data["model"],
            index_params={str(k): int(v) for k, v in data["index_params"].items()},
            next_key=int(data["next_key"]),
            segments=tuple(_segment_entry(s) for s in data["segments"]),
        )
        _check_manifest(manifest, int(named.group(1)) if named else None)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CorruptStoreError(f"manifest {path}: missing or invalid field ({exc})",
                                path=path) from exc
    return manifest


def write_manifest(root: Path, manifest: Manifest, *, keep_on_error: bool = True) -> Path:
    """Commit `manifest`: the rename of its file is the commit point.

    With `keep_on_error` (commits) a failure after the rename leaves the file in place: the
    caller then knows the commit happened from the file being there.
    """
    path = manifest_path(root, manifest.generation)
    write_bytes_atomic(path, manifest.to_bytes(), keep_on_error=keep_on_error)
    return path


def verify_files(root: Path, manifest: Manifest, *, checksums: bool,
                 folder: Path | None = None) -> None:
    """Check that every file of `manifest` exists with its recorded size (and CRC-32).

    The files are looked for in `folder` (default: the store's ``segments/``).
    """
    seg_dir = root / SEGMENTS_DIR if folder is None else folder
    for seg in manifest.segments:
        for f in seg.files():
            p = seg_dir / f.name
            try:
                size = p.stat().st_size
            except FileNotFoundError as exc:
                raise CorruptStoreError(
                    f"file {p} named by generation {manifest.generation} is missing", path=p
                ) from exc
            if size != f.size:
                raise CorruptStoreError(
                    f"file {p} is {size} bytes, expected {f.size} (truncated or overwritten)",
                    path=p,
                )
            if checksums and crc32_file(p) != f.crc32:
                raise CorruptStoreError(
                    f"file {p} fails its CRC-32 check (expected {f.crc32}): the file was altered",
                    path=p,
                )


def require_store(root: Path) -> list[int]:
    """Generations in `root`, or :class:`NotAStoreError`."""
    gens = list_generations(root)
    if not gens:
        raise NotAStoreError(
            f"path: expected a workbench store (a folder with manifest-*.json), got {root}"
            + ("" if root.exists() else " which does not exist")
        )
    return gens
