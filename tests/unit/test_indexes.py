"""Per-segment index kinds: recall against a numpy oracle, equality with the same faiss / annoy index
built directly, deleted rows, save/load round trips and tiny segments.

Recall is tie-tolerant: a returned row counts when its exact distance is at least as good as the
k-th best live distance, so integer (binary) distances with many ties do not make the test flaky.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from coordinator.errors import IllegalIndexType, StorageError
from coordinator.model import IndexType, MetricType
from coordinator.topk import NO_ID
from node import indexes
from node.indexes import INDEX_KINDS, build_index, load_index
from node.params import SearchParams
from tests.support.faiss_threads import one_faiss_thread
from tests.support.segment_index_cases import (
    CASES,
    DIM,
    FLOAT_CASES,
    FLOAT_QUERIES,
    FLOAT_ROWS,
    IDS,
    NQ,
    ROWS,
    Case,
    K,
    built,
    check_topk,
    data,
    direct_search,
    exact_distances,
    live_mask,
    recall,
)


@pytest.fixture(autouse=True, scope="module")
def _single_thread() -> Iterator[None]:
    with one_faiss_thread(DIM):
        yield


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
