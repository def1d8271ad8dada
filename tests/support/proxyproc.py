"""Run a real proxy process for tests: start on a free port, wait for its ready file, stop by PID."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc

from milvus_wire import milvus_pb2_grpc
from tests.support.nodeproc import CHANNEL_OPTIONS, ROOT, server_python
from tests.support.waiting import wait_for_ready_file


class ProxyProcess:
    def __init__(self, workdir: Path, membership: str, extra_args: Sequence[str] = (), http: bool = False) -> None:
        self.workdir = workdir
        self.membership = membership
        self.extra_args = list(extra_args)
        self.proc: subprocess.Popen[bytes] | None = None
        self.address = ""
        self.metrics_port = 0
        self.http = http  # serve the REST API on a free port (else off: the proxy's default is 19121)
        self.http_port = 0
        self._channel: grpc.Channel | None = None
        self._log: Any = None

    def start(self, timeout: float = 60.0) -> ProxyProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        ready = self.workdir / "proxy-ready.json"
        ready.unlink(missing_ok=True)
        args = [server_python(), "-m", "mishards", "--port", "0", "--membership", self.membership,
                "--ready-file", str(ready), "--http-port", "-1" if self.http else "0", *self.extra_args]
        env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        self._log = open(self.workdir / "proxy.log", "wb")  # noqa: SIM115 - open for the child's lifetime
        self.proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)

        info = wait_for_ready_file(self.proc, ready, timeout, "proxy", self.log_tail)
        self.address = info["address"]
        self.metrics_port = int(info.get("metrics_port", 0))
        self.http_port = int(info.get("http_port", 0))
        self._channel = grpc.insecure_channel(self.address, options=CHANNEL_OPTIONS)
        return self

    def stub(self) -> Any:
        assert self._channel is not None
        return milvus_pb2_grpc.MilvusServiceStub(self._channel)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join((self.workdir / "proxy.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL: the proxy vanishes mid-request (it holds no state, so nothing may be lost)."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.stop()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        if self._log is not None:
            self._log.close()
            self._log = None
