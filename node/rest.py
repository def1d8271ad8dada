"""The node's REST API: the Milvus 1.1 web server (``coordinator.rest``) over the node's own handler table.

Each REST call becomes the serialized request a gRPC client would send and runs through the very method
handler the node's gRPC port uses for it (``node/handlers.py``): its request type (the fast-path types for
inserts and searches), validation, error map, admission control and metrics, and, on a worker of a
multi-process node, the same routing: the broadcast calls reach every worker, and a standalone node's
secondary serves the searches itself and forwards every other call to the primary. Nothing is sent to the
node's own gRPC port.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import grpc

from coordinator.errors import MilvusError
from coordinator.rest.backend import RestContext

log = logging.getLogger(__name__)

KnownBinary = Callable[[str], bool | None]


class HandlerBackend:
    """Serves MilvusService calls (bytes in, bytes out) with a table of gRPC method handlers (method name ->
    ``grpc.RpcMethodHandler``), as the gRPC server would: deserialize (a forwarding handler takes the bytes
    as they are), run, serialize."""

    def __init__(self, handlers: dict[str, grpc.RpcMethodHandler], known: KnownBinary = lambda _name: None) -> None:
        self.context = RestContext()
        self._known = known
        self._calls: dict[str, Callable[[bytes], bytes]] = {name: self._call(h) for name, h in handlers.items()}

    def _call(self, handler: grpc.RpcMethodHandler) -> Callable[[bytes], bytes]:
        run = handler.unary_unary
        parse = handler.request_deserializer
        dump = handler.response_serializer
        context = self.context

        def call(request: bytes) -> bytes:
            reply = run(request if parse is None else parse(request), context)
            out = reply if dump is None else dump(reply)
            return out if isinstance(out, bytes) else bytes(out)

        return call

    def call(self, method: str, request: bytes) -> bytes:
        return self._calls[method](request)

    def known_binary(self, collection: str) -> bool | None:
        return self._known(collection)


def snapshot_binary(engine: Any) -> KnownBinary:
    """Whether a collection holds binary vectors, from the node's catalog snapshot, caught up with the catalog
    when it does not name the collection (None: still unknown, so the REST layer asks with ``DescribeCollection``,
    which reports a missing collection). For a worker that forwards ``DescribeCollection`` to its primary, as the
    proxy reads its cached catalog: a search it serves itself needs no call to the primary."""

    def known(name: str) -> bool | None:
        coll = engine.snapshot().collection(name)
        if coll is None:
            try:
                engine.catch_up(engine.catalog.revision())
            except MilvusError as exc:  # the call that follows reports it
                log.debug("cannot read the catalog revision: %s", exc)
                return None
            coll = engine.snapshot().collection(name)
        return None if coll is None else bool(coll.is_binary)

    return known
