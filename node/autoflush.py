"""The writer's background upkeep: timed flushes on one thread; merges, index builds and garbage collection on
another (a flush waits only for maintenance of its own collection, never for a whole maintenance pass). A
maintenance pass starts right after each timed flush (or ``auto_flush_interval`` after the previous pass), so
that its merges run early in the flush cycle rather than in the way of the next flush.

A timed flush keeps Milvus 1.1's promise that an acknowledged row is searchable within ``auto_flush_interval``.
Its deadline runs from the oldest acknowledged record still buffered (not from the end of the previous
flush), and the flush starts early by what recent flushes cost plus a short allowance for read nodes to
catch up, so that flush and catalog publication end within the interval. Buffers over
``insert_buffer_size`` are flushed at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from node.engine import Engine

log = logging.getLogger(__name__)

READ_ALLOWANCE = 0.1  # seconds left after a flush for the proxy and read nodes to catch up and load the segment
COST_MARGIN = 1.25  # the slowest recent flush, plus this share of it
COST_HISTORY = 8  # timed flushes whose durations the lead is computed from
RETRY_PAUSE = 1.0  # seconds before a failed flush is tried again


def flush_lead(recent_costs: Sequence[float], interval: float) -> float:
    """How long before the deadline a timed flush starts: the slowest of the recent flushes with a margin, plus
    the read-side allowance; at most half the interval (a slow flush never makes flushing continuous)."""
    slowest = max(recent_costs, default=0.0)
    return max(0.0, min(slowest * COST_MARGIN + READ_ALLOWANCE, interval / 2))


def flush_due(oldest_at: float | None, interval: float, lead: float) -> float | None:
    """When the next timed flush starts: ``interval`` after the oldest buffered record was acknowledged, less
    ``lead``. None when nothing is buffered or timed flushes are off (interval 0)."""
    if oldest_at is None or interval <= 0:
        return None
    return oldest_at + interval - lead


class Upkeep:
    def __init__(self, engine: Engine, clock: Callable[[], float] = time.monotonic) -> None:
        self.engine = engine
        self.clock = clock
        self.costs: deque[float] = deque(maxlen=COST_HISTORY)  # seconds taken by recent timed flushes
        self._stop = threading.Event()
        self._flush_wake = threading.Event()
        self._maintain_wake = threading.Event()
        self._threads = [threading.Thread(target=self._run_flushes, name="auto-flush", daemon=True),
                         threading.Thread(target=self._run_maintenance, name="maintenance", daemon=True)]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.wake(maintenance=True)
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout=60)

    def wake(self, maintenance: bool = False) -> None:
        """Look at the flush deadline again now (a record reached an empty buffer, a buffer is over its limit, the
        interval changed); with ``maintenance`` also start a maintenance pass."""
        self._flush_wake.set()
        if maintenance:
            self._maintain_wake.set()

    def next_flush(self) -> float | None:
        """When the next timed flush is due (``clock`` time), or None."""
        interval = self.engine.auto_flush_interval
        return flush_due(self.engine.write_buffers.oldest_at(), interval, flush_lead(self.costs, interval))

    def _run_flushes(self) -> None:
        from node import maintenance

        while not self._stop.is_set():
            self._flush_wake.clear()  # a wake from here on ends the wait below at once
            due = self.next_flush()
            now = self.clock()
            if not self.engine.buffers_over_limit() and (due is None or due > now):
                self._flush_wake.wait(timeout=None if due is None else due - now)
                continue
            try:
                maintenance.flush(self.engine, None)
            except Exception:
                log.exception("timed flush failed; the write-ahead log keeps the data, retrying")
                self._stop.wait(RETRY_PAUSE)
                continue
            self.costs.append(self.clock() - now)
            self._maintain_wake.set()  # merge what the flush added now, well before the next flush is due

    def _run_maintenance(self) -> None:
        from node import maintenance, merges

        engine = self.engine
        last_sweep = self.clock()
        contention = merges.MergeContention()  # merges here hold the lock only to plan and commit
        while not self._stop.is_set():
            interval = engine.auto_flush_interval
            self._maintain_wake.wait(timeout=interval if interval > 0 else 1.0)
            self._maintain_wake.clear()
            if self._stop.is_set():
                return
            try:
                merges.merge_all(engine, contention)
                if engine.builds is not None:
                    engine.builds.tick()
                maintenance.collect_garbage(engine)
                if self.clock() - last_sweep >= engine.settings.file_cleanup_timeout:
                    maintenance.remove_stale_index_files(engine)
                    last_sweep = self.clock()
            except Exception:
                log.exception("background maintenance failed; retrying at the next interval")
