"""On-disk embedding cache keyed by (model fingerprint, text hash), in SQLite.

SQLite gives crash-safe, concurrent-reader storage from the standard library; vectors are raw
float32 bytes (no pickle).
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

_CHUNK = 500


def default_cache_dir() -> Path:
    """``$WORKBENCH_CACHE_DIR`` if set, else ``~/.cache/workbench``."""
    env = os.environ.get("WORKBENCH_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "workbench"


def text_hash(text: str) -> bytes:
    """128-bit BLAKE2b of the UTF-8 text."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


class EmbeddingCache:
    """A folder holding ``embeddings.sqlite``.

    Parameters
    ----------
    folder : str or Path
        Where the cache lives; created if missing.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / "embeddings.sqlite"
        self._con = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        self._con.execute("PRAGMA journal_mode=WAL")
        self._con.execute(
            "CREATE TABLE IF NOT EXISTS emb (model TEXT NOT NULL, h BLOB NOT NULL, "
            "dim INTEGER NOT NULL, vec BLOB NOT NULL, PRIMARY KEY (model, h))"
        )
        self._con.commit()

    def get(self, model: str, texts: Sequence[str]) -> dict[int, NDArray[np.float32]]:
        """Cached vectors of `texts` for `model`, by position in `texts`."""
        hashes = [text_hash(t) for t in texts]
        by_hash: dict[bytes, NDArray[np.float32]] = {}
        uniq = list(dict.fromkeys(hashes))
        for start in range(0, len(uniq), _CHUNK):
            chunk = uniq[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._con.execute(
                f"SELECT h, dim, vec FROM emb WHERE model = ? AND h IN ({marks})",
                [model, *chunk],
            ).fetchall()
            for h, dim, vec in rows:
                arr = np.frombuffer(vec, dtype=np.float32)
                if arr.size == dim:
                    by_hash[h] = arr
        return {i: by_hash[h] for i, h in enumerate(hashes) if h in by_hash}

    def put(self, model: str, texts: Sequence[str], vectors: NDArray[np.float32]) -> None:
        """Store `vectors` (one row per text) for `model`."""
        vecs = np.ascontiguousarray(vectors, dtype=np.float32)
        self._con.executemany(
            "INSERT OR REPLACE INTO emb (model, h, dim, vec) VALUES (?, ?, ?, ?)",
            [(model, text_hash(t), vecs.shape[1], v.tobytes()) for t, v in zip(texts, vecs,
                                                                                strict=True)],
        )
        self._con.commit()

    def __len__(self) -> int:
        return int(self._con.execute("SELECT COUNT(*) FROM emb").fetchone()[0])

    def close(self) -> None:
        """Close the database connection."""
        self._con.close()
