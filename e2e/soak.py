"""Resource samples of every process of the cluster (RSS, open files, threads from /proc) and whether any of them
grows: the median of the last third of the samples against the median of the first third."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from e2e.analysis import median


@dataclass(frozen=True)
class Sample:
    at: float
    name: str
    rss_kb: int
    fds: int
    threads: int


def sample(name: str, pid: int) -> Sample | None:
    """One process' figures, or None when it is gone."""
    try:
        status = open(f"/proc/{pid}/status").read()  # noqa: SIM115 - /proc reads are tiny
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    rss = int(fields.get("VmRSS", "0 kB").split()[0])
    return Sample(time.monotonic(), name, rss, fds, int(fields.get("Threads", "0").strip()))


def collect(pids: Callable[[], Iterable[tuple[str, int]]], seconds: float, interval: float) -> list[Sample]:
    """Sample every process ``pids()`` names each ``interval`` seconds for ``seconds``."""
    out: list[Sample] = []
    end = time.monotonic() + seconds
    while True:
        for name, pid in pids():
            s = sample(name, pid)
            if s is not None:
                out.append(s)
        if time.monotonic() + interval > end:
            return out
        time.sleep(interval)  # the sampling period


@dataclass(frozen=True)
class Trend:
    name: str
    metric: str
    first: float  # median of the second third of the samples (the first third is warm-up)
    last: float  # median of the last third
    peak: float
    samples: int
    series: tuple[float, ...] = ()

    def grows(self, ratio: float, slack: float) -> bool:
        """More than ``ratio`` times the start plus ``slack`` (absolute units of the metric)."""
        return self.last > self.first * ratio + slack


def trends(samples: Iterable[Sample]) -> list[Trend]:
    """Per process and metric: the second third of the run against the last third. The first third is warm-up:
    thread pools grow to what the load needs, caches fill; a leak keeps growing after it."""
    by_name: dict[str, list[Sample]] = {}
    for s in samples:
        by_name.setdefault(s.name, []).append(s)
    out = []
    for name, ss in sorted(by_name.items()):
        n = len(ss)
        third = max(1, n // 3)
        for metric in ("rss_kb", "fds", "threads"):
            values = [float(getattr(s, metric)) for s in ss]
            middle = values[third:n - third] or values
            out.append(Trend(name, metric, median(middle), median(values[-third:]), max(values), n, tuple(values)))
    return out


# How much a figure may grow from the middle third of the run to the last: RSS follows the data, which grows a
# little during a soak; open files and threads should not grow beyond noise once the warm-up is over.
LIMITS = {"rss_kb": (1.2, 20_000.0), "fds": (1.1, 8.0), "threads": (1.1, 4.0)}


def growing(found: Iterable[Trend]) -> list[Trend]:
    return [t for t in found if t.grows(*LIMITS[t.metric])]
