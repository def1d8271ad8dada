"""Auto-generated row ids: microsecond timestamp x 1000 + sequence, strictly increasing."""

from __future__ import annotations

import threading
import time

import numpy as np


class IdGenerator:
    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def observe(self, used_max: int) -> None:
        """Never hand out an id at or below one already used (e.g. seen in WAL replay)."""
        with self._lock:
            self._last = max(self._last, used_max)

    def take(self, n: int) -> np.ndarray:
        with self._lock:
            base = max(time.time_ns() // 1000 * 1000, self._last + 1)
            self._last = base + n - 1
        return np.arange(base, base + n, dtype=np.int64)


# Names and versions a writer creates end in its epoch modulo this, so that a deposed writer that writes after
# its successor took over (it was paused) can never produce a path its successor uses.
EPOCH_SLOTS = 100


def epoch_tagged(base: int, epoch: int) -> int:
    """``base`` rounded down to a multiple of ``EPOCH_SLOTS``, plus the epoch's slot."""
    return base // EPOCH_SLOTS * EPOCH_SLOTS + epoch % EPOCH_SLOTS


def next_delete_version(current: int, epoch: int) -> int:
    """The delete-log version after ``current`` written by the writer of ``epoch`` (always > ``current``)."""
    return epoch_tagged(current + EPOCH_SLOTS, epoch)


class SegmentNamer:
    """Unique, increasing numeric segment (and index file) names: nanosecond time based, ending in the
    writer's epoch slot."""

    def __init__(self, epoch: int = 0) -> None:
        self._epoch = epoch
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> str:
        with self._lock:
            self._last = epoch_tagged(max(time.time_ns(), self._last + EPOCH_SLOTS), self._epoch)
            return str(self._last)
