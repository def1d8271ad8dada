"""The REST API's HTTP server: uvicorn (with httptools) on its own thread and event loop, inside the node or
proxy process, started and stopped with it."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from coordinator.tls import ServerTls
from coordinator.tls_watch import ReloadingSSLContext

log = logging.getLogger(__name__)

START_TIMEOUT = 10.0
GRACE_SECONDS = 5
# Bytes taken from the socket per read. asyncio's selector transports read 256 KiB at a time, and uvicorn hands
# each read to the application in an event-loop turn of its own (pausing the transport past 64 KiB): a 13 MB
# insert body took 53 turns, about 15 ms on loopback; in 4 MiB reads it takes 4 and about 7 ms. A read of a
# small request costs the same either way.
READ_SIZE = 4 << 20


class LargeReadsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with socket reads of up to :data:`READ_SIZE` bytes. The read size is the
    transport's ``max_size``, an attribute of asyncio's selector transports (not a documented API): a transport
    without it (another event loop) keeps its own read size."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if isinstance(getattr(transport, "max_size", None), int):
            transport.max_size = READ_SIZE  # type: ignore[attr-defined]


class RestServer:
    """Serves an ASGI ``app`` on ``host:port`` (0: any free port). ``start`` returns once it accepts
    connections; ``stop`` lets requests in flight finish (for up to ``GRACE_SECONDS``) and joins the thread."""

    def __init__(self, app: Any, host: str, port: int, executor: ThreadPoolExecutor, reuse_port: bool = False,
                 tls: ServerTls | None = None) -> None:
        self.app = app
        # https with the port's TLS files, loaded again when they change (coordinator/tls.py)
        self.tls = ReloadingSSLContext(tls) if tls is not None else None
        self.reuse_port = reuse_port  # the workers of one proxy share the port (SO_REUSEPORT)
        self.host = host
        self.port = port
        self.executor = executor
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def start(self) -> int:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on accepted sockets whose protocol says TCP, and
        # without it a reply written in two parts waits for the client's delayed ACK (40 ms on keep-alive).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self.reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise OSError(f"cannot listen for HTTP on {self.host}:{self.port}: {exc}") from None
        sock.listen(1024)
        sock.setblocking(False)
        bound = int(sock.getsockname()[1])
        config = uvicorn.Config(self.app, http=LargeReadsProtocol, loop="asyncio", lifespan="off", log_config=None,
                                access_log=False, timeout_keep_alive=5, timeout_graceful_shutdown=GRACE_SECONDS,
                                server_header=False)
        if self.tls is not None:
            config.load()
            config.ssl = self.tls.context  # uvicorn passes it to the listening socket's server as is
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, args=(sock,), name="rest-http", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise OSError(f"the HTTP server did not start on {self.host}:{bound}: {self._error}")
            time.sleep(0.01)
        self.port = bound
        log.info("REST API on %s://%s:%d", "http" if self.tls is None else "https", self.host, bound)
        return bound

    def _run(self, sock: socket.socket) -> None:
        assert self._server is not None
        try:
            asyncio.run(self._server.serve(sockets=[sock]))
        except BaseException as exc:  # reported by start() or logged: the thread must not die silently
            self._error = exc
            log.exception("the HTTP server stopped")
        finally:
            sock.close()

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(GRACE_SECONDS + 5)
        self.executor.shutdown(wait=False, cancel_futures=True)


def serve_rest(backend: Any, host: str, port: int, workers: int, max_body: int, registry: Any = None,
               prefix: str = "mishards", tracing: Any = None, reuse_port: bool = False,
               tls: ServerTls | None = None) -> RestServer:
    """Start the REST API of ``backend`` on ``host:port`` (-1 or 0 given as 0: any free port) with ``workers``
    request threads; REST metrics go to ``registry`` (the process's Prometheus registry) when given; https with
    ``tls`` when given.
    ``reuse_port``: the port is shared with the other workers of the same proxy (``--workers``)."""
    from coordinator.rest.app import RestApp
    from coordinator.rest.metrics import RestMetrics

    executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rest")
    metrics = RestMetrics(registry, prefix) if registry is not None else None
    app = RestApp(backend, executor, max_body, metrics, tracing)
    server = RestServer(app, host, max(0, port), executor, reuse_port, tls)
    server.start()
    return server
