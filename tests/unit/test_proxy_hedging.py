"""The hedge delay (fixed, adaptive p95 within a floor and a cap, or off) and the hedge budget."""

from __future__ import annotations

import pytest

from mishards.hedging import HEDGE_FLOOR, MIN_SAMPLES, HedgeBudget, LatencyWindow, hedge_delay, quantile


def test_quantile_is_the_nearest_rank() -> None:
    samples = [float(i) for i in range(1, 101)]
    assert quantile(samples, 0.95) == 95.0
    assert quantile(samples, 0.5) == 50.0
    assert quantile([3.0], 0.95) == 3.0
    assert quantile([5.0, 1.0, 3.0], 1.0) == 5.0


@pytest.mark.parametrize(("fixed", "recent", "cap", "expected"), [
    (0.3, 0.01, 2.5, 0.3),  # fixed: used as it is
    (-1.0, 0.01, 2.5, None),  # negative: never hedge
    (0.0, None, 2.5, 2.5),  # adaptive, nothing known yet: the cap
    (0.0, 0.2, 2.5, 0.2),  # adaptive: the recent p95
    (0.0, 0.001, 2.5, HEDGE_FLOOR),  # ... never below the floor
    (0.0, 9.0, 2.5, 2.5),  # ... nor above the cap
])
def test_hedge_delay(fixed: float, recent: float | None, cap: float, expected: float | None) -> None:
    assert hedge_delay(fixed, recent, cap) == expected


def test_latency_window_knows_nothing_until_enough_samples() -> None:
    window = LatencyWindow(size=100, every=1)
    for _ in range(MIN_SAMPLES - 1):
        window.add(0.01)
    assert window.p95() is None
    window.add(0.01)
    assert window.p95() == 0.01


def test_latency_window_follows_recent_samples_only() -> None:
    window = LatencyWindow(size=100, every=10)
    for i in range(100):
        window.add(0.001 * (i + 1))
    assert window.p95() == pytest.approx(0.095)
    for _ in range(100):  # a faster regime replaces the old one entirely
        window.add(0.002)
    assert window.p95() == pytest.approx(0.002)


def test_budget_allows_a_burst_then_a_share_of_the_traffic() -> None:
    budget = HedgeBudget(ratio=0.1, burst=3.0)
    assert [budget.spend() for _ in range(4)] == [True, True, True, False]
    budget.earn(9)
    assert not budget.spend()  # 0.9 of a hedge saved up
    budget.earn(1)
    assert budget.spend() and not budget.spend()
    budget.earn(1000)
    assert [budget.spend() for _ in range(4)] == [True, True, True, False]  # never more than the burst
