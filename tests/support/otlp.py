"""An OTLP/gRPC trace collector for tests: keeps every export request it receives, as received."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


class RawCollector(trace_service_pb2_grpc.TraceServiceServicer):
    """Every ExportTraceServiceRequest received, kept whole (so a test may look at every byte exported)."""

    def __init__(self) -> None:
        self.requests: list[Any] = []
        self._lock = threading.Lock()

    def Export(self, request: Any, context: Any) -> Any:
        with self._lock:
            self.requests.append(request)
        return trace_service_pb2.ExportTraceServiceResponse()

    def exported(self) -> list[Any]:
        with self._lock:
            return list(self.requests)

    def span_count(self) -> int:
        return sum(len(scope.spans) for request in self.exported() for resource in request.resource_spans
                   for scope in resource.scope_spans)


@contextmanager
def running_collector() -> Iterator[tuple[RawCollector, str]]:
    """A collector on a free loopback port and its endpoint (``http://127.0.0.1:PORT``)."""
    servicer = RawCollector()
    server = grpc.server(ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield servicer, f"http://127.0.0.1:{port}"
    finally:
        server.stop(0)
