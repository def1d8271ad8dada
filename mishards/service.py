"""The proxy's MilvusService: every call forwarded as bytes (no decoding of the payload), `Cmd version`
answered by the proxy itself. Every call, gRPC or REST, is first admitted by the guard (``coordinator.auth``): a
refused one answers PERMISSION_DENIED in its own reply type and nothing is forwarded; an admitted one carries the
caller's ``authorization`` metadata on every sub-request made for it.

Writes, DDL and every other call go to the current writer (the hybrid ones too: CreateHybridCollection, InsertEntity,
...); searches (Search, SearchByID, HybridSearch) fan out across the read-only nodes on top of this edge.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import grpc

from coordinator.auth.classes import LISTS
from coordinator.auth.guard import Guard, Refused, forwarded
from coordinator.auth.requests import narrow_list, parse_request
from coordinator.errors import ErrorCode
from coordinator.headers import REQUEST_KEY_HEADER
from coordinator.membership import Member
from coordinator.wire import SUCCESS_REASON
from coordinator.writer_lookup import LOOKUP_TIMEOUT
from milvus_wire import milvus_pb2, status_pb2
from mishards.catalog_view import CatalogView
from mishards.cluster import Cluster
from mishards.config_cmd import is_set_config, to_every_reader
from mishards.fanout import MIN_REVISION_HEADER, Failed, Fanout
from mishards.metadata_answers import ANSWERS, answer
from mishards.outcomes import reply_status
from mishards.settings import ProxySettings
from mishards.write_outcomes import (
    BUSY_REASON,
    NOT_APPLIED_REASON,
    UNKNOWN_REASON,
    WriteEnding,
    after_error,
    after_reply,
    may_send_again,
)

if TYPE_CHECKING:
    from coordinator.tracing import Metadata, Tracing
    from mishards.metrics import ProxyMetrics

log = logging.getLogger(__name__)

SERVICE = "milvus.grpc.MilvusService"
# Calls that block until work is done (Milvus semantics): no deadline of ours.
LONG_CALLS = frozenset({"CreateIndex", "Flush", "Compact", "PreloadCollection", "DropIndex",
                        "PreloadHybridCollection"})
# Calls that change what searches see: the proxy's catalog view catches up before answering.
CHANGES_CATALOG = frozenset({"CreateCollection", "DropCollection", "CreatePartition", "DropPartition", "CreateIndex",
                             "DropIndex", "Flush", "Compact", "CreateHybridCollection", "DropHybridCollection"})
# Cache calls every node must see: the writer first, then every read node (each acts on its own share).
BROADCAST = frozenset({"PreloadCollection", "ReleaseCollection", "ReloadSegments", "PreloadHybridCollection"})
# A client deadline further away than this is no deadline (gRPC reports none as ~2**63 seconds remaining).
NO_DEADLINE = 365 * 86400.0
# Reads any node answers from the shared catalog and storage (used when the writer is down).
READABLE_ANYWHERE = frozenset({"GetVectorsByID", "GetVectorIDs", "SearchInFiles", "Search", "SearchByID",
                               "HybridSearch", "HybridSearchInSegments", "GetEntityByID", "GetEntityIDs"})


def _message_class(full_name: str) -> Any:
    name = full_name.rpartition(".")[2]
    return getattr(milvus_pb2, name, None) or getattr(status_pb2, name)


def reply_status_of(reply: bytes, reply_cls: Any) -> tuple[int, str]:
    """``(error_code, reason)`` of a serialized reply (a ``Status``, or a message with its status as field 1,
    read without decoding the rest)."""
    if reply_cls is status_pb2.Status:
        status = status_pb2.Status.FromString(reply)
        return int(status.error_code), str(status.reason)
    return reply_status(reply)


def request_key(context: grpc.ServicerContext | None) -> str:
    """The request key of an insert: the caller's own (a client retrying an insert sends the same one, so the
    writer answers the retry with the first attempt's ids), else a new one."""
    if context is not None:
        for key, value in context.invocation_metadata() or ():
            if key == REQUEST_KEY_HEADER and isinstance(value, str) and len(value) == 32:
                try:
                    bytes.fromhex(value)
                except ValueError:
                    break
                return value.lower()
    return uuid.uuid4().hex


def error_bytes(reply_cls: Any, code: ErrorCode, reason: str) -> bytes:
    status = status_pb2.Status(error_code=int(code), reason=reason)  # type: ignore[arg-type]
    reply = status if reply_cls is status_pb2.Status else reply_cls(status=status)
    return bytes(reply.SerializeToString())


