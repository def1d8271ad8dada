"""CreateIndex and DescribeIndex as Milvus 1.1, on a node and through the proxy (1 writer, automatic flushing off,
+ 1 read node):

- CreateIndex flushes every buffered row first, for every index type (FLAT too, binary FLAT into a partition):
  rows inserted just before it are counted and searchable when it returns;
- DescribeIndex answers the params exactly as CreateIndex got them (every key, FLAT's too), as compact JSON with
  sorted keys (Milvus 1.1 stores the client's JSON object and answers its compact dump); DropIndex answers
  FLAT ``{}``; the proxy answers the same from its catalog while the writer is down.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from milvus_wire import milvus_pb2
from tests.support.cluster import LocalCluster
from tests.support.requests import (
    HAMMING,
    JACCARD,
    L2,
    TimedStub,
    assert_search_exact,
    count,
    create,
    extra_params,
    insert_ok,
    ok,
    search,
    unique_name,
)
from tests.support.waiting import poll_for

DIM = 16
BIN_DIM = 64
ROWS = 2000  # under 4,096: searched exactly once flushed, whatever the index

FLAT, IVF_FLAT, IVF_SQ8, RNSG, IVF_PQ, HNSW, ANNOY = 1, 2, 3, 4, 6, 11, 12
BUILD = {
    FLAT: {"nlist": 1024},
    IVF_FLAT: {"nlist": 128},
    IVF_SQ8: {"nlist": 64},
    IVF_PQ: {"nlist": 64, "m": 4},
    HNSW: {"M": 16, "efConstruction": 64},
    RNSG: {"search_length": 45, "out_degree": 50, "candidate_pool_size": 300, "knng": 100},
    ANNOY: {"n_trees": 8},
}
SEARCH = {FLAT: {}, IVF_FLAT: {"nprobe": 8}, IVF_SQ8: {"nprobe": 8}, IVF_PQ: {"nprobe": 8}, HNSW: {"ef": 64},
          RNSG: {"search_length": 50}, ANNOY: {"search_k": -1}}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with LocalCluster(tmp_path_factory.mktemp("index"), readers=1) as c:  # the writer: --auto-flush-interval 0
        yield c


def create_index(stub: Any, name: str, kind: int, params: dict[str, Any] | str) -> Any:
    request = milvus_pb2.IndexParam(collection_name=name, index_type=kind, extra_params=extra_params(params))
    return stub.CreateIndex(request, timeout=120)


def describe_index(stub: Any, name: str) -> Any:
    return ok(stub.DescribeIndex(milvus_pb2.CollectionName(collection_name=name), timeout=30))


def _indexed(stub: Any, name: str, kind: int, params: str | None = None) -> Any:
    """The DescribeIndex reply once it names ``kind`` (and ``params`` when given; None before)."""
    reply = stub.DescribeIndex(milvus_pb2.CollectionName(collection_name=name), timeout=30)
    if reply.status.error_code != 0 or reply.index_type != kind:
        return None
    if params is not None and [(p.key, p.value) for p in reply.extra_params] != [("params", params)]:
        return None
    return reply


def as_milvus_writes(params: dict[str, Any]) -> str:
    """The compact dump of a JSON object as Milvus 1.1's JSON library writes it: keys sorted, no spaces."""
    return json.dumps(params, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


# -- CreateIndex flushes first ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [FLAT, IVF_FLAT, IVF_SQ8, IVF_PQ, HNSW, RNSG, ANNOY])
def test_create_index_counts_and_searches_the_rows_inserted_just_before(cluster: LocalCluster, kind: int) -> None:
    proxy, writer = TimedStub(cluster.stub()), TimedStub(cluster.writer.stub())
    name, other = unique_name("flushed"), unique_name("bystander")
    ok(create(proxy, name, DIM, L2))
    ok(create(proxy, other, DIM, L2))
    rng = np.random.default_rng(kind)
    base = rng.standard_normal((ROWS, DIM)).astype(np.float32)
    ids = insert_ok(proxy, name, base)
    insert_ok(proxy, other, base[:10])
    assert count(writer, name) == 0 and count(writer, other) == 0  # automatic flushing is off: all buffered
    ok(create_index(proxy, name, kind, BUILD[kind]))
    for stub in (writer, proxy):
        assert count(stub, name) == ROWS
        assert count(stub, other) == 10  # Milvus 1.1 flushes every collection's buffered rows
    queries = base[[0, 777, ROWS - 1]]
    st, got, dist = search(proxy, name, queries, 5, params=SEARCH[kind])
    ok(st)
    assert_search_exact(got, dist, base, ids, queries, 5, L2)


@pytest.mark.parametrize(("metric", "kind"), [(JACCARD, FLAT), (HAMMING, FLAT), (HAMMING, IVF_FLAT)])
def test_create_index_on_a_binary_collection_counts_the_rows_buffered_in_a_partition(
        cluster: LocalCluster, metric: int, kind: int) -> None:
    proxy, writer = TimedStub(cluster.stub()), TimedStub(cluster.writer.stub())
    name = unique_name("bin_flushed")
    ok(create(proxy, name, BIN_DIM, metric))
    ok(proxy.CreatePartition(milvus_pb2.PartitionParam(collection_name=name, tag="p1")))
    base = np.random.default_rng(metric).integers(0, 256, (ROWS, BIN_DIM // 8), dtype=np.uint8)
    ids = insert_ok(proxy, name, base, tag="p1")
    assert count(writer, name) == 0
    ok(create_index(proxy, name, kind, {"nlist": 16}))
    assert count(writer, name) == ROWS and count(proxy, name) == ROWS
    queries = base[[1, 2]]
    st, got, dist = search(proxy, name, queries, 3, tags=["p1"], params={"nprobe": 16})
    ok(st)
    assert_search_exact(got, dist, base, ids, queries, 3, metric)


def test_create_index_with_bad_params_flushes_nothing(cluster: LocalCluster) -> None:
    """Validation comes first: a refused CreateIndex leaves the buffered rows buffered."""
    proxy, writer = TimedStub(cluster.stub()), TimedStub(cluster.writer.stub())
    name = unique_name("refused")
    ok(create(proxy, name, DIM, L2))
    insert_ok(proxy, name, np.ones((5, DIM), np.float32))
    reply = create_index(proxy, name, IVF_FLAT, {"nlist": 0})
    assert (reply.error_code, reply.reason) == (5, "Invalid nlist value: 0. Valid range is [1, 65536]")
    assert count(writer, name) == 0


# -- DescribeIndex ----------------------------------------------------------------------------------------------

GIVEN = [
    (FLAT, {"nlist": 1024}),
    (FLAT, {}),
    (IVF_FLAT, {"nlist": 1024, "comment": "kept", "nested": {"b": 1, "a": [2, 3]}}),
    (IVF_SQ8, {"nlist": 16384}),
    (IVF_PQ, {"nlist": 2048, "m": 8, "nbits": 8}),
    (HNSW, {"efConstruction": 500, "M": 16}),
    (RNSG, {"search_length": 45, "out_degree": 50, "candidate_pool_size": 300, "knng": 100}),
    (ANNOY, {"n_trees": 8, "note": "déjà vu"}),
]


@pytest.mark.parametrize(("kind", "given"), GIVEN)
def test_describe_index_answers_the_params_as_given(cluster: LocalCluster, kind: int, given: dict[str, Any]) -> None:
    proxy = TimedStub(cluster.stub())
    name = unique_name("described")
    ok(create(proxy, name, DIM, L2))
    ok(create_index(proxy, name, kind, json.dumps(given, indent=2)))  # sent with spaces and newlines
    expected = as_milvus_writes(given)
    reader = TimedStub(cluster.readers[0].stub())
    for where, stub in (("writer", TimedStub(cluster.writer.stub())), ("proxy", proxy), ("reader", reader)):
        # A read node asked directly (no revision header) answers once it has polled the catalog: wait for the
        # params too (a FLAT index is the type of a new collection already). Never seeing them fails the poll.
        reply = poll_for(partial(_indexed, stub, name, kind, expected), 30,
                         what=f"the {where} to answer the params as given")
        assert [(p.key, p.value) for p in reply.extra_params] == [("params", expected)], where
        assert reply.collection_name == name
    ok(proxy.DropIndex(milvus_pb2.CollectionName(collection_name=name)))
    reply = describe_index(proxy, name)
    assert (reply.index_type, [(p.key, p.value) for p in reply.extra_params]) == (FLAT, [("params", "{}")])


def test_describe_index_of_a_binary_flat_collection(cluster: LocalCluster) -> None:
    proxy = TimedStub(cluster.stub())
    name = unique_name("bin_described")
    ok(create(proxy, name, BIN_DIM, JACCARD))
    assert describe_index(proxy, name).extra_params[0].value == "{}"  # a new collection: FLAT, no params
    ok(create_index(proxy, name, FLAT, {"nlist": 4}))
    reply = describe_index(proxy, name)
    assert (reply.index_type, reply.extra_params[0].value) == (FLAT, '{"nlist":4}')


def test_the_same_params_again_change_nothing_and_other_params_rebuild(cluster: LocalCluster) -> None:
    """The stored text is what CreateIndex compares: the same params (any spacing) keep the built segments."""
    proxy = TimedStub(cluster.stub())
    name = unique_name("rebuilt")
    ok(create(proxy, name, DIM, L2))
    insert_ok(proxy, name, np.random.default_rng(5).standard_normal((4100, DIM)).astype(np.float32))
    ok(create_index(proxy, name, IVF_FLAT, {"nlist": 16}))
    names = {s["index_name"] for p in _info(proxy, name)["partitions"] for s in p["segments"] or []}
    assert names == {"IVFFLAT"}
    ok(create_index(proxy, name, IVF_FLAT, '{ "nlist" : 16 }'))
    assert describe_index(proxy, name).extra_params[0].value == '{"nlist":16}'
    ok(create_index(proxy, name, IVF_FLAT, {"nlist": 16, "extra": 1}))
    assert describe_index(proxy, name).extra_params[0].value == '{"extra":1,"nlist":16}'


def _info(stub: Any, name: str) -> dict[str, Any]:
    reply = ok(stub.ShowCollectionInfo(milvus_pb2.CollectionName(collection_name=name)))
    return dict(json.loads(reply.json_info))


def test_the_proxy_answers_describe_index_from_its_catalog_while_the_writer_is_down(tmp_path: Path) -> None:
    with LocalCluster(tmp_path, readers=1) as c:
        proxy = TimedStub(c.stub())
        ok(create(proxy, "c", DIM, L2))
        given = {"M": 8, "efConstruction": 40, "extra": [1, "two"]}
        ok(create_index(proxy, "c", HNSW, given))
        before = describe_index(proxy, "c")
        c.writer.stop()
        during = describe_index(proxy, "c")
        assert during == before
        assert (during.index_type, during.extra_params[0].value) == (HNSW, as_milvus_writes(given))
