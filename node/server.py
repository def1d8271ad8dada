"""The node process: gRPC server lifecycle (start, ready file, graceful drain on SIGTERM), the REST API, Prometheus
``/metrics`` (``--metrics-port``) and OpenTelemetry tracing (``--otlp-endpoint``). What serves each method is
``node/handler_table.py``; how a node stands for writer, ``node/writer_campaign.py``."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from coordinator.auth.guard import AuthSettings, Guard
from coordinator.auth.peers import internal_check
from coordinator.auth.store import UserStore
from coordinator.lifecycle import serve_until_signalled, write_ready_file
from coordinator.membership import Member
from coordinator.tls import (
    ClusterDialer,
    add_port,
    check_server_tls,
    forward_socket,
    listening_tls,
    peer_trust,
    serve_health,
)
from coordinator.tracing import configure_tracing
from coordinator.workers import WorkerSpec, join_host_port, read_secret
from node.engine import Engine
from node.handler_table import HandlerTable, handler_table
from node.handlers import FAST_REQUESTS, SERVICE, generic_handler, milvus_handler, request_attributes
from node.metrics import NodeMetrics
from node.presence import Presence
from node.reader import Reader
from node.service import MilvusService
from node.settings import NodeSettings
from node.workers import forwards, watch_only
from node.writer_campaign import campaign, campaign_in_catalog, writer_fence

# What other modules import from here (the node's server module, as before its parts moved out).
__all__ = ["FAST_REQUESTS", "SERVICE", "NodeServer", "grpc_options", "milvus_handler", "request_attributes",
           "writer_fence"]

log = logging.getLogger(__name__)

GRPC_OPTIONS = [
    # pymilvus pings every 55 s during long calls; accept client pings without data in flight.
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_ping_strikes", 0),  # never answer client keepalives with GOAWAY during long calls
    ("grpc.so_reuseport", 0),
]


def grpc_options(max_message_bytes: int, reuse_port: bool = False) -> list[tuple[str, int]]:
    """The server's channel options: requests up to ``max_message_bytes`` (a larger one is refused by gRPC with
    RESOURCE_EXHAUSTED before it is read into memory), replies of any size (a search's is bounded by the
    result-size rule and the memory budget), and a ping policy for long calls. ``SO_REUSEPORT`` only for the
    workers of one node (``--workers``): two single-process nodes must never silently share a port."""
    options = [("grpc.max_receive_message_length", max_message_bytes), ("grpc.max_send_message_length", -1),
               *GRPC_OPTIONS]
    return [(name, 1) if name == "grpc.so_reuseport" and reuse_port else (name, value) for name, value in options]


class NodeServer:
    """One node process; with ``spec``, one worker of a multi-process node (``node/workers.py``)."""

    def __init__(self, settings: NodeSettings, spec: WorkerSpec | None = None) -> None:
        self.settings = settings
        self.spec = spec
        self.metrics = NodeMetrics() if settings.metrics_port else None
        self.metrics_port = 0
        # A standalone node's secondary worker is a read-only engine over the primary's catalog and storage.
        self.engine = Engine(replace(settings, role="ro") if forwards(settings.role, spec) else settings,
                             self.metrics)
        if self.metrics is not None:
            self.metrics.watch(self.engine)
        self.tracing = configure_tracing(settings.otlp_endpoint, f"mishards-node-{settings.role}",
                                         settings.node_id or settings.advertise)
        self.search_pool = ThreadPoolExecutor(max_workers=settings.search_threads, thread_name_prefix="search")
        self.server = grpc.server(
            ThreadPoolExecutor(max_workers=settings.grpc_workers, thread_name_prefix="grpc"),
            options=grpc_options(settings.grpc_max_message_bytes, reuse_port=spec is not None),
            interceptors=[self.tracing.server_interceptor()] if self.tracing is not None else None,
        )
        self.health = health.HealthServicer()
        # TLS of this node's ports (edge or cluster mTLS), how it dials other nodes, and which verified peers
        # are internal (coordinator/tls.py)
        self.tls = listening_tls(settings.edge_tls, settings.cluster_tls)
        self.dialer = ClusterDialer(settings.cluster_tls)
        self.peer_trust = peer_trust(settings.edge_tls, settings.cluster_tls)
        self.health_server: grpc.Server | None = None  # plaintext health-only port (health_port)
        self.health_port = 0
        self.presence: Presence | None = None
        self.election: Any = None
        self._lease_catalog: Any = None
        self.port = 0
        self.own_port = 0  # a worker's own port (``--workers``)
        self.table: HandlerTable | None = None  # what serves each method (gRPC and REST)
        self.rest: Any = None  # the REST API's server (coordinator.rest), when http_port is on
        self.http_port = 0
        self._stopped = threading.Event()
        self.guard: Guard | None = None

    def start(self) -> str:
        if self.tls is not None:
            check_server_tls(self.tls)
        self.engine.open()
        service = MilvusService(self.engine, self.search_pool, self.metrics, self.tracing)
        service.guard = self._guard()
        self.table = handler_table(service, self.engine, self.settings.role, self.spec, self.tracing,
                                   self.node_name, self.settings.storage_path, self.tls is not None)
        self.server.add_generic_rpc_handlers((generic_handler(self.table.handlers),))
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self._listen()
        self.engine.bound_port = self.port
        service.commands.workers = self.spec.addresses if self.spec is not None else (self.advertised(),)
        service.commands.keeps_values = self.spec is None or self.spec.is_primary
        warms_first = bool(self.settings.membership) and self.settings.role == "ro"
        if not warms_first:
            self._replay_preloads(service)  # before it takes a call on the shared port
        self.server.start()
        if self.settings.health_port and (self.spec is None or self.spec.is_primary):
            self.health_server, self.health_port = serve_health(self.health, self.settings.host,
                                                                self.settings.health_port)
        self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        serving = health_pb2.HealthCheckResponse.SERVING
        warming = self.settings.membership and self.settings.role == "ro"
        self.health.set(SERVICE, health_pb2.HealthCheckResponse.NOT_SERVING if warming else serving)
        if self.metrics is not None:
            self.metrics_port = self.metrics.serve(self.settings.host, max(0, self.settings.metrics_port))
        if self.settings.rest_port:
            self._serve_rest(self.table)
        if self.settings.membership:
            # a read node's worker replays the preloads after warming its share, before it reports ready
            self._join(service, lambda: self.health.set(SERVICE, serving),
                       (lambda: self._replay_preloads(service)) if warms_first else (lambda: None))
        if self.engine.elects_writer and self.settings.election == "catalog":
            advertise = self.settings.advertise or f"{self.settings.host}:{self.port}"
            self.election, self._lease_catalog = campaign_in_catalog(
                self.engine, self.settings.catalog_uri, self.settings.node_id or advertise, advertise,
                self.settings.election_ttl, self._stopped)
        address = f"{self.settings.host}:{self.port}"
        named = "" if self.spec is None else f", worker {self.spec.index} on {self.spec.addresses[self.spec.index]}"
        log.info("node (%s%s) serving MilvusService on %s, storage %s", self.settings.role, named, address,
                 self.settings.storage_path)
        if self.settings.ready_file:
            worker = {} if self.spec is None else {"worker": self.spec.index,
                                                   "own_address": self.spec.addresses[self.spec.index]}
            write_ready_file(self.settings.ready_file, address, metrics_port=self.metrics_port,
                             http_port=self.http_port, health_port=self.health_port, **worker)
        return address

    def _listen(self) -> None:
        """Bind the node's port and, for a worker, its own port and private sockets."""
        self.port = add_port(self.server, join_host_port(self.settings.host, self.settings.port), self.tls)
        if self.port == 0:
            raise OSError(f"cannot listen on {self.settings.host}:{self.settings.port}")
        if self.spec is None:
            return
        own = join_host_port(self.settings.host, self.spec.own_port)
        self.own_port = add_port(self.server, own, self.tls)
        if self.own_port == 0:
            raise OSError(f"cannot listen on {own}")
        if self.spec.run_dir:  # where the other workers send the broadcast calls on to this one
            self.server.add_insecure_port(self.spec.socket(self.spec.index))
        if self.tls is not None and self.spec.is_primary and self.settings.role == "standalone":
            # the secondaries forward to the primary over a private socket (tls.forward_socket)
            self.server.add_insecure_port(forward_socket(self.settings.storage_path, self.spec.shared_port))

    def _replay_preloads(self, service: MilvusService) -> None:
        """A worker of a multi-process node loads what the node keeps preloaded (``node/worker_preloads.py``)."""
        from node.worker_preloads import record_for, replay

        record = record_for(self.spec)
        if record is not None:
            done = replay(record, service, read_secret(self.spec))
            if done:
                log.info("%d preload call(s) of the node replayed", done)

    def _join(self, service: MilvusService, on_ready: Any, before_ready: Any) -> None:
        """Follow membership: register (a worker's primary alone), warm a reader's share, stand for writer."""
        advertise = self.settings.advertise or f"{self.settings.host}:{self.port}"
        me = Member(self.settings.node_id or advertise, advertise, self.settings.role, "warming")
        self.presence = Presence(
            self.engine, Reader(self.engine, self.search_pool), self.settings.membership, me,
            self.settings.replication, on_ready, register=not watch_only(self.settings.role, self.spec),
            before_ready=before_ready,
        )
        self.presence.start()
        if self.metrics is not None:
            self.metrics.members = self.presence.provider.members
        if self.settings.role == "ro":
            service.share = self.presence.share_of
        if self.engine.elects_writer and self.settings.election != "catalog":
            client = self.presence.provider.client  # type: ignore[attr-defined]
            self.election = campaign(self.engine, client, self.settings.membership, me, self.settings.election_ttl,
                                     self._stopped)

    def _guard(self) -> Guard:
        """Who may run what (``coordinator.auth``): the users of this node's catalog, the anonymous role."""
        internal = internal_check(getattr(self.settings, "edge_tls", None), getattr(self.settings, "cluster_tls", None))
        if self.spec is not None:  # a call another worker of this node sent on (node/worker_broadcast.py)
            from node.worker_broadcast import trusting_workers

            internal = trusting_workers(internal, read_secret(self.spec))
        store = UserStore(self.engine.catalog.engine)
        self.guard = Guard(AuthSettings(self.settings.allow_anonymous), store, internal=internal)
        self.guard.start()
        return self.guard

    def advertised(self) -> str:
        """The address others use to reach this node."""
        return self.settings.advertise or join_host_port(self.settings.host, self.port)

    def _serve_rest(self, table: HandlerTable) -> None:
        """Milvus 1.1's REST API over this process's handler table (``node/rest.py``); the workers of a node
        share its port (``SO_REUSEPORT``), as they share the gRPC port."""
        from coordinator.rest.server import serve_rest
        from node.rest import HandlerBackend, snapshot_binary

        registry = self.metrics.registry if self.metrics is not None else None
        backend = (HandlerBackend(table.handlers, snapshot_binary(self.engine))
                   if forwards(self.settings.role, self.spec) else HandlerBackend(table.handlers))
        self.rest = serve_rest(backend, self.settings.host, self.settings.rest_port, self.settings.grpc_workers,
                               self.settings.grpc_max_message_bytes, registry, "mishards_node", self.tracing,
                               reuse_port=self.spec is not None, tls=self.tls)
        self.http_port = self.rest.port

    def stop(self, grace: float = 5.0) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.health.enter_graceful_shutdown()
        if self.presence is not None:
            self.presence.stop()  # leave the member list first: no new traffic
        if self.rest is not None:
            self.rest.stop()  # REST requests in flight finish (they run on the servicer, like gRPC calls)
        self.server.stop(grace).wait()
        if self.health_server is not None:
            self.health_server.stop(0)
        if self.table is not None:
            self.table.close()
        self.search_pool.shutdown(wait=True)
        if self.guard is not None:
            self.guard.stop()
        self.engine.close()  # flush and close the log while still the writer
        if self.election is not None:
            self.election.stop()  # only then hand the writer role over
        if self._lease_catalog is not None:
            self._lease_catalog.close()
        if self.metrics is not None:
            self.metrics.close()
        if self.tracing is not None:
            self.tracing.shutdown()  # export the spans still queued
        log.info("node stopped")

    def node_name(self) -> str:
        """This node as membership names it: its id, else its advertised (or bound) address."""
        return self.settings.node_id or self.settings.advertise or f"{self.settings.host}:{self.port}"

    def serve_forever(self) -> None:
        serve_until_signalled(self.start, self.stop)
