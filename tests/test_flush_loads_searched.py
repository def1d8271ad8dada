"""A Flush on a node that searches the collection loads the segments it writes before it publishes them, so that
the first search after the Flush finds them in memory (real node process; the cache's content read with
``Cmd("mishards_stats")``); a collection nobody searched on the node is not loaded by its flushes. Search results
after the Flush are checked against an exact oracle."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from node.maintenance import searched_after_flush
from tests.support import requests as rq
from tests.support.nodeproc import NodeProcess

DIM = 16


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    proc = NodeProcess(tmp_path_factory.mktemp("flush_loads"), ["--auto-flush-interval", "0", "--metrics-port", "-1"])
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def misses(stub: Any) -> int:
    """Searches of this node that had to load a segment (``Cmd("mishards_stats")``)."""
    reply = rq.cmd(stub, "mishards_stats")
    assert reply.status.error_code == 0, reply
    return int(json.loads(reply.string_reply)["cache_misses"])


def test_a_flush_of_a_searched_collection_loads_its_new_segment_first(node: NodeProcess) -> None:
    stub = node.stub()
    name = rq.unique_name("fl")
    rng = np.random.default_rng(11)
    first, second = rng.random((300, DIM), dtype=np.float32), rng.random((200, DIM), dtype=np.float32)
    rq.ok(rq.create(stub, name, DIM, rq.L2))
    rq.insert_ok(stub, name, first, ids=range(300))
    rq.ok(rq.flush(stub, name))
    status, _, _ = rq.search(stub, name, first[:1], 5)  # the collection is searched here: its segment loaded
    rq.ok(status)

    rq.insert_ok(stub, name, second, ids=range(300, 500))
    rq.ok(rq.flush(stub, name))
    before = misses(stub)
    base = np.vstack([first, second])
    queries = rng.random((5, DIM), dtype=np.float32)
    status, ids, distances = rq.search(stub, name, queries, 10)
    rq.ok(status)
    rq.assert_search_exact(ids, distances, base, np.arange(500), queries, 10, rq.L2)
    # Every segment the search read was in memory already (a merge in between loads its result first too).
    assert misses(stub) == before


def test_a_flush_of_a_collection_nobody_searched_here_loads_nothing(node: NodeProcess) -> None:
    stub = node.stub()
    name = rq.unique_name("fl_cold")
    data = np.random.default_rng(12).random((100, DIM), dtype=np.float32)
    rq.ok(rq.create(stub, name, DIM, rq.L2))
    rq.insert_ok(stub, name, data, ids=range(100))
    rq.ok(rq.flush(stub, name))
    before = misses(stub)
    status, ids, _ = rq.search(stub, name, data[:1], 1)
    rq.ok(status)
    assert ids[0][0] == 0
    assert misses(stub) > before  # the first search loaded it: the flush did not


def test_which_segments_a_flush_loads() -> None:
    held = {1, 2, 7}.__contains__
    assert searched_after_flush([10, 11], [2, 3], [1, 2, 3], held) == [10, 11, 2]
    assert searched_after_flush([10], [3], [3, 4], held) == []  # nothing of the collection is held here
    assert searched_after_flush([], [7], [7], held) == [7]
    assert searched_after_flush([10], [], [], held) == []  # a first flush: nobody searched it yet
