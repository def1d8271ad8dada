"""A read node's own trouble is retried on another replica; the request's own fault is passed on unchanged.

Real processes: a writer and a good reader on the shared storage folder, and a broken reader started on an
empty storage folder of its own (same catalog): it knows every segment but cannot read one, and answers
FILE_NOT_FOUND. Searches and searches by id through the proxy still equal the exact answer. The proxy
also refuses, in-band and before any fan-out, a search whose result could not be sent (nq x topk x 12
bytes >= 2 GiB, Milvus 1.1.1's rule), in the node's wording.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from coordinator.errors import ErrorCode
from milvus_wire import milvus_pb2
from tests.support.cluster import LocalCluster
from tests.support.nodeproc import NodeProcess
from tests.support.proxyproc import ProxyProcess
from tests.support.requests import (
    L2,
    assert_search_exact,
    create,
    decode_topk,
    flush,
    insert,
    insert_ok,
    ok,
    search_param,
)
from tests.support.scrape import scrape, value
from tests.support.waiting import free_ports, poll_for

DIM = 16
BATCH = 9_000  # with index_file_size 1 (MB) two batches never merge: one segment per flushed batch
SEGMENTS = 4
K = 10


class Cluster:
    def __init__(self, root: Path) -> None:
        meta = f"sqlite:///{root / 'meta.sqlite'}"
        ports = free_ports(3)
        addresses = [f"127.0.0.1:{p}" for p in ports]
        membership = f"static://{addresses[0]}=rw,{addresses[1]}=ro,{addresses[2]}=ro"
        common = ["--replication", "2", "--membership", membership, "--metrics-port", "-1"]
        shared = root / "shared"
        self.writer = NodeProcess(root / "w", ["--role", "rw", "--port", str(ports[0]), "--auto-flush-interval",
                                               "0", *common], meta_uri=meta, storage=shared)
        self.good = NodeProcess(root / "good", ["--role", "ro", "--port", str(ports[1]), *common], meta_uri=meta,
                                storage=shared)
        self.broken = NodeProcess(root / "broken", ["--role", "ro", "--port", str(ports[2]), *common],
                                  meta_uri=meta, storage=root / "empty")
        self.proxy = ProxyProcess(root / "p", membership, ["--meta-uri", meta, "--replication", "2",
                                                           "--metrics-port", "-1"])

    def start(self) -> Cluster:
        for node in (self.writer, self.good, self.broken):
            node.start()
        self.proxy.start()
        return self

    def stop(self) -> None:
        self.proxy.stop()
        for node in (self.writer, self.good, self.broken):
            node.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, np.ndarray, np.ndarray]]:
    c = Cluster(tmp_path_factory.mktemp("broken-reader"))
    try:
        c.start()
        s = c.proxy.stub()
        ok(create(s, "c", DIM, L2, ifs=1))
        rng = np.random.default_rng(3)
        parts, ids = [], []
        for _ in range(SEGMENTS):
            x = rng.standard_normal((BATCH, DIM)).astype(np.float32)
            ids.append(insert_ok(s, "c", x))
            parts.append(x)
            ok(flush(s, "c"))
        base = np.concatenate(parts)
        for node in (c.good, c.broken):
            poll_for(lambda node=node: _count(node.stub()) == len(base), 30,  # type: ignore[misc]
                     what="the readers to see the rows")
        yield c, base, np.concatenate(ids)
    finally:
        c.stop()


def _count(stub: Any) -> int:
    return int(stub.CountCollection(milvus_pb2.CollectionName(collection_name="c"), timeout=10).collection_row_count)


def _value(port: int, name: str, **labels: str) -> float:
    return value(scrape(port), name, **labels)


def test_the_broken_reader_really_fails_on_its_own(cluster: tuple[Cluster, np.ndarray, np.ndarray]) -> None:
    c, base, _ = cluster
    status, _, _ = decode_topk(c.broken.stub().Search(search_param("c", base[:1], K), timeout=30))
    assert status.error_code == ErrorCode.FILE_NOT_FOUND, status


def test_searches_are_retried_on_the_replica_that_can_read(cluster: tuple[Cluster, np.ndarray, np.ndarray]) -> None:
    c, base, ids = cluster
    s = c.proxy.stub()
    rng = np.random.default_rng(5)
    for _ in range(20):
        q = rng.standard_normal((3, DIM)).astype(np.float32)
        status, got, dist = decode_topk(s.Search(search_param("c", q, K), timeout=30))
        ok(status)
        assert_search_exact(got, dist, base, ids, q, K, L2)
    broken = c.broken.address
    assert _value(c.proxy.metrics_port, "mishards_proxy_failovers_total", node=broken) >= 1
    assert _value(c.proxy.metrics_port, "mishards_proxy_node_suspicions_total", node=broken) >= 1


def test_search_by_id_reads_vectors_from_the_replica_that_can(cluster: tuple[Cluster, np.ndarray, np.ndarray]) -> None:
    c, base, ids = cluster
    s = c.proxy.stub()
    rows = [0, 9_001, 27_500]
    for _ in range(5):  # the broken reader is tried first whenever it is not suspected
        request = milvus_pb2.SearchByIDParam(collection_name="c", id_array=[int(ids[r]) for r in rows], topk=K)
        status, got, dist = decode_topk(s.SearchByID(request, timeout=30))
        ok(status)
        assert_search_exact(got, dist, base, ids, base[rows], K, L2)


@pytest.mark.parametrize("request_", [
    search_param("c", np.zeros((2, DIM), dtype=np.float32), 0),  # topk out of range
    search_param("c", np.zeros((2, DIM), dtype=np.float32), K, params="{not json"),  # malformed params
    search_param("c", np.zeros((2, DIM + 1), dtype=np.float32), K),  # wrong dimension
    search_param("c", np.zeros((2, DIM), dtype=np.float32), K, tags=["nope"]),  # unknown partition
    search_param("nope", np.zeros((2, DIM), dtype=np.float32), K),  # unknown collection
], ids=["topk", "params", "dimension", "partition", "collection"])
def test_the_requests_own_fault_is_answered_as_the_writer_words_it(
        cluster: tuple[Cluster, np.ndarray, np.ndarray], request_: Any) -> None:
    c, _, _ = cluster
    through_proxy = c.proxy.stub().Search(request_, timeout=30).status
    direct = c.writer.stub().Search(request_, timeout=30).status
    assert through_proxy.error_code != 0
    assert (through_proxy.error_code, through_proxy.reason) == (direct.error_code, direct.reason)


def test_a_result_too_big_to_send_is_refused_before_any_fan_out(
        cluster: tuple[Cluster, np.ndarray, np.ndarray]) -> None:
    c, _, _ = cluster
    nq, topk = 12_000, 16_384  # 12000 x 16384 x 12 bytes = 2.2 GiB
    queries = np.zeros((nq, DIM), dtype=np.float32)
    answered = [_value(n.metrics_port, "mishards_node_request_seconds_count", method="SearchInFiles")
                for n in (c.good, c.broken)]
    t0 = time.monotonic()
    status = c.proxy.stub().Search(search_param("c", queries, topk), timeout=60).status
    assert time.monotonic() - t0 < 10
    reason = f"Invalid nq {nq} topk {topk}. The search result size may exceed the RPC transmission limit."
    assert (status.error_code, status.reason) == (ErrorCode.ILLEGAL_TOPK, reason)
    assert [_value(n.metrics_port, "mishards_node_request_seconds_count", method="SearchInFiles")
            for n in (c.good, c.broken)] == answered  # no read node saw it
    direct = c.writer.stub().Search(search_param("c", queries, topk), timeout=60).status
    assert (direct.error_code, direct.reason) == (status.error_code, status.reason)
    by_id = milvus_pb2.SearchByIDParam(collection_name="c", id_array=list(range(nq)), topk=topk)
    status = c.proxy.stub().SearchByID(by_id, timeout=60).status
    assert (status.error_code, status.reason) == (ErrorCode.ILLEGAL_TOPK, reason)


def test_a_search_over_the_nodes_message_cap_is_answered_in_band_at_once(tmp_path: Path) -> None:
    """Read nodes refuse a message over their size cap (RESOURCE_EXHAUSTED): every replica would, so the proxy
    answers at once instead of trying each one and reporting them dead."""
    with LocalCluster(tmp_path, readers=2, replication=2, node_args=["--grpc-max-message-size", "4MB"]) as c:
        s = c.stub()
        ok(create(s, "c", DIM, L2, ifs=1))
        ok(insert(s, "c", np.zeros((100, DIM), dtype=np.float32)))
        ok(flush(s, "c"))
        big = np.ones((80_000, DIM), dtype=np.float32)  # about 5 MB of query vectors
        status = s.Search(search_param("c", big, 1), timeout=60).status
        assert status.error_code == ErrorCode.UNEXPECTED_ERROR
        assert status.reason.startswith("The request is larger than the read nodes accept"), status.reason
        ok(s.Search(search_param("c", big[:10], 1), timeout=60).status)  # nobody was suspected for it
