"""gRPC transport: a small pool of channels, per-call deadlines, retries on UNAVAILABLE, auth metadata, TLS.

Requests and replies cross this layer as wire bytes (identity serializers): the codec builds the
vector-heavy messages itself, the others are protobuf messages serialised by the caller.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from .retry import RetryPolicy, backoff_delay, should_retry

__all__ = ["CallFailed", "Transport", "TransportSettings"]

LOGGER = logging.getLogger(__name__)
SERVICE = "/milvus.grpc.MilvusService/"

_CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.max_send_message_length", -1),
    ("grpc.max_receive_message_length", -1),
    ("grpc.keepalive_time_ms", 55000),
    ("grpc.enable_retries", 1),
    # Reconnect to a restarted server within seconds (gRPC's own default backoff grows to 2 minutes, and a call
    # on a channel waiting to reconnect fails at once, whatever the client's retries).
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 3000),
)

Metadata = Sequence[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class TransportSettings:
    """How to reach one server. ``token`` is sent as ``authorization: Bearer <token>`` and never shown."""

    address: str
    token: str | None = field(default=None, repr=False)
    tls: bool = False
    tls_ca: bytes | None = field(default=None, repr=False)
    tls_cert: bytes | None = field(default=None, repr=False)
    tls_key: bytes | None = field(default=None, repr=False)
    tls_server_name: str | None = None
    timeout: float | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    pool_size: int = 2


class CallFailed(Exception):
    """A call ended with a gRPC error after its retries: ``code`` and ``details``."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details


def read_pem(value: str | bytes | Path | None) -> bytes | None:
    """PEM bytes from bytes, or from a file path."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    return Path(value).read_bytes()


def auth_metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),) if token else ()


class Transport:
    """Thread-safe: one instance is shared by every thread of a client."""

    def __init__(self, settings: TransportSettings, sleep: Callable[[float], None] = time.sleep) -> None:
        if settings.pool_size < 1:
            raise ValueError("pool_size must be at least 1")
        self.settings = settings
        self._sleep = sleep
        self._lock = threading.Lock()
        self._channels: list[grpc.Channel] = []
        self._callables: list[dict[str, grpc.UnaryUnaryMultiCallable]] = []
        self._next = itertools.count()
        self._closed = False
        self._metadata = auth_metadata(settings.token)

    def __repr__(self) -> str:
        return f"Transport(address={self.settings.address!r}, tls={self.settings.tls})"

    def _new_channel(self) -> grpc.Channel:
        s = self.settings
        options: list[tuple[str, int | str]] = list(_CHANNEL_OPTIONS)
        if s.tls_server_name:
            options.append(("grpc.ssl_target_name_override", s.tls_server_name))
        if s.tls:
            creds = grpc.ssl_channel_credentials(root_certificates=s.tls_ca, private_key=s.tls_key,
                                                 certificate_chain=s.tls_cert)
            return grpc.secure_channel(s.address, creds, options=options)
        return grpc.insecure_channel(s.address, options=options)

    def _callable(self, method: str) -> grpc.UnaryUnaryMultiCallable:
        slot = next(self._next) % self.settings.pool_size
        with self._lock:
            if self._closed:
                raise CallFailed(grpc.StatusCode.CANCELLED, "client is closed")
            while len(self._channels) <= slot:
                self._channels.append(self._new_channel())
                self._callables.append({})
            handles = self._callables[slot]
            handle = handles.get(method)
            if handle is None:
                handle = self._channels[slot].unary_unary(SERVICE + method)
                handles[method] = handle
            return handle

    def call(self, method: str, request: bytes, *, timeout: float | None = None, retryable: bool = True,
             metadata: Metadata = ()) -> bytes:
        """Send ``request`` (wire bytes) to ``method``; the reply's wire bytes, or ``CallFailed``.

        ``timeout`` (else the default deadline) bounds the whole call, retries and waits included.
        """
        budget = timeout if timeout is not None else self.settings.timeout
        deadline = None if budget is None else time.monotonic() + budget
        md = (*self._metadata, *metadata)
        attempt = 0
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                reply: bytes = self._callable(method)(request, timeout=remaining, metadata=md or None)
                return reply
            except grpc.RpcError as exc:
                code = exc.code() if isinstance(exc, grpc.Call) else None
                details = (exc.details() if isinstance(exc, grpc.Call) else None) or str(exc)
                if should_retry(code, retryable, attempt, self.settings.retry):
                    pause = backoff_delay(attempt, self.settings.retry)
                    if deadline is None or time.monotonic() + pause < deadline:
                        LOGGER.debug("%s to %s failed with %s; attempt %d in %.3f s", method,
                                     self.settings.address, code, attempt + 2, pause)
                        self._sleep(pause)
                        attempt += 1
                        continue
                raise CallFailed(code or grpc.StatusCode.UNKNOWN, details) from None

    def close(self) -> None:
        """Close the channels for good: later calls fail."""
        with self._lock:
            self._closed = True
        self.release()

    def release(self) -> None:
        """Close the channels; a later call opens new ones."""
        with self._lock:
            channels, self._channels, self._callables = self._channels, [], []
        for channel in channels:
            channel.close()
