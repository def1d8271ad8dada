"""The proxy's REST API: the Milvus 1.1 web server (``coordinator.rest``) over the proxy's forwarder.

A REST call becomes the serialized request a gRPC client would send and goes through the very handler the
gRPC edge uses for that method: writes to the writer (with its retries), searches fanned out over the read
nodes (same routing, hedging, failover, merge and consistency), metadata from the writer or the catalog.
Whether a collection holds float or binary vectors (how JSON rows are read) comes from the proxy's cached
catalog when it lists the collection, instead of a DescribeCollection round trip to the writer per insert
or search; a collection it does not list is asked about, so a missing one is reported as the writer reports
it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from coordinator.rest.backend import RestContext, reply_classes
from mishards.catalog_view import CatalogView


class ProxyBackend:
    def __init__(self, handler: Callable[[str, Any], Callable[[bytes, Any], bytes]],
                 view: CatalogView | None = None) -> None:
        """``handler`` is ``Forwarder.handler``: (method, reply class) -> (request bytes, context) -> reply;
        ``view`` the proxy's cached catalog, when it has one."""
        self.context = RestContext()
        self.view = view
        self._handlers = {method: handler(method, cls) for method, cls in reply_classes().items()}

    def call(self, method: str, request: bytes) -> bytes:
        return self._handlers[method](request, self.context)

    def known_binary(self, collection: str) -> bool | None:
        if self.view is None:
            return None
        coll = self.view.snapshot().collection(collection)
        return None if coll is None else coll.is_binary
