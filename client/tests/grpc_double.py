"""A small real gRPC server on loopback for the client's transport tests: it answers every Milvus method
with a scripted outcome and records what it received (method, metadata, request bytes)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc

from mishards_client._grpc import milvus_pb2 as pb

Reply = Callable[[str, bytes, grpc.ServicerContext], bytes]


@dataclass
class Received:
    method: str
    metadata: dict[str, str]
    request: bytes


@dataclass
class Double:
    """``script``: outcomes consumed one per call ("unavailable", "sleep:<s>", "ok"); then "ok" forever."""

    script: list[str] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, method: str, request: bytes, context: grpc.ServicerContext) -> bytes:
        md = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
        with self.lock:
            self.received.append(Received(method, md, request))
            step = self.script.pop(0) if self.script else "ok"
        if step == "unavailable":
            context.abort(grpc.StatusCode.UNAVAILABLE, "scripted outage")
        if step.startswith("sleep:"):
            time.sleep(float(step.split(":", 1)[1]))
        return _ok_reply(method)

    def methods(self) -> list[str]:
        with self.lock:
            return [r.method for r in self.received]


def _ok_reply(method: str) -> bytes:
    if method == "Cmd":
        return pb.StringReply(string_reply="1.1.1").SerializeToString()
    if method == "HasCollection":
        return pb.BoolReply(bool_reply=True).SerializeToString()
    if method == "Insert":
        return pb.VectorIds(vector_id_array=[1, 2]).SerializeToString()
    return b""  # an empty Status: success


class _Handler(grpc.GenericRpcHandler):
    def __init__(self, double: Double) -> None:
        self.double = double

    def service(self, handler_call_details: Any) -> grpc.RpcMethodHandler | None:
        method = handler_call_details.method.rsplit("/", 1)[-1]

        def unary(request: bytes, context: grpc.ServicerContext) -> bytes:
            return self.double.answer(method, request, context)

        return grpc.unary_unary_rpc_method_handler(unary)


def serve(double: Double, credentials: grpc.ServerCredentials | None = None) -> tuple[grpc.Server, int]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((_Handler(double),))
    port = (server.add_secure_port("127.0.0.1:0", credentials) if credentials is not None
            else server.add_insecure_port("127.0.0.1:0"))
    server.start()
    return server, port
