"""Per-segment index kinds: recall against a numpy oracle, equality with the same faiss / annoy index
built directly, deleted rows, save/load round trips and tiny segments.

Recall is tie-tolerant: a returned row counts when its exact distance is at least as good as the
k-th best live distance, so integer (binary) distances with many ties do not make the test flaky.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import annoy
import faiss
import numpy as np
import pytest

from coordinator.errors import IllegalIndexType, StorageError
from coordinator.model import IndexType, MetricType
from coordinator.topk import NO_ID, TopK, hole_distance
from node import indexes
from node.indexes import INDEX_KINDS, SegmentIndex, build_index, load_index
from node.kernels import LiveMask, exact_index, use_blas_from
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


@pytest.fixture(autouse=True, scope="module")
def _single_thread() -> Iterator[None]:
    """One OpenMP thread (deterministic faiss builds) and a fixed BLAS switch point for DIM."""
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    use_blas_from(DIM)
    yield
    faiss.omp_set_num_threads(threads)


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


# -- tests ----------------------------------------------------------------------------------------


def test_registry_covers_every_served_index_type() -> None:
    assert set(INDEX_KINDS) == set(IndexType) - {IndexType.IVF_SQ8H}
    for kind, impl in INDEX_KINDS.items():
        assert impl.kind is kind


@pytest.mark.parametrize(
    ("kind", "metric"),
    [
        (IndexType.IVF_SQ8H, MetricType.L2),
        (IndexType.HNSW, MetricType.HAMMING),
        (IndexType.IVF_PQ, MetricType.JACCARD),
        (IndexType.IVF_FLAT, MetricType.SUBSTRUCTURE),
        (IndexType.IVF_FLAT, MetricType.SUPERSTRUCTURE),
    ],
)
def test_unsupported_combinations_are_refused(kind: IndexType, metric: MetricType) -> None:
    rows, _ = data(metric)
    with pytest.raises(IllegalIndexType):
        build_index(kind, rows, metric, {"nlist": 4, "m": 4, "M": 8, "efConstruction": 8})


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_recall_against_exact_oracle(case: Case) -> None:
    _, queries = data(case.metric)
    live = live_mask()
    result = built(case).search(queries, K, live, case.search)
    check_topk(result, NQ, K, ROWS, case.metric, live)
    assert (result.ids != NO_ID).all()
    assert recall(result, case.metric, live) >= case.floor
    if not case.quantized:
        ref = exact_distances(case.metric)
        np.testing.assert_allclose(
            result.distances, np.take_along_axis(ref, result.ids, axis=1), rtol=1e-4, atol=1e-3
        )


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_identical_to_the_same_index_built_directly(case: Case) -> None:
    _, queries = data(case.metric)
    ours = built(case).search(queries, K, live_mask(), case.search)
    ids, dist = direct_search(case, case.search)
    same = np.ones(NQ, dtype=bool)
    if case.kind is IndexType.RNSG:
        # faiss' NSG can list a row twice with inner product; the wrapper drops the repeat and fills up.
        same = np.array([len(set(row.tolist())) == K for row in ids])
        assert same.sum() >= NQ - 3
    np.testing.assert_array_equal(ours.ids[same], ids[same])
    np.testing.assert_allclose(ours.distances[same], dist[same], rtol=1e-6, atol=1e-6)


def deleted_rows(how: str) -> np.ndarray:
    """``few``: the 3 best rows of every query (oversampling path); ``many``: 2,600 of 3,000 rows."""
    if how == "few":
        best = np.argsort(exact_distances(MetricType.L2), axis=1)[:, :3]
        best_ip = np.argsort(-exact_distances(MetricType.IP), axis=1)[:, :3]
        best_bin = np.argsort(exact_distances(MetricType.HAMMING), axis=1, kind="stable")[:, :3]
        return np.unique(np.concatenate([best.ravel(), best_ip.ravel(), best_bin.ravel()]))
    return np.sort(np.random.default_rng(3).choice(ROWS, size=2600, replace=False))


@pytest.mark.parametrize("how", ["few", "many"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_deleted_rows_are_never_returned(case: Case, how: str) -> None:
    _, queries = data(case.metric)
    deleted = deleted_rows(how)
    assert (how == "few") == (deleted.size <= 2048)  # the two delete paths of the kernels
    live = live_mask(deleted)
    result = built(case).search(queries, K, live, case.exact)
    check_topk(result, NQ, K, ROWS, case.metric, live)
    assert (result.ids != NO_ID).all(), "fewer than k live rows although many exist"
    assert recall(result, case.metric, live) >= case.exact_floor
    # With typical parameters too: never a deleted row, whatever is found.
    check_topk(built(case).search(queries, K, live, case.search), NQ, K, ROWS, case.metric, live)


IVF_CASES = [c for c in CASES if c.kind in (IndexType.IVF_FLAT, IndexType.IVF_SQ8, IndexType.IVF_PQ)
             and c.metric not in (MetricType.JACCARD, MetricType.TANIMOTO)]


@pytest.mark.parametrize("how", ["few", "many"])
@pytest.mark.parametrize("case", IVF_CASES, ids=[c.name for c in IVF_CASES])
def test_ivf_deletes_match_an_index_with_the_rows_removed(case: Case, how: str) -> None:
    _, queries = data(case.metric)
    deleted = deleted_rows(how)
    ours = built(case).search(queries, K, live_mask(deleted), case.search)
    ids, dist = direct_search(case, case.search, deleted)
    np.testing.assert_allclose(ours.distances, dist, rtol=1e-6, atol=1e-6)
    if not case.metric.is_binary:  # integer Hamming distances tie: ids may come in another order
        np.testing.assert_array_equal(ours.ids, ids)


def test_fewer_live_rows_than_k_gives_holes_at_the_end() -> None:
    for case in CASES:
        _, queries = data(case.metric)
        deleted = np.delete(np.arange(ROWS), np.arange(0, ROWS, 600))  # 5 live rows
        live = live_mask(deleted)
        result = built(case).search(queries[:5], K, live, case.exact)
        check_topk(result, 5, K, ROWS, case.metric, live)
        assert ((result.ids != NO_ID).sum(axis=1) == 5).all(), case.name


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_save_load_round_trip(case: Case, tmp_path: Path) -> None:
    rows, queries = data(case.metric)
    index = built(case)
    path = tmp_path / "segment.idx"
    index.save(path)
    assert path.exists()
    loaded = load_index(case.kind, path, rows, case.metric, case.build)
    assert loaded.kind is case.kind and loaded.metric is case.metric
    assert dict(loaded.effective_params) == dict(index.effective_params)
    assert loaded.nbytes > 0
    for live in (live_mask(), live_mask(deleted_rows("few")), live_mask(deleted_rows("many"))):
        for params in (case.search, case.exact):
            a = index.search(queries, K, live, params)
            b = loaded.search(queries, K, live, params)
            np.testing.assert_array_equal(a.ids, b.ids)
            np.testing.assert_array_equal(a.distances, b.distances)


def test_load_refuses_a_file_of_another_kind_or_segment(tmp_path: Path) -> None:
    case = next(c for c in CASES if c.kind is IndexType.IVF_FLAT and c.metric is MetricType.L2)
    path = tmp_path / "ivf.idx"
    built(case).save(path)
    with pytest.raises(StorageError):
        load_index(IndexType.HNSW, path, FLOAT_ROWS, MetricType.L2, {"M": 16, "efConstruction": 64})
    with pytest.raises(StorageError):
        load_index(IndexType.IVF_FLAT, path, FLOAT_ROWS[:100], MetricType.L2, case.build)
    with pytest.raises(StorageError):
        load_index(IndexType.IVF_FLAT, path, FLOAT_ROWS, MetricType.IP, case.build)


TINY_BUILD: dict[IndexType, dict[str, Any]] = {
    IndexType.FLAT: {},
    IndexType.IVF_FLAT: {"nlist": 1024},
    IndexType.IVF_SQ8: {"nlist": 1024},
    IndexType.IVF_PQ: {"nlist": 1024, "m": 8, "nbits": 8},
    IndexType.HNSW: {"M": 16, "efConstruction": 40},
    IndexType.RNSG: {"search_length": 300, "out_degree": 300, "candidate_pool_size": 1000, "knng": 300},
    IndexType.ANNOY: {"n_trees": 4},
}
TINY_SEARCH = SearchParams(nprobe=65536, ef=32768, search_k=-1, search_length=300)  # sees every row
TINY_NARROW = SearchParams(nprobe=1, ef=1, search_k=1, search_length=10)
TINY_CASES = [(c.kind, c.metric) for c in CASES]


@pytest.mark.parametrize("rows", [1, 10, 100])
@pytest.mark.parametrize(("kind", "metric"), TINY_CASES, ids=[f"{k.name}-{m.name}" for k, m in TINY_CASES])
def test_tiny_segments_build_search_and_reload(kind: IndexType, metric: MetricType, rows: int, tmp_path: Path) -> None:
    vectors, queries = data(metric)
    vectors = np.ascontiguousarray(vectors[:rows])
    index = build_index(kind, vectors, metric, TINY_BUILD[kind])
    deleted = np.array([0], dtype=np.int64) if rows > 1 else None
    path = tmp_path / "tiny.idx"
    index.save(path)
    loaded = load_index(kind, path, vectors, metric, TINY_BUILD[kind])
    for live in (live_mask(rows=rows), live_mask(deleted, rows=rows)):
        for k in (1, K, 2 * rows + 1):
            result = index.search(queries[:3], k, live, TINY_SEARCH)
            check_topk(result, 3, k, rows, metric, live)
            assert ((result.ids != NO_ID).sum(axis=1) == min(k, live.live)).all()
            again = loaded.search(queries[:3], k, live, TINY_SEARCH)
            np.testing.assert_array_equal(again.ids, result.ids)
            check_topk(index.search(queries[:3], k, live, TINY_NARROW), 3, k, rows, metric, live)


@pytest.mark.parametrize("rows", [1, 2, 10, 38, 39, 100, 1000])
def test_effective_parameters_of_small_segments(rows: int) -> None:
    vectors = np.ascontiguousarray(FLOAT_ROWS[:rows])
    ivf = build_index(IndexType.IVF_FLAT, vectors, MetricType.L2, {"nlist": 1024})
    assert ivf.effective_params == {"nlist": max(1, rows // 39)}
    pq = build_index(IndexType.IVF_PQ, vectors, MetricType.L2, {"nlist": 4, "m": 4, "nbits": 8})
    nbits = pq.effective_params["nbits"]
    assert nbits == (1 if rows < 4 else min(8, int(np.log2(rows))))
    assert pq.effective_params["m"] == 4 and pq.effective_params["nlist"] == min(4, max(1, rows // 39))
    nsg = build_index(IndexType.RNSG, vectors, MetricType.L2, TINY_BUILD[IndexType.RNSG])
    if rows < indexes.NSG_MIN_ROWS:
        assert nsg.effective_params == {}  # exact flat fallback
    else:
        assert nsg.effective_params == {
            "search_length": min(300, rows), "out_degree": 300, "candidate_pool_size": 1000, "knng": min(300, rows - 1),
        }


def test_training_sample_is_capped_and_deterministic() -> None:
    # nlist=4 trains on 256 * 4 = 1024 sampled rows of the 3000.
    a = build_index(IndexType.IVF_FLAT, FLOAT_ROWS, MetricType.L2, {"nlist": 4})
    b = build_index(IndexType.IVF_FLAT, FLOAT_ROWS, MetricType.L2, {"nlist": 4})
    live = live_mask()
    ra = a.search(FLOAT_QUERIES, K, live, SearchParams(nprobe=1))
    rb = b.search(FLOAT_QUERIES, K, live, SearchParams(nprobe=1))
    np.testing.assert_array_equal(ra.ids, rb.ids)
    assert recall(ra, MetricType.L2, live) >= 0.5


def test_missing_search_parameters_fall_back_to_defaults() -> None:
    """A segment built with another index type than the collection's current one gets defaults."""
    for case in FLOAT_CASES:
        result = built(case).search(FLOAT_QUERIES, K, live_mask(), SearchParams())
        check_topk(result, NQ, K, ROWS, case.metric, live_mask())
        assert (result.ids != NO_ID).all(), case.name
