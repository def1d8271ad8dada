"""Capped exponential backoff with jitter, for loops that retry a failing remote call."""

from __future__ import annotations

import random


class Backoff:
    """Capped exponential backoff with jitter: attempt n waits uniformly in [c/2, c], c = min(max, initial*2**n)."""

    def __init__(self, initial: float, maximum: float, rng: random.Random | None = None) -> None:
        if not 0 < initial <= maximum:
            raise ValueError(f"backoff needs 0 < initial <= maximum, got {initial} and {maximum}")
        self.initial = initial
        self.maximum = maximum
        self.attempt = 0
        self._rng = rng or random.Random()

    def next(self) -> float:
        ceiling = min(self.maximum, self.initial * 2 ** min(self.attempt, 62))
        self.attempt += 1
        return self._rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.attempt = 0
