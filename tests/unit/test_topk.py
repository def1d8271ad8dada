"""``topk.merge`` against a brute-force oracle."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coordinator.topk import NO_ID, TopK, by_id_rows, hole_distance, merge, merge_rows, result_width

FMAX = float(np.finfo(np.float32).max)


def oracle(parts: list[TopK], k: int, higher_is_better: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per query: every real entry of every part, best first (ties by id), cut at k, padded with holes."""
    nq = parts[0].nq
    ids = np.full((nq, k), NO_ID, dtype=np.int64)
    dist = np.full((nq, k), hole_distance(higher_is_better), dtype=np.float32)
    for q in range(nq):
        entries = [
            (float(p.distances[q, j]), int(p.ids[q, j]))
            for p in parts
            for j in range(p.k)
            if p.ids[q, j] != NO_ID
        ]
        entries.sort(key=lambda e: ((-e[0] if higher_is_better else e[0]), e[1]))
        for j, (d, i) in enumerate(entries[:k]):
            ids[q, j] = i
            dist[q, j] = d
    return ids, dist


@st.composite
def merge_cases(draw: st.DrawFn) -> tuple[list[TopK], int, bool]:
    nq = draw(st.integers(1, 4))
    higher_is_better = draw(st.booleans())
    k = draw(st.integers(1, 12))
    # A small value pool makes ties (equal distances, equal ids) frequent.
    values = st.sampled_from([-2.5, -1.0, 0.0, 0.25, 1.0, 3.0, 1e30, -1e30])
    parts = []
    for _ in range(draw(st.integers(1, 4))):
        width = draw(st.integers(0, 7))
        ids = np.array(
            draw(st.lists(st.integers(-1, 20), min_size=nq * width, max_size=nq * width)), dtype=np.int64
        ).reshape(nq, width)
        dist = np.array(
            draw(st.lists(values, min_size=nq * width, max_size=nq * width)), dtype=np.float32
        ).reshape(nq, width)
        # Holes carry any distance on input (faiss sentinels, garbage): merge must not trust it.
        parts.append(TopK(ids, dist))
    return parts, k, higher_is_better


@settings(max_examples=300, deadline=None, database=None)
@given(merge_cases())
def test_merge_matches_oracle(case: tuple[list[TopK], int, bool]) -> None:
    parts, k, hib = case
    out = merge(parts, k, hib)
    want_ids, want_dist = oracle(parts, k, hib)
    assert out.ids.dtype == np.int64
    assert out.distances.dtype == np.float32
    assert out.ids.shape == out.distances.shape == (parts[0].nq, k)
    np.testing.assert_array_equal(out.ids, want_ids)
    np.testing.assert_array_equal(out.distances, want_dist)
    for q in range(out.nq):
        real = out.ids[q] != NO_ID
        n_real = int(real.sum())
        # holes only at the end, and only when fewer real entries than k exist
        assert real[:n_real].all()
        available = sum(int((p.ids[q] != NO_ID).sum()) for p in parts)
        assert n_real == min(k, available)
        assert (out.distances[q, n_real:] == hole_distance(hib)).all()
        d = out.distances[q, :n_real].astype(np.float64)
        assert (np.diff(d) <= 0).all() if hib else (np.diff(d) >= 0).all()


@settings(max_examples=300, deadline=None, database=None)
@given(merge_cases(), st.integers(1, 400))
def test_merge_rows_equals_merge_whatever_the_block(case: tuple[list[TopK], int, bool], block_bytes: int) -> None:
    """A block of rows at a time (down to one row per block) gives exactly what one merge gives."""
    parts, k, hib = case
    want = merge(parts, k, hib)
    got = merge_rows(parts, k, hib, block_bytes=block_bytes)
    np.testing.assert_array_equal(got.ids, want.ids)
    np.testing.assert_array_equal(got.distances, want.distances)


@settings(max_examples=200, deadline=None, database=None)
@given(merge_cases(), st.integers(1, 400))
def test_folding_parts_into_an_accumulator_equals_one_merge(case: tuple[list[TopK], int, bool],
                                                           block_bytes: int) -> None:
    """Folding the parts one by one into an accumulator (written in place) gives what merging them at once gives."""
    parts, k, hib = case
    want = merge(parts, k, hib)
    acc = merge_rows(parts[:1], k, hib, block_bytes=block_bytes)
    for part in parts[1:]:
        assert merge_rows([acc, part], k, hib, out=acc, block_bytes=block_bytes) is acc
    np.testing.assert_array_equal(acc.ids, want.ids)
    np.testing.assert_array_equal(acc.distances, want.distances)


