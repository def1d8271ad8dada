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


class SegmentNamer:
    """Unique, increasing numeric segment names (nanosecond time based)."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> str:
        with self._lock:
            self._last = max(time.time_ns(), self._last + 1)
            return str(self._last)
