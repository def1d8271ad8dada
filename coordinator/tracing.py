"""OpenTelemetry tracing of the gRPC edges, exported over OTLP/gRPC (Jaeger and collectors ingest it natively).

Off unless an OTLP endpoint is configured. OpenTelemetry is imported only by :func:`configure_tracing` when
an endpoint is given, so a process with tracing off never loads it and its request path never runs any of it:
callers hold a ``Tracing | None`` and test for ``None``.

With tracing on:

- every MilvusService call a server receives gets a SERVER span from the gRPC instrumentation's server
  interceptor, which also continues a W3C trace context found in the call's metadata (``traceparent``);
- the proxy wraps each call it makes to a node in a CLIENT span (:meth:`Tracing.start_client`) and injects
  that span's context into the call's metadata, so the node's SERVER span becomes its child;
- handlers tag the current span with what the request is about (:meth:`Tracing.annotate`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import grpc
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span

log = logging.getLogger(__name__)

Metadata = tuple[tuple[str, str], ...]
AttributeValue = str | int | float | bool

# Span attributes (namespaced: they are ours, not OpenTelemetry semantic conventions).
COLLECTION = "mishards.collection"
NQ = "mishards.nq"
TOPK = "mishards.topk"
SEGMENTS = "mishards.segments"
NODE = "mishards.node"  # the node a sub-request went to (client spans), or the node itself (node spans)

EXPORT_TIMEOUT_SECONDS = 5.0


class Tracing:
    """A configured tracer provider and the few operations the gRPC edges need."""

    def __init__(self, provider: TracerProvider) -> None:
        from opentelemetry import trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self.provider = provider
        self.tracer = provider.get_tracer("mishards")
        self._trace = trace
        self._propagator = TraceContextTextMapPropagator()

    def server_interceptor(self) -> grpc.ServerInterceptor:
        """SERVER spans for every call but health checks, continuing the caller's trace context."""
        from opentelemetry.instrumentation.grpc import filters, server_interceptor

        interceptor: grpc.ServerInterceptor = server_interceptor(
            tracer_provider=self.provider, filter_=filters.negate(filters.health_check()))
        return interceptor

    def annotate(self, attributes: Mapping[str, AttributeValue]) -> None:
        """Set attributes on the span of the current call (the server span the interceptor opened)."""
        span = self._trace.get_current_span()
        if span.is_recording():
            span.set_attributes(attributes)

    def start_client(self, path: str, node: str, metadata: Metadata = (),
                     attributes: Mapping[str, AttributeValue] | None = None) -> tuple[Span, Metadata]:
        """Open a CLIENT span (child of the current span) for a call to ``path`` on ``node``; returns it and the
        call's metadata with the span's trace context added. End it with :meth:`end_client`."""
        service, _, method = path.lstrip("/").partition("/")
        span = self.tracer.start_span(
            path, kind=self._trace.SpanKind.CLIENT,
            attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": method, NODE: node,
                        **(attributes or {})})
        carrier: dict[str, str] = {}
        self._propagator.inject(carrier, context=self._trace.set_span_in_context(span))
        return span, (*metadata, *carrier.items())

    def end_client(self, span: Span, error: BaseException | None = None) -> None:
        """End a client span, marking it failed when the call raised ``error``."""
        if error is not None:
            code = getattr(error, "code", None)
            status = code() if callable(code) else None
            name = getattr(status, "name", type(error).__name__)
            if status is not None:
                span.set_attribute("rpc.grpc.status_code", int(status.value[0]))
            span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, str(name)))
        span.end()

    def end_client_future(self, span: Span, future: Any) -> None:
        """End a client span when its call future completes (a ``grpc.Future`` done callback)."""
        self.end_client(span, future.exception())

    @contextlib.contextmanager
    def client(self, path: str, node: str, metadata: Metadata = (),
               attributes: Mapping[str, AttributeValue] | None = None) -> Iterator[Metadata]:
        """A CLIENT span around one blocking call; yields the metadata to send with it."""
        span, carried = self.start_client(path, node, metadata, attributes)
        try:
            yield carried
        except BaseException as exc:
            self.end_client(span, exc)
            raise
        self.end_client(span)

    @contextlib.contextmanager
    def http_server(self, route: str, headers: Mapping[str, str]) -> Iterator[Span]:
        """A SERVER span around one REST request (``route`` as ``PUT /collections/{collection_name}/vectors``),
        continuing a W3C trace context found in its headers; it is current while the request runs, so the calls
        it makes (the proxy's sub-requests) are its children, as under a gRPC call's span."""
        method, _, target = route.partition(" ")
        parent = self._propagator.extract(dict(headers))
        with self.tracer.start_as_current_span(
                route, context=parent, kind=self._trace.SpanKind.SERVER,
                attributes={"http.request.method": method, "http.route": target}) as span:
            yield span

    def end_http(self, span: Span, status: int, attributes: Mapping[str, AttributeValue]) -> None:
        """Tag a REST request's span with its HTTP status and what the request was about."""
        span.set_attribute("http.response.status_code", status)
        if attributes:
            span.set_attributes(attributes)
        if status >= 500:
            span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, str(status)))

    def shutdown(self) -> None:
        """Export what is still queued and stop the exporter."""
        try:
            self.provider.shutdown()
        except Exception as exc:  # a collector that went away must not break a clean stop
            log.warning("tracing shutdown failed: %s", exc)


def configure_tracing(endpoint: str, service_name: str, instance_id: str = "") -> Tracing | None:
    """A tracer provider exporting spans in batches over OTLP/gRPC to ``endpoint`` (e.g.
    ``http://jaeger:4317``; ``https://`` uses TLS), or None when ``endpoint`` is empty (tracing off).

    ``service_name`` is ``mishards-proxy`` or ``mishards-node-<role>``. The batch processor's delays and sizes
    follow the standard ``OTEL_BSP_*`` environment variables (e.g. ``OTEL_BSP_SCHEDULE_DELAY`` in ms).
    """
    if not endpoint:
        return None
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    attributes: dict[str, AttributeValue] = {"service.name": service_name}
    if instance_id:
        attributes["service.instance.id"] = instance_id
    provider = TracerProvider(resource=Resource.create(attributes))
    exporter = OTLPSpanExporter(endpoint=endpoint, insecure=not endpoint.startswith("https://"),
                                timeout=EXPORT_TIMEOUT_SECONDS)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    log.info("tracing on: %s spans exported over OTLP/gRPC to %s", service_name, endpoint)
    return Tracing(provider)
