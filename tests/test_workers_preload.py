"""A worker the parent restarts loads what the node keeps preloaded before it serves (``--workers 2``, real
processes): its cache holds a preloaded collection's segments before any search, a released collection's
none, and the record the primary keeps is compacted as calls come."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from milvus_wire import milvus_pb2
from node.worker_preloads import PRELOAD, PRELOAD_HYBRID, RELEASE, CacheCall, parse, recorded
from tests.support import requests as rq
from tests.support.nodeproc import NodeProcess
from tests.support.scrape import scrape, value
from tests.support.waiting import poll_for
from tests.test_workers_rest import cached_ids

DIM = 8
ARGS = ["--workers", "2", "--metrics-port", "-1", "--auto-flush-interval", "0"]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    found = NodeProcess(tmp_path_factory.mktemp("preload"), ARGS).start()
    try:
        yield found
    finally:
        found.stop()


def collection_with_segments(node: NodeProcess, name: str, parts: int) -> None:
    stub = node.stub()
    rq.ok(rq.create(stub, name, DIM, rq.L2))
    rng = np.random.default_rng(len(name))
    for part in range(parts):  # one flush each: a segment each
        rq.insert_ok(stub, name, rng.random((40, DIM), dtype=np.float32), np.arange(part * 40, (part + 1) * 40))
        rq.ok(rq.flush(stub, name))


def worker_pid(node: NodeProcess, index: int) -> int:
    """The process id of worker ``index`` now (the ready file names the first ones): the parent's child whose
    worker spec has that index."""
    assert node.proc is not None
    children = Path(f"/proc/{node.proc.pid}/task/{node.proc.pid}/children").read_text().split()
    for pid in children:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        spec = args[args.index(b"--worker-spec") + 1] if b"--worker-spec" in args else b"{}"
        if json.loads(spec).get("index") == index:
            return int(pid)
    raise AssertionError(f"no worker {index} among {children}")


def restart_worker(node: NodeProcess, index: int) -> None:
    """SIGKILL worker ``index`` and wait until the parent restarted it and it serves again."""
    before = value(scrape(node.metrics_port), "mishards_worker_restarts_total", worker=str(index))
    os.kill(worker_pid(node, index), signal.SIGKILL)

    def back() -> bool:
        samples = scrape(node.metrics_port)
        return (value(samples, "mishards_worker_restarts_total", worker=str(index)) > before
                and value(samples, "mishards_worker_up", worker=str(index)) == 1)

    poll_for(back, 60, interval=0.2, what=f"worker {index} restarted")


def test_a_restarted_worker_holds_the_preloaded_collection_before_any_search(node: NodeProcess) -> None:
    kept, released, other = rq.unique_name("kept"), rq.unique_name("gone"), rq.unique_name("never")
    for name in (kept, released, other):
        collection_with_segments(node, name, 1)  # one segment each: nothing to merge meanwhile
    stub = node.stub()
    ids: dict[str, set[int]] = {}
    for name in (kept, released):
        before = cached_ids(node)
        rq.ok(stub.PreloadCollection(milvus_pb2.PreloadCollectionParam(collection_name=name)))
        loaded = cached_ids(node)
        ids[name] = (loaded[0] - before[0]) & (loaded[1] - before[1])  # new in both: both workers took it
        assert len(ids[name]) == 1, (name, before, loaded)
    rq.ok(stub.ReleaseCollection(milvus_pb2.PreloadCollectionParam(collection_name=released)))
    assert not ids[released] & (cached_ids(node)[0] | cached_ids(node)[1])
    for index in (1, 0):  # a secondary, then the primary
        restart_worker(node, index)
        cache = cached_ids(node)[index]  # asked before any search reached the restarted worker
        assert ids[kept] <= cache, (index, ids, cache)
        assert not ids[released] & cache, (index, ids, cache)
    # The restarted primary records again: a preload after its restart is replayed by the next restart.
    secondary = cached_ids(node)[1]
    rq.ok(stub.PreloadCollection(milvus_pb2.PreloadCollectionParam(collection_name=other)))
    ids[other] = cached_ids(node)[1] - secondary
    assert len(ids[other]) == 1
    restart_worker(node, 1)
    assert ids[kept] | ids[other] <= cached_ids(node)[1]


def test_the_record_is_compacted_as_calls_come() -> None:
    a, a_p1, b = CacheCall(PRELOAD, "a"), CacheCall(PRELOAD, "a", ("p1",)), CacheCall(PRELOAD_HYBRID, "b")
    calls = recorded(recorded(recorded((), a), b), a_p1)
    assert calls == (a, b, a_p1)
    assert recorded(calls, a) == (b, a_p1, a)  # a repeated preload moves to the end, once
    partial = CacheCall(RELEASE, "a", ("p1",))
    assert recorded(calls, partial) == (a, b, a_p1, partial)  # replayed after the preloads it narrows
    assert recorded((*calls, partial), CacheCall(RELEASE, "a")) == (b,)  # a whole release forgets the collection
    assert len(recorded(tuple(CacheCall(PRELOAD, str(i)) for i in range(1000)), a)) == 1000
    assert parse("not json") == () and parse('{"calls": [{"method": "DropCollection", "collection": "x"}]}') == ()
    assert parse('{"calls": [{"method": "PreloadCollection", "collection": "x", "partitions": ["p"]}]}') == (
        CacheCall(PRELOAD, "x", ("p",)),)
