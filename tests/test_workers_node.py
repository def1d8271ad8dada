"""A standalone node with ``--workers 2`` (real processes): the workers' own ports where ``--worker-ports`` puts them,
writes through either worker, searches through each, DDL visible at once everywhere, one /metrics for both, a
killed worker restarted (on its port again), SIGTERM drains all."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from milvus_wire import milvus_pb2, milvus_pb2_grpc
from tests.support import requests as rq
from tests.support.nodeproc import CHANNEL_OPTIONS, NodeProcess
from tests.support.scrape import scrape, value
from tests.support.waiting import free_port_run, poll_for

DIM = 16
WORKER_ARGS = ["--workers", "2", "--metrics-port", "-1", "--auto-flush-interval", "0"]


def stub_at(address: str, own_connection: bool = False) -> tuple[grpc.Channel, Any]:
    """A stub on a channel of its own (``own_connection``: a TCP connection of its own even to an address
    other channels already reach, so that connections to the shared port land on either worker)."""
    options = [*CHANNEL_OPTIONS, *([("grpc.use_local_subchannel_pool", 1)] if own_connection else [])]
    channel = grpc.insecure_channel(address, options=options)
    return channel, rq.TimedStub(milvus_pb2_grpc.MilvusServiceStub(channel))


class Workers:
    """The node's ready file and a stub per worker's own address."""

    def __init__(self, node: NodeProcess) -> None:
        self.node = node
        self.first_port = 0
        self.info = json.loads((node.workdir / "ready.json").read_text())
        self.addresses: list[str] = list(self.info["workers"])
        self.channels: list[grpc.Channel] = []
        self.stubs: list[Any] = []
        for address in self.addresses:
            channel, stub = stub_at(address)
            self.channels.append(channel)
            self.stubs.append(stub)

    def close(self) -> None:
        for channel in self.channels:
            channel.close()


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workers]:
    first = free_port_run(2)
    node = NodeProcess(tmp_path_factory.mktemp("workers"), [*WORKER_ARGS, "--worker-ports", str(first)])
    node.start()
    found = Workers(node)
    found.first_port = first
    try:
        yield found
    finally:
        found.close()
        node.stop()


def test_ready_file_names_both_workers_and_each_answers_the_same_list(workers: Workers) -> None:
    assert len(workers.addresses) == 2 and len(set(workers.addresses)) == 2
    assert [int(a.rpartition(":")[2]) for a in workers.addresses] == [workers.first_port, workers.first_port + 1]
    assert workers.node.proc is not None and workers.info["pid"] == workers.node.proc.pid
    for stub in [*workers.stubs, workers.node.stub()]:
        reply = rq.ok(rq.cmd(stub, "mishards_workers"))
        assert json.loads(reply.string_reply) == {"workers": workers.addresses}


def test_writes_through_every_worker_are_found_by_a_search_through_each(workers: Workers) -> None:
    name = rq.unique_name("wk")
    rq.ok(rq.create(workers.stubs[1], name, DIM, rq.L2))
    rng = np.random.default_rng(7)
    base_parts, id_parts = [], []
    shared = [stub_at(workers.node.address, own_connection=True) for _ in range(4)]
    try:
        writers = [*workers.stubs, *(stub for _, stub in shared)]
        for i, stub in enumerate(writers):
            vectors = rng.random((50, DIM), dtype=np.float32)
            ids = np.arange(i * 1000, i * 1000 + 50, dtype=np.int64)
            assert (rq.insert_ok(stub, name, vectors, ids) == ids).all()
            base_parts.append(vectors)
            id_parts.append(ids)
    finally:
        for channel, _ in shared:
            channel.close()
    rq.ok(rq.flush(workers.stubs[1], name))  # through a secondary: forwarded to the primary
    base, ids = np.concatenate(base_parts), np.concatenate(id_parts)
    queries = rng.random((5, DIM), dtype=np.float32)
    for stub in workers.stubs:
        assert rq.count(stub, name) == base.shape[0]
        status, got_ids, got_dist = rq.search(stub, name, queries, 10)
        assert status.error_code == 0, status.reason
        rq.assert_search_exact(got_ids, got_dist, base, ids, queries, 10, rq.L2)
        status, by_id, _ = rq.search_by_id(stub, name, [int(ids[3])], 1)
        assert status.error_code == 0 and int(by_id[0, 0]) == int(ids[3])


def test_ddl_through_one_worker_is_seen_at_once_through_the_other(workers: Workers) -> None:
    first, second = workers.stubs
    name = rq.unique_name("ddl")
    rq.ok(rq.create(first, name, DIM, rq.L2))
    assert rq.ok(second.HasCollection(milvus_pb2.CollectionName(collection_name=name))).bool_reply
    vectors = np.random.default_rng(3).random((20, DIM), dtype=np.float32)
    rq.insert_ok(first, name, vectors, np.arange(20))
    rq.ok(rq.flush(first, name))
    status, got, _ = rq.search(second, name, vectors[:1], 1)  # flushed through one, searched through the other
    assert status.error_code == 0 and int(got[0, 0]) == 0
    index = milvus_pb2.IndexParam(collection_name=name, index_type=2,  # IVF_FLAT
                                  extra_params=rq.extra_params({"nlist": 4}))
    rq.ok(second.CreateIndex(index))
    described = rq.ok(first.DescribeIndex(milvus_pb2.CollectionName(collection_name=name)))
    assert described.index_type == 2
    rq.ok(second.DropCollection(milvus_pb2.CollectionName(collection_name=name)))
    assert not rq.ok(first.HasCollection(milvus_pb2.CollectionName(collection_name=name))).bool_reply
    status, _, _ = rq.search(second, name, vectors[:1], 1)
    assert status.error_code != 0  # the dropped collection is gone for the searching worker too


def test_one_metrics_endpoint_shows_both_workers(workers: Workers) -> None:
    for stub in workers.stubs:
        rq.cmd(stub, "version")
    samples = scrape(workers.node.metrics_port)
    for worker in ("0", "1"):
        assert value(samples, "mishards_worker_up", worker=worker) == 1
        assert value(samples, "mishards_node_request_seconds_count", worker=worker) > 0


def test_a_killed_worker_is_restarted_and_the_node_keeps_answering(workers: Workers) -> None:
    victim = int(workers.info["worker_pids"][1])
    os.kill(victim, signal.SIGKILL)

    def answers_on_shared_port() -> bool:
        channel, stub = stub_at(workers.node.address, own_connection=True)
        try:
            return rq.cmd(stub, "status").string_reply == "OK"
        except grpc.RpcError:
            return False
        finally:
            channel.close()

    for _ in range(5):  # new connections keep being served meanwhile
        poll_for(answers_on_shared_port, 30, what="an answer on the shared port")

    def restarted() -> bool:
        samples = scrape(workers.node.metrics_port)
        return (value(samples, "mishards_worker_restarts_total", worker="1") >= 1
                and value(samples, "mishards_worker_up", worker="1") == 1)

    poll_for(restarted, 60, interval=0.2, what="worker 1 restarted")
    channel, stub = stub_at(workers.addresses[1])  # on the same own port as before
    try:
        poll_for(lambda: rq.cmd(stub, "version").string_reply, 30, what="the restarted worker's own port")
    finally:
        channel.close()
    # A call every worker must take reaches the restarted one again (over its private socket).
    name = rq.unique_name("back")
    rq.ok(rq.create(workers.stubs[0], name, DIM, rq.L2))
    preload = milvus_pb2.PreloadCollectionParam(collection_name=name)
    poll_for(lambda: workers.stubs[0].PreloadCollection(preload).error_code == 0, 30,
             what="a preload through worker 0 reaching the restarted worker 1")


def test_sigterm_drains_every_worker_and_the_parent_exits_0(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "n", WORKER_ARGS).start()
    pids = json.loads((node.workdir / "ready.json").read_text())["worker_pids"]
    assert node.proc is not None
    node.proc.send_signal(signal.SIGTERM)
    assert node.proc.wait(timeout=60) == 0

    def all_gone() -> bool:
        return all(gone(int(pid)) for pid in pids)

    poll_for(all_gone, 30, what=f"workers {pids} gone")
    node.stop()


def gone(pid: int) -> bool:
    """The process exited (it may wait to be reaped by its new parent)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return True
    return state == "Z"


def test_pymilvus_112_scenario_through_a_secondary_worker(tmp_path: Path) -> None:
    """The client scenario against worker 1's own port: its searches run there, every other call is
    forwarded to the primary; the client must not tell the difference."""
    from tests.test_pymilvus_compat import FINAL_LINE, MIN_CHECKS, SCENARIO, _client_env, _require_pymilvus

    _require_pymilvus()
    node = NodeProcess(tmp_path / "n", WORKER_ARGS).start()
    try:
        host, _, port = json.loads((node.workdir / "ready.json").read_text())["workers"][1].rpartition(":")
        proc = subprocess.run([sys.executable, str(SCENARIO), "--host", host, "--port", port, "--handler", "GRPC"],
                              env=_client_env(), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, timeout=300)
        lines = proc.stdout.strip().splitlines()
        final = FINAL_LINE.fullmatch(lines[-1].strip()) if lines else None
        assert proc.returncode == 0 and final is not None and int(final.group(1)) >= MIN_CHECKS, (
            f"scenario failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n--- node ---\n{node.log_tail(60)}")
    finally:
        node.stop()
