"""Joining or starting a Ray cluster with safe local defaults."""

from __future__ import annotations

import os
from typing import Any

from ..errors import InvalidInputError, WorkbenchError


class DistributedError(WorkbenchError):
    """A distributed job failed (a worker died, Ray is missing or unreachable)."""


#: Set for a cluster this process starts itself (read when Ray starts its processes).
LOCAL_ENV = {
    # No usage report leaves the machine.
    "RAY_USAGE_STATS_ENABLED": "0",
    # A local cluster on loopback needs no token; a cluster the user runs keeps its own mode.
    "RAY_AUTH_MODE": "disabled",
    # Keeps a local cluster on 127.0.0.1: without it Ray binds the host's address.
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
}
#: Object store of a local cluster: Ray's default takes 30 % of RAM; batches of embeddings and
#: segment entries need far less.
LOCAL_OBJECT_STORE_BYTES = 512 * 1024**2


def local_system_config(cpus: int) -> dict[str, int]:
    """Ray settings of a local cluster: idle task workers stay warm for the next stage.

    Ray keeps at most ``num_workers_soft_limit`` worker processes (default: the CPUs) and
    kills idle ones above it within a second. A job's actors (the embedding pool, the
    ledger) count against it, so the write tasks that follow them found their workers
    killed and started new ones, each paying an interpreter start and the store's imports
    (~4.5 s on 2 cores, twice per ingest job). Room for the actors, the write tasks and the
    read tasks keeps them warm; an idle worker holds ~200 MB.
    """
    return {"num_workers_soft_limit": 2 * cpus + 2}


def require_ray() -> Any:
    """The ``ray`` module, or a :class:`DistributedError` saying what to install."""
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - ray is in the dev extra
        raise DistributedError(
            "ray: the distributed mode needs Ray; install it with "
            "pip install 'workbench[distributed]'"
        ) from exc
    return ray


def connect(address: str | None = None, *, num_cpus: int | None = None) -> dict[str, Any]:
    """Join a running Ray cluster, or start a local one with safe defaults.

    Calling it again while connected is a no-op (returns the same description).

    Parameters
    ----------
    address : str, optional
        ``"auto"`` or ``"HOST:PORT"`` of a running cluster (``ray start --head`` prints it);
        also read from ``RAY_ADDRESS``. Without either, a local cluster is started in this
        process with:

        - no dashboard (``include_dashboard=False``): it opens an HTTP port and starts extra
          processes a notebook does not need;
        - loopback only (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, ``127.0.0.1``): otherwise Ray
          binds the host's network address and the cluster is reachable from the network;
        - usage stats off (``RAY_USAGE_STATS_ENABLED=0``): nothing is reported anywhere;
        - token authentication off (``RAY_AUTH_MODE=disabled``): nothing else can reach a
          loopback cluster, and a token would have to be handed to every worker;
        - a 512 MiB object store instead of 30 % of the machine's memory;
        - idle worker processes kept for the next job stage (see
          :func:`local_system_config`).

        A cluster you start yourself keeps its own settings.
    num_cpus : int, optional
        CPUs of a local cluster (default: all); ignored when joining one.

    Returns
    -------
    dict
        ``address``, ``nodes`` (alive), ``cpus`` (total), ``local`` (True when started here).

    Raises
    ------
    DistributedError
        The cluster cannot be reached.
    InvalidInputError
        `num_cpus` below 1.
    """
    ray = require_ray()
    if num_cpus is not None and (isinstance(num_cpus, bool) or not isinstance(num_cpus, int)
                                 or num_cpus < 1):
        raise InvalidInputError(f"num_cpus: expected an integer >= 1, got {num_cpus!r}")
    address = address or os.environ.get("RAY_ADDRESS") or None
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"logging_level": "WARNING", "log_to_driver": True,
                                  "configure_logging": True}
        try:
            if address is None:
                for k, v in LOCAL_ENV.items():
                    os.environ.setdefault(k, v)
                ray.init(num_cpus=num_cpus, include_dashboard=False,
                         object_store_memory=LOCAL_OBJECT_STORE_BYTES,
                         _system_config=local_system_config(num_cpus or os.cpu_count() or 1),
                         _node_ip_address="127.0.0.1", **kwargs)
            else:
                ray.init(address=address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise DistributedError(
                f"address: could not reach a Ray cluster at {address!r}: {exc}") from exc
        _quiet_data()
    return describe()


def describe() -> dict[str, Any]:
    """The connected cluster: ``address``, ``nodes``, ``cpus``, ``local``."""
    ray = require_ray()
    ctx = ray.get_runtime_context()
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    return {
        "address": ctx.gcs_address,
        "nodes": len(nodes),
        "cpus": int(sum(n.get("Resources", {}).get("CPU", 0) for n in nodes)),
        "local": os.environ.get("RAY_ADDRESS") is None,
    }


def _quiet_data() -> None:
    """Ray Data's own progress bars and per-operator log lines off: our jobs show one tqdm."""
    import logging
    import warnings

    import ray.data

    logging.getLogger("ray.data").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        # Ray 2.60 warns about its own deprecated defaults when the context is first built.
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    ctx.verbose_stats_logs = False


def ensure(address: str | None = None) -> Any:
    """``ray``, connected (a local cluster is started when none is)."""
    ray = require_ray()
    if not ray.is_initialized():
        connect(address)
    return ray


def default_workers(workers: int | None) -> int:
    """`workers` checked, or the cluster's CPU count."""
    if workers is None:
        ray = ensure()
        return max(1, int(ray.cluster_resources().get("CPU", 1)))
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidInputError(f"workers: expected an integer >= 1, got {workers!r}")
    return workers
