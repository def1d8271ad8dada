"""One gRPC Health ``Watch`` stream kept open by the proxy to every read node.

Two jobs:

- Speed. grpc-python completes the futures of a channel (the fan-out's sub-requests) on a thread that
  lives only while some call is in flight on the channel: on an idle channel every search would start a
  thread again (about 0.35 ms on a small VM). The open stream keeps that thread, so a search pays only
  the hand-over of its answers (tens of microseconds).
- Quick suspicion. The stream ends the moment the node's process or connection dies; the node is then
  suspected at once (``mishards.failures``), before a search has to find out. A re-open that finds the
  node down (connection refused) does not renew the suspicion: that stays the searches' back-off, as
  for a node the proxy never reached. (A paused node keeps its connection: the fan-out's hedges deal
  with that.)

The stream's messages are never read: a node sends one per health change, and only the end of the call
matters. The servicer is non-blocking on the node (no worker thread held per stream).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mishards.cluster import Cluster
from mishards.outcomes import Ending, rpc_ending

if TYPE_CHECKING:
    from mishards.metrics import ProxyMetrics

log = logging.getLogger(__name__)

WATCH_REQUEST = health_pb2.HealthCheckRequest(service="")


class NodeWatch:
    """Keeps a Watch stream open to each read node membership lists, checked every ``period`` seconds."""

    def __init__(self, cluster: Cluster, metrics: ProxyMetrics | None = None, period: float = 1.0) -> None:
        self.cluster = cluster
        self.metrics = metrics
        self.period = period
        self._streams: dict[str, tuple[str, grpc.Future]] = {}  # address -> (node id, the open call)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        self.sync()
        self._thread = threading.Thread(target=self._run, name="node-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            streams = list(self._streams.values())
            self._streams.clear()
        for _, stream in streams:
            stream.cancel()

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            try:
                self.sync()
            except Exception:  # membership or a channel failing must not end the watch
                log.exception("node watch failed; trying again")

    def sync(self) -> None:
        """Open a stream to each read node that has none (or whose stream ended); drop departed nodes'."""
        wanted = {m.address: m.node_id for m in self.cluster.readers()}
        with self._lock:
            for address in [a for a in self._streams if a not in wanted]:
                self._streams.pop(address)[1].cancel()
            for address, node in wanted.items():
                current = self._streams.get(address)
                if current is None or current[1].done():
                    self._streams[address] = (node, self._open(address, node))

    def connected(self) -> frozenset[str]:
        """The read nodes (ids) whose stream is open right now: reachable and serving (the proxy's metrics)."""
        with self._lock:
            return frozenset(node for node, stream in self._streams.values() if not stream.done())

    def _open(self, address: str, node: str) -> grpc.Future:
        stub = health_pb2_grpc.HealthStub(self.cluster.channel(address))
        stream = stub.Watch(WATCH_REQUEST)

        def ended(call: grpc.Future) -> None:
            if self._stop.is_set() or call.cancelled():
                return
            if rpc_ending(call.code(), call.details()) != Ending.DIED:
                return  # never connected, or a node without health checks: nothing learnt
            log.warning("read node %s: connection lost (%s); suspecting it", node, call.details())
            self.cluster.failures.failed(node)
            if self.metrics is not None:
                self.metrics.suspicions.labels(node).inc()

        stream.add_done_callback(ended)
        return stream
