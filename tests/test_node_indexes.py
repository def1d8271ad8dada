"""Every index type and metric on a real node: built by CreateIndex, searched, restarted, deleted from.

For each case (index type x metric, tests/support/index_cases.py) one collection on a shared node gets 8,000
clustered rows in one ``_default`` segment (user ids 0..7999, so row offsets are ids) and 600 rows in partition
``p1`` (a segment under 4,096 rows, which stays exact). After CreateIndex the tests check DescribeIndex and
ShowCollectionInfo, recall@10 against an exact oracle, that the node returns exactly what the same
index built here in-process (``node.indexes.build_index`` on the same rows and effective parameters)
returns - the same ids and bit-identical distances, for every kind, under the conditions described in
``build_here`` - that results survive a node restart, and that deletes and partitions are respected.

The cases share one node; its restart happens once, for all of them (module fixture ``restarted``),
and the delete tests run last because they change the collections.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from coordinator.model import IndexType
from milvus_wire import milvus_pb2
from node.indexes import SegmentIndex
from node.kernels import LiveMask
from tests.support.index_cases import (
    BIN_DIM,
    CASE_IDS,
    CASES,
    DIM,
    INDEX_NAMES,
    Case,
    K,
    N,
    P,
    build_here,
    check_ann_result,
    create_index,
    data_of,
    describe_index,
    recall,
    search_here,
    search_ok,
)
from tests.support.node_rpcs import cname
from tests.support.nodeproc import NodeProcess
from tests.support.requests import (
    NO_ID,
    TimedStub,
    assert_search_exact,
    assert_topk_matches,
    count,
    create,
    delete,
    flush,
    info,
    insert_ok,
    merge_topk,
    ok,
    unique_name,
)

# -- the shared node ----------------------------------------------------------------------------


@dataclass
class Prepared:
    case: Case
    name: str
    rows: np.ndarray  # all rows; ids are offsets (0..N-1 in _default, N..N+P-1 in p1)
    queries: np.ndarray
    here: SegmentIndex  # the same index built in this process over rows[:N]
    before: tuple[np.ndarray, np.ndarray]  # whole-collection result with case.search, before the restart


class Lab:
    """One node holding one collection per case, prepared on first use."""

    def __init__(self, node: NodeProcess) -> None:
        self.node = node
        self.prepared: dict[str, Prepared] = {}

    def stub(self) -> Any:
        return TimedStub(self.node.stub())

    def prepare(self, case: Case) -> Prepared:
        if case.name in self.prepared:
            return self.prepared[case.name]
        s = self.stub()
        name = unique_name(case.name.lower().replace("-", "_"))
        dim = BIN_DIM if case.binary else DIM
        ok(create(s, name, dim, int(case.metric), ifs=1024))  # 1 GB segments: the N rows stay one segment
        ok(s.CreatePartition(milvus_pb2.PartitionParam(collection_name=name, tag="p1")))
        rows, queries = data_of(case)
        insert_ok(s, name, rows[:N], np.arange(N))
        insert_ok(s, name, rows[N:], np.arange(N, N + P), tag="p1")
        ok(flush(s, name))
        # Unindexed: exact. For float collections this search also sets the node's process-wide BLAS
        # threshold to that of dimension DIM (node.kernels.use_blas_from), which faiss' k-means in the
        # build below depends on; build_here sets the same value in this process.
        got = search_ok(s, name, queries, K, case.search)
        assert_search_exact(*got, rows, np.arange(N + P), queries, K, int(case.metric))

        with ThreadPoolExecutor(1) as pool:  # build here while the node builds (CreateIndex blocks)
            here = pool.submit(build_here, case, rows[:N])
            ok(create_index(s, name, int(case.kind), case.build))
            built = here.result()
        before = search_ok(s, name, queries, K, case.search)
        prepared = Prepared(case, name, rows, queries, built, before)
        self.prepared[case.name] = prepared
        return prepared

    def restart(self) -> None:
        self.node.stop()
        self.node.start()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    node = NodeProcess(tmp_path_factory.mktemp("indexes"), ["--auto-flush-interval", "1"])
    node.start()
    try:
        yield Lab(node)
    finally:
        node.stop()


@pytest.fixture(scope="module")
def restarted(lab: Lab) -> Lab:
    """Every case prepared (and its results recorded), then the node stopped and started once."""
    for case in CASES:
        lab.prepare(case)
    lab.restart()
    return lab


def _search_here(p: Prepared, params: Mapping[str, Any], deleted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return search_here(p.here, p.case.kind, p.queries, params, LiveMask.build(N, deleted[deleted < N]))


# -- per case -----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_describe_index_and_collection_info(lab: Lab, case: Case) -> None:
    p = lab.prepare(case)
    s = lab.stub()
    assert describe_index(s, p.name) == (int(case.kind), dict(case.build))
    described = ok(s.DescribeCollection(cname(p.name)))
    assert (described.dimension, described.metric_type) == (BIN_DIM if case.binary else DIM, int(case.metric))
    parts = {part["tag"]: part for part in info(s, p.name)["partitions"]}
    assert [seg["row_count"] for seg in parts["_default"]["segments"]] == [N]
    assert [seg["row_count"] for seg in parts["p1"]["segments"]] == [P]
    # Like Milvus 1.1, raw segments of an indexed collection carry the index's name too.
    names = {seg["index_name"] for part in parts.values() for seg in part["segments"]}
    assert names == {INDEX_NAMES[case.kind]}
    # The big segment has an index file; the small one (p1) none.
    seg = parts["_default"]["segments"][0]["name"]
    small = parts["p1"]["segments"][0]["name"]
    files = {f.parent.name for f in lab.node.storage.glob("collections/*/*/index-*.bin")}
    assert (seg in files) == (case.kind is not IndexType.FLAT)
    assert small not in files


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_recall_against_exact_oracle(lab: Lab, case: Case) -> None:
    p = lab.prepare(case)
    ids, dist = search_ok(lab.stub(), p.name, p.queries, K, case.search)
    if case.kind is IndexType.FLAT:
        assert_search_exact(ids, dist, p.rows, np.arange(N + P), p.queries, K, int(case.metric))
    else:
        check_ann_result(case, ids, dist, p.rows, p.queries, K)
    got = recall(ids, p.rows, p.queries, case.metric, K)
    print(f"recall@{K} {case.name} {dict(case.search)}: {got:.3f} (floor {case.floor})")
    assert got >= case.floor, f"{case.name}: recall@{K} {got:.3f} below {case.floor}"
    if case.kind is not IndexType.FLAT:
        # The index is really used: a weak setting (one list, ef = K, ...) misses some neighbours.
        weak_ids, _ = search_ok(lab.stub(), p.name, p.queries, K, case.weak)
        assert recall(weak_ids, p.rows, p.queries, case.metric, K) < 1.0


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_results_match_the_same_index_built_in_process(lab: Lab, case: Case) -> None:
    p = lab.prepare(case)
    assert dict(p.here.effective_params) == _expected_effective(case)
    none = np.zeros(0, dtype=np.int64)
    for params in (case.search, case.weak):
        ids, dist = search_ok(lab.stub(), p.name, p.queries, K, params, tags=["_default"])
        want_ids, want_dist = _search_here(p, params, none)
        np.testing.assert_array_equal(ids, want_ids, err_msg=f"{case.name} {dict(params)}: other ids")
        np.testing.assert_array_equal(dist, want_dist, err_msg=f"{case.name} {dict(params)}: other distances")


def _expected_effective(case: Case) -> dict[str, Any]:
    """Effective build parameters for N rows (rows // 39 >= nlist here; PQ nbits defaults to 8)."""
    if case.kind is IndexType.IVF_PQ:
        return {**case.build, "nbits": 8}
    return dict(case.build)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_partitions_are_respected(lab: Lab, case: Case) -> None:
    p = lab.prepare(case)
    s = lab.stub()
    default = search_ok(s, p.name, p.queries, K, case.search, tags=["_default"])
    found = default[0][default[0] != NO_ID]  # SUB/SUPERSTRUCTURE rows may have fewer than K matches
    assert found.size and ((found >= 0) & (found < N)).all(), f"{case.name}: ids of another partition"
    part = search_ok(s, p.name, p.queries, K, case.search, tags=["p1"])
    # p1's segment has fewer than 4,096 rows: never indexed, searched exactly.
    assert_search_exact(*part, p.rows[N:], np.arange(N, N + P), p.queries, K, int(case.metric))
    whole = search_ok(s, p.name, p.queries, K, case.search)
    assert_topk_matches(*whole, *merge_topk([default, part], K, int(case.metric)))


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_results_survive_a_restart(restarted: Lab, case: Case) -> None:
    p = restarted.prepare(case)
    s = restarted.stub()
    assert describe_index(s, p.name) == (int(case.kind), dict(case.build))
    ids, dist = search_ok(s, p.name, p.queries, K, case.search)
    np.testing.assert_array_equal(ids, p.before[0], err_msg=f"{case.name}: other ids after the restart")
    np.testing.assert_array_equal(dist, p.before[1], err_msg=f"{case.name}: other distances after the restart")


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_deletes_are_respected(restarted: Lab, case: Case) -> None:
    p = restarted.prepare(case)
    s = restarted.stub()
    rng = np.random.default_rng(7)
    # First the two best hits of every query (they would come back otherwise), random rows and some
    # of p1: a few hundred, which kinds without ID selectors handle by oversampling. Then more than
    # 2,048 (the kernels' oversampling limit), which takes the other paths (selectors, wider passes).
    first = np.concatenate([p.before[0][:, :2].ravel(), rng.choice(N, 150, replace=False),
                            N + rng.choice(P, 20, replace=False)])
    stages = [first[first != NO_ID], rng.choice(N, 2500, replace=False)]
    gone = np.zeros(0, dtype=np.int64)
    for stage, more in enumerate(stages):
        ok(delete(s, p.name, more))
        ok(flush(s, p.name))
        gone = np.union1d(gone, more)
        assert count(s, p.name) == N + P - gone.size
        live = np.ones(N + P, dtype=bool)
        live[gone] = False
        keep = np.flatnonzero(live)

        ids, dist = search_ok(s, p.name, p.queries, K, case.exhaustive)
        assert not np.isin(ids, gone).any(), f"{case.name} stage {stage}: deleted ids returned"
        if case.kind is IndexType.FLAT:
            assert_search_exact(ids, dist, p.rows[keep], keep, p.queries, K, int(case.metric))
        else:
            check_ann_result(case, ids, dist, p.rows, p.queries, K)  # K live results, no holes
            got = recall(ids, p.rows, p.queries, case.metric, K, live)
            print(f"recall@{K} {case.name} {dict(case.exhaustive)} with {gone.size} deleted: {got:.3f}")
            assert got >= case.exhaustive_floor, f"{case.name} stage {stage}: recall@{K} {got:.3f}"

        # The node filters deletes exactly as the same index does here with the same live rows.
        ids, dist = search_ok(s, p.name, p.queries, K, case.search, tags=["_default"])
        assert not np.isin(ids, gone).any(), f"{case.name} stage {stage}: deleted ids returned"
        want_ids, want_dist = _search_here(p, case.search, gone)
        np.testing.assert_array_equal(ids, want_ids, err_msg=f"{case.name} stage {stage}: other ids than here")
        np.testing.assert_array_equal(dist, want_dist, err_msg=f"{case.name} stage {stage}: other distances")
