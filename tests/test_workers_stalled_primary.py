"""A standalone node with ``--workers 2`` whose primary stops answering altogether (SIGSTOP, real processes): a
call the secondary forwards to it ends with UNAVAILABLE after the forward channel's keepalive goes unanswered,
also when the caller set no deadline (as a REST call or a client without timeouts), instead of waiting forever;
the secondary keeps serving searches meanwhile, and once the primary runs again the forwarded calls work again."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import numpy as np
import pytest

from milvus_wire import milvus_pb2, milvus_pb2_grpc
from node.worker_forward import KEEPALIVE_MS, KEEPALIVE_TIMEOUT_MS
from tests.support import requests as rq
from tests.support.nodeproc import NodeProcess
from tests.support.waiting import poll_for
from tests.test_workers_node import stub_at

DIM = 8
ARGS = ["--workers", "2", "--metrics-port", "-1", "--auto-flush-interval", "0"]
# How long a forwarded call may take to fail once the primary stopped: a keepalive period and its timeout, plus
# room for a loaded machine. A forward that waited for an answer would still be waiting after this.
DETECTION_BOUND = (KEEPALIVE_MS + KEEPALIVE_TIMEOUT_MS) / 1000 * 4


@pytest.fixture
def node(tmp_path: Path) -> Iterator[NodeProcess]:
    proc = NodeProcess(tmp_path / "node", ARGS)
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def test_a_stopped_primary_fails_forwarded_calls_instead_of_holding_them(node: NodeProcess) -> None:
    info = json.loads((node.workdir / "ready.json").read_text())
    primary_pid = int(info["worker_pids"][0])
    primary_channel, primary = stub_at(info["workers"][0])
    secondary_channel, secondary = stub_at(info["workers"][1])
    name = rq.unique_name("stall")
    vectors = np.random.default_rng(5).random((20, DIM), dtype=np.float32)
    has = milvus_pb2.CollectionName(collection_name=name)
    pool = ThreadPoolExecutor(max_workers=2)
    try:
        rq.ok(rq.create(primary, name, DIM, rq.L2))
        rq.insert_ok(primary, name, vectors, ids=range(20))
        rq.ok(rq.flush(primary, name))

        def nearest_of_row_0() -> int:
            status, ids, _ = rq.search(secondary, name, vectors[:1], 3)
            rq.ok(status)
            return int(ids[0][0])

        poll_for(lambda: nearest_of_row_0() == 0, 30, what="the secondary finds row 0")

        # The forward channel is connected (a stalled connection attempt fails at once: not what is tested here).
        assert secondary.HasCollection(has).bool_reply
        os.kill(primary_pid, signal.SIGSTOP)
        try:
            # No deadline on the caller's side: only the forward's keepalive can end this call.
            raw = milvus_pb2_grpc.MilvusServiceStub(secondary_channel)
            without_deadline = pool.submit(raw.HasCollection, has)
            with pytest.raises(grpc.RpcError) as raised:
                secondary.HasCollection(has, timeout=120)
            assert raised.value.code() == grpc.StatusCode.UNAVAILABLE, raised.value
            error = without_deadline.exception(timeout=DETECTION_BOUND)
            assert isinstance(error, grpc.RpcError) and error.code() == grpc.StatusCode.UNAVAILABLE, error
            # Searches are the secondary's own work: still answered, exactly.
            assert nearest_of_row_0() == 0
        finally:
            os.kill(primary_pid, signal.SIGCONT)

        def forwarded_again() -> bool:
            try:
                return bool(secondary.HasCollection(has, timeout=5).bool_reply)
            except grpc.RpcError:
                return False

        poll_for(forwarded_again, 30, what="HasCollection forwarded again after SIGCONT")
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        primary_channel.close()
        secondary_channel.close()
