"""What the end of a call to a read node means: whose fault, retry elsewhere or not, blame the request or not."""

from __future__ import annotations

import grpc
import pytest

from coordinator.errors import ErrorCode
from milvus_wire import milvus_pb2, status_pb2
from mishards.outcomes import Ending, blames_request, node_fault, reply_status, rpc_ending, suspects_node

# Details as grpc-python reports them (seen on loopback: a node killed mid-call, a port nobody listens on).
KILLED_MID_CALL = "Stream removed (Socket closed)"
RESET_MID_CALL = "recvmsg:Connection reset by peer"
REFUSED = ("failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:1: Failed to connect to "
           "remote host: connect: Connection refused (111)")


@pytest.mark.parametrize(("code", "details", "ending"), [
    (grpc.StatusCode.UNAVAILABLE, REFUSED, Ending.NOT_SENT),
    (grpc.StatusCode.UNAVAILABLE, "DNS resolution failed for nowhere:1", Ending.NOT_SENT),
    (grpc.StatusCode.UNAVAILABLE, KILLED_MID_CALL, Ending.DIED),
    (grpc.StatusCode.UNAVAILABLE, RESET_MID_CALL, Ending.DIED),
    (grpc.StatusCode.UNAVAILABLE, None, Ending.DIED),
    (grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded", Ending.TIMED_OUT),
    (grpc.StatusCode.CANCELLED, "Locally cancelled by application!", Ending.CANCELLED),
    (grpc.StatusCode.UNIMPLEMENTED, "", Ending.FAILED),
    (grpc.StatusCode.RESOURCE_EXHAUSTED, "Received message larger than max (17825792 vs. 16777216)",
     Ending.TOO_LARGE),
    (grpc.StatusCode.RESOURCE_EXHAUSTED, "Concurrent RPC limit exceeded!", Ending.FAILED),
    (grpc.StatusCode.UNKNOWN, "Exception calling application", Ending.FAILED),
])
def test_rpc_endings(code: grpc.StatusCode, details: str | None, ending: Ending) -> None:
    assert rpc_ending(code, details) == ending


def test_only_a_node_dying_or_hanging_with_the_request_blames_the_request() -> None:
    assert {e for e in Ending if blames_request(e)} == {Ending.DIED, Ending.TIMED_OUT}  # not TOO_LARGE: refused
    # A node never reached is down (suspected) but says nothing about the request.
    assert {e for e in Ending if suspects_node(e)} == {Ending.NOT_SENT, Ending.DIED, Ending.TIMED_OUT}


@pytest.mark.parametrize(("code", "reason"), [
    (ErrorCode.UNEXPECTED_ERROR, "Internal error: AST constructor recursion depth mismatch (before=43, after=42)"),
    (ErrorCode.UNEXPECTED_ERROR, "Invalid file id"),
    (ErrorCode.UNEXPECTED_ERROR, "Server busy: 8 searches in flight, try again later"),
    (ErrorCode.FILE_NOT_FOUND, "Segment file missing: 1/3.npy"),
    (ErrorCode.META_FAILED, "database is locked"),
    (ErrorCode.CACHE_FAILED, "cannot cache segment 3"),
    (ErrorCode.OUT_OF_MEMORY, "cannot allocate"),
    (ErrorCode.CONNECT_FAILED, "could not reach the catalog"),
])
def test_the_nodes_own_trouble_is_retried_elsewhere(code: ErrorCode, reason: str) -> None:
    assert node_fault(int(code), reason)


@pytest.mark.parametrize(("code", "reason"), [
    (ErrorCode.SUCCESS, ""),
    (ErrorCode.ILLEGAL_TOPK, "Invalid topk: 0. The topk must be within the range of 1 ~ 1048576."),
    (ErrorCode.ILLEGAL_TOPK, "Invalid nq 12000 topk 16384. The search result size may exceed the RPC "
                             "transmission limit."),
    (ErrorCode.ILLEGAL_ARGUMENT, "Invalid nprobe value: 0. Valid range is [1, 65536]"),
    (ErrorCode.COLLECTION_NOT_EXISTS, "Collection busy does not exist. Use milvus.has_collection to verify..."),
    (ErrorCode.ILLEGAL_DIMENSION, "The vector dimension must be equal to the collection dimension."),
    (ErrorCode.ILLEGAL_COLLECTION_NAME, "Collection name should not be empty."),
    (ErrorCode.UNEXPECTED_ERROR, "The specified partition does not exist"),
    (ErrorCode.UNEXPECTED_ERROR, "Partition busy of collection c not found"),
    (ErrorCode.UNEXPECTED_ERROR, "Invalid partition tag: . Partition tag should not be empty."),
])
def test_the_requests_own_fault_is_final(code: ErrorCode, reason: str) -> None:
    assert not node_fault(int(code), reason)


def test_reply_status_reads_field_one_of_any_reply() -> None:
    status = status_pb2.Status(error_code=14, reason="Segment file missing: " + "x" * 300)  # type: ignore[arg-type]
    for reply in (milvus_pb2.VectorsData(status=status, vectors_data=[milvus_pb2.RowRecord(float_data=[1.0])]),
                  milvus_pb2.TopKQueryResult(status=status, row_num=1, ids=[1], distances=[0.5])):
        assert reply_status(reply.SerializeToString()) == (14, status.reason)
    assert reply_status(milvus_pb2.TopKQueryResult(row_num=1, ids=[1], distances=[0.5]).SerializeToString()) == (0, "")
    assert reply_status(b"") == (0, "")
