"""Prometheus metrics of a node, on a private registry served at ``/metrics`` (``--metrics-port``).

Request counts and latencies are recorded by the servicer edge; everything else (cache, segments, WAL,
index builds, buffers) is read from the engine when scraped, so nothing in the hot path updates it.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from node.engine import Engine

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120)


class EngineCollector(Collector):
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

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
        yield GaugeMetricFamily("mishards_node_buffered_bytes", "Bytes of inserted rows not yet flushed", buffered)
        if e.wal is not None:
            yield CounterMetricFamily("mishards_node_wal_fsyncs", "WAL fsyncs (group commits)", e.wal.fsyncs)
            yield CounterMetricFamily("mishards_node_wal_fsync_seconds", "Time spent in WAL fsyncs",
                                      e.wal.fsync_seconds_total)
        if e.builds is not None:
            builds = CounterMetricFamily("mishards_node_index_builds", "Index builds by result", labels=["result"])
            builds.add_metric(["ok"], e.builds.built)
            builds.add_metric(["failed"], e.builds.failed)
            yield builds
            yield CounterMetricFamily("mishards_node_index_build_seconds", "Time spent building indexes",
                                      e.builds.build_seconds_total)


class NodeMetrics:
    def __init__(self, engine: Engine) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(EngineCollector(engine))
        self.requests = Histogram(
            "mishards_node_request_seconds",
            "Milvus RPCs handled by the node, by method and Milvus status code",
            ["method", "code"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.server: Any = None

    def observe(self, method: str, code: int, seconds: float) -> None:
        self.requests.labels(method, str(code)).observe(seconds)

    def serve(self, host: str, port: int) -> int:
        """Serve ``/metrics``; returns the bound port."""
        self.server, _thread = start_http_server(port, addr=host, registry=self.registry)
        bound = int(self.server.server_port)
        log.info("metrics on http://%s:%d/metrics", host, bound)
        return bound

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
