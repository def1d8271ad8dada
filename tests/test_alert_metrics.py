"""The proxy's replica figures for alerting (``mishards.metrics.replica_shortfall``, pure) against placement."""

from __future__ import annotations

from coordinator.placement import Placement
from mishards.metrics import ReplicaShortfall, replica_shortfall


def test_a_dead_reader_leaves_its_segments_under_replicated_and_none_unavailable_with_r2() -> None:
    placement = Placement.of(["a", "b", "c"], r=2)
    segments = {"c1": list(range(1, 41)), "c2": [100, 101]}
    on_b = {s for s in range(1, 41) if "b" in placement.replicas(s)}
    got = replica_shortfall(segments, placement, frozenset({"a", "c"}))
    assert got["c1"] == ReplicaShortfall(40, len(on_b), 0)
    assert 0 < len(on_b) < 40
    assert replica_shortfall(segments, placement, frozenset({"a", "b", "c"}))["c1"] == ReplicaShortfall(40, 0, 0)


def test_segments_whose_every_replica_is_dead_are_unavailable() -> None:
    placement = Placement.of(["a", "b", "c"], r=2)
    ids = list(range(1, 41))
    on_a_and_b = sum(1 for s in ids if set(placement.replicas(s)) == {"a", "b"})
    got = replica_shortfall({"c": ids}, placement, frozenset({"c"}))["c"]
    not_on_c = sum(1 for s in ids if "c" not in placement.replicas(s))
    assert got == ReplicaShortfall(40, 40, not_on_c) and on_a_and_b == not_on_c


def test_the_target_is_the_placement_width_and_no_readers_means_nothing_short() -> None:
    one = Placement.of(["a"], r=2)  # one reader: width 1, its single replica suffices
    assert replica_shortfall({"c": [1, 2]}, one, frozenset({"a"}))["c"] == ReplicaShortfall(2, 0, 0)
    assert replica_shortfall({"c": [1, 2]}, one, frozenset())["c"] == ReplicaShortfall(2, 2, 2)
    nobody = Placement.of([], r=None)  # the writer searches
    assert replica_shortfall({"c": [1, 2]}, nobody, frozenset())["c"] == ReplicaShortfall(2, 0, 0)
