"""The writer's fence (a local, conservative lease deadline) and the epoch-tagged names a writer creates."""

from __future__ import annotations

import pytest

from coordinator.errors import ErrorCode, NotWriter
from coordinator.fencing import WriterFence, boottime
from node.idgen import EPOCH_SLOTS, SegmentNamer, epoch_tagged, next_delete_version


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_unbounded_fence_holds_until_revoked() -> None:
    fence = WriterFence()
    assert fence.valid() and not fence.bounded
    fence.check("Insert")
    fence.revoke("stopped")
    assert not fence.valid()
    with pytest.raises(NotWriter) as info:
        fence.check("Insert")
    assert info.value.code == ErrorCode.PERMISSION_DENIED
    assert "Insert refused" in info.value.reason and "stopped" in info.value.reason


def test_a_lease_bounded_fence_fails_for_good_once_the_deadline_passes() -> None:
    clock = Clock()
    deadline = [105.0]
    fence = WriterFence(lambda: deadline[0], margin=0.5, clock=clock)
    assert fence.bounded and fence.valid()
    clock.now = 104.4
    assert fence.valid()
    clock.now = 104.6  # within the margin of the deadline: refused
    assert not fence.valid()
    deadline[0] = 200.0  # a renewal that arrives after the deadline does not bring the role back
    clock.now = 104.7
    assert not fence.valid()
    assert fence.revoked == "the writer lease ran out"


def test_a_fence_without_a_held_lease_refuses() -> None:
    fence = WriterFence(lambda: 0.0, clock=Clock())
    assert not fence.valid()


def test_boottime_moves_forward() -> None:
    a = boottime()
    b = boottime()
    assert b >= a > 0


def test_names_and_delete_versions_of_different_epochs_never_collide() -> None:
    assert epoch_tagged(12345, 7) == 12307
    assert epoch_tagged(12345, 7 + EPOCH_SLOTS) == 12307
    versions = {0}
    for epoch in (1, 2, 3):
        v = 0
        seen = []
        for _ in range(50):
            nxt = next_delete_version(v, epoch)
            assert nxt > v and nxt % EPOCH_SLOTS == epoch
            seen.append(nxt)
            v = nxt
        assert not versions & set(seen)
        versions |= set(seen)
    names: dict[int, set[str]] = {}
    for epoch in (4, 5):
        namer = SegmentNamer(epoch)
        made = [namer.next() for _ in range(1000)]
        assert [int(n) for n in made] == sorted(int(n) for n in made) and len(set(made)) == 1000
        assert all(int(n) % EPOCH_SLOTS == epoch for n in made)
        names[epoch] = set(made)
    assert not names[4] & names[5]
