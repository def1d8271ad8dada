"""Suspicion of failed nodes (pure, with a fake clock) and the SearchByID helpers of the fan-out."""

from __future__ import annotations

import pytest

from coordinator.placement import Placement
from milvus_wire import milvus_pb2
from mishards.failures import FailureTracker, Suspicion, next_suspicion
from mishards.fanout import search_param_for_ids
from mishards.routing import plan, plan_avoiding


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_back_off_doubles_up_to_the_cap() -> None:
    s = None
    backoffs = []
    for _ in range(6):
        s = next_suspicion(s, 10.0, base=0.5, cap=3.0)
        backoffs.append(s.until - 10.0)
    assert backoffs == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]
    assert s == Suspicion(until=13.0, failures=6)


def test_a_failed_node_is_suspected_until_its_back_off_runs_out_or_it_succeeds() -> None:
    clock = Clock()
    tracker = FailureTracker(base=1.0, cap=4.0, clock=clock)
    assert tracker.suspects() == frozenset()
    tracker.failed("a")
    assert tracker.suspects() == {"a"}
    clock.now += 1.01
    assert tracker.suspects() == frozenset()  # back-off over: tried again
    tracker.failed("a")  # second failure in a row: two seconds
    clock.now += 1.5
    assert tracker.suspects() == {"a"}
    tracker.succeeded("a")
    assert tracker.suspects() == frozenset()
    tracker.failed("a")  # the count restarted
    clock.now += 1.01
    assert tracker.suspects() == frozenset()


def test_invalid_back_off_is_refused() -> None:
    with pytest.raises(ValueError):
        FailureTracker(base=0, cap=1)
    with pytest.raises(ValueError):
        FailureTracker(base=2, cap=1)


def test_routing_avoids_suspects_while_another_replica_exists() -> None:
    placement = Placement.of(["a", "b", "c"], r=2)
    segments = list(range(40))
    route = plan(segments, placement, {}, frozenset({"a"}))
    assert "a" not in route.by_node and not route.unplaced
    # Segments whose replicas are all suspected come back unplaced from plan ...
    route = plan(segments, placement, {}, frozenset({"a", "b"}))
    both = [s for s in segments if set(placement.replicas(s)) == {"a", "b"}]
    assert sorted(route.unplaced) == both
    # ... and plan_avoiding sends them to a suspect anyway, the others still off the suspects.
    avoiding = plan_avoiding(segments, placement, {}, frozenset({"a", "b"}))
    assert not avoiding.unplaced and sorted(s for segs in avoiding.by_node.values() for s in segs) == segments
    for seg in segments:
        node = avoiding.node_of(seg)
        assert node in placement.replicas(seg)
        assert node == "c" or seg in both
    assert plan_avoiding(segments, placement, {}, frozenset({"a"})) == plan(segments, placement, {}, frozenset({"a"}))


def test_search_param_for_ids_keeps_everything_but_the_ids() -> None:
    param = milvus_pb2.SearchByIDParam(collection_name="c", partition_tag_array=["p.*"], id_array=[1, 2], topk=9,
                                       extra_params=[milvus_pb2.KeyValuePair(key="params", value='{"nprobe": 4}')])
    rec = milvus_pb2.RowRecord(float_data=[1.0, 2.0])
    out = milvus_pb2.SearchParam.FromString(search_param_for_ids(param, [rec]))
    assert (out.collection_name, list(out.partition_tag_array), out.topk) == ("c", ["p.*"], 9)
    assert out.extra_params[0].value == '{"nprobe": 4}'
    assert list(out.query_record_array[0].float_data) == [1.0, 2.0]
