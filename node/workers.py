"""A node's worker processes (``--workers N``): how many, what each serves, and the parent that runs them.

- role ``ro``: every worker is a full read-only engine; the primary (worker 0) alone joins membership, the
  others follow the same share (a watch-only presence) so that they warm the same segments.
- role ``standalone``: the primary owns the log, every catalog write, maintenance and the REST port. The
  others are read-only engines over the same catalog and storage that serve the search RPCs
  (:data:`SERVED_BY_EVERY_WORKER`) and forward every other call, as bytes, to the primary's own port, keeping
  its deadline and metadata and returning the primary's reply unchanged. Before each search a secondary
  catches up with the catalog revision, so it sees everything a Flush acknowledged before the search started
  and every DDL at once.
- role ``rw``: one process (the writer's log and lease are one process's).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import grpc

from coordinator.errors import MilvusError
from coordinator.worker_pool import PoolConfig, serve_workers, strip_flags
from coordinator.workers import SPEC_FLAG, WorkerSpec, usable_workers
from node.settings import NodeSettings

log = logging.getLogger(__name__)

SERVED_BY_EVERY_WORKER = frozenset({"Search", "SearchByID", "SearchInFiles", "HybridSearch",
                                    "HybridSearchInSegments"})
# The channel to the primary carries any request the worker accepted, and any reply.
PRIMARY_CHANNEL_OPTIONS = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
# Headers gRPC sets itself on the forwarded call (passing them again is refused or duplicated).
TRANSPORT_HEADERS = ("user-agent", "te", "content-type")


def forwards(role: str, spec: WorkerSpec | None) -> bool:
    """Whether this worker forwards what it does not serve to the primary (a standalone node's secondaries)."""
    return spec is not None and not spec.is_primary and role == "standalone"


def served_locally(role: str, spec: WorkerSpec | None, method: str) -> bool:
    """Whether a worker answers ``method`` itself (else it forwards it to the primary)."""
    return not forwards(role, spec) or method in SERVED_BY_EVERY_WORKER


def watch_only(role: str, spec: WorkerSpec | None) -> bool:
    """A read node's secondary follows membership without registering (the primary is the member)."""
    return spec is not None and not spec.is_primary and role == "ro"


def workers_for(settings: NodeSettings) -> int:
    """Worker processes to run: ``workers`` (0: the usable CPUs); a writer (rw) runs as one."""
    if settings.role == "rw":
        if settings.workers == 0:
            log.warning("role rw runs as one process: --workers 0 means 1 here")
        return 1
    return usable_workers(settings.workers)


def forwarded_metadata(metadata: Sequence[Any] | None) -> tuple[tuple[str, Any], ...]:
    """The caller's metadata worth passing on (not gRPC's own headers)."""
    return tuple((m[0], m[1]) for m in metadata or ()
                 if not m[0].startswith((":", "grpc-")) and m[0] not in TRANSPORT_HEADERS)


def call_timeout(remaining: float | None) -> float | None:
    """The forwarded call's timeout: what is left of the caller's deadline (None: it has none)."""
    if remaining is None or remaining > 10 ** 8:
        return None
    return max(0.001, remaining)


def forward_handler(channel: grpc.Channel, path: str) -> grpc.RpcMethodHandler:
    """A method handler that sends the request bytes to the primary and returns its reply bytes; a gRPC
    failure of that call (primary down, deadline) ends the caller's call with the same code."""
    call = channel.unary_unary(path)

    def forward(request: bytes, context: grpc.ServicerContext) -> bytes:
        try:
            return bytes(call(request, timeout=call_timeout(context.time_remaining()),
                              metadata=forwarded_metadata(context.invocation_metadata())))
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNAVAILABLE
            context.abort(code, exc.details() if hasattr(exc, "details") else str(exc))
            raise  # not reached: abort raises

    return grpc.unary_unary_rpc_method_handler(forward)


def caught_up(engine: Any, behavior: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """``behavior`` run on a snapshot at least as new as the catalog when the call arrived."""

    def handler(request: Any, context: Any) -> Any:
        try:
            engine.catch_up(engine.catalog.revision())
        except MilvusError as exc:  # the catalog does not answer: the search itself reports it
            log.debug("cannot read the catalog revision: %s", exc)
        return behavior(request, context)

    return handler


def run(settings: NodeSettings, spec: WorkerSpec | None, argv: Sequence[str]) -> None:
    """Serve: one process, or (``workers`` > 1, not a worker itself) the parent of the workers."""
    from node.server import NodeServer

    count = workers_for(settings) if spec is None else 1
    if count == 1:
        NodeServer(settings, spec).serve_forever()
        return
    serve_workers(PoolConfig(
        prog="mishards node", module="node", argv=strip_flags(argv, ("--ready-file", SPEC_FLAG)),
        host=settings.host, advertise=settings.advertise, port=settings.port, count=count,
        metrics_port=settings.metrics_port, http_port=settings.rest_port, http_shared=False,
        ready_file=settings.ready_file))
