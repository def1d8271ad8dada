"""Calls every worker of a multi-process node must take, on real processes: a standalone node and a read node
with ``--workers 2`` each (and a single-process writer for the read node). PreloadCollection,
ReleaseCollection and ``Cmd set_config`` sent to either worker take effect on both (each worker's own state is
read with a call marked for it alone); a worker that does not answer fails the call; the trace context of a
caller reaches the primary through a secondary's forward, and a broadcast's spans hang below the caller's.
The read node runs with cluster mTLS and ``--allow-anonymous none``: the test is a cluster peer (by its
certificate, without a token), which the receiving worker admits and the other admits through the worker
secret of the call sent on to it."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from coordinator.workers import LOCAL_HEADER
from milvus_wire import milvus_pb2, milvus_pb2_grpc
from tests.support import http
from tests.support import requests as rq
from tests.support.certs import issue, make_pki
from tests.support.nodeproc import CHANNEL_OPTIONS, NodeProcess
from tests.support.waiting import poll_for
from tests.test_tracing import CLIENT, SERVER, Collector, SpanRecord

DIM = 8
TIMEOUT = 30.0
HERE = ((LOCAL_HEADER, "1"),)
TRACE_ID = "5e1f0c0ffee0000000000000000beef1"


class Node:
    """A multi-process node: its ready file and a raw stub per worker's own address."""

    def __init__(self, proc: NodeProcess, credentials: grpc.ChannelCredentials | None = None) -> None:
        self.proc = proc
        self.info = json.loads((proc.workdir / "ready.json").read_text())
        self.channels = [grpc.insecure_channel(a, options=CHANNEL_OPTIONS) if credentials is None
                         else grpc.secure_channel(a, credentials, options=CHANNEL_OPTIONS)
                         for a in self.info["workers"]]
        self.stubs = [milvus_pb2_grpc.MilvusServiceStub(c) for c in self.channels]

    def cmd(self, worker: int, text: str, here: bool = False, timeout: float = TIMEOUT) -> Any:
        return self.stubs[worker].Cmd(milvus_pb2.Command(cmd=text), timeout=timeout, metadata=HERE if here else None)

    def stats(self, worker: int) -> dict[str, Any]:
        """Worker ``worker``'s own figures (a secondary answers a call marked for it alone itself)."""
        reply: dict[str, Any] = json.loads(rq.ok(self.cmd(worker, "mishards_stats", here=True)).string_reply)
        return reply

    def cached(self) -> list[int]:
        return [int(self.stats(w)["cache_segments"]) for w in range(len(self.stubs))]

    def close(self) -> None:
        for channel in self.channels:
            channel.close()


@pytest.fixture(scope="module")
def collector() -> Iterator[tuple[Collector, str]]:
    from concurrent.futures import ThreadPoolExecutor

    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

    sink = Collector()
    server = grpc.server(ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(sink, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield sink, f"http://127.0.0.1:{port}"
    finally:
        server.stop(0)


@pytest.fixture(scope="module")
def standalone(tmp_path_factory: pytest.TempPathFactory, collector: tuple[Collector, str]) -> Iterator[Node]:
    proc = NodeProcess(tmp_path_factory.mktemp("standalone"),
                       ["--workers", "2", "--auto-flush-interval", "0", "--otlp-endpoint", collector[1]],
                       env={"OTEL_BSP_SCHEDULE_DELAY": "50"}, http=True)
    proc.start()
    node = Node(proc)
    try:
        yield node
    finally:
        node.close()
        proc.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NodeProcess, Node]]:
    """A writer and a read node of two workers (cluster mTLS, no anonymous calls) over one SQLite catalog and
    storage folder."""
    root = tmp_path_factory.mktemp("readnode")
    pki = make_pki(root / "pki", "cluster")
    node_cert = issue(pki.ca, root / "pki", "node")
    tls = ["--cluster-tls-cert", str(node_cert.cert_path), "--cluster-tls-key", str(node_cert.key_path),
           "--cluster-tls-ca", str(pki.ca.cert_path), "--allow-anonymous", "none"]
    uri = f"sqlite:///{root / 'meta.sqlite'}"
    writer = NodeProcess(root / "w", ["--role", "rw", "--auto-flush-interval", "0"], meta_uri=uri,
                         storage=root / "shared")
    reader = NodeProcess(root / "r", ["--role", "ro", "--workers", "2", "--catalog-refresh-interval", "0.1", *tls],
                         meta_uri=uri, storage=root / "shared")
    peer = grpc.ssl_channel_credentials(pki.ca.pem, pki.client.key_pem, pki.client.pem)
    node: Node | None = None
    try:
        writer.start()
        reader.start()
        node = Node(reader, peer)
        yield writer, node
    finally:
        if node is not None:
            node.close()
        reader.stop()
        writer.stop()


