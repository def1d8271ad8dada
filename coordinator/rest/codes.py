"""Milvus 1.1's web status codes, its error body and how a code picks the HTTP status of a reply."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from coordinator.errors import ErrorCode


class WebCode(IntEnum):
    """The REST-only codes of Milvus 1.1 (0..24 are the gRPC ``ErrorCode`` values, passed through)."""

    PATH_PARAM_LOSS = 31
    UNKNOWN_PATH = 32
    QUERY_PARAM_LOSS = 33
    BODY_FIELD_LOSS = 34
    ILLEGAL_BODY = 35
    BODY_PARSE_FAIL = 36
    ILLEGAL_QUERY_PARAM = 37


class RestError(Exception):
    """A request refused by the REST layer itself (its JSON, its query string or its path)."""

    def __init__(self, code: int, message: str, http_status: int = 400) -> None:
        super().__init__(message)
        self.code = int(code)
        self.message = message
        self.http_status = http_status


def web_code(code: int) -> int:
    """Milvus 1.1's web error map: codes below 37 pass through (gRPC codes and web codes alike); others are 1."""
    return code if 0 <= code < int(WebCode.ILLEGAL_QUERY_PARAM) else int(ErrorCode.UNEXPECTED_ERROR)


def http_status(code: int, success: int, not_found: bool) -> int:
    """The HTTP status of an endpoint's reply: its success status for 0, 404 for a missing collection where the
    endpoint has that branch (the ``/collections/{name}...`` endpoints), 403 for a call the caller's identity
    may not make (``coordinator.auth``; Milvus 1.1 had none), 400 otherwise."""
    if code == 0:
        return success
    if code == ErrorCode.COLLECTION_NOT_EXISTS and not_found:
        return 404
    if code == ErrorCode.PERMISSION_DENIED:
        return 403  # no token, a wrong one, or a role that may not (the body carries code 3 and the reason)
    return 400


@dataclass(frozen=True, slots=True)
class Failure:
    """A failed backend call: the Milvus status code and reason the RPC answered."""

    code: int
    reason: str


class CallFailed(Exception):
    """A backend call answered a non-success status (raised so that an endpoint stops at its first failure)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
