"""The REST API through the proxy: writes go to the writer, searches fan out over the read nodes exactly like
gRPC searches (same merge, failover and consistency), and a REST search is one trace like a gRPC one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from milvus_wire import milvus_pb2
from tests.support.cluster import LocalCluster
from tests.support.http import HttpReply, request
from tests.support.scrape import scrape, value
from tests.support.waiting import poll_for
from tests.test_rest_api import check_hits
from tests.test_tracing import CLIENT, SERVER, Collector, SpanRecord, collector

__all__ = ["collector"]  # the OTLP collector fixture, shared with the gRPC tracing test

DIM = 16


def _rest(cluster: LocalCluster, method: str, path: str, body: Any = None) -> HttpReply:
    return request(cluster.proxy.http_port, method, path, body)


def _start(root: Path, proxy_args: list[str], node_args: list[str] | None = None) -> LocalCluster:
    cluster = LocalCluster(root, readers=2, proxy_args=proxy_args, node_args=node_args or [])
    cluster.proxy.http = True
    return cluster.start()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    started = _start(tmp_path_factory.mktemp("restproxy"), ["--metrics-port", "-1"])
    try:
        yield started
    finally:
        started.stop()


def _load(cluster: LocalCluster, name: str, rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    created = _rest(cluster, "POST", "/collections", {"collection_name": name, "dimension": DIM,
                                                      "index_file_size": 1})
    assert created.status == 201, created
    rng = np.random.default_rng(seed)
    data = rng.random((rows, DIM), dtype=np.float32)
    ids = []
    # three partitions, one flush each: three segments, which background merges (within a partition) leave apart,
    # spread over the readers
    for n, part in enumerate(np.array_split(data, 3)):
        tag = f"part{n}"
        made = _rest(cluster, "POST", f"/collections/{name}/partitions", {"partition_tag": tag})
        assert made.status == 201, made
        reply = _rest(cluster, "POST", f"/collections/{name}/vectors", {"partition_tag": tag, "vectors": part})
        assert reply.status == 201, reply
        ids += [int(i) for i in reply.json()["ids"]]
        flushed = _rest(cluster, "PUT", "/system/task", {"flush": {"collection_names": [name]}})
        assert flushed.status == 200, flushed
    return data, np.array(ids, dtype=np.int64)


def _sub_requests(cluster: LocalCluster) -> float:
    return value(scrape(cluster.proxy.metrics_port), "mishards_proxy_subrequest_seconds_count", method="SearchInFiles")


def test_rest_writes_reach_the_writer_and_searches_fan_out_like_grpc(cluster: LocalCluster) -> None:
    data, ids = _load(cluster, "rp_float", 900, 3)
    described = _rest(cluster, "GET", "/collections/rp_float").json()
    assert described["count"] == 900  # flushed through the proxy: its view caught up before answering
    queries = np.random.default_rng(4).random((5, DIM), dtype=np.float32)
    truth = ((queries[:, None, :].astype(np.float64) - data[None].astype(np.float64)) ** 2).sum(axis=2)
    before = _sub_requests(cluster)
    reply = _rest(cluster, "PUT", "/collections/rp_float/vectors",
                  {"search": {"topk": 10, "params": {}, "vectors": queries}})
    assert reply.status == 200, reply
    result = reply.json()["result"]
    check_hits(result, truth, ids, 10)
    assert _sub_requests(cluster) - before >= 2  # one SearchInFiles per read node holding segments
    # The same search over gRPC through the proxy answers the same rows.
    grpc_reply = cluster.stub().Search(milvus_pb2.SearchParam(
        collection_name="rp_float", topk=10,
        query_record_array=[milvus_pb2.RowRecord(float_data=q) for q in queries.tolist()]), timeout=30)
    grpc_ids = np.array(grpc_reply.ids).reshape(5, 10)
    grpc_dist = np.array(grpc_reply.distances, dtype=np.float32).reshape(5, 10)
    for q, row in enumerate(result):
        assert [int(h["id"]) for h in row] == grpc_ids[q].tolist()
        assert [h["distance"] for h in row] == [f"{d:f}" for d in grpc_dist[q].tolist()]
    by_id = _rest(cluster, "PUT", "/collections/rp_float/vectors",
                  {"search": {"topk": 3, "params": {}, "ids": [str(ids[12])]}})
    assert by_id.status == 200 and by_id.json()["result"][0][0] == {"distance": "0.000000", "id": str(ids[12])}
    got = _rest(cluster, "GET", f"/collections/rp_float/vectors?ids={ids[7]}").json()["vectors"]
    assert np.array_equal(np.array(got[0]["vector"], np.float32), data[7])
    samples = scrape(cluster.proxy.metrics_port)
    assert value(samples, "mishards_proxy_request_seconds_count", method="Insert") >= 3
    assert value(samples, "mishards_proxy_rest_request_seconds_count",
                 route="PUT /collections/{collection_name}/vectors", status="200") >= 2
    assert value(samples, "mishards_proxy_rest_request_seconds_count",
                 route="POST /collections/{collection_name}/vectors", status="201") == 3
    # Commands: the version is the proxy's own answer, configuration the writer's.
    assert _rest(cluster, "GET", "/system/version").json()["reply"] == "1.1.1"
    assert _rest(cluster, "GET", "/system/config").json()["storage"]["auto_flush_interval"] == "0"
    # Deletes go to the writer; after a flush no search through the proxy returns them.
    deleted = _rest(cluster, "PUT", "/collections/rp_float/vectors", {"delete": {"ids": [str(ids[0])]}})
    assert deleted.status == 200
    assert _rest(cluster, "PUT", "/system/task", {"flush": {"collection_names": []}}).status == 200
    again = _rest(cluster, "PUT", "/collections/rp_float/vectors",
                  {"search": {"topk": 3, "params": {}, "vectors": data[:1]}}).json()["result"][0]
    assert str(ids[0]) not in [h["id"] for h in again]
    dropped = _rest(cluster, "DELETE", "/collections/rp_float")
    assert dropped.status == 204
    assert _rest(cluster, "GET", "/collections/rp_float").status == 404


def test_rest_searches_survive_a_dead_reader_and_reads_a_dead_writer(tmp_path: Path) -> None:
    cluster = _start(tmp_path, ["--write-retry-timeout", "1"])
    try:
        data, ids = _load(cluster, "rp_fail", 600, 8)
        queries = data[[3, 300]]
        truth = ((queries[:, None, :].astype(np.float64) - data[None].astype(np.float64)) ** 2).sum(axis=2)
        cluster.readers[0].kill()  # replication 2: the other reader holds every segment too
        reply = _rest(cluster, "PUT", "/collections/rp_fail/vectors",
                      {"search": {"topk": 5, "params": {}, "vectors": queries}})
        assert reply.status == 200, reply
        check_hits(reply.json()["result"], truth, ids, 5)
        cluster.writer.kill()
        # Metadata from the proxy's catalog view, searches from the living reader; writes cannot be taken.
        assert _rest(cluster, "GET", "/collections/rp_fail").json()["count"] == 600
        reply = _rest(cluster, "PUT", "/collections/rp_fail/vectors",
                      {"search": {"topk": 5, "params": {}, "vectors": queries}})
        check_hits(reply.json()["result"], truth, ids, 5)
        refused = _rest(cluster, "POST", "/collections/rp_fail/vectors", {"vectors": data[:1]})
        assert refused.status in (400, 404) and refused.json()["code"] in (2, 4), refused
    finally:
        cluster.stop()


def test_a_rest_search_is_one_trace_through_the_proxy_and_the_readers(
        tmp_path: Path, collector: tuple[Collector, str], monkeypatch: pytest.MonkeyPatch) -> None:
    sink, endpoint = collector
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    tracing = ["--otlp-endpoint", endpoint]
    cluster = _start(tmp_path, tracing, tracing)
    try:
        data, _ = _load(cluster, "rp_traced", 600, 5)
        reply = _rest(cluster, "PUT", "/collections/rp_traced/vectors",
                      {"search": {"topk": 4, "params": {}, "vectors": data[:2]}})
        assert reply.status == 200
        route = "PUT /collections/{collection_name}/vectors"

        def trace() -> tuple[SpanRecord, list[SpanRecord], list[SpanRecord]] | None:
            spans = sink.spans()
            roots = [s for s in spans if s.service == "mishards-proxy" and s.kind == SERVER and s.name == route]
            if not roots:
                return None
            # The search's sub-requests (the REST layer also asks the collection's metric: DescribeCollection).
            clients = [s for s in spans if s.parent_id == roots[0].span_id and s.kind == CLIENT
                       and s.name.endswith("/SearchInFiles")]
            below = [s for s in spans if s.parent_id in {c.span_id for c in clients}]
            return (roots[0], clients, below) if clients and len(below) == len(clients) else None

        found = poll_for(trace, 30, what="the REST search's spans")
        assert found is not None
        root, clients, below = found
        assert root.attributes["http.response.status_code"] == 200
        assert root.attributes["mishards.collection"] == "rp_traced"
        assert root.attributes["mishards.nq"] == 2 and root.attributes["mishards.topk"] == 4
        assert all(c.attributes["mishards.node"] for c in clients)
        assert {s.service for s in below} == {"mishards-node-ro"}
        assert len({s.trace_id for s in [root, *clients, *below]}) == 1
    finally:
        cluster.stop()
