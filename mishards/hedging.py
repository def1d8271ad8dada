"""When the proxy sends a slow sub-request's segments to another replica too (hedged requests).

A read node that pauses (a GC or VM freeze, SIGSTOP, a slow disk) holds every sub-request sent to it. After
``hedge_delay`` without an answer, the fan-out sends the same segments to another replica and takes the
first good answer (``mishards.gather``). The delay is either fixed (``hedge_after`` > 0) or adaptive
(``hedge_after`` = 0): the 95th percentile of the latencies of recent successful sub-requests, at least
``HEDGE_FLOOR`` and at most half the sub-request timeout. At the p95 about one sub-request in twenty is
hedged in a steady state; the floor keeps fast clusters from hedging on scheduling noise, the cap makes
sure a hedge goes out well before a stalled sub-request times out. ``HedgeBudget`` bounds hedges to a
tenth of the sub-requests (with a burst for the searches caught in flight by a pause), so a cluster that
is slow because it is overloaded is not loaded twice as much. A hedge that beats a node makes it suspected
only when the node answered nothing for ``SILENCE`` seconds (paused, hung), not when it was merely slow.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Sequence

HEDGE_FLOOR = 0.05  # seconds: the adaptive delay never goes below this
DEFAULT_CAP = 2.5  # seconds: the adaptive delay's cap when sub-requests have no timeout of their own
WINDOW = 256  # recent sub-request latencies the adaptive delay is computed from
MIN_SAMPLES = 20  # fewer than this: the delay is the cap (too little to know what is slow)
QUANTILE = 0.95
HEDGE_RATIO = 0.1  # hedges allowed per sub-request sent, in the long run
HEDGE_BURST = 10.0  # hedges allowed at once
# Seconds a node must have answered nothing before a hedge that beats it makes it suspected: a paused node
# soon passes it, a node starved of CPU for a moment (busy machine) does not.
SILENCE = 0.5


def quantile(samples: Sequence[float], q: float) -> float:
    """The ``q`` quantile of ``samples`` (nearest rank, no interpolation); ``samples`` must not be empty."""
    ordered = sorted(samples)
    rank = min(len(ordered), max(1, math.ceil(q * len(ordered))))
    return ordered[rank - 1]


def hedge_delay(fixed: float, recent: float | None, cap: float, floor: float = HEDGE_FLOOR) -> float | None:
    """Seconds to wait before hedging a sub-request, or None when hedging is off (``fixed`` < 0).

    ``fixed`` > 0 is used as it is; 0 asks for the adaptive delay: ``recent`` (the p95 of recent
    sub-requests, None when too few are known) within ``[floor, cap]``, the cap when nothing is known.
    """
    if fixed < 0:
        return None
    if fixed > 0:
        return fixed
    if recent is None:
        return cap
    return max(floor, min(cap, recent))


class LatencyWindow:
    """The latencies of the last ``size`` successful sub-requests, and their p95 (recomputed every
    ``every`` samples: sorting the window per search would cost more than the search's routing).

    Lock-free: appending to a deque and copying it are atomic in CPython; two threads recomputing at once
    both store a valid p95 of a recent window, and a lost count only delays the next recomputation."""

    def __init__(self, size: int = WINDOW, every: int = 16) -> None:
        self._samples: deque[float] = deque(maxlen=size)
        self._every = every
        self._since = 0
        self._p95: float | None = None

    def add(self, seconds: float) -> None:
        self._samples.append(seconds)
        self._since += 1
        if self._since >= self._every or self._p95 is None:
            self._since = 0
            samples = list(self._samples)
            self._p95 = quantile(samples, QUANTILE) if len(samples) >= MIN_SAMPLES else None

    def p95(self) -> float | None:
        return self._p95


class HedgeBudget:
    """A token bucket: every sub-request sent earns ``ratio`` of a hedge, a hedge spends one; at most
    ``burst`` are saved up (and the bucket starts full)."""

    def __init__(self, ratio: float = HEDGE_RATIO, burst: float = HEDGE_BURST) -> None:
        self.ratio = ratio
        self.burst = burst
        self._tokens = burst
        self._lock = threading.Lock()

    def earn(self, sent: int = 1) -> None:
        if self._tokens >= self.burst:  # unlocked read: a full bucket (the common case) stays cheap
            return
        with self._lock:
            self._tokens = min(self.burst, self._tokens + sent * self.ratio)

    def available(self) -> bool:
        """Whether a hedge could be spent now (an unlocked look: the answer may be stale by one)."""
        return self._tokens >= 1

    def spend(self) -> bool:
        """Take one hedge from the bucket; False when it is empty."""
        with self._lock:
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True
