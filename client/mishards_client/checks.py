"""Client-side argument checks with pymilvus 1.1's rules and messages (``ParamError``)."""

from __future__ import annotations

import sys
from typing import Any
from urllib.parse import urlparse

import numpy as np

from .exceptions import ParamError
from .types import IndexType, MetricType

__all__ = ["check", "resolve_address"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_GRPC_PORT = 19530
DEFAULT_HTTP_PORT = 19121


def _illegal(name: str, value: object) -> ParamError:
    return ParamError(f"`{name}` value {value} is illegal")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _legal_metric(value: object) -> bool:
    if not isinstance(value, int):
        return False
    try:
        return MetricType(value) != MetricType.INVALID
    except ValueError:
        return False


def _legal_index_type(value: object) -> bool:
    if not isinstance(value, int):
        return False
    try:
        return IndexType(value) != IndexType.INVALID
    except ValueError:
        return False


def _legal_ids(value: object) -> bool:
    if isinstance(value, np.ndarray):
        return bool(value.ndim == 1 and len(value) > 0 and value.dtype.kind in "iu" and (value >= 0).all())
    if not isinstance(value, list) or not value:
        return False
    for i in value:
        if not isinstance(i, (int, str)):
            return False
        try:
            n = int(i)
        except ValueError:
            return False
        if n < 0 or n > sys.maxsize:
            return False
    return True


def _legal_tags(value: object) -> bool:
    return value is None or (isinstance(value, list) and all(isinstance(t, str) for t in value))


_RULES: dict[str, Any] = {
    "collection_name": lambda v: isinstance(v, str) and len(v) > 0,
    "dimension": lambda v: isinstance(v, int),
    "index_file_size": lambda v: isinstance(v, int),
    "metric_type": _legal_metric,
    "index_type": _legal_index_type,
    "topk": _is_int,
    "top_k": _is_int,
    "ids": _legal_ids,
    "nprobe": lambda v: isinstance(v, int),
    "cmd": lambda v: isinstance(v, str) and len(v) > 0,
    "partition_tag": lambda v: isinstance(v, str),
    "partition_tag_array": _legal_tags,
}


def check(**kwargs: Any) -> None:
    """Raise ``ParamError`` (pymilvus' message) for the first argument that breaks its rule."""
    for key, value in kwargs.items():
        rule = _RULES.get(key)
        if rule is None:
            raise ParamError(f"unknown param `{key}`")
        if not rule(value):
            raise _illegal(key, value)


def check_params(params: object) -> dict[str, Any]:
    """The ``params`` argument as a dict (``None`` → ``{}``)."""
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise ParamError("Params must be a dictionary type")
    return params


def resolve_address(host: str | None, port: int | str | None, uri: str | None, handler: str = "GRPC") -> str:
    """``host:port`` from pymilvus' ``(host, port)`` or ``uri`` arguments, with its defaults and errors."""
    default_port = DEFAULT_GRPC_PORT if handler == "GRPC" else DEFAULT_HTTP_PORT
    if host is not None:
        _host: Any = host
        _port: Any = port if port is not None else default_port
    elif port is None:
        try:
            parsed = urlparse(uri or f"tcp://{DEFAULT_HOST}:{default_port}")
            _host, _port = parsed.hostname, parsed.port
        except (AttributeError, ValueError, TypeError) as exc:
            raise ParamError(f"uri is illegal: {exc}") from exc
    else:
        raise ParamError("Param is not complete. Please invoke as follow:\n"
                         "\t(host = ${HOST}, port = ${PORT})\n"
                         "\t(uri = ${URI})\n")
    if not isinstance(_host, str) or not _legal_port(_port):
        raise ParamError(f"host {_host} or port {_port} is illegal")
    if ":" in _host and not _host.startswith("["):
        _host = f"[{_host}]"
    return f"{_host}:{int(_port)}"


def _legal_port(port: object) -> bool:
    if isinstance(port, bool) or not isinstance(port, (str, int)):
        return False
    try:
        value = int(port)
    except ValueError:
        return False
    return 0 < value <= 65535
