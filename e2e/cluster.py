"""The cluster under test: two ``rw`` nodes (writer + standby), three read nodes with two replicas per segment
and two proxies, every one a ``mishards`` process on a fixed port, sharing a catalog and a storage folder."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from e2e import probe
from e2e.procs import MISHARDS, ManagedProcess
from e2e.supervisor import Supervisor, Timeline
from milvus_wire import milvus_pb2_grpc
from tests.support.waiting import free_ports, poll_for

log = logging.getLogger(__name__)

# A client reconnects quickly to a restarted process (gRPC's default back-off grows to minutes).
CHANNEL_OPTIONS = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1),
                   ("grpc.initial_reconnect_backoff_ms", 100), ("grpc.min_reconnect_backoff_ms", 100),
                   ("grpc.max_reconnect_backoff_ms", 500)]


@dataclass(frozen=True)
class ClusterSpec:
    """The shape of the cluster. ``election`` is ``etcd`` (membership and election through etcd) or ``catalog``
    (a lease row in the catalog; membership static, or etcd when ``etcd_membership``)."""

    meta_uri: str
    storage: Path
    etcd_endpoint: str = ""
    election: str = "etcd"
    etcd_membership: bool = False
    election_ttl: float = 2.0
    writers: int = 2
    readers: int = 3
    replication: int = 2
    proxies: int = 2
    auto_flush_interval: float = 0.5
    reader_storage: tuple[Path, ...] = ()  # a read node's own view of the shared folder (e.g. a slow mount)
    node_args: tuple[str, ...] = ()
    proxy_args: tuple[str, ...] = ()
    prefix: str = field(default_factory=lambda: f"/e2e{uuid.uuid4().hex[:8]}")


class Cluster:
    """Builds the processes of a ``ClusterSpec``; ``start()`` runs them under a ``Supervisor``."""

    def __init__(self, spec: ClusterSpec, root: Path) -> None:
        self.spec = spec
        self.root = root
        self.timeline = Timeline()
        n = spec.writers + spec.readers
        ports = free_ports(n + spec.proxies)
        node_addrs = [f"127.0.0.1:{p}" for p in ports[:n]]
        roles = ["rw"] * spec.writers + ["ro"] * spec.readers
        if spec.election == "etcd" or spec.etcd_membership:
            assert spec.etcd_endpoint, "etcd membership needs an etcd endpoint"
            self.membership = f"etcd://{spec.etcd_endpoint}{spec.prefix}"
        else:
            self.membership = "static://" + ",".join(f"{a}={r}" for a, r in zip(node_addrs, roles, strict=True))
        common = ["--meta-uri", spec.meta_uri, "--membership", self.membership,
                  "--election-ttl", str(spec.election_ttl), "--replication", str(spec.replication),
                  "--metrics-port", "-1", *spec.node_args]
        if spec.election == "catalog":
            common += ["--election", "catalog"]
        self.writers = [
            ManagedProcess(f"rw{i}", [MISHARDS, "node", "--role", "rw", "--port", str(ports[i]), "--storage-path",
                                      str(spec.storage), "--auto-flush-interval", str(spec.auto_flush_interval),
                                      *common], root / f"rw{i}", "rw")
            for i in range(spec.writers)
        ]
        self.readers = []
        for i in range(spec.readers):
            storage = spec.reader_storage[i] if i < len(spec.reader_storage) else spec.storage
            self.readers.append(ManagedProcess(
                f"ro{i}", [MISHARDS, "node", "--role", "ro", "--port", str(ports[spec.writers + i]), "--storage-path",
                           str(storage), *common], root / f"ro{i}", "ro"))
        self.proxies = [
            ManagedProcess(f"proxy{i}", [MISHARDS, "proxy", "--port", str(ports[n + i]), "--membership",
                                         self.membership, "--meta-uri", spec.meta_uri, "--replication",
                                         str(spec.replication), "--consistency", "strong", "--metrics-port", "-1",
                                         "--http-port", "0",
                                         *spec.proxy_args], root / f"proxy{i}", "proxy")
            for i in range(spec.proxies)
        ]
        self.supervisor = Supervisor(self.processes, self.timeline)
        self._channels: dict[str, grpc.Channel] = {}

    @property
    def processes(self) -> list[ManagedProcess]:
        return [*self.writers, *self.readers, *self.proxies]

    def by_name(self, name: str) -> ManagedProcess:
        return next(p for p in self.processes if p.name == name)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, timeout: float = 120.0) -> Cluster:
        """Launch every process under the supervisor (one that fails while starting is restarted, as Kubernetes
        would) and wait until all serve and a writer is elected; the proxies start once the nodes are up."""
        try:
            nodes = [*self.writers, *self.readers]
            for p in nodes:
                p.launch()
                self.timeline.add(p.name, "start", "initial")
                self.supervisor.expect_ready(p)
            self.supervisor.start()
            poll_for(lambda: all(p.ready is not None for p in nodes), timeout, interval=0.1,
                     what="every node's ready file")
            for p in self.proxies:
                p.launch()
                self.timeline.add(p.name, "start", "initial")
                self.supervisor.expect_ready(p)
            self.wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the supervisor, then every process by PID (SIGTERM, SIGKILL if it hangs)."""
        self.supervisor.stop()
        for ch in self._channels.values():
            ch.close()
        self._channels.clear()
        for p in reversed(self.processes):
            p.terminate(timeout=20)

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- state -------------------------------------------------------------------------------

    def writer(self) -> ManagedProcess | None:
        """The ``rw`` process whose /metrics says it holds the writer epoch (None while there is none)."""
        for p in self.writers:
            if p.alive() and not p.paused and p.ready is not None and probe.is_writable(p.ready.metrics_port):
                return p
        return None

    def standby(self) -> ManagedProcess | None:
        current = self.writer()
        return next((p for p in self.writers if p is not current and p.alive()), None)

    def healthy(self) -> bool:
        """Every process up, not paused and serving; one writer."""
        for p in self.processes:
            if not p.alive() or p.paused or p.ready is None:
                return False
            if p.kind == "ro" and not probe.serving(p.address):
                return False
        return self.writer() is not None

    def wait_healthy(self, timeout: float = 120.0) -> None:
        poll_for(self.healthy, timeout, interval=0.2, what="every process up and a writer elected")

    def heal(self, timeout: float = 120.0) -> None:
        """Resume paused processes; the supervisor restarts the dead ones; wait until all serve."""
        for p in self.processes:
            if p.paused:
                p.resume()
                self.timeline.add(p.name, "resume", "heal")
        self.wait_healthy(timeout)

    # -- clients -----------------------------------------------------------------------------

    def stub(self, p: ManagedProcess) -> Any:
        address = p.address
        channel = self._channels.get(address)
        if channel is None:
            channel = self._channels[address] = grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
        return milvus_pb2_grpc.MilvusServiceStub(channel)

    def proxy_stubs(self) -> list[Any]:
        return [self.stub(p) for p in self.proxies]

    def resource_pids(self) -> Iterator[tuple[str, int]]:
        for p in self.processes:
            if p.alive():
                yield p.name, p.pid
