"""What the proxy knows of the cluster: members (from membership) and who the writer is."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import grpc

from coordinator import writer_lookup
from coordinator.catalog import WriterLease
from coordinator.etcd_errors import EtcdError
from coordinator.membership import Member, MembershipProvider, create_provider, readers
from coordinator.tls import ClusterDialer
from mishards.failures import FailureTracker
from mishards.worker_channels import SpreadChannel, WorkerDirectory

log = logging.getLogger(__name__)

CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", -1),
    ("grpc.max_receive_message_length", -1),
    ("grpc.keepalive_time_ms", 30_000),
]


class Cluster:
    """Members, the current writer, recent node failures, and one long-lived gRPC channel per node address
    (and per worker of a node that runs several: ``mishards/worker_channels.py``).

    Where an etcd election names the writer, the answer is cached for ``writer_cache_seconds`` (a lookup
    per forwarded call would add an etcd round trip to every write); ``forget_writer`` drops it at once
    when a call to the writer fails.
    """

    def __init__(self, membership_uri: str, writer_cache_seconds: float = 0.5,
                 clock: Callable[[], float] = time.monotonic, dialer: ClusterDialer | None = None) -> None:
        self.uri = membership_uri
        self.provider: MembershipProvider = create_provider(membership_uri)
        self.failures = FailureTracker(clock=clock)
        self.writer_cache_seconds = writer_cache_seconds
        self.clock = clock
        self._writer: tuple[float, Member | None] | None = None
        self._last_known: Member | None = None  # the last writer an election lookup named
        # The catalog's writer lease, where rw nodes elect through the catalog (set by the proxy server).
        self.lease: Callable[[], WriterLease | None] | None = None
        # how channels to nodes are made (cluster mTLS or plaintext); when its files change, the channels are
        # replaced (new connections present the new certificate) and the old ones closed at stop
        self.dialer = dialer or ClusterDialer(None)
        self._generation = self.dialer.generation
        self._retired: list[grpc.Channel] = []
        self._channels: dict[str, grpc.Channel] = {}
        self._spread: dict[str, SpreadChannel] = {}
        self.workers = WorkerDirectory(self._plain)
        self._lock = threading.Lock()

    def start(self) -> None:
        self.provider.start()

    def stop(self) -> None:
        self.provider.stop()
        with self._lock:
            for channel in [*self._channels.values(), *self._retired]:
                channel.close()
            self._channels.clear()
            self._retired.clear()
            self._spread.clear()

    def members(self) -> tuple[Member, ...]:
        return self.provider.members()

    def writer(self) -> Member | None:
        """The node that takes writes (``coordinator.writer_lookup``): the etcd election's winner, else the
        holder of a live catalog lease, else membership's rw (or standalone) member. A lookup that reads etcd
        or the catalog is cached for ``writer_cache_seconds``."""
        members = self.members()
        if not writer_lookup.elects(self.provider, self.lease):
            return writer_lookup.from_membership(members)
        cached = self._writer
        now = self.clock()
        if cached is not None and now - cached[0] < self.writer_cache_seconds:
            return cached[1]
        try:
            elected = writer_lookup.current_writer(self.provider, members, self.lease)
        except EtcdError as exc:
            # etcd is unreachable: keep routing to the last writer known (it refuses writes itself once its
            # lease runs out, and the proxy then says nothing was written); look again after the cache time.
            elected = self._last_known
            log.warning("cannot read the writer election (%s); routing to the last known writer %s", exc,
                        elected.node_id if elected is not None else "(none)")
        else:
            self._last_known = elected if elected is not None else self._last_known
        self._writer = (now, elected)
        return elected

    def forget_writer(self) -> None:
        self._writer = None

    def readers(self) -> tuple[Member, ...]:
        return readers(self.members())

    def channel(self, address: str) -> grpc.Channel:
        """The channel to the node at ``address``: its searches spread over its workers when it has several."""
        if self.dialer.stale(self._generation):
            self._renew_channels()
        spread = self._spread.get(address)
        if spread is None:
            main = self._plain(address)
            with self._lock:
                spread = self._spread.setdefault(address, SpreadChannel(address, main, self.workers, self._plain))
        return spread

    def _renew_channels(self) -> None:
        """The cluster certificate changed on disk: later calls use new channels (calls in flight finish on
        the old ones, closed at stop)."""
        with self._lock:
            self._generation = self.dialer.generation
            self._retired.extend(self._channels.values())
            self._channels.clear()
            self._spread.clear()
        log.info("cluster certificate changed: new channels to the nodes")

    def _plain(self, address: str) -> grpc.Channel:
        with self._lock:
            channel = self._channels.get(address)
            if channel is None:
                channel = self.dialer.channel(address, CHANNEL_OPTIONS)
                self._channels[address] = channel
            return channel
