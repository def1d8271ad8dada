"""How the proxy reads a failed call to the writer: not applied (send again), unknown, or the answer."""

from __future__ import annotations

import grpc

from coordinator.errors import ErrorCode, NotWriter, WriteOutcomeUnknown
from mishards.write_outcomes import REPEATABLE, WriteEnding, after_error, after_reply, may_send_again


def test_grpc_errors_before_and_after_sending() -> None:
    refused = "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:1: Connection refused"
    assert after_error(grpc.StatusCode.UNAVAILABLE, refused) is WriteEnding.NOT_APPLIED
    assert after_error(grpc.StatusCode.UNAVAILABLE, "Socket closed") is WriteEnding.UNKNOWN
    assert after_error(grpc.StatusCode.UNAVAILABLE, "recvmsg:Connection reset by peer") is WriteEnding.UNKNOWN
    assert after_error(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded") is WriteEnding.UNKNOWN
    assert after_error(grpc.StatusCode.UNKNOWN, None) is WriteEnding.UNKNOWN
    # Refused by the writer's gRPC layer before any handler ran: the request's fault, nothing done.
    assert after_error(grpc.StatusCode.INTERNAL, "Exception deserializing request!") is WriteEnding.REFUSED_INPUT
    assert after_error(grpc.StatusCode.RESOURCE_EXHAUSTED, "Received message larger than max") \
        is WriteEnding.REFUSED_INPUT
    assert not may_send_again("Insert", WriteEnding.REFUSED_INPUT)


def test_in_band_statuses() -> None:
    standby = "Insert is not allowed: this node is a standby writer, not the elected one"
    assert after_reply(ErrorCode.PERMISSION_DENIED, standby) is WriteEnding.NOT_APPLIED
    fenced = NotWriter("Writing the log refused: this node is no longer the writer (lease); nothing was written")
    assert after_reply(fenced.code, fenced.reason) is WriteEnding.NOT_APPLIED
    assert after_reply(ErrorCode.PERMISSION_DENIED, "Insert is not allowed on a read-only (ro) node") \
        is WriteEnding.NOT_APPLIED
    unknown = f"{WriteOutcomeUnknown.PREFIX}: this node lost the writer role while ..."
    assert after_reply(ErrorCode.UNEXPECTED_ERROR, unknown) is WriteEnding.UNKNOWN
    # The writer's own answers are passed on, errors included.
    assert after_reply(0, "") is WriteEnding.APPLIED
    assert after_reply(ErrorCode.COLLECTION_NOT_EXISTS, "Collection c does not exist") is WriteEnding.APPLIED
    assert after_reply(ErrorCode.UNEXPECTED_ERROR, "Internal error: boom") is WriteEnding.APPLIED
    assert after_reply(ErrorCode.PERMISSION_DENIED, "token lacks the readwrite role") is WriteEnding.APPLIED


def test_what_may_be_sent_again() -> None:
    for method in ("Insert", "CreateCollection", "DropCollection", "CreatePartition", "Cmd"):
        assert may_send_again(method, WriteEnding.NOT_APPLIED)
    assert may_send_again("Insert", WriteEnding.UNKNOWN) and "DeleteByID" in REPEATABLE
    for method in ("CreateCollection", "DropCollection", "CreatePartition", "DropPartition"):
        assert not may_send_again(method, WriteEnding.UNKNOWN)
    assert not may_send_again("Insert", WriteEnding.APPLIED)
