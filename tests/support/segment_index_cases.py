"""Cases, data, numpy oracle and directly built faiss / annoy references of the per-segment index tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import annoy
import faiss
import numpy as np

from coordinator.model import IndexType, MetricType
from coordinator.topk import NO_ID, TopK, hole_distance
from node import indexes
from node.indexes import SegmentIndex, build_index
from node.kernels import LiveMask, exact_index
from node.params import SearchParams
from tests.support import requests as support_requests

ROWS = 3000
DIM = 32
BYTES = 16  # 128-bit binary vectors
NQ = 40
K = 10

# -- data and oracle ------------------------------------------------------------------------------


def _float_data() -> tuple[np.ndarray, np.ndarray]:
    """A Gaussian mixture of 30 clusters; queries drawn from the same mixture."""
    rng = np.random.default_rng(7)
    centers = rng.standard_normal((30, DIM)).astype(np.float32) * 3
    rows = centers[rng.integers(0, 30, ROWS)] + rng.standard_normal((ROWS, DIM))
    queries = centers[rng.integers(0, 30, NQ)] + rng.standard_normal((NQ, DIM))
    return rows.astype(np.float32), queries.astype(np.float32)


def _binary_data() -> tuple[np.ndarray, np.ndarray]:
    """20 random bit patterns, each row one of them with 8% of its bits flipped."""
    rng = np.random.default_rng(11)
    centers = rng.random((20, BYTES * 8)) < 0.5

    def noisy(count: int) -> np.ndarray:
        bits = centers[rng.integers(0, 20, count)] ^ (rng.random((count, BYTES * 8)) < 0.08)
        return np.packbits(bits, axis=1)

    return noisy(ROWS), noisy(NQ)


FLOAT_ROWS, FLOAT_QUERIES = _float_data()
BINARY_ROWS, BINARY_QUERIES = _binary_data()


def data(metric: MetricType) -> tuple[np.ndarray, np.ndarray]:
    return (BINARY_ROWS, BINARY_QUERIES) if metric.is_binary else (FLOAT_ROWS, FLOAT_QUERIES)


def oracle(rows: np.ndarray, queries: np.ndarray, metric: MetricType) -> np.ndarray:
    """(nq, rows) exact distances from the metric definitions (float64)."""
    if metric in (MetricType.SUBSTRUCTURE, MetricType.SUPERSTRUCTURE):
        raise AssertionError(metric)
    return support_requests.exact_distances(rows, queries, int(metric))[0]


_ORACLES: dict[MetricType, np.ndarray] = {}


def exact_distances(metric: MetricType) -> np.ndarray:
    if metric not in _ORACLES:
        _ORACLES[metric] = oracle(*data(metric), metric)
    return _ORACLES[metric]


def live_mask(deleted: np.ndarray | None = None, rows: int = ROWS) -> LiveMask:
    return LiveMask.build(rows, np.zeros(0, dtype=np.int64) if deleted is None else deleted)


def recall(result: TopK, metric: MetricType, live: LiveMask, k: int = K) -> float:
    ref = exact_distances(metric).copy()
    hib = metric.higher_is_better
    if live.mask is not None:
        ref[:, ~live.mask] = -np.inf if hib else np.inf
    hits = 0
    for q in range(result.nq):
        order = np.sort(ref[q])[::-1] if hib else np.sort(ref[q])
        kth = order[min(k, live.live) - 1]
        tol = 1e-4 * max(1.0, abs(kth))
        got = result.ids[q][result.ids[q] != NO_ID]
        hits += int((ref[q, got] >= kth - tol).sum() if hib else (ref[q, got] <= kth + tol).sum())
    return hits / (result.nq * min(k, live.live))


def check_topk(result: TopK, nq: int, k: int, rows: int, metric: MetricType, live: LiveMask) -> None:
    """Shapes, dtypes, no deleted or duplicate rows, holes only at the end, best first."""
    hib = metric.higher_is_better
    assert result.ids.shape == (nq, k) and result.distances.shape == (nq, k)
    assert result.ids.dtype == np.int64 and result.distances.dtype == np.float32
    for q in range(nq):
        ids, dist = result.ids[q], result.distances[q]
        real = ids != NO_ID
        n = int(real.sum())
        assert real[:n].all(), f"holes before results: {ids}"
        assert np.all(dist[n:] == np.float32(hole_distance(hib)))
        got = ids[:n]
        assert np.all((got >= 0) & (got < rows))
        assert len(set(got.tolist())) == n, f"duplicate rows: {got}"
        if live.mask is not None:
            assert live.mask[got].all(), f"deleted rows returned: {got[~live.mask[got]]}"
        steps = np.diff(dist[:n].astype(np.float64))
        assert np.all(steps <= 1e-6) if hib else np.all(steps >= -1e-6), f"not sorted: {dist[:n]}"


# -- cases ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    kind: IndexType
    metric: MetricType
    build: dict[str, Any] = field(hash=False)
    search: SearchParams  # typical parameters, checked against ``floor``
    exact: SearchParams  # parameters that see (nearly) every row, for the delete checks
    floor: float  # recall@10 floor with ``search``
    exact_floor: float  # recall@10 floor with ``exact``
    quantized: bool = False  # distances are approximations (SQ8, PQ)

    @property
    def name(self) -> str:
        return f"{self.kind.name}-{self.metric.name}"


NSG_BUILD = {"search_length": 100, "out_degree": 30, "candidate_pool_size": 100, "knng": 40}
FLOAT_CASES = [
    case
    for metric in (MetricType.L2, MetricType.IP)
    for case in (
        Case(IndexType.FLAT, metric, {}, SearchParams(), SearchParams(), 0.999, 0.999),
        Case(IndexType.IVF_FLAT, metric, {"nlist": 32}, SearchParams(nprobe=8), SearchParams(nprobe=32), 0.95, 0.999),
        Case(IndexType.IVF_SQ8, metric, {"nlist": 32}, SearchParams(nprobe=8), SearchParams(nprobe=32), 0.9, 0.95,
             quantized=True),
        Case(IndexType.IVF_PQ, metric, {"nlist": 16, "m": 8, "nbits": 8}, SearchParams(nprobe=8),
             SearchParams(nprobe=16), 0.45, 0.45, quantized=True),
        Case(IndexType.HNSW, metric, {"M": 16, "efConstruction": 64}, SearchParams(ef=64), SearchParams(ef=512),
             0.95, 0.97),
        Case(IndexType.RNSG, metric, NSG_BUILD, SearchParams(search_length=40), SearchParams(search_length=300),
             0.9, 0.97),
        Case(IndexType.ANNOY, metric, {"n_trees": 8}, SearchParams(search_k=2000), SearchParams(search_k=100_000),
             0.9, 0.999),
    )
]
BINARY_CASES = [
    *(
        Case(IndexType.FLAT, metric, {}, SearchParams(), SearchParams(), 0.999, 0.999)
        for metric in (MetricType.HAMMING, MetricType.JACCARD, MetricType.TANIMOTO)
    ),
    *(
        Case(IndexType.IVF_FLAT, metric, {"nlist": 16}, SearchParams(nprobe=4), SearchParams(nprobe=16), 0.85, 0.999)
        for metric in (MetricType.HAMMING, MetricType.JACCARD, MetricType.TANIMOTO)
    ),
]
CASES = FLOAT_CASES + BINARY_CASES
IDS = [c.name for c in CASES]


_BUILT: dict[str, SegmentIndex] = {}


def built(case: Case) -> SegmentIndex:
    if case.name not in _BUILT:
        rows, _ = data(case.metric)
        _BUILT[case.name] = build_index(case.kind, rows, case.metric, case.build)
    return _BUILT[case.name]


# -- the same index built directly ----------------------------------------------------------------


def faiss_metric(metric: MetricType) -> int:
    return int(faiss.METRIC_INNER_PRODUCT if metric is MetricType.IP else faiss.METRIC_L2)


def direct_faiss(case: Case, rows: np.ndarray) -> Any:
    """The faiss index the wrapper should have built, from the same parameters, without it."""
    fm = faiss_metric(case.metric)
    ff: Any = faiss
    if case.metric.is_binary:
        binary = faiss.IndexBinaryIVF(faiss.IndexBinaryFlat(BYTES * 8), BYTES * 8, case.build["nlist"])
        binary.train(rows)
        binary.add(rows)
        return binary
    if case.kind is IndexType.HNSW:
        hnsw = faiss.IndexHNSWFlat(DIM, case.build["M"], fm)
        hnsw.hnsw.efConstruction = case.build["efConstruction"]
        hnsw.add(rows)
        return hnsw
    if case.kind is IndexType.RNSG:
        nsg = ff.IndexNSGFlat(DIM, case.build["out_degree"], fm)
        nsg.build_type = 0  # faiss' own brute-force knn graph
        nsg.GK = case.build["knng"]
        nsg.nsg.L = case.build["search_length"]
        nsg.nsg.C = case.build["candidate_pool_size"]
        nsg.nsg.search_L = indexes.DEFAULT_SEARCH_LENGTH
        nsg.add(rows)
        return nsg
    quantizer = faiss.IndexFlat(DIM, fm)
    nlist = case.build["nlist"]
    ivf: Any
    if case.kind is IndexType.IVF_FLAT:
        ivf = faiss.IndexIVFFlat(quantizer, DIM, nlist, fm)
    elif case.kind is IndexType.IVF_SQ8:
        ivf = faiss.IndexIVFScalarQuantizer(quantizer, DIM, nlist, faiss.ScalarQuantizer.QT_8bit, fm)
    else:
        ivf = faiss.IndexIVFPQ(quantizer, DIM, nlist, case.build["m"], case.build["nbits"], fm)
    ivf.train(rows)
    ivf.add(rows)
    return ivf


def faiss_params(case: Case, params: SearchParams) -> Any:
    if case.kind is IndexType.HNSW:
        ff: Any = faiss  # the stubs bundled with faiss-cpu lack SearchParametersHNSW
        sp = ff.SearchParametersHNSW()
        sp.efSearch = params.ef
        return sp
    ivf = faiss.SearchParametersIVF()
    assert params.nprobe is not None
    ivf.nprobe = params.nprobe
    return ivf


def direct_annoy(case: Case, rows: np.ndarray) -> annoy.AnnoyIndex:
    index = annoy.AnnoyIndex(DIM, "dot" if case.metric is MetricType.IP else "euclidean")
    index.set_seed(indexes.ANNOY_SEED)
    for offset, row in enumerate(rows):
        index.add_item(offset, row)
    index.build(case.build["n_trees"], n_jobs=1)
    return index


def candidate_reference(index: Any, rows: np.ndarray, queries: np.ndarray, metric: MetricType, nprobe: int,
                        k: int) -> tuple[np.ndarray, np.ndarray]:
    """JACCARD/TANIMOTO over the rows of the nprobe lists closest to each query, from the definitions."""
    _, probed = index.quantizer.search(queries, nprobe)
    invlists = index.invlists
    members = []
    for no in range(index.nlist):
        size = invlists.list_size(no)
        members.append(faiss.rev_swig_ptr(invlists.get_ids(no), size).copy() if size else np.zeros(0, np.int64))
    ids = np.full((len(queries), k), NO_ID, dtype=np.int64)
    dist = np.full((len(queries), k), hole_distance(False), dtype=np.float32)
    for q in range(len(queries)):
        cand = np.concatenate([members[no] for no in probed[q] if no >= 0])
        d = oracle(rows[cand], queries[q : q + 1], metric)[0].astype(np.float32)
        best = np.lexsort((cand, d))[:k]
        ids[q, : best.size] = cand[best]
        dist[q, : best.size] = d[best]
    return ids, dist


def direct_search(case: Case, params: SearchParams, deleted: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Results of the same index built directly; deleted rows are removed from it where it can."""
    rows, queries = data(case.metric)
    if case.kind is IndexType.FLAT:
        res = exact_index(rows, case.metric).search(queries, K, live_mask(deleted))
        return res.ids, res.distances
    if case.kind is IndexType.ANNOY:
        assert deleted is None
        ann = direct_annoy(case, rows)
        ids = np.full((NQ, K), NO_ID, dtype=np.int64)
        dist = np.full((NQ, K), hole_distance(case.metric.higher_is_better), dtype=np.float32)
        for q in range(NQ):
            got, d = ann.get_nns_by_vector(queries[q], K, search_k=params.search_k or -1, include_distances=True)
            ids[q, : len(got)] = got
            dist[q, : len(got)] = np.square(d) if case.metric is MetricType.L2 else d
        return ids, dist
    index = direct_faiss(case, rows)
    if deleted is not None:
        index.remove_ids(deleted.astype(np.int64))
    if case.metric in (MetricType.JACCARD, MetricType.TANIMOTO):
        assert deleted is None and params.nprobe is not None
        return candidate_reference(index, rows, queries, case.metric, params.nprobe, K)
    if case.kind is IndexType.RNSG:
        assert deleted is None and params.search_length is not None
        index.nsg.search_L = params.search_length
        d, i = index.search(queries, K)
        return i, d
    d, i = index.search(queries, K, params=faiss_params(case, params))
    return i, d.astype(np.float32)
