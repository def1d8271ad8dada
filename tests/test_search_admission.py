"""No search can take a node down: Milvus 1.1.1's result-size rule, the node's search memory budget and its
queue of heavy searches, against real node processes and a real proxy cluster.

Memory is checked from the outside: ``VmHWM`` (the peak resident set) of the node process, read from
``/proc/<pid>/status`` before and after. Before the result-size rule, the nq 12000 x topk 16384 search
below made a node grow by many GiB (about 14 GB in a cluster run, until the kernel killed it).
"""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from coordinator.limits import SearchShape, search_cost
from milvus_wire import milvus_pb2
from node import reader
from node.engine import Engine
from node.service import MilvusService
from node.settings import NodeSettings
from tests.support.cluster import LocalCluster
from tests.support.nodeproc import NodeProcess
from tests.support.requests import (
    IP,
    L2,
    TimedStub,
    assert_search_exact,
    assert_status,
    create,
    decode_topk,
    flush,
    insert_ok,
    ok,
    rows,
    search,
    search_param,
)
from tests.support.waiting import poll_for

ILLEGAL_TOPK = 10
DIM = 8
ROWS = 20_000  # more than topk 16384: a search of topk 16384 really is 16384 wide
HUGE_NQ, HUGE_TOPK = 12_000, 16_384  # 12000 * 16384 * 12 bytes = 2.36 GB >= 2 GiB
HUGE_REASON = (f"Invalid nq {HUGE_NQ} topk {HUGE_TOPK}. "
               "The search result size may exceed the RPC transmission limit.")
GIB = 1 << 30


def peak_rss(pid: int) -> int:
    """The peak resident set size of a process (``VmHWM``), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for pid {pid}")


def pid_of(node: NodeProcess) -> int:
    assert node.proc is not None and node.proc.poll() is None, "node exited"
    return node.proc.pid


def fill(stub: Any, name: str, rows_count: int = ROWS, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A float L2 collection of ``rows_count`` rows in two flushed segments; returns (vectors, ids)."""
    ok(create(stub, name, DIM, L2))
    x = np.random.default_rng(seed).random((rows_count, DIM), dtype=np.float32)
    half = rows_count // 2
    ids = []
    for part in (x[:half], x[half:]):
        ids.append(insert_ok(stub, name, part))
        ok(flush(stub, name))
    return x, np.concatenate(ids)


def huge_queries() -> np.ndarray:
    return np.random.default_rng(7).random((HUGE_NQ, DIM), dtype=np.float32)


# -- one node ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NodeProcess, TimedStub, np.ndarray, np.ndarray]]:
    """A standalone node holding collection ``big`` (20,000 rows in two segments)."""
    with NodeProcess(tmp_path_factory.mktemp("admission"), ["--auto-flush-interval", "0"]) as node:
        stub = TimedStub(node.stub())
        x, ids = fill(stub, "big")
        yield node, stub, x, ids


Big = tuple[NodeProcess, TimedStub, np.ndarray, np.ndarray]


def test_huge_search_is_refused_at_once_and_the_node_stays_small(big: Big) -> None:
    node, stub, _, _ = big
    before = peak_rss(pid_of(node))
    queries = huge_queries()
    reply = stub.Search(search_param("big", queries, HUGE_TOPK))
    assert_status(reply, ILLEGAL_TOPK, HUGE_REASON)
    assert reply.row_num == 0 and len(reply.ids) == 0
    files = milvus_pb2.SearchInFilesParam(file_id_array=["1"], search_param=search_param("big", queries, HUGE_TOPK))
    assert_status(stub.SearchInFiles(files), ILLEGAL_TOPK, HUGE_REASON)
    by_id = milvus_pb2.SearchByIDParam(collection_name="big", id_array=list(range(HUGE_NQ)), topk=HUGE_TOPK)
    assert_status(stub.SearchByID(by_id), ILLEGAL_TOPK, HUGE_REASON)
    grown = peak_rss(pid_of(node)) - before
    assert grown < GIB, f"the node's peak RSS grew by {grown / GIB:.2f} GiB"


