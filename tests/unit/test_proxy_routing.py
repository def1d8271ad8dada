"""Proxy routing: searchable segments of a search, and their spread over the replicas by load."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coordinator.catalog import CatalogSnapshot
from coordinator.errors import CollectionNotFound, ErrorCode, MilvusError
from coordinator.model import (
    DEFAULT_PARTITION,
    Collection,
    IdMode,
    IndexType,
    MetricType,
    Partition,
    Segment,
    SegmentState,
)
from coordinator.placement import Placement
from mishards.routing import RoutePlan, plan, plan_in_tiers, searchable_segments

NODES = ("ro-a", "ro-b", "ro-c", "ro-d")


def _collection(cid: int, name: str) -> Collection:
    return Collection(cid, name, 4, MetricType.L2, 1024, IndexType.FLAT, "{}", IdMode.AUTO, 0, 0)


def _segment(sid: int, cid: int, pid: int, state: SegmentState = SegmentState.RAW) -> Segment:
    return Segment(sid, f"seg{sid}", cid, pid, state, 10, 0, 160, IndexType.FLAT, 0, 0)


def _snapshot() -> CatalogSnapshot:
    c1, c2 = _collection(1, "c1"), _collection(2, "c2")
    parts = {
        1: tuple(Partition(10 + i, 1, tag) for i, tag in enumerate([DEFAULT_PARTITION, "p1", "p2", "q10"])),
        2: (Partition(20, 2, DEFAULT_PARTITION),),
    }
    segs = {
        1: (
            _segment(100, 1, 10),
            _segment(101, 1, 11, SegmentState.INDEX),
            _segment(102, 1, 11, SegmentState.NEW),  # not searchable yet
            _segment(103, 1, 12, SegmentState.TO_INDEX),
            _segment(104, 1, 13),
            _segment(105, 1, 12, SegmentState.NEW_INDEX),
            _segment(106, 1, 10, SegmentState.BACKUP),
        ),
        2: (_segment(200, 2, 20),),
    }
    return CatalogSnapshot(
        revision=1,
        collections={"c1": c1, "c2": c2},
        collections_by_id={1: c1, 2: c2},
        partitions=parts,
        segments=segs,
    )


def _ids(tags: list[str], name: str = "c1") -> list[int]:
    coll, segs = searchable_segments(_snapshot(), name, tags)
    assert coll.name == name
    return [s.id for s in segs]


# -- searchable_segments ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ([], [100, 101, 103, 104]),
        ([DEFAULT_PARTITION], [100]),
        (["p1"], [101]),
        (["p\\d"], [101, 103]),
        (["p.*", "_default"], [100, 101, 103]),
        (["q1"], None),  # full match: q1 does not select q10
        (["q1\\d*"], [104]),
        (["p1", "nope"], [101]),
    ],
)
def test_searchable_segments_by_tags(tags: list[str], expected: list[int] | None) -> None:
    if expected is None:
        with pytest.raises(MilvusError) as info:
            _ids(tags)
        assert info.value.code == ErrorCode.UNEXPECTED_ERROR
        assert info.value.reason == "The specified partition does not exist"
    else:
        assert _ids(tags) == expected


def test_searchable_segments_only_of_that_collection() -> None:
    assert _ids([], "c2") == [200]


def test_unknown_collection() -> None:
    with pytest.raises(CollectionNotFound) as info:
        searchable_segments(_snapshot(), "nope", [])
    assert info.value.code == ErrorCode.COLLECTION_NOT_EXISTS


def test_collection_without_segments() -> None:
    c = _collection(3, "empty")
    snap = CatalogSnapshot(1, {"empty": c}, {3: c}, {3: (Partition(30, 3, DEFAULT_PARTITION),)}, {})
    assert searchable_segments(snap, "empty", []) == (c, [])
    assert searchable_segments(snap, "empty", ["_default"]) == (c, [])


# -- plan --------------------------------------------------------------------------------------


def test_plan_without_load_spreads_segments_evenly() -> None:
    placement = Placement.of(NODES[:2], r=2)  # every segment on both nodes
    route = plan(range(10), placement, {})
    assert sorted(route.by_node) == ["ro-a", "ro-b"]
    assert [len(v) for v in route.by_node.values()] == [5, 5]
    assert route.unplaced == ()
    assert route.segment_count == 10


def test_plan_ties_follow_placement_order() -> None:
    placement = Placement.of(NODES, r=2)
    route = plan([7], placement, {})
    assert route.by_node == {placement.replicas(7)[0]: (7,)}


def test_plan_prefers_least_loaded_replica() -> None:
    placement = Placement.of(NODES[:2], r=2)
    # A request in flight weighs a whole search: ro-b takes every segment while ro-a is busy.
    route = plan(range(6), placement, {"ro-a": 1})
    assert route.by_node == {"ro-b": tuple(range(6))}
    route = plan(range(12), placement, {"ro-a": 2, "ro-b": 1})
    assert route.by_node == {"ro-b": tuple(range(12))}
    # Equally busy: the whole search goes to one node (no extra sub-request on a busy cluster).
    route = plan(range(12), placement, {"ro-a": 2, "ro-b": 2})
    assert [len(v) for v in route.by_node.values()] == [12]
    route = plan(range(6), placement, {"ro-a": 100})
    assert route.by_node == {"ro-b": tuple(range(6))}


def test_plan_never_uses_excluded_nodes_and_reports_unplaced() -> None:
    placement = Placement.of(NODES[:3], r=2)
    route = plan(range(30), placement, {}, frozenset({"ro-a"}))
    assert "ro-a" not in route.by_node
    # Segments replicated on ro-a and one other node went to the other; none was on ro-a twice.
    assert route.unplaced == ()
    route = plan(range(30), placement, {}, frozenset({"ro-a", "ro-b"}))
    assert set(route.by_node) == {"ro-c"}
    assert sorted(route.unplaced) == [s for s in range(30) if "ro-c" not in placement.replicas(s)]


def test_plan_without_nodes_places_nothing() -> None:
    route = plan([1, 2, 3], Placement.of([], r=1), {})
    assert route == RoutePlan({}, (1, 2, 3))


def test_plan_keeps_input_order_and_drops_duplicate_ids() -> None:
    placement = Placement.of(NODES[:1], r=1)
    assert plan([5, 3, 5, 9], placement, {}).by_node == {"ro-a": (5, 3, 9)}


@st.composite
def plan_cases(draw: st.DrawFn) -> tuple[Placement, list[int], dict[str, int], frozenset[str]]:
    nodes = draw(st.lists(st.sampled_from(NODES), min_size=0, max_size=4, unique=True))
    placement = Placement.of(nodes, r=draw(st.integers(1, 3)))
    segments = draw(st.lists(st.integers(-5, 10_000), max_size=40, unique=True))
    inflight = draw(st.dictionaries(st.sampled_from(NODES), st.integers(0, 20)))
    exclude = frozenset(draw(st.lists(st.sampled_from(NODES), max_size=3)))
    return placement, segments, inflight, exclude


@settings(max_examples=200, deadline=None)
@given(plan_cases())
def test_plan_properties(case: tuple[Placement, list[int], dict[str, int], frozenset[str]]) -> None:
    placement, segments, inflight, exclude = case
    route = plan(segments, placement, inflight, exclude)
    placed = [s for segs in route.by_node.values() for s in segs]
    # Every segment exactly once, placed or not.
    assert sorted(placed + list(route.unplaced)) == sorted(segments)
    for node, segs in route.by_node.items():
        assert node not in exclude
        assert segs
        for s in segs:
            assert node in placement.replicas(s)
    for s in route.unplaced:
        assert all(n in exclude for n in placement.replicas(s))
    # Replaying the choices in input order: on idle replicas each went to the allowed replica given the fewest
    # segments before it; on busy ones to the one with the fewest requests in flight, preferring a node
    # already used by this search; remaining ties to the first in placement order.
    node_of = {s: n for n, segs in route.by_node.items() for s in segs}
    busy = any(inflight.get(n, 0) > 0 for n in placement.nodes if n not in exclude)
    used: set[str] = set()
    load: Counter[str] = Counter()
    for s in segments:
        if s not in node_of:
            continue
        allowed = [n for n in placement.replicas(s) if n not in exclude]

        def key(n: str) -> tuple[int, int]:
            return (inflight.get(n, 0), 0 if n in used else 1) if busy else (load[n], 0)

        least = min(key(n) for n in allowed)
        assert node_of[s] == next(n for n in allowed if key(n) == least)
        load[node_of[s]] += 1
        used.add(node_of[s])


def test_plan_spreads_load_over_many_segments() -> None:
    placement = Placement.of(NODES, r=2)
    route = plan(range(400), placement, {})
    counts = [len(route.by_node[n]) for n in NODES]
    assert max(counts) - min(counts) <= 2


# -- plan_in_tiers (first routings, retries and hedges of the fan-out) ----------------------------


def test_tiers_keep_off_a_failed_node_and_move_only_its_segments() -> None:
    placement = Placement.of(NODES, r=2)
    route = plan(range(100), placement, {})
    failed = "ro-b"
    moved = plan_in_tiers(route.by_node[failed], placement, {}, (frozenset({failed}),))
    assert sorted(s for segs in moved.by_node.values() for s in segs) == sorted(route.by_node[failed])
    assert failed not in moved.by_node and moved.unplaced == ()
    for node, segs in moved.by_node.items():
        for s in segs:
            assert node in placement.replicas(s)


def test_tiers_fall_back_in_order_and_leave_unplaced_what_no_tier_allows() -> None:
    placement = Placement.of(NODES[:2], r=2)
    segs = list(range(10))
    # Both suspected, ro-a failed: the second tier (off the failed only) sends everything to ro-b.
    route = plan_in_tiers(segs, placement, {}, (frozenset({"ro-a", "ro-b"}), frozenset({"ro-a"})))
    assert route.by_node == {"ro-b": tuple(segs)} and route.unplaced == ()
    # Both failed: nothing is placed.
    none = plan_in_tiers(segs, placement, {}, (frozenset({"ro-a", "ro-b"}),))
    assert none.by_node == {} and sorted(none.unplaced) == segs
    assert plan_in_tiers(segs, placement, {}, ()).unplaced == tuple(segs)


def test_tiers_with_r1_have_no_other_replica() -> None:
    placement = Placement.of(NODES, r=1)
    route = plan(range(20), placement, {})
    node = next(iter(route.by_node))
    moved = plan_in_tiers(route.by_node[node], placement, {}, (frozenset({node}),))
    assert moved.by_node == {}
    assert moved.unplaced == route.by_node[node]


def test_tiers_prefer_the_least_loaded_remaining_replica() -> None:
    placement = Placement.of(NODES[:3], r=3)
    route = plan(range(9), placement, {})
    assert {len(v) for v in route.by_node.values()} == {3}
    moved = plan_in_tiers(route.by_node["ro-a"], placement, {"ro-b": 10}, (frozenset({"ro-a"}),))
    assert set(moved.by_node) == {"ro-c"}
