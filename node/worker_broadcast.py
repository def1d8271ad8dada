"""Calls every worker of a multi-process node must take (``--workers N``): the cache calls (``PreloadCollection``,
``ReleaseCollection``, ``PreloadHybridCollection``, ``ReloadSegments``) and ``Cmd set_config``.

Each worker has its own engine, segment cache and live settings, and a caller reaches one of them (the shared
port hands a connection to any worker). So whichever worker receives such a call serves it itself first and,
when that succeeded, sends it on to every other worker of the node on their own ports, marked with
:data:`~coordinator.workers.LOCAL_HEADER` (a marked call is served where it lands and never passed on) and
carrying the caller's metadata (``authorization`` and the project's own headers; the trace context through a
client span of this worker's when it traces) and the node's worker secret, so that a caller the receiving
worker admitted without a token (a cluster peer, by its certificate) is admitted by the others too
(:func:`trusting_workers`). The reply is this worker's when every other worker succeeded, else
the first failure (in worker order); a worker that did not answer in time counts as a failure. This works alike
for a proxy and for a client talking to a node directly, over gRPC and REST (the REST API runs the same
handler table, ``node/rest.py``).

``set_config`` values are written to the node's config-values file by the primary alone
(:attr:`node.commands.Commands.keeps_values`); every worker checks the value the same way and applies it live.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc

from coordinator.errors import UnexpectedError
from coordinator.workers import LOCAL_HEADER, SECRET_HEADER, carries_secret
from milvus_wire import milvus_pb2, status_pb2
from node import convert
from node.worker_forward import call_timeout, forwarded_metadata, traced_call

if TYPE_CHECKING:
    from coordinator.tracing import Tracing

log = logging.getLogger(__name__)

SERVICE = "milvus.grpc.MilvusService"
BROADCAST_METHODS = frozenset({"PreloadCollection", "ReleaseCollection", "PreloadHybridCollection",
                               "ReloadSegments", "Cmd"})
# How long another worker may take, at most, beyond what is left of the caller's deadline (a preload takes as
# long as the data needs: bounded by the caller's deadline alone).
SIBLING_CAPS = {"Cmd": 10.0, "ReleaseCollection": 30.0, "ReloadSegments": 30.0}
# The share of the caller's remaining deadline the other workers get, so that a worker that does not answer is
# reported in the reply rather than ending the caller's call with DEADLINE_EXCEEDED.
DEADLINE_SHARE = 0.9

Behavior = Callable[[Any, Any], Any]


def is_set_config(cmd: str) -> bool:
    """Milvus 1.1 treats every command starting with these ten characters as a config command."""
    return cmd[:10] == "set_config"


def broadcasts(method: str, request: Any) -> bool:
    """Whether every worker must take this call (a ``Cmd`` only when it is a ``set_config``)."""
    if method not in BROADCAST_METHODS:
        return False
    return method != "Cmd" or is_set_config(str(request.cmd))


def marked_local(metadata: Sequence[Any] | None) -> bool:
    """Whether a call is meant for the worker it reached alone (sent on by another worker, or by a tool)."""
    return any(m[0] == LOCAL_HEADER for m in metadata or ())


def sibling_timeout(method: str, remaining: float | None) -> float | None:
    """The deadline of the call to another worker: a share of what is left of the caller's, at most the
    method's cap (None: no deadline at all)."""
    left = call_timeout(remaining)
    own = None if left is None else max(0.001, left * DEADLINE_SHARE)
    cap = SIBLING_CAPS.get(method)
    if cap is None:
        return own
    return cap if own is None else min(cap, own)


def status_of(reply: Any) -> Any:
    return reply if isinstance(reply, status_pb2.Status) else reply.status


@dataclass(frozen=True, slots=True)
class SiblingAnswer:
    """What another worker answered: its reply bytes, or (``reply`` None) the gRPC failure of the call."""

    index: int
    address: str
    reply: bytes | None
    error: str = ""


