"""The node process: gRPC server lifecycle (start, ready file, graceful drain on SIGTERM), Prometheus
``/metrics`` (``--metrics-port``) and OpenTelemetry tracing (``--otlp-endpoint``)."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from coordinator import tracing as spans
from coordinator.auth.guard import AuthSettings, Guard
from coordinator.auth.peers import internal_check
from coordinator.auth.store import UserStore
from coordinator.fencing import WriterFence
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
from coordinator.tracing import Tracing, configure_tracing
from coordinator.workers import WorkerSpec, join_host_port, read_secret
from milvus_wire import milvus_pb2, status_pb2, wire_fastpath_pb2
from node.engine import Engine
from node.metrics import NodeMetrics
from node.presence import Presence
from node.reader import Reader
from node.service import MilvusService
from node.settings import NodeSettings
from node.workers import forwards, served_locally, watch_only

if TYPE_CHECKING:
    from node.worker_broadcast import Broadcaster

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


SERVICE = "milvus.grpc.MilvusService"
# Requests decoded into wire-identical messages that keep RowRecords as raw bytes (bulk decoding).
FAST_REQUESTS = {
    "Insert": wire_fastpath_pb2.InsertParamRaw,
    "Search": wire_fastpath_pb2.SearchParamRaw,
    "SearchInFiles": wire_fastpath_pb2.SearchInFilesParamRaw,
    "InsertEntity": wire_fastpath_pb2.HInsertParamRaw,
}


def _message_class(full_name: str) -> Any:
    package, _, name = full_name.rpartition(".")
    assert package == "milvus.grpc", full_name
    return getattr(milvus_pb2, name, None) or getattr(status_pb2, name)


def _serializer(reply_cls: Any) -> Any:
    """Serialize reply messages; replies a handler built directly in the wire format pass through."""
    serialize = reply_cls.SerializeToString

    def to_bytes(reply: Any) -> bytes:
        return reply if isinstance(reply, bytes) else serialize(reply)

    return to_bytes


def request_attributes(method: str, request: Any) -> dict[str, spans.AttributeValue]:
    """What a request is about, for its span: the collection, and nq and topk of searches."""
    if method == "SearchInFiles":
        param = request.search_param
        return {spans.COLLECTION: param.collection_name, spans.NQ: len(param.query_record_array),
                spans.TOPK: int(param.topk)}
    if method == "Search":
        return {spans.COLLECTION: request.collection_name, spans.NQ: len(request.query_record_array),
                spans.TOPK: int(request.topk)}
    if method == "HybridSearchInSegments":
        request = request.search_param  # the collection is named inside, as in SearchInFiles
    if method == "SearchByID":
        return {spans.COLLECTION: request.collection_name, spans.NQ: len(request.id_array),
                spans.TOPK: int(request.topk)}
    name = getattr(request, "collection_name", None)
    return {spans.COLLECTION: name} if isinstance(name, str) and name else {}


def _traced(method: str, behavior: Any, tracing: Tracing, node: Callable[[], str]) -> Any:
    """``behavior`` tagging the call's server span (opened by the tracing interceptor) before it runs."""

    def handler(request: Any, context: Any) -> Any:
        tracing.annotate({spans.NODE: node(), **request_attributes(method, request)})
        return behavior(request, context)

    return handler


def milvus_handler(servicer: Any, tracing: Tracing | None = None, node: Callable[[], str] = lambda: "",
                   routed: Callable[[str], grpc.RpcMethodHandler | None] = lambda _method: None,
                   local: Callable[[Any], Any] = lambda behavior: behavior,
                   broadcaster: Broadcaster | None = None) -> grpc.GenericRpcHandler:
    """The MilvusService method handlers, with the fast-path request types where they apply (and, with
    tracing on, each call's span tagged with the node and what the request is about). A method for which
    ``routed`` gives a handler is served by it (a worker forwarding to its primary); the others run
    ``local(behavior)``, the broadcast calls of a multi-process node through ``broadcaster``."""
    handlers = {}
    for method in milvus_pb2.DESCRIPTOR.services_by_name["MilvusService"].methods:
        elsewhere = routed(method.name)
        if elsewhere is not None:
            handlers[method.name] = elsewhere
            continue
        request_cls: Any = FAST_REQUESTS.get(method.name) or _message_class(method.input_type.full_name)
        reply_cls = _message_class(method.output_type.full_name)
        behavior = local(getattr(servicer, method.name))
        if broadcaster is not None:
            behavior = broadcaster.wrap(method.name, behavior, reply_cls)
        if tracing is not None:
            behavior = _traced(method.name, behavior, tracing, node)
        handlers[method.name] = grpc.unary_unary_rpc_method_handler(
            behavior,
            request_deserializer=request_cls.FromString,
            response_serializer=_serializer(reply_cls),
        )
    return grpc.method_handlers_generic_handler(SERVICE, handlers)


