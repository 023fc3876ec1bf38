"""On-disk cache of clustering intermediates (reductions, layouts, HDBSCAN spanning trees).

Each entry is ``<folder>/<hash>.npy`` (one float array) plus ``<hash>.json`` (what it is: the
stage, its parameters, the data digest, the store generation and selection it came from). The
hash covers the data digest (ids and vector bytes of the selected rows, in order) and the
parameters, so a metadata-only commit (``apply_labels``) that bumps the store generation but
leaves the vectors alone still hits the cache, and any change to the selected vectors misses it.
No pickle: ``np.load(..., allow_pickle=False)`` and JSON only. Writes are atomic (temporary
name, fsync, rename), so a reader never sees a torn file; an entry whose JSON or array does not
check out is treated as absent.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._atomic import write_atomic, write_npy_atomic

#: Bump when the meaning of a cached array changes, so stale entries stop matching.
CACHE_VERSION = 1


class CacheWriteWarning(UserWarning):
    """The clustering cache folder could not be written (the computation still succeeds)."""


def data_digest(ids: Sequence[str], vectors: NDArray[np.float32]) -> str:
    """BLAKE2b of the row ids and the float32 vector bytes, in row order (hex, 32 chars)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(np.asarray(vectors.shape, dtype=np.int64).tobytes())
    h.update("\x00".join(ids).encode("utf-8"))
    h.update(np.ascontiguousarray(vectors, dtype=np.float32).data)
    return h.hexdigest()


def params_key(stage: str, digest: str, params: dict[str, Any]) -> str:
    """Hash naming one cache entry: stage, data digest and canonical JSON of the parameters."""
    blob = json.dumps(
        {"v": CACHE_VERSION, "stage": stage, "data": digest, "params": params},
        sort_keys=True, default=repr,
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


class ArrayCache:
    """A folder of ``.npy`` arrays with ``.json`` sidecars; ``folder=None`` caches nothing.

    Parameters
    ----------
    folder : Path or None
        Where entries live; created on the first write.
    """

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self._warned = False

    def load(self, key: str) -> NDArray[Any] | None:
        """The array stored under `key`, or None when absent or damaged."""
        if self.folder is None:
            return None
        arr_path, meta_path = self.folder / f"{key}.npy", self.folder / f"{key}.json"
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            arr = np.load(arr_path, allow_pickle=False)
        except (OSError, ValueError):
            return None
        if list(arr.shape) != meta.get("shape") or str(arr.dtype) != meta.get("dtype"):
            return None
        return arr

    def save(self, key: str, array: NDArray[Any], meta: dict[str, Any]) -> None:
        """Store `array` under `key` with a JSON sidecar; warn once if the folder is unwritable."""
        if self.folder is None:
            return
        arr = np.ascontiguousarray(array)
        info = {**meta, "shape": list(arr.shape), "dtype": str(arr.dtype), "version": CACHE_VERSION}

        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            # The array first: a sidecar only ever names a complete array.
            write_npy_atomic(self.folder / f"{key}.npy", arr)
            text = json.dumps(info, sort_keys=True, indent=1, default=repr)
            write_atomic(self.folder / f"{key}.json",
                         lambda p: p.write_text(text, encoding="utf-8"))
        except OSError as exc:
            if not self._warned:
                self._warned = True
                warnings.warn(
                    f"cache: could not write the clustering cache in {self.folder} ({exc}); "
                    "results are computed but not cached",
                    CacheWriteWarning, stacklevel=3,
                )