def combined(method: str, own: Any, answers: Sequence[SiblingAnswer], reply_cls: Any) -> Any:
    """The caller's reply: this worker's when every other worker succeeded, else the first failure."""
    for answer in answers:
        if answer.reply is None:
            return convert.error_reply(reply_cls, UnexpectedError(
                f"{method} did not reach worker {answer.index} of this node ({answer.error}); the workers that "
                "answered took it"))
        reply = reply_cls.FromString(answer.reply)
        if status_of(reply).error_code != 0:
            return reply
    return own


class Broadcaster:
    """Sends a call this worker served on to the node's other workers (``siblings``: index and address)."""

    def __init__(self, siblings: Sequence[tuple[int, str]], channel: Callable[[str], grpc.Channel],
                 tracing: Tracing | None = None, secret: str = "") -> None:
        self.siblings = tuple(siblings)
        self.channel = channel
        self.tracing = tracing
        self.secret = secret

    def wrap(self, method: str, behavior: Behavior, reply_cls: Any) -> Behavior:
        """``behavior`` served here, then (a broadcast call not marked local, that succeeded here) by every
        other worker; the combined reply."""
        if method not in BROADCAST_METHODS:
            return behavior
        path = f"/{SERVICE}/{method}"

        def handler(request: Any, context: Any) -> Any:
            reply = behavior(request, context)
            metadata = tuple(context.invocation_metadata() or ()) if context is not None else ()
            if marked_local(metadata) or not broadcasts(method, request) or status_of(reply).error_code != 0:
                return reply
            remaining = context.time_remaining() if context is not None else None
            answers = self.send(path, request.SerializeToString(), metadata, sibling_timeout(method, remaining))
            return combined(method, reply, answers, reply_cls)

        return handler

    def send(self, path: str, request: bytes, metadata: Sequence[Any], timeout: float | None) -> list[SiblingAnswer]:
        """``request`` to every other worker at once, marked local; their answers in worker order."""
        passed = (*forwarded_metadata(metadata), (LOCAL_HEADER, "1"), *(((SECRET_HEADER, self.secret),)
                                                                        if self.secret else ()))
        calls = []
        for index, address in self.siblings:
            span, carried = traced_call(self.tracing, path, address, passed)
            future: Any = None
            failed: BaseException | None = None
            try:
                future = self.channel(address).unary_unary(path).future(request, timeout=timeout, metadata=carried)
            except Exception as exc:  # e.g. a closed channel while stopping
                failed = exc
            calls.append((index, address, future, failed, span))
        answers = []
        for index, address, future, failed, span in calls:
            error = failed
            if error is None:
                try:
                    answers.append(SiblingAnswer(index, address, bytes(future.result())))
                except Exception as exc:  # a grpc.RpcError, mostly
                    error = exc
            if error is not None:
                code = error.code() if isinstance(error, grpc.RpcError) else None
                answers.append(SiblingAnswer(index, address, None, getattr(code, "name", type(error).__name__)))
                log.warning("%s did not reach worker %d at %s: %s", path, index, address, answers[-1].error)
            if span is not None and self.tracing is not None:
                self.tracing.end_client(span, error)
        return answers


def trusting_workers(internal: Callable[[Any], bool], secret: str) -> Callable[[Any], bool]:
    """The auth guard's test of an internal call, also true for a call another worker of this node sent on
    (it carries the node's worker secret: that worker authorized its caller already)."""
    if not secret:
        return internal

    def check(context: Any) -> bool:
        return carries_secret(context.invocation_metadata(), secret) or internal(context)

    return check


def cmd_here_or_forward(local: Behavior, forward: Callable[[bytes, Any], bytes]) -> grpc.RpcMethodHandler:
    """``Cmd`` on a standalone node's secondary: a ``set_config``, or a command marked local, served here (and
    a set_config sent on to every worker by ``local``); any other command answered by the primary."""

    def handler(raw: bytes, context: Any) -> bytes:
        try:
            request = milvus_pb2.Command.FromString(raw)
        except Exception:  # not a Command: the primary answers it as it would any malformed request
            return forward(raw, context)
        if marked_local(context.invocation_metadata()) or is_set_config(request.cmd):
            return bytes(local(request, context).SerializeToString())
        return forward(raw, context)

    return grpc.unary_unary_rpc_method_handler(handler)
