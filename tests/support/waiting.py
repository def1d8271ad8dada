"""Polling and port helpers for tests.

Nothing in here sleeps for a fixed time: every wait is a poll with a deadline.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


def poll_for(predicate: Callable[[], T], timeout: float, interval: float = 0.02, what: str = "") -> T:
    """Call ``predicate`` until it returns a truthy value and return that value.

    ``predicate`` is called at least once. Exceptions raised by it propagate unchanged, so a
    predicate can abort the wait early (for example when the process it waits for has died).

    Raises:
        TimeoutError: if no truthy value was returned within ``timeout`` seconds. The message
            contains ``what``.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"timed out after {timeout:.1f}s waiting for {what or 'condition'}")
        time.sleep(min(interval, remaining))


def wait_for_ready_file(proc: subprocess.Popen[bytes], ready: Path, timeout: float, name: str,
                        log_tail: Callable[[], str]) -> dict[str, Any]:
    """Wait until ``proc`` writes its ready file and return what it wrote (address, pid, metrics port, ...).

    Raises RuntimeError, with the end of its log, as soon as the process exits instead.
    """

    def is_ready() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{log_tail()}")
        return ready.exists()

    poll_for(is_ready, timeout, what=f"{name} ready file {ready}")
    return dict(json.loads(ready.read_text()))


# Ports handed to test servers come from below the kernel's ephemeral range: ports of that range (what binding to
# port 0 returns) are also the local ports of outgoing connections, and a client connection of another process can
# hold a chosen port for as long as it lives (a proxy once failed 25 restarts in a row to bind such a port).
LISTEN_PORTS_LOW = 10_000
_pick = random.SystemRandom()


def ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (32768 when it cannot be read)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bound(stack: contextlib.ExitStack, port: int) -> int | None:
    """``port`` if a socket could bind it on 127.0.0.1 (the socket stays bound until ``stack`` closes)."""
    sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        return None
    return int(sock.getsockname()[1])


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago.

    The port is bound and closed again, so another process can take it before the caller binds it. Callers must
    tolerate that race, typically by detecting "address already in use" when starting their server and retrying
    with a new port.
    """
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """``count`` different TCP ports on 127.0.0.1 that were free a moment ago (the same race as :func:`free_port`),
    chosen at random below the ephemeral range (see LISTEN_PORTS_LOW), or from it where that leaves too few.

    Every socket stays bound until all are chosen, so one port is never handed out twice (a static membership list
    naming one address twice is refused).
    """
    high = ephemeral_low() - 1
    with contextlib.ExitStack() as stack:
        ports: list[int] = []
        tries = 0
        while len(ports) < count:
            tries += 1
            low_range = high - LISTEN_PORTS_LOW >= 1000 and tries <= 50 * count
            port = _bound(stack, _pick.randint(LISTEN_PORTS_LOW, high) if low_range else 0)
            if port is not None:  # a port already held here fails to bind again
                ports.append(port)
    return ports


def free_port_run(count: int) -> int:
    """The first of ``count`` consecutive TCP ports on 127.0.0.1 below the ephemeral range that were all free a
    moment ago (the same race as :func:`free_port`)."""
    high = ephemeral_low() - count
    for _ in range(200):
        first = _pick.randint(LISTEN_PORTS_LOW, high)
        with contextlib.ExitStack() as stack:
            if all(_bound(stack, first + i) is not None for i in range(count)):
                return first
    raise RuntimeError(f"no {count} consecutive free ports found")


def wait_for_port(host: str, port: int, timeout: float) -> None:
    """Wait until a TCP connection to ``host:port`` succeeds.

    Raises:
        TimeoutError: if nothing accepts connections there within ``timeout`` seconds.
    """

    def _connectable() -> bool:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            return False

    poll_for(_connectable, timeout, interval=0.02, what=f"TCP port {host}:{port}")


def terminate_process(proc: subprocess.Popen[bytes], timeout: float, name: str = "process") -> None:
    """Stop a child process: SIGTERM, wait up to ``timeout`` seconds, then SIGKILL.

    The child is always reaped, so its PID no longer exists once this returns.
    """
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
        return
    except subprocess.TimeoutExpired:
        log.warning("%s (pid %d) ignored SIGTERM for %.0fs; sending SIGKILL", name, proc.pid, timeout)
    proc.kill()
    proc.wait(timeout=10)


def log_tail(path: Path, lines: int = 40) -> str:
    """Return the last ``lines`` lines of a log file, or a note if it cannot be read."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    return "\n".join(text.splitlines()[-lines:])


_SYSTEM_BIN_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")


def require_binary(name: str, package: str) -> str:
    """Return the absolute path of a system binary, also looking in the sbin directories.

    Raises:
        RuntimeError: if it is not installed, telling the caller to run scripts/bootstrap.sh.
    """
    search_path = os.pathsep.join([os.environ.get("PATH", ""), *_SYSTEM_BIN_DIRS])
    found = shutil.which(name, path=search_path)
    if found is None:
        raise RuntimeError(
            f"'{name}' was not found (Debian package '{package}'). "
            "Run scripts/bootstrap.sh as root to install the test dependencies."
        )
    return found
