"""Search partition tags: literal equality or a full regex match."""

from __future__ import annotations

import pytest

from coordinator.model import Partition
from coordinator.partitions import match_partitions

TAGS = ["_default", "p1", "p2", "p10", "q1", "a+b", "[x", "p.1"]
PARTS = [Partition(i + 1, 7, tag) for i, tag in enumerate(TAGS)]


def select(*patterns: str) -> list[str]:
    return [p.tag for p in match_partitions(PARTS, list(patterns))]


def test_no_patterns_select_all() -> None:
    assert select() == TAGS
    assert match_partitions([], []) == []


@pytest.mark.parametrize(
    ("patterns", "expected"),
    [
        (["p1"], ["p1"]),  # full match: not p10
        (["p"], []),
        (["p.*"], ["p1", "p2", "p10", "p.1"]),
        (["p\\d"], ["p1", "p2"]),
        (["p\\d+"], ["p1", "p2", "p10"]),
        (["_default"], ["_default"]),
        ([".*1"], ["p1", "q1", "p.1"]),
        (["p.1"], ["p.1"]),  # regex '.' would also match 'p11' etc.; only p.1 exists here
        (["a+b"], ["a+b"]),  # as a regex it would need "ab"/"aab": selected by equality
        (["[x"], ["[x"]),  # invalid regex: literal only
        (["(", "q1"], ["q1"]),  # an invalid regex does not spoil the others
        (["q1", "p2", "q1"], ["p2", "q1"]),  # partition order, no duplicates
        (["nope"], []),
        (["P1"], []),  # case-sensitive
    ],
)
def test_match(patterns: list[str], expected: list[str]) -> None:
    assert select(*patterns) == expected


def test_regex_matches_against_the_whole_tag() -> None:
    parts = [Partition(1, 1, "abc"), Partition(2, 1, "xabcx")]
    assert [p.tag for p in match_partitions(parts, ["abc"])] == ["abc"]
    assert [p.tag for p in match_partitions(parts, ["b"])] == []
    assert [p.tag for p in match_partitions(parts, [".abc."])] == ["xabcx"]


def test_a_pathological_pattern_fails_within_the_budget_instead_of_hanging() -> None:
    import time

    from coordinator.errors import ErrorCode, MilvusError

    parts = [Partition(i, 1, "a" * 40) for i in range(1, 4)]
    started = time.monotonic()
    with pytest.raises(MilvusError) as info:
        match_partitions(parts, ["(a|aa)+c"], budget_seconds=0.2)
    assert time.monotonic() - started < 5
    assert info.value.code == ErrorCode.UNEXPECTED_ERROR
    assert "takes too long" in info.value.reason
    # An ordinary pattern over the same tags is unaffected.
    assert match_partitions(parts, ["a+"], budget_seconds=0.2) == parts
