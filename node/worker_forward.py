"""How a standalone node's secondary worker serves (``node/workers.py``): its searches on a snapshot caught up
with the catalog, every other call forwarded as bytes to the primary with the caller's deadline and metadata.

A forwarded call carries every header of the caller's but those listed in :data:`DROPPED_PREFIXES` and
:data:`DROPPED_HEADERS` (HTTP/2 pseudo-headers, what gRPC sets itself on a new call, the worker secret):
``authorization``, the project's own headers (``mishards-min-revision``, ``mishards-request-key``) and any other
pass unchanged. The W3C trace context (``traceparent``, ``tracestate``) passes unchanged when this worker does
not trace; when it does, the forward is a CLIENT span of its own (child of the worker's SERVER span) whose
context replaces the caller's, so the primary's span hangs below the worker's in the caller's trace.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import grpc

from coordinator.errors import MilvusError
from coordinator.workers import SECRET_HEADER

if TYPE_CHECKING:
    from coordinator.tracing import Tracing

log = logging.getLogger(__name__)

# The channel to the primary (and to the other workers) carries any request the worker accepted, and any reply;
# a worker that restarted (the parent restarts one within about a second) is reached again within a second, not
# after gRPC's default reconnect back-off (up to two minutes), during which calls would fail at once. While a
# call is in flight the channel pings every KEEPALIVE_MS and waits KEEPALIVE_TIMEOUT_MS for the answer (gRPC's
# own ping timeout is a minute): a worker that stopped answering altogether (stopped, frozen machine, lost
# socket) ends the forwarded call with UNAVAILABLE within KEEPALIVE_MS + KEEPALIVE_TIMEOUT_MS,
# also for a caller without a deadline (a REST call, a client that sets none), instead of holding it forever; a
# busy worker's gRPC core answers pings whatever its handlers do, so a long CreateIndex is not cut short. The
# node's server accepts such pings (``node/server.py``: ``max_ping_strikes`` 0), however long no data flows.
KEEPALIVE_MS = 5_000
KEEPALIVE_TIMEOUT_MS = 4_000
PRIMARY_CHANNEL_OPTIONS = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1),
                           ("grpc.initial_reconnect_backoff_ms", 100), ("grpc.min_reconnect_backoff_ms", 100),
                           ("grpc.max_reconnect_backoff_ms", 1000),
                           ("grpc.keepalive_time_ms", KEEPALIVE_MS),
                           ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
                           ("grpc.keepalive_permit_without_calls", 0), ("grpc.http2.max_pings_without_data", 0),
                           ("grpc.http2.ping_timeout_ms", KEEPALIVE_TIMEOUT_MS)]
# What a forwarded call does not carry of the caller's metadata: HTTP/2 pseudo-headers and gRPC's own headers
# (by prefix), the headers gRPC sets itself on the new call (passing them again is refused or duplicated), and
# the node's worker secret (added by the worker that sends a call on, never passed further).
DROPPED_PREFIXES = (":", "grpc-")
DROPPED_HEADERS = ("user-agent", "te", "content-type", SECRET_HEADER)
# The W3C trace context: replaced by this worker's own client span when it traces (else passed unchanged).
TRACE_HEADERS = ("traceparent", "tracestate")

Metadata = tuple[tuple[str, Any], ...]


def forwarded_metadata(metadata: Sequence[Any] | None) -> Metadata:
    """The caller's metadata worth passing on (everything but what :data:`DROPPED_PREFIXES` and
    :data:`DROPPED_HEADERS` name)."""
    return tuple((m[0], m[1]) for m in metadata or ()
                 if not m[0].startswith(DROPPED_PREFIXES) and m[0] not in DROPPED_HEADERS)


def traced_call(tracing: Tracing | None, path: str, target: str, metadata: Metadata) -> tuple[Any, Metadata]:
    """The span (None when not tracing) and metadata of a call this worker makes on a caller's behalf: with
    tracing on, a CLIENT span below the current one whose trace context replaces the caller's."""
    if tracing is None:
        return None, metadata
    own = tuple(m for m in metadata if m[0] not in TRACE_HEADERS)
    return tracing.start_client(path, target, own)


def worker_channel(address: str) -> grpc.Channel:
    """A channel to another worker of this node (on its own port)."""
    return grpc.insecure_channel(address, options=PRIMARY_CHANNEL_OPTIONS)


def call_timeout(remaining: float | None) -> float | None:
    """The forwarded call's timeout: what is left of the caller's deadline (None: it has none)."""
    if remaining is None or remaining > 10 ** 8:
        return None
    return max(0.001, remaining)


def forwarder(channel: grpc.Channel, path: str, tracing: Tracing | None = None,
              target: str = "") -> Callable[[bytes, grpc.ServicerContext], bytes]:
    """A behavior that sends the request bytes to the primary and returns its reply bytes; a gRPC failure of
    that call (primary down, deadline) ends the caller's call with the same code."""
    call = channel.unary_unary(path)

    def forward(request: bytes, context: grpc.ServicerContext) -> bytes:
        span, metadata = traced_call(tracing, path, target, forwarded_metadata(context.invocation_metadata()))
        try:
            reply = bytes(call(request, timeout=call_timeout(context.time_remaining()), metadata=metadata))
        except grpc.RpcError as exc:
            if tracing is not None:
                tracing.end_client(span, exc)
            code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNAVAILABLE
            context.abort(code, exc.details() if hasattr(exc, "details") else str(exc))
            raise  # not reached: abort raises
        if tracing is not None:
            tracing.end_client(span)
        return reply

    return forward


def forward_handler(channel: grpc.Channel, path: str, tracing: Tracing | None = None,
                    target: str = "") -> grpc.RpcMethodHandler:
    """The method handler of :func:`forwarder`."""
    return grpc.unary_unary_rpc_method_handler(forwarder(channel, path, tracing, target))


def caught_up(engine: Any, behavior: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """``behavior`` run on a snapshot at least as new as the catalog when the call arrived."""

    def handler(request: Any, context: Any) -> Any:
        try:
            engine.catch_up(engine.catalog.revision())
        except MilvusError as exc:  # the catalog does not answer: the search itself reports it
            log.debug("cannot read the catalog revision: %s", exc)
        return behavior(request, context)

    return handler
