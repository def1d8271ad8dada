"""Pure planning helpers of the writer's upkeep: merge groups and row splits."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from node.maintenance import split_rows
from node.merges import plan_merges

sizes_strategy = st.lists(
    st.tuples(st.integers(0, 10**9), st.integers(0, 300)), max_size=40, unique_by=lambda item: item[0]
)


@settings(max_examples=300, deadline=None, database=None)
@given(sizes_strategy, st.integers(1, 400))
def test_plan_merges_properties(sizes: list[tuple[int, int]], limit: int) -> None:
    size_of = dict(sizes)
    groups = plan_merges(sizes, limit)
    seen: list[int] = [seg for group in groups for seg in group]
    assert len(seen) == len(set(seen)), "a segment is in two merges"
    assert set(seen) <= set(size_of)
    for group in groups:
        assert len(group) >= 2
        assert sum(size_of[s] for s in group) <= limit
        assert all(size_of[s] < limit for s in group), "a full-size segment was merged"
    # Nothing worth merging is left behind: no two unmerged small segments fit together.
    rest = sorted(size_of[s] for s in size_of if s not in set(seen) and size_of[s] < limit)
    if len(rest) >= 2:
        assert rest[0] + rest[1] > limit


def test_plan_merges_examples() -> None:
    assert plan_merges([], 10) == []
    assert plan_merges([(1, 4)], 10) == []
    assert plan_merges([(1, 4), (2, 5)], 10) == [[1, 2]]
    assert plan_merges([(1, 10), (2, 10)], 10) == []  # already at the limit
    assert plan_merges([(1, 6), (2, 6)], 10) == []  # together too big
    assert plan_merges([(3, 2), (1, 2), (2, 2), (4, 2), (5, 9)], 5) == [[1, 2], [3, 4]]
    assert plan_merges([(7, 0), (8, 0), (9, 50)], 10) == [[7, 8]]


@settings(max_examples=300, deadline=None, database=None)
@given(st.integers(0, 5000), st.integers(-3, 700))
def test_split_rows_covers_exactly_once(total: int, max_rows: int) -> None:
    ranges = split_rows(total, max_rows)
    step = max(1, max_rows)
    covered = 0
    for start, stop in ranges:
        assert start == covered, "ranges must be consecutive"
        assert 0 < stop - start <= step
        covered = stop
    assert covered == total
    assert len(ranges) == -(-total // step)


def test_split_rows_examples() -> None:
    assert split_rows(0, 10) == []
    assert split_rows(10, 10) == [(0, 10)]
    assert split_rows(25, 10) == [(0, 10), (10, 20), (20, 25)]
    assert split_rows(3, 0) == [(0, 1), (1, 2), (2, 3)]
