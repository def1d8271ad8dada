"""Every index type and metric on a real node: built by CreateIndex, searched, restarted, deleted from.

For each case (index type x metric) one collection on a shared node gets 8,000 clustered rows in one
``_default`` segment (user ids 0..7999, so row offsets are ids) and 600 rows in partition ``p1`` (a
segment under 4,096 rows, which stays exact). After CreateIndex the tests check DescribeIndex and
ShowCollectionInfo, recall@10 against an exact oracle, that the node returns exactly what the same
index built here in-process (``node.indexes.build_index`` on the same rows and effective parameters)
returns - the same ids and bit-identical distances, for every kind, under the conditions described in
``_build_here`` - that results survive a node restart, and that deletes and partitions are respected.

The cases share one node; its restart happens once, for all of them (module fixture ``restarted``),
and the delete tests run last because they change the collections. The tests after them use
collections of their own: search parameters checked against the index type of unindexed segments,
the 4,096-row build threshold, HNSW ``ef`` < topk, IVF_SQ8H and structure metrics refused, CreateIndex
on an empty collection, and CreateIndex again with other parameters.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import faiss
import numpy as np
import pytest

from coordinator.model import IndexType, MetricType
from milvus_wire import milvus_pb2
from node.indexes import SegmentIndex, build_index
from node.kernels import LiveMask, use_blas_from
from node.params import search_params
from tests.support.nodeproc import NodeProcess
from tests.support.requests import (
    NO_ID,
    TimedStub,
    assert_search_exact,
    assert_status,
    assert_topk_matches,
    cmd,
    count,
    create,
    delete,
    exact_distances,
    extra_params,
    flush,
    info,
    insert_ok,
    merge_topk,
    ok,
    search,
    unique_name,
)

ILLEGAL_ARGUMENT = 5
ILLEGAL_INDEX_TYPE = 8

DIM = 32  # every float collection of this module (the node's BLAS threshold follows it, see _build_here)
BIN_DIM = 256  # bits
N = 8000  # rows of the indexed _default segment, ids 0..N-1
P = 600  # rows of partition p1 (stays RAW: fewer than 4,096 rows), ids N..N+P-1
NQ = 40
K = 10
CLUSTERS = 40
BIN_CLUSTERS = 100
BUILD_THRESHOLD = 4096  # segments with fewer rows stay exact (Milvus 1.1 BUILD_INDEX_THRESHOLD)

INDEX_NAMES = {
    IndexType.FLAT: "IDMAP", IndexType.IVF_FLAT: "IVFFLAT", IndexType.IVF_SQ8: "IVFSQ8", IndexType.IVF_PQ: "PQ",
    IndexType.HNSW: "HNSW", IndexType.RNSG: "NSG", IndexType.ANNOY: "ANNOY",
}
# Kinds whose reported distances are the exact distances of the returned rows (no quantisation).
LOSSLESS = frozenset({IndexType.FLAT, IndexType.IVF_FLAT, IndexType.HNSW, IndexType.RNSG, IndexType.ANNOY})


@dataclass(frozen=True)
class Case:
    kind: IndexType
    metric: MetricType
    build: Mapping[str, int] = field(default_factory=dict)
    search: Mapping[str, int] = field(default_factory=dict)  # typical search parameters
    weak: Mapping[str, int] = field(default_factory=dict)  # a setting where the approximation shows
    exhaustive: Mapping[str, int] = field(default_factory=dict)  # nprobe = nlist, high ef, large search_k...
    floor: float = 1.0  # recall@10 floor with ``search``
    exhaustive_floor: float = 1.0  # recall@10 floor with ``exhaustive`` (after deletes)

    @property
    def name(self) -> str:
        return f"{self.kind.name}-{self.metric.name}"

    @property
    def binary(self) -> bool:
        return self.metric.is_binary


NSG_BUILD = {"search_length": 45, "out_degree": 50, "candidate_pool_size": 300, "knng": 100}


def _float_cases(metric: MetricType) -> list[Case]:
    ip = metric is MetricType.IP
    return [
        Case(IndexType.FLAT, metric),
        Case(IndexType.IVF_FLAT, metric, {"nlist": 64}, {"nprobe": 8}, {"nprobe": 1}, {"nprobe": 64}, 0.98),
        Case(IndexType.IVF_SQ8, metric, {"nlist": 64}, {"nprobe": 8}, {"nprobe": 1}, {"nprobe": 64}, 0.95, 0.95),
        # PQ with 8 sub-quantizers of 4 dimensions: coarse distances, recall is bounded by the codes.
        Case(IndexType.IVF_PQ, metric, {"nlist": 32, "m": 8}, {"nprobe": 8}, {"nprobe": 1}, {"nprobe": 32},
             0.4 if ip else 0.55, 0.4 if ip else 0.55),
        Case(IndexType.HNSW, metric, {"M": 16, "efConstruction": 100}, {"ef": 64}, {"ef": K}, {"ef": 1024},
             0.97, 0.99),
        # NSG walks from one navigating node: on well separated clusters it needs a long search pool.
        Case(IndexType.RNSG, metric, NSG_BUILD, {"search_length": 128}, {"search_length": 10},
             {"search_length": 300}, 0.93, 0.95),
        Case(IndexType.ANNOY, metric, {"n_trees": 8}, {"search_k": 2000}, {"search_k": -1},
             {"search_k": 1_000_000}, 0.95, 0.99),
    ]


def _binary_cases() -> list[Case]:
    cases = [Case(IndexType.FLAT, m) for m in (MetricType.HAMMING, MetricType.JACCARD, MetricType.TANIMOTO,
                                               MetricType.SUBSTRUCTURE, MetricType.SUPERSTRUCTURE)]
    cases += [Case(IndexType.IVF_FLAT, m, {"nlist": 64}, {"nprobe": 8}, {"nprobe": 1}, {"nprobe": 64}, 0.95)
              for m in (MetricType.HAMMING, MetricType.JACCARD, MetricType.TANIMOTO)]
    return cases


CASES = [*_float_cases(MetricType.L2), *_float_cases(MetricType.IP), *_binary_cases()]
CASE_IDS = [c.name for c in CASES]


# -- data ---------------------------------------------------------------------------------------


@cache
def float_data() -> tuple[np.ndarray, np.ndarray]:
    """(rows N+P, queries NQ): gaussian clusters, the queries drawn from the same clusters."""
    rng = np.random.default_rng(20240611)
    centers = rng.normal(0.0, 2.0, (CLUSTERS, DIM))
    rows = centers[rng.integers(0, CLUSTERS, N + P)] + rng.normal(0.0, 1.0, (N + P, DIM))
    queries = centers[rng.integers(0, CLUSTERS, NQ)] + rng.normal(0.0, 1.0, (NQ, DIM))
    return rows.astype(np.float32), queries.astype(np.float32)


@cache
def binary_data() -> tuple[np.ndarray, np.ndarray]:
    """(packed rows N+P, packed queries NQ): random centre codes with 20 % of the bits flipped."""
    rng = np.random.default_rng(20240612)
    centers = rng.integers(0, 2, (BIN_CLUSTERS, BIN_DIM), dtype=np.uint8)

    def draw(n: int) -> np.ndarray:
        bits = centers[rng.integers(0, BIN_CLUSTERS, n)] ^ (rng.random((n, BIN_DIM)) < 0.2).astype(np.uint8)
        return np.packbits(bits, axis=1)

    return draw(N + P), draw(NQ)


@cache
def structure_queries(metric: MetricType) -> np.ndarray:
    """Queries with matches: sparse subsets of rows (SUBSTRUCTURE), supersets of rows (SUPERSTRUCTURE)."""
    rows, _ = binary_data()
    rng = np.random.default_rng(int(metric))
    picked = rows[rng.integers(0, N + P, NQ)]
    if metric is MetricType.SUBSTRUCTURE:
        mask = np.packbits(rng.random((NQ, BIN_DIM)) < 0.06, axis=1)
        q = picked & mask
        empty = np.bitwise_count(q).sum(axis=1) == 0
        q[empty] = picked[empty]
    else:
        q = picked | np.packbits(rng.random((NQ, BIN_DIM)) < 0.6, axis=1)
        q[-1] = 0xFF  # every row lies in the all-ones code
    return np.ascontiguousarray(q)


def data_of(case: Case) -> tuple[np.ndarray, np.ndarray]:
    """All rows (ids 0..N+P-1) and the queries of a case."""
    if not case.binary:
        return float_data()
    rows, queries = binary_data()
    if case.metric in (MetricType.SUBSTRUCTURE, MetricType.SUPERSTRUCTURE):
        return rows, structure_queries(case.metric)
    return rows, queries


# -- helpers ------------------------------------------------------------------------------------


def cname(name: str) -> Any:
    return milvus_pb2.CollectionName(collection_name=name)


def create_index(stub: Any, name: str, kind: int, params: Mapping[str, Any]) -> Any:
    return stub.CreateIndex(milvus_pb2.IndexParam(collection_name=name, index_type=kind,
                                                  extra_params=extra_params(params)))


def describe_index(stub: Any, name: str) -> tuple[int, dict[str, Any]]:
    reply = ok(stub.DescribeIndex(cname(name)))
    assert [kv.key for kv in reply.extra_params] == ["params"]
    return int(reply.index_type), dict(json.loads(reply.extra_params[0].value))


def node_stats(stub: Any) -> dict[str, Any]:
    return dict(json.loads(ok(cmd(stub, "mishards_stats")).string_reply))


def search_ok(stub: Any, name: str, queries: np.ndarray, k: int, params: Mapping[str, Any],
              tags: Sequence[str] = ()) -> tuple[np.ndarray, np.ndarray]:
    status, ids, dist = search(stub, name, queries, k, tags, params)
    assert status.error_code == 0, f"search of {name} with {dict(params)} failed: {status.reason}"
    return ids, dist


def recall(got: np.ndarray, rows: np.ndarray, queries: np.ndarray, metric: MetricType, k: int,
           live: np.ndarray | None = None) -> float:
    """Mean share of the best ``min(k, candidates)`` found; rows are ids ``0..len(rows)-1``.

    A returned row counts when it is at least as close as the exact k-th best, so rows tied with
    it (frequent with binary metrics) are as good as the oracle's own pick.
    """
    dist, valid = exact_distances(rows, queries, int(metric))
    if live is not None:
        valid &= live[None, :]
    score = np.where(valid, -dist if metric is MetricType.IP else dist, np.inf)
    shares = []
    for i in range(score.shape[0]):
        want = min(k, int(valid[i].sum()))
        if want == 0:
            continue
        kth = float(np.partition(score[i], want - 1)[want - 1])
        hits = got[i][got[i] != NO_ID]
        good = int((score[i, hits] <= kth + 1e-6 * max(1.0, abs(kth))).sum())
        shares.append(min(good, want) / want)
    return float(np.mean(shares))


def check_ann_result(case: Case, ids: np.ndarray, dist: np.ndarray, rows: np.ndarray, queries: np.ndarray,
                     k: int) -> None:
    """Shape, no holes or repeats, order, and (lossless kinds) distances of the returned rows."""
    assert ids.shape == (queries.shape[0], k), f"{case.name}: result shape {ids.shape}"
    assert (ids != NO_ID).all(), f"{case.name}: holes in {ids.tolist()}"
    assert all(len(set(r.tolist())) == k for r in ids), f"{case.name}: repeated ids"
    steps = np.diff(dist.astype(np.float64), axis=1)
    assert (steps <= 1e-5 if case.metric is MetricType.IP else steps >= -1e-5).all(), f"{case.name}: out of order"
    if case.kind in LOSSLESS:
        true, _ = exact_distances(rows, queries, int(case.metric))
        np.testing.assert_allclose(dist, np.take_along_axis(true, ids, axis=1), rtol=1e-3, atol=1e-3,
                                   err_msg=f"{case.name}: reported distances are not those of the rows")


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
        # build below depends on; _build_here sets the same value in this process.
        got = search_ok(s, name, queries, K, case.search)
        assert_search_exact(*got, rows, np.arange(N + P), queries, K, int(case.metric))

        with ThreadPoolExecutor(1) as pool:  # build here while the node builds (CreateIndex blocks)
            here = pool.submit(_build_here, case, rows[:N])
            ok(create_index(s, name, int(case.kind), case.build))
            built = here.result()
        before = search_ok(s, name, queries, K, case.search)
        prepared = Prepared(case, name, rows, queries, built, before)
        self.prepared[case.name] = prepared
        return prepared

    def restart(self) -> None:
        self.node.stop()
        self.node.start()


def _build_here(case: Case, rows: np.ndarray) -> SegmentIndex:
    """The case's index over ``rows`` in this process, under the node's conditions.

    One OpenMP thread (the node's index-build thread runs with OMP_NUM_THREADS=1) and faiss' BLAS
    threshold as the node has it: a global that its searches set to ``8 * dimension`` (here DIM for
    every float collection) and that decides the distance code path of faiss' k-means, so IVF
    centroids - and with them every result - differ without it (IVF_PQ's 4-dimensional sub-quantizers
    switch paths between the default and 8 * DIM). Binary k-means runs on BIN_DIM floats per row, far
    above either threshold.
    """
    faiss.omp_set_num_threads(1)
    use_blas_from(DIM)
    return build_index(case.kind, rows, case.metric, case.build)


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


def search_here(index: SegmentIndex, kind: IndexType, queries: np.ndarray, params: Mapping[str, Any],
                live: LiveMask) -> tuple[np.ndarray, np.ndarray]:
    """Search an in-process index as a node search thread does (one OpenMP thread, same BLAS threshold)."""
    faiss.omp_set_num_threads(1)
    use_blas_from(DIM)
    res = index.search(queries, K, live, search_params(kind, params, K))
    return res.ids, res.distances


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


# -- other index behaviour ----------------------------------------------------------------------


SEARCH_PARAM_OF = {
    IndexType.IVF_FLAT: ("nprobe", {"nlist": 16}),
    IndexType.IVF_SQ8: ("nprobe", {"nlist": 16}),
    IndexType.IVF_PQ: ("nprobe", {"nlist": 16, "m": 8}),
    IndexType.HNSW: ("ef", {"M": 8, "efConstruction": 40}),
    IndexType.RNSG: ("search_length", NSG_BUILD),
    IndexType.ANNOY: ("search_k", {"n_trees": 4}),
}


def test_search_params_follow_the_index_type_while_segments_are_unindexed(lab: Lab) -> None:
    s = lab.stub()
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
    assert not list(lab.node.storage.glob(f"collections/*/{segment}/index-*"))


def test_segments_under_4096_rows_stay_exact(lab: Lab) -> None:
    s = lab.stub()
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


def test_hnsw_ef_below_topk_is_refused(lab: Lab) -> None:
    s = lab.stub()
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


def test_ivf_sq8h_is_unsupported(lab: Lab) -> None:
    s = lab.stub()
    name = unique_name("sq8h")
    ok(create(s, name, DIM, int(MetricType.L2)))
    assert_status(create_index(s, name, int(IndexType.IVF_SQ8H), {"nlist": 16}), ILLEGAL_INDEX_TYPE,
                  "Unsupported index type: 5")
    assert describe_index(s, name) == (int(IndexType.FLAT), {})


@pytest.mark.parametrize("metric", [MetricType.SUBSTRUCTURE, MetricType.SUPERSTRUCTURE], ids=lambda m: m.name)
def test_structure_metrics_refuse_ivf_flat(lab: Lab, metric: MetricType) -> None:
    s = lab.stub()
    name = unique_name(f"ivf_{metric.name.lower()}")
    ok(create(s, name, BIN_DIM, int(metric)))
    assert_status(create_index(s, name, int(IndexType.IVF_FLAT), {"nlist": 16}), ILLEGAL_INDEX_TYPE,
                  "Invalid index type for collection metric type")
    assert describe_index(s, name) == (int(IndexType.FLAT), {})


def test_create_index_on_an_empty_collection_returns_at_once(lab: Lab) -> None:
    s = lab.stub()
    rows, queries = float_data()
    name = unique_name("empty_index")
    ok(create(s, name, DIM, int(MetricType.L2)))
    builds = node_stats(s)["index_builds_done"]
    started = time.perf_counter()
    ok(create_index(s, name, int(IndexType.IVF_FLAT), {"nlist": 32}))
    assert time.perf_counter() - started < 5.0  # nothing to build: no wait (a generous bound for slow hosts)
    assert node_stats(s)["index_builds_done"] == builds
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


def test_create_index_again_with_other_params_rebuilds(lab: Lab) -> None:
    s = lab.stub()
    rows, queries = float_data()
    base = rows[:N]
    name = unique_name("rebuild")
    ok(create(s, name, DIM, int(MetricType.L2)))
    insert_ok(s, name, base, np.arange(N))
    ok(flush(s, name))
    search_ok(s, name, queries, K, {})  # sets the node's BLAS threshold for DIM (see _build_here)
    none = LiveMask.build(N, np.zeros(0, dtype=np.int64))
    results = []
    for kind, build in ((IndexType.IVF_FLAT, {"nlist": 16}), (IndexType.IVF_FLAT, {"nlist": 128}),
                        (IndexType.IVF_SQ8, {"nlist": 128})):
        ok(create_index(s, name, int(kind), build))
        assert describe_index(s, name) == (int(kind), build)
        assert info(s, name)["partitions"][0]["segments"][0]["index_name"] == INDEX_NAMES[kind]
        ids, dist = search_ok(s, name, queries, K, {"nprobe": 1})
        here = _build_here(Case(kind, MetricType.L2, build), base)
        want_ids, want_dist = search_here(here, kind, queries, {"nprobe": 1}, none)
        np.testing.assert_array_equal(ids, want_ids, err_msg=f"{kind.name} {build}")
        np.testing.assert_array_equal(dist, want_dist, err_msg=f"{kind.name} {build}")
        results.append(ids)
    assert not np.array_equal(results[0], results[1]), "nlist 16 -> 128 did not change the nprobe=1 results"
