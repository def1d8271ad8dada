"""Prometheus /metrics of every process of a real cluster (proxy, writer, read nodes) follow real requests, and
the proxy counts the failover when a read node dies mid-service."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from coordinator.errors import ErrorCode
from milvus_wire import milvus_pb2, status_pb2
from mishards.metrics import status_code
from tests.support.cluster import LocalCluster
from tests.support.nodeproc import NodeProcess
from tests.support.proxyproc import ProxyProcess
from tests.support.scrape import Samples, scrape, value
from tests.support.waiting import poll_for

DIM = 64  # with index_file_size 1 (MB) a segment holds 4,096 rows: 10,000 rows make three that never merge
ROWS = 10_000
METRICS = ["--metrics-port", "-1"]


def _has(samples: Samples, name: str) -> bool:
    return any(n == name for n, _, _ in samples)


def _rows(x: np.ndarray) -> list[Any]:
    return [milvus_pb2.RowRecord(float_data=v) for v in x.tolist()]


def _search(stub: Any, name: str, q: np.ndarray, k: int) -> Any:
    return stub.Search(milvus_pb2.SearchParam(collection_name=name, topk=k, query_record_array=_rows(q)), timeout=30)


def _load(stub: Any, name: str, rng: np.random.Generator) -> np.ndarray:
    """A collection of three segments, flushed; returns the rows."""
    schema = milvus_pb2.CollectionSchema(collection_name=name, dimension=DIM, index_file_size=1, metric_type=1)
    assert stub.CreateCollection(schema, timeout=30).error_code == 0
    x = rng.standard_normal((ROWS, DIM)).astype(np.float32)
    assert stub.Insert(milvus_pb2.InsertParam(collection_name=name, row_record_array=_rows(x)),
                       timeout=60).status.error_code == 0
    return x


def _flush(stub: Any, name: str) -> None:
    assert stub.Flush(milvus_pb2.FlushParam(collection_name_array=[name]), timeout=60).error_code == 0


def test_status_code_is_read_from_the_first_bytes_of_every_reply_kind() -> None:
    for code in (ErrorCode.SUCCESS, ErrorCode.COLLECTION_NOT_EXISTS, ErrorCode.ILLEGAL_TOPK,
                 ErrorCode.UNEXPECTED_ERROR, ErrorCode.BUILD_INDEX_ERROR):
        status = status_pb2.Status(error_code=int(code), reason="why" if code else "")  # type: ignore[arg-type]
        assert status_code(status.SerializeToString(), True) == code
        for reply in (milvus_pb2.TopKQueryResult(status=status, row_num=2, ids=[1, 2], distances=[0.5, 1.5]),
                      milvus_pb2.BoolReply(status=status, bool_reply=True),
                      milvus_pb2.VectorIds(status=status, vector_id_array=[7, 8]),
                      milvus_pb2.StringReply(status=status, string_reply="1.1.1")):
            assert status_code(reply.SerializeToString(), False) == code
    assert status_code(b"", True) == 0 and status_code(b"", False) == 0  # absent status: SUCCESS
    assert status_code(milvus_pb2.TopKQueryResult(row_num=1, ids=[3], distances=[1.0]).SerializeToString(), False) == 0


def test_every_process_serves_metrics_that_follow_requests(tmp_path: Path) -> None:
    with LocalCluster(tmp_path, readers=2, replication=2, node_args=METRICS, proxy_args=METRICS) as cluster:
        procs: dict[str, NodeProcess | ProxyProcess] = {"proxy": cluster.proxy, "writer": cluster.writer}
        procs.update({f"reader{i}": r for i, r in enumerate(cluster.readers)})
        ports = {name: p.metrics_port for name, p in procs.items()}
        assert all(port > 0 for port in ports.values()) and len(set(ports.values())) == len(ports), ports
        s = cluster.stub()
        rng = np.random.default_rng(3)
        x = _load(s, "m", rng)
        writer = scrape(ports["writer"])
        assert value(writer, "mishards_node_buffered_rows") == ROWS
        assert value(writer, "mishards_node_wal_fsync_seconds_count") >= 1
        _flush(s, "m")

        for _ in range(3):
            res = _search(s, "m", x[:2], 5)
            assert res.status.error_code == 0 and res.row_num == 2
        assert _search(s, "m", x[:2], 0).status.error_code == ErrorCode.ILLEGAL_TOPK  # refused by the read nodes
        assert _search(s, "nope", x[:2], 5).status.error_code == ErrorCode.COLLECTION_NOT_EXISTS  # by the writer

        proxy = scrape(ports["proxy"])
        writer = scrape(ports["writer"])
        req = "mishards_proxy_request_seconds_count"
        assert value(proxy, req, method="Search", code="0") == 3
        assert value(proxy, req, method="Search", code=str(int(ErrorCode.ILLEGAL_TOPK))) == 1
        assert value(proxy, req, method="Search", code=str(int(ErrorCode.COLLECTION_NOT_EXISTS))) == 1
        for method in ("CreateCollection", "Insert", "Flush"):
            assert value(proxy, req, method=method, code="0") == 1, method
        assert value(proxy, "mishards_proxy_request_seconds_sum", method="Search") > 0
        assert value(proxy, "mishards_proxy_inflight_requests") == 0
        # Four searches fanned out (the three good ones and the one the nodes refused), each over both readers.
        fanned = value(proxy, "mishards_proxy_fanout_nodes_count")
        assert fanned == 4 and value(proxy, "mishards_proxy_fanout_nodes_sum") == 2 * fanned
        for r in cluster.readers:
            assert value(proxy, "mishards_proxy_subrequest_seconds_count", method="SearchInFiles",
                          node=r.address) == 4, r.address
        assert value(proxy, "mishards_proxy_merge_seconds_count") == 3
        assert 0 < value(proxy, "mishards_proxy_catalog_revision") <= value(writer, "mishards_node_catalog_revision")
        assert 0 <= value(proxy, "mishards_proxy_catalog_refresh_lag_seconds") < 10
        assert value(proxy, "mishards_proxy_members", role="rw") == 1
        assert value(proxy, "mishards_proxy_members", role="ro", state="ready") == 2
        assert value(proxy, "mishards_proxy_writer_known") == 1
        assert value(proxy, "mishards_proxy_suspected_nodes") == 0
        assert value(proxy, "mishards_proxy_failovers_total") == 0

        node_req = "mishards_node_request_seconds_count"
        for method in ("CreateCollection", "Insert", "Flush"):
            assert value(writer, node_req, method=method, code="0") == 1, method
        assert value(writer, "mishards_node_buffered_rows") == 0
        assert value(writer, "mishards_node_flush_seconds_count") >= 1
        assert value(writer, "mishards_node_rows") == ROWS
        assert value(writer, "mishards_node_segments", state="RAW") == 3
        assert value(writer, "mishards_node_writable") == 1
        assert value(writer, "mishards_node_catalog_refresh_lag_seconds") == 0
        assert value(writer, "mishards_node_members", role="ro") == 2
        assert value(writer, "mishards_node_inflight_requests") == 0
        assert _has(writer, "mishards_node_index_build_seconds_count")
        for r in cluster.readers:
            reader = scrape(r.metrics_port)
            assert value(reader, node_req, method="SearchInFiles", code="0") == 3, r.address
            assert value(reader, node_req, method="SearchInFiles", code=str(int(ErrorCode.ILLEGAL_TOPK))) == 1
            assert value(reader, "mishards_node_catalog_revision") > 0
            assert value(reader, "mishards_node_rows") == ROWS
            assert value(reader, "mishards_node_writable") == 0
            assert 0 <= value(reader, "mishards_node_catalog_refresh_lag_seconds") < 10
            assert value(reader, "mishards_node_members", role="ro") == 2
            assert value(reader, "mishards_node_members", role="rw") == 1
            assert value(reader, "mishards_node_inflight_requests") == 0
            assert value(reader, "mishards_node_cache_misses_total") >= 1


def test_a_killed_reader_shows_as_a_failover_and_a_suspicion(tmp_path: Path) -> None:
    with LocalCluster(tmp_path, readers=2, replication=2, node_args=METRICS, proxy_args=METRICS) as cluster:
        s = cluster.stub()
        x = _load(s, "f", np.random.default_rng(5))
        _flush(s, "f")
        assert _search(s, "f", x[:1], 3).status.error_code == 0
        before = scrape(cluster.proxy.metrics_port)
        assert value(before, "mishards_proxy_failovers_total") == 0
        dead = cluster.readers[0]
        dead_address = dead.address
        dead.kill()
        # Both readers hold every segment and a search spreads its three segments over both: the next search
        # either finds the dead reader suspected already (its health stream broke) or sends some segments to
        # it, fails over to the live one; either way it answers.
        res = _search(s, "f", x[:1], 3)
        assert res.status.error_code == 0 and res.row_num == 1 and res.distances[0] < 1e-3  # found itself
        after = scrape(cluster.proxy.metrics_port)
        assert value(after, "mishards_proxy_failovers_total", node=dead_address) <= 1
        assert value(after, "mishards_proxy_node_suspicions_total", node=dead_address) >= 1
        assert value(after, "mishards_proxy_request_seconds_count", method="Search", code="0") == 2
        live = cluster.readers[1].address
        assert value(after, "mishards_proxy_subrequest_seconds_count", method="SearchInFiles", node=live) >= 2

        # The suspicion runs out after its back-off; the proxy keeps answering meanwhile.
        poll_for(lambda: value(scrape(cluster.proxy.metrics_port), "mishards_proxy_suspected_nodes") == 0, 30,
                 what="the suspicion of the dead reader to run out")
        assert _search(s, "f", x[:1], 3).status.error_code == 0
