"""Milvus 1.1.1's search limits on a node and through the proxy (1 writer + 2 read nodes): topk up to 1,048,576
on CPU, and the result-size guard (nq x topk x 12 bytes under 2 GiB) checked before any search, for Search,
SearchByID and SearchInFiles."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from coordinator.catalog import Catalog
from milvus_wire import milvus_pb2
from tests.support.cluster import LocalCluster
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
    search_by_id,
    search_in_files,
    search_param,
    unique_name,
)
from tests.support.waiting import poll_for

DIM = 8
ROWS = 300
MAX_TOPK = 1_048_576
ILLEGAL_TOPK = 10
HUGE_NQ, HUGE_TOPK = 12_000, 16_384  # 12000 x 16384 x 12 bytes = 2.36 GB >= 2 GiB
HUGE_REASON = (f"Invalid nq {HUGE_NQ} topk {HUGE_TOPK}. "
               "The search result size may exceed the RPC transmission limit.")
REFUSED_WITHIN = 5.0  # seconds: a generous bound that still proves nothing was searched


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with LocalCluster(tmp_path_factory.mktemp("limits"), readers=2, replication=1) as c:
        yield c


@pytest.fixture(scope="module")
def flat(cluster: LocalCluster) -> dict[str, Any]:
    """A FLAT L2 collection of ROWS rows in one segment, and that segment's file id."""
    s = cluster.stub()
    name = unique_name("limits")
    ok(create(s, name, DIM, L2))
    base = np.random.default_rng(3).standard_normal((ROWS, DIM)).astype(np.float32)
    ids = insert_ok(s, name, base)
    ok(flush(s, name))
    catalog = Catalog(cluster.meta_uri)
    try:
        snap = catalog.snapshot()
        files = [seg.id for seg in snap.segments_of(snap.collections[name].id)]
    finally:
        catalog.close()
    for reader in cluster.readers:  # asked directly (no revision header), a read node sees it once it polled
        stub = reader.stub()
        poll_for(lambda: _rows(stub, name) == ROWS, 30, what="the read nodes to see the rows")  # noqa: B023
    return {"name": name, "base": base, "ids": ids, "files": files}


def _rows(stub: Any, name: str) -> int:
    reply = stub.CountCollection(milvus_pb2.CollectionName(collection_name=name), timeout=30)
    return int(reply.collection_row_count) if reply.status.error_code == 0 else -1


def _stubs(cluster: LocalCluster) -> dict[str, Any]:
    """The writer node, one read node and the proxy, each answering on its own."""
    return {"writer": TimedStub(cluster.writer.stub()), "reader": TimedStub(cluster.readers[0].stub()),
            "proxy": TimedStub(cluster.stub())}


def test_topk_of_1_048_576_is_accepted_and_as_wide_as_the_rows(cluster: LocalCluster, flat: dict[str, Any]) -> None:
    queries = np.random.default_rng(4).standard_normal((3, DIM)).astype(np.float32)
    for where, stub in _stubs(cluster).items():
        st, got, dist = search(stub, flat["name"], queries, MAX_TOPK)
        ok(st)
        assert got.shape == (3, ROWS), where
        assert_search_exact(got, dist, flat["base"], flat["ids"], queries, MAX_TOPK, L2)
        st, by_id, _ = search_by_id(stub, flat["name"], flat["ids"][:2], MAX_TOPK)
        ok(st)
        assert by_id.shape == (2, ROWS) and (by_id[:, 0] == flat["ids"][:2]).all(), where
        st, in_files, files_dist = search_in_files(stub, flat["name"], flat["files"], queries, MAX_TOPK)
        ok(st)
        assert_search_exact(in_files, files_dist, flat["base"], flat["ids"], queries, MAX_TOPK, L2)


@pytest.mark.parametrize("topk", [0, MAX_TOPK + 1])
def test_topk_outside_1_to_1_048_576_is_refused_everywhere(cluster: LocalCluster, flat: dict[str, Any],
                                                            topk: int) -> None:
    reason = f"Invalid topk: {topk}. The topk must be within the range of 1 ~ 1048576."
    queries = np.zeros((1, DIM), np.float32)
    for stub in _stubs(cluster).values():
        assert_status(search(stub, flat["name"], queries, topk)[0], ILLEGAL_TOPK, reason)
        assert_status(search_by_id(stub, flat["name"], flat["ids"][:1], topk)[0], ILLEGAL_TOPK, reason)
        assert_status(search_in_files(stub, flat["name"], flat["files"], queries, topk)[0], ILLEGAL_TOPK, reason)


def test_a_result_over_2_gib_is_refused_at_once_everywhere(cluster: LocalCluster, flat: dict[str, Any]) -> None:
    """nq 12000 x topk 16384 (2.36 GB of results): ILLEGAL_TOPK with 1.1.1's words, before anything is searched
    (a search this wide over these rows would take far longer than the bound)."""
    queries = np.zeros((HUGE_NQ, DIM), np.float32)
    search_request = search_param(flat["name"], queries, HUGE_TOPK)
    by_id = milvus_pb2.SearchByIDParam(collection_name=flat["name"], id_array=list(range(HUGE_NQ)), topk=HUGE_TOPK)
    in_files = milvus_pb2.SearchInFilesParam(file_id_array=[str(f) for f in flat["files"]],
                                             search_param=search_request)
    at_max = search_param(flat["name"], queries[:2048], MAX_TOPK)  # 2048 x 1048576 x 12 bytes = 24 GiB
    for where, stub in _stubs(cluster).items():
        for rpc, request, reason in (("Search", search_request, HUGE_REASON), ("SearchByID", by_id, HUGE_REASON),
                                     ("SearchInFiles", in_files, HUGE_REASON),
                                     ("Search", at_max, f"Invalid nq 2048 topk {MAX_TOPK}. The search result size "
                                                        "may exceed the RPC transmission limit.")):
            started = time.monotonic()
            reply = getattr(stub, rpc)(request)
            elapsed = time.monotonic() - started
            assert_status(reply, ILLEGAL_TOPK, reason)
            assert reply.row_num == 0 and len(reply.ids) == 0
            assert elapsed < REFUSED_WITHIN, f"{rpc} on the {where} took {elapsed:.1f} s to be refused"