def _filled(stub: Any) -> str:
    """A flushed collection of two segments (two partitions)."""
    name = rq.unique_name("bc")
    rq.ok(rq.create(stub, name, DIM, rq.L2))
    rq.ok(stub.CreatePartition(milvus_pb2.PartitionParam(collection_name=name, tag="p1"), timeout=TIMEOUT))
    rng = np.random.default_rng(5)
    rq.insert_ok(stub, name, rng.random((40, DIM), dtype=np.float32))
    rq.insert_ok(stub, name, rng.random((40, DIM), dtype=np.float32), tag="p1")
    rq.ok(rq.flush(stub, name))
    return name


def _preload_and_release(node: Node, name: str) -> None:
    param = milvus_pb2.PreloadCollectionParam(collection_name=name)
    assert node.cached() == [0, 0]
    rq.ok(node.stubs[1].PreloadCollection(param, timeout=TIMEOUT))  # received by worker 1
    assert node.cached() == [2, 2]
    rq.ok(node.stubs[0].ReleaseCollection(param, timeout=TIMEOUT))  # received by worker 0
    assert node.cached() == [0, 0]
    rq.ok(node.stubs[0].PreloadCollection(param, timeout=TIMEOUT, metadata=HERE))  # meant for worker 0 alone
    assert node.cached() == [2, 0]
    rq.ok(node.stubs[0].ReleaseCollection(param, timeout=TIMEOUT))
    missing = node.stubs[1].PreloadCollection(milvus_pb2.PreloadCollectionParam(collection_name="nope_x"),
                                              timeout=TIMEOUT)
    assert missing.error_code != 0  # refused where it landed: passed on to nobody
    assert node.cached() == [0, 0]


def _set_config_everywhere(node: Node, config_file: Path) -> None:
    rq.ok(node.cmd(1, "set_config cache.cache_size 300MB"))  # received by worker 1
    rq.ok(node.cmd(0, "set_config engine_config.omp_thread_num 1"))
    assert [int(node.stats(w)["cache_capacity_bytes"]) for w in (0, 1)] == [300 << 20, 300 << 20]
    for key, value in (("cache.cache_size", "300MB"), ("engine_config.omp_thread_num", "1")):
        for worker in (0, 1):
            for here in (False, True):
                assert rq.ok(node.cmd(worker, f"get_config {key}", here=here)).string_reply == value, (worker, here)
    refused = node.cmd(1, "set_config cache.cache_size lots")
    assert refused.status.error_code != 0
    assert [int(node.stats(w)["cache_capacity_bytes"]) for w in (0, 1)] == [300 << 20, 300 << 20]
    kept = config_file.read_text()
    assert "cache.cache_size: 300MB" in kept and "engine_config.omp_thread_num: '1'" in kept, kept
    assert [p.name for p in config_file.parent.iterdir() if not p.name.startswith(".")] == [config_file.name]


def test_a_standalone_nodes_cache_calls_and_set_config_reach_both_workers(standalone: Node) -> None:
    name = _filled(standalone.stubs[0])
    _preload_and_release(standalone, name)
    _set_config_everywhere(standalone, standalone.proc.storage / "node-config" / "standalone.yaml")
    # The REST API (the primary's) reaches both workers as well.
    port = standalone.proc.http_port
    assert http.request(port, "PUT", "/system/task", {"load": {"collection_name": name}}).status == 200
    assert standalone.cached() == [2, 2]
    assert http.request(port, "PUT", "/system/task", {"release": {"collection_name": name}}).status == 200
    assert standalone.cached() == [0, 0]
    assert http.request(port, "PUT", "/config/advanced", {"cpu_cache_capacity": 1}).status == 200
    assert [int(standalone.stats(w)["cache_capacity_bytes"]) for w in (0, 1)] == [1 << 30, 1 << 30]


