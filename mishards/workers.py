"""A proxy's worker processes (``--workers N``): N identical proxies sharing the gRPC and REST ports.

The proxy holds no state of its own (membership, the writer and the catalog are read from where they live),
so every worker is a full proxy; the parent (``coordinator/worker_pool.py``) reserves the ports, starts and
restarts the workers, serves one ``/metrics`` for all and writes the ready file.
"""

from __future__ import annotations

from collections.abc import Sequence

from coordinator.worker_pool import PoolConfig, serve_workers, strip_flags
from coordinator.workers import SPEC_FLAG, WorkerSpec, usable_workers
from mishards.settings import ProxySettings


def run(settings: ProxySettings, spec: WorkerSpec | None, argv: Sequence[str]) -> None:
    """Serve: one process, or (``workers`` > 1, not a worker itself) the parent of the workers."""
    from mishards.server import ProxyServer

    count = usable_workers(settings.workers) if spec is None else 1
    if count == 1:
        ProxyServer(settings, spec).serve_forever()
        return
    serve_workers(PoolConfig(
        prog="mishards proxy", module="mishards", argv=strip_flags(argv, ("--ready-file", SPEC_FLAG)),
        host=settings.host, advertise="", port=settings.port, count=count, metrics_port=settings.metrics_port,
        http_port=settings.http_port, ready_file=settings.ready_file, worker_ports=settings.worker_ports,
        taken=(settings.health_port,)))
