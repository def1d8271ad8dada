"""Whether this process may still act as the cluster's writer, decided locally and conservatively.

A writer holds its role through a lease (etcd, or a row in the catalog). The lease is valid at least until
the moment its last successful renewal was *sent* plus its TTL: whoever granted it stamped the expiry later
than that, so no successor can take over before. A process that was paused (SIGSTOP, a long GC pause, a
frozen VM, a partition) does not know it was deposed until it looks at the clock, so the writer asks the
fence right before every irreversible step: before it writes the log, after the log is durable and before
it acknowledges, before it writes or deletes shared files. Once the deadline has passed the answer is no,
for good.

The deadline is measured on the boot-time clock, which keeps counting while the machine is suspended (the
monotonic clock does not on Linux), so a resumed VM cannot believe its lease is younger than it is.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from coordinator.errors import NotWriter


def boottime() -> float:
    """Seconds on a clock that never goes back and keeps counting through suspend (CLOCK_BOOTTIME on Linux)."""
    clock = getattr(time, "CLOCK_BOOTTIME", None)
    return time.clock_gettime(clock) if clock is not None else time.monotonic()


class WriterFence:
    """A local, conservative answer to "may this process still write as the writer?".

    Args:
        deadline: returns the boot-time instant until which the role is provably held (0 = not held); None
            means no lease bounds the role (a standalone node, or an ``rw`` node without election).
        margin: seconds subtracted from the deadline (clock rate differences between machines).
        clock: the clock the deadline is on (``boottime`` unless a test injects another).
    """

    def __init__(self, deadline: Callable[[], float] | None = None, margin: float = 0.0,
                 clock: Callable[[], float] = boottime) -> None:
        self._deadline = deadline
        self._margin = margin
        self._clock = clock
        self._revoked: str | None = None
        self._lock = threading.Lock()

    @property
    def bounded(self) -> bool:
        """True when a lease bounds the role (an elected writer)."""
        return self._deadline is not None

    @property
    def revoked(self) -> str | None:
        """Why the role was given up for good (None while it may still be held)."""
        return self._revoked

    def valid(self) -> bool:
        if self._revoked is not None:
            return False
        if self._deadline is None:
            return True
        if self._clock() < self._deadline() - self._margin:
            return True
        self.revoke("the writer lease ran out")
        return False

    def check(self, what: str) -> None:
        """Raise :class:`NotWriter` unless the role is still held (``what`` names the refused step)."""
        if not self.valid():
            raise NotWriter(f"{what} refused: this node is no longer the writer ({self._revoked}); "
                            "nothing was written")

    def revoke(self, reason: str) -> None:
        """Give the role up for good: every later check fails."""
        with self._lock:
            if self._revoked is None:
                self._revoked = reason
