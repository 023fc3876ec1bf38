"""ipywidgets views over library results: thin, no compute beyond one library call per action.

The library never imports this package (a test checks it).
"""

from __future__ import annotations

from ._common import thumbnails
from .cluster import ClusterExplorer
from .compress import CompressionLab
from .dedup import DedupReviewer
from .drift import DriftDashboard
from .linked import LinkedViews
from .search import SearchPanel

__all__ = ["ClusterExplorer", "CompressionLab", "DedupReviewer", "DriftDashboard", "LinkedViews",
           "SearchPanel", "thumbnails"]
