"""Index rules on a real node, each test with collections of its own: search parameters checked against the
index type of unindexed segments, the 4,096-row build threshold, HNSW ``ef`` < topk, IVF_SQ8H and structure
metrics refused, CreateIndex on an empty collection, and CreateIndex again with other parameters (compared with
the same index built in-process, as in tests/test_node_indexes.py).
"""

from __future__ import annotations

import numpy as np
import pytest

from coordinator.model import IndexType, MetricType
from node.kernels import LiveMask
from tests.support.index_cases import (
    BIN_DIM,
    BUILD_THRESHOLD,
    DIM,
    INDEX_NAMES,
    NSG_BUILD,
    Case,
    K,
    N,
    build_here,
    create_index,
    describe_index,
    float_data,
    node_stats,
    recall,
    search_here,
    search_ok,
)
from tests.support.nodeproc import NodeProcess
from tests.support.requests import (
    TimedStub,
    assert_search_exact,
    assert_status,
    create,
    flush,
    info,
    insert_ok,
    ok,
    search,
    unique_name,
)

ILLEGAL_ARGUMENT = 5
ILLEGAL_INDEX_TYPE = 8


SEARCH_PARAM_OF = {
    IndexType.IVF_FLAT: ("nprobe", {"nlist": 16}),
    IndexType.IVF_SQ8: ("nprobe", {"nlist": 16}),
    IndexType.IVF_PQ: ("nprobe", {"nlist": 16, "m": 8}),
    IndexType.HNSW: ("ef", {"M": 8, "efConstruction": 40}),
    IndexType.RNSG: ("search_length", NSG_BUILD),
    IndexType.ANNOY: ("search_k", {"n_trees": 4}),
}


def test_search_params_follow_the_index_type_while_segments_are_unindexed(node: NodeProcess) -> None:
    s = TimedStub(node.stub())
    rows, queries = float_data()
    name = unique_name("raw_params")
    ok(create(s, name, DIM, int(MetricType.L2)))
    insert_ok(s, name, rows[:100], np.arange(100))
    ok(flush(s, name))
    ids = np.arange(100)
    for kind, (param, build) in SEARCH_PARAM_OF.items():
        ok(create_index(s, name, int(kind), build))
        assert describe_index(s, name) == (int(kind), build)
        # 100 rows stay RAW, but the search parameters are those of the collection's index type.
        status, _, _ = search(s, name, queries, K, (), {})
        assert_status(status, ILLEGAL_ARGUMENT, f"Parameter list must contain: {param}")
        got = search_ok(s, name, queries, K, {param: 16})
        assert_search_exact(*got, rows[:100], ids, queries, K, int(MetricType.L2))
    segment = info(s, name)["partitions"][0]["segments"][0]["name"]
    assert not list(node.storage.glob(f"collections/*/{segment}/index-*"))


def test_segments_under_4096_rows_stay_exact(node: NodeProcess) -> None:
    s = TimedStub(node.stub())
    rows, queries = float_data()
    built: dict[int, float] = {}
    for n in (BUILD_THRESHOLD - 1, BUILD_THRESHOLD):
        name = unique_name(f"small_{n}")
        ok(create(s, name, DIM, int(MetricType.L2)))
        insert_ok(s, name, rows[:n], np.arange(n))
        ok(flush(s, name))
        ok(create_index(s, name, int(IndexType.IVF_FLAT), {"nlist": 64}))
        ids, _ = search_ok(s, name, queries, K, {"nprobe": 1})
        built[n] = recall(ids, rows[:n], queries, MetricType.L2, K)
        if n < BUILD_THRESHOLD:
            got = search_ok(s, name, queries, K, {"nprobe": 1})
            assert_search_exact(*got, rows[:n], np.arange(n), queries, K, int(MetricType.L2))
    # From 4,096 rows on the segment is indexed: one probed list of 64 misses neighbours.
    assert built[BUILD_THRESHOLD - 1] == 1.0 and built[BUILD_THRESHOLD] < 1.0, built


def test_hnsw_ef_below_topk_is_refused(node: NodeProcess) -> None:
    s = TimedStub(node.stub())
    rows, queries = float_data()
    name = unique_name("hnsw_ef")
    ok(create(s, name, DIM, int(MetricType.IP)))
    insert_ok(s, name, rows[:200], np.arange(200))
    ok(flush(s, name))
    ok(create_index(s, name, int(IndexType.HNSW), {"M": 8, "efConstruction": 40}))
    status, _, _ = search(s, name, queries, K, (), {"ef": K - 1})
    assert_status(status, ILLEGAL_ARGUMENT, f"Invalid ef value: {K - 1}. Valid range is [{K}, 32768]")
    status, _, _ = search(s, name, queries, 50, (), {"ef": 49})
    assert_status(status, ILLEGAL_ARGUMENT, "Invalid ef value: 49. Valid range is [50, 32768]")
    got = search_ok(s, name, queries, K, {"ef": K})
    assert_search_exact(*got, rows[:200], np.arange(200), queries, K, int(MetricType.IP))


