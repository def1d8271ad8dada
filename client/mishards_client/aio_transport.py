"""The asyncio gRPC transport: ``grpc.aio`` channels in a small pool, per-call deadlines, retries on
UNAVAILABLE with backoff, auth metadata and TLS, with the same settings and decisions as the sync
:class:`~mishards_client.transport.Transport` (requests and replies cross it as wire bytes)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Callable

import grpc
import grpc.aio

from .retry import backoff_delay, should_retry
from .transport import SERVICE, CallFailed, Metadata, TransportSettings, auth_metadata

__all__ = ["AsyncTransport"]

LOGGER = logging.getLogger(__name__)

CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.max_send_message_length", -1),
    ("grpc.max_receive_message_length", -1),
    ("grpc.keepalive_time_ms", 55000),
)


class AsyncTransport:
    """One instance per client, used from one event loop. Channels are opened on first use (inside the
    loop, as ``grpc.aio`` wants) and closed by :meth:`close`."""

    def __init__(self, settings: TransportSettings,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        if settings.pool_size < 1:
            raise ValueError("pool_size must be at least 1")
        self.settings = settings
        self._sleep = sleep
        self._channels: list[grpc.aio.Channel] = []
        self._callables: list[dict[str, grpc.aio.UnaryUnaryMultiCallable]] = []
        self._next = itertools.count()
        self._closed = False
        self._metadata = auth_metadata(settings.token)

    def __repr__(self) -> str:
        return f"AsyncTransport(address={self.settings.address!r}, tls={self.settings.tls})"

    def _new_channel(self) -> grpc.aio.Channel:
        s = self.settings
        options: list[tuple[str, int | str]] = list(CHANNEL_OPTIONS)
        if s.tls_server_name:
            options.append(("grpc.ssl_target_name_override", s.tls_server_name))
        if s.tls:
            creds = grpc.ssl_channel_credentials(root_certificates=s.tls_ca, private_key=s.tls_key,
                                                 certificate_chain=s.tls_cert)
            return grpc.aio.secure_channel(s.address, creds, options=options)
        return grpc.aio.insecure_channel(s.address, options=options)

    def _callable(self, method: str) -> grpc.aio.UnaryUnaryMultiCallable:
        if self._closed:
            raise CallFailed(grpc.StatusCode.CANCELLED, "client is closed")
        slot = next(self._next) % self.settings.pool_size
        while len(self._channels) <= slot:
            self._channels.append(self._new_channel())
            self._callables.append({})
        handles = self._callables[slot]
        handle = handles.get(method)
        if handle is None:
            handle = self._channels[slot].unary_unary(SERVICE + method)
            handles[method] = handle
        return handle

    async def call(self, method: str, request: bytes, *, timeout: float | None = None, retryable: bool = True,
                   metadata: Metadata = ()) -> bytes:
        """Send ``request`` to ``method``; the reply's wire bytes, or ``CallFailed`` after the retries.

        ``timeout`` (else the default deadline) bounds the whole call, retries and waits included.
        """
        budget = timeout if timeout is not None else self.settings.timeout
        deadline = None if budget is None else time.monotonic() + budget
        md = (*self._metadata, *metadata)
        attempt = 0
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                reply: bytes = await self._callable(method)(request, timeout=remaining, metadata=md or None)
                return reply
            except grpc.aio.AioRpcError as exc:
                code = exc.code()
                details = exc.details() or str(exc)
                if should_retry(code, retryable, attempt, self.settings.retry):
                    pause = backoff_delay(attempt, self.settings.retry)
                    if deadline is None or time.monotonic() + pause < deadline:
                        LOGGER.debug("%s to %s failed with %s; attempt %d in %.3f s", method,
                                     self.settings.address, code, attempt + 2, pause)
                        await self._sleep(pause)
                        attempt += 1
                        continue
                raise CallFailed(code, details) from None

    async def close(self) -> None:
        self._closed = True
        channels, self._channels, self._callables = self._channels, [], []
        for channel in channels:
            await channel.close()
