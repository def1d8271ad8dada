"""The proxy's MilvusService: every call forwarded as bytes (no decoding of the payload), `Cmd version`
answered by the proxy itself, hybrid RPCs UNIMPLEMENTED as in Milvus 1.1.

Writes, DDL and (for now) every other call go to the current writer; the fan-out of searches across the
read-only nodes is built on top of this edge.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import grpc

from coordinator.errors import ErrorCode
from milvus_wire import milvus_pb2, status_pb2
from mishards.catalog_view import CatalogView
from mishards.cluster import Cluster
from mishards.fanout import Failed, Fanout
from mishards.metadata_answers import ANSWERS, answer
from mishards.settings import ProxySettings

log = logging.getLogger(__name__)

SERVICE = "milvus.grpc.MilvusService"
HYBRID = frozenset({
    "CreateHybridCollection", "HasHybridCollection", "DropHybridCollection", "DescribeHybridCollection",
    "CountHybridCollection", "ShowHybridCollections", "ShowHybridCollectionInfo", "PreloadHybridCollection",
    "InsertEntity", "HybridSearch", "HybridSearchInSegments", "GetEntityByID", "GetEntityIDs", "DeleteEntitiesByID",
})
# Calls that block until work is done (Milvus semantics): no deadline of ours.
LONG_CALLS = frozenset({"CreateIndex", "Flush", "Compact", "PreloadCollection", "DropIndex"})


def _message_class(full_name: str) -> Any:
    name = full_name.rpartition(".")[2]
    return getattr(milvus_pb2, name, None) or getattr(status_pb2, name)


def error_bytes(reply_cls: Any, code: ErrorCode, reason: str) -> bytes:
    status = status_pb2.Status(error_code=int(code), reason=reason)  # type: ignore[arg-type]
    reply = status if reply_cls is status_pb2.Status else reply_cls(status=status)
    return bytes(reply.SerializeToString())


class Forwarder:
    def __init__(self, settings: ProxySettings, cluster: Cluster, fanout: Fanout | None = None,
                 view: CatalogView | None = None) -> None:
        self.settings = settings
        self.cluster = cluster
        self.fanout = fanout
        self.view = view

    def handler(self, method: str, reply_cls: Any) -> Callable[[bytes, grpc.ServicerContext], bytes]:
        path = f"/{SERVICE}/{method}"
        timeout = None if method in LONG_CALLS or not self.settings.request_timeout else self.settings.request_timeout

        def forward(request: bytes, context: grpc.ServicerContext) -> bytes:
            if method in HYBRID:
                context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{method} is not implemented (as in Milvus 1.1)")
            if method == "Search" and self.fanout is not None:
                try:
                    merged = self.fanout.search(request)
                except Failed as exc:
                    return error_bytes(reply_cls, exc.code, exc.reason)
                if merged is not None:
                    return merged
            if method == "Cmd":
                cmd = milvus_pb2.Command.FromString(request).cmd
                if cmd == "version":
                    return bytes(milvus_pb2.StringReply(string_reply=self.settings.version).SerializeToString())
            target = self.cluster.writer()
            if target is None:
                if method in ANSWERS and self.view is not None:
                    return answer(method, self.view.snapshot(), request, reply_cls)
                return error_bytes(reply_cls, ErrorCode.CONNECT_FAILED, "No writable node is available right now")
            call = self.cluster.channel(target.address).unary_unary(path)
            try:
                return bytes(call(request, timeout=timeout))
            except grpc.RpcError as exc:
                code = exc.code()
                if code == grpc.StatusCode.UNIMPLEMENTED:
                    context.abort(code, exc.details())
                log.warning("%s to %s failed: %s", method, target.address, code)
                if method in ANSWERS and self.view is not None:
                    return answer(method, self.view.snapshot(), request, reply_cls)  # the cached catalog answers
                return error_bytes(reply_cls, ErrorCode.CONNECT_FAILED,
                                   f"Node {target.node_id} could not be reached: {code.name}")

        return forward

    def generic_handler(self) -> grpc.GenericRpcHandler:
        handlers = {}
        for method in milvus_pb2.DESCRIPTOR.services_by_name["MilvusService"].methods:
            reply_cls = _message_class(method.output_type.full_name)
            handlers[method.name] = grpc.unary_unary_rpc_method_handler(self.handler(method.name, reply_cls))
        return grpc.method_handlers_generic_handler(SERVICE, handlers)
