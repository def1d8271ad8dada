"""The node's MilvusService handler table: each method's request type (the fast-path types that keep rows as
raw bytes where they apply), its reply serializer and, with tracing on, its span tags. The same table serves
the gRPC port and the REST API (``node/rest.py``), so that both run the very same behaviors."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import grpc

from coordinator import tracing as spans
from coordinator.tracing import Tracing
from milvus_wire import milvus_pb2, status_pb2, wire_fastpath_pb2

if TYPE_CHECKING:
    from node.worker_broadcast import Broadcaster

SERVICE = "milvus.grpc.MilvusService"
# Requests decoded into wire-identical messages that keep RowRecords as raw bytes (bulk decoding).
FAST_REQUESTS = {
    "Insert": wire_fastpath_pb2.InsertParamRaw,
    "Search": wire_fastpath_pb2.SearchParamRaw,
    "SearchInFiles": wire_fastpath_pb2.SearchInFilesParamRaw,
    "InsertEntity": wire_fastpath_pb2.HInsertParamRaw,
}
MethodHandlers = dict[str, grpc.RpcMethodHandler]


def message_class(full_name: str) -> Any:
    package, _, name = full_name.rpartition(".")
    assert package == "milvus.grpc", full_name
    return getattr(milvus_pb2, name, None) or getattr(status_pb2, name)


def serializer(reply_cls: Any) -> Any:
    """Serialize reply messages; replies a handler built directly in the wire format pass through."""
    serialize = reply_cls.SerializeToString

    def to_bytes(reply: Any) -> bytes:
        return reply if isinstance(reply, bytes) else serialize(reply)

    return to_bytes


def request_attributes(method: str, request: Any) -> dict[str, spans.AttributeValue]:
    """What a request is about, for its span: the collection, and nq and topk of searches."""
    if method == "SearchInFiles":
        param = request.search_param
        return {spans.COLLECTION: param.collection_name, spans.NQ: len(param.query_record_array),
                spans.TOPK: int(param.topk)}
    if method == "Search":
        return {spans.COLLECTION: request.collection_name, spans.NQ: len(request.query_record_array),
                spans.TOPK: int(request.topk)}
    if method == "HybridSearchInSegments":
        request = request.search_param  # the collection is named inside, as in SearchInFiles
    if method == "SearchByID":
        return {spans.COLLECTION: request.collection_name, spans.NQ: len(request.id_array),
                spans.TOPK: int(request.topk)}
    name = getattr(request, "collection_name", None)
    return {spans.COLLECTION: name} if isinstance(name, str) and name else {}


def _traced(method: str, behavior: Any, tracing: Tracing, node: Callable[[], str]) -> Any:
    """``behavior`` tagging the call's server span (opened by the tracing interceptor) before it runs."""

    def handler(request: Any, context: Any) -> Any:
        tracing.annotate({spans.NODE: node(), **request_attributes(method, request)})
        return behavior(request, context)

    return handler


def method_handlers(servicer: Any, tracing: Tracing | None = None, node: Callable[[], str] = lambda: "",
                    routed: Callable[[str], grpc.RpcMethodHandler | None] = lambda _method: None,
                    local: Callable[[str, Any], Any] = lambda _method, behavior: behavior,
                    broadcaster: Broadcaster | None = None) -> MethodHandlers:
    """Each MilvusService method's handler, by method name. A method for which ``routed`` gives a handler is
    served by it (a worker forwarding to its primary); the others run ``local(method, behavior)``, the broadcast calls
    of a multi-process node through ``broadcaster``, each call's span (tracing on) tagged with the node and
    what the request is about."""
    handlers: MethodHandlers = {}
    for method in milvus_pb2.DESCRIPTOR.services_by_name["MilvusService"].methods:
        elsewhere = routed(method.name)
        if elsewhere is not None:
            handlers[method.name] = elsewhere
            continue
        request_cls: Any = FAST_REQUESTS.get(method.name) or message_class(method.input_type.full_name)
        reply_cls = message_class(method.output_type.full_name)
        behavior = local(method.name, getattr(servicer, method.name))
        if broadcaster is not None:
            behavior = broadcaster.wrap(method.name, behavior, reply_cls)
        if tracing is not None:
            behavior = _traced(method.name, behavior, tracing, node)
        handlers[method.name] = grpc.unary_unary_rpc_method_handler(
            behavior,
            request_deserializer=request_cls.FromString,
            response_serializer=serializer(reply_cls),
        )
    return handlers


def generic_handler(handlers: MethodHandlers) -> grpc.GenericRpcHandler:
    return grpc.method_handlers_generic_handler(SERVICE, handlers)


def milvus_handler(servicer: Any, tracing: Tracing | None = None, node: Callable[[], str] = lambda: "",
                   routed: Callable[[str], grpc.RpcMethodHandler | None] = lambda _method: None,
                   local: Callable[[str, Any], Any] = lambda _method, behavior: behavior,
                   broadcaster: Broadcaster | None = None) -> grpc.GenericRpcHandler:
    """:func:`method_handlers` as the gRPC server's generic handler."""
    return generic_handler(method_handlers(servicer, tracing, node, routed, local, broadcaster))
