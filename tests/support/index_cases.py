"""The cases and data of the index tests (tests/test_node_indexes.py, tests/test_node_index_rules.py): every
index type x metric with its build and search parameters and recall floors, clustered float and binary rows,
an exact-oracle recall, and the same index built and searched in this process under the node's conditions.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import faiss
import numpy as np

from coordinator.model import IndexType, MetricType
from milvus_wire import milvus_pb2
from node.indexes import SegmentIndex, build_index
from node.kernels import LiveMask, use_blas_from
from node.params import search_params
from tests.support.node_rpcs import cname
from tests.support.requests import (
    NO_ID,
    cmd,
    exact_distances,
    extra_params,
    ok,
    search,
)

DIM = 32  # every float collection of the index tests (the node's BLAS threshold follows it, see build_here)
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


def build_here(case: Case, rows: np.ndarray) -> SegmentIndex:
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


def search_here(index: SegmentIndex, kind: IndexType, queries: np.ndarray, params: Mapping[str, Any],
                live: LiveMask) -> tuple[np.ndarray, np.ndarray]:
    """Search an in-process index as a node search thread does (one OpenMP thread, same BLAS threshold)."""
    faiss.omp_set_num_threads(1)
    use_blas_from(DIM)
    res = index.search(queries, K, live, search_params(kind, params, K))
    return res.ids, res.distances
