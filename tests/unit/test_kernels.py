"""Exact kernels of every metric against a numpy oracle written from the metric definitions.

Comparison is tie-tolerant in the manner of faiss ``contrib.evaluation.check_ref_knn_with_draws``:
distance lists are compared with a tolerance, and ids only where the distance is not tied.
"""

from __future__ import annotations

import numpy as np
import pytest

from coordinator.model import MetricType
from coordinator.topk import NO_ID, TopK
from node import kernels
from node.kernels import LiveMask, exact_index

BINARY = [m for m in MetricType if m.is_binary]
RTOL = 1e-5
ATOL = 1e-4


def popcount(a: np.ndarray) -> np.ndarray:
    return np.unpackbits(a, axis=-1).sum(axis=-1).astype(np.float64)


def oracle(vectors: np.ndarray, queries: np.ndarray, metric: MetricType) -> np.ndarray:
    """(nq, rows) distances from the definitions; NaN where the row is not a candidate at all."""
    if metric is MetricType.L2:
        diff = queries[:, None, :].astype(np.float64) - vectors[None, :, :].astype(np.float64)
        return (diff**2).sum(axis=2)
    if metric is MetricType.IP:
        return queries.astype(np.float64) @ vectors.astype(np.float64).T
    q = queries[:, None, :]
    r = vectors[None, :, :]
    inter = popcount(q & r)
    union = popcount(q | r)
    if metric is MetricType.HAMMING:
        return popcount(q ^ r)
    if metric is MetricType.JACCARD:
        out = np.zeros_like(inter)
        np.divide(inter, union, out=out, where=union > 0)
        return np.where(union > 0, 1.0 - out, 0.0)
    if metric is MetricType.TANIMOTO:
        with np.errstate(divide="ignore"):
            ratio = np.divide(inter, union, out=np.ones_like(inter), where=union > 0)
            return -np.log2(ratio)
    # Milvus 1.1 (its faiss fork, query = a, row = b): SUBSTRUCTURE keeps rows that contain the query,
    # (q & r) == q, SUPERSTRUCTURE keeps rows contained in the query, (q & r) == r. The distance of a
    # kept row is 1 - |q&r| / |smaller one|, which is 0, as the fork reports.
    if metric is MetricType.SUBSTRUCTURE:
        q_pop = popcount(np.broadcast_to(q, (*inter.shape, q.shape[2])))
        ok = ((q & r) == q).all(axis=2)
        frac = np.divide(inter, q_pop, out=np.ones_like(inter), where=q_pop > 0)
        return np.where(ok, 1.0 - frac, np.nan)
    if metric is MetricType.SUPERSTRUCTURE:
        r_pop = popcount(np.broadcast_to(r, (*inter.shape, r.shape[2])))
        ok = ((q & r) == r).all(axis=2)
        frac = np.divide(inter, r_pop, out=np.ones_like(inter), where=r_pop > 0)
        return np.where(ok, 1.0 - frac, np.nan)
    raise AssertionError(metric)


def check_against_oracle(
    result: TopK, vectors: np.ndarray, queries: np.ndarray, metric: MetricType, k: int, deleted: np.ndarray
) -> None:
    ref = oracle(vectors, queries, metric)
    rows = vectors.shape[0]
    live = np.ones(rows, dtype=bool)
    live[deleted] = False
    hib = metric.higher_is_better
    assert result.ids.dtype == np.int64
    assert result.distances.dtype == np.float32
    assert result.nq == queries.shape[0]
    assert result.k <= k
    for q in range(result.nq):
        ids = result.ids[q]
        dist = result.distances[q].astype(np.float64)
        real = ids != NO_ID
        n = int(real.sum())
        # holes only at the end
        assert real[:n].all(), ids
        got = ids[:n]
        assert len(set(got.tolist())) == n, "an offset returned twice"
        assert ((got >= 0) & (got < rows)).all()
        assert live[got].all(), "a deleted offset was returned"
        eligible = np.flatnonzero(live & ~np.isnan(ref[q]))
        assert not np.isnan(ref[q, got]).any(), "a non-matching row was returned"
        # k live results when available
        assert n == min(k, eligible.size)
        # each returned distance is that row's true distance
        np.testing.assert_allclose(dist[:n], ref[q, got], rtol=RTOL, atol=ATOL)
        # sorted best first
        head, tail = dist[: max(n - 1, 0)], dist[1:n]
        assert (tail <= head + ATOL).all() if hib else (tail >= head - ATOL).all()
        # the distance list is the best possible one
        best = np.sort(ref[q, eligible])
        if hib:
            best = best[::-1]
        np.testing.assert_allclose(dist[:n], best[:n], rtol=RTOL, atol=ATOL)
        # every row strictly better than the cut-off (beyond ties) is present
        if n:
            cut = dist[n - 1]
            margin = ATOL + RTOL * abs(cut) if np.isfinite(cut) else 0.0
            d_el = ref[q, eligible]
            must = eligible[(d_el > cut + margin) if hib else (d_el < cut - margin)]
            assert set(must.tolist()) <= set(got.tolist())


