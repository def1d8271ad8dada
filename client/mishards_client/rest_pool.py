"""Keep-alive HTTP(S) connections to one REST endpoint, shared by threads: standard library only.

A request takes an idle connection (or opens one), sends, reads the whole reply and gives the connection back.
A connection idle for longer than the server keeps it (uvicorn: 5 s) is dropped rather than reused; a reused
connection the server closed meanwhile (the reply never started) is replaced by a fresh one and the request sent
again, once. A refused or failed connect is retried with exponential backoff (``retries`` times): the endpoint
may be restarting. Anything else (a timeout, a reset after the request went out on a fresh connection) is the
caller's error, raised as :class:`TransportError`, since the server may have acted on the request.
"""

from __future__ import annotations

import http.client
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

IDLE_SECONDS = 4.0  # under the server's keep-alive timeout (5 s)
BACKOFF_BASE = 0.05
BACKOFF_MAX = 2.0


class TransportError(Exception):
    """The request could not be completed: ``unavailable`` when no connection could be made, else a timeout
    or a connection lost mid-request."""

    def __init__(self, message: str, unavailable: bool = False, timeout: bool = False) -> None:
        super().__init__(message)
        self.unavailable = unavailable
        self.timeout = timeout


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Endpoint:
    """Where and how to connect: ``ssl_context`` set means https."""

    host: str
    port: int
    ssl_context: ssl.SSLContext | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.ssl_context is not None else "http"

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def make_ssl_context(ca: str | None, cert: str | None, key: str | None) -> ssl.SSLContext:
    """A client context verifying the server against ``ca`` (else the system's roots), presenting ``cert`` and
    ``key`` when given (mutual TLS)."""
    context = ssl.create_default_context(cafile=ca)
    if cert:
        context.load_cert_chain(cert, key)
    return context


def backoff_delay(attempt: int, base: float = BACKOFF_BASE, cap: float = BACKOFF_MAX) -> float:
    """The pause before retry number ``attempt`` (1, 2, ...): doubling from ``base``, at most ``cap``."""
    return float(min(cap, base * (2 ** max(0, attempt - 1))))


class _Conn:
    __slots__ = ("conn", "last_used", "uses")

    def __init__(self, conn: http.client.HTTPConnection) -> None:
        self.conn = conn
        self.last_used = time.monotonic()
        self.uses = 0


class HttpPool:
    """At most ``size`` idle connections are kept; more threads than that open extra ones, closed on return."""

    def __init__(self, endpoint: Endpoint, size: int = 8, retries: int = 3, idle_seconds: float = IDLE_SECONDS,
                 headers: dict[str, str] | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        self.endpoint = endpoint
        self.size = max(1, size)
        self.retries = max(0, retries)
        self.idle_seconds = idle_seconds
        self.headers = dict(headers or {})
        self._idle: list[_Conn] = []
        self._lock = threading.Lock()
        self._closed = False
        self._sleep = sleep

    def _open(self, timeout: float | None) -> _Conn:
        ep = self.endpoint
        conn: http.client.HTTPConnection
        if ep.ssl_context is not None:
            conn = http.client.HTTPSConnection(ep.host, ep.port, timeout=timeout, context=ep.ssl_context)
        else:
            conn = http.client.HTTPConnection(ep.host, ep.port, timeout=timeout)
        conn.connect()
        if conn.sock is not None:
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return _Conn(conn)

    def _take(self) -> _Conn | None:
        now = time.monotonic()
        stale: list[_Conn] = []
        taken = None
        with self._lock:
            while self._idle:
                c = self._idle.pop()
                if now - c.last_used < self.idle_seconds:
                    taken = c
                    break
                stale.append(c)
        for c in stale:
            c.conn.close()
        return taken

    def _give(self, c: _Conn) -> None:
        c.last_used = time.monotonic()
        with self._lock:
            if not self._closed and len(self._idle) < self.size:
                self._idle.append(c)
                return
        c.conn.close()

    def _connect(self, deadline: float | None) -> _Conn:
        """A new connection; refused or failed attempts are retried with backoff while the deadline allows."""
        attempt = 0
        while True:
            remaining = None if deadline is None else max(0.001, deadline - time.monotonic())
            try:
                return self._open(remaining)
            except ssl.SSLError as exc:
                raise TransportError(f"TLS handshake with {self.endpoint.url} failed: {exc}", unavailable=True) from exc
            except (TimeoutError, OSError) as exc:
                attempt += 1
                delay = backoff_delay(attempt)
                if attempt > self.retries or (deadline is not None and time.monotonic() + delay >= deadline):
                    raise TransportError(f"cannot connect to {self.endpoint.url}: {exc}", unavailable=True) from exc
                log.debug("connect to %s failed (%s), retry %d in %.2f s", self.endpoint.url, exc, attempt, delay)
                self._sleep(delay)

    def request(self, method: str, path: str, body: bytes | None = None, timeout: float | None = None,
                content_type: str | None = "application/json") -> Reply:
        """Send one request and return the whole reply. ``timeout``: seconds the call may take, connection
        attempts included (each socket wait is bounded by what is left of it)."""
        if self._closed:
            raise TransportError("the client is closed", unavailable=True)
        deadline = None if timeout is None else time.monotonic() + timeout
        headers = dict(self.headers)
        if body is not None and content_type:
            headers["Content-Type"] = content_type
        c = self._take()
        reused = c is not None
        while True:
            if c is None:
                c = self._connect(deadline)
            left = None if deadline is None else max(0.001, deadline - time.monotonic())
            c.conn.timeout = left
            if c.conn.sock is not None:
                c.conn.sock.settimeout(left)
            try:
                c.conn.request(method, path, body=body, headers=headers)
                response = c.conn.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                c.conn.close()
                if reused:  # the server dropped an idle keep-alive connection: once more on a new one
                    reused = False
                    c = None
                    continue
                raise TransportError(f"{method} {path}: connection lost: {exc}") from exc
            except TimeoutError as exc:
                c.conn.close()
                raise TransportError(f"{method} {path}: no reply within {timeout} s", timeout=True) from exc
            except (OSError, http.client.HTTPException) as exc:
                c.conn.close()
                raise TransportError(f"{method} {path}: {exc}") from exc
            c.uses += 1
            if response.will_close:
                c.conn.close()
            else:
                self._give(c)
            return Reply(response.status, data, {k.lower(): v for k, v in response.getheaders()})

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for c in idle:
            c.conn.close()
