"""What the REST layer needs from a process: one MilvusService call, bytes in and bytes out.

The node serves it with its servicer in-process, the proxy with its forwarder (writes to the writer,
searches fanned out); both are given a :class:`RestContext` where the gRPC edge has its
``grpc.ServicerContext``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol

from coordinator.rest.codes import CallFailed
from milvus_wire import milvus_pb2, status_pb2


class Backend(Protocol):
    def call(self, method: str, request: bytes) -> bytes:
        """Serve one MilvusService ``method`` (a serialized request) and return its serialized reply."""

    def known_binary(self, collection: str) -> bool | None:
        """Whether ``collection`` holds binary vectors, when the process knows it without a call (the proxy's
        cached catalog); None: ask with ``DescribeCollection``."""


class Aborted(Exception):
    """A handler ended the call the way gRPC's ``context.abort`` would (e.g. UNIMPLEMENTED)."""

    def __init__(self, code: Any, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


@dataclass(frozen=True, slots=True)
class Caller:
    """What the REST layer passes of one HTTP request to the handlers: its ``Authorization`` header (None:
    absent) and the client's address."""

    authorization: str | None = None
    peer: str = "rest"


_CALLER: ContextVar[Caller | None] = ContextVar("rest_caller", default=None)


@contextmanager
def serving(caller: Caller) -> Iterator[None]:
    """Run the endpoint of one HTTP request as ``caller`` (its backend calls carry its ``Authorization``)."""
    token = _CALLER.set(caller)
    try:
        yield
    finally:
        _CALLER.reset(token)


class RestContext:
    """The part of ``grpc.ServicerContext`` the handlers use, for calls that came over HTTP: the request's
    ``Authorization`` header as the ``authorization`` metadata (checked by the same handler layer as a gRPC
    call's), no deadline (an HTTP client's timeout is not sent to the server)."""

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        caller = _CALLER.get()
        header = None if caller is None else caller.authorization
        return () if header is None else (("authorization", header),)

    def time_remaining(self) -> float | None:
        return None

    def is_active(self) -> bool:
        return True

    def peer(self) -> str:
        caller = _CALLER.get()
        return "rest" if caller is None else caller.peer

    def auth_context(self) -> dict[str, list[bytes]]:
        return {}  # a REST caller is never a cluster peer

    def abort(self, code: Any, details: str) -> None:
        raise Aborted(code, details)

    def set_code(self, code: Any) -> None:
        return None

    def set_details(self, details: str) -> None:
        return None


def message_class(full_name: str) -> Any:
    name = full_name.rpartition(".")[2]
    return getattr(milvus_pb2, name, None) or getattr(status_pb2, name)


@functools.cache
def reply_classes() -> dict[str, Any]:
    """Each MilvusService method's reply message class."""
    methods = milvus_pb2.DESCRIPTOR.services_by_name["MilvusService"].methods
    return {m.name: message_class(m.output_type.full_name) for m in methods}


def call(backend: Backend, method: str, request: Any) -> Any:
    """Call ``method`` with ``request`` (a message or its bytes) and return the parsed reply; a non-success
    status raises :class:`CallFailed` with the RPC's code and reason."""
    raw = request if isinstance(request, bytes) else bytes(request.SerializeToString())
    reply_cls = reply_classes()[method]
    reply = reply_cls.FromString(backend.call(method, raw))
    status = reply if reply_cls is status_pb2.Status else reply.status
    if status.error_code:
        raise CallFailed(int(status.error_code), str(status.reason))
    return reply
