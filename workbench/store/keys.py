"""The keys a write gave its rows: an array that prints short."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

#: Keys shown in full by ``repr`` up to this many; longer arrays show the first and last.
SHOWN = 6


class KeyArray(np.ndarray):  # type: ignore[type-arg]
    """The uint64 keys of new rows (what :meth:`Store.add` and :meth:`Store.upsert` return).

    A NumPy array in every respect (index it, pass it to ``store.get``, ``np.asarray`` gives
    the plain array) whose ``repr`` is one short line, so that a REPL or notebook echoing
    ``store.add(...)`` shows ``KeyArray(2,000 keys: 0 1 2 … 1999)``, not every number.

    Examples
    --------
    >>> KeyArray.of(np.arange(3, dtype=np.uint64))
    KeyArray(3 keys: 0 1 2)
    """

    @classmethod
    def of(cls, keys: NDArray[np.uint64]) -> KeyArray:
        """View `keys` as a :class:`KeyArray` (no copy)."""
        return np.asarray(keys, dtype=np.uint64).view(cls)

    def __array_wrap__(self, arr: Any, context: Any = None, return_scalar: bool = False
                       ) -> Any:
        """Arithmetic and reductions give plain arrays or scalars: a sum is not keys."""
        out = np.asarray(arr).view(np.ndarray)
        return out[()] if return_scalar or out.ndim == 0 else out

    def __repr__(self) -> str:
        flat = np.asarray(self).reshape(-1)
        n = flat.size
        if n <= SHOWN:
            shown = " ".join(str(k) for k in flat)
        else:
            shown = " ".join(str(k) for k in flat[: SHOWN // 2]) + f" … {flat[-1]}"
        word = "key" if n == 1 else "keys"
        return f"KeyArray({n:,} {word}{': ' if n else ''}{shown})"

    __str__ = __repr__

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        """IPython's display: the same short line."""
        p.text(repr(self))