def test_ivf_sq8h_is_unsupported(node: NodeProcess) -> None:
    s = TimedStub(node.stub())
    name = unique_name("sq8h")
    ok(create(s, name, DIM, int(MetricType.L2)))
    assert_status(create_index(s, name, int(IndexType.IVF_SQ8H), {"nlist": 16}), ILLEGAL_INDEX_TYPE,
                  "Unsupported index type: 5")
    assert describe_index(s, name) == (int(IndexType.FLAT), {})


@pytest.mark.parametrize("metric", [MetricType.SUBSTRUCTURE, MetricType.SUPERSTRUCTURE], ids=lambda m: m.name)
def test_structure_metrics_refuse_ivf_flat(node: NodeProcess, metric: MetricType) -> None:
    s = TimedStub(node.stub())
    name = unique_name(f"ivf_{metric.name.lower()}")
    ok(create(s, name, BIN_DIM, int(metric)))
    assert_status(create_index(s, name, int(IndexType.IVF_FLAT), {"nlist": 16}), ILLEGAL_INDEX_TYPE,
                  "Invalid index type for collection metric type")
    assert describe_index(s, name) == (int(IndexType.FLAT), {})


def test_create_index_on_an_empty_collection_returns_at_once(node: NodeProcess) -> None:
    s = TimedStub(node.stub())
    rows, queries = float_data()
    name = unique_name("empty_index")
    ok(create(s, name, DIM, int(MetricType.L2)))
    before = node_stats(s)
    builds = before["index_builds_done"]
    # Nothing to build: the call succeeds under the stub's deadline although rows only come once it has returned
    # (a call waiting for rows would end in DEADLINE_EXCEEDED), having set the index and built nothing.
    ok(create_index(s, name, int(IndexType.IVF_FLAT), {"nlist": 32}))
    after = node_stats(s)
    assert (after["index_builds_done"], after["index_builds_failed"]) == (builds, before["index_builds_failed"])
    assert describe_index(s, name) == (int(IndexType.IVF_FLAT), {"nlist": 32})
    assert info(s, name)["partitions"][0]["segments"] is None
    status, ids, _ = search(s, name, queries, K, (), {"nprobe": 4})
    assert status.error_code == 0 and ids.size == 0
    # Rows flushed later into a segment far below index_file_size stay RAW (exact) until asked.
    insert_ok(s, name, rows[:5000], np.arange(5000))
    ok(flush(s, name))
    got = search_ok(s, name, queries, K, {"nprobe": 1})
    assert_search_exact(*got, rows[:5000], np.arange(5000), queries, K, int(MetricType.L2))
    ok(create_index(s, name, int(IndexType.IVF_FLAT), {"nlist": 32}))
    assert node_stats(s)["index_builds_done"] == builds + 1
    ids, _ = search_ok(s, name, queries, K, {"nprobe": 1})
    assert recall(ids, rows[:5000], queries, MetricType.L2, K) < 1.0  # now built


def test_create_index_again_with_other_params_rebuilds(node: NodeProcess) -> None:
    s = TimedStub(node.stub())
    rows, queries = float_data()
    base = rows[:N]
    name = unique_name("rebuild")
    ok(create(s, name, DIM, int(MetricType.L2)))
    insert_ok(s, name, base, np.arange(N))
    ok(flush(s, name))
    search_ok(s, name, queries, K, {})  # sets the node's BLAS threshold for DIM (see build_here)
    none = LiveMask.build(N, np.zeros(0, dtype=np.int64))
    results = []
    for kind, build in ((IndexType.IVF_FLAT, {"nlist": 16}), (IndexType.IVF_FLAT, {"nlist": 128}),
                        (IndexType.IVF_SQ8, {"nlist": 128})):
        ok(create_index(s, name, int(kind), build))
        assert describe_index(s, name) == (int(kind), build)
        assert info(s, name)["partitions"][0]["segments"][0]["index_name"] == INDEX_NAMES[kind]
        ids, dist = search_ok(s, name, queries, K, {"nprobe": 1})
        here = build_here(Case(kind, MetricType.L2, build), base)
        want_ids, want_dist = search_here(here, kind, queries, {"nprobe": 1}, none)
        np.testing.assert_array_equal(ids, want_ids, err_msg=f"{kind.name} {build}")
        np.testing.assert_array_equal(dist, want_dist, err_msg=f"{kind.name} {build}")
        results.append(ids)
    assert not np.array_equal(results[0], results[1]), "nlist 16 -> 128 did not change the nprobe=1 results"
