"""No search can take a node down: Milvus 1.1.1's result-size rule, the node's search memory budget and its
queue of heavy searches, against real node processes and a real proxy cluster.

Memory is checked from the outside: ``VmHWM`` (the peak resident set) of the node process, read from
``/proc/<pid>/status`` before and after. Before the result-size rule, the nq 12000 x topk 16384 search
below made a node grow by many GiB (about 14 GB in a cluster run, until the kernel killed it).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from milvus_wire import milvus_pb2
from tests.support.nodeproc import NodeProcess
from tests.support.requests import (
    L2,
    TimedStub,
    assert_search_exact,
    assert_status,
    create,
    flush,
    insert_ok,
    ok,
    search,
    search_param,
)

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
    assert_status(stub.Search(search_param("big", queries, HUGE_TOPK + 1)), ILLEGAL_TOPK,
                  f"Invalid topk: {HUGE_TOPK + 1}. The topk must be within the range of 1 ~ {HUGE_TOPK}.")
    assert_status(stub.Search(search_param("", queries, HUGE_TOPK)), 9, "Collection name should not be empty.")


def test_a_wide_search_across_segments_is_exact(big: Big) -> None:
    """topk 16384 over two segments of 10,000 rows: folded segment by segment, the same as one merge."""
    _, stub, x, ids = big
    queries = x[[0, 12_345, 19_999]]
    status, got_ids, got_dist = search(stub, "big", queries, HUGE_TOPK)
    assert status.error_code == 0, status.reason
    assert_search_exact(got_ids, got_dist, x, ids, queries, HUGE_TOPK, L2)
