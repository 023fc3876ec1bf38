"""Run by test_two_nodes: a two-node Ray cluster on this machine (two raylets), an ingest into
the store at argv[1] from the Parquet files at argv[2], and the report as JSON on stdout."""

from __future__ import annotations

import json
import os
import sys

for k, v in {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled",
             "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}.items():
    os.environ.setdefault(k, v)

import ray  # noqa: E402
from ray.cluster_utils import Cluster  # noqa: E402

import workbench as wb  # noqa: E402
import workbench.distributed as wd  # noqa: E402

NODE = {"num_cpus": 1, "object_store_memory": 128 * 1024**2, "include_dashboard": False}


def main() -> None:
    cluster = Cluster(initialize_head=True, head_node_args=dict(NODE))
    try:
        cluster.add_node(**NODE)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, logging_level="WARNING")
        info = wd.connect()
        report = wd.ingest(sys.argv[1], sys.argv[2], id="doc", embedder=wb.embed.Hashing(dim=16),
                           workers=2, rows_per_segment=100, progress=False)
        print(json.dumps({"nodes_in_cluster": info["nodes"], "nodes": list(report.nodes),
                          "added": report.added, "segments": report.segments}))
    finally:
        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    main()
