"""What one operation's answer means for the data: acknowledged, refused before anything was applied, outcome
unknown, or some other error. Pure functions of the reply."""

from __future__ import annotations

from dataclasses import dataclass

ACKED = "acked"
FAILED = "failed"  # the status claims nothing was applied (no writer, not the writer)
UNKNOWN = "unknown"  # the call may or may not have been applied
ERROR = "error"  # another failure status: it claims the call failed

SUCCESS = 0
CONNECT_FAILED = 2
PERMISSION_DENIED = 3
UNKNOWN_OUTCOME_PREFIX = "Write outcome unknown"


@dataclass(frozen=True)
class Op:
    """One operation as sent and answered. Times are ``time.monotonic()``."""

    kind: str  # insert | delete | search
    proxy: int  # index of the proxy it went through
    sent: float
    done: float
    outcome: str
    code: str  # the Milvus status code number, or "grpc:<StatusCode name>"
    reason: str
    first_id: int = 0  # inserts: ids first_id .. first_id + count - 1
    count: int = 0
    ids: tuple[int, ...] = ()  # deletes: the ids


def classify_write(status_code: int | None, reason: str, grpc_code: str | None) -> str:
    """A write's outcome from its answer. A gRPC error (deadline, connection lost) leaves it unknown; so does a
    status whose reason says so. CONNECT_FAILED and PERMISSION_DENIED claim the write was never applied."""
    if grpc_code is not None:
        return UNKNOWN
    if reason.startswith(UNKNOWN_OUTCOME_PREFIX):
        return UNKNOWN
    if status_code == SUCCESS:
        return ACKED
    if status_code in (CONNECT_FAILED, PERMISSION_DENIED):
        return FAILED
    return ERROR


def classify_search(status_code: int | None, grpc_code: str | None) -> str:
    return ACKED if grpc_code is None and status_code == SUCCESS else ERROR


def code_label(status_code: int | None, grpc_code: str | None) -> str:
    return f"grpc:{grpc_code}" if grpc_code is not None else str(status_code)