def writer_fence(valid_until: Callable[[], float], ttl: float) -> WriterFence:
    """The fence of an elected writer: its lease's provable deadline, less a margin for clock rate differences
    between this machine and the one that keeps the lease (etcd or the catalog database)."""
    return WriterFence(valid_until, margin=min(0.25, ttl * 0.05))


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
        self.primary: grpc.Channel | None = None  # a forwarding worker's channel to the primary
        self.broadcaster: Broadcaster | None = None  # sends the broadcast calls on to the other workers
        self.worker_channels: dict[str, grpc.Channel] = {}  # to the other workers' private sockets
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
        self.server.add_generic_rpc_handlers((self._handler(service),))
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.port = add_port(self.server, join_host_port(self.settings.host, self.settings.port), self.tls)
        if self.port == 0:
            raise OSError(f"cannot listen on {self.settings.host}:{self.settings.port}")
        if self.spec is not None:
            own = join_host_port(self.settings.host, self.spec.own_port)
            self.own_port = add_port(self.server, own, self.tls)
            if self.own_port == 0:
                raise OSError(f"cannot listen on {own}")
            if self.spec.run_dir:  # where the other workers send the broadcast calls on to this one
                self.server.add_insecure_port(self.spec.socket(self.spec.index))
            if self.tls is not None and self.spec.is_primary and self.settings.role == "standalone":
                # the secondaries forward to the primary over a private socket (tls.forward_socket)
                self.server.add_insecure_port(forward_socket(self.settings.storage_path, self.spec.shared_port))
        self.engine.bound_port = self.port
        service.commands.workers = self.spec.addresses if self.spec is not None else (self.advertised(),)
        service.commands.keeps_values = self.spec is None or self.spec.is_primary
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
            self._serve_rest(service)
        if self.settings.membership:
            advertise = self.settings.advertise or f"{self.settings.host}:{self.port}"
            me = Member(self.settings.node_id or advertise, advertise, self.settings.role, "warming")
            self.presence = Presence(
                self.engine, Reader(self.engine, self.search_pool), self.settings.membership, me,
                self.settings.replication, lambda: self.health.set(SERVICE, serving),
                register=not watch_only(self.settings.role, self.spec),
            )
            self.presence.start()
            if self.metrics is not None:
                self.metrics.members = self.presence.provider.members
            if self.settings.role == "ro":
                service.share = self.presence.share_of
            if self.engine.elects_writer and self.settings.election != "catalog":
                self._campaign(me)
        if self.engine.elects_writer and self.settings.election == "catalog":
            self._campaign_in_catalog()
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

    def _handler(self, service: MilvusService) -> grpc.GenericRpcHandler:
        """The node's MilvusService; a standalone node's secondary worker serves the searches (each on a
        snapshot caught up with the catalog) and forwards every other call to the primary. With several
        workers, the broadcast calls reach them all (``node/worker_broadcast.py``)."""
        broadcaster = self._broadcaster()
        if self.spec is None or not forwards(self.settings.role, self.spec):
            return milvus_handler(service, self.tracing, self.node_name, broadcaster=broadcaster)
        from node.worker_broadcast import cmd_here_or_forward
        from node.worker_forward import PRIMARY_CHANNEL_OPTIONS, caught_up, forwarder

        # With TLS on, the primary's port asks for certificates a worker does not hold as a client (edge TLS) or
        # may not name (cluster certificates for 127.0.0.1): forwards go over the primary's private socket.
        target = self.spec.primary if self.tls is None else forward_socket(self.settings.storage_path,
                                                                             self.spec.shared_port)
        self.primary = grpc.insecure_channel(target, options=PRIMARY_CHANNEL_OPTIONS)
        primary = self.primary
        role, spec = self.settings.role, self.spec

        def routed(method: str) -> grpc.RpcMethodHandler | None:
            if served_locally(role, spec, method):
                return None
            forward = forwarder(primary, f"/{SERVICE}/{method}", self.tracing, spec.primary)
            if method == "Cmd" and broadcaster is not None:  # set_config here (and on every worker)
                here = broadcaster.wrap(method, caught_up(self.engine, service.Cmd), milvus_pb2.StringReply)
                return cmd_here_or_forward(here, forward)
            return grpc.unary_unary_rpc_method_handler(forward)

        return milvus_handler(service, self.tracing, self.node_name, routed,
                              lambda behavior: caught_up(self.engine, behavior), broadcaster)

    def _broadcaster(self) -> Broadcaster | None:
        """What sends the broadcast calls on to the other workers (None: a single-process node)."""
        if self.spec is None or self.spec.count < 2:
            return None
        from node.worker_broadcast import Broadcaster
        from node.worker_forward import worker_channel

        siblings = self.spec.siblings()
        self.worker_channels = {target: worker_channel(target) for _, target in siblings}
        self.broadcaster = Broadcaster(siblings, self.worker_channels.__getitem__, self.tracing,
                                       read_secret(self.spec))
        return self.broadcaster

    def _serve_rest(self, service: MilvusService) -> None:
        """Milvus 1.1's REST API over this node's servicer, in this process (``node/rest.py``)."""
        from coordinator.rest.server import serve_rest
        from node.rest import NodeBackend
        from node.worker_broadcast import Broadcasting

        registry = self.metrics.registry if self.metrics is not None else None
        servicer: Any = service if self.broadcaster is None else Broadcasting(service, self.broadcaster)
        self.rest = serve_rest(NodeBackend(servicer, FAST_REQUESTS), self.settings.host, self.settings.rest_port,
                               self.settings.grpc_workers, self.settings.grpc_max_message_bytes, registry,
                               "mishards_node", self.tracing, tls=self.tls)
        self.http_port = self.rest.port

    def _campaign(self, me: Member) -> None:
        """Stand for writer: the winner claims the epoch and replays the log; a deposed writer stops at once."""
        from coordinator.election import WriterElection
        from coordinator.membership import parse_membership_uri

        assert self.presence is not None
        client = self.presence.provider.client  # type: ignore[attr-defined]

        def deposed() -> None:
            if self._stopped.is_set():
                return  # a clean stop hands the role over; it is not a deposition
            # This node may have acknowledged nothing that a successor cannot replay, and must not write
            # again: stop the process (fail-stop); a supervisor restarts it as a standby.
            log.critical("lost the writer role; stopping so that a deposed writer never writes")
            os._exit(75)

        self.election = WriterElection(
            client, parse_membership_uri(self.settings.membership).prefix, me.node_id, me.address,
            ttl=self.settings.election_ttl, claim=self.engine.become_writer, on_deposed=deposed,
        )
        self.engine.fence = writer_fence(self.election.valid_until, self.settings.election_ttl)
        self.election.start()

    def _campaign_in_catalog(self) -> None:
        """Stand for writer through a lease in the catalog (no etcd): the winner claims the epoch and replays
        the log; a deposed writer stops at once."""
        from coordinator.catalog import Catalog
        from coordinator.catalog_election import CatalogElection

        def deposed(reason: str) -> None:
            if self._stopped.is_set():
                return
            log.critical("lost the writer lease (%s); stopping so that a deposed writer never writes", reason)
            os._exit(75)

        advertise = self.settings.advertise or f"{self.settings.host}:{self.port}"
        self._lease_catalog = Catalog(self.settings.catalog_uri)  # outlives the engine's: released after close
        self.election = CatalogElection(
            self._lease_catalog, self.settings.node_id or advertise, advertise, self.settings.election_ttl,
            claim=self.engine.become_writer, on_deposed=deposed,
        )
        self.engine.fence = writer_fence(self.election.valid_until, self.settings.election_ttl)
        self.election.start()

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
        if self.primary is not None:
            self.primary.close()
        for channel in self.worker_channels.values():
            channel.close()
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
