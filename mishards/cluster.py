"""What the proxy knows of the cluster: members (from membership) and who the writer is."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import grpc

from coordinator.catalog import WriterLease
from coordinator.errors import MetaFailed
from coordinator.membership import Member, MembershipProvider, create_provider, readers, writer
from mishards.failures import FailureTracker

log = logging.getLogger(__name__)

CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", -1),
    ("grpc.max_receive_message_length", -1),
    ("grpc.keepalive_time_ms", 30_000),
]


class Cluster:
    """Members, the current writer, recent node failures, and one long-lived gRPC channel per node address.

    Where an etcd election names the writer, the answer is cached for ``writer_cache_seconds`` (a lookup
    per forwarded call would add an etcd round trip to every write); ``forget_writer`` drops it at once
    when a call to the writer fails.
    """

    def __init__(self, membership_uri: str, writer_cache_seconds: float = 0.5,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.uri = membership_uri
        self.provider: MembershipProvider = create_provider(membership_uri)
        self.failures = FailureTracker(clock=clock)
        self.writer_cache_seconds = writer_cache_seconds
        self.clock = clock
        self._writer: tuple[float, Member | None] | None = None
        # The catalog's writer lease, where rw nodes elect through the catalog (set by the proxy server).
        self.lease: Callable[[], WriterLease | None] | None = None
        self._channels: dict[str, grpc.Channel] = {}
        self._lock = threading.Lock()

    def start(self) -> None:
        self.provider.start()

    def stop(self) -> None:
        self.provider.stop()
        with self._lock:
            for channel in self._channels.values():
                channel.close()
            self._channels.clear()

    def members(self) -> tuple[Member, ...]:
        return self.provider.members()

    def writer(self) -> Member | None:
        """The node that takes writes: the etcd election's winner where one runs, else membership's rw
        member, else a standalone member."""
        client = getattr(self.provider, "client", None)
        config = getattr(self.provider, "config", None)
        members = self.members()
        if client is not None and config is not None:
            cached = self._writer
            now = self.clock()
            if cached is not None and now - cached[0] < self.writer_cache_seconds:
                return cached[1]
            from coordinator.election import parse_writer, writer_key

            info = parse_writer(client.get(writer_key(config.prefix)))
            elected = None if info is None else next(
                (m for m in members if m.node_id == info.get("node_id")),
                Member(str(info.get("node_id")), str(info.get("address")), "rw"))
            self._writer = (now, elected)
            return elected
        if self.lease is not None:
            cached = self._writer
            now = self.clock()
            if cached is not None and now - cached[0] < self.writer_cache_seconds:
                return cached[1]
            leased = self._leased_writer(members)
            self._writer = (now, leased)
            return leased
        return self._membership_writer(members)

    @staticmethod
    def _membership_writer(members: tuple[Member, ...]) -> Member | None:
        chosen = writer(members)
        if chosen is None:
            chosen = next((m for m in members if m.role == "standalone"), None)
        return chosen

    def _leased_writer(self, members: tuple[Member, ...]) -> Member | None:
        """The holder of the catalog's writer lease (``election: catalog``). Without a lease row no election
        runs: membership decides. With an expired lease, the only rw member if there is one, else nobody
        until a standby takes the lease."""
        assert self.lease is not None
        try:
            lease = self.lease()
        except MetaFailed as exc:  # the catalog is unreachable: fall back to what membership says
            log.warning("reading the writer lease failed: %s", exc)
            return self._membership_writer(members)
        if lease is None:
            return self._membership_writer(members)
        if lease.remaining > 0:
            return next((m for m in members if m.address == lease.address or m.node_id == lease.holder),
                        Member(lease.holder, lease.address, "rw"))
        rw = [m for m in members if m.role == "rw"]
        return rw[0] if len(rw) == 1 else None

    def forget_writer(self) -> None:
        self._writer = None

    def readers(self) -> tuple[Member, ...]:
        return readers(self.members())

    def channel(self, address: str) -> grpc.Channel:
        with self._lock:
            channel = self._channels.get(address)
            if channel is None:
                channel = grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
                self._channels[address] = channel
            return channel
