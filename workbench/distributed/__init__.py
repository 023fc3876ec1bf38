"""The workbench on Ray: ingest, search and analyses over a store's segments, across a cluster.

Nothing outside this package imports Ray; ``import workbench`` does not load it. Every entry
point works segment by segment through the store's public API
(:meth:`workbench.Store.view`, :meth:`workbench.Store.commit_segments`), and its results equal
the single-machine ones (tests say so).
"""

from __future__ import annotations

from ._cluster import DistributedError, connect, describe
from .cluster import DistributedClusterResult, cluster
from .dedup import find_duplicates
from .drift import compute_drift
from .ingest import IngestReport, ingest
from .search import SearchService

__all__ = [
    "DistributedClusterResult",
    "DistributedError",
    "IngestReport",
    "SearchService",
    "cluster",
    "compute_drift",
    "connect",
    "describe",
    "find_duplicates",
    "ingest",
]
