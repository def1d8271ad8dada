"""The harness' stand-in for Kubernetes: restart every process that exits (same port, same arguments), with a
back-off when it keeps failing, and keep a timeline of what happened to each process."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from e2e.procs import ManagedProcess, ProcessExited

log = logging.getLogger(__name__)

MIN_BACKOFF = 0.2
MAX_BACKOFF = 5.0


@dataclass(frozen=True)
class Event:
    at: float  # time.monotonic()
    name: str
    kind: str  # kill9 | pause | resume | term | exit | start | ready
    detail: str = ""


class Timeline:
    """Thread-safe, append-only record of process events."""

    def __init__(self) -> None:
        self._events: list[Event] = []
        self._lock = threading.Lock()

    def add(self, name: str, kind: str, detail: str = "") -> Event:
        event = Event(time.monotonic(), name, kind, detail)
        with self._lock:
            self._events.append(event)
        return event

    def events(self) -> list[Event]:
        with self._lock:
            return list(self._events)


def down_intervals(events: Iterable[Event], name: str, end: float) -> list[tuple[float, float]]:
    """When process ``name`` could not serve: from a kill, pause, stop or exit until it was ready again (or
    resumed from a pause). Pure: computed from the timeline alone."""
    intervals: list[tuple[float, float]] = []
    down_since: float | None = None
    for e in events:
        if e.name != name:
            continue
        if e.kind in ("kill9", "pause", "term", "exit"):
            if down_since is None:
                down_since = e.at
        elif e.kind in ("ready", "resume") and down_since is not None:
            intervals.append((down_since, e.at))
            down_since = None
    if down_since is not None:
        intervals.append((down_since, end))
    return intervals


def all_down(per_process: list[list[tuple[float, float]]]) -> list[tuple[float, float]]:
    """The intervals during which every one of the processes was down (intersection of their down times)."""
    if not per_process:
        return []
    result = per_process[0]
    for other in per_process[1:]:
        merged: list[tuple[float, float]] = []
        for a0, a1 in result:
            for b0, b1 in other:
                lo, hi = max(a0, b0), min(a1, b1)
                if lo < hi:
                    merged.append((lo, hi))
        result = sorted(merged)
    return result


class Supervisor:
    """Restarts exited processes in a background thread. ``hold(p)`` keeps one from being restarted (while the
    harness stops it on purpose); ``ready`` events are recorded when a restarted process writes its ready file."""

    def __init__(self, processes: list[ManagedProcess], timeline: Timeline, interval: float = 0.1) -> None:
        self.processes = processes
        self.timeline = timeline
        self.interval = interval
        self.restarts: dict[str, int] = {p.name: 0 for p in processes}
        self.exit_codes: dict[str, list[int]] = {p.name: [] for p in processes}
        self._held: set[str] = set()
        self._pending_ready: set[str] = set()
        self._backoff: dict[str, float] = {}
        self._next_try: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="supervisor", daemon=True)
        self._lock = threading.Lock()

    def start(self) -> Supervisor:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def hold(self, p: ManagedProcess) -> None:
        with self._lock:
            self._held.add(p.name)

    def release(self, p: ManagedProcess) -> None:
        with self._lock:
            self._held.discard(p.name)

    def expect_ready(self, p: ManagedProcess) -> None:
        """Record a ``ready`` event once ``p`` (started by someone else) has written its ready file."""
        with self._lock:
            self._pending_ready.add(p.name)

    def _run(self) -> None:
        while not self._stop.is_set():
            for p in self.processes:
                try:
                    self._visit(p)
                except Exception:  # keep supervising the others
                    log.exception("supervising %s failed", p.name)
            self._stop.wait(self.interval)

    def _visit(self, p: ManagedProcess) -> None:
        now = time.monotonic()
        with self._lock:
            held = p.name in self._held
            pending = p.name in self._pending_ready
        with p.lock:
            if p.name in self._pending_ready and p.alive():
                try:
                    ready = p.wait_ready(timeout=0)
                except (TimeoutError, ProcessExited):
                    ready = None
                if ready is not None:
                    self.timeline.add(p.name, "ready", ready.address)
                    with self._lock:
                        self._pending_ready.discard(p.name)
                    self._backoff.pop(p.name, None)
                return
            if held or p.proc is None or p.alive():
                return
            code = p.exit_code()
            if pending or p.name not in self._next_try:
                self.timeline.add(p.name, "exit", str(code))
                if code is not None:
                    self.exit_codes[p.name].append(code)
                backoff = self._backoff.get(p.name, 0.0)
                self._next_try[p.name] = now + backoff
                self._backoff[p.name] = min(MAX_BACKOFF, max(MIN_BACKOFF, backoff * 2))
                with self._lock:
                    self._pending_ready.discard(p.name)
            if now < self._next_try[p.name]:
                return
            del self._next_try[p.name]
            p.launch()
            self.restarts[p.name] += 1
            self.timeline.add(p.name, "start", f"restart {self.restarts[p.name]} after exit {code}")
            with self._lock:
                self._pending_ready.add(p.name)
