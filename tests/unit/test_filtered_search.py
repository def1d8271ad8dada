"""Filtered search of one segment (node/filtered_search.py) for every index kind, over in-memory rows, a scalar
column and the filter model of coordinator/hybrid, against a brute-force oracle over the passing rows.

The oracle computes every distance in float64 from the metric's definition. Checks are tie-tolerant: a returned row
counts when its exact distance is at least as good as the k-th best passing distance.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from coordinator.hybrid import evaluate as evaluate_module
from coordinator.hybrid.evaluate import evaluate
from coordinator.hybrid.tree import Bool, Comparison, Range, Term
from coordinator.hybrid.types import CompareOp
from coordinator.model import IndexType, MetricType
from coordinator.topk import NO_ID, TopK, hole_distance
from node import kernels
from node.filtered_search import segment_search
from node.index_base import SegmentIndex
from node.indexes import build_index
from node.kernels import LiveMask, exact_rows
from node.params import SearchParams
from tests.support.faiss_threads import one_faiss_thread
from tests.support.requests import exact_distances

ROWS = 5000
DIM = 32
NBYTES = 16
NQ = 20
K = 10
SPREAD = 10_000  # column "a" is uniform in [0, SPREAD): "a < t" passes t / SPREAD of the rows


def _data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(5)
    centers = rng.standard_normal((40, DIM)).astype(np.float32) * 3
    rows = (centers[rng.integers(0, 40, ROWS)] + rng.standard_normal((ROWS, DIM))).astype(np.float32)
    queries = (centers[rng.integers(0, 40, NQ)] + rng.standard_normal((NQ, DIM))).astype(np.float32)
    patterns = rng.random((25, NBYTES * 8)) < 0.5

    def noisy(count: int) -> np.ndarray:
        return np.packbits(patterns[rng.integers(0, 25, count)] ^ (rng.random((count, NBYTES * 8)) < 0.08), axis=1)

    columns: dict[str, np.ndarray] = {
        "a": rng.integers(0, SPREAD, ROWS).astype(np.int64),
        "c": rng.integers(0, 5, ROWS).astype(np.int8),
        "x": rng.random(ROWS).astype(np.float32),
    }
    return rows, queries, noisy(ROWS), noisy(NQ), columns


FLOAT_ROWS, FLOAT_QUERIES, BINARY_ROWS, BINARY_QUERIES, COLUMNS = _data()


def below(threshold: int) -> Bool:
    return Bool(must=(Range("a", (Comparison(CompareOp.LT, threshold),)),))


SELECTIVITIES = {"100%": SPREAD, "50%": SPREAD // 2, "10%": SPREAD // 10, "1%": SPREAD // 100, "0.1%": SPREAD // 1000}


def distances(rows: np.ndarray, queries: np.ndarray, metric: MetricType) -> np.ndarray:
    """(nq, rows) distances from the definitions, float64; NaN where SUB/SUPERSTRUCTURE do not match."""
    exact, candidates = exact_distances(rows, queries, int(metric))
    return np.where(candidates, exact, np.nan)


_DISTANCES: dict[MetricType, np.ndarray] = {}


def oracle(metric: MetricType) -> np.ndarray:
    if metric not in _DISTANCES:
        rows, queries = data(metric)
        _DISTANCES[metric] = distances(rows, queries, metric)
    return _DISTANCES[metric]


def data(metric: MetricType) -> tuple[np.ndarray, np.ndarray]:
    return (BINARY_ROWS, BINARY_QUERIES) if metric.is_binary else (FLOAT_ROWS, FLOAT_QUERIES)


def passing_mask(node: Bool, deleted: np.ndarray | None = None) -> LiveMask:
    mask = evaluate(node, COLUMNS, ROWS)
    if deleted is not None:
        mask[deleted] = False
    return LiveMask.of(mask)


def allowed(passing: LiveMask) -> np.ndarray:
    return np.ones(ROWS, dtype=bool) if passing.mask is None else passing.mask


def reference(metric: MetricType, passing: LiveMask, queries: slice = slice(None)) -> np.ndarray:
    """Oracle distances with every row outside ``passing`` (or not matching) set to the worst value."""
    ref = oracle(metric)[queries].copy()
    worst = -np.inf if metric.higher_is_better else np.inf
    ref[:, ~allowed(passing)] = worst
    ref[np.isnan(ref)] = worst
    return ref


def check(result: TopK, metric: MetricType, passing: LiveMask, k: int, exact: bool,
          queries: slice = slice(None)) -> float:
    """Shape, precision (every id passes), hit count min(k, candidates), order, and (``exact``) the oracle's
    distances; returns the tie-tolerant recall."""
    ref = reference(metric, passing, queries)
    hib = metric.higher_is_better
    nq = ref.shape[0]
    candidates = np.isfinite(ref).sum(axis=1)
    width = min(k, passing.live)
    assert result.ids.shape == (nq, width) and result.distances.shape == (nq, width)
    hits = 0
    for q in range(nq):
        ids, dist = result.ids[q], result.distances[q]
        n = int((ids != NO_ID).sum())
        assert (ids[:n] != NO_ID).all() and (ids[n:] == NO_ID).all(), ids
        assert np.all(dist[n:] == np.float32(hole_distance(hib)))
        got = ids[:n]
        assert allowed(passing)[got].all(), f"rows outside the filter: {got[~allowed(passing)[got]]}"
        assert len(set(got.tolist())) == n
        assert n == min(width, int(candidates[q])), (n, width, candidates[q])
        order = np.sort(ref[q])[::-1] if hib else np.sort(ref[q])
        if n == 0:
            continue
        kth = order[n - 1]
        tol = 1e-4 * max(1.0, abs(kth))
        good = ref[q, got] >= kth - tol if hib else ref[q, got] <= kth + tol
        hits += int(good.sum())
        if exact:
            assert good.all(), f"query {q}: {got} {ref[q, got]} vs k-th {kth}"
            np.testing.assert_allclose(dist[:n], ref[q, got], rtol=1e-4, atol=1e-3)
    total = sum(min(width, int(c)) for c in candidates)
    return hits / total if total else 1.0


@pytest.fixture(autouse=True, scope="module")
def _single_thread() -> Iterator[None]:
    with one_faiss_thread(DIM):
        yield


BUILDS: dict[IndexType, dict[str, Any]] = {
    IndexType.FLAT: {},
    IndexType.IVF_FLAT: {"nlist": 64},
    IndexType.IVF_SQ8: {"nlist": 64},
    IndexType.IVF_PQ: {"nlist": 32, "m": 8, "nbits": 8},
    IndexType.HNSW: {"M": 16, "efConstruction": 64},
    IndexType.RNSG: {"search_length": 60, "out_degree": 30, "candidate_pool_size": 100, "knng": 40},
    IndexType.ANNOY: {"n_trees": 8},
}
PARAMS: dict[IndexType, SearchParams] = {
    IndexType.FLAT: SearchParams(),
    IndexType.IVF_FLAT: SearchParams(nprobe=8),
    IndexType.IVF_SQ8: SearchParams(nprobe=8),
    IndexType.IVF_PQ: SearchParams(nprobe=8),
    IndexType.HNSW: SearchParams(ef=64),
    IndexType.RNSG: SearchParams(search_length=40),
    IndexType.ANNOY: SearchParams(search_k=-1),
}
_BUILT: dict[tuple[IndexType, MetricType], SegmentIndex] = {}


def built(kind: IndexType, metric: MetricType) -> SegmentIndex:
    if (kind, metric) not in _BUILT:
        _BUILT[kind, metric] = build_index(kind, data(metric)[0], metric, BUILDS[kind] or {"nlist": 32})
    return _BUILT[kind, metric]


def search(kind: IndexType, metric: MetricType, passing: LiveMask, k: int = K, nq: int = NQ,
           exact: bool = False, params: SearchParams | None = None) -> TopK:
    rows, queries = data(metric)
    dim = NBYTES * 8 if metric.is_binary else DIM
    return segment_search(built(kind, metric), lambda: rows, passing, queries[:nq], k,
                          params or PARAMS[kind], dim, exact)


@pytest.fixture
def ann_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """No exact search by size: only k or fewer passing rows go exact, every other plan uses the index."""
    monkeypatch.setattr(evaluate_module, "EXACT_DISTANCE_BUDGET", 0)
    monkeypatch.setattr(evaluate_module, "EXACT_FRACTION", 0.0)


# -- FLAT equals brute force over the passing rows -------------------------------------------------


EXACT_METRICS = [MetricType.L2, MetricType.IP, MetricType.HAMMING, MetricType.JACCARD, MetricType.TANIMOTO,
                 MetricType.SUBSTRUCTURE, MetricType.SUPERSTRUCTURE]


@pytest.mark.parametrize("metric", EXACT_METRICS, ids=lambda m: m.name)
@pytest.mark.parametrize("selectivity", list(SELECTIVITIES), ids=str)
@pytest.mark.parametrize("nq", [1, 7])
@pytest.mark.parametrize("ann", [False, True], ids=["planned", "no-size-rule"])
def test_flat_equals_brute_force_over_the_passing_rows(metric: MetricType, selectivity: str, nq: int, ann: bool,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    if ann:
        monkeypatch.setattr(evaluate_module, "EXACT_DISTANCE_BUDGET", 0)
        monkeypatch.setattr(evaluate_module, "EXACT_FRACTION", 0.0)
    passing = passing_mask(below(SELECTIVITIES[selectivity]))
    result = search(IndexType.FLAT, metric, passing, nq=nq)
    check(result, metric, passing, K, exact=True, queries=slice(0, nq))


@pytest.mark.parametrize("metric", [MetricType.L2, MetricType.IP, MetricType.JACCARD], ids=lambda m: m.name)
@pytest.mark.parametrize("k", [1, 10, 100])
def test_flat_widths_deletes_and_tiny_passing_sets(metric: MetricType, k: int) -> None:
    deleted = np.random.default_rng(3).choice(ROWS, 1500, replace=False)
    for node in (below(SPREAD // 2), below(30), Bool(must=(Term("c", (1, 3)),)), below(0)):
        passing = passing_mask(node, deleted)
        result = search(IndexType.FLAT, metric, passing, k=k)
        check(result, metric, passing, k, exact=True)
    # exactly k - 1 passing rows: every one of them, then holes
    few = np.flatnonzero(np.isin(np.arange(ROWS), deleted, invert=True))[: max(0, k - 1)]
    mask = np.zeros(ROWS, dtype=bool)
    mask[few] = True
    passing = LiveMask.of(mask)
    result = search(IndexType.FLAT, metric, passing, k=k)
    check(result, metric, passing, k, exact=True)
    assert set(result.ids[0].tolist()) - {NO_ID} == set(few.tolist())


def test_nested_trees_and_every_occur() -> None:
    node = Bool(must=(Range("x", (Comparison(CompareOp.GTE, 0.2), Comparison(CompareOp.LT, 0.9))),),
                should=(Term("c", (0, 4)), Bool(must=(below(2000),), must_not=(Term("c", (2,)),))),
                must_not=(Range("a", (Comparison(CompareOp.EQ, 17),)), Bool(should=(below(100), Term("c", (3,))))))
    passing = passing_mask(node)
    expected = ((COLUMNS["x"] >= np.float32(0.2)) & (COLUMNS["x"] < np.float32(0.9))
                & (np.isin(COLUMNS["c"], [0, 4]) | ((COLUMNS["a"] < 2000) & (COLUMNS["c"] != 2)))
                & ~(COLUMNS["a"] == 17) & ~((COLUMNS["a"] < 100) | (COLUMNS["c"] == 3)))
    assert np.array_equal(allowed(passing), expected) and 0 < passing.live < ROWS
    for kind in (IndexType.FLAT, IndexType.IVF_FLAT, IndexType.HNSW):
        check(search(kind, MetricType.L2, passing, exact=True), MetricType.L2, passing, K, exact=True)


def test_flat_honours_a_search_time_metric() -> None:
    passing = passing_mask(below(SPREAD // 2))
    for nq in (1, NQ):
        result = search(IndexType.FLAT, MetricType.L2, passing, nq=nq, params=SearchParams(metric=MetricType.IP))
        check(result, MetricType.IP, passing, K, exact=True, queries=slice(0, nq))


# -- approximate kinds -------------------------------------------------------------------------------

FLOAT_KINDS = [IndexType.IVF_FLAT, IndexType.IVF_SQ8, IndexType.IVF_PQ, IndexType.HNSW, IndexType.RNSG,
               IndexType.ANNOY]


@pytest.mark.parametrize("kind", FLOAT_KINDS, ids=lambda k: k.name)
@pytest.mark.parametrize("metric", [MetricType.L2, MetricType.IP], ids=lambda m: m.name)
@pytest.mark.parametrize("ann", [False, True], ids=["planned", "no-size-rule"])
def test_every_returned_row_passes_and_hits_are_min_k_passing(kind: IndexType, metric: MetricType, ann: bool,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    if ann:
        monkeypatch.setattr(evaluate_module, "EXACT_DISTANCE_BUDGET", 0)
        monkeypatch.setattr(evaluate_module, "EXACT_FRACTION", 0.0)
    deleted = np.random.default_rng(9).choice(ROWS, 300, replace=False)
    for threshold in SELECTIVITIES.values():
        passing = passing_mask(below(threshold), deleted)
        # exact where the planner goes exact: few rows pass, or nothing is left to the index
        exact = not ann or passing.live <= K
        check(search(kind, metric, passing), metric, passing, K, exact=exact)


@pytest.mark.parametrize("kind", [IndexType.IVF_FLAT, IndexType.HNSW], ids=lambda k: k.name)
@pytest.mark.parametrize("selectivity", list(SELECTIVITIES)[1:], ids=str)
@pytest.mark.parametrize("ann", [False, True], ids=["planned", "no-size-rule"])
def test_recall_of_ivf_and_hnsw_at_default_params(kind: IndexType, selectivity: str, ann: bool,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    if ann:
        monkeypatch.setattr(evaluate_module, "EXACT_DISTANCE_BUDGET", 0)
        monkeypatch.setattr(evaluate_module, "EXACT_FRACTION", 0.0)
    passing = passing_mask(below(SELECTIVITIES[selectivity]))
    recall = check(search(kind, MetricType.L2, passing), MetricType.L2, passing, K, exact=False)
    assert recall >= 0.95, recall
    if not ann and selectivity != "50%":
        assert recall == 1.0  # the planner searched the few passing rows exactly


@pytest.mark.parametrize("kind", [IndexType.IVF_FLAT, IndexType.HNSW, IndexType.ANNOY, IndexType.IVF_PQ],
                         ids=lambda k: k.name)
def test_exact_requested_equals_brute_force(kind: IndexType, ann_path: None) -> None:
    passing = passing_mask(below(SPREAD // 2))
    check(search(kind, MetricType.L2, passing, exact=True), MetricType.L2, passing, K, exact=True)


def test_an_anti_correlated_filter_is_exact_when_asked(ann_path: None) -> None:
    """Leave out the 50 rows nearest to every query (most rows still pass): exact search still finds the best
    passing ones."""
    near = np.argsort(oracle(MetricType.L2), axis=1)[:, :50]
    mask = np.ones(ROWS, dtype=bool)
    mask[near.ravel()] = False
    passing = LiveMask.of(mask)
    assert passing.live >= ROWS * 0.8
    for kind in (IndexType.IVF_FLAT, IndexType.HNSW):
        check(search(kind, MetricType.L2, passing, exact=True), MetricType.L2, passing, K, exact=True)


@pytest.mark.parametrize("metric", [MetricType.HAMMING, MetricType.JACCARD, MetricType.TANIMOTO],
                         ids=lambda m: m.name)
@pytest.mark.parametrize("ann", [False, True], ids=["planned", "no-size-rule"])
def test_binary_ivf(metric: MetricType, ann: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if ann:
        monkeypatch.setattr(evaluate_module, "EXACT_DISTANCE_BUDGET", 0)
        monkeypatch.setattr(evaluate_module, "EXACT_FRACTION", 0.0)
    for threshold in SELECTIVITIES.values():
        passing = passing_mask(below(threshold))
        exact = not ann or passing.live <= K
        result = segment_search(built(IndexType.IVF_FLAT, metric), lambda: BINARY_ROWS, passing, BINARY_QUERIES, K,
                                SearchParams(nprobe=4), NBYTES * 8)
        recall = check(result, metric, passing, K, exact=exact)
        assert recall >= 0.8


# -- the safety nets: rows outside the mask, short results --------------------------------------------


class _Stub:
    """An index that answers badly: one row outside the mask first, then at most one good row, then holes."""

    kind = IndexType.IVF_FLAT
    metric = MetricType.L2
    effective_params: dict[str, Any] = {"nlist": 4}
    nbytes = 0

    def __init__(self) -> None:
        self.calls = 0

    def search(self, queries: np.ndarray, k: int, live: LiveMask, params: SearchParams) -> TopK:
        self.calls += 1
        assert live.mask is not None
        outside = int(np.flatnonzero(~live.mask)[0])
        inside = int(np.flatnonzero(live.mask)[0])
        out = TopK.empty(queries.shape[0], k, False)
        out.ids[:, 0], out.distances[:, 0] = outside, 0.0
        if k > 1:
            out.ids[:, 1], out.distances[:, 1] = inside, 1.0
        return out

    def save(self, path: Any) -> None:
        raise NotImplementedError


def test_rows_outside_the_mask_are_dropped_and_short_queries_searched_exactly(ann_path: None) -> None:
    passing = passing_mask(below(SPREAD // 2))
    stub = _Stub()
    result = segment_search(stub, lambda: FLOAT_ROWS, passing, FLOAT_QUERIES, K, SearchParams(nprobe=1), DIM)
    assert stub.calls == 1
    check(result, MetricType.L2, passing, K, exact=True)


@pytest.mark.parametrize("metric", [MetricType.L2, MetricType.IP], ids=lambda m: m.name)
def test_exact_rows_in_place_and_gathered_agree_on_memory_mapped_rows(metric: MetricType, tmp_path: Any,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A few queries are answered from the rows where they lie, a batch from gathered blocks (small blocks here, so
    that several are merged): the same rows, the same distances, the oracle's."""
    np.save(tmp_path / "rows.npy", FLOAT_ROWS)
    mapped = np.load(tmp_path / "rows.npy", mmap_mode="r")
    monkeypatch.setattr(kernels, "GATHER_BLOCK_BYTES", 64 * DIM * 4)
    for mask in (allowed(passing_mask(below(SPREAD // 3))), allowed(passing_mask(below(4)))):
        offsets = np.flatnonzero(mask).astype(np.int64)
        passing = LiveMask.of(mask)
        for k in (K, 300):
            width = min(k, offsets.size)
            few = exact_rows(mapped, offsets, FLOAT_QUERIES[:3], width, metric)
            batch = exact_rows(mapped, offsets, FLOAT_QUERIES, width, metric)
            check(few, metric, passing, k, exact=True, queries=slice(0, 3))
            check(batch, metric, passing, k, exact=True)
            wider = exact_rows(mapped, offsets, FLOAT_QUERIES[:3], offsets.size + 5, metric)  # padded past the rows
            assert (wider.ids[:, offsets.size:] == NO_ID).all() and (wider.ids[:, : offsets.size] >= 0).all()
            same = few.ids == batch.ids[:3]
            assert same.mean() > 0.99  # equal up to ties
            np.testing.assert_allclose(few.distances, batch.distances[:3], rtol=1e-5, atol=1e-4)
