"""How a standalone node's secondary worker serves (``node/workers.py``): its searches on a snapshot caught up
with the catalog, every other call forwarded as bytes to the primary with the caller's deadline and metadata."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import grpc

from coordinator.errors import MilvusError

log = logging.getLogger(__name__)

# The channel to the primary carries any request the worker accepted, and any reply.
PRIMARY_CHANNEL_OPTIONS = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
# Headers gRPC sets itself on the forwarded call (passing them again is refused or duplicated).
TRANSPORT_HEADERS = ("user-agent", "te", "content-type")


def forwarded_metadata(metadata: Sequence[Any] | None) -> tuple[tuple[str, Any], ...]:
    """The caller's metadata worth passing on (not gRPC's own headers)."""
    return tuple((m[0], m[1]) for m in metadata or ()
                 if not m[0].startswith((":", "grpc-")) and m[0] not in TRANSPORT_HEADERS)


def call_timeout(remaining: float | None) -> float | None:
    """The forwarded call's timeout: what is left of the caller's deadline (None: it has none)."""
    if remaining is None or remaining > 10 ** 8:
        return None
    return max(0.001, remaining)


def forward_handler(channel: grpc.Channel, path: str) -> grpc.RpcMethodHandler:
    """A method handler that sends the request bytes to the primary and returns its reply bytes; a gRPC
    failure of that call (primary down, deadline) ends the caller's call with the same code."""
    call = channel.unary_unary(path)

    def forward(request: bytes, context: grpc.ServicerContext) -> bytes:
        try:
            return bytes(call(request, timeout=call_timeout(context.time_remaining()),
                              metadata=forwarded_metadata(context.invocation_metadata())))
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNAVAILABLE
            context.abort(code, exc.details() if hasattr(exc, "details") else str(exc))
            raise  # not reached: abort raises

    return grpc.unary_unary_rpc_method_handler(forward)


def caught_up(engine: Any, behavior: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """``behavior`` run on a snapshot at least as new as the catalog when the call arrived."""

    def handler(request: Any, context: Any) -> Any:
        try:
            engine.catch_up(engine.catalog.revision())
        except MilvusError as exc:  # the catalog does not answer: the search itself reports it
            log.debug("cannot read the catalog revision: %s", exc)
        return behavior(request, context)

    return handler
