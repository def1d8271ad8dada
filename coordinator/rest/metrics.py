"""Prometheus metrics of the REST API, registered on the process's own registry (served at ``/metrics``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120)


class RestMetrics:
    """``<prefix>_rest_request_seconds{route, status}``: REST requests by route (``GET /state``,
    ``PUT /collections/{collection_name}/vectors``, ``OPTIONS``, ``unmatched``) and HTTP status."""

    def __init__(self, registry: CollectorRegistry, prefix: str) -> None:
        self.requests = Histogram(f"{prefix}_rest_request_seconds", "REST requests handled, by route and HTTP status",
                                  ["route", "status"], buckets=BUCKETS, registry=registry)
        self._children: dict[tuple[str, int], Histogram] = {}

    def observe(self, route: str, status: int, seconds: float) -> None:
        child = self._children.get((route, status))
        if child is None:
            child = self._children[(route, status)] = self.requests.labels(route, str(status))
        child.observe(seconds)
