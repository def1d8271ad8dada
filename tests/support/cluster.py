"""A real local cluster for tests: one writer and N read-only nodes on a shared SQLite catalog and storage
folder, static membership, and a proxy in front. Every process is started and stopped by PID."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.support.nodeproc import NodeProcess
from tests.support.proxyproc import ProxyProcess
from tests.support.waiting import free_port, free_ports


class LocalCluster:
    def __init__(self, root: Path, readers: int = 2, replication: int = 0, node_args: Sequence[str] = (),
                 reader_args: Sequence[str] = (), proxy_args: Sequence[str] = (), membership_on_nodes: bool = True,
                 writer_args: Sequence[str] = ("--auto-flush-interval", "0")) -> None:
        self.root = root
        self.meta_uri = f"sqlite:///{root / 'meta.sqlite'}"
        storage = root / "shared"
        ports = free_ports(readers + 1)
        self.addresses = [f"127.0.0.1:{p}" for p in ports]
        self.membership = "static://" + ",".join(
            [f"{self.addresses[0]}=rw", *(f"{a}=ro" for a in self.addresses[1:])])
        common = [*node_args, *(["--replication", str(replication)] if replication else [])]
        if membership_on_nodes:
            common += ["--membership", self.membership]
        self.writer = NodeProcess(root / "w", ["--role", "rw", "--port", str(ports[0]), *writer_args, *common],
                                  meta_uri=self.meta_uri, storage=storage)
        self.readers = [
            NodeProcess(root / f"r{i}", ["--role", "ro", "--port", str(ports[i + 1]), *reader_args, *common],
                        meta_uri=self.meta_uri, storage=storage)
            for i in range(readers)
        ]
        self.proxy_args = ["--meta-uri", self.meta_uri, *(["--replication", str(replication)] if replication else []),
                           *proxy_args]
        self.proxy = ProxyProcess(root / "p", self.membership, self.proxy_args)

    @property
    def nodes(self) -> list[NodeProcess]:
        return [self.writer, *self.readers]

    def start(self) -> LocalCluster:
        try:
            for node in self.nodes:
                node.start()
            self.proxy.start()
        except BaseException:
            self.stop()
            raise
        return self

    def restart_proxy(self, extra_args: Sequence[str] = ()) -> ProxyProcess:
        """A new proxy process (the old one must be stopped or killed)."""
        self.proxy = ProxyProcess(self.root / f"p{id(self)}-{free_port()}", self.membership,
                                  [*self.proxy_args, *extra_args])
        return self.proxy.start()

    def stop(self) -> None:
        self.proxy.stop()
        for node in self.nodes:
            node.stop()

    def stub(self) -> Any:
        return self.proxy.stub()

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
