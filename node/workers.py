"""A node's worker processes (``--workers N``): how many, what each serves, and the parent that runs them.

- role ``ro``: every worker is a full read-only engine; the primary (worker 0) alone joins membership, the
  others follow the same share (a watch-only presence) so that they warm the same segments.
- role ``standalone``: the primary owns the log, every catalog write and maintenance. The
  others are read-only engines over the same catalog and storage that serve the search RPCs and the cache
  calls (:data:`SERVED_BY_EVERY_WORKER`) and ``Cmd set_config`` themselves, and forward every other call, as
  bytes, to the primary's own port, keeping its deadline and metadata and returning the primary's reply
  unchanged. Before each call it serves a secondary catches up with the catalog revision, so it sees
  everything a Flush acknowledged before the call started and every DDL at once.
- role ``rw``: one process (the writer's log and lease are one process's).

With more than one worker, the cache calls and ``Cmd set_config`` reach every worker, whichever received
them (``node/worker_broadcast.py``). Every worker serves the REST API on the node's REST port (``SO_REUSEPORT``)
through the same handler table as its gRPC port (``node/rest.py``), so REST calls are routed alike.

The admission budget (``request_memory``) is the node's: each worker gets its share.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from coordinator.limits import memory_limit
from coordinator.worker_pool import PoolConfig, serve_workers, strip_flags
from coordinator.workers import SPEC_FLAG, WorkerSpec, usable_workers
from node.settings import NodeSettings

log = logging.getLogger(__name__)

SERVED_BY_EVERY_WORKER = frozenset({"Search", "SearchByID", "SearchInFiles", "HybridSearch",
                                    "HybridSearchInSegments",
                                    # the cache calls: each worker serves them and sends them on to the others
                                    "PreloadCollection", "ReleaseCollection", "PreloadHybridCollection",
                                    "ReloadSegments"})


def forwards(role: str, spec: WorkerSpec | None) -> bool:
    """Whether this worker forwards what it does not serve to the primary (a standalone node's secondaries)."""
    return spec is not None and not spec.is_primary and role == "standalone"


def served_locally(role: str, spec: WorkerSpec | None, method: str) -> bool:
    """Whether a worker answers ``method`` itself (else it forwards it to the primary)."""
    return not forwards(role, spec) or method in SERVED_BY_EVERY_WORKER


def watch_only(role: str, spec: WorkerSpec | None) -> bool:
    """A read node's secondary follows membership without registering (the primary is the member)."""
    return spec is not None and not spec.is_primary and role == "ro"


def workers_for(settings: NodeSettings) -> int:
    """Worker processes to run: ``workers`` (0: the usable CPUs); a writer (rw) runs as one."""
    if settings.role == "rw":
        if settings.workers == 0:
            log.warning("role rw runs as one process: --workers 0 means 1 here")
        return 1
    return usable_workers(settings.workers)


def worker_request_memory(settings: NodeSettings, machine_memory: int, count: int) -> int:
    """Each worker's admission budget: the node's (``request_memory``, else a quarter of the machine's memory)
    shared among its ``count`` workers (at least 64 MB each)."""
    return max(64 << 20, settings.request_memory_bytes(machine_memory) // count)


def run(settings: NodeSettings, spec: WorkerSpec | None, argv: Sequence[str]) -> None:
    """Serve: one process, or (``workers`` > 1, not a worker itself) the parent of the workers."""
    from node.server import NodeServer

    count = workers_for(settings) if spec is None else 1
    if count == 1:
        NodeServer(settings, spec).serve_forever()
        return
    budget = ["--request-memory", f"{worker_request_memory(settings, memory_limit(), count)}B"]
    serve_workers(PoolConfig(
        prog="mishards node", module="node", argv=(*strip_flags(argv, ("--ready-file", SPEC_FLAG)), *budget),
        host=settings.host, advertise=settings.advertise, port=settings.port, count=count,
        metrics_port=settings.metrics_port, http_port=settings.rest_port,
        ready_file=settings.ready_file, worker_ports=settings.worker_ports, taken=(settings.health_port,)))
