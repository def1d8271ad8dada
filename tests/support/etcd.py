"""A private, throw-away single-member etcd server for tests.

Uses Debian's ``etcd`` binary (package ``etcd-server``, 3.4.x) with a temporary data directory and
free client/peer ports on 127.0.0.1.

Usage::

    with EtcdServer() as etcd:
        client = SomeClient(etcd.endpoint)  # "127.0.0.1:<port>"

With ``tls=EtcdServerTls(cert, key, ca)`` the client port speaks TLS only and requires a client certificate
signed by ``ca`` (etcd's ``--cert-file/--key-file/--client-cert-auth/--trusted-ca-file``); ``health_cert``
and ``health_key`` are the client certificate the fixture's own health checks present.
"""

from __future__ import annotations

import atexit
import http.client
import json
import logging
import os
import shutil
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from tests.support.waiting import free_port, log_tail, poll_for, require_binary, terminate_process

log = logging.getLogger(__name__)

_BIND_ERROR_MARKERS = ("address already in use",)
# Never go through an HTTP proxy from the environment to reach 127.0.0.1.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class _ServerExited(Exception):
    def __init__(self, returncode: int) -> None:
        super().__init__(f"etcd exited with code {returncode}")
        self.returncode = returncode


@dataclass(frozen=True)
class EtcdServerTls:
    """TLS on etcd's client port: its certificate and key, the CA client certificates must be signed by, and
    the client certificate (and key) the fixture's health checks present."""

    cert: Path
    key: Path
    ca: Path
    health_cert: Path
    health_key: Path

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca))
        context.load_cert_chain(self.health_cert, self.health_key)
        return context


def etcd_health(url: str, timeout: float = 1.0, context: ssl.SSLContext | None = None) -> bool:
    """Return True if ``<url>/health`` answers with ``"health": "true"``; False on any failure."""
    opener = _DIRECT if context is None else urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context))
    try:
        with opener.open(f"{url}/health", timeout=timeout) as resp:
            body = json.loads(resp.read())
    except (OSError, http.client.HTTPException, ValueError):
        return False
    return isinstance(body, dict) and str(body.get("health")).lower() == "true"


