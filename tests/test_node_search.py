"""Search (every metric, SearchByID, SearchInFiles, result widths) and index descriptions against a real node
process, compared with an exact numpy oracle (tests/support/requests.py)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from milvus_wire import milvus_pb2
from tests.support.node_rpcs import (
    BINARY_DIM,
    FLOAT_DIM,
    SEG_ROWS,
    SEGMENTS,
    UNEXPECTED_ERROR,
    Filled,
    cname,
    floats,
    multi_segment_collection,
)
from tests.support.requests import (
    BINARY_METRICS,
    IP,
    L2,
    METRIC_NAMES,
    NO_ID,
    SUBSTRUCTURE,
    SUCCESS,
    SUPERSTRUCTURE,
    TimedStub,
    assert_search_exact,
    assert_status,
    assert_topk_matches,
    count,
    create,
    delete,
    flush,
    insert_ok,
    merge_topk,
    ok,
    oracle,
    search,
    search_by_id,
    search_in_files,
    segments,
    unique_name,
)

ILLEGAL_ARGUMENT = 5
TOPK = 10


@pytest.fixture
def api(stub: Any) -> TimedStub:
    return TimedStub(stub)


def discover_file_ids(api: Any, name: str, query: np.ndarray, expected: int, limit: int = 5000) -> list[int]:
    """Numeric file ids of a collection's segments: SearchInFiles accepts exactly those."""
    found: list[int] = []
    for candidate in range(1, limit + 1):
        st, _, _ = search_in_files(api, name, [candidate], query, 1)
        if st.error_code == SUCCESS:
            found.append(candidate)
            if len(found) == expected:
                return found
        else:
            assert (st.error_code, st.reason) == (UNEXPECTED_ERROR, "Invalid file id")
    raise AssertionError(f"found file ids {found}, expected {expected} of them")


# -- search ----------------------------------------------------------------------------------------


def metric_queries(metric: int, filled: Filled, rng: np.random.Generator) -> np.ndarray:
    """Six queries with real matches for the metric; for the structure metrics the fifth has none."""
    base = filled.base
    if metric not in BINARY_METRICS:
        return np.concatenate([floats(rng, 4, FLOAT_DIM), base[[7, 1234]]])
    nbytes = BINARY_DIM // 8
    picked = rng.choice(filled.patterns.shape[0], 4, replace=False)
    patterns = filled.patterns[picked]
    ors = np.stack([np.bitwise_or.reduce(base[filled.family == f], axis=0) for f in picked])
    if metric == SUBSTRUCTURE:  # rows containing the query: a family's rows contain its pattern
        return np.concatenate([patterns, np.full((1, nbytes), 255, np.uint8), base[[11]]])
    if metric == SUPERSTRUCTURE:  # rows contained in the query: a family's rows are in their OR
        return np.concatenate([ors, np.zeros((1, nbytes), np.uint8), base[[11]]])
    return np.concatenate([ors[:2], patterns[:2], base[[11, 1500]]])


@pytest.mark.parametrize("metric", sorted(METRIC_NAMES), ids=lambda m: METRIC_NAMES[m])
def test_search_all_metrics_match_exact_oracle(api: Any, metric: int) -> None:
    rng = np.random.default_rng(100 + metric)
    filled = multi_segment_collection(api, metric, rng)
    name, base, ids = filled.name, filled.base, filled.ids
    assert len(segments(api, name)) == SEGMENTS
    assert count(api, name) == SEG_ROWS * SEGMENTS
    queries = metric_queries(metric, filled, rng)
    ref_ids, ref_dist = oracle(base, ids, queries, TOPK, metric)
    if metric in (SUBSTRUCTURE, SUPERSTRUCTURE):
        # Each family query matches its 6 rows (fewer than topk: padded with -1), the fifth none.
        matches = (ref_ids != NO_ID).sum(axis=1)
        assert (matches[:4] >= 6).all() and (matches[:4] < TOPK).all(), matches
        assert matches[4] == 0 and matches[5] >= 1, matches

    st, got, dist = search(api, name, queries, TOPK)
    ok(st)
    assert got.shape == (len(queries), TOPK)
    assert_topk_matches(got, dist, ref_ids, ref_dist)

    # SearchByID: the stored vectors of the ids are the queries.
    picked = ids[[0, 599, 600, 1799]]
    st, got, dist = search_by_id(api, name, picked, TOPK)
    ok(st)
    assert_search_exact(got, dist, base, ids, base[[0, 599, 600, 1799]], TOPK, metric)

    # SearchInFiles: the union over every segment, merged here, equals Search.
    file_ids = discover_file_ids(api, name, queries[:1], SEGMENTS)
    parts = []
    for file_id in file_ids:
        st, got, dist = search_in_files(api, name, [file_id], queries, TOPK)
        ok(st)
        assert got.shape == (len(queries), TOPK)
        parts.append((got, dist))
    assert_topk_matches(*merge_topk(parts, TOPK, metric), ref_ids, ref_dist)
    st, got, dist = search_in_files(api, name, file_ids, queries, TOPK)
    ok(st)
    assert_topk_matches(got, dist, ref_ids, ref_dist)


