"""``workbench info``: a store's summary and its metadata columns."""

from __future__ import annotations

import argparse

from ..errors import InvalidInputError


def info(args: argparse.Namespace) -> int:
    """Print a store's summary: rows, dimension, metric, model, generation, segments, columns.

    The store is named like in every other command, --store PATH, or as a bare PATH.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed options of ``workbench info``.

    Returns
    -------
    int
        The exit status, 0.

    Raises
    ------
    InvalidInputError
        No store named, or PATH and --store naming different folders.
    NotAStoreError
        The folder is not a store.
    """
    from ..store import Store

    if args.path is not None and args.store is not None and args.path != args.store:
        raise InvalidInputError(f"--store: expected one store, got PATH {args.path!r} and "
                                f"--store {args.store!r}; give one of them")
    path = args.store if args.store is not None else args.path
    if path is None:
        raise InvalidInputError("--store: expected the store folder, as --store PATH or PATH")
    with Store.open(path, readonly=True, verify=not args.fast) as store:
        print(store)
        print(store.segments)
        schema = store.scan().collect_schema()
    columns = [(c, t) for c, t in schema.items() if c not in ("key", "id")]
    print(f"metadata columns ({len(columns)}):" if columns else "metadata columns: none")
    width = max((len(c) for c, _ in columns), default=0)
    for c, t in columns:
        print(f"  {c:<{width}}  {t}")
    return 0
