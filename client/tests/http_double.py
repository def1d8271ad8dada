"""A small real HTTP/1.1 server on loopback for the REST transport's tests: it answers every request with a
scripted outcome and records what it received (method, path, headers, body, client port)."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    client_port: int


@dataclass
class HttpDouble:
    """``script``: outcomes consumed one per request, then ``"ok"`` forever. ``"ok"`` answers 200 with a
    version reply; ``"sleep:<s>"`` waits first; ``"drop"`` answers and then closes the connection without
    saying so (a keep-alive connection the server dropped); ``"status:<n>:<body>"`` answers that."""

    script: list[str] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_step(self, seen: Seen) -> str:
        with self.lock:
            self.seen.append(seen)
            return self.script.pop(0) if self.script else "ok"

    def ports(self) -> set[int]:
        with self.lock:
            return {s.client_port for s in self.seen}


def _handler(double: HttpDouble) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # headers, body: no 40 ms

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            step = double.next_step(Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                                         body, int(self.client_address[1])))
            status, reply = 200, json.dumps({"code": 0, "message": "OK", "reply": "1.1.1"}).encode()
            if step.startswith("sleep:"):
                time.sleep(float(step.split(":", 1)[1]))
            elif step.startswith("status:"):
                _, code, text = step.split(":", 2)
                status, reply = int(code), text.encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)
            self.wfile.flush()
            if step == "drop":
                self.close_connection = True

        do_GET = do_PUT = do_POST = do_DELETE = _answer

    return Handler


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (a timeout test) leaves a broken pipe behind: expected, not printed."""


class HttpServer:
    """Serves ``double`` on a free loopback port, over TLS when ``context`` is given."""

    def __init__(self, double: HttpDouble, context: ssl.SSLContext | None = None, port: int = 0) -> None:
        self.server = _QuietServer(("127.0.0.1", port), _handler(double))
        if context is not None:
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)
