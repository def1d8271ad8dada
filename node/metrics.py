"""Prometheus metrics of a node, on a private registry served at ``/metrics`` (``--metrics-port``).

Request counts and latencies and the in-flight gauge are recorded by the servicer edge; WAL fsyncs, flushes
and index builds observe a histogram each where they happen (one observation per group commit, flush or
build). Everything else (cache, segments, rows, buffers, catalog, membership) is read from the engine when
scraped, so the request path does no extra work for it.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from coordinator.metrics_endpoint import MetricsEndpoint

if TYPE_CHECKING:
    from coordinator.membership import Member
    from node.admission import AdmissionStats
    from node.engine import Engine

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120)
FSYNC_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
WORK_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class EngineCollector(Collector):
    def __init__(self, engine: Engine, members: Callable[[], Callable[[], tuple[Member, ...]] | None],
                 admission: Callable[[], Callable[[], AdmissionStats] | None] = lambda: None,
                 warming: Callable[[], Callable[[], float] | None] = lambda: None) -> None:
        self.engine = engine
        self.members = members
        self.admission = admission
        self.warming = warming

    def collect(self) -> Iterator[Any]:
        e = self.engine
        cache = e.cache
        yield GaugeMetricFamily("mishards_node_cache_bytes", "Bytes held by the segment cache", cache.used_bytes)
        yield GaugeMetricFamily("mishards_node_cache_capacity_bytes", "Segment cache capacity", cache.capacity_bytes)
        yield GaugeMetricFamily("mishards_node_cache_segments", "Segments loaded in the cache", len(cache))
        yield CounterMetricFamily("mishards_node_cache_hits", "Segment cache hits", cache.hits)
        yield CounterMetricFamily("mishards_node_cache_misses", "Segment cache misses (loads)", cache.misses)
        yield CounterMetricFamily("mishards_node_cache_evictions", "Segments evicted from the cache", cache.evictions)
        snap = e.snapshot()
        yield GaugeMetricFamily("mishards_node_catalog_revision", "Catalog revision of the node's snapshot",
                                snap.revision)
        checked = e.snapshots.checked_at
        # The writer's snapshot moves with its own commits (nobody else writes): it never lags.
        lag = 0.0 if e.writable or not checked else max(0.0, time.time() - checked)
        yield GaugeMetricFamily("mishards_node_catalog_refresh_lag_seconds",
                                "Seconds since the node last checked the catalog revision (0 on the writer)", lag)
        yield GaugeMetricFamily("mishards_node_writable", "1 when this node holds the writer epoch",
                                1 if e.writable else 0)
        yield GaugeMetricFamily("mishards_node_collections", "Collections", len(snap.collections))
        states: Counter[str] = Counter()
        rows = 0
        for segs in snap.segments.values():
            for seg in segs:
                states[seg.state.name] += 1
                rows += seg.live_count
        by_state = GaugeMetricFamily("mishards_node_segments", "Segments by state", labels=["state"])
        for state in ("RAW", "TO_INDEX", "INDEX"):
            by_state.add_metric([state], states.get(state, 0))
        yield by_state
        yield GaugeMetricFamily("mishards_node_rows", "Live rows in flushed segments", rows)
        with e._buf_lock:
            buffered = sum(b.nbytes for b in e.buffers.values())
            buffered_rows = sum(int(c.alive.sum()) for b in e.buffers.values() for c in b.chunks)
        yield GaugeMetricFamily("mishards_node_buffered_bytes", "Bytes of inserted rows not yet flushed", buffered)
        yield GaugeMetricFamily("mishards_node_buffered_rows", "Inserted rows not yet flushed (deleted ones excluded)",
                                buffered_rows)
        if e.wal is not None:
            yield CounterMetricFamily("mishards_node_wal_fsyncs", "WAL fsyncs (group commits)", e.wal.fsyncs)
        if e.builds is not None:
            builds = CounterMetricFamily("mishards_node_index_builds", "Index builds by result", labels=["result"])
            builds.add_metric(["ok"], e.builds.built)
            builds.add_metric(["failed"], e.builds.failed)
            yield builds
        yield from storage_metrics(e.settings.storage)
        warming = self.warming()
        if warming is not None:
            yield GaugeMetricFamily("mishards_node_warming_seconds",
                                    "Seconds this read node has been warming its share (0 once ready)", warming())
        stats_of = self.admission()
        if stats_of is not None:
            yield from admission_metrics(stats_of())
        source = self.members()
        if source is not None:
            counts: Counter[tuple[str, str]] = Counter((m.role, m.state) for m in source())
            members = GaugeMetricFamily("mishards_node_members", "Cluster members this node sees, by role and state",
                                        labels=["role", "state"])
            for (role, state), n in sorted(counts.items()):
                members.add_metric([role, state], n)
            yield members


def storage_metrics(path: os.PathLike[str]) -> Iterator[Any]:
    """Size and free space of the file system holding the storage path (segments, index files, WAL)."""
    try:
        st = os.statvfs(path)
    except OSError as exc:  # e.g. a storage mount gone: the scrape goes on without these
        log.warning("cannot read the storage file system's size: %s", exc)
        return
    yield GaugeMetricFamily("mishards_node_storage_size_bytes", "Size of the file system holding the storage path",
                            st.f_blocks * st.f_frsize)
    yield GaugeMetricFamily("mishards_node_storage_free_bytes",
                            "Bytes available to the node on the file system holding the storage path",
                            st.f_bavail * st.f_frsize)


def admission_metrics(a: AdmissionStats) -> Iterator[Any]:
    """Heavy requests admitted against the node's memory budget (node/admission.py)."""
    yield GaugeMetricFamily("mishards_node_request_memory_budget_bytes",
                            "Memory heavy requests (searches, inserts) may hold at once", a.budget_bytes)
    yield GaugeMetricFamily("mishards_node_request_memory_in_use_bytes",
                            "Memory held by the heavy requests running (their estimates)", a.in_use_bytes)
    yield GaugeMetricFamily("mishards_node_searches_running", "Heavy searches running", a.running_searches)
    yield GaugeMetricFamily("mishards_node_searches_max", "Heavy searches that may run at once", a.max_searches)
    yield GaugeMetricFamily("mishards_node_admission_queue_depth", "Heavy requests waiting to start", a.queued)
    yield CounterMetricFamily("mishards_node_admitted", "Heavy requests started", a.admitted)
    refused = CounterMetricFamily("mishards_node_admission_refused", "Heavy requests refused, by reason",
                                  labels=["reason"])
    refused.add_metric(["over_budget"], a.refused_over_budget)
    refused.add_metric(["busy"], a.refused_busy)
    yield refused


class NodeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Histogram(
            "mishards_node_request_seconds",
            "Milvus RPCs handled by the node, by method and Milvus status code",
            ["method", "code"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.inflight = Gauge("mishards_node_inflight_requests", "Milvus RPCs being handled by the node",
                              registry=self.registry)
        self.wal_fsync_seconds = Histogram(
            "mishards_node_wal_fsync_seconds", "Duration of one WAL fsync (one group commit)",
            buckets=FSYNC_BUCKETS, registry=self.registry)
        self.flush_seconds = Histogram(
            "mishards_node_flush_seconds", "Duration of one committed flush of a collection's buffer",
            buckets=WORK_BUCKETS, registry=self.registry)
        self.index_build_seconds = Histogram(
            "mishards_node_index_build_seconds", "Duration of one segment's index build (succeeded or failed)",
            buckets=WORK_BUCKETS, registry=self.registry)
        # Set once the node knows its membership view (a cluster member); read when scraped.
        self.members: Callable[[], tuple[Member, ...]] | None = None
        # Set by the servicer: its admission's figures, read when scraped.
        self.admission: Callable[[], AdmissionStats] | None = None
        # Set on a read node with membership: seconds it has been warming its share (0 once ready).
        self.warming: Callable[[], float] | None = None
        self.endpoint = MetricsEndpoint(self.registry)

    def watch(self, engine: Engine) -> None:
        """Report the engine's state (cache, catalog, segments, buffers, WAL, builds, storage space), warm-up and
        membership when scraped."""
        self.registry.register(EngineCollector(engine, lambda: self.members, lambda: self.admission,
                                               lambda: self.warming))

    def begin(self) -> None:
        """A request starts (the in-flight gauge); :meth:`observe` ends it."""
        self.inflight.inc()

    def observe(self, method: str, code: int, seconds: float) -> None:
        self.inflight.dec()
        self.requests.labels(method, str(code)).observe(seconds)

    def serve(self, host: str, port: int) -> int:
        """Serve ``/metrics``; returns the bound port."""
        return self.endpoint.serve(host, port)

    def close(self) -> None:
        self.endpoint.close()
