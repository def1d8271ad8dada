"""The plumbing of :class:`mishards_client.rest.RestMilvus`: settings, the connection pool, requests and their
failures, connection management, server commands and configuration."""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import os
import ssl
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlencode, urlparse

from .checks import check, resolve_address
from .exceptions import NotConnectError, ParamError
from .futures import CallFuture
from .rest_json import dumps, error_status, loads
from .rest_pool import Endpoint, HttpPool, Reply, TransportError
from .types import Status

__all__ = ["Malformed", "RestBase", "failure_status", "quote_segment", "reply_json"]

LOGGER = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R", bound="RestBase")
PemSource = str | bytes | Path | None
_POOLS = ("SingletonThread", "QueuePool", "Singleton")


def quote_segment(segment: str) -> str:
    return quote(segment, safe="")


def failure_status(exc: TransportError) -> Status:
    if exc.unavailable:
        return Status(Status.CONNECT_FAILED, f"Error occurred. {exc}")
    if exc.timeout:
        return Status(Status.UNEXPECTED_ERROR, "Request timeout")
    return Status(Status.UNEXPECTED_ERROR, f"Error occurred. {exc}")


class Malformed(Exception):
    """A reply whose body is not what its success status promises."""


def reply_json(reply: Reply) -> Any:
    try:
        return loads(reply.body)
    except ValueError as exc:
        raise Malformed(f"HTTP {reply.status}: the reply is not JSON: {exc}") from None


def _ssl_context(ca: PemSource, cert: PemSource, key: PemSource) -> ssl.SSLContext:
    """A verifying client context; PEM given as bytes is loaded the way the file-only APIs need."""
    if isinstance(ca, bytes):
        context = ssl.create_default_context(cadata=ca.decode())
    else:
        context = ssl.create_default_context(cafile=str(ca) if ca is not None else None)
    if cert is not None:
        with contextlib.ExitStack() as stack:
            paths: list[str | None] = []
            for pem in (cert, key):
                if isinstance(pem, bytes):
                    fd, name = tempfile.mkstemp(suffix=".pem")
                    stack.callback(os.unlink, name)
                    with os.fdopen(fd, "wb") as f:
                        f.write(pem)
                    paths.append(name)
                else:
                    paths.append(str(pem) if pem is not None else None)
            context.load_cert_chain(paths[0] or "", paths[1])
    return context