def test_a_hybrid_preload_reaches_both_workers(standalone: Node) -> None:
    from tests.support import hybrid_rows as hr

    api = rq.TimedStub(standalone.stubs[0])
    schema = hr.new_collection(api, "hb")
    hr.insert(api, schema, hr.columns(schema, 30), hr.vectors(schema, 30))
    hr.flush(api, schema.collection_name)
    assert standalone.cached() == [0, 0]
    rq.ok(standalone.stubs[1].PreloadHybridCollection(hr.cname(schema.collection_name), timeout=TIMEOUT))
    assert standalone.cached() == [1, 1]
    rq.ok(standalone.stubs[1].ReleaseCollection(milvus_pb2.PreloadCollectionParam(collection_name=schema.collection_name),
                                                timeout=TIMEOUT))
    assert standalone.cached() == [0, 0]


def test_a_read_nodes_cache_calls_and_set_config_reach_both_workers(cluster: tuple[NodeProcess, Node]) -> None:
    writer, node = cluster
    name = _filled(writer.stub())

    def rows(stub: Any) -> int:
        reply = stub.CountCollection(milvus_pb2.CollectionName(collection_name=name), timeout=TIMEOUT)
        return int(reply.collection_row_count) if reply.status.error_code == 0 else -1

    poll_for(lambda: all(rows(s) == 80 for s in node.stubs), 30, what="the read node's workers see the flushed rows")
    _preload_and_release(node, name)
    port = node.proc.address.rpartition(":")[2]
    _set_config_everywhere(node, node.proc.storage / "node-config" / f"ro-{port}.yaml")


def test_a_worker_that_does_not_answer_fails_the_call(cluster: tuple[NodeProcess, Node]) -> None:
    _, node = cluster
    stopped = int(node.info["worker_pids"][1])
    os.kill(stopped, signal.SIGSTOP)
    try:
        reply = node.cmd(0, "set_config cache.cache_size 300MB", timeout=3.0)
    finally:
        os.kill(stopped, signal.SIGCONT)
    assert reply.status.error_code != 0 and "worker 1" in reply.status.reason, reply.status


def _below(spans: list[SpanRecord], parent: str) -> list[SpanRecord]:
    return [s for s in spans if s.parent_id == parent]


def test_a_secondary_forward_and_a_broadcast_continue_the_callers_trace(
        standalone: Node, collector: tuple[Collector, str]) -> None:
    sink, _ = collector
    name = rq.unique_name("traced")
    caller = "00f067aa0ba902b7"
    context = (("traceparent", f"00-{TRACE_ID}-{caller}-01"),)
    schema = milvus_pb2.CollectionSchema(collection_name=name, dimension=DIM, index_file_size=1024, metric_type=1)
    rq.ok(standalone.stubs[1].CreateCollection(schema, timeout=TIMEOUT, metadata=context))  # forwarded

    def forwarded() -> tuple[SpanRecord, SpanRecord, SpanRecord] | None:
        spans = [s for s in sink.spans() if s.trace_id == TRACE_ID]
        secondary = [s for s in _below(spans, caller) if s.name.endswith("/CreateCollection")]
        forward = [s for s in spans if secondary and s.parent_id == secondary[0].span_id]
        primary = [s for s in spans if forward and s.parent_id == forward[0].span_id]
        return (secondary[0], forward[0], primary[0]) if primary else None

    found = poll_for(forwarded, 30, what="the secondary's, its forward's and the primary's spans")
    assert found is not None
    secondary, forward, primary = found
    assert secondary.kind == SERVER and forward.kind == CLIENT and primary.kind == SERVER
    assert primary.service == "mishards-node-standalone" and primary.name.endswith("/CreateCollection")
    assert primary.attributes["mishards.collection"] == name

    other = "00f067aa0ba902b8"
    preload = milvus_pb2.PreloadCollectionParam(collection_name=name)
    rq.ok(standalone.stubs[0].PreloadCollection(preload, timeout=TIMEOUT,
                                                metadata=(("traceparent", f"00-{TRACE_ID}-{other}-01"),)))

    def broadcast() -> SpanRecord | None:
        spans = [s for s in sink.spans() if s.trace_id == TRACE_ID]
        first = [s for s in _below(spans, other) if s.name.endswith("/PreloadCollection")]
        sent = [s for s in spans if first and s.parent_id == first[0].span_id and s.kind == CLIENT]
        served = [s for s in spans if sent and s.parent_id == sent[0].span_id]
        return served[0] if served else None

    served = poll_for(broadcast, 30, what="the preload's spans on both workers")
    assert served is not None and served.kind == SERVER and served.name.endswith("/PreloadCollection")
