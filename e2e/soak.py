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
    first: float  # median of the first third
    last: float  # median of the last third
    peak: float
    samples: int

    def grows(self, ratio: float, slack: float) -> bool:
        """More than ``ratio`` times the start plus ``slack`` (absolute units of the metric)."""
        return self.last > self.first * ratio + slack


def trends(samples: Iterable[Sample]) -> list[Trend]:
    by_name: dict[str, list[Sample]] = {}
    for s in samples:
        by_name.setdefault(s.name, []).append(s)
    out = []
    for name, ss in sorted(by_name.items()):
        n = len(ss)
        third = max(1, n // 3)
        for metric in ("rss_kb", "fds", "threads"):
            values = [float(getattr(s, metric)) for s in ss]
            out.append(Trend(name, metric, median(values[:third]), median(values[-third:]), max(values), n))
    return out


# How much a figure may grow from the first third of the run to the last: RSS follows the data, which grows
# a little during a soak; open files and threads should not grow at all beyond noise.
LIMITS = {"rss_kb": (1.3, 20_000.0), "fds": (1.2, 10.0), "threads": (1.0, 4.0)}


def growing(found: Iterable[Trend]) -> list[Trend]:
    return [t for t in found if t.grows(*LIMITS[t.metric])]
