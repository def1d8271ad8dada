"""``Cmd("set_config ...")`` through the proxy: every node takes the value, not only the writer.

The writer answers first (it refuses a bad value before any read node sees it); when it accepted, the command
goes to every read node in parallel. The client gets SUCCESS only when every node accepted, else the first
refusal (the writer's, then the read nodes' in membership order); a read node that could not be reached counts
as a refusal. ``get_config`` and the other Cmd strings are the writer's to answer.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc

from coordinator.auth.guard import forwarded
from coordinator.errors import ErrorCode
from milvus_wire import milvus_pb2, status_pb2
from mishards.outcomes import reply_status

if TYPE_CHECKING:
    from coordinator.membership import Member
    from coordinator.tracing import Tracing
    from mishards.cluster import Cluster

log = logging.getLogger(__name__)

# Read nodes answer a set_config at once; a node that does not within this is reported, not waited for.
READER_TIMEOUT = 10.0


def is_set_config(cmd: str) -> bool:
    """Milvus 1.1 treats every command starting with these ten characters as a config command."""
    return cmd[:10] == "set_config"


@dataclass(frozen=True, slots=True)
class NodeAnswer:
    node_id: str
    reply: bytes | None  # None: the call failed (see ``error``)
    error: str = ""


def string_reply(code: ErrorCode, reason: str) -> bytes:
    status = status_pb2.Status(error_code=int(code), reason=reason)  # type: ignore[arg-type]
    return bytes(milvus_pb2.StringReply(status=status).SerializeToString())


def combined(writer_reply: bytes, answers: Sequence[NodeAnswer]) -> bytes:
    """The client's reply: the writer's when every read node accepted, else the first read node refusal."""
    for answer in answers:
        if answer.reply is None:
            return string_reply(ErrorCode.UNEXPECTED_ERROR,
                                f"set_config did not reach read node {answer.node_id} ({answer.error}); the "
                                "writer and the other read nodes that answered took the value")
        if reply_status(answer.reply)[0] != ErrorCode.SUCCESS:
            return answer.reply
    return writer_reply


def to_every_reader(cluster: Cluster, request: bytes, path: str, writer_reply: bytes,
                    tracing: Tracing | None = None) -> bytes:
    """Send a set_config the writer accepted to every read node; the combined reply."""
    if reply_status(writer_reply)[0] != ErrorCode.SUCCESS:
        return writer_reply
    calls: list[tuple[Member, Any, Any]] = []
    for member in cluster.readers():
        span, metadata = (None, forwarded()) if tracing is None else \
            tracing.start_client(path, member.node_id, forwarded())
        future = cluster.channel(member.address).unary_unary(path).future(
            request, timeout=READER_TIMEOUT, metadata=metadata or None)
        calls.append((member, future, span))
    answers = []
    for member, future, span in calls:
        try:
            answers.append(NodeAnswer(member.node_id, bytes(future.result())))
            error: grpc.RpcError | None = None
        except grpc.RpcError as exc:
            log.warning("set_config on read node %s failed: %s", member.node_id, exc.code())
            answers.append(NodeAnswer(member.node_id, None, exc.code().name))
            error = exc
        if span is not None and tracing is not None:
            tracing.end_client(span, error)
    return combined(writer_reply, answers)