class Unimplemented(Exception):
    """A node answered UNIMPLEMENTED: the client gets that gRPC status too."""

    def __init__(self, details: str | None) -> None:
        super().__init__(details)
        self.details = details or ""


class Forwarder:
    def __init__(self, settings: ProxySettings, cluster: Cluster, fanout: Fanout | None = None,
                 view: CatalogView | None = None, metrics: ProxyMetrics | None = None,
                 tracing: Tracing | None = None, guard: Guard | None = None) -> None:
        self.settings = settings
        self.guard = guard  # who may run what (coordinator.auth); None: every call is forwarded
        self.cluster = cluster
        self.fanout = fanout
        self.view = view
        self.metrics = metrics
        self.tracing = tracing
        self._wait_slots = max(1, settings.grpc_workers // 2)
        self._waiting_writes = threading.BoundedSemaphore(self._wait_slots)

    def handler(self, method: str, reply_cls: Any) -> Callable[[bytes, grpc.ServicerContext], bytes]:
        path = f"/{SERVICE}/{method}"
        timeout = None if method in LONG_CALLS or not self.settings.request_timeout else self.settings.request_timeout
        fanned = {"Search": self.fanout.search, "SearchByID": self.fanout.search_by_id,
                  "HybridSearch": self.fanout.hybrid_search} if self.fanout else {}
        fan_out = fanned.get(method)

        def forward(request: bytes, context: grpc.ServicerContext) -> bytes:
            if self.guard is None:
                return served(request, context)
            verdict = self.guard.admit(method, request, context, parse_request)
            if isinstance(verdict, Refused):  # nothing is forwarded
                return error_bytes(reply_cls, ErrorCode.PERMISSION_DENIED, verdict.reason)
            reply = served(request, context)
            if method in LISTS and verdict.identity.scoped:
                reply = narrow_list(method, reply, verdict.identity)
            if verdict.audited is not None:
                self.guard.done(verdict, reply_status_of(reply, reply_cls)[0])
            return reply

        def served(request: bytes, context: grpc.ServicerContext) -> bytes:
            try:
                return serve(request, context)
            except Unimplemented as exc:
                context.abort(grpc.StatusCode.UNIMPLEMENTED, exc.details)
            except Exception as exc:  # never a bare gRPC UNKNOWN: the client gets a Milvus status
                log.exception("%s failed in the proxy", method)
                return error_bytes(reply_cls, ErrorCode.UNEXPECTED_ERROR, f"Internal error in the proxy: {exc}")
            raise AssertionError("unreachable")  # context.abort raises

        def serve(request: bytes, context: grpc.ServicerContext) -> bytes:
            if fan_out is not None:
                try:
                    merged = fan_out(request)
                except Failed as exc:
                    return error_bytes(reply_cls, exc.code, exc.reason)
                if merged is not None:
                    return merged
            if method == "Cmd":
                cmd = milvus_pb2.Command.FromString(request).cmd
                if cmd == "version":
                    version = milvus_pb2.StringReply(status=status_pb2.Status(reason=SUCCESS_REASON),
                                                    string_reply=self.settings.version)
                    return bytes(version.SerializeToString())
                if is_set_config(cmd):  # every node takes it: the writer first, then each read node
                    writer_reply = self._to_writer(method, request, reply_cls, path, timeout, context)
                    return to_every_reader(self.cluster, request, path, writer_reply, self.tracing)
            if method not in ANSWERS and method not in BROADCAST and method not in READABLE_ANYWHERE:
                return self._to_writer(method, request, reply_cls, path, timeout, context)
            target = self.cluster.writer()
            if target is None:
                return self._without_writer(method, request, reply_cls, path, timeout)
            try:
                reply = self._call_writer(target, path, request, timeout, ())
            except grpc.RpcError as exc:
                code = exc.code()
                if code == grpc.StatusCode.UNIMPLEMENTED:
                    raise Unimplemented(exc.details()) from None
                if after_error(code, exc.details()) is WriteEnding.REFUSED_INPUT:
                    return error_bytes(reply_cls, ErrorCode.ILLEGAL_ARGUMENT,
                                       f"The request could not be read: {exc.details()}")
                log.warning("%s to %s failed: %s", method, target.address, code)
                self.cluster.forget_writer()
                return self._without_writer(method, request, reply_cls, path, timeout)
            if method in CHANGES_CATALOG and self.view is not None:
                self._catch_up()
            if method in BROADCAST:
                return self._broadcast(request, path, timeout, reply)
            return reply

        if self.metrics is not None:
            return self.metrics.timed(method, reply_cls is status_pb2.Status, forward)
        return forward

    def _call_writer(self, target: Member, path: str, request: bytes, timeout: float | None,
                     metadata: Metadata) -> bytes:
        metadata = (*metadata, *forwarded())  # the caller's authorization, for a node without mTLS
        if self.tracing is None:
            return bytes(self.cluster.channel(target.address).unary_unary(path)(request, timeout=timeout,
                                                                                metadata=metadata or None))
        with self.tracing.client(path, target.node_id, metadata) as sent:
            return bytes(self.cluster.channel(target.address).unary_unary(path)(request, timeout=timeout,
                                                                                metadata=sent))

    def _to_writer(self, method: str, request: bytes, reply_cls: Any, path: str, timeout: float | None,
                   context: grpc.ServicerContext) -> bytes:
        """A call only the writer can serve. What never reached a writer, or was refused before anything was
        written, goes again to the current writer (waiting for one to be elected) for up to
        ``write_retry_timeout``; so does a repeatable call whose outcome is unknown (an insert under the same
        request key, recognised by the writer as a retry). Otherwise the client learns which it was."""
        budget = self.settings.write_retry_timeout
        remaining = context.time_remaining() if context is not None else None
        if remaining is not None and remaining > NO_DEADLINE:
            remaining = None  # gRPC reports a call without a deadline as ~2**63 seconds remaining
        # Answer before the client gives up: no attempt may run past its deadline (less a margin).
        client_deadline = None if remaining is None else time.monotonic() + remaining - 0.25
        if remaining is not None:
            budget = min(budget, max(0.0, remaining - 0.25))
        started = time.monotonic()
        deadline = started + budget
        metadata: Metadata = ((REQUEST_KEY_HEADER, request_key(context)),) if method == "Insert" else ()
        unknown = False
        attempts = 0
        pause = 0.05
        waiting = False  # holding one of the slots of the writes that wait for a writer
        full = False  # every slot was taken: answered without waiting
        try:
            while True:
                if attempts and deadline - time.monotonic() < LOOKUP_TIMEOUT + 0.1:
                    break  # no time left for another lookup and attempt within the client's deadline
                target = self.cluster.writer()
                if target is not None:
                    attempt_timeout = timeout
                    if client_deadline is not None:
                        left = client_deadline - time.monotonic()
                        if left <= 0 and attempts:
                            break
                        attempt_timeout = max(0.05, left if timeout is None else min(timeout, left))
                    attempts += 1
                    ending, reply = self._attempt(target, method, path, request, attempt_timeout, metadata,
                                                  reply_cls)
                    if ending is WriteEnding.APPLIED and method in CHANGES_CATALOG and self.view is not None:
                        self._catch_up()
                    if ending in (WriteEnding.APPLIED, WriteEnding.REFUSED_INPUT):
                        return reply
                    self.cluster.forget_writer()
                    unknown = unknown or ending is WriteEnding.UNKNOWN
                    if not may_send_again(method, ending):
                        break
                    if self.metrics is not None:
                        self.metrics.write_retries.labels(method, ending.value).inc()
                if time.monotonic() + pause >= deadline:
                    break
                if not waiting:
                    # Each waiting write holds a handler thread: at most half of them wait, so that searches
                    # and the rest keep being served while no writer can be elected.
                    waiting = self._waiting_writes.acquire(blocking=False)
                    if not waiting:
                        full = True
                        break
                time.sleep(pause)  # a writer is being elected: look again shortly
                pause = min(pause * 2, 0.5)
        finally:
            if waiting:
                self._waiting_writes.release()
        outcome = WriteEnding.UNKNOWN if unknown else WriteEnding.NOT_APPLIED
        if self.metrics is not None:
            self.metrics.writes_given_up.labels(method, outcome.value).inc()
        if unknown:
            return error_bytes(reply_cls, ErrorCode.UNEXPECTED_ERROR, UNKNOWN_REASON)
        if full:
            return error_bytes(reply_cls, ErrorCode.CONNECT_FAILED, BUSY_REASON.format(waiting=self._wait_slots))
        return error_bytes(reply_cls, ErrorCode.CONNECT_FAILED,
                           NOT_APPLIED_REASON.format(seconds=time.monotonic() - started))

    def _attempt(self, target: Member, method: str, path: str, request: bytes, timeout: float | None,
                 metadata: Metadata, reply_cls: Any) -> tuple[WriteEnding, bytes]:
        """One call to the writer: how it ended, and the reply to pass on (the writer's, or an in-band refusal
        of a request its gRPC layer could not read)."""
        try:
            reply = self._call_writer(target, path, request, timeout, metadata)
        except grpc.RpcError as exc:
            code = exc.code()
            if code == grpc.StatusCode.UNIMPLEMENTED:
                raise Unimplemented(exc.details()) from None
            ending = after_error(code, exc.details())
            if ending is WriteEnding.REFUSED_INPUT:
                return ending, error_bytes(reply_cls, ErrorCode.ILLEGAL_ARGUMENT,
                                           f"The request could not be read: {exc.details()}")
            log.warning("%s to the writer %s failed (%s): %s", method, target.address, code.name, ending.value)
            return ending, b""
        ending = after_reply(*reply_status_of(reply, reply_cls))
        if ending is not WriteEnding.APPLIED:
            log.info("%s refused by %s (%s); looking for the writer again", method, target.node_id, ending.value)
        return ending, reply

    def _catch_up(self) -> None:
        """After a change through this proxy, route from a view that includes it (read-your-writes)."""
        assert self.view is not None
        try:
            self.view.catch_up()
        except Exception as exc:  # the reply is the writer's; the view follows on its next poll
            log.warning("catalog view refresh failed: %s", exc)

    def _revision(self) -> int:
        """The revision of the proxy's catalog view, sent to the nodes as the least they must have seen."""
        return self.view.snapshot().revision if self.view is not None else 0

    def _broadcast(self, request: bytes, path: str, timeout: float | None, writer_reply: bytes) -> bytes:
        """Send a cache call (Preload/Release/ReloadSegments) to every read node too; the first error wins.

        A read node that cannot be reached is skipped: it loads its share when it comes back.
        """
        if status_pb2.Status.FromString(writer_reply).error_code:
            return writer_reply
        readers = self.cluster.readers()
        revision = self._revision()
        header: tuple[tuple[str, str], ...] = ((MIN_REVISION_HEADER, str(revision)), *forwarded())
        calls = []
        for member in readers:
            span, metadata = (None, header) if self.tracing is None else \
                self.tracing.start_client(path, member.node_id, header)
            fut = self.cluster.channel(member.address).unary_unary(path).future(request, timeout=timeout,
                                                                                metadata=metadata)
            calls.append((member, fut, span))
        first_error: bytes | None = None
        for member, fut, span in calls:
            try:
                reply = bytes(fut.result())
            except grpc.RpcError as exc:
                log.warning("%s on read node %s failed: %s", path.rpartition("/")[2], member.node_id, exc.code())
                if span is not None and self.tracing is not None:
                    self.tracing.end_client(span, exc)
                continue
            if span is not None and self.tracing is not None:
                self.tracing.end_client(span)
            if first_error is None and status_pb2.Status.FromString(reply).error_code:
                first_error = reply
        return first_error if first_error is not None else writer_reply

    def _without_writer(self, method: str, request: bytes, reply_cls: Any, path: str, timeout: float | None) -> bytes:
        """Answers that do not need the writer: metadata from the cached catalog, reads and cache calls from
        the read nodes; anything else fails fast."""
        if method in ANSWERS and self.view is not None:
            return answer(method, self.view.snapshot(), request, reply_cls)
        readers = self.cluster.readers()
        if readers and method in BROADCAST:
            done = error_bytes(status_pb2.Status, ErrorCode.SUCCESS, SUCCESS_REASON)
            return self._broadcast(request, path, timeout, done)
        if readers and method in READABLE_ANYWHERE and self.fanout is not None:
            revision = self._revision()
            deadline = time.monotonic() + (timeout or 60.0)
            try:
                return self.fanout.any_node(readers, path, request, revision, deadline, writer_last=False)
            except Failed as exc:
                return error_bytes(reply_cls, exc.code, exc.reason)
        return error_bytes(reply_cls, ErrorCode.CONNECT_FAILED, "No writable node is available right now")

    def generic_handler(self) -> grpc.GenericRpcHandler:
        handlers = {}
        for method in milvus_pb2.DESCRIPTOR.services_by_name["MilvusService"].methods:
            reply_cls = _message_class(method.output_type.full_name)
            handlers[method.name] = grpc.unary_unary_rpc_method_handler(self.handler(method.name, reply_cls))
        return grpc.method_handlers_generic_handler(SERVICE, handlers)
