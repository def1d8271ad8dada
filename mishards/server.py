"""The proxy process: gRPC server lifecycle (start, ready file, drain on SIGTERM), Prometheus ``/metrics``
(``--metrics-port``) and OpenTelemetry tracing (``--otlp-endpoint``)."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from coordinator.auth.guard import AuthSettings, Guard
from coordinator.auth.peers import internal_check
from coordinator.auth.store import UserStore
from coordinator.lifecycle import serve_until_signalled, write_ready_file
from coordinator.sizes import parse_size
from coordinator.tls import ClusterDialer, PeerTrust, add_port, check_server_tls, listening_tls, serve_health
from coordinator.tracing import configure_tracing
from coordinator.workers import WorkerSpec, join_host_port
from mishards.catalog_view import CatalogView
from mishards.cluster import Cluster
from mishards.fanout import Fanout, FanoutPolicy
from mishards.liveness import NodeWatch
from mishards.metrics import ProxyMetrics
from mishards.service import Forwarder
from mishards.settings import ProxySettings

log = logging.getLogger(__name__)

GRPC_OPTIONS = [
    ("grpc.max_send_message_length", -1),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_ping_strikes", 0),
]


class ProxyServer:
    """One proxy process; with ``spec``, one of the identical workers of a multi-process proxy."""

    def __init__(self, settings: ProxySettings, spec: WorkerSpec | None = None) -> None:
        self.settings = settings
        self.spec = spec
        # TLS of the proxy's own ports (edge; a verified client certificate never makes a caller internal) and
        # of its channels to the nodes (cluster mTLS)
        self.tls = listening_tls(settings.edge_tls, None)
        self.peer_trust = PeerTrust(cluster=False)
        self.cluster = Cluster(settings.membership, dialer=ClusterDialer(settings.cluster_tls))
        self.metrics = ProxyMetrics() if settings.metrics_port else None
        self.metrics_port = 0
        self.tracing = configure_tracing(settings.otlp_endpoint, "mishards-proxy")
        interceptors = [self.tracing.server_interceptor()] if self.tracing is not None else None
        self.server = grpc.server(ThreadPoolExecutor(max_workers=settings.grpc_workers, thread_name_prefix="proxy"),
                                  options=[*GRPC_OPTIONS, ("grpc.max_receive_message_length",
                                                           parse_size(settings.grpc_max_message_size)),
                                           ("grpc.so_reuseport", 1 if spec is not None else 0)],
                                  interceptors=interceptors)
        self.health = health.HealthServicer()
        self.health_server: grpc.Server | None = None  # plaintext health-only port (health_port)
        self.health_port = 0
        self.view: CatalogView | None = None
        self.watch: NodeWatch | None = None
        self.port = 0
        self.rest: Any = None  # the REST API's server (coordinator.rest), when http_port is on
        self.guard: Guard | None = None
        self.http_port = 0

    def start(self) -> str:
        if self.tls is not None:
            check_server_tls(self.tls)
        self.cluster.start()
        fanout = None
        if self.settings.meta_uri:
            self.view = CatalogView(self.settings.meta_uri, self.settings.catalog_refresh_interval)
            self.view.start()
            self.cluster.lease = self.view.catalog.writer_lease
            fanout = Fanout(self.cluster, self.view, self.settings.request_timeout, self.settings.replication,
                            self.metrics, self.tracing, strong=self.settings.consistency == "strong",
                            policy=FanoutPolicy(self.settings.subrequest_timeout, self.settings.hedge_after,
                                                self.settings.query_of_death_ttl))
            self.watch = NodeWatch(self.cluster, self.metrics)
            self.watch.start()
        self.guard = self._guard()
        forwarder = Forwarder(self.settings, self.cluster, fanout, self.view, self.metrics, self.tracing,
                              self.guard)
        self.server.add_generic_rpc_handlers((forwarder.generic_handler(),))
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.port = add_port(self.server, join_host_port(self.settings.host, self.settings.port), self.tls)
        if self.port == 0:
            raise OSError(f"cannot listen on {self.settings.host}:{self.settings.port}")
        if self.spec is not None:  # a worker is also reachable on a port of its own
            own = join_host_port(self.settings.host, self.spec.own_port)
            if add_port(self.server, own, self.tls) == 0:
                raise OSError(f"cannot listen on {own}")
        self.server.start()
        if self.settings.health_port and (self.spec is None or self.spec.is_primary):
            self.health_server, self.health_port = serve_health(self.health, self.settings.host,
                                                                self.settings.health_port)
        self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        if self.metrics is not None:
            self.metrics.watch(self.cluster, self.view, self.settings.replication, self.watch)
            self.metrics_port = self.metrics.serve(self.settings.host, max(0, self.settings.metrics_port))
        if self.settings.http_port:
            self._serve_rest(forwarder)
        address = join_host_port(self.settings.host, self.port)
        log.info("proxy serving MilvusService on %s (membership %s)", address, self.settings.membership)
        if self.settings.ready_file:
            worker = {} if self.spec is None else {"worker": self.spec.index,
                                                   "own_address": self.spec.addresses[self.spec.index]}
            write_ready_file(self.settings.ready_file, address, metrics_port=self.metrics_port,
                             http_port=self.http_port, health_port=self.health_port, **worker)
        return address

    def _guard(self) -> Guard:
        """Who may run what (``coordinator.auth``): the users of the catalog (without ``--meta-uri`` the nodes
        judge tokens, the proxy only the anonymous role)."""
        store = UserStore(self.view.catalog.engine) if self.view is not None else None
        internal = internal_check(getattr(self.settings, "edge_tls", None), None)  # clients are never peers here
        guard = Guard(AuthSettings(self.settings.allow_anonymous), store, internal=internal)
        guard.start()
        return guard

    def _serve_rest(self, forwarder: Forwarder) -> None:
        """Milvus 1.1's REST API through the forwarder's handlers (``mishards/rest.py``)."""
        from coordinator.rest.server import serve_rest
        from mishards.rest import ProxyBackend

        registry = self.metrics.registry if self.metrics is not None else None
        self.rest = serve_rest(ProxyBackend(forwarder.handler, forwarder.view), self.settings.host,
                               self.settings.http_port, self.settings.grpc_workers,
                               parse_size(self.settings.grpc_max_message_size), registry, "mishards_proxy",
                               self.tracing, reuse_port=self.spec is not None, tls=self.tls)
        self.http_port = self.rest.port

    def stop(self, grace: float = 5.0) -> None:
        self.health.enter_graceful_shutdown()
        if self.rest is not None:
            self.rest.stop()
        self.server.stop(grace).wait()
        if self.health_server is not None:
            self.health_server.stop(0)
        if self.watch is not None:
            self.watch.stop()
        self.cluster.stop()
        if self.guard is not None:
            self.guard.stop()
        if self.view is not None:
            self.view.stop()
        if self.metrics is not None:
            self.metrics.close()
        if self.tracing is not None:
            self.tracing.shutdown()  # export the spans still queued
        log.info("proxy stopped")

    def serve_forever(self) -> None:
        serve_until_signalled(self.start, self.stop)
