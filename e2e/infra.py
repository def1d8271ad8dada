"""Infrastructure faults: a server (MariaDB, etcd) taken down by PID and brought back with the same command line
(same port, same data directory); a storage volume of fixed size (tmpfs) that can be filled up."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

from tests.support.waiting import poll_for

log = logging.getLogger(__name__)


class Outage:
    """Kill a server by PID (SIGKILL: a crash) and start it again from the command line it ran with.

    The first process is a child of this test process (started by tests/support), so it is reaped here; the
    relaunched one is owned by this object and stopped by ``close()``.
    """

    def __init__(self, name: str, pid: int, healthy: Callable[[], bool], log_path: Path | None = None) -> None:
        self.name = name
        self.pid = pid
        self.healthy = healthy
        self.log_path = log_path
        self.argv = [a.decode() for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a]
        self._relaunched: subprocess.Popen[bytes] | None = None

    def down(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        if self._relaunched is not None and self._relaunched.pid == self.pid:
            self._relaunched.wait(timeout=30)
        else:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
        log.info("%s (pid %d) killed", self.name, self.pid)

    def up(self, timeout: float = 60.0) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD_")}
        out = self.log_path.open("ab") if self.log_path is not None else subprocess.DEVNULL
        try:
            self._relaunched = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=out,
                                                stderr=subprocess.STDOUT, env=env)
        finally:
            if self.log_path is not None and not isinstance(out, int):
                out.close()
        self.pid = self._relaunched.pid
        poll_for(self.healthy, timeout, interval=0.1, what=f"{self.name} to come back")
        log.info("%s back (pid %d)", self.name, self.pid)

    def close(self) -> None:
        proc, self._relaunched = self._relaunched, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``path`` (needs root); unmounted at the end."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True,
                   capture_output=True, timeout=30)
    try:
        yield path
    finally:
        done = subprocess.run(["umount", str(path)], capture_output=True, timeout=30)
        if done.returncode != 0:
            subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30)


def fill(volume: Path, name: str = "filler.bin", chunk: int = 1 << 20) -> int:
    """Write zeros into ``volume/name`` until the volume is full; return the bytes written."""
    written = 0
    with (volume / name).open("wb", buffering=0) as fh:
        while chunk >= 4096:
            try:
                written += fh.write(b"\0" * chunk) or 0
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                chunk //= 16
    return written
