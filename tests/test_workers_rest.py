"""The REST API of a standalone node with ``--workers 2`` (real processes): every worker serves the node's REST
port (``SO_REUSEPORT``) through the same handler table as its gRPC port, so writes, DDL, a Flush and the cache
calls reach the primary whichever worker took the HTTP connection, searches are answered by the worker itself,
and every reply is what a one-worker node answers (searches checked against an exact oracle)."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from coordinator.workers import LOCAL_HEADER
from milvus_wire import milvus_pb2, milvus_pb2_grpc
from tests.support.http import HttpReply, request
from tests.support.nodeproc import NodeProcess
from tests.support.scrape import scrape, value
from tests.support.waiting import free_port, poll_for
from tests.test_rest_api import check_hits
from tests.test_workers_node import gone

DIM = 8
ARGS = ["--auto-flush-interval", "0", "--metrics-port", "-1"]
SEARCH_ROUTE = "PUT /collections/{collection_name}/vectors"
INSERT_ROUTE = "POST /collections/{collection_name}/vectors"
ROUNDS = 24  # HTTP requests of one kind, each on a new connection (the kernel spreads them over the workers)


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NodeProcess, NodeProcess]]:
    base = tmp_path_factory.mktemp("rest_workers")
    one = NodeProcess(base / "one", ARGS, http=True).start()
    two = NodeProcess(base / "two", [*ARGS, "--workers", "2"], http=True)
    try:
        two.start()
        yield one, two
    finally:
        two.stop()
        one.stop()


def rest_of(node: NodeProcess) -> Callable[..., HttpReply]:
    def call(method: str, path: str, body: Any = None) -> HttpReply:
        return request(node.http_port, method, path, body)

    return call


def served(node: NodeProcess, route: str) -> dict[str, float]:
    """REST requests of ``route`` each worker served (from the node's one /metrics, by ``worker`` label)."""
    samples = scrape(node.metrics_port)
    return {w: value(samples, "mishards_node_rest_request_seconds_count", route=route, worker=w) for w in ("0", "1")}


def threads(pid: int) -> int:
    """Threads of ``pid`` not yet exited (a zombie leader counts until reaped)."""
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return 0


def answered(rest: Callable[..., HttpReply], replies: list[HttpReply]) -> bool:
    """``GET /collections`` answered (kept in ``replies``), not refused or reset on the way."""
    try:
        replies.append(rest("GET", "/collections"))
    except ConnectionError:
        return False
    return True


def cached_ids(node: NodeProcess) -> list[set[int]]:
    """The segment ids in each worker's cache (``mishards_stats`` on its own port, marked for that worker)."""
    found = []
    for address in json.loads((node.workdir / "ready.json").read_text())["workers"]:
        channel = grpc.insecure_channel(address)
        try:
            stub = milvus_pb2_grpc.MilvusServiceStub(channel)
            reply = stub.Cmd(milvus_pb2.Command(cmd="mishards_stats"), metadata=((LOCAL_HEADER, "1"),), timeout=30)
            assert reply.status.error_code == 0, reply
            found.append(set(json.loads(reply.string_reply)["cache_segment_ids"]))
        finally:
            channel.close()
    return found


def scenario(rest: Callable[..., HttpReply], name: str, data: np.ndarray, queries: np.ndarray) -> list[Any]:
    """Create, insert in parts, count before and after a Flush, describe, build an index, search: every reply's
    status and body (search results are compared by the caller)."""
    replies: list[Any] = []

    def keep(reply: HttpReply) -> HttpReply:
        replies.append((reply.status, reply.json() if reply.body else None))
        return reply

    keep(rest("POST", "/collections", {"collection_name": name, "dimension": DIM, "metric_type": "L2",
                                       "index_file_size": 1024}))
    for part in range(4):
        rows = data[part * 50:(part + 1) * 50]
        ids = [str(i) for i in range(part * 50, (part + 1) * 50)]
        keep(rest("POST", f"/collections/{name}/vectors", {"vectors": rows, "ids": ids}))
    keep(rest("GET", f"/collections/{name}"))  # unflushed rows are invisible
    keep(rest("PUT", "/system/task", {"flush": {"collection_names": [name]}}))
    keep(rest("GET", f"/collections/{name}"))
    keep(rest("GET", f"/collections/{name}/partitions"))
    keep(rest("POST", f"/collections/{name}/partitions", {"partition_tag": "p1"}))
    keep(rest("GET", f"/collections/{name}/partitions"))
    keep(rest("PUT", "/system/task", {"load": {"collection_name": name}}))
    keep(rest("GET", "/collections/not_there"))
    keep(rest("PUT", "/collections/not_there/vectors", {"search": {"topk": 3, "params": {}, "vectors": queries}}))
    return replies


def test_every_rest_call_answers_as_one_worker_and_both_workers_serve_them(
        nodes: tuple[NodeProcess, NodeProcess]) -> None:
    one, two = nodes
    rng = np.random.default_rng(11)
    data = rng.random((200, DIM), dtype=np.float32)
    queries = rng.random((3, DIM), dtype=np.float32)
    name = "rest_workers_a"
    before = {"search": served(two, SEARCH_ROUTE), "insert": served(two, INSERT_ROUTE)}
    assert scenario(rest_of(two), name, data, queries) == scenario(rest_of(one), name, data, queries)
    truth = ((queries[:, None, :].astype(np.float64) - data[None].astype(np.float64)) ** 2).sum(axis=2)
    ids = np.arange(200)
    expected = rest_of(one)("PUT", f"/collections/{name}/vectors",
                            {"search": {"topk": 5, "params": {}, "vectors": queries}})
    assert expected.status == 200
    rest = rest_of(two)
    for _ in range(ROUNDS):
        reply = rest("PUT", f"/collections/{name}/vectors", {"search": {"topk": 5, "params": {}, "vectors": queries}})
        assert reply.status == 200, reply
        check_hits(reply.json()["result"], truth, ids, 5)
        assert reply.body == expected.body
    for i in range(ROUNDS):  # writes through whichever worker took the connection
        rows = rng.random((2, DIM), dtype=np.float32)
        reply = rest("POST", f"/collections/{name}/vectors", {"vectors": rows, "ids": [str(1000 + 2 * i),
                                                                                       str(1001 + 2 * i)]})
        assert reply.status == 201 and reply.json() == {"ids": [str(1000 + 2 * i), str(1001 + 2 * i)]}, reply
        data = np.concatenate([data, rows])
        ids = np.concatenate([ids, [1000 + 2 * i, 1001 + 2 * i]])
    flushed = rest("PUT", "/system/task", {"flush": {"collection_names": [name]}})
    assert flushed.status == 200 and flushed.json() == {"code": 0, "message": "OK"}
    truth = ((queries[:, None, :].astype(np.float64) - data[None].astype(np.float64)) ** 2).sum(axis=2)
    for _ in range(ROUNDS):  # every search after the Flush sees every row it acknowledged, on either worker
        reply = rest("PUT", f"/collections/{name}/vectors", {"search": {"topk": 5, "params": {}, "vectors": queries}})
        assert reply.status == 200, reply
        check_hits(reply.json()["result"], truth, ids, 5)
        count = rest("GET", f"/collections/{name}")
        assert count.status == 200 and count.json()["count"] == data.shape[0]
    after = {"search": served(two, SEARCH_ROUTE), "insert": served(two, INSERT_ROUTE)}
    for kind in ("search", "insert"):
        for worker in ("0", "1"):
            assert after[kind][worker] > before[kind][worker], (kind, before, after)


def test_rest_load_reaches_the_cache_of_every_worker(nodes: tuple[NodeProcess, NodeProcess]) -> None:
    _, two = nodes
    rest = rest_of(two)
    name = "rest_workers_load"
    assert rest("POST", "/collections", {"collection_name": name, "dimension": DIM}).status == 201
    rows = np.random.default_rng(5).random((64, DIM), dtype=np.float32)
    assert rest("POST", f"/collections/{name}/vectors", {"vectors": rows}).status == 201
    assert rest("PUT", "/system/task", {"flush": {"collection_names": [name]}}).status == 200
    for _ in range(6):  # loads through either worker: each time every worker's cache holds the segment
        assert rest("PUT", "/system/task", {"release": {"collection_name": name}}).status == 200
        released = cached_ids(two)
        reply = rest("PUT", "/system/task", {"load": {"collection_name": name}})
        assert reply.status == 200 and reply.json() == {"code": 0, "message": "OK"}, reply
        loaded = cached_ids(two)
        # The collection's one segment, new in both caches (the primary's may also gain a merged segment of
        # another collection meanwhile).
        mine = (loaded[0] - released[0]) & (loaded[1] - released[1])
        assert len(mine) == 1 and len(loaded[1] - released[1]) == 1, (released, loaded)


def test_a_forward_the_primary_cannot_take_answers_the_rest_error_body(nodes: tuple[NodeProcess, NodeProcess]) -> None:
    """With the primary gone (and the parent held, so that it is not restarted yet), the secondary takes every
    new connection: its searches still answer, every forwarded call answers Milvus 1.1's error body."""
    _, two = nodes
    assert two.proc is not None
    info = json.loads((two.workdir / "ready.json").read_text())
    rest = rest_of(two)
    name = "rest_workers_down"
    assert rest("POST", "/collections", {"collection_name": name, "dimension": DIM}).status == 201
    rows = np.random.default_rng(9).random((10, DIM), dtype=np.float32)
    assert rest("POST", f"/collections/{name}/vectors", {"vectors": rows, "ids": [str(i) for i in range(10)]}
                ).status == 201
    assert rest("PUT", "/system/task", {"flush": {"collection_names": [name]}}).status == 200
    os.kill(two.proc.pid, signal.SIGSTOP)
    try:
        primary = int(info["worker_pids"][0])
        os.kill(primary, signal.SIGKILL)
        # Gone with every thread (its sockets close with the last one: a connection queued on them is reset).
        poll_for(lambda: gone(primary) and threads(primary) <= 1, 30, what="the primary gone")
        replies: list[HttpReply] = []
        poll_for(lambda: answered(rest, replies), 30, what="an HTTP reply from the secondary")
        reply = replies[0]
        assert reply.status == 400 and list(reply.json()) == ["message", "code"] and reply.json()["code"] == 1, reply
        assert reply.json()["message"]
        insert = rest("POST", f"/collections/{name}/vectors", {"vectors": rows})
        assert insert.status == 400 and insert.json()["code"] == 1, insert
        search = rest("PUT", f"/collections/{name}/vectors", {"search": {"topk": 1, "params": {}, "vectors": rows[:2]}})
        assert search.status == 200 and [r[0]["id"] for r in search.json()["result"]] == ["0", "1"], search
    finally:
        os.kill(two.proc.pid, signal.SIGCONT)

    def primary_back() -> bool:
        samples = scrape(two.metrics_port)
        return value(samples, "mishards_worker_up", worker="0") == 1 and rest("GET", "/collections").status == 200

    poll_for(primary_back, 60, interval=0.2, what="the primary restarted and serving REST")


def test_a_read_nodes_workers_serve_its_rest_port(tmp_path: Path) -> None:
    """A read node (role ro) with REST on: every worker answers REST searches itself, exactly."""
    storage = tmp_path / "storage"
    data = np.random.default_rng(21).random((300, DIM), dtype=np.float32)
    with NodeProcess(tmp_path / "writer", ["--auto-flush-interval", "0"], storage=storage, http=True) as writer:
        rest = rest_of(writer)
        assert rest("POST", "/collections", {"collection_name": "ro_rest", "dimension": DIM}).status == 201
        reply = rest("POST", "/collections/ro_rest/vectors", {"vectors": data, "ids": [str(i) for i in range(300)]})
        assert reply.status == 201
        assert rest("PUT", "/system/task", {"flush": {"collection_names": ["ro_rest"]}}).status == 200
    port = free_port()
    reader = NodeProcess(tmp_path / "reader", ["--role", "ro", "--port", str(port), "--workers", "2",
                                               "--membership", f"static://127.0.0.1:{port}=ro", "--metrics-port", "-1"],
                         meta_uri=f"sqlite:///{storage / 'meta.sqlite'}", storage=storage, http=True)
    with reader:
        rest = rest_of(reader)
        queries = data[:4] + 0.01
        truth = ((queries[:, None, :].astype(np.float64) - data[None].astype(np.float64)) ** 2).sum(axis=2)
        for _ in range(ROUNDS):
            search = {"search": {"topk": 3, "params": {}, "vectors": queries}}
            reply = rest("PUT", "/collections/ro_rest/vectors", search)
            assert reply.status == 200, reply
            check_hits(reply.json()["result"], truth, np.arange(300), 3)
        by_worker = served(reader, SEARCH_ROUTE)
        assert by_worker["0"] > 0 and by_worker["1"] > 0 and sum(by_worker.values()) == ROUNDS, by_worker