def test_result_size_rule_comes_right_after_topk(big: Big) -> None:
    """Milvus order: name, topk, result size, then partition tags and the collection's existence."""
    _, stub, _, _ = big
    queries = huge_queries()
    assert_status(stub.Search(search_param("missing_collection", queries, HUGE_TOPK)), ILLEGAL_TOPK, HUGE_REASON)
    assert_status(stub.Search(search_param("big", queries, HUGE_TOPK, tags=[" "])), ILLEGAL_TOPK, HUGE_REASON)
    assert_status(stub.Search(search_param("big", queries, 1_048_577)), ILLEGAL_TOPK,
                  "Invalid topk: 1048577. The topk must be within the range of 1 ~ 1048576.")
    assert_status(stub.Search(search_param("", queries, HUGE_TOPK)), 9, "Collection name should not be empty.")


def test_a_wide_search_across_segments_is_exact(big: Big) -> None:
    """topk 16384 over two segments of 10,000 rows: folded segment by segment, the same as one merge."""
    _, stub, x, ids = big
    queries = x[[0, 12_345, 19_999]]
    status, got_ids, got_dist = search(stub, "big", queries, HUGE_TOPK)
    assert status.error_code == 0, status.reason
    assert_search_exact(got_ids, got_dist, x, ids, queries, HUGE_TOPK, L2)


# -- the search path in blocks (in process: constants shrunk so that every block boundary is crossed) --------


@pytest.fixture
def service(tmp_path: Path) -> Iterator[MilvusService]:
    settings = NodeSettings(storage_path=str(tmp_path), auto_flush_interval=0, search_threads=2)
    engine = Engine(settings)
    engine.open()
    pool = ThreadPoolExecutor(settings.search_threads)
    try:
        yield MilvusService(engine, pool)
    finally:
        pool.shutdown()
        engine.close()


def _topk_of(reply: Any) -> tuple[Any, np.ndarray, np.ndarray]:
    if isinstance(reply, bytes):
        reply = milvus_pb2.TopKQueryResult.FromString(reply)
    return decode_topk(reply)


@pytest.mark.parametrize("metric", [L2, IP])
def test_searches_in_query_blocks_folded_segment_by_segment_are_exact(
    service: MilvusService, monkeypatch: pytest.MonkeyPatch, metric: int
) -> None:
    """Five segments (two with deleted rows), queries searched a few at a time, every finished segment folded
    into the accumulator at once: the result is the exact top-k."""
    monkeypatch.setattr(reader, "FOLD_BYTES", 1)
    monkeypatch.setattr(reader, "SEARCH_BLOCK_BYTES", 7 * 40 * reader.SEARCH_BYTES_PER_RESULT)  # 7 queries at k 40
    schema = milvus_pb2.CollectionSchema(collection_name="c", dimension=DIM, index_file_size=1024, metric_type=metric)
    assert service.CreateCollection(schema, None).error_code == 0
    rng = np.random.default_rng(11)
    x = rng.standard_normal((500, DIM)).astype(np.float32)
    ids = np.arange(1000, 1500, dtype=np.int64)
    for start in range(0, 500, 100):
        request = milvus_pb2.InsertParam(collection_name="c", row_record_array=rows(x[start:start + 100]),
                                         row_id_array=ids[start:start + 100].tolist())
        service.Insert(request, None)
        assert service.Flush(milvus_pb2.FlushParam(collection_name_array=["c"]), None).error_code == 0
    gone = np.r_[ids[5:40], ids[250:253]]
    delete = milvus_pb2.DeleteByIDParam(collection_name="c", id_array=gone.tolist())
    assert service.DeleteByID(delete, None).error_code == 0
    assert service.Flush(milvus_pb2.FlushParam(collection_name_array=["c"]), None).error_code == 0
    keep = ~np.isin(ids, gone)
    queries = rng.standard_normal((23, DIM)).astype(np.float32)
    for k in (40, 1, 480):
        status, got_ids, got_dist = _topk_of(service.Search(search_param("c", queries, k), None))
        assert status.error_code == 0, status.reason
        assert_search_exact(got_ids, got_dist, x[keep], ids[keep], queries, k, metric)


# -- the node's memory budget and queue (real node processes) ----------------------------------------------

