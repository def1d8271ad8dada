"""The node's gRPC edge: :func:`rpc`, the one place where a handler's errors become in-band Milvus statuses and
where every call (gRPC or REST) is checked against the caller's identity (``coordinator.auth``), and what a
handler may read of the call it serves (the caller's catalog revision, the request's idempotency key)."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from coordinator.auth.guard import Refused
from coordinator.errors import ErrorCode, MilvusError, UnexpectedError
from node import convert
from node.idempotency import REQUEST_KEY_HEADER, parse_request_key

log = logging.getLogger(__name__)

Handler = Callable[[Any, Any], Any]  # (self, request) -> reply
GrpcMethod = Callable[[Any, Any, Any], Any]  # (self, request, context) -> reply
# A caller (the proxy) that has seen catalog revision N asks a read-only node to answer from N or newer.
MIN_REVISION_HEADER = "mishards-min-revision"


def _min_revision(context: Any) -> int:
    for key, value in context.invocation_metadata() or ():
        if key == MIN_REVISION_HEADER:
            return int(value) if str(value).isdigit() else 0
    return 0


# The gRPC context of the call a handler thread is serving (handlers take only the request).
_CALL: ContextVar[Any] = ContextVar("call", default=None)


def request_key() -> bytes:
    """The idempotency key the proxy attached to this call (b"" if none)."""
    context = _CALL.get()
    for key, value in (context.invocation_metadata() or ()) if context is not None else ():
        if key == REQUEST_KEY_HEADER:
            return parse_request_key(str(value))
    return b""


def rpc(reply_type: Any) -> Callable[[Handler], GrpcMethod]:
    """Map every error of a handler to a ``reply_type`` carrying the Milvus status; never raise.

    The handler's object has ``engine`` (a read-only node first catches up with the caller's catalog revision),
    ``metrics`` (None, or what observes each call's method, status code and duration) and ``guard`` (None, or
    the :class:`coordinator.auth.guard.Guard` that admits the call first: a refused call answers
    PERMISSION_DENIED and runs nothing).
    """

    def wrap(fn: Handler) -> GrpcMethod:
        @functools.wraps(fn)
        def handler(self: Any, request: Any, context: Any) -> Any:
            started = time.perf_counter()
            code = ErrorCode.SUCCESS
            if self.metrics is not None:
                self.metrics.begin()
            call = _CALL.set(context)
            guard = self.guard
            admitted = None
            try:
                if guard is not None:
                    verdict = guard.admit(fn.__name__, request, context)
                    if isinstance(verdict, Refused):
                        code = ErrorCode.PERMISSION_DENIED
                        return convert.error_reply(reply_type, MilvusError(verdict.reason, code))
                    admitted = verdict
                if context is not None and not self.engine.writable:
                    self.engine.catch_up(_min_revision(context))
                return fn(self, request)
            except MilvusError as err:
                log.debug("%s failed: %s", fn.__name__, err.reason)
                code = err.code
                return convert.error_reply(reply_type, err)
            except Exception as exc:
                log.exception("%s failed unexpectedly", fn.__name__)
                code = ErrorCode.UNEXPECTED_ERROR
                return convert.error_reply(reply_type, UnexpectedError(f"Internal error: {exc}"))
            finally:
                _CALL.reset(call)
                if admitted is not None and guard is not None:
                    guard.done(admitted, int(code))
                if self.metrics is not None:
                    self.metrics.observe(fn.__name__, int(code), time.perf_counter() - started)

        return handler

    return wrap
