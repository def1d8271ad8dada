"""The etcd wire: endpoint lists, the gRPC channel options, and ``aetcd`` clients over plaintext or TLS.

``aetcd`` dials plaintext only; :class:`TlsClient` gives it the same stubs and watcher on a TLS channel whose
certificate files are read again at each new connection. :func:`new_client` picks one of the two.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import aetcd
import grpc
from aetcd import rpc as aetcd_rpc
from aetcd import watcher as aetcd_watcher

from coordinator.tls import EtcdTls

DEFAULT_PORT = 2379

# gRPC channel options: never use an HTTP proxy from the environment, retry a lost connection quickly (the
# default backoff grows to two minutes), and detect a dead connection under a long-lived watch stream. etcd
# refuses pings more often than every 5 s (--grpc-keepalive-min-time), so stay above that.
CHANNEL_OPTIONS: dict[str, Any] = {
    "grpc.enable_http_proxy": 0,
    "grpc.initial_reconnect_backoff_ms": 100,
    "grpc.min_reconnect_backoff_ms": 100,
    "grpc.max_reconnect_backoff_ms": 2000,
    "grpc.keepalive_time_ms": 10_000,
    "grpc.keepalive_timeout_ms": 5_000,
    "grpc.keepalive_permit_without_calls": 0,
}


def parse_endpoints(endpoints: str | Sequence[tuple[str, int]]) -> tuple[tuple[str, int], ...]:
    """``"host:port[,host:port]"`` (optional ``http://``, ``[IPv6]:port``, default port 2379) -> (host, port) pairs.

    Raises:
        ValueError: if the list is empty or an item is malformed.
    """
    if not isinstance(endpoints, str):
        pairs = tuple((str(h), int(p)) for h, p in endpoints)
        if not pairs:
            raise ValueError("no etcd endpoint given")
        return pairs
    result: list[tuple[str, int]] = []
    for raw in endpoints.split(","):
        item = raw.strip()
        if not item:
            continue
        for scheme in ("http://", "https://"):
            if item.startswith(scheme):
                item = item[len(scheme) :]
        item = item.rstrip("/")
        if item.startswith("["):
            host, sep, rest = item[1:].partition("]")
            if not sep or (rest and not rest.startswith(":")):
                raise ValueError(f"invalid etcd endpoint {raw.strip()!r}")
            port_text = rest[1:]
        elif item.count(":") == 1:
            host, port_text = item.split(":")
        elif ":" not in item:
            host, port_text = item, ""
        else:
            raise ValueError(f"invalid etcd endpoint {raw.strip()!r}: write IPv6 addresses as [addr]:port")
        if not host:
            raise ValueError(f"invalid etcd endpoint {raw.strip()!r}: no host")
        if port_text:
            if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
                raise ValueError(f"invalid port in etcd endpoint {raw.strip()!r}")
            port = int(port_text)
        else:
            port = DEFAULT_PORT
        result.append((host, port))
    if not result:
        raise ValueError(f"no etcd endpoint in {endpoints!r}")
    return tuple(result)


def to_bytes(value: str | bytes) -> bytes:
    """A key or value as etcd takes it (text as UTF-8)."""
    return value if isinstance(value, bytes) else value.encode("utf-8")


def key_str(key: bytes) -> str:
    """A key as etcd returns it, as text (bytes that are not UTF-8 kept as surrogates)."""
    return key.decode("utf-8", errors="surrogateescape")


class TlsClient(aetcd.Client):
    """``aetcd.Client`` over a TLS channel (aetcd itself dials plaintext only): the same stubs and watcher,
    on ``grpc.aio.secure_channel``."""

    def __init__(self, host: str, port: int, tls: EtcdTls, **kwargs: Any) -> None:
        super().__init__(host=host, port=port, **kwargs)
        self._tls = tls

    async def connect(self) -> None:
        if self._connected.is_set():
            return
        if self._is_connecting:  # type: ignore[has-type]  # (aetcd is untyped)
            await asyncio.wait_for(self._connected.wait(), self._connect_wait_timeout)
            return
        self._is_connecting = True
        try:
            options = {**self._options, **self._tls.channel_options()}
            self.channel = grpc.aio.secure_channel(f"{self._host}:{self._port}", self._tls.credentials(),
                                                   options=list(options.items()))
            self.kvstub = aetcd_rpc.KVStub(self.channel)
            self.clusterstub = aetcd_rpc.ClusterStub(self.channel)
            self.leasestub = aetcd_rpc.LeaseStub(self.channel)
            self.maintenancestub = aetcd_rpc.MaintenanceStub(self.channel)
            self._watcher = aetcd_watcher.Watcher(aetcd_rpc.WatchStub(self.channel), timeout=self._timeout,
                                                  metadata=self.metadata)
            self._connected.set()
        finally:
            self._is_connecting = False


def new_client(host: str, port: int, tls: EtcdTls | None, timeout: float) -> aetcd.Client:
    """An ``aetcd`` client of one endpoint (not connected yet), over TLS when ``tls`` is given."""
    if tls is None:
        return aetcd.Client(host=host, port=port, timeout=timeout, options=dict(CHANNEL_OPTIONS))
    return TlsClient(host, port, tls, timeout=timeout, options=dict(CHANNEL_OPTIONS))
