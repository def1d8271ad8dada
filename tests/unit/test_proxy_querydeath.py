"""Query-of-death records: refused after two distinct nodes, forgotten after the ttl, bounded in memory."""

from __future__ import annotations

import pytest

from mishards.querydeath import QueryOfDeath, Record, after_failure, fingerprint, refusal_reason, refuses


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_fingerprint_tells_requests_and_methods_apart() -> None:
    assert fingerprint("Search", b"abc") == fingerprint("Search", b"abc")
    assert fingerprint("Search", b"abc") != fingerprint("Search", b"abd")
    assert fingerprint("Search", b"abc") != fingerprint("SearchByID", b"abc")
    assert fingerprint("a", b"bc") != fingerprint("ab", b"c")
    assert len(fingerprint("Search", b"x" * 10_000)) == 16


def test_records_count_distinct_nodes_within_the_ttl() -> None:
    first = after_failure(None, "ro-a", 10.0, 5.0)
    assert first == Record(frozenset({"ro-a"}), 15.0)
    assert not refuses(first, 10.0)
    same_node = after_failure(first, "ro-a", 11.0, 5.0)
    assert same_node.nodes == {"ro-a"} and not refuses(same_node, 11.0)  # one node twice is not two nodes
    second = after_failure(same_node, "ro-b", 12.0, 5.0)
    assert second == Record(frozenset({"ro-a", "ro-b"}), 17.0)
    assert refuses(second, 16.9) and not refuses(second, 17.0)
    # A failure after the record expired starts afresh.
    assert after_failure(first, "ro-b", 15.0, 5.0).nodes == {"ro-b"}
    assert not refuses(None, 0.0)


def test_tracker_refuses_after_the_second_node_until_the_ttl_runs_out() -> None:
    clock = Clock()
    deaths = QueryOfDeath(ttl=60.0, clock=clock)
    key, other = fingerprint("Search", b"deadly"), fingerprint("Search", b"fine")
    assert deaths.refused(key) == 0
    assert deaths.failed(key, "ro-a") == 1
    assert deaths.refused(key) == 0  # one node may have died for another reason: the request may go on
    assert deaths.failed(key, "ro-b") == 2
    assert deaths.refused(key) == 2 and deaths.refused(other) == 0
    clock.now += 59.0
    assert deaths.refused(key) == 2
    clock.now += 1.0
    assert deaths.refused(key) == 0 and len(deaths) == 0  # expired and dropped


def test_tracker_is_bounded_and_forgets_the_oldest() -> None:
    deaths = QueryOfDeath(ttl=60.0, capacity=3, clock=Clock())
    keys = [fingerprint("Search", bytes([i])) for i in range(5)]
    for key in keys:
        deaths.failed(key, "ro-a")
        deaths.failed(key, "ro-b")
    assert len(deaths) == 3
    assert [deaths.refused(k) for k in keys] == [0, 0, 2, 2, 2]


def test_ttl_zero_turns_protection_off() -> None:
    deaths = QueryOfDeath(ttl=0.0)
    key = fingerprint("Search", b"x")
    assert not deaths.enabled
    assert deaths.failed(key, "a") == 0 and deaths.failed(key, "b") == 0
    assert deaths.refused(key) == 0
    with pytest.raises(ValueError):
        QueryOfDeath(ttl=-1.0)


def test_refusal_reason_says_what_happened_and_for_how_long() -> None:
    reason = refusal_reason(2, 120.0)
    assert reason.startswith("The request failed on 2 read nodes")
    assert "not retried" in reason and "120 s" in reason
