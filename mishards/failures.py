"""Which nodes the proxy should avoid for a while after they failed (pure apart from the injected clock).

Membership from etcd or Kubernetes drops a dead node within its TTL, but a static member stays listed
forever; without this every search would first try it and pay a failed connection. A node that fails is
*suspected* for a back-off that doubles on each consecutive failure (``base`` up to ``cap`` seconds); one
success clears it. Suspects are only avoided, never excluded: when every replica of a segment is suspected
the search still tries one (``mishards.routing.plan_avoiding``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Suspicion:
    until: float  # clock value until which the node is avoided
    failures: int  # consecutive failures


def next_suspicion(previous: Suspicion | None, now: float, base: float, cap: float) -> Suspicion:
    """The suspicion after one more failure at ``now``: back-off ``base * 2**(failures-1)``, at most ``cap``."""
    failures = 1 if previous is None else previous.failures + 1
    backoff = min(cap, base * (2 ** min(failures - 1, 30)))
    return Suspicion(until=now + backoff, failures=failures)


class FailureTracker:
    """Thread-safe record of recent node failures."""

    def __init__(self, base: float = 0.5, cap: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        if not 0 < base <= cap:
            raise ValueError("need 0 < base <= cap")
        self.base = base
        self.cap = cap
        self.clock = clock
        self._suspects: dict[str, Suspicion] = {}
        self._lock = threading.Lock()

    def failed(self, node: str) -> None:
        with self._lock:
            self._suspects[node] = next_suspicion(self._suspects.get(node), self.clock(), self.base, self.cap)

    def succeeded(self, node: str) -> None:
        if node in self._suspects:  # unlocked read: the common case (no suspicion) stays cheap
            with self._lock:
                self._suspects.pop(node, None)

    def suspects(self) -> frozenset[str]:
        """Nodes whose back-off has not yet run out."""
        if not self._suspects:
            return frozenset()
        now = self.clock()
        with self._lock:
            return frozenset(node for node, s in self._suspects.items() if s.until > now)
