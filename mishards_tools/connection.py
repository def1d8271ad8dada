"""Reaching an endpoint through ``mishards_client`` (the pymilvus 1.1 API): address parsing, TLS and token
options, and turning a returned Status into an exception with the server's message."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


class ToolError(RuntimeError):
    """A refusal the user must act on (printed as one line, exit code non-zero)."""


@dataclass(frozen=True)
class Endpoint:
    uri: str = "127.0.0.1:19530"
    token: str | None = None
    tls: bool = False
    tls_ca: Path | None = None
    timeout: float | None = None


def parse_uri(uri: str) -> tuple[str, int]:
    """Pure: ``HOST:PORT``, ``tcp://HOST:PORT`` or ``[V6]:PORT`` as (host, port)."""
    text = uri.split("://", 1)[-1].rstrip("/")
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ToolError(f"--uri {uri!r}: expected HOST:PORT")
    number = int(port)
    if not 0 < number < 65536:
        raise ToolError(f"--uri {uri!r}: port {number} out of range")
    return host.strip("[]"), number


def connect(endpoint: Endpoint, retry_inserts: bool = True) -> Any:
    """A connected ``mishards_client.Milvus``. ``retry_inserts=False`` keeps each insert to one attempt: the caller
    retries itself (the import deletes the batch's ids first, which holds on servers without idempotency)."""
    try:
        from mishards_client import Milvus
    except ImportError as exc:
        raise ToolError("the mishards_client package is not installed (pip install -e client/)") from exc
    host, port = parse_uri(endpoint.uri)
    kwargs: dict[str, Any] = {}
    if endpoint.token:
        kwargs["token"] = endpoint.token
    if endpoint.tls or endpoint.tls_ca:
        kwargs["tls"] = True
    if endpoint.tls_ca:
        kwargs["tls_ca"] = str(endpoint.tls_ca)
    if endpoint.timeout:
        kwargs["timeout"] = endpoint.timeout
    if not retry_inserts:
        kwargs["retry_inserts"] = False
    return Milvus(host=host, port=port, **kwargs)


def status_ok(status: Any) -> bool:
    ok = getattr(status, "OK", None)
    return bool(ok()) if callable(ok) else getattr(status, "code", 1) == 0


def check(status: Any, what: str) -> None:
    """Raise ToolError with the server's reason unless ``status`` is a success."""
    if not status_ok(status):
        code = getattr(status, "code", "?")
        message = getattr(status, "message", "") or str(status)
        raise ToolError(f"{what}: {message} (status {code})")
