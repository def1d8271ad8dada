"""Restart decisions of ``mishards up``'s supervisor (pure)."""

from __future__ import annotations

from coordinator.supervisor import RestartPolicy, next_backoff

POLICY = RestartPolicy(initial=0.5, maximum=30.0, stable_after=60.0)


def test_backoff_doubles_up_to_the_maximum_while_a_child_keeps_dying() -> None:
    waits = []
    previous = 0.0
    for _ in range(10):
        previous = next_backoff(POLICY, previous, uptime=1.0)
        waits.append(previous)
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0]


def test_backoff_starts_over_after_a_child_stayed_up() -> None:
    assert next_backoff(POLICY, 30.0, uptime=59.9) == 30.0
    assert next_backoff(POLICY, 30.0, uptime=60.0) == 0.5
    assert next_backoff(POLICY, 0.0, uptime=0.0) == 0.5