class EtcdServer:
    """A single-member etcd cluster in a temporary directory.

    ``endpoint`` is ``"127.0.0.1:<client port>"`` (the form gRPC clients take), ``url`` the same as
    ``http://…``. ``stop()`` terminates the process and removes the directory; ``pid`` and the ports
    stay readable afterwards.
    """

    def __init__(
        self,
        *,
        name: str = "mishards-test",
        startup_timeout: float = 30.0,
        stop_timeout: float = 20.0,
        port_attempts: int = 5,
        tls: EtcdServerTls | None = None,
    ) -> None:
        self.tls = tls
        self._name = name
        self._startup_timeout = startup_timeout
        self._stop_timeout = stop_timeout
        self._port_attempts = port_attempts
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmpdir: Path | None = None
        self._client_port: int | None = None
        self._peer_port: int | None = None
        self._pid: int | None = None
        self._log_file: Path | None = None

    # -- properties -------------------------------------------------------------------------

    @property
    def client_port(self) -> int:
        if self._client_port is None:
            raise RuntimeError("EtcdServer has not been started")
        return self._client_port

    @property
    def peer_port(self) -> int:
        if self._peer_port is None:
            raise RuntimeError("EtcdServer has not been started")
        return self._peer_port

    @property
    def pid(self) -> int:
        if self._pid is None:
            raise RuntimeError("EtcdServer has not been started")
        return self._pid

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.endpoint}"

    @property
    def log_file(self) -> Path | None:
        return self._log_file

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def healthy(self) -> bool:
        return self.is_running() and etcd_health(self.url, context=self._health_context())

    def _health_context(self) -> ssl.SSLContext | None:
        return self.tls.client_context() if self.tls is not None else None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> Self:
        if self._proc is not None:
            raise RuntimeError("EtcdServer is already running")
        etcd = require_binary("etcd", "etcd-server")
        self._tmpdir = Path(tempfile.mkdtemp(prefix="mishards-etcd-"))
        atexit.register(self.stop)
        started = time.monotonic()
        try:
            self._launch(etcd)
        except BaseException:
            self.stop()
            raise
        log.info("etcd healthy at %s (pid %d) after %.1fs", self.endpoint, self.pid, time.monotonic() - started)
        return self

    def stop(self) -> None:
        """Terminate etcd (SIGTERM, then SIGKILL after the stop timeout) and remove its files."""
        proc, self._proc = self._proc, None
        if proc is not None:
            terminate_process(proc, self._stop_timeout, name="etcd")
            log.info("etcd (pid %d) stopped", proc.pid)
        tmpdir, self._tmpdir = self._tmpdir, None
        if tmpdir is not None:
            shutil.rmtree(tmpdir, ignore_errors=True)
        atexit.unregister(self.stop)

    def __enter__(self) -> Self:
        if self._proc is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- internals --------------------------------------------------------------------------

    def _launch(self, etcd: str) -> None:
        assert self._tmpdir is not None
        deadline = time.monotonic() + self._startup_timeout
        # ETCD_* variables act as flags; do not let the caller's environment leak in.
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD_")}
        for attempt in range(1, self._port_attempts + 1):
            client_port = free_port()
            peer_port = free_port()
            while peer_port == client_port:
                peer_port = free_port()
            client_url = f"{'https' if self.tls else 'http'}://127.0.0.1:{client_port}"
            peer_url = f"http://127.0.0.1:{peer_port}"
            # A fresh data dir per attempt: a half-initialised member would remember the old peer URL.
            data_dir = self._tmpdir / f"data-{attempt}"
            log_file = self._tmpdir / f"etcd-{attempt}.log"
            cmd = [
                etcd,
                "--logger=zap",
                f"--name={self._name}",
                f"--data-dir={data_dir}",
                f"--listen-client-urls={client_url}",
                f"--advertise-client-urls={client_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster={self._name}={peer_url}",
                "--initial-cluster-state=new",
            ]
            if self.tls is not None:
                cmd += [f"--cert-file={self.tls.cert}", f"--key-file={self.tls.key}", "--client-cert-auth",
                        f"--trusted-ca-file={self.tls.ca}"]
            log.debug("starting etcd on client port %d, peer port %d (attempt %d)", client_port, peer_port, attempt)
            with log_file.open("wb") as out:
                proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env)
            self._proc, self._pid, self._log_file = proc, proc.pid, log_file
            self._client_port, self._peer_port = client_port, peer_port

            def check(proc: subprocess.Popen[bytes] = proc, url: str = client_url) -> bool:
                returncode = proc.poll()
                if returncode is not None:
                    raise _ServerExited(returncode)
                return etcd_health(url, timeout=1.0, context=self._health_context())

            try:
                poll_for(
                    check,
                    timeout=max(deadline - time.monotonic(), 0.0),
                    interval=0.05,
                    what=f"etcd at {client_url} to report healthy",
                )
            except _ServerExited as exc:
                self._proc = None
                tail = log_tail(log_file)
                if attempt < self._port_attempts and any(m in tail.lower() for m in _BIND_ERROR_MARKERS):
                    log.info("port %d or %d was taken, retrying etcd on other ports", client_port, peer_port)
                    continue
                raise RuntimeError(
                    f"etcd exited during startup with code {exc.returncode}; tail of {log_file}:\n{tail}"
                ) from None
            except TimeoutError:
                raise RuntimeError(
                    f"etcd did not become healthy within {self._startup_timeout:.0f}s; "
                    f"tail of {log_file}:\n{log_tail(log_file)}"
                ) from None
            return
        raise RuntimeError(f"etcd could not bind free ports in {self._port_attempts} attempts")