OUT_OF_MEMORY = 24
UNEXPECTED_ERROR = 1


def metric_value(node: NodeProcess, name: str) -> float:
    """One sample of the node's /metrics (summed over labels)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{node.metrics_port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
              if line.startswith(name) and (line[len(name)] in " {")]
    assert values, f"{name} not in /metrics"
    return sum(values)


def test_a_search_over_the_budget_gets_out_of_memory_at_once(tmp_path: Path) -> None:
    with NodeProcess(tmp_path / "n", ["--auto-flush-interval", "0", "--request-memory", "64MB",
                                      "--metrics-port", "-1"]) as node:
        stub = TimedStub(node.stub())
        x, ids = fill(stub, "c")
        reply = stub.Search(search_param("c", x[:2000], HUGE_TOPK))
        estimate = search_cost(SearchShape(2000, HUGE_TOPK, 2, 2, 2000 * DIM * 4))
        assert_status(reply, OUT_OF_MEMORY, (
            f"A search of nq 2000 topk {HUGE_TOPK} over 2 segments needs about {estimate / (1 << 20):,.0f} MB of "
            "memory, which exceeds the node's request memory budget of 64 MB; lower nq or topk (or send fewer "
            "vectors), or raise the node's request_memory setting"))
        assert metric_value(node, "mishards_node_admission_refused_total") == 1
        assert metric_value(node, "mishards_node_request_memory_budget_bytes") == 64 << 20
        # A search that fits is answered, exactly.
        status, got_ids, got_dist = search(stub, "c", x[:5], 10)
        assert status.error_code == 0, status.reason
        assert_search_exact(got_ids, got_dist, x, ids, x[:5], 10, L2)
        assert metric_value(node, "mishards_node_request_memory_in_use_bytes") == 0


def _concurrently(stub: TimedStub, requests: list[Any]) -> list[Any]:
    """Send every request at the same moment, each from a thread of its own; the replies in order."""
    start = threading.Barrier(len(requests))

    def send(request: Any) -> Any:
        start.wait(30)
        return stub.Search(request)

    with ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(send, requests))


HEAVY_NQ, HEAVY_K, HEAVY_CALLS = 400, HUGE_TOPK, 6


def _heavy_budget() -> int:
    """A budget that fits one heavy search (over two segments) but not two."""
    return search_cost(SearchShape(HEAVY_NQ, HEAVY_K, 2, 2, HEAVY_NQ * DIM * 4)) * 3 // 2


def test_heavy_searches_beyond_the_budget_wait_their_turn(tmp_path: Path) -> None:
    """Six heavy searches at once with room for one: they run one after the other and every one is answered
    exactly; the node's peak memory stays near one search's, not six."""
    budget = _heavy_budget()
    with NodeProcess(tmp_path / "n", ["--auto-flush-interval", "0", "--request-memory", str(budget),
                                      "--queue-timeout", "120", "--metrics-port", "-1"]) as node:
        stub = TimedStub(node.stub(), timeout=180)
        x, ids = fill(stub, "c")
        queries = [x[i * HEAVY_NQ:(i + 1) * HEAVY_NQ] for i in range(HEAVY_CALLS)]
        search(stub, "c", x[:1], 1)  # segments loaded before the peak is read
        before = peak_rss(pid_of(node))
        replies = _concurrently(stub, [search_param("c", q, HEAVY_K) for q in queries])
        grown = peak_rss(pid_of(node)) - before
        for q, reply in zip(queries, replies, strict=True):
            status, got_ids, got_dist = decode_topk(reply)
            assert status.error_code == 0, status.reason
            assert_search_exact(got_ids[:3], got_dist[:3], x, ids, q[:3], HEAVY_K, L2)
        assert metric_value(node, "mishards_node_admitted_total") >= HEAVY_CALLS
        assert metric_value(node, "mishards_node_admission_queue_depth") == 0
        # Measured: about the budget (568 MB for 577); 966 MB with the budget out of the way.
        assert grown < budget * 3 // 2, f"peak grew by {grown >> 20} MB with a budget of {budget >> 20} MB"


def test_heavy_searches_that_cannot_wait_get_busy_and_the_node_stays_up(tmp_path: Path) -> None:
    """The same six at once, but no time to wait (queue timeout 0): each is answered exactly or told the node is
    busy; the node keeps answering."""
    with NodeProcess(tmp_path / "n", ["--auto-flush-interval", "0", "--request-memory", str(_heavy_budget()),
                                      "--queue-timeout", "0", "--metrics-port", "-1"]) as node:
        stub = TimedStub(node.stub(), timeout=180)
        x, ids = fill(stub, "c")
        queries = [x[i * HEAVY_NQ:(i + 1) * HEAVY_NQ] for i in range(HEAVY_CALLS)]
        replies = _concurrently(stub, [search_param("c", q, HEAVY_K) for q in queries])
        answered = 0
        for q, reply in zip(queries, replies, strict=True):
            status, got_ids, got_dist = decode_topk(reply)
            if status.error_code == 0:
                answered += 1
                assert_search_exact(got_ids[:3], got_dist[:3], x, ids, q[:3], HEAVY_K, L2)
            else:
                assert status.error_code == UNEXPECTED_ERROR, status.reason
                assert status.reason.startswith("Server busy: A search of nq 400 topk 16384 over 2 segments not "
                                                "started ("), status.reason
                assert status.reason.endswith("); retry later")
        assert answered >= 1
        busy = metric_value(node, "mishards_node_admission_refused_total")
        assert answered + busy == HEAVY_CALLS
        status, got_ids, got_dist = search(stub, "c", x[:4], 10)
        assert status.error_code == 0
        assert_search_exact(got_ids, got_dist, x, ids, x[:4], 10, L2)


# -- through a real proxy cluster ----------------------------------------------------------------------------


def test_huge_search_through_the_proxy_is_refused_and_no_node_grows(tmp_path: Path) -> None:
    """The report's case end to end: the proxy sends it to the read nodes (and would retry it on replicas); each
    refuses it at once in-band, the client gets ILLEGAL_TOPK, and no node's memory grows."""
    with LocalCluster(tmp_path, readers=2) as cluster:
        stub = TimedStub(cluster.stub())
        x, ids = fill(stub, "c")

        def searchable() -> bool:
            status, got, _ = search(stub, "c", x[:1], 1)
            return status.error_code == 0 and got.shape == (1, 1) and int(got[0, 0]) == int(ids[0])

        poll_for(searchable, 60, what="the rows to be searchable through the proxy")
        before = {node.address: peak_rss(pid_of(node)) for node in cluster.nodes}
        queries = huge_queries()
        assert_status(stub.Search(search_param("c", queries, HUGE_TOPK)), ILLEGAL_TOPK, HUGE_REASON)
        by_id = milvus_pb2.SearchByIDParam(collection_name="c", id_array=ids[:HUGE_NQ].tolist(), topk=HUGE_TOPK)
        assert_status(stub.SearchByID(by_id), ILLEGAL_TOPK, HUGE_REASON)
        for node in cluster.nodes:
            grown = peak_rss(pid_of(node)) - before[node.address]
            assert grown < GIB, f"node {node.address} peak RSS grew by {grown / GIB:.2f} GiB"
        status, got_ids, got_dist = search(stub, "c", x[:3], 20)
        assert status.error_code == 0, status.reason
        assert_search_exact(got_ids, got_dist, x, ids, x[:3], 20, L2)


def test_a_message_over_the_size_cap_gets_a_clean_grpc_error(tmp_path: Path) -> None:
    """gRPC refuses a request over ``grpc_max_message_size`` before reading it: RESOURCE_EXHAUSTED, and the node
    keeps serving (a request under the cap is answered)."""
    with NodeProcess(tmp_path / "n", ["--grpc-max-message-size", "8MB"]) as node:
        stub = TimedStub(node.stub())
        ok(create(stub, "c", 1024, L2))
        big = np.zeros((2100, 1024), dtype=np.float32)  # 8.2 MB of vectors
        with pytest.raises(grpc.RpcError) as info:
            stub.Insert(milvus_pb2.InsertParam(collection_name="c", row_record_array=rows(big)))
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert len(insert_ok(stub, "c", big[:1000])) == 1000
