"""Proxy results: decoding, merging (against a single exact search) and encoding of TopKQueryResults."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coordinator.errors import ErrorCode, MilvusError
from coordinator.topk import NO_ID, TopK, hole_distance
from coordinator.wire import SUCCESS_STATUS, encode_topk
from milvus_wire import milvus_pb2, status_pb2
from mishards.results import decode_topk, merge_node_results


def exact_search(distances: np.ndarray, ids: np.ndarray, k: int, higher_is_better: bool) -> TopK:
    """What one node returns searching these rows exactly: ``min(k, rows)`` wide, best first, ties by id."""
    nq, n = distances.shape
    width = min(k, n)
    key = -distances.astype(np.float64) if higher_is_better else distances.astype(np.float64)
    order = np.lexsort((np.broadcast_to(ids, (nq, n)), key), axis=-1)[:, :width]
    return TopK(np.ascontiguousarray(ids[order]), np.ascontiguousarray(np.take_along_axis(distances, order, axis=1)))


def assert_same(a: TopK, b: TopK) -> None:
    assert a.ids.shape == b.ids.shape
    assert a.ids.dtype == np.int64 and a.distances.dtype == np.float32
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_array_equal(a.distances, b.distances)


def all_distances(queries: np.ndarray, data: np.ndarray, higher_is_better: bool) -> np.ndarray:
    if higher_is_better:
        return (queries @ data.T).astype(np.float32)
    diff = queries[:, None, :] - data[None, :, :]
    return (diff * diff).sum(axis=2, dtype=np.float32)


@st.composite
def split_searches(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, list[list[int]], int, bool, int]:
    """Distances of nq queries to n rows, a split of the rows into node parts, k, the direction, dup part."""
    nq = draw(st.integers(1, 5))
    n = draw(st.integers(1, 40))
    k = draw(st.integers(1, 16))
    higher_is_better = draw(st.booleans())
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    # Small integer coordinates make equal distances (ties) common.
    data = rng.integers(-3, 4, size=(n, 3)).astype(np.float32)
    queries = rng.integers(-3, 4, size=(nq, 3)).astype(np.float32)
    ids = rng.choice(10**12, size=n, replace=False).astype(np.int64)
    owner = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    groups = [[i for i in range(n) if owner[i] == g] for g in range(4)]
    groups = [g for g in groups if g]
    dup = draw(st.integers(-1, len(groups) - 1))  # a part a retry returned twice, or none
    return all_distances(queries, data, higher_is_better), ids, groups, k, higher_is_better, dup


@settings(max_examples=300, deadline=None)
@given(split_searches())
def test_merge_of_a_split_exact_search_equals_one_exact_search(
    case: tuple[np.ndarray, np.ndarray, list[list[int]], int, bool, int],
) -> None:
    distances, ids, groups, k, higher_is_better, dup = case
    parts = [exact_search(distances[:, g], ids[g], k, higher_is_better) for g in groups]
    if dup >= 0:
        parts.append(parts[dup])
    merged = merge_node_results(parts, k, higher_is_better)
    assert_same(merged, exact_search(distances, ids, k, higher_is_better))
    # And through the wire, as the proxy does it.
    decoded = [decode_topk(encode_topk(p))[2] for p in parts]
    assert_same(merge_node_results(decoded, k, higher_is_better), merged)


@pytest.mark.parametrize("higher_is_better", [False, True])
def test_l2_ascending_ip_descending_with_mixed_widths(higher_is_better: bool) -> None:
    rng = np.random.default_rng(7)
    data = rng.standard_normal((30, 8)).astype(np.float32)
    queries = rng.standard_normal((4, 8)).astype(np.float32)
    ids = np.arange(1000, 1030, dtype=np.int64)
    dist = all_distances(queries, data, higher_is_better)
    split = [list(range(0, 2)), list(range(2, 7)), list(range(7, 30))]  # widths 2, 5, 10 at k=10
    parts = [exact_search(dist[:, g], ids[g], 10, higher_is_better) for g in split]
    assert [p.k for p in parts] == [2, 5, 10]
    merged = merge_node_results(parts, 10, higher_is_better)
    assert merged.k == 10
    assert_same(merged, exact_search(dist, ids, 10, higher_is_better))
    step = np.diff(merged.distances, axis=1)
    assert (step <= 0).all() if higher_is_better else (step >= 0).all()


def test_rows_shorter_than_k_are_not_padded_past_the_rows() -> None:
    a = TopK(np.array([[1, 2], [2, 1]], dtype=np.int64), np.array([[0.1, 0.5], [0.2, 0.3]], dtype=np.float32))
    b = TopK(np.array([[7], [7]], dtype=np.int64), np.array([[0.3], [0.1]], dtype=np.float32))
    merged = merge_node_results([a, b], 10, False)
    assert merged.k == 3  # a single node over these 3 rows answers 3 wide, not 10
    np.testing.assert_array_equal(merged.ids, [[1, 7, 2], [7, 2, 1]])


def test_holes_only_where_fewer_real_results_exist() -> None:
    hole = hole_distance(False)
    a = TopK(np.array([[1, NO_ID], [3, 4]], dtype=np.int64), np.array([[0.5, hole], [0.1, 0.2]], dtype=np.float32))
    b = TopK(np.array([[5, NO_ID], [6, NO_ID]], dtype=np.int64), np.array([[0.4, hole], [0.3, hole]], dtype=np.float32))
    merged = merge_node_results([a, b], 3, False)
    np.testing.assert_array_equal(merged.ids, [[5, 1, NO_ID], [3, 4, 6]])
    assert merged.distances[0, 2] == np.float32(hole)


def test_duplicate_ids_keep_the_best_entry() -> None:
    for higher_is_better in (False, True):
        a = TopK(np.array([[1, 2]], dtype=np.int64), np.array([[1.0, 2.0]], dtype=np.float32))
        b = TopK(np.array([[2, 3]], dtype=np.int64), np.array([[0.5, 3.0]], dtype=np.float32))
        merged = merge_node_results([a, b], 4, higher_is_better)
        expected = [[3, 2, 1]] if higher_is_better else [[2, 1, 3]]
        np.testing.assert_array_equal(merged.ids, expected)
        assert merged.k == 3  # one entry was removed from every row
        assert len(set(merged.ids[0].tolist())) == 3


def test_duplicates_in_some_rows_only_leave_holes_at_the_end() -> None:
    a = TopK(np.array([[1, 2], [1, 2]], dtype=np.int64), np.array([[0.1, 0.2], [0.1, 0.2]], dtype=np.float32))
    b = TopK(np.array([[1, 9], [8, 9]], dtype=np.int64), np.array([[0.1, 0.3], [0.3, 0.4]], dtype=np.float32))
    merged = merge_node_results([a, b], 4, False)
    np.testing.assert_array_equal(merged.ids, [[1, 2, 9, NO_ID], [1, 2, 8, 9]])
    assert merged.distances[0, 3] == np.float32(hole_distance(False))


def test_topk_caps_the_width_and_empty_parts_are_skipped() -> None:
    a = TopK(np.array([[4, 5, 6]], dtype=np.int64), np.array([[1.0, 2.0, 3.0]], dtype=np.float32))
    empty = TopK(np.empty((0, 0), dtype=np.int64), np.empty((0, 0), dtype=np.float32))
    merged = merge_node_results([empty, a, a], 2, False)
    np.testing.assert_array_equal(merged.ids, [[4, 5]])
    nothing = merge_node_results([empty, TopK.empty(3, 0, False)], 5, False)
    assert (nothing.nq, nothing.k) == (3, 0)
    assert encode_topk(nothing) == SUCCESS_STATUS  # only the (success) status: row_num 0


def test_parts_of_different_query_counts_are_refused() -> None:
    with pytest.raises(MilvusError) as info:
        merge_node_results([TopK.empty(1, 1, False), TopK.empty(2, 1, False)], 1, False)
    assert info.value.code == ErrorCode.ILLEGAL_SEARCH_RESULT


# -- wire format --------------------------------------------------------------------------------


def _protobuf(result: TopK) -> bytes:
    msg = milvus_pb2.TopKQueryResult(
        status=status_pb2.Status(reason="OK"),
        row_num=result.nq if result.k else 0,
        ids=result.ids.ravel().tolist(),
        distances=result.distances.ravel().tolist(),
    )
    return msg.SerializeToString()


@st.composite
def results(draw: st.DrawFn) -> TopK:
    nq = draw(st.integers(0, 6))
    k = draw(st.integers(0, 6))
    ids = draw(
        st.lists(
            st.one_of(st.just(NO_ID), st.integers(-(2**63), 2**63 - 1), st.integers(0, 300)),
            min_size=nq * k,
            max_size=nq * k,
        )
    )
    dist = draw(st.lists(st.floats(width=32, allow_nan=False), min_size=nq * k, max_size=nq * k))
    return TopK(np.array(ids, dtype=np.int64).reshape(nq, k), np.array(dist, dtype=np.float32).reshape(nq, k))


@settings(max_examples=300, deadline=None)
@given(results())
def test_encode_is_protobufs_serialization_and_decodes_back(result: TopK) -> None:
    data = encode_topk(result)
    assert data == _protobuf(result)
    code, row_num, back = decode_topk(data)
    assert code == 0
    if result.k == 0 or result.nq == 0:
        assert data == SUCCESS_STATUS
        assert (row_num, back.nq, back.k) == (0, 0, 0)
    else:
        assert row_num == result.nq
        assert_same(back, result)


def test_decode_reads_the_status() -> None:
    status = status_pb2.Status(error_code=status_pb2.COLLECTION_NOT_EXISTS, reason="gone")
    msg = milvus_pb2.TopKQueryResult(status=status)
    code, row_num, result = decode_topk(msg.SerializeToString())
    assert (code, row_num, result.nq, result.k) == (4, 0, 0, 0)


@pytest.mark.parametrize(
    ("row_num", "ids", "distances"),
    [(2, [1, 2, 3], [0.0, 0.0, 0.0]), (1, [1, 2], [0.0]), (0, [1], [0.0]), (-1, [1], [0.0])],
)
def test_decode_refuses_a_result_that_is_not_rectangular(row_num: int, ids: list[int], distances: list[float]) -> None:
    data = milvus_pb2.TopKQueryResult(row_num=row_num, ids=ids, distances=distances).SerializeToString()
    with pytest.raises(MilvusError) as info:
        decode_topk(data)
    assert info.value.code == ErrorCode.ILLEGAL_SEARCH_RESULT


def test_decode_of_a_row_count_without_columns() -> None:
    code, row_num, result = decode_topk(milvus_pb2.TopKQueryResult(row_num=3).SerializeToString())
    assert (code, row_num, result.nq, result.k) == (0, 3, 3, 0)
