"""One search's coverage: accepted answers are disjoint and cover every segment once; orphans are re-routed."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mishards.coverage import Coverage


def test_the_first_answer_wins_and_retires_the_overlapping_attempts() -> None:
    cov = Coverage([1, 2, 3, 4])
    a = cov.start("ro-a", (1, 2), now=0.0)
    b = cov.start("ro-b", (3, 4), now=0.0)
    assert cov.orphans() == ()
    cov.check_at(a.id, 1.0)
    cov.check_at(b.id, 1.0)
    assert cov.due(0.5) == []
    assert cov.due(1.0) == [a, b]
    assert cov.due(2.0) == []  # each time set is used once
    hedge = cov.start("ro-b", (1, 2), now=1.0, hedge_of=a.id)
    cov.hedged(a)
    assert cov.avoid() == {"ro-a"}
    accepted, retired = cov.answered(hedge.id)
    assert accepted and retired == [a]  # the slow attempt is cancelled
    assert not cov.complete and cov.orphans() == ()
    accepted, retired = cov.answered(a.id)  # a late answer of a retired attempt is dropped
    assert (accepted, retired) == (False, [])
    assert cov.answered(b.id) == (True, [])
    assert cov.complete


def test_a_split_hedge_drops_the_overlapping_answer_and_waits_for_the_rest() -> None:
    cov = Coverage([1, 2])
    a = cov.start("ro-a", (1, 2), now=0.0)
    h1 = cov.start("ro-b", (1,), now=1.0, hedge_of=a.id)
    h2 = cov.start("ro-c", (2,), now=1.0, hedge_of=a.id)
    accepted, retired = cov.answered(h1.id)
    assert accepted and retired == [a]  # a overlaps segment 1 now covered: it can never be accepted
    assert cov.orphans() == ()  # segment 2 is still held by h2
    assert cov.answered(h2.id) == (True, [])
    assert cov.complete and cov.covered == {1, 2}


def test_a_failure_orphans_the_segments_nobody_else_holds() -> None:
    cov = Coverage([1, 2, 3])
    a = cov.start("ro-a", (1, 2), now=0.0)
    cov.start("ro-b", (3,), now=0.0)
    assert cov.failed(a.id) == a
    assert cov.orphans() == (1, 2) and cov.failed_nodes == {"ro-a"} and cov.avoid() == {"ro-a"}
    assert cov.failed(a.id) is None  # once
    retry = cov.start("ro-b", (1, 2), now=0.1)
    assert cov.orphans() == ()
    assert cov.answered(retry.id)[0]


def test_a_withdrawn_attempt_orphans_its_segments_without_failing_its_node() -> None:
    cov = Coverage([1, 2])
    a = cov.start("ro-a", (1, 2), now=0.0)
    assert cov.withdraw(a.id) == a and cov.withdraw(a.id) is None
    assert cov.orphans() == (1, 2) and cov.failed_nodes == set()
    hedge = cov.start("ro-b", (1, 2), now=0.1, hedge_of=a.id)
    cov.hedged(a)
    assert cov.avoid() == {"ro-a"}
    assert cov.answered(hedge.id) == (True, []) and cov.complete


def test_next_due_is_the_earliest_check_of_an_attempt_in_flight() -> None:
    cov = Coverage([1, 2])
    assert cov.next_due() is None
    a = cov.start("ro-a", (1,), now=3.0)
    b = cov.start("ro-b", (2,), now=2.0)
    cov.check_at(a.id, 4.0)
    cov.check_at(b.id, 3.0)
    assert cov.next_due() == 3.0
    assert cov.due(3.0) == [b]
    assert cov.next_due() == 4.0
    cov.check_at(b.id, 5.0)  # considered again later (its node was busy, not silent)
    assert cov.answered(a.id)[0]
    assert cov.next_due() == 5.0  # a's check went with it
    assert cov.due(10.0) == [b] and cov.next_due() is None
    cov.check_at(a.id, 1.0)  # not in flight: ignored
    assert cov.next_due() is None


def test_retire_all_empties_the_flight() -> None:
    cov = Coverage([1, 2])
    a = cov.start("ro-a", (1, 2), now=0.0)
    assert cov.retire_all() == [a] and cov.inflight == {}
    assert cov.orphans() == (1, 2)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_accepted_answers_never_overlap_and_every_segment_stays_held(data: st.DataObject) -> None:
    """Random sends, answers and failures: accepted answers are pairwise disjoint, and every segment is
    covered, held in flight, or an orphan (exactly what routing must send again)."""
    segments = list(range(data.draw(st.integers(1, 8))))
    cov = Coverage(segments)
    nodes = ["ro-a", "ro-b", "ro-c"]
    accepted: list[set[int]] = []
    for _ in range(data.draw(st.integers(1, 30))):
        action = data.draw(st.sampled_from(["send", "answer", "fail"]))
        if action == "send":
            pool = sorted(set(segments) - cov.covered)
            if not pool:
                continue
            chosen = data.draw(st.lists(st.sampled_from(pool), min_size=1, unique=True))
            cov.start(data.draw(st.sampled_from(nodes)), chosen, now=0.0)
        elif cov.inflight:
            attempt_id = data.draw(st.sampled_from(sorted(cov.inflight)))
            if action == "answer":
                segs = set(cov.inflight[attempt_id].segments)
                ok, retired = cov.answered(attempt_id)
                assert ok  # an attempt still in flight never overlaps the covered segments
                accepted.append(segs)
                assert all(not set(r.segments).isdisjoint(segs) for r in retired)
            else:
                cov.failed(attempt_id)
        held = set(cov.covered)
        for a in cov.inflight.values():
            assert cov.covered.isdisjoint(a.segments)
            held.update(a.segments)
        assert set(cov.orphans()) == set(segments) - held
    for i, first in enumerate(accepted):
        for second in accepted[i + 1:]:
            assert first.isdisjoint(second)
    assert set().union(*accepted) == cov.covered if accepted else not cov.covered