class RestBase:
    """A client of one Milvus 1.1 REST endpoint: ``RestMilvus(host, port)`` or ``RestMilvus(uri="http://h:p")``.

    Thread-safe: share one instance. Keyword-only extras as :class:`Milvus`: ``token``, ``tls``/``tls_ca``/
    ``tls_cert``/``tls_key`` (PEM bytes or file paths), ``timeout`` (default seconds a call may take,
    connection attempts included), ``retries`` (further connection attempts, with backoff, when the endpoint
    refuses), and ``pool_size`` (idle keep-alive connections kept, default 8).
    """

    def __init__(self, host: str | None = None, port: int | str | None = None, handler: str = "HTTP",
                 pool: str = "SingletonThread", *, token: str | None = None, tls: bool = False,
                 tls_ca: PemSource = None, tls_cert: PemSource = None, tls_key: PemSource = None,
                 timeout: float | None = None, retries: int = 3, **kwargs: Any) -> None:
        if pool not in _POOLS:
            raise ParamError(f"Unknown pool value: {pool}")
        if handler != "HTTP":
            raise ParamError(f"Unknown handler {handler!r}: this class speaks REST (handler='HTTP')")
        if retries < 0:
            raise ParamError("retries must be >= 0")
        if (tls_cert is None) != (tls_key is None):
            raise ParamError("tls_cert and tls_key go together")
        pool_size = int(kwargs.get("pool_size", 8))
        if pool_size < 1:
            raise ParamError("pool_size must be at least 1")
        uri = kwargs.get("uri")
        self._name = kwargs.get("name")
        self._address = resolve_address(host, port, uri, "HTTP")
        scheme = urlparse(uri).scheme if host is None and port is None and uri else ""
        secure = tls or tls_ca is not None or tls_cert is not None or scheme == "https" or \
            self._address.endswith(":443")
        hostname, _, port_text = self._address.rpartition(":")
        context = _ssl_context(tls_ca, tls_cert, tls_key) if secure else None
        endpoint = Endpoint(hostname.strip("[]"), int(port_text), context)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._tls = secure
        self._timeout = timeout
        self._http: HttpPool | None = HttpPool(endpoint, size=pool_size, retries=retries, headers=headers)
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<RestMilvus: address={self._address!r}, tls={self._tls}>"

    def __enter__(self: R) -> R:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    # --- plumbing -----------------------------------------------------------------------------------

    @property
    def name(self) -> Any:
        return self._name

    @property
    def handler(self) -> str:
        return "HTTP"

    @property
    def address(self) -> str:
        return self._address

    @property
    def url(self) -> str:
        """``http(s)://host:port`` of the endpoint."""
        return f"{'https' if self._tls else 'http'}://{self._address}"

    def _send(self, method: str, path: str, body: Any = None, timeout: float | None = None,
              query: dict[str, Any] | None = None) -> Reply:
        http = self._http
        if http is None:
            raise NotConnectError("the client is closed")
        if query:
            path = f"{path}?{urlencode(query)}"
        data = body if isinstance(body, bytes) or body is None else dumps(body)
        return http.request(method, path, data, timeout if timeout is not None else self._timeout)

    def _status(self, method: str, path: str, body: Any, timeout: float | None, success: int,
                ok_message: str = "Success") -> Status:
        try:
            reply = self._send(method, path, body, timeout)
        except TransportError as exc:
            return failure_status(exc)
        if reply.status == success:
            return Status(message=ok_message)
        return error_status(reply.status, reply.body)

    def _get(self, path: str, timeout: float | None, query: dict[str, Any] | None = None) -> tuple[Status, Any]:
        """GET a JSON document: ``(Status(), doc)`` on 200, else ``(error status, None)``."""
        try:
            reply = self._send("GET", path, None, timeout, query)
        except TransportError as exc:
            return failure_status(exc), None
        if reply.status != 200:
            return error_status(reply.status, reply.body), None
        try:
            return Status(), reply_json(reply)
        except Malformed as exc:
            return Status(Status.UNEXPECTED_ERROR, str(exc)), None

    def _maybe_async(self, kwargs: dict[str, Any], fn: Callable[[], T]) -> T | CallFuture:
        if kwargs.get("_async", False) is not True:
            return fn()
        with self._lock:
            if self._executor is None:
                self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=4,
                                                                       thread_name_prefix="mishards-rest")
            executor = self._executor
        return CallFuture(executor.submit(fn), kwargs.get("_callback"))

    # --- connection -----------------------------------------------------------------------------------

    def connect(self, host: str | None = None, port: int | str | None = None, uri: str | None = None,
                timeout: float = 2) -> Status:
        """Check that the server answers (``GET /system/version``) within ``timeout`` seconds."""
        status, _ = self._cmd("version", timeout)
        if not status.OK():
            raise NotConnectError(f"Fail connecting to server on {self._address}: {status.message}")
        return Status(message="Connected")

    def connected(self) -> bool:
        return self._http is not None

    def disconnect(self) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections; further calls raise ``NotConnectError``."""
        with self._lock:
            http, self._http = getattr(self, "_http", None), None
            executor, self._executor = getattr(self, "_executor", None), None
        if executor is not None:
            executor.shutdown(wait=False)
        if http is not None:
            http.close()

    def client_version(self) -> str:
        from . import __version__

        return __version__

    def server_status(self, timeout: float | None = 30) -> tuple[Status, str | None]:
        return self._cmd("status", timeout)

    def server_version(self, timeout: float | None = 30) -> tuple[Status, str | None]:
        return self._cmd("version", timeout)

    def _cmd(self, cmd: str, timeout: float | None = 30) -> tuple[Status, str | None]:
        check(cmd=cmd)
        words = cmd.split() or [""]
        if words[0] == "get_config" and len(words) == 2 and "." in words[1]:
            parent, child = words[1].split(".", 1)
            return self._get_config(parent, child, timeout)
        if words[0] == "set_config" and len(words) >= 3 and "." in words[1]:
            parent, child = words[1].split(".", 1)
            return self.set_config(parent, child, " ".join(words[2:]), timeout)
        status, doc = self._get(f"/system/{quote_segment(cmd)}", timeout)
        if not status.OK():
            return status, None
        if not isinstance(doc, dict) or "reply" not in doc:
            return Status(Status.UNEXPECTED_ERROR, "the reply has no 'reply'"), None
        return Status(message="Success!"), str(doc["reply"])

    def _get_config(self, parent_key: str, child_key: str, timeout: float | None) -> tuple[Status, str | None]:
        status, doc = self._get("/system/config", timeout)
        if not status.OK():
            return status, None
        section = doc.get(parent_key) if isinstance(doc, dict) else None
        value = section.get(child_key) if isinstance(section, dict) else None
        if value is None:
            return Status(Status.UNEXPECTED_ERROR, f"Config {parent_key}.{child_key} not supported"), None
        return Status(message="Success!"), str(value)

    def get_config(self, parent_key: str, child_key: str, timeout: float | None = 30) -> tuple[Status, str | None]:
        """One setting, as text (``GET /system/config``; ``child_key`` may hold dots)."""
        return self._get_config(parent_key, child_key, timeout)

    def set_config(self, parent_key: str, child_key: str, value: Any,
                   timeout: float | None = 30) -> tuple[Status, str | None]:
        """Change one setting (``PUT /system/config``); the value is sent as text, as pymilvus does."""
        try:
            reply = self._send("PUT", "/system/config", {parent_key: {child_key: str(value)}}, timeout)
        except TransportError as exc:
            return failure_status(exc), None
        if reply.status != 200:
            return error_status(reply.status, reply.body), None
        try:
            doc = reply_json(reply)
        except Malformed as exc:
            return Status(Status.UNEXPECTED_ERROR, str(exc)), None
        return Status(message="Success!"), str(doc.get("message", "")) if isinstance(doc, dict) else ""