def test_merge_rows_checks_the_output_shape() -> None:
    part = TopK.empty(3, 2, False)
    with pytest.raises(ValueError, match="output is 2 x 2"):
        merge_rows([part], 2, False, out=TopK.empty(2, 2, False))

def test_hole_distance_is_the_worst_value() -> None:
    assert hole_distance(False) == FMAX
    assert hole_distance(True) == -FMAX


def test_merge_pads_to_k_with_holes() -> None:
    a = TopK(np.array([[3, 1]], dtype=np.int64), np.array([[0.5, 0.25]], dtype=np.float32))
    out = merge([a], 4, higher_is_better=True)
    assert out.ids.tolist() == [[3, 1, -1, -1]]
    assert out.distances.tolist() == [[0.5, 0.25, -FMAX, -FMAX]]
    out = merge([a], 4, higher_is_better=False)
    assert out.ids.tolist() == [[1, 3, -1, -1]]
    assert out.distances.tolist() == [[0.25, 0.5, FMAX, FMAX]]


def test_merge_holes_sort_after_worse_real_entries() -> None:
    # A hole whose distance looks excellent (0) must still lose against a real, far-away row.
    a = TopK(np.array([[-1, 7]], dtype=np.int64), np.array([[0.0, 1e20]], dtype=np.float32))
    out = merge([a], 2, higher_is_better=False)
    assert out.ids.tolist() == [[7, -1]]
    assert out.distances.tolist() == [[np.float32(1e20), FMAX]]


def test_merge_different_widths_and_ties_by_id() -> None:
    a = TopK(np.array([[5, 9, 2]], dtype=np.int64), np.array([[1.0, 1.0, 2.0]], dtype=np.float32))
    b = TopK(np.array([[4]], dtype=np.int64), np.array([[1.0]], dtype=np.float32))
    out = merge([a, b], 3, higher_is_better=False)
    assert out.ids.tolist() == [[4, 5, 9]]
    out = merge([a, b], 3, higher_is_better=True)
    assert out.ids.tolist() == [[2, 4, 5]]


def test_merge_of_empty_parts() -> None:
    out = merge([TopK.empty(2, 0, False), TopK.empty(2, 0, False)], 3, False)
    assert out.ids.tolist() == [[-1] * 3] * 2
    with pytest.raises(ValueError):
        merge([], 3, False)


# -- result width (k') and SearchByID rows ---------------------------------------------------------------------


@pytest.mark.parametrize(("topk", "rows", "width"), [(10, 3, 3), (10, 10, 10), (3, 10, 3), (1_048_576, 7, 7),
                                                     (5, 0, 0), (1, 1, 1)])
def test_result_width_is_topk_capped_by_the_live_rows(topk: int, rows: int, width: int) -> None:
    """Milvus 1.1.1's k': min(topk, rows of the searched files, deletes applied at flush excluded)."""
    assert result_width(topk, rows) == width


def test_by_id_rows_puts_each_found_row_back_in_its_place() -> None:
    part = TopK(np.array([[7, 8], [9, -1]], dtype=np.int64), np.array([[0.1, 0.2], [0.3, 3.4e38]], dtype=np.float32))
    full = by_id_rows([0, 2], 3, part, higher_is_better=False)
    assert full.ids.tolist() == [[7, 8], [-1, -1], [9, -1]]
    assert full.distances[1].tolist() == [FMAX] * 2
    assert full.distances[0].tolist() == pytest.approx([0.1, 0.2])
    assert by_id_rows([0, 1], 2, part, False) is part


@pytest.mark.parametrize("hib", [False, True])
def test_by_id_rows_keep_a_row_per_id_when_nothing_can_be_returned(hib: bool) -> None:
    """No id found, or nothing live to search: still one row per id (a column of holes), so the reply keeps them."""
    nothing_found = by_id_rows([], 3, TopK.empty(0, 4, hib), hib)
    assert nothing_found.ids.tolist() == [[-1] * 4] * 3
    assert (nothing_found.distances == np.float32(hole_distance(hib))).all()
    no_live_rows = by_id_rows([1], 2, TopK.empty(1, 0, hib), hib)
    assert no_live_rows.ids.tolist() == [[-1], [-1]]
    assert no_live_rows.distances.tolist() == [[hole_distance(hib)]] * 2
