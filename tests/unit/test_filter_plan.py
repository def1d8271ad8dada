"""The planner of filtered segment searches: which strategy each segment gets, and with which params."""

from __future__ import annotations

import numpy as np
import pytest

from coordinator.model import IndexType
from node.filter_plan import (
    EF_CAP,
    GATHER_BLOCK_BYTES,
    MASK_BYTES_PER_ROW,
    SegmentShape,
    Strategy,
    filter_cost,
    plan,
    short_queries,
)
from node.index_base import DEFAULT_EF, DEFAULT_NPROBE
from node.params import SearchParams

ROWS = 1_000_000
DIM = 128  # the distance budget allows 16,000 rows at this dimension


def shape(kind: IndexType, passing: int, rows: int = ROWS, binary: bool = False, nlist: int | None = None,
          dim: int = DIM) -> SegmentShape:
    return SegmentShape(kind, binary, rows, passing, dim, nlist)


@pytest.mark.parametrize("kind", list(IndexType))
def test_no_passing_row_searches_nothing(kind: IndexType) -> None:
    assert plan(shape(kind, 0), 10, 1, SearchParams()).strategy is Strategy.NOTHING
    assert plan(shape(kind, 0), 10, 1, SearchParams(), exact=True).strategy is Strategy.NOTHING


@pytest.mark.parametrize("kind", [IndexType.FLAT, IndexType.IVF_FLAT, IndexType.HNSW, IndexType.ANNOY,
                                  IndexType.RNSG, IndexType.IVF_PQ])
def test_exact_requested_is_exact_whatever_the_kind(kind: IndexType) -> None:
    chosen = plan(shape(kind, ROWS // 2, nlist=1024), 10, 1, SearchParams(nprobe=16, ef=64), exact=True)
    assert chosen.strategy is Strategy.EXACT


@pytest.mark.parametrize(("passing", "k", "exact"), [
    (16_000, 10, True),     # 2,048,000 / 128 rows: within the distance budget
    (16_001, 10, False),    # beyond it (in a segment of 200,000 rows: 8 %, above the fraction rule)
    (69_999, 10, True),     # under 7 % of the segment
    (70_000, 10, False),
    (20_000, 20_000, True),  # no more rows than k
])
def test_selective_filters_go_exact(passing: int, k: int, exact: bool) -> None:
    rows = ROWS if passing != 16_001 else 200_000
    chosen = plan(shape(IndexType.IVF_FLAT, passing, rows=rows, nlist=1024), k, 1, SearchParams(nprobe=16))
    assert (chosen.strategy is Strategy.EXACT) is exact


def test_ivf_nprobe_widens_by_the_selectivity_up_to_nlist() -> None:
    half = plan(shape(IndexType.IVF_FLAT, ROWS // 2, nlist=1024), 10, 1, SearchParams(nprobe=16))
    assert half.strategy is Strategy.INDEX and half.exact_when_short
    assert half.params.nprobe == 64  # 16 x BREADTH 2 / 0.5
    tenth = plan(shape(IndexType.IVF_SQ8, ROWS // 8, nlist=64), 10, 1, SearchParams(nprobe=16))
    assert tenth.params.nprobe == 64  # 16 x 2 / 0.125 = 256, capped at nlist
    default = plan(shape(IndexType.IVF_PQ, ROWS // 4, nlist=1024), 10, 1, SearchParams())
    assert default.params.nprobe == DEFAULT_NPROBE * 8
    everything = plan(shape(IndexType.IVF_FLAT, ROWS, nlist=1024), 10, 1, SearchParams(nprobe=16))
    assert everything.params.nprobe == 16  # nothing filtered out: unchanged


def test_ivf_never_narrows_a_callers_nprobe() -> None:
    chosen = plan(shape(IndexType.IVF_FLAT, ROWS // 2, nlist=64), 10, 1, SearchParams(nprobe=256))
    assert chosen.params.nprobe == 256


def test_hnsw_ef_widens_up_to_the_cap_and_never_below_k() -> None:
    half = plan(shape(IndexType.HNSW, ROWS // 2), 10, 1, SearchParams(ef=64))
    assert half.strategy is Strategy.INDEX and half.exact_when_short and half.params.ef == 256
    tenth = plan(shape(IndexType.HNSW, ROWS // 10), 10, 1, SearchParams(ef=1000))
    assert tenth.params.ef == EF_CAP  # 10,000 capped
    big = plan(shape(IndexType.HNSW, ROWS // 10), 10, 1, SearchParams(ef=8000))
    assert big.params.ef == 8000  # a caller's ef above the cap is kept
    wide_k = plan(shape(IndexType.HNSW, ROWS // 2), 500, 1, SearchParams(ef=100))
    assert wide_k.params.ef == 2000  # ef raised to k first, then widened (x 2 / 0.5)
    default = plan(shape(IndexType.HNSW, ROWS // 2), 10, 1, SearchParams())
    assert default.params.ef == DEFAULT_EF * 4


@pytest.mark.parametrize("kind", [IndexType.ANNOY, IndexType.RNSG])
def test_kinds_without_selectors_oversample_then_fall_back(kind: IndexType) -> None:
    params = SearchParams(search_k=100, search_length=50)
    chosen = plan(shape(kind, ROWS // 2), 10, 1, params)
    assert chosen.strategy is Strategy.INDEX and chosen.exact_when_short and chosen.params == params


def test_binary_ivf_widens_nprobe_too() -> None:
    chosen = plan(shape(IndexType.IVF_FLAT, ROWS // 2, binary=True, nlist=128, dim=256), 10, 1,
                  SearchParams(nprobe=8))
    assert chosen.strategy is Strategy.INDEX and chosen.params.nprobe == 32  # 8 x 2 / 0.5


def test_flat_searches_the_passing_rows_only() -> None:
    for nq in (1, 8):
        chosen = plan(shape(IndexType.FLAT, ROWS // 2), 10, nq, SearchParams())
        assert chosen.strategy is Strategy.EXACT
    binary = plan(shape(IndexType.FLAT, ROWS // 2, binary=True, dim=256), 10, 1, SearchParams())
    assert binary.strategy is Strategy.EXACT


@pytest.mark.parametrize("kind", [IndexType.FLAT, IndexType.IVF_FLAT, IndexType.HNSW, IndexType.ANNOY])
def test_a_segment_whose_every_row_passes_is_searched_as_search_does(kind: IndexType) -> None:
    params = SearchParams(nprobe=16, ef=64)
    for rows in (100, ROWS):  # small segments too: the index, not the exact path
        chosen = plan(shape(kind, rows, rows=rows, nlist=1024), 10, 1, params)
        assert chosen.strategy is Strategy.INDEX and chosen.params == params
    assert plan(shape(kind, ROWS, nlist=1024), 10, 1, params, exact=True).strategy is Strategy.EXACT


def test_short_queries() -> None:
    found = np.array([10, 9, 3, 10, 0])
    assert short_queries(found, 10, 1000).tolist() == [1, 2, 4]
    assert short_queries(found, 10, 3).tolist() == [4]  # only 3 rows pass: 3 hits are enough


def test_filter_cost_counts_the_segments_searched_at_once() -> None:
    assert filter_cost([], 4) == 0
    one = 1000 * MASK_BYTES_PER_ROW + GATHER_BLOCK_BYTES
    assert filter_cost([1000], 4) == one
    assert filter_cost([10, 1000, 100], 1) == one  # the largest segment, one at a time
    assert filter_cost([1000, 1000, 1000], 2) == 2 * one
