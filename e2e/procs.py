"""One process of the cluster under test, started through the public command line and handled by PID.

A ``ManagedProcess`` keeps its argument list, so a restart reuses the same port, storage and settings (what
Kubernetes does with a pod's container). Every start gets its own log file. Faults are signals sent to the
PID: SIGKILL, SIGSTOP / SIGCONT, SIGTERM.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, ClassVar

log = logging.getLogger(__name__)

# The console script installed next to this interpreter (the project's virtualenv).
MISHARDS = str(Path(sys.executable).parent / "mishards")


@dataclass(frozen=True)
class Ready:
    """What a process wrote to its ready file."""

    address: str
    pid: int
    metrics_port: int


class ProcessExited(RuntimeError):
    pass


class ManagedProcess:
    """A child process with a fixed argument list, restartable any number of times.

    ``start()`` launches it and waits for its ready file (``--ready-file`` is appended to ``argv``).
    ``kill9``, ``pause``, ``resume`` and ``terminate`` act on the current PID.
    """

    _running: ClassVar[set[ManagedProcess]] = set()
    _registry_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, name: str, argv: Sequence[str], workdir: Path, kind: str,
                 env: dict[str, str] | None = None) -> None:
        self.name = name
        self.kind = kind  # "rw", "ro" or "proxy"
        self.argv = list(argv)
        self.workdir = workdir
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready: Ready | None = None
        self.starts = 0
        self.paused = False
        self._log_fh: IO[bytes] | None = None
        self.lock = threading.RLock()  # held by whoever changes the process (nemesis, supervisor)

    @classmethod
    def reap_all(cls) -> list[str]:
        """SIGKILL every process still running; return the names of those that were (a leak)."""
        leaked = []
        with cls._registry_lock:
            running = list(cls._running)
        for p in running:
            if p.alive():
                leaked.append(f"{p.name} (pid {p.pid})")
            p.kill9()
        return leaked

    # -- state -------------------------------------------------------------------------------

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc is not None else 0

    @property
    def address(self) -> str:
        assert self.ready is not None, f"{self.name} was never started"
        return self.ready.address

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}-{self.starts}.log"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def exit_code(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    # -- lifecycle ---------------------------------------------------------------------------

    def launch(self) -> None:
        """Start the process without waiting for it to be ready."""
        with self.lock:
            if self.alive():
                raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
            self._close_log()
            self.workdir.mkdir(parents=True, exist_ok=True)
            self.starts += 1
            ready_file = self.workdir / f"{self.name}.ready.json"
            ready_file.unlink(missing_ok=True)
            env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", **self.env}
            fh = open(self.log_path, "wb")  # noqa: SIM115 - open for the child's lifetime
            self._log_fh = fh
            self.proc = subprocess.Popen([*self.argv, "--ready-file", str(ready_file)], env=env, stdout=fh,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            self.ready = None
            self.paused = False
            with ManagedProcess._registry_lock:
                ManagedProcess._running.add(self)
            log.info("%s started (pid %d, start %d)", self.name, self.proc.pid, self.starts)

    def wait_ready(self, timeout: float = 90.0) -> Ready:
        ready_file = self.workdir / f"{self.name}.ready.json"
        deadline = time.monotonic() + timeout
        proc = self.proc
        assert proc is not None
        while not ready_file.exists():
            if proc.poll() is not None:
                raise ProcessExited(f"{self.name} exited with {proc.returncode} while starting:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} wrote no ready file within {timeout:.0f}s:\n{self.log_tail()}")
            time.sleep(0.05)
        info = json.loads(ready_file.read_text())
        self.ready = Ready(str(info["address"]), int(info.get("pid", proc.pid)), int(info.get("metrics_port", 0)))
        return self.ready

    def start(self, timeout: float = 90.0) -> Ready:
        self.launch()
        return self.wait_ready(timeout)

    def _signal(self, sig: signal.Signals) -> bool:
        if not self.alive():
            return False
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            return False
        return True

    def kill9(self) -> None:
        """SIGKILL and reap: a crash, nothing flushed."""
        with self.lock:
            if self._signal(signal.SIGKILL):
                assert self.proc is not None
                self.proc.wait(timeout=30)
            self.paused = False
            self._forget()

    def pause(self) -> None:
        with self.lock:
            if self._signal(signal.SIGSTOP):
                self.paused = True

    def resume(self) -> None:
        with self.lock:
            self._signal(signal.SIGCONT)
            self.paused = False

    def terminate(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (a clean stop), SIGKILL after ``timeout``; returns the exit code."""
        with self.lock:
            if self.paused:
                self.resume()
            if self._signal(signal.SIGTERM):
                assert self.proc is not None
                try:
                    self.proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    log.warning("%s ignored SIGTERM for %.0fs; killing", self.name, timeout)
                    self.kill9()
            self._forget()
            return self.exit_code()

    def _forget(self) -> None:
        with ManagedProcess._registry_lock:
            ManagedProcess._running.discard(self)
        self._close_log()

    def _close_log(self) -> None:
        fh, self._log_fh = self._log_fh, None
        if fh is not None:
            fh.close()

