"""Prometheus metrics of the proxy, on a private registry served at ``/metrics`` (``--metrics-port``).

The request path only observes histograms and moves the in-flight gauge (per-label children are looked up
once and cached); membership, the writer, suspicions and the catalog view are read when scraped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from coordinator.metrics_endpoint import MetricsEndpoint
from coordinator.model import SEARCHABLE_STATES
from coordinator.placement import Placement

if TYPE_CHECKING:
    import grpc

    from coordinator.catalog import CatalogSnapshot
    from mishards.catalog_view import CatalogView
    from mishards.cluster import Cluster
    from mishards.liveness import NodeWatch

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120)
MERGE_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)
WIDTH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64)

Handler = Callable[[bytes, "grpc.ServicerContext"], bytes]


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while pos < len(data):
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
    return value, pos


def status_code(reply: bytes, is_status: bool) -> int:
    """The Milvus error code of a serialized reply, read from its first bytes without parsing it.

    A ``Status`` starts with ``error_code`` (field 1, varint); every other MilvusService reply has its
    ``status`` as field 1 (serializers write fields in number order). Absent fields read as 0 (SUCCESS).
    """
    if is_status:
        return _varint(reply, 1)[0] if reply[:1] == b"\x08" else 0
    if reply[:1] != b"\x0a":
        return 0
    length, pos = _varint(reply, 1)
    if length and reply[pos:pos + 1] == b"\x08":
        return _varint(reply, pos + 1)[0]
    return 0


@dataclass(frozen=True, slots=True)
class ReplicaShortfall:
    """One collection's searchable segments, and how many of them have too few live replicas."""

    segments: int
    under_replicated: int  # fewer live replicas than the placement's width (none counted too)
    unavailable: int  # no live replica at all: searches of the collection fail or miss these


def replica_shortfall(segments: Mapping[str, Sequence[int]], placement: Placement,
                      live: frozenset[str]) -> dict[str, ReplicaShortfall]:
    """Per collection: segments whose placement replicas are not all ``live`` (pure).

    The target is ``placement.width`` (the replication factor, at most the read nodes there are); a segment
    counts as under-replicated when fewer of its replicas are live, and as unavailable when none is. Without
    read nodes (the writer searches) no segment is short.
    """
    width = placement.width
    out: dict[str, ReplicaShortfall] = {}
    for name, ids in segments.items():
        under = none = 0
        # Without read nodes the writer answers searches: nothing is short of replicas.
        for replicas in placement.replica_map(ids).values() if placement.nodes else ():
            alive = sum(1 for n in replicas if n in live)
            under += alive < width
            none += alive == 0
        out[name] = ReplicaShortfall(len(ids), under, none)
    return out


def searchable_by_collection(snap: CatalogSnapshot) -> dict[str, list[int]]:
    """Every collection's searchable (flushed) segment ids."""
    return {c.name: [s.id for s in snap.segments_of(c.id) if s.state in SEARCHABLE_STATES]
            for c in snap.collections.values()}


class ClusterCollector(Collector):
    """What the proxy knows of the cluster and the catalog, read at scrape time."""

    def __init__(self, cluster: Cluster, view: CatalogView | None, replication: int = 0,
                 watch: NodeWatch | None = None) -> None:
        self.cluster = cluster
        self.view = view
        self.replication = replication
        self.watch = watch
        self._placement: Placement | None = None  # kept while the readers do not change (it caches replicas)

    def collect(self) -> Iterator[Any]:
        members = GaugeMetricFamily("mishards_proxy_members", "Cluster members the proxy sees, by role and state",
                                    labels=["role", "state"])
        counts: dict[tuple[str, str], int] = {}
        for m in self.cluster.members():
            counts[(m.role, m.state)] = counts.get((m.role, m.state), 0) + 1
        for (role, state), n in sorted(counts.items()):
            members.add_metric([role, state], n)
        yield members
        try:
            known = self.cluster.writer() is not None
        except Exception as exc:  # e.g. etcd unreachable: the writer is not known
            log.debug("writer lookup failed during a scrape: %s", exc)
            known = False
        yield GaugeMetricFamily("mishards_proxy_writer_known", "1 when the proxy knows a writer to send writes to",
                                1 if known else 0)
        yield GaugeMetricFamily("mishards_proxy_suspected_nodes", "Nodes currently avoided after failures",
                                len(self.cluster.failures.suspects()))
        if self.view is not None:
            holder = self.view.snapshots
            yield GaugeMetricFamily("mishards_proxy_catalog_revision", "Catalog revision of the proxy's view",
                                    self.view.snapshot().revision)
            lag = max(0.0, time.time() - holder.checked_at) if holder.checked_at else 0.0
            yield GaugeMetricFamily("mishards_proxy_catalog_refresh_lag_seconds",
                                    "Seconds since the proxy's view last checked the catalog revision", lag)
            if self.watch is not None:
                yield from self._replicas(self.view.snapshot(), self.watch)

    def _replicas(self, snap: CatalogSnapshot, watch: NodeWatch) -> Iterator[Any]:
        """Placement of the searchable segments over the ready read nodes, against the nodes reachable now
        (an open health stream, not suspected)."""
        placement = Placement.of((m.node_id for m in self.cluster.readers()), r=self.replication or None)
        cached = self._placement
        if cached is not None and cached == placement:
            placement = cached
        else:
            self._placement = placement
        live = watch.connected() - self.cluster.failures.suspects()
        yield GaugeMetricFamily("mishards_proxy_replication_factor",
                                "Replicas each segment should have on read nodes (placement width)", placement.width)
        yield GaugeMetricFamily("mishards_proxy_live_readers", "Ready read nodes the proxy reaches now",
                                len(live & set(placement.nodes)))
        counts = replica_shortfall(searchable_by_collection(snap), placement, live)
        families = (
            ("mishards_proxy_segments", "Searchable segments, by collection", "segments"),
            ("mishards_proxy_segments_under_replicated",
             "Segments with fewer live replicas than the replication factor, by collection", "under_replicated"),
            ("mishards_proxy_segments_unavailable", "Segments with no live replica, by collection", "unavailable"),
        )
        for name, doc, field in families:
            family = GaugeMetricFamily(name, doc, labels=["collection"])
            for coll, c in sorted(counts.items()):
                family.add_metric([coll], getattr(c, field))
            yield family


class ProxyMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Histogram(
            "mishards_proxy_request_seconds", "Milvus RPCs handled by the proxy, by method and Milvus status code",
            ["method", "code"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.inflight = Gauge("mishards_proxy_inflight_requests", "Milvus RPCs being handled by the proxy",
                              registry=self.registry)
        self.fanout_width = Histogram(
            "mishards_proxy_fanout_nodes", "Read nodes one search was sent to (before any failover)",
            buckets=WIDTH_BUCKETS, registry=self.registry)
        self.subrequests = Histogram(
            "mishards_proxy_subrequest_seconds", "Calls the proxy made to one node on behalf of a search, by node",
            ["method", "node"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.merge_seconds = Histogram(
            "mishards_proxy_merge_seconds", "Time merging the nodes' partial results of one search",
            buckets=MERGE_BUCKETS, registry=self.registry)
        self.failovers = Counter(
            "mishards_proxy_failovers", "Sub-requests retried on another node after the node failed, by failed node",
            ["node"], registry=self.registry)
        self.suspicions = Counter(
            "mishards_proxy_node_suspicions", "Times a node was suspected (down or unreachable), by node",
            ["node"], registry=self.registry)
        self.hedges_sent = Counter(
            "mishards_proxy_hedges_sent", "Slow sub-requests whose segments were also sent to another replica, "
            "by slow node", ["node"], registry=self.registry)
        self.hedges_won = Counter(
            "mishards_proxy_hedges_won", "Hedges that answered before the sub-request they hedged, by slow node",
            ["node"], registry=self.registry)
        self.subrequest_timeouts = Counter(
            "mishards_proxy_subrequest_timeouts", "Calls to a node that ran out of their sub-request deadline, "
            "by node", ["node"], registry=self.registry)
        self.query_of_death_refusals = Counter(
            "mishards_proxy_query_of_death_refusals", "Requests refused because read nodes died or timed out "
            "serving them (query-of-death protection)", registry=self.registry)
        self.write_retries = Counter(
            "mishards_proxy_write_retries", "Writes sent again to the (new) writer, by method and why: not_applied "
            "(never reached a writer, or refused before writing) or unknown (the writer failed holding it)",
            ["method", "ending"], registry=self.registry)
        self.writes_given_up = Counter(
            "mishards_proxy_writes_given_up", "Writes answered with a failure after write_retry_timeout, by method "
            "and outcome (not_applied: CONNECT_FAILED; unknown: 'Write outcome unknown')",
            ["method", "outcome"], registry=self.registry)
        self.endpoint = MetricsEndpoint(self.registry)
        self._sub_children: dict[tuple[str, str], Any] = {}

    def watch(self, cluster: Cluster, view: CatalogView | None, replication: int = 0,
              nodes: NodeWatch | None = None) -> None:
        """Report membership, the writer, suspicions and the catalog view when scraped; with the read nodes'
        watch, also each collection's segments short of live replicas (``replication`` as the fan-out uses)."""
        self.registry.register(ClusterCollector(cluster, view, replication, nodes))

    def timed(self, method: str, is_status: bool, handler: Handler) -> Handler:
        """``handler`` counted in the in-flight gauge and observed by method and Milvus status code."""
        children: dict[str, Any] = {}
        requests = self.requests
        inflight = self.inflight

        def observed(request: bytes, context: grpc.ServicerContext) -> bytes:
            inflight.inc()
            started = time.perf_counter()
            code = "grpc_error"  # the call ended with a gRPC status (e.g. UNIMPLEMENTED) rather than a reply
            try:
                reply = handler(request, context)
                code = str(status_code(reply, is_status))
                return reply
            finally:
                child = children.get(code)
                if child is None:
                    child = children.setdefault(code, requests.labels(method, code))
                child.observe(time.perf_counter() - started)
                inflight.dec()

        return observed

    def subrequest(self, method: str, node: str, seconds: float) -> None:
        child = self._sub_children.get((method, node))
        if child is None:
            child = self._sub_children.setdefault((method, node), self.subrequests.labels(method, node))
        child.observe(seconds)

    def node_failed(self, node: str, suspected: bool) -> None:
        """A call to ``node`` failed and its work goes to another node; ``suspected``: it looks down."""
        self.failovers.labels(node).inc()
        if suspected:
            self.suspicions.labels(node).inc()

    def serve(self, host: str, port: int) -> int:
        """Serve ``/metrics``; returns the bound port."""
        return self.endpoint.serve(host, port)

    def close(self) -> None:
        self.endpoint.close()