def test_result_width_is_limited_by_live_rows(api: Any) -> None:
    name = unique_name("narrow")
    ok(create(api, name, 8, IP))
    rng = np.random.default_rng(16)
    base = floats(rng, 5, 8)
    ids = insert_ok(api, name, base)
    ok(flush(api, name))
    queries = floats(rng, 3, 8)
    st, got, dist = search(api, name, queries, 10)
    ok(st)
    assert got.shape == (3, 5) and (got != NO_ID).all()
    assert_search_exact(got, dist, base, ids, queries, 10, IP)
    assert (np.diff(dist, axis=1) <= 0).all(), "IP results are ordered by descending similarity"

    ok(delete(api, name, ids[:2]))
    ok(flush(api, name))
    st, got, dist = search(api, name, queries, 10)
    ok(st)
    assert got.shape == (3, 3) and (got != NO_ID).all()
    assert_search_exact(got, dist, base[2:], ids[2:], queries, 10, IP)

    ok(delete(api, name, ids[2:]))
    ok(flush(api, name))
    assert count(api, name) == 0
    reply = api.Search(milvus_pb2.SearchParam(
        collection_name=name, query_record_array=[milvus_pb2.RowRecord(float_data=queries[0].tolist())], topk=10,
    ))
    assert_status(reply, SUCCESS, "OK")
    assert (reply.row_num, len(reply.ids), len(reply.distances)) == (0, 0, 0)


def test_search_of_empty_collection_has_no_rows(api: Any) -> None:
    name = unique_name("emptysearch")
    ok(create(api, name, 8, L2))
    st, got, _ = search(api, name, floats(np.random.default_rng(17), 2, 8), 3)
    assert_status(st, SUCCESS, "OK")
    assert got.shape == (0, 0)


# -- indexes ---------------------------------------------------------------------------------------


def test_describe_index_and_ivf_flat_requires_nprobe(api: Any) -> None:
    name = unique_name("index")
    ok(create(api, name, 16, L2))
    desc = ok(api.DescribeIndex(cname(name)))
    assert (desc.collection_name, desc.index_type) == (name, 1)
    assert [(kv.key, kv.value) for kv in desc.extra_params] == [("params", "{}")]

    rng = np.random.default_rng(18)
    base = floats(rng, 200, 16)
    ids = insert_ok(api, name, base)
    ok(flush(api, name))
    index = milvus_pb2.IndexParam(
        collection_name=name, index_type=2, extra_params=[milvus_pb2.KeyValuePair(key="params", value='{"nlist": 16}')]
    )
    assert_status(api.CreateIndex(index), SUCCESS, "OK")
    desc = ok(api.DescribeIndex(cname(name)))
    assert desc.index_type == 2
    assert desc.extra_params[0].key == "params"
    assert json.loads(desc.extra_params[0].value) == {"nlist": 16}

    queries = floats(rng, 3, 16)
    st, _, _ = search(api, name, queries, 5)
    assert_status(st, ILLEGAL_ARGUMENT, "Parameter list must contain: nprobe")
    st, _, _ = search(api, name, queries, 5, params={"nprobe": 0})
    assert_status(st, ILLEGAL_ARGUMENT, "Invalid nprobe value: 0. Valid range is [1, 65536]")
    st, got, dist = search(api, name, queries, 5, params={"nprobe": 4})
    ok(st)
    assert_search_exact(got, dist, base, ids, queries, 5, L2)

    # A segment flushed after the index was set carries the index's name.
    insert_ok(api, name, floats(rng, 10, 16))
    ok(flush(api, name))
    assert "IVFFLAT" in [seg["index_name"] for seg in segments(api, name)]

    ok(api.DropIndex(cname(name)))
    desc = ok(api.DescribeIndex(cname(name)))
    assert desc.index_type == 1
    assert [(kv.key, kv.value) for kv in desc.extra_params] == [("params", "{}")]
    ok(search(api, name, queries, 5)[0])
