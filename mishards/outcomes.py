"""How the proxy reads the end of one call to a node (pure): whose fault it was and what may follow.

A call to a read node ends in one of three ways: a reply with status SUCCESS, a reply with an in-band
Milvus status, or a gRPC error. This module decides, without any I/O:

- ``rpc_ending``: what a gRPC error says about the node and the request. A call that never reached the
  node (connection refused, no address) is safe to send elsewhere and says nothing about the request; a
  call during which the connection broke, or that ran out of its deadline on the node, may have been
  what broke the node (query-of-death protection counts those, ``mishards.querydeath``).
- ``node_fault``: whether an in-band status is the node's trouble (an internal error, a missing or
  unreadable segment file, the catalog or the cache failing, memory, a node too busy to start it:
  ``coordinator.limits``), worth the same segments on another replica, or the request's own fault (a bad
  topk, bad parameters, an unknown collection...), which every replica would answer alike: final, passed
  to the client unchanged. A message over a node's size cap is the request's fault too (``TOO_LARGE``).
"""

from __future__ import annotations

from enum import Enum

import grpc

from coordinator.errors import ErrorCode
from coordinator.limits import BUSY
from milvus_wire import status_pb2


class Ending(Enum):
    NOT_SENT = "not_sent"  # never reached the node (refused, unresolvable): the node is down, not the request
    DIED = "died"  # the connection broke while the node held the request
    TIMED_OUT = "timed_out"  # the node held the request past the sub-request deadline
    CANCELLED = "cancelled"  # the proxy cancelled it (another replica answered first)
    TOO_LARGE = "too_large"  # the node refused the message's size: every replica would, the request's fault
    FAILED = "failed"  # any other gRPC error: try another replica, the node is not suspected


# Details of a gRPC UNAVAILABLE raised before the request left the proxy (grpc core wording).
_NOT_SENT_DETAILS = (
    "failed to connect",
    "connection refused",
    "connect failed",
    "name resolution",
    "dns resolution",
    "no address",
    "empty address list",
)

# In-band codes that say the node, not the request, is in trouble: another replica may well answer.
NODE_FAULT_CODES = frozenset({
    ErrorCode.CONNECT_FAILED, ErrorCode.FILE_NOT_FOUND, ErrorCode.META_FAILED, ErrorCode.CACHE_FAILED,
    ErrorCode.OUT_OF_MEMORY,
})
# UNEXPECTED_ERROR carries client mistakes too ("The specified partition does not exist", a bad tag...):
# only these reasons are the node's.
INTERNAL_ERROR_PREFIX = "Internal error"
# A node whose catalog view lags the proxy's cannot find a segment the proxy routed to it (its fault
# or the proxy's, never the client's: clients do not name files through the proxy's fan-out).
INVALID_FILE_ID = "Invalid file id"


def rpc_ending(code: grpc.StatusCode, details: str | None) -> Ending:
    """What a gRPC error ending a call to a node means (``details`` as grpc reports them)."""
    if code == grpc.StatusCode.CANCELLED:
        return Ending.CANCELLED
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return Ending.TIMED_OUT
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than max" in (details or ""):
        return Ending.TOO_LARGE
    if code == grpc.StatusCode.UNAVAILABLE:
        text = (details or "").lower()
        if any(words in text for words in _NOT_SENT_DETAILS):
            return Ending.NOT_SENT
        return Ending.DIED
    return Ending.FAILED


def suspects_node(ending: Ending) -> bool:
    """Whether the node looks down or hung after this ending (routing keeps off it for a while)."""
    return ending in (Ending.NOT_SENT, Ending.DIED, Ending.TIMED_OUT)


def blames_request(ending: Ending) -> bool:
    """Whether the request may have caused this ending: the node died or hung while it held it."""
    return ending in (Ending.DIED, Ending.TIMED_OUT)


def node_fault(code: int, reason: str) -> bool:
    """Whether an in-band status ``code`` / ``reason`` from a read node is the node's trouble (try another
    replica) rather than the request's (final: every replica would say the same)."""
    if code == ErrorCode.SUCCESS:
        return False
    if code in NODE_FAULT_CODES:
        return True
    if code == ErrorCode.UNEXPECTED_ERROR:
        if reason.startswith(INTERNAL_ERROR_PREFIX) or reason == INVALID_FILE_ID:
            return True
        return reason.startswith(BUSY)  # full (admission control): another replica may have room
    return False


def reply_status(reply: bytes) -> tuple[int, str]:
    """``(error_code, reason)`` of a serialized MilvusService reply whose field 1 is its ``Status`` (every
    reply but a bare ``Status``). Absent fields read as SUCCESS and ''."""
    if reply[:1] != b"\x0a":
        return 0, ""
    length, pos = 0, 1
    shift = 0
    while pos < len(reply):
        byte = reply[pos]
        pos += 1
        length |= (byte & 0x7F) << shift
        if byte < 0x80:
            break
        shift += 7
    status = status_pb2.Status.FromString(reply[pos:pos + length])
    return int(status.error_code), str(status.reason)
