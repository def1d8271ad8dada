"""What the proxy knows of the cluster: members (from membership) and who the writer is."""

from __future__ import annotations

import logging
import threading

import grpc

from coordinator.membership import Member, MembershipProvider, create_provider, readers, writer

log = logging.getLogger(__name__)

CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", -1),
    ("grpc.max_receive_message_length", -1),
    ("grpc.keepalive_time_ms", 30_000),
]


class Cluster:
    """Members, the current writer, and one long-lived gRPC channel per node address."""

    def __init__(self, membership_uri: str) -> None:
        self.uri = membership_uri
        self.provider: MembershipProvider = create_provider(membership_uri)
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
            from coordinator.election import parse_writer, writer_key

            info = parse_writer(client.get(writer_key(config.prefix)))
            if info is None:
                return None
            return next((m for m in members if m.node_id == info.get("node_id")),
                        Member(str(info.get("node_id")), str(info.get("address")), "rw"))
        chosen = writer(members)
        if chosen is None:
            chosen = next((m for m in members if m.role == "standalone"), None)
        return chosen

    def readers(self) -> tuple[Member, ...]:
        return readers(self.members())

    def channel(self, address: str) -> grpc.Channel:
        with self._lock:
            channel = self._channels.get(address)
            if channel is None:
                channel = grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
                self._channels[address] = channel
            return channel
