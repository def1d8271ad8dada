"""A small HTTP client for REST tests: raw status, headers and body, exactly the bytes sent (no Content-Type
unless asked for, as pymilvus sends several bodies)."""

from __future__ import annotations

import http.client
from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True)
class HttpReply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


def request(port: int, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
            host: str = "127.0.0.1", timeout: float = 60.0) -> HttpReply:
    """One request on a new connection. ``body``: bytes as they are, anything else as JSON."""
    data = body if isinstance(body, bytes) or body is None else orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=data, headers=headers or {})
        reply = conn.getresponse()
        return HttpReply(reply.status, {k.lower(): v for k, v in reply.getheaders()}, reply.read())
    finally:
        conn.close()