def make_data(
    metric: MetricType, rows: int, nq: int, dim: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    if not metric.is_binary:
        # small integer grid: plenty of exact ties
        vectors = rng.integers(-3, 4, size=(rows, dim)).astype(np.float32)
        queries = rng.integers(-3, 4, size=(nq, dim)).astype(np.float32)
        vectors[: rows // 4] += rng.random((rows // 4, dim), dtype=np.float32)
        return vectors, queries
    nbytes = dim // 8
    codes = rng.integers(0, 256, size=(rows, nbytes), dtype=np.uint8)
    # sparse rows and queries so structure matches happen, plus a couple of all-zero rows
    codes &= rng.integers(0, 256, size=(rows, nbytes), dtype=np.uint8)
    codes[:2] = 0
    bits = rng.integers(0, 256, size=(nq, nbytes), dtype=np.uint8)
    if nq > 1:
        bits[-1] = 0
    owner = rng.integers(0, nq, size=rows)
    if metric is MetricType.SUBSTRUCTURE:
        # about a third of the rows contain some query
        sub = rng.random(rows) < 0.34
        codes[sub] = bits[owner[sub]] | rng.integers(0, 256, size=(int(sub.sum()), nbytes), dtype=np.uint8)
    elif metric is MetricType.SUPERSTRUCTURE:
        # about a third of the rows are contained in some query
        sup = rng.random(rows) < 0.34
        codes[sup] = bits[owner[sup]] & rng.integers(0, 256, size=(int(sup.sum()), nbytes), dtype=np.uint8)
    return codes, bits


@pytest.mark.parametrize("metric", list(MetricType), ids=lambda m: m.name)
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(
    ("rows", "k", "n_deleted"),
    [
        (1, 1, 0),
        (7, 3, 0),
        (7, 20, 0),  # k above the row count
        (50, 10, 0),
        (50, 10, 5),  # oversampling path
        (50, 48, 5),  # fewer live rows than k
        (50, 10, 49),
        (50, 5, 50),  # everything deleted
        (300, 17, 120),
    ],
)
def test_exact_search_matches_oracle(metric: MetricType, seed: int, rows: int, k: int, n_deleted: int) -> None:
    rng = np.random.default_rng(seed * 1000 + rows)
    dim = 16 if metric.is_binary else 5
    vectors, queries = make_data(metric, rows, 4, dim, rng)
    deleted = rng.choice(rows, size=n_deleted, replace=False).astype(np.int64)
    live = LiveMask.build(rows, deleted)
    res = exact_index(vectors, metric).search(queries, k, live)
    check_against_oracle(res, vectors, queries, metric, k, deleted)


def test_oversampling_path_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = kernels._drop_deleted

    def spy(dist: np.ndarray, offs: np.ndarray, live: LiveMask, k: int, hib: bool) -> TopK:
        calls.append(k)
        return real(dist, offs, live, k, hib)

    monkeypatch.setattr(kernels, "_drop_deleted", spy)
    rng = np.random.default_rng(7)
    for metric in (MetricType.L2, MetricType.IP, MetricType.HAMMING):
        vectors, queries = make_data(metric, 200, 3, 32 if metric.is_binary else 6, rng)
        deleted = rng.choice(200, size=30, replace=False).astype(np.int64)
        live = LiveMask.build(200, deleted)
        res = exact_index(vectors, metric).search(queries, 12, live)
        check_against_oracle(res, vectors, queries, metric, 12, deleted)
        assert live._selector is None
    assert calls == [12, 12, 12]


@pytest.mark.parametrize("metric", list(MetricType), ids=lambda m: m.name)
@pytest.mark.parametrize(("rows", "n_deleted", "k"), [(3000, 2049, 10), (3000, 2995, 10), (2500, 2500, 3)])
def test_selector_path(metric: MetricType, rows: int, n_deleted: int, k: int) -> None:
    rng = np.random.default_rng(rows + n_deleted)
    vectors, queries = make_data(metric, rows, 3, 16 if metric.is_binary else 4, rng)
    deleted = rng.choice(rows, size=n_deleted, replace=False).astype(np.int64)
    live = LiveMask.build(rows, deleted)
    res = exact_index(vectors, metric).search(queries, k, live)
    check_against_oracle(res, vectors, queries, metric, k, deleted)
    if metric in (MetricType.L2, MetricType.IP, MetricType.HAMMING):
        assert live._selector is not None  # the faiss ID selector was used


@pytest.mark.parametrize(
    "metric", [MetricType.JACCARD, MetricType.SUBSTRUCTURE, MetricType.SUPERSTRUCTURE], ids=lambda m: m.name
)
def test_binary_kernel_in_blocks(metric: MetricType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kernels, "_BINARY_BLOCK_BYTES", 5 * 4 * 2)  # 5 rows per block for 4 queries
    rng = np.random.default_rng(11)
    vectors, queries = make_data(metric, 37, 4, 16, rng)
    deleted = np.array([0, 3, 5, 6, 36], dtype=np.int64)
    res = exact_index(vectors, metric).search(queries, 9, LiveMask.build(37, deleted))
    check_against_oracle(res, vectors, queries, metric, 9, deleted)


FLOAT = [MetricType.L2, MetricType.IP]
PAIRS = [(c, r) for kind in (FLOAT, BINARY) for c in kind for r in kind if c is not r]


@pytest.mark.parametrize(("collection", "requested"), PAIRS, ids=lambda m: m.name)
@pytest.mark.parametrize(("rows", "k", "n_deleted"), [(60, 10, 0), (60, 10, 7), (60, 80, 7), (3000, 10, 2995)])
def test_a_search_may_ask_for_another_metric_of_the_same_kind(collection: MetricType, requested: MetricType,
                                                              rows: int, k: int, n_deleted: int) -> None:
    """Milvus 1.1's search-time ``metric_type`` on IDMAP / BIN_IDMAP: rows stored for one metric are searched
    exactly under another (oversampled or selector deletes alike); the collection's own search is unchanged."""
    rng = np.random.default_rng(rows * 31 + n_deleted + int(collection) * 7 + int(requested))
    vectors, queries = make_data(requested, rows, 4, 32 if collection.is_binary else 6, rng)
    deleted = rng.choice(rows, size=n_deleted, replace=False).astype(np.int64)
    flat = exact_index(vectors, collection)
    res = flat.search(queries, k, LiveMask.build(rows, deleted), requested)
    check_against_oracle(res, vectors, queries, requested, k, deleted)
    own = flat.search(queries, k, LiveMask.build(rows, deleted))
    check_against_oracle(own, vectors, queries, collection, k, deleted)


def test_an_l2_index_searched_with_ip_allocates_no_copy_of_its_rows() -> None:
    vectors = np.random.default_rng(1).standard_normal((50, 4)).astype(np.float32)
    flat = exact_index(vectors, MetricType.L2)
    assert isinstance(flat, kernels.FloatFlat)
    rows = flat.rows()
    np.testing.assert_array_equal(rows, vectors)
    assert flat.rows() is rows  # the index's own copy, handed out as it is
    assert not np.shares_memory(rows, vectors)


def test_definitions_on_hand_made_bits() -> None:
    q = np.array([[0b1111_0000]], dtype=np.uint8)
    rows = np.array([[0b1111_0000], [0b1100_0000], [0b1111_1100], [0b0000_1111], [0]], dtype=np.uint8)
    none = LiveMask.build(5, np.zeros(0, dtype=np.int64))

    def search(metric: MetricType) -> dict[int, float]:
        res = exact_index(rows, metric).search(q, 5, none)
        return {int(i): float(d) for i, d in zip(res.ids[0], res.distances[0], strict=True) if i != NO_ID}

    assert search(MetricType.HAMMING) == {0: 0, 1: 2, 2: 2, 3: 8, 4: 4}
    assert search(MetricType.JACCARD) == pytest.approx({0: 0, 1: 0.5, 2: 1 / 3, 3: 1.0, 4: 1.0})
    tanimoto = search(MetricType.TANIMOTO)
    assert tanimoto[0] == 0 and tanimoto[1] == pytest.approx(1.0) and tanimoto[3] == np.inf
    # rows 0 and 2 contain the query (the query is a substructure of them)
    assert search(MetricType.SUBSTRUCTURE) == {0: 0.0, 2: 0.0}
    # rows 0, 1 and the empty row 4 are contained in the query (the query is a superstructure of them)
    assert search(MetricType.SUPERSTRUCTURE) == {0: 0.0, 1: 0.0, 4: 0.0}


def test_live_mask_build() -> None:
    mask = LiveMask.build(10, np.array([3, 1, 3, 9]))
    assert mask.deleted == 3 and mask.live == 7
    assert mask.deleted_offsets.tolist() == [1, 3, 9]
    assert mask.mask is not None and np.flatnonzero(~mask.mask).tolist() == [1, 3, 9]
    full = LiveMask.build(4, np.zeros(0, dtype=np.int64))
    assert full.mask is None and full.live == 4
