"""The workbench on Ray: ingest, search and analyses over a store's segments, across a cluster.

Nothing outside this package imports Ray; ``import workbench`` does not load it. Every entry
point works segment by segment through the store's public API
(:meth:`workbench.Store.view`, :meth:`workbench.Store.commit_segments`), and its results equal
the single-machine ones (tests say so).
"""

from __future__ import annotations

from ._cluster import DistributedError, connect, describe

__all__ = ["DistributedError", "connect", "describe"]
