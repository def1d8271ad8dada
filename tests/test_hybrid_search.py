"""HybridSearch and HybridSearchInSegments on a node: filtered FLAT search equals brute force over the rows that pass
(every operator and occur, nested trees, nq > 1, several widths, partitions, deletes, binary metrics, the DSL and
GeneralQuery forms), indexed segments return only passing rows with the recall of the unit tests, and bad input gets
its Milvus status."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from coordinator.catalog import Catalog
from coordinator.errors import ErrorCode
from coordinator.model import IndexType
from milvus_wire import milvus_pb2
from mishards import hybrid_client as hc
from node.filter_plan import SegmentShape, Strategy, plan
from node.params import SearchParams
from tests.support.hybrid_search import (
    Filled,
    assert_exact,
    dsl,
    fill,
    flush,
    hybrid_search,
    passing,
    precision_and_recall,
    query_vectors,
)
from tests.support.nodeproc import NodeProcess
from tests.support.requests import IP, JACCARD, L2, TIMEOUT, assert_status, create, decode_topk, ok, search

COLLECTION_NOT_EXISTS = int(ErrorCode.COLLECTION_NOT_EXISTS)
ILLEGAL_ARGUMENT = int(ErrorCode.ILLEGAL_ARGUMENT)
ILLEGAL_TOPK = int(ErrorCode.ILLEGAL_TOPK)
UNEXPECTED_ERROR = int(ErrorCode.UNEXPECTED_ERROR)
DIM = 8
BIN_DIM = 64
NQ = 7
K = 10
BATCHES = [("", 700), ("p1", 500), ("", 600)]


@pytest.fixture(scope="module")
def meta_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('meta') / 'meta.sqlite'}"


@pytest.fixture(scope="module")
def hnode(tmp_path_factory: pytest.TempPathFactory, meta_uri: str) -> Iterator[NodeProcess]:
    with NodeProcess(Path(tmp_path_factory.mktemp("hnode")), ["--auto-flush-interval", "1"],
                     meta_uri=meta_uri) as proc:
        yield proc


@pytest.fixture(scope="module")
def api(hnode: NodeProcess) -> Any:
    return hnode.stub()


@pytest.fixture(scope="module")
def collections(api: Any) -> dict[int, Filled]:
    return {
        L2: fill(api, "hyb_l2", L2, DIM, BATCHES, delete=150, seed=1),
        IP: fill(api, "hyb_ip", IP, DIM, BATCHES, delete=150, seed=2),
        JACCARD: fill(api, "hyb_jac", JACCARD, BIN_DIM, BATCHES, delete=150, seed=3),
    }


# Filters (bool bodies of the DSL) covering every operator and occur, nested groups, empty results.
FILTERS: dict[str, dict[str, Any]] = {
    "lt": {"must": [{"range": {"i32": {"LT": 300}}}]},
    "lte": {"must": [{"range": {"i16": {"LTE": -150}}}]},
    "eq": {"must": [{"range": {"i8": {"EQ": 2}}}]},
    "gt": {"must": [{"range": {"d": {"GT": 0.9}}}]},
    "gte": {"must": [{"range": {"f": {"GTE": 95.5}}}]},
    "ne": {"must": [{"range": {"i8": {"NE": 0}}}]},
    "between": {"must": [{"range": {"i64": {"GTE": 1000, "LT": 200_000}}}]},
    "term": {"must": [{"term": {"i16": [1, 2, 3, 5, 8, 13, 21, 34, 55, 89]}}]},
    "float-term": {"must": [{"term": {"f": [0.1, -2.5, 12.3]}}]},
    "bool": {"must": [{"term": {"b": [1]}}]},
    "should": {"should": [{"range": {"i32": {"LT": 20}}}, {"term": {"i8": [-5]}}]},
    "must-not": {"must_not": [{"range": {"i32": {"GTE": 50}}}]},
    "nested": {"must": [{"range": {"d": {"GT": -0.5}}},
                        {"should": [{"term": {"i8": [1, 3]}},
                                    {"must": [{"range": {"i16": {"LT": 0}}}],
                                     "must_not": [{"term": {"b": [0]}}]}]}],
               "must_not": [{"range": {"i32": {"LT": 100}}}, {"should": [{"term": {"i8": [5]}}]}]},
    "nothing": {"must": [{"term": {"i8": [100]}}]},
    "everything": {},
}


@pytest.mark.parametrize("metric", [L2, IP, JACCARD], ids=["L2", "IP", "JACCARD"])
@pytest.mark.parametrize("name", list(FILTERS))
def test_filtered_flat_equals_brute_force(api: Any, collections: dict[int, Filled], metric: int, name: str) -> None:
    filled = collections[metric]
    body = FILTERS[name]
    queries = query_vectors(filled, NQ)
    mask = passing(filled, body)
    assert name in ("nothing", "everything") or 0 < mask.sum() < (~filled.deleted).sum()
    assert_exact(filled, mask, queries, K, hybrid_search(api, filled, body, queries, K))


@pytest.mark.parametrize("topk", [1, 100])
def test_widths_one_query_and_tiny_passing_sets(api: Any, collections: dict[int, Filled], topk: int) -> None:
    filled = collections[L2]
    queries = query_vectors(filled, 1, seed=5)
    for body in (FILTERS["between"], FILTERS["should"]):
        assert_exact(filled, passing(filled, body), queries, topk, hybrid_search(api, filled, body, queries, topk))
    # exactly topk - 1 rows pass (ids chosen by their i64 values): all of them, the rest of the row padded
    live = np.flatnonzero(~filled.deleted)[: max(0, topk - 1)]
    body = {"must": [{"term": {"i64": [int(v) for v in filled.columns["i64"][live]]}}]}
    mask = passing(filled, body)
    assert mask.sum() >= topk - 1
    status, ids, dist = hybrid_search(api, filled, body, queries, topk)
    assert_exact(filled, mask, queries, topk, (status, ids, dist))


@pytest.mark.parametrize("tags", [["p1"], ["_default"], ["p.*", "_default"]])
def test_partitions_combine_with_filters_and_deletes(api: Any, collections: dict[int, Filled],
                                                     tags: list[str]) -> None:
    filled = collections[L2]
    queries = query_vectors(filled, NQ, seed=7)
    body = FILTERS["nested"]
    mask = passing(filled, body, tags)
    assert mask.any()
    assert_exact(filled, mask, queries, K, hybrid_search(api, filled, body, queries, K, tags=tags))


def test_dsl_text_and_general_query_give_the_same_answer(api: Any, collections: dict[int, Filled]) -> None:
    filled = collections[JACCARD]
    queries = query_vectors(filled, NQ, seed=9)
    body = FILTERS["nested"]
    tree = hybrid_search(api, filled, body, queries, K)
    text = hybrid_search(api, filled, body, queries, K, as_dsl=True)
    assert np.array_equal(tree[1], text[1]) and np.array_equal(tree[2], text[2])
    assert_exact(filled, passing(filled, body), queries, K, text)


def test_search_time_metric_and_exact_flag(api: Any, collections: dict[int, Filled]) -> None:
    filled = collections[L2]
    queries = query_vectors(filled, NQ, seed=11)
    body = FILTERS["lt"]
    mask = passing(filled, body)
    assert_exact(filled, mask, queries, K, hybrid_search(api, filled, body, queries, K, params={"metric_type": 2}),
                 metric=IP)
    assert_exact(filled, mask, queries, K, hybrid_search(api, filled, body, queries, K, params={"exact": True}))


def test_no_filter_is_a_plain_search(api: Any, collections: dict[int, Filled]) -> None:
    filled = collections[IP]
    queries = query_vectors(filled, NQ, seed=13)
    status, ids, dist = hybrid_search(api, filled, {}, queries, K)
    plain = search(api, filled.name, queries, K)
    ok(status)
    ok(plain[0])
    assert np.array_equal(ids, plain[1]) and np.array_equal(dist, plain[2])


def test_a_repeated_filter_follows_deletes(api: Any) -> None:
    """The node keeps the masks of recent filters: after deletes the same filter excludes the deleted rows."""
    filled = fill(api, "hyb_masks", L2, DIM, [("", 400), ("", 400)], seed=17)
    queries = query_vectors(filled, NQ, seed=18)
    body = FILTERS["between"]
    first = hybrid_search(api, filled, body, queries, K)
    assert_exact(filled, passing(filled, body), queries, K, first)
    gone = np.unique(first[1][first[1] >= 0])[:12]
    ok(api.DeleteByID(milvus_pb2.DeleteByIDParam(collection_name=filled.name, id_array=gone.tolist()),
                      timeout=TIMEOUT))
    flush(api, filled.name)
    filled.deleted |= np.isin(filled.ids, gone)
    again = hybrid_search(api, filled, body, queries, K)
    assert not np.isin(again[1], gone).any()
    assert_exact(filled, passing(filled, body), queries, K, again)


def _segment_ids(meta_uri: str, name: str) -> list[int]:
    catalog = Catalog(meta_uri)
    try:
        snap = catalog.snapshot()
        coll = snap.collection(name)
        assert coll is not None
        return sorted(s.id for s in snap.segments_of(coll.id) if s.row_count)
    finally:
        catalog.close()


def test_hybrid_search_in_segments_searches_the_listed_segments(api: Any, collections: dict[int, Filled],
                                                                 meta_uri: str) -> None:
    filled = collections[L2]
    queries = query_vectors(filled, NQ, seed=15)
    body = FILTERS["ne"]
    segs = _segment_ids(meta_uri, filled.name)
    assert len(segs) >= 2
    everything = milvus_pb2.HSearchInSegmentsParam(
        segment_id_array=[str(s) for s in segs], search_param=hc.search_param(filled.schema, dsl(body, queries, K)))
    assert_exact(filled, passing(filled, body), queries, K, decode_topk(api.HybridSearchInSegments(everything)))
    # the result over one segment is part of the whole: its best rows pass and are at most as good
    one = milvus_pb2.HSearchInSegmentsParam(segment_id_array=[str(segs[0])],
                                            search_param=hc.search_param(filled.schema, dsl(body, queries, K)))
    status, ids, _ = decode_topk(api.HybridSearchInSegments(one))
    ok(status)
    allowed = set(filled.ids[passing(filled, body)].tolist())
    assert set(ids[ids >= 0].tolist()) <= allowed and 0 < ids.shape[1] <= K
    bad = milvus_pb2.HSearchInSegmentsParam(segment_id_array=["999999"], search_param=everything.search_param)
    assert_status(api.HybridSearchInSegments(bad), UNEXPECTED_ERROR, "Invalid file id")
    empty = milvus_pb2.HSearchInSegmentsParam(search_param=everything.search_param)
    assert_status(api.HybridSearchInSegments(empty), UNEXPECTED_ERROR, "Invalid file id")


def test_bad_input_gets_milvus_statuses(api: Any, collections: dict[int, Filled]) -> None:
    filled = collections[L2]
    queries = query_vectors(filled, 2)

    def request(body: dict[str, Any], topk: int = K, params: dict[str, Any] | None = None,
                name: str | None = None, tags: tuple[str, ...] = ()) -> Any:
        param = hc.search_param(filled.schema, dsl(body, queries, 1), tags)
        vector_query = param.general_query.boolean_query.general_query[-1].vector_query
        vector_query.topk = topk
        if params is not None:
            del vector_query.extra_params[:]
            vector_query.extra_params.add(key="params", value=json.dumps(params))
        if name is not None:
            param.collection_name = name
        return api.HybridSearch(param, timeout=TIMEOUT)

    assert_status(request({}, name="no_such"), COLLECTION_NOT_EXISTS)
    ok(create(api, "hyb_plain", DIM, L2))
    assert_status(request({}, name="hyb_plain"), COLLECTION_NOT_EXISTS, None)
    assert_status(request({}, topk=0), ILLEGAL_TOPK)
    assert_status(request({}, topk=1024 * 1024 + 1), ILLEGAL_TOPK)
    assert_status(request({}, params={"exact": "yes"}), ILLEGAL_ARGUMENT)
    assert_status(request({}, tags=("no_such_tag",)), UNEXPECTED_ERROR, "The specified partition does not exist")
    unknown = milvus_pb2.HSearchParam(collection_name=filled.name, general_query=milvus_pb2.GeneralQuery(
        term_query=milvus_pb2.TermQuery(field_name="nope", values=b"")))
    assert_status(api.HybridSearch(unknown, timeout=TIMEOUT), ILLEGAL_ARGUMENT)
    assert_status(api.HybridSearch(milvus_pb2.HSearchParam(collection_name=filled.name), timeout=TIMEOUT),
                  ILLEGAL_ARGUMENT)
    too_big = hc.search_param(filled.schema, dsl({}, np.repeat(queries, 1100, axis=0), 1))
    too_big.general_query.boolean_query.general_query[-1].vector_query.topk = 1024 * 1024
    reply = api.HybridSearch(too_big, timeout=TIMEOUT)
    assert reply.status.error_code != 0 and "result" in reply.status.reason.lower(), reply.status


def test_indexed_segments_return_passing_rows_with_recall(api: Any) -> None:
    """One segment of 4,200 rows of dimension 1,024 (so that half of it is beyond the exact search's distance budget
    and goes through the index), indexed IVF_FLAT, HNSW, then ANNOY: at 50 %, 10 %, 1 % and 0.1 % selectivity every
    returned id passes, rows are min(k, passing) wide, and recall is at least 0.95 (IVF_FLAT, HNSW)."""
    rows, dim = 4200, 1024
    filled = fill(api, "hyb_indexed", L2, dim, [("", rows)], seed=21, clusters=30)
    queries = query_vectors(filled, 10, seed=22, near_rows=True)
    half = {"must": [{"range": {"i32": {"LT": 500}}}]}
    assert plan(SegmentShape(IndexType.IVF_FLAT, False, rows, int(passing(filled, half).sum()), dim, 64), K, 10,
                SearchParams(nprobe=8)).strategy is Strategy.INDEX
    cases: list[tuple[IndexType, dict[str, int], dict[str, int]]] = [
        (IndexType.IVF_FLAT, {"nlist": 64}, {"nprobe": 8}),
        (IndexType.HNSW, {"M": 16, "efConstruction": 40}, {"ef": 64}),
        (IndexType.ANNOY, {"n_trees": 4}, {"search_k": -1}),
    ]
    for index_type, build, params in cases:
        ok(api.CreateIndex(milvus_pb2.IndexParam(
            collection_name=filled.name, index_type=int(index_type),
            extra_params=[milvus_pb2.KeyValuePair(key="params", value=json.dumps(build))]), timeout=300))
        for threshold in (500, 100, 10, 1):
            body = {"must": [{"range": {"i32": {"LT": threshold}}}]}
            mask = passing(filled, body)
            status, ids, _ = hybrid_search(api, filled, body, queries, K, params=params)
            ok(status)
            recall = precision_and_recall(filled, mask, queries, K, ids)
            if index_type is not IndexType.ANNOY:
                assert recall >= 0.95, (index_type, threshold, recall)
