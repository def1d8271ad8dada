"""The parent of a multi-process node or proxy (``--workers N``, N > 1).

It reserves the shared gRPC port (and each worker's own port, and the shared REST port when asked) with sockets
that are bound with ``SO_REUSEPORT`` but never listen: the kernel hands connections only to listening sockets,
so the workers, binding the same ports with ``grpc.so_reuseport``, take every connection, while no other
process can take a port between a worker's death and its restart. It then starts the workers (fresh
interpreters: gRPC does not survive ``fork``), the primary (worker 0) first, restarts a worker that dies with
back-off (``coordinator/supervisor.py``), serves one ``/metrics`` for all (``coordinator/worker_metrics.py``),
writes the ready file once every worker serves, and on SIGTERM / SIGINT drains them all (the others first, the
primary last) and exits 0. The workers never outlive it (``PR_SET_PDEATHSIG`` and a watched pipe).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from coordinator.lifecycle import write_ready_file
from coordinator.metrics_endpoint import MetricsEndpoint
from coordinator.supervisor import Child, Supervisor
from coordinator.worker_metrics import WorkerState, workers_registry
from coordinator.workers import (
    SECRET_FILE,
    child_argv,
    join_host_port,
    local_host,
    own_ports,
    specs,
    write_secret,
)

log = logging.getLogger(__name__)

TEND_SECONDS = 0.2


def reserve_port(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (0: a free port) with ``SO_REUSEPORT``, not listening."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot reserve {join_host_port(host, port)}: {exc}") from None
    return sock


@dataclass(frozen=True, slots=True)
class PoolConfig:
    """What the parent needs to know of the command it multiplies."""

    prog: str  # "mishards node" / "mishards proxy", for messages
    module: str  # python -m <module>
    argv: tuple[str, ...]  # the command line it was given
    host: str
    advertise: str
    port: int  # the shared gRPC port (0: a free one)
    count: int
    metrics_port: int  # the parent's /metrics (0: off, -1: a free port)
    http_port: int  # REST: 0 off, -1 a free port, else that port; every worker serves it (SO_REUSEPORT)
    ready_file: str
    worker_ports: int = 0  # the first of the workers' own ports (0: a free port each)
    taken: tuple[int, ...] = ()  # other ports the workers serve (health), kept out of the workers' own range


class WorkerPool:
    def __init__(self, config: PoolConfig) -> None:
        self.config = config
        self.supervisor = Supervisor(dict(os.environ), report=lambda line: log.warning("%s", line),
                                     label=config.prog)
        self.children: list[Child] = []
        self.reserved: list[socket.socket] = []
        self.metrics: MetricsEndpoint | None = None
        self.metrics_port = 0
        self.run_dir = Path(tempfile.mkdtemp(prefix="mishards-workers-"))
        self._stop = threading.Event()

    def _reserve(self, port: int) -> int:
        sock = reserve_port(self.config.host or "0.0.0.0", port)
        self.reserved.append(sock)
        return int(sock.getsockname()[1])

    def start(self) -> None:
        c = self.config
        write_secret(self.run_dir)
        fixed = own_ports(c.worker_ports, c.count, (c.port, c.http_port, c.metrics_port, *c.taken))
        own = [self._reserve(port) for port in fixed]  # first: a free port picked next cannot fall in the range
        shared = self._reserve(c.port)
        http = c.http_port
        if http:
            http = self._reserve(max(0, http))
        for spec in specs(c.host, c.advertise, shared, own, str(self.run_dir)):
            args = child_argv(c.argv, spec, metrics=bool(c.metrics_port), http_port=http)
            self.children.append(self.supervisor.add(f"worker-{spec.index}", c.module, args,
                                                     self.run_dir / f"worker-{spec.index}.ready", None))
        primary, others = self.children[0], self.children[1:]
        self.supervisor.start(primary)
        self.supervisor.wait_ready(primary)
        for child in others:
            self.supervisor.start(child)
        for child in others:
            self.supervisor.wait_ready(child)
        if c.metrics_port:
            self.metrics = MetricsEndpoint(workers_registry(local_host(c.host), self.states))
            self.metrics_port = self.metrics.serve(c.host, max(0, c.metrics_port))
        address = join_host_port(c.host, shared)
        addresses = [str(child.info.get("own_address", "")) for child in self.children]
        log.info("%s: %d workers serving on %s (%s)", c.prog, c.count, address, ", ".join(addresses))
        if c.ready_file:
            write_ready_file(c.ready_file, address, metrics_port=self.metrics_port,
                             http_port=int(str(primary.info.get("http_port", 0))), workers=addresses,
                             worker_pids=self.pids())

    def states(self) -> list[WorkerState]:
        """What the metrics endpoint reads: each worker's metrics port while it serves, and its restarts."""
        return [WorkerState(i, int(str(child.info.get("metrics_port", 0))) if child.serving else 0, child.restarts)
                for i, child in enumerate(self.children)]

    def pids(self) -> list[int]:
        return [child.proc.pid if child.proc is not None else 0 for child in self.children]

    def run(self) -> None:
        """Start, tend the workers until SIGTERM / SIGINT, then drain them all."""

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            log.info("signal %d received: draining the workers", signum)
            self._stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        try:
            self.start()
            while not self._stop.wait(TEND_SECONDS):
                self.supervisor.tend()
        finally:
            self.stop()

    def stop(self) -> None:
        self.supervisor.stop()  # SIGTERM to each, last started first: the primary drains last
        if self.metrics is not None:
            self.metrics.close()
        for sock in self.reserved:
            sock.close()
        for child in self.children:
            child.ready.unlink(missing_ok=True)
        for leftover in [*self.run_dir.glob("worker-*.sock"), *self.run_dir.glob("preloads.*"),
                         self.run_dir / SECRET_FILE]:
            leftover.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self.run_dir.rmdir()
        log.info("%s: every worker stopped", self.config.prog)


def serve_workers(config: PoolConfig) -> None:
    WorkerPool(config).run()


def strip_flags(argv: Sequence[str], names: Sequence[str]) -> tuple[str, ...]:
    """``argv`` without the flags ``names`` and their values (``--flag value`` and ``--flag=value``)."""
    out: list[str] = []
    skip = False
    for item in argv:
        if skip:
            skip = False
            continue
        if item in names:
            skip = True
            continue
        if any(item.startswith(name + "=") for name in names):
            continue
        out.append(item)
    return tuple(out)
