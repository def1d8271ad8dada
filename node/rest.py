"""The node's REST API: the Milvus 1.1 web server (``coordinator.rest``) over the node's own servicer.

Each REST call becomes the same protobuf request the gRPC edge decodes (the fast-path request types for
inserts and searches) and runs through the servicer's method in-process, with its validation, error map,
admission control and metrics; nothing is sent to the node's own gRPC port.
"""

from __future__ import annotations

from typing import Any

from coordinator.rest.backend import RestContext, message_class
from milvus_wire import milvus_pb2


class NodeBackend:
    """Serves MilvusService calls (bytes in, bytes out) with ``servicer``, whose handlers answer protobuf
    messages or bytes already in the wire format."""

    def __init__(self, servicer: Any, fast_requests: dict[str, Any]) -> None:
        self.servicer = servicer
        self.context = RestContext()
        self._requests: dict[str, Any] = {}
        for method in milvus_pb2.DESCRIPTOR.services_by_name["MilvusService"].methods:
            self._requests[method.name] = fast_requests.get(method.name) or message_class(method.input_type.full_name)

    def call(self, method: str, request: bytes) -> bytes:
        message = self._requests[method].FromString(request)
        reply = getattr(self.servicer, method)(message, self.context)
        return reply if isinstance(reply, bytes) else bytes(reply.SerializeToString())

    def known_binary(self, collection: str) -> bool | None:
        return None  # DescribeCollection is an in-process call here (and reports a missing collection itself)
