"""A small progress bar for stderr: rows done, rows/s and ETA. On a terminal it redraws one line; otherwise
(a log file, a pipe) it prints a plain line at most every ``interval`` seconds and at the end."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TextIO


def format_duration(seconds: float) -> str:
    """Pure: ``m:ss`` or ``h:mm:ss``; ``--:--`` when unknown."""
    if seconds != seconds or seconds == float("inf") or seconds < 0:
        return "--:--"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def render(done: int, total: int, elapsed: float, run_done: int | None = None, width: int = 24,
           bar: bool = True) -> str:
    """Pure: one progress line for ``done`` of ``total`` rows, ``run_done`` of them (default all) sent in the
    ``elapsed`` seconds of this run (the rate and the ETA come from those)."""
    fraction = done / total if total else 1.0
    sent = done if run_done is None else run_done
    rate = sent / elapsed if elapsed > 0 else 0.0
    eta = (total - done) / rate if rate > 0 else float("inf")
    if done >= total:
        eta = 0.0
    text = (f"{fraction * 100:5.1f}%  {done:,}/{total:,} rows  {rate:,.0f} rows/s  "
            f"elapsed {format_duration(elapsed)}  ETA {format_duration(eta)}")
    if not bar:
        return text
    filled = int(width * min(1.0, fraction))
    return f"[{'#' * filled}{'.' * (width - filled)}] {text}"


class Progress:
    """Thread-safe counter that draws itself; ``start_done`` rows were already done by an earlier run and count
    toward the bar but not toward the rate."""

    def __init__(self, total: int, stream: TextIO, start_done: int = 0, interval: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.total = total
        self._stream = stream
        self._tty = bool(getattr(stream, "isatty", lambda: False)())
        self._interval = interval if interval is not None else (0.2 if self._tty else 5.0)
        self._clock = clock
        self._lock = threading.Lock()
        self._base = start_done
        self._done = 0
        self._started = clock()
        self._last_draw = float("-inf")

    @property
    def done(self) -> int:
        return self._base + self._done

    def add(self, rows: int) -> None:
        with self._lock:
            self._done += rows
            now = self._clock()
            if now - self._last_draw >= self._interval:
                self._last_draw = now
                self._draw(now, final=False)

    def finish(self) -> None:
        with self._lock:
            self._draw(self._clock(), final=True)

    def _draw(self, now: float, final: bool) -> None:
        text = render(self.done, self.total, now - self._started, run_done=self._done, bar=self._tty)
        if self._tty:
            self._stream.write("\r" + text + ("\n" if final else ""))
        else:
            self._stream.write(text + "\n")
        self._stream.flush()
