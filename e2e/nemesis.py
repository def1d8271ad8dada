"""Faults on a seeded schedule: kill -9, SIGSTOP/SIGCONT (short, or longer than the lease) and clean restarts of
the writer, the standby, a read node or a proxy. The plan is a pure function of the seed, printed at the start
of a run so that a run can be repeated; one fault at a time, each once the cluster has healed from the last."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from e2e.cluster import Cluster
from e2e.procs import ManagedProcess

log = logging.getLogger(__name__)

KINDS = ("kill9", "pause", "restart")
TARGETS = ("writer", "standby", "reader", "proxy")


@dataclass(frozen=True)
class Fault:
    at: float  # seconds after the start of the run
    kind: str  # kill9 | pause | restart
    target: str  # writer | standby | reader | proxy
    pick: int  # which reader / proxy
    hold: float = 0.0  # seconds a pause lasts

    def describe(self) -> str:
        hold = f" for {self.hold:.1f}s" if self.kind == "pause" else ""
        return f"t+{self.at:.1f}s {self.kind} {self.target}#{self.pick}{hold}"


def plan(seed: int, duration: float, ttl: float, kinds: Sequence[str] = KINDS, targets: Sequence[str] = TARGETS,
         warmup: float = 3.0) -> list[Fault]:
    """The faults of one run. Pauses are short (0.5-1.5 s) or longer than the lease (TTL + 1-3 s); faults are
    spaced by TTL + 3-6 s so the cluster can recover in between."""
    rng = random.Random(seed)
    faults: list[Fault] = []
    t = warmup
    while True:
        kind = rng.choice(list(kinds))
        target = rng.choice(list(targets))
        hold = 0.0
        if kind == "pause":
            hold = round(rng.uniform(0.5, 1.5) if rng.random() < 0.5 else ttl + rng.uniform(1.0, 3.0), 2)
        if t + hold > duration:
            return faults
        faults.append(Fault(round(t, 2), kind, target, rng.randrange(1000), hold))
        t += hold + ttl + rng.uniform(3.0, 6.0)


def resolve(cluster: Cluster, fault: Fault) -> ManagedProcess | None:
    if fault.target == "writer":
        return cluster.writer()
    if fault.target == "standby":
        return cluster.standby()
    group = cluster.readers if fault.target == "reader" else cluster.proxies
    return group[fault.pick % len(group)] if group else None


def apply(cluster: Cluster, p: ManagedProcess, kind: str, hold: float = 0.0) -> None:
    """Inflict one fault on ``p`` and undo what the harness must undo (SIGCONT); restarts after a kill or a
    deposition are the supervisor's."""
    timeline, supervisor = cluster.timeline, cluster.supervisor
    if kind == "kill9":
        timeline.add(p.name, "kill9")
        p.kill9()
    elif kind == "pause":
        timeline.add(p.name, "pause", f"{hold:.1f}s")
        p.pause()
        time.sleep(hold)  # the fault's duration, not a wait for a state
        p.resume()
        timeline.add(p.name, "resume")
    elif kind == "restart":
        supervisor.hold(p)
        try:
            timeline.add(p.name, "term")
            p.terminate()
            p.launch()
            timeline.add(p.name, "start", "restart")
            supervisor.expect_ready(p)
        finally:
            supervisor.release(p)
    else:
        raise ValueError(f"unknown fault {kind!r}")


class Nemesis:
    """Applies a plan in a thread, relative to ``start()``; ``applied`` says what was done to which process."""

    def __init__(self, cluster: Cluster, faults: Sequence[Fault], heal_timeout: float = 60.0) -> None:
        self.cluster = cluster
        self.faults = list(faults)
        self.heal_timeout = heal_timeout
        self.applied: list[str] = []
        self.skipped: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="nemesis", daemon=True)
        self.t0 = 0.0

    def start(self) -> Nemesis:
        self.t0 = time.monotonic()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=120)

    def _run(self) -> None:
        for fault in self.faults:
            if self._stop.wait(max(0.0, self.t0 + fault.at - time.monotonic())):
                return
            deadline = time.monotonic() + self.heal_timeout
            while not self.cluster.healthy():
                if self._stop.wait(0.2):
                    return
                if time.monotonic() > deadline:
                    self.skipped.append(f"{fault.describe()}: the cluster did not heal in {self.heal_timeout:.0f}s")
                    break
            target = resolve(self.cluster, fault)
            if target is None:
                self.skipped.append(f"{fault.describe()}: no such process now")
                continue
            at = time.monotonic() - self.t0
            self.applied.append(f"t+{at:.1f}s {fault.kind} {target.name} ({fault.target})"
                                + (f" for {fault.hold:.1f}s" if fault.kind == "pause" else ""))
            log.info("nemesis: %s", self.applied[-1])
            apply(self.cluster, target, fault.kind, fault.hold)
