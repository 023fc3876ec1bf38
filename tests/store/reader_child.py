"""Reader process for the concurrency tests: opens, searches and refreshes in a loop.

Prints one JSON line per observation, ``{"gen": g, "ids": crc}``, and ``{"error": ...}`` for
every exception; stops when the file ``<store>.stop`` appears. Each search is checked
against the snapshot it ran on: every returned id is live there and its distance is the
cosine distance to that id's vector.
"""

from __future__ import annotations

import json
import sys
import traceback
import zlib
from pathlib import Path

import numpy as np


def ids_crc(ids: list[str]) -> int:
    return zlib.crc32("\n".join(sorted(ids)).encode())


def observe(store: object) -> dict[str, object]:
    """The generation a handle sees and a checksum of its live ids."""
    ids = store.scan().select("id").collect()["id"].to_list()  # type: ignore[attr-defined]
    return {"gen": store.generation, "ids": ids_crc(ids)}  # type: ignore[attr-defined]


def check(store: object) -> dict[str, object]:
    import workbench as wb

    assert isinstance(store, wb.Store)
    meta, vecs = store.fetch()
    ids = meta["id"].to_list()
    obs: dict[str, object] = {"gen": store.generation, "ids": ids_crc(ids)}
    if not ids:
        return obs
    rng = np.random.default_rng(len(ids))
    pick = rng.choice(len(ids), size=min(4, len(ids)), replace=False)
    res = store.search(vecs[pick], k=min(5, len(ids)))
    live = dict(zip(ids, range(len(ids)), strict=True))
    for q, rid, dist in res.select("query", "id", "distance").iter_rows():
        if rid not in live:
            raise AssertionError(f"search returned {rid!r}, not live in generation "
                                 f"{store.generation}")
        a, b = vecs[pick[q]], vecs[live[rid]]
        true = 1.0 - float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
        if abs(true - dist) > 2e-2:  # f16 index distances
            raise AssertionError(f"id {rid!r} reported at distance {dist:.4f}, its vector is at "
                                 f"{true:.4f}")
    return obs


def main(path: str) -> None:
    import workbench as wb
    from workbench.errors import NotAStoreError

    stop = Path(path + ".stop")
    print(json.dumps({"ready": True}), flush=True)
    loop = 0
    while not stop.exists():
        loop += 1
        try:
            # Mostly bare opens and refreshes (the racy part); a full check now and then.
            with wb.Store.open(path, readonly=True) as store:
                print(json.dumps(check(store) if loop % 4 == 0 else observe(store)), flush=True)
                for _ in range(3):
                    store.refresh()
                    print(json.dumps(observe(store)), flush=True)
        except NotAStoreError:
            continue
        except Exception as exc:  # every error is reported: the test expects none
            print(json.dumps({"error": f"{type(exc).__name__}: {exc}",
                              "trace": traceback.format_exc(limit=4)}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
