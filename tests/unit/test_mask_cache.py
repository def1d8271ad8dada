"""The node's cache of filter masks: built once per (segment, delete-log version, filter), bounded in bytes."""

from __future__ import annotations

import numpy as np

from coordinator.hybrid.tree import Bool, Comparison, Range, Term
from coordinator.hybrid.types import CompareOp
from node.hybrid_search import MaskCache
from node.kernels import LiveMask

ROWS = 1000


def below(value: int) -> Bool:
    return Bool(must=(Range("a", (Comparison(CompareOp.LT, value),)),))


def builder(calls: list[int], passing: int) -> LiveMask:
    calls.append(passing)
    mask = np.zeros(ROWS, dtype=bool)
    mask[:passing] = True
    return LiveMask.of(mask)


def test_a_repeated_filter_is_built_once_per_segment_and_delete_version() -> None:
    cache = MaskCache()
    calls: list[int] = []
    first = cache.get((7, 0, below(10)), lambda: builder(calls, 10))
    again = cache.get((7, 0, below(10)), lambda: builder(calls, 99))
    assert again is first and calls == [10] and (cache.hits, cache.misses) == (1, 1)
    # an equal tree built anew is the same key; another segment, version or filter is not
    same_tree = Bool(must=(Range("a", (Comparison(CompareOp.LT, 10),)),))
    assert cache.get((7, 0, same_tree), lambda: builder(calls, 99)) is first
    cache.get((8, 0, below(10)), lambda: builder(calls, 11))
    cache.get((7, 1, below(10)), lambda: builder(calls, 12))
    cache.get((7, 0, Bool(must=(Term("a", (1, 2)),))), lambda: builder(calls, 13))
    assert calls == [10, 11, 12, 13] and len(cache) == 4


def test_least_recently_used_masks_leave_beyond_the_capacity() -> None:
    one = MaskCache.cost(builder([], 500))
    cache = MaskCache(capacity_bytes=2 * one)
    calls: list[int] = []
    for seg in (1, 2):
        cache.get((seg, 0, below(5)), lambda: builder(calls, 500))
    cache.get((1, 0, below(5)), lambda: builder(calls, 500))  # segment 1 used last
    cache.get((3, 0, below(5)), lambda: builder(calls, 500))  # evicts segment 2
    assert len(cache) == 2 and cache.used_bytes <= cache.capacity_bytes
    cache.get((1, 0, below(5)), lambda: builder(calls, 500))
    cache.get((2, 0, below(5)), lambda: builder(calls, 500))
    assert len(calls) == 4  # 1, 2, 3, then 2 again; 1 was kept


def test_a_mask_larger_than_the_cache_is_used_but_not_kept() -> None:
    cache = MaskCache(capacity_bytes=100)
    calls: list[int] = []
    mask = cache.get((1, 0, below(5)), lambda: builder(calls, 500))
    assert mask.live == 500 and len(cache) == 0 and cache.used_bytes == 0
