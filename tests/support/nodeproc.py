"""Run a real node process for tests: start on a free port, wait for its ready file, stop by PID."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import grpc

from milvus_wire import milvus_pb2_grpc
from tests.support.waiting import wait_for_ready_file

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
CHANNEL_OPTIONS = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]


def server_python() -> str:
    """The interpreter of server children: ``MISHARDS_SERVER_PYTHON`` when set (the client's tests run under
    other Pythons against servers of the project's own, scripts/client_pythons.sh), else this one."""
    return os.environ.get("MISHARDS_SERVER_PYTHON") or sys.executable


class NodeProcess:
    """One ``python -m node`` child. ``start()`` may be called again after ``kill()`` / ``stop()``."""

    _running: ClassVar[set[NodeProcess]] = set()

    @classmethod
    def reap_all(cls) -> list[int]:
        """Kill every node still running and return their PIDs (a test leaked them)."""
        leaked = []
        for node in list(cls._running):
            if node.proc is not None and node.proc.poll() is None:
                leaked.append(node.proc.pid)
            node.kill()
        return leaked

    def __init__(self, workdir: Path, extra_args: Sequence[str] = (), meta_uri: str = "",
                 env: dict[str, str] | None = None, storage: Path | None = None, http: bool = False) -> None:
        self.workdir = workdir
        self.storage = storage or workdir / "storage"
        self.extra_args = list(extra_args)
        self.meta_uri = meta_uri
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.address = ""
        self.metrics_port = 0
        self.http = http  # serve the REST API on a free port (else it is off: a standalone default is 19121)
        self.http_port = 0
        self._channel: grpc.Channel | None = None
        self._log_fh: Any = None
        self.starts = 0

    @property
    def log_path(self) -> Path:
        return self.workdir / f"node-{self.starts}.log"

    def start(self, timeout: float = 60.0) -> NodeProcess:
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError(f"node already running (pid {self.proc.pid})")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        ready = self.workdir / "ready.json"
        ready.unlink(missing_ok=True)
        args = [
            server_python(), "-m", "node", "--port", "0", "--storage-path", str(self.storage),
            "--ready-file", str(ready), "--http-port", "-1" if self.http else "0", *self.extra_args,
        ]
        if self.meta_uri:
            args += ["--meta-uri", self.meta_uri]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", **self.env}
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        self._log_fh = open(self.log_path, "wb")  # noqa: SIM115 - kept open for the child's lifetime
        self.proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=self._log_fh, stderr=subprocess.STDOUT)
        NodeProcess._running.add(self)

        info = wait_for_ready_file(self.proc, ready, timeout, "node", self.log_tail)
        self.address = info["address"]
        self.metrics_port = int(info.get("metrics_port", 0))
        self.http_port = int(info.get("http_port", 0))
        self._channel = grpc.insecure_channel(self.address, options=CHANNEL_OPTIONS)
        return self

    def stub(self) -> Any:
        assert self._channel is not None, "node not started"
        return milvus_pb2_grpc.MilvusServiceStub(self._channel)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _close_channel(self) -> None:
        NodeProcess._running.discard(self)
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        if self._log_fh is not None:
            self._log_fh.close()
            self._log_fh = None

    def kill(self) -> None:
        """SIGKILL: no flush, no goodbye (a crash)."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self._close_channel()

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM, then SIGKILL if it does not exit in time."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                log.warning("node %s ignored SIGTERM; killing", self.proc.pid)
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)
        self._close_channel()

    def __enter__(self) -> NodeProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
