"""Child process for the crash-safety test: commits forever until SIGKILLed.

Step ``i`` either adds batch ``i`` (ROWS rows) and deletes row 0 of the previous add in one
commit, or (every 4th step) compacts. It prints ``begin i op`` before and ``done i`` after.
"""

from __future__ import annotations

import sys

import numpy as np
import polars as pl

ROWS = 150
DIM = 16


def is_compaction(step: int) -> bool:
    return step % 4 == 3


def add_steps(last: int) -> list[int]:
    return [s for s in range(last + 1) if not is_compaction(s)]


def expected_ids(last: int) -> set[str]:
    """Ids present after steps 0..last committed."""
    steps = add_steps(last)
    ids = {f"b{s}-{j}" for s in steps for j in range(ROWS)}
    ids -= {f"b{s}-0" for s in steps[:-1]}
    return ids


def batch(step: int) -> tuple[pl.DataFrame, np.ndarray]:
    rng = np.random.default_rng(step)
    vecs = rng.normal(size=(ROWS, DIM)).astype(np.float32)
    df = pl.DataFrame({"id": [f"b{step}-{j}" for j in range(ROWS)], "step": [step] * ROWS})
    return df, vecs


def main(path: str) -> None:
    import workbench as wb
    from workbench.errors import NotAStoreError

    try:
        store = wb.Store.open(path)
    except NotAStoreError:
        store = wb.Store.create(path, dim=DIM, dtype="f16", exact_threshold=64)
    scan = store.scan()
    steps = scan.select(pl.col("step").max()).collect().item() if len(store) else None
    step = 0 if steps is None else int(steps) + 1
    print("ready", flush=True)
    prev_add = add_steps(step - 1)[-1:] if step else []
    while True:
        op = "compact" if is_compaction(step) else "add"
        print(f"begin {step} {op}", flush=True)
        if op == "compact":
            store.compact(progress=False)
        else:
            df, vecs = batch(step)
            with store.transaction():
                store.add(df, vectors=vecs, progress=False)
                if prev_add:
                    store.delete([f"b{prev_add[0]}-0"])
            prev_add = [step]
        print(f"done {step}", flush=True)
        step += 1


if __name__ == "__main__":
    main(sys.argv[1])
