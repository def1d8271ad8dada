"""HybridSearch through the proxy with two read nodes: fanned out as HybridSearchInSegments sub-requests, merged into
the exact answer (brute force over the rows that pass, are live and lie in the searched partitions) and into what a
single node answers; a reader killed mid-way changes nothing; queries the nodes would refuse are refused with their
status; what the proxy writes through is searched at once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from coordinator.errors import ErrorCode
from milvus_wire import milvus_pb2
from mishards import hybrid_client as hc
from tests.support.cluster import LocalCluster
from tests.support.hybrid_search import Filled, assert_exact, dsl, fill, hybrid_search, passing, query_vectors
from tests.support.requests import IP, JACCARD, L2, TIMEOUT, assert_status, assert_topk_matches, ok
from tests.support.scrape import scrape, value
from tests.support.waiting import poll_for

METRICS = ["--metrics-port", "-1"]
DIM = 8
BIN_DIM = 64
NQ = 7
K = 10
# Six segments over two partitions, so that both readers hold some of them.
BATCHES = [("", 400), ("p1", 300), ("", 350), ("p1", 250), ("", 300), ("p2", 200)]

FILTERS: dict[str, dict[str, Any]] = {
    "range": {"must": [{"range": {"i32": {"GTE": 100, "LT": 600}}}]},
    "term-and-not": {"must": [{"term": {"i8": [-2, 0, 4]}}], "must_not": [{"range": {"d": {"LT": -0.5}}}]},
    "nested-should": {"should": [{"range": {"f": {"GT": 50.0}}},
                                 {"must": [{"term": {"b": [1]}}, {"range": {"i16": {"LTE": -100}}}]}]},
    "nothing": {"must": [{"range": {"i32": {"LT": 0}}}]},
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    root = Path(tmp_path_factory.mktemp("hybrid_cluster"))
    with LocalCluster(root, readers=2, replication=2, node_args=METRICS, proxy_args=METRICS,
                      membership_on_nodes=False) as running:
        yield running


@pytest.fixture(scope="module")
def collections(cluster: LocalCluster) -> dict[int, Filled]:
    stub = cluster.stub()  # DDL and inserts through the proxy reach the writer
    filled = {
        L2: fill(stub, "phyb_l2", L2, DIM, BATCHES, delete=120, seed=31),
        IP: fill(stub, "phyb_ip", IP, DIM, BATCHES[:3], delete=60, seed=32),
        JACCARD: fill(stub, "phyb_jac", JACCARD, BIN_DIM, BATCHES[:4], delete=60, seed=33),
    }
    for reader in cluster.readers:
        for f in filled.values():
            live = int((~f.deleted).sum())
            poll_for(lambda r=reader, f=f, live=live: r.stub().CountHybridCollection(  # type: ignore[misc]
                milvus_pb2.CollectionName(collection_name=f.name), timeout=TIMEOUT).collection_row_count == live,
                30, what="readers to see the data")
    return filled


@pytest.mark.parametrize("metric", [L2, IP, JACCARD], ids=["L2", "IP", "JACCARD"])
@pytest.mark.parametrize("name", list(FILTERS))
def test_merged_answer_is_exact_and_equals_a_single_node(cluster: LocalCluster, collections: dict[int, Filled],
                                                         metric: int, name: str) -> None:
    filled = collections[metric]
    body = FILTERS[name]
    queries = query_vectors(filled, NQ, seed=41)
    mask = passing(filled, body)
    through_proxy = hybrid_search(cluster.stub(), filled, body, queries, K)
    assert_exact(filled, mask, queries, K, through_proxy)
    single = hybrid_search(cluster.readers[0].stub(), filled, body, queries, K)
    ok(single[0])
    if mask.any():
        assert_topk_matches(through_proxy[1], through_proxy[2], single[1], single[2])
    else:
        assert single[1].shape == (0, 0)


@pytest.mark.parametrize("tags", [["p1"], ["p.*"], ["_default", "p2"]])
def test_partitions_through_the_proxy(cluster: LocalCluster, collections: dict[int, Filled], tags: list[str]) -> None:
    filled = collections[L2]
    queries = query_vectors(filled, NQ, seed=43)
    for topk in (1, 100):
        body = FILTERS["term-and-not"]
        assert_exact(filled, passing(filled, body, tags), queries, topk,
                     hybrid_search(cluster.stub(), filled, body, queries, topk, tags=tags))


def test_the_dsl_text_fans_out_too(cluster: LocalCluster, collections: dict[int, Filled]) -> None:
    filled = collections[JACCARD]
    queries = query_vectors(filled, NQ, seed=45)
    body = FILTERS["nested-should"]
    assert_exact(filled, passing(filled, body), queries, K,
                 hybrid_search(cluster.stub(), filled, body, queries, K, as_dsl=True))


def test_sub_requests_go_to_both_readers(cluster: LocalCluster, collections: dict[int, Filled]) -> None:
    filled = collections[L2]
    queries = query_vectors(filled, 1, seed=47)
    before = scrape(cluster.proxy.metrics_port)
    for _ in range(20):
        ok(hybrid_search(cluster.stub(), filled, FILTERS["range"], queries, K)[0])
    after = scrape(cluster.proxy.metrics_port)
    metric = "mishards_proxy_subrequest_seconds_count"
    sent = sum(value(after, metric, method="HybridSearchInSegments", node=n.address)
               - value(before, metric, method="HybridSearchInSegments", node=n.address) for n in cluster.readers)
    assert sent >= 20
    assert value(after, metric, method="SearchInFiles") == value(before, metric, method="SearchInFiles")


def test_refusals_carry_the_nodes_statuses(cluster: LocalCluster, collections: dict[int, Filled]) -> None:
    filled = collections[L2]
    stub = cluster.stub()
    queries = query_vectors(filled, 2)
    unknown_field = milvus_pb2.HSearchParam(collection_name=filled.name, general_query=milvus_pb2.GeneralQuery(
        term_query=milvus_pb2.TermQuery(field_name="nope", values=b"")))
    direct = cluster.readers[0].stub().HybridSearch(unknown_field, timeout=TIMEOUT)
    through = stub.HybridSearch(unknown_field, timeout=TIMEOUT)
    assert direct.status.error_code == ErrorCode.ILLEGAL_ARGUMENT
    assert (through.status.error_code, through.status.reason) == (direct.status.error_code, direct.status.reason)
    zero = hc.search_param(filled.schema, dsl({}, queries, 1))
    zero.general_query.boolean_query.general_query[-1].vector_query.topk = 0
    assert_status(stub.HybridSearch(zero, timeout=TIMEOUT), ErrorCode.ILLEGAL_TOPK)
    missing = hc.search_param(filled.schema, dsl({}, queries, 1))
    missing.collection_name = "phyb_missing"
    assert stub.HybridSearch(missing, timeout=TIMEOUT).status.error_code == ErrorCode.COLLECTION_NOT_EXISTS
    bad_tag = hc.search_param(filled.schema, dsl({}, queries, 1), ["no_such"])
    assert_status(stub.HybridSearch(bad_tag, timeout=TIMEOUT), ErrorCode.UNEXPECTED_ERROR,
                  "The specified partition does not exist")


def test_rows_written_through_the_proxy_are_searched_at_once(cluster: LocalCluster) -> None:
    stub = cluster.stub()
    filled = fill(stub, "phyb_fresh", L2, DIM, [("", 50)], seed=51)
    queries = query_vectors(filled, NQ, seed=52)
    body = FILTERS["range"]
    assert_exact(filled, passing(filled, body), queries, K, hybrid_search(stub, filled, body, queries, K))


def test_preload_through_the_proxy_warms_every_reader(cluster: LocalCluster) -> None:
    """One segment: with two, the writer's background merge could replace them right after the preload, and a
    reader drops merged-away segments from its cache at its next catalog poll (the merged one loads on demand)."""
    stub = cluster.stub()

    def cached(reader: Any) -> set[int]:
        reply = reader.stub().Cmd(milvus_pb2.Command(cmd="mishards_stats"), timeout=TIMEOUT)
        return set(json.loads(reply.string_reply)["cache_segment_ids"])

    filled = fill(stub, "phyb_preload", L2, DIM, [("", 200)], seed=53)
    before = [cached(r) for r in cluster.readers]
    ok(stub.PreloadHybridCollection(milvus_pb2.CollectionName(collection_name=filled.name), timeout=TIMEOUT))
    loaded = [cached(r) - b for r, b in zip(cluster.readers, before, strict=True)]
    assert [len(n) for n in loaded] == [1, 1] and loaded[0] == loaded[1], (before, loaded)  # replication 2


def test_a_killed_reader_changes_no_answer(cluster: LocalCluster, collections: dict[int, Filled]) -> None:
    """Last in this module: it kills a reader. Every segment has a replica on the other one."""
    filled = collections[L2]
    queries = query_vectors(filled, NQ, seed=49)
    body = FILTERS["range"]
    mask = passing(filled, body)
    cluster.readers[0].kill()
    for _ in range(5):
        assert_exact(filled, mask, queries, K, hybrid_search(cluster.stub(), filled, body, queries, K))
