"""What the proxy may do after a call to the writer did not succeed (pure: no I/O).

A write forwarded to the writer ends in one of these ways, and the client must be told which:

- **applied** (any reply but the two below): the writer's answer, passed on unchanged;
- **not applied**: the call never reached the writer (connection refused: it is down or being replaced), or
  the writer refused it before writing anything (a standby, a read-only node, or a writer that lost its role:
  PERMISSION_DENIED). Sending it again to the current writer is always safe;
- **refused as unreadable**: the writer's gRPC layer refused the request before any handler ran (bytes that
  do not decode, a message over its size cap): nothing was done, the client learns it in-band at once
  (ILLEGAL_ARGUMENT with the writer's words), and the writer is not suspected;
- **outcome unknown**: the writer had the request when the connection broke or the deadline passed, or it
  answered that the write reached its log after it lost its role. The write may or may not take effect.
  Sending it again is safe only for calls whose repetition changes nothing: inserts (the writer recognises a
  retried insert by its content or by the proxy's request key within its idempotency window), deletes,
  flushes, compactions, index and cache calls. DDL is answered with the unknown outcome.
"""

from __future__ import annotations

from enum import Enum

import grpc

from coordinator.errors import ErrorCode, WriteOutcomeUnknown
from mishards.outcomes import Ending, rpc_ending


class WriteEnding(Enum):
    APPLIED = "applied"  # a reply to pass on (success or the writer's own status)
    NOT_APPLIED = "not_applied"  # safe to send again to the current writer
    UNKNOWN = "unknown"  # may or may not have taken effect
    REFUSED_INPUT = "refused_input"  # the writer's gRPC layer could not take the request itself: the client's fault


# gRPC errors the writer's server raises before running a handler, because of the request itself: bytes that
# do not decode (INTERNAL "Exception deserializing request!"), a message over its size cap. Nothing was done,
# and sending the same bytes again would be refused again.
_REQUEST_FAULTS = frozenset({grpc.StatusCode.INTERNAL, grpc.StatusCode.RESOURCE_EXHAUSTED,
                             grpc.StatusCode.INVALID_ARGUMENT})


# Calls whose repetition changes nothing (inserts through the writer's idempotency keys): after an unknown
# outcome the proxy sends them again to the current writer.
REPEATABLE = frozenset({
    "Insert", "DeleteByID", "Flush", "Compact", "CreateIndex", "DropIndex", "PreloadCollection",
    "ReleaseCollection", "ReloadSegments",
})

# How nodes word a refusal made before anything was written (coordinator/errors.py, node/engine.py).
_NOT_WRITER_WORDS = ("standby writer", "no longer the writer", "read-only (ro) node")

NOT_APPLIED_REASON = ("No writable node could take the request within {seconds:.1f} s (the writer is down or "
                      "being replaced); nothing was written, sending it again is safe")
BUSY_REASON = ("No writable node could take the request right now (the writer is down or being replaced) and "
               "the proxy already holds {waiting} writes waiting for one; nothing was written, sending it again "
               "is safe")
UNKNOWN_REASON = (f"{WriteOutcomeUnknown.PREFIX}: the writer failed while it held the request; it may or may "
                  "not have taken effect. Sending the same insert again is safe (it is recognised as a retry)")


def after_error(code: grpc.StatusCode, details: str | None) -> WriteEnding:
    """A gRPC error of a call to the writer: never sent (not applied), refused as unreadable (the request's
    fault), or sent (outcome unknown)."""
    if code in _REQUEST_FAULTS:
        return WriteEnding.REFUSED_INPUT
    return WriteEnding.NOT_APPLIED if rpc_ending(code, details) is Ending.NOT_SENT else WriteEnding.UNKNOWN


def after_reply(code: int, reason: str) -> WriteEnding:
    """The writer's in-band status: a refusal before writing, an unknown outcome, or its answer."""
    if code == ErrorCode.PERMISSION_DENIED and any(words in reason for words in _NOT_WRITER_WORDS):
        return WriteEnding.NOT_APPLIED
    if code == ErrorCode.UNEXPECTED_ERROR and reason.startswith(WriteOutcomeUnknown.PREFIX):
        return WriteEnding.UNKNOWN
    return WriteEnding.APPLIED


def may_send_again(method: str, ending: WriteEnding) -> bool:
    """Whether ``method`` may go to the (new) writer again after ``ending``."""
    if ending is WriteEnding.NOT_APPLIED:
        return True
    return ending is WriteEnding.UNKNOWN and method in REPEATABLE
