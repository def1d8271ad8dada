"""Child processes of a supervisor (``mishards up``, and the parent of a multi-process node or proxy,
``coordinator/worker_pool.py``): started so that they never outlive it, restarted with backoff when they die.

Each child runs ``python -m <module> <args> --ready-file <file>`` with its output in its own log (or the
supervisor's own output), in a session of its own (Ctrl-C in the terminal reaches the supervisor only, which
stops the children in order). It dies with the supervisor however that one ends: SIGTERM through
``PR_SET_PDEATHSIG``, and a pipe whose end-of-file the child watches (``coordinator/parent_watch.py``).

A child that exits is started again with the same arguments (same port, same data) after a backoff that starts
at ``RestartPolicy.initial`` and doubles up to ``maximum``; it starts from ``initial`` again once the child has
stayed up ``stable_after`` seconds. The decisions are pure (:func:`next_backoff`); the clock is the caller's.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from coordinator import parent_watch

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    initial: float = 0.5  # seconds before the first restart
    maximum: float = 30.0  # longest wait between restarts
    stable_after: float = 60.0  # a child up this long starts again from ``initial`` when it dies


def next_backoff(policy: RestartPolicy, previous: float, uptime: float) -> float:
    """Seconds to wait before restarting a child that ran ``uptime`` seconds, the last wait having been
    ``previous`` (0 before any restart)."""
    if previous <= 0 or uptime >= policy.stable_after:
        return policy.initial
    return min(policy.maximum, previous * 2)


@dataclass
class Child:
    """One supervised process and its restart state."""

    name: str
    module: str
    args: list[str]
    ready: Path
    log_path: Path | None  # None: the supervisor's own stdout / stderr
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    backoff: float = 0.0  # the last wait before a restart (0: never restarted)
    restart_at: float | None = None  # when the pending restart is due
    restarts: int = 0
    serving: bool = False  # its ready file appeared since it was last started
    info: dict[str, object] = field(default_factory=dict)


class Supervisor:
    def __init__(self, env: dict[str, str], policy: RestartPolicy = RestartPolicy(),
                 report: Callable[[str], None] = print, clock: Callable[[], float] = time.monotonic,
                 label: str = "mishards up") -> None:
        self.env = env
        self.label = label  # how reports name the supervisor
        self.policy = policy
        self.report = report
        self.clock = clock
        self.children: list[Child] = []
        # The write end stays here only: when this process is gone, every child reads end-of-file.
        self._watch_read, self._watch_write = os.pipe()

    def add(self, name: str, module: str, args: Sequence[str], ready: Path, log_path: Path | None) -> Child:
        child = Child(name, module, list(args), ready, log_path)
        self.children.append(child)
        return child

    def start(self, child: Child) -> None:
        child.ready.unlink(missing_ok=True)
        out: IO[bytes] | None = None if child.log_path is None else open(child.log_path, "ab")  # noqa: SIM115
        try:
            child.proc = subprocess.Popen(
                [sys.executable, "-m", child.module, *child.args, "--ready-file", str(child.ready)],
                stdout=out, stderr=None if out is None else subprocess.STDOUT, start_new_session=True,
                pass_fds=(self._watch_read,),
                env={**self.env, parent_watch.ENV: str(self._watch_read)},
                preexec_fn=parent_watch.die_with_parent(),  # mishards up starts no threads of its own
            )
        finally:
            if out is not None:
                out.close()  # the child has its own copy
        child.started_at = self.clock()
        child.serving = False
        child.restart_at = None

    def wait_ready(self, child: Child, timeout: float = 120.0) -> dict[str, object]:
        """Block until ``child`` writes its ready file (its contents), or raise if it exits first."""
        deadline = time.monotonic() + timeout
        while not child.ready.exists():
            assert child.proc is not None
            if child.proc.poll() is not None:
                where = f"; see {child.log_path}" if child.log_path is not None else ""
                raise RuntimeError(f"{child.name} exited with {child.proc.returncode}{where}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{child.name} did not become ready in {timeout:.0f}s")
            time.sleep(0.05)
        child.info = dict(json.loads(child.ready.read_text()))
        child.serving = True
        return child.info

    def tend(self) -> None:
        """One round of supervision: note children that exited (and schedule their restart), start those due,
        announce those that came back."""
        now = self.clock()
        for child in self.children:
            proc = child.proc
            if child.restart_at is None and proc is not None and proc.poll() is not None:
                uptime = now - child.started_at
                child.backoff = next_backoff(self.policy, child.backoff, uptime)
                child.restart_at = now + child.backoff
                self.report(f"{self.label}: {child.name} (pid {proc.pid}) exited with {proc.returncode} after "
                            f"{uptime:.1f} s; restarting it in {child.backoff:g} s")
                log.warning("%s exited with %s after %.1f s; restart in %g s", child.name, proc.returncode, uptime,
                            child.backoff)
            elif child.restart_at is not None and now >= child.restart_at:
                child.restarts += 1
                try:
                    self.start(child)
                except OSError as exc:
                    child.backoff = next_backoff(self.policy, child.backoff, 0.0)
                    child.restart_at = now + child.backoff
                    self.report(f"{self.label}: cannot restart {child.name}: {exc}; next try in {child.backoff:g} s")
                    continue
                assert child.proc is not None
                log.warning("%s restarted (restart %d, pid %d)", child.name, child.restarts, child.proc.pid)
            elif proc is not None and not child.serving and child.ready.exists():
                child.info = dict(json.loads(child.ready.read_text()))
                child.serving = True
                if child.restarts:
                    metrics = child.info.get("metrics_port")
                    where = f"; metrics on port {metrics}" if metrics else ""
                    self.report(f"{self.label}: {child.name} is back (pid {proc.pid}, restart {child.restarts}){where}")

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM to every child, last started first; SIGKILL to any still running after ``timeout``."""
        for child in reversed(self.children):
            if child.proc is not None and child.proc.poll() is None:
                child.proc.terminate()
        for child in reversed(self.children):
            if child.proc is None:
                continue
            try:
                child.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                log.warning("%s ignored SIGTERM for %.0f s; killing it", child.name, timeout)
                child.proc.kill()
                child.proc.wait(timeout=10)
        os.close(self._watch_write)
        os.close(self._watch_read)
