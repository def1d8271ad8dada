"""The HTTP endpoint serving one process's private Prometheus registry at ``/metrics``."""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server

log = logging.getLogger(__name__)


class MetricsEndpoint:
    """Serves ``registry`` on demand; stopping it closes the listening socket."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.server: Any = None

    def serve(self, host: str, port: int) -> int:
        """Serve ``/metrics`` on ``host:port`` (0: any free port); returns the bound port."""
        self.server, _thread = start_http_server(port, addr=host, registry=self.registry)
        bound = int(self.server.server_port)
        log.info("metrics on http://%s:%d/metrics", host, bound)
        return bound

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
