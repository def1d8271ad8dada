"""OpenTelemetry tracing across real processes: a search through the proxy is one trace (proxy server span ->
one client span per node sub-request -> each node's server span), exported over OTLP/gRPC to a collector
running in this test; with tracing off nothing is exported and OpenTelemetry is not even imported."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.trace.v1 import trace_pb2

from milvus_wire import milvus_pb2
from tests.support.cluster import LocalCluster
from tests.support.nodeproc import ROOT
from tests.support.waiting import poll_for

DIM = 64  # with index_file_size 1 (MB) a segment holds 4,096 rows: 10,000 rows make three that never merge
SERVER = trace_pb2.Span.SpanKind.SPAN_KIND_SERVER
CLIENT = trace_pb2.Span.SpanKind.SPAN_KIND_CLIENT
SEARCH = "/milvus.grpc.MilvusService/Search"
SEARCH_IN_FILES = "/milvus.grpc.MilvusService/SearchInFiles"


@dataclass(frozen=True)
class SpanRecord:
    service: str
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]


def _value(any_value: Any) -> Any:
    which = any_value.WhichOneof("value")
    return getattr(any_value, which) if which else None


class Collector(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP/gRPC trace collector: keeps every ExportTraceServiceRequest it receives."""

    def __init__(self) -> None:
        self.requests: list[Any] = []
        self._lock = threading.Lock()

    def Export(self, request: Any, context: Any) -> Any:
        with self._lock:
            self.requests.append(request)
        return trace_service_pb2.ExportTraceServiceResponse()

    def spans(self) -> list[SpanRecord]:
        with self._lock:
            requests = list(self.requests)
        out = []
        for request in requests:
            for resource_spans in request.resource_spans:
                resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        out.append(SpanRecord(
                            str(resource.get("service.name")), span.name, span.kind, span.trace_id.hex(),
                            span.span_id.hex(), span.parent_span_id.hex(),
                            {a.key: _value(a.value) for a in span.attributes}))
        return out


