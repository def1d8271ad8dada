"""Run ``mishards up`` for tests: a local cluster (proxy, writer, readers) on free ports, stopped by PID."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.support.nodeproc import ROOT, server_python
from tests.support.waiting import poll_for


class UpProcess:
    def __init__(self, workdir: Path, extra_args: Sequence[str] = ()) -> None:
        self.workdir = workdir
        self.extra_args = list(extra_args)
        self.proc: subprocess.Popen[bytes] | None = None
        self.info: dict[str, Any] = {}
        self._log: Any = None

    @property
    def log_path(self) -> Path:
        return self.workdir / "up.out"

    def start(self, timeout: float = 120.0) -> UpProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        ready = self.workdir / "up.ready"
        ready.unlink(missing_ok=True)
        args = [server_python(), "-m", "mishards.cli", "up", "--port", "0", "--data-dir", str(self.workdir / "data"),
                "--ready-file", str(ready), *self.extra_args]
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - open for the child's lifetime
        self.proc = subprocess.Popen(args, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=self._log,
                                     stderr=subprocess.STDOUT)
        proc = self.proc

        def started() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"mishards up exited ({proc.returncode}):\n{self.log_tail()}")
            return ready.exists()

        try:
            poll_for(started, timeout, what="mishards up")
        except BaseException:
            self.stop()
            raise
        self.info = dict(json.loads(ready.read_text()))
        return self

    @property
    def address(self) -> str:
        return str(self.info["address"])

    @property
    def http_port(self) -> int:
        return int(self.info.get("http_port", 0))

    def log_tail(self, lines: int = 60) -> str:
        parts = []
        for path in [self.log_path, *sorted((self.workdir / "data" / "logs").glob("*.log"))]:
            try:
                tail = path.read_text(errors="replace").splitlines()[-lines:]
            except OSError:
                continue
            parts.append(f"--- {path.name} ---\n" + "\n".join(tail))
        return "\n".join(parts)

    def stop(self) -> None:
        """SIGTERM (``up`` stops proxy, readers, writer), SIGKILL if it does not exit in time."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)
        if self._log is not None:
            self._log.close()
            self._log = None
