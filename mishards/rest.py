"""The proxy's REST API: the Milvus 1.1 web server (``coordinator.rest``) over the proxy's forwarder.

A REST call becomes the serialized request a gRPC client would send and goes through the very handler the
gRPC edge uses for that method: writes to the writer (with its retries), searches fanned out over the read
nodes (same routing, hedging, failover, merge and consistency), metadata from the writer or the catalog.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from coordinator.rest.backend import RestContext, reply_classes


class ProxyBackend:
    def __init__(self, handler: Callable[[str, Any], Callable[[bytes, Any], bytes]]) -> None:
        """``handler`` is ``Forwarder.handler``: (method, reply class) -> (request bytes, context) -> reply."""
        self.context = RestContext()
        self._handlers = {method: handler(method, cls) for method, cls in reply_classes().items()}

    def call(self, method: str, request: bytes) -> bytes:
        return self._handlers[method](request, self.context)