@pytest.fixture
def collector() -> Iterator[tuple[Collector, str]]:
    servicer = Collector()
    server = grpc.server(ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield servicer, f"http://127.0.0.1:{port}"
    finally:
        server.stop(0)


def _rows(x: np.ndarray) -> list[Any]:
    return [milvus_pb2.RowRecord(float_data=v) for v in x.tolist()]


def _load_and_search(stub: Any, name: str, nq: int, topk: int) -> None:
    schema = milvus_pb2.CollectionSchema(collection_name=name, dimension=DIM, index_file_size=1, metric_type=1)
    assert stub.CreateCollection(schema, timeout=30).error_code == 0
    x = np.random.default_rng(9).standard_normal((10_000, DIM)).astype(np.float32)
    assert stub.Insert(milvus_pb2.InsertParam(collection_name=name, row_record_array=_rows(x)),
                       timeout=60).status.error_code == 0
    assert stub.Flush(milvus_pb2.FlushParam(collection_name_array=[name]), timeout=60).error_code == 0
    res = stub.Search(milvus_pb2.SearchParam(collection_name=name, topk=topk, query_record_array=_rows(x[:nq])),
                      timeout=30)
    assert res.status.error_code == 0 and res.row_num == nq


def test_a_search_is_one_trace_from_the_proxy_through_every_node(
        tmp_path: Path, collector: tuple[Collector, str], monkeypatch: pytest.MonkeyPatch) -> None:
    sink, endpoint = collector
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")  # export within 50 ms (children inherit the environment)
    tracing = ["--otlp-endpoint", endpoint]
    with LocalCluster(tmp_path, readers=2, replication=2, node_args=tracing, proxy_args=tracing) as cluster:
        _load_and_search(cluster.stub(), "traced", nq=2, topk=3)
        readers = {r.address for r in cluster.readers}
        writer = cluster.writer.address

        def whole_trace() -> tuple[SpanRecord, list[SpanRecord], list[SpanRecord]] | None:
            spans = sink.spans()
            roots = [s for s in spans if s.service == "mishards-proxy" and s.kind == SERVER and s.name == SEARCH]
            if not roots:
                return None
            root = roots[0]
            clients = [s for s in spans if s.parent_id == root.span_id]
            below = [s for s in spans if s.parent_id in {c.span_id for c in clients}]
            return (root, clients, below) if len(clients) == 2 and len(below) == 2 else None

        found = poll_for(whole_trace, 30, what="the search's spans from the proxy and both readers")
        assert found is not None
        root, clients, below = found

        assert root.parent_id == ""  # the client sent no trace context: the proxy starts the trace
        assert root.attributes["mishards.collection"] == "traced"
        assert root.attributes["mishards.nq"] == 2 and root.attributes["mishards.topk"] == 3
        assert root.attributes["mishards.segments"] == 3
        # One client span per node sub-request, one per reader, covering the three segments between them.
        assert all(c.kind == CLIENT and c.name == SEARCH_IN_FILES and c.service == "mishards-proxy" for c in clients)
        assert {c.attributes["mishards.node"] for c in clients} == readers
        assert sum(c.attributes["mishards.segments"] for c in clients) == 3
        # Beneath each, the node's own server span, in the same trace, from the node that was called.
        by_id = {c.span_id: c for c in clients}
        assert sorted(s.parent_id for s in below) == sorted(by_id)
        for span in below:
            client = by_id[span.parent_id]
            assert span.service == "mishards-node-ro" and span.kind == SERVER and span.name == SEARCH_IN_FILES
            assert span.trace_id == root.trace_id == client.trace_id
            assert span.attributes["mishards.node"] == client.attributes["mishards.node"]
            assert span.attributes["mishards.collection"] == "traced"
            assert span.attributes["mishards.nq"] == 2 and span.attributes["mishards.topk"] == 3
            assert span.attributes["mishards.segments"] == client.attributes["mishards.segments"]

        # A forwarded write is traced the same way: proxy server span -> client span -> the writer's span.
        spans = sink.spans()
        create = next(s for s in spans if s.service == "mishards-proxy" and s.kind == SERVER
                      and s.name.endswith("/CreateCollection"))
        forward = next(s for s in spans if s.parent_id == create.span_id)
        assert forward.kind == CLIENT and forward.attributes["mishards.node"] == writer
        on_writer = poll_for(lambda: next((s for s in sink.spans() if s.parent_id == forward.span_id), None), 30,
                             what="the writer's CreateCollection span")
        assert on_writer is not None
        assert on_writer.service == "mishards-node-rw" and on_writer.trace_id == create.trace_id
        assert on_writer.attributes["mishards.collection"] == "traced"
        # A cache call goes to the writer and to every reader: one client span each, each with its node's span.
        preload = milvus_pb2.PreloadCollectionParam(collection_name="traced")
        assert cluster.stub().PreloadCollection(preload, timeout=60).error_code == 0

        def preload_trace() -> tuple[SpanRecord, list[SpanRecord], list[SpanRecord]] | None:
            spans = sink.spans()
            root = next((s for s in spans if s.service == "mishards-proxy" and s.kind == SERVER
                         and s.name.endswith("/PreloadCollection")), None)
            if root is None:
                return None
            clients = [s for s in spans if s.parent_id == root.span_id]
            below = [s for s in spans if s.parent_id in {c.span_id for c in clients}]
            return (root, clients, below) if len(clients) == 3 and len(below) == 3 else None

        traced = poll_for(preload_trace, 30, what="the preload's spans from the proxy, the writer and both readers")
        assert traced is not None
        _, clients, below = traced
        assert {c.attributes["mishards.node"] for c in clients} == readers | {writer}
        assert sorted(b.service for b in below) == ["mishards-node-ro", "mishards-node-ro", "mishards-node-rw"]
        # Health checks are not traced.
        assert not any("grpc.health" in s.name for s in sink.spans())


def test_with_tracing_off_nothing_is_exported(
        tmp_path: Path, collector: tuple[Collector, str], monkeypatch: pytest.MonkeyPatch) -> None:
    sink, endpoint = collector
    # Even the standard OpenTelemetry variables pointing at a collector must not turn anything on.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", endpoint)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    with LocalCluster(tmp_path, readers=2, replication=2) as cluster:
        _load_and_search(cluster.stub(), "quiet", nq=2, topk=3)
    # Every process has drained and exited: anything queued for export would have been sent by now.
    assert sink.requests == []


def test_servers_do_not_import_opentelemetry_unless_tracing_is_on() -> None:
    code = ("import sys, coordinator.tracing, mishards.server, mishards.__main__, mishards.up, node.server, "
            "node.__main__\n"
            "loaded = sorted(m for m in sys.modules if m.startswith('opentelemetry'))\n"
            "assert not loaded, loaded\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, timeout=120)
