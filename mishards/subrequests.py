"""What the fan-out's searches share: the policy for slow and failing read nodes, the load per node, the
hedging state, the query-of-death records, and how a sub-request is observed (metrics, tracing).

``mishards.gather`` runs one search's sub-requests on top of this.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

from coordinator import tracing as spans
from coordinator.errors import ErrorCode
from coordinator.wire import field
from mishards.cluster import Cluster
from mishards.hedging import DEFAULT_CAP, HedgeBudget, LatencyWindow, hedge_delay
from mishards.querydeath import QueryOfDeath, refusal_reason

if TYPE_CHECKING:
    from coordinator.tracing import Metadata, Tracing
    from mishards.metrics import ProxyMetrics

log = logging.getLogger(__name__)

SEARCH_IN_FILES = "/milvus.grpc.MilvusService/SearchInFiles"
# The hybrid twin: an HSearchInSegmentsParam has SearchInFilesParam's layout (ids as field 1, the search as field 2).
HYBRID_SEARCH_IN_SEGMENTS = "/milvus.grpc.MilvusService/HybridSearchInSegments"
MIN_REVISION_HEADER = "mishards-min-revision"
TOO_LARGE = "The request is larger than the read nodes accept"

Finish: TypeAlias = Callable[[BaseException | None], None]


@dataclass(frozen=True, slots=True)
class FanoutPolicy:
    """How the fan-out treats slow and failing read nodes (the proxy settings of the same names)."""

    subrequest_timeout: float = 5.0  # seconds one node may take for its part of a search (0: the search's)
    hedge_after: float = 0.0  # seconds before a slow sub-request is hedged (0: adaptive p95, < 0: never)
    query_of_death_ttl: float = 120.0  # seconds a request that failed on 2 nodes stays refused (0: off)


class Failed(Exception):
    """A search that ends with an in-band Milvus status instead of a result."""

    def __init__(self, code: ErrorCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def as_error_code(code: int) -> ErrorCode:
    try:
        return ErrorCode(code)
    except ValueError:
        return ErrorCode.UNEXPECTED_ERROR


def search_in_files_request(file_ids: tuple[int, ...], search_param: bytes) -> bytes:
    """A serialized SearchInFilesParam around an already serialized SearchParam (or an HSearchInSegmentsParam around
    an HSearchParam: the same fields)."""
    return b"".join(field(1, str(f).encode()) for f in file_ids) + field(2, search_param)


def unplaced_error(segments: tuple[int, ...], last_failure: str = "") -> Failed:
    why = f" ({last_failure})" if last_failure else ""
    return Failed(ErrorCode.UNEXPECTED_ERROR, f"Segments {list(segments)[:5]} have no live replica{why}")


class Inflight:
    """Sub-requests in flight per node (thread-safe), the load routing balances."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def add(self, node: str) -> None:
        with self._lock:
            self._counts[node] += 1

    def release(self, node: str) -> None:
        with self._lock:
            self._counts[node] -= 1


class SubRequests:
    """What the fan-out's searches share: load, hedging state, query-of-death records, metrics."""

    def __init__(self, cluster: Cluster, policy: FanoutPolicy, metrics: ProxyMetrics | None = None,
                 tracing: Tracing | None = None) -> None:
        self.cluster = cluster
        self.policy = policy
        self.metrics = metrics
        self.tracing = tracing
        self.inflight = Inflight()
        self.latencies = LatencyWindow()
        self.budget = HedgeBudget()
        self.deaths = QueryOfDeath(policy.query_of_death_ttl)
        self.last_answer: dict[str, float] = {}  # node -> clock value of its last reply of any status
        cap = policy.subrequest_timeout / 2 if policy.subrequest_timeout > 0 else DEFAULT_CAP
        self._hedge_cap = cap

    def call_timeout(self, deadline: float) -> float:
        """The gRPC timeout of one call to a node: the sub-request timeout within what is left of ``deadline``."""
        left = max(0.001, deadline - time.monotonic())
        limit = self.policy.subrequest_timeout
        return min(limit, left) if limit > 0 else left

    def hedge_delay(self) -> float | None:
        return hedge_delay(self.policy.hedge_after, self.latencies.p95(), self._hedge_cap)

    def check_refused(self, key: Callable[[], bytes]) -> None:
        """Refuse a request that already failed on enough nodes (query-of-death protection)."""
        if not len(self.deaths):
            return
        nodes = self.deaths.refused(key())
        if nodes:
            self._refuse(nodes)

    def blame(self, key: Callable[[], bytes], node: str) -> None:
        """``node`` died or timed out serving the request: refuse it from now on if that makes enough."""
        nodes = self.deaths.failed(key(), node)
        if nodes >= self.deaths.threshold:
            log.error("a request failed on %d read nodes (last %s): refusing it for %g s", nodes, node,
                      self.deaths.ttl)
            self._refuse(nodes)

    def _refuse(self, nodes: int) -> None:
        if self.metrics is not None:
            self.metrics.query_of_death_refusals.inc()
        raise Failed(ErrorCode.UNEXPECTED_ERROR, refusal_reason(nodes, self.deaths.ttl))

    def suspect(self, node: str) -> None:
        """``node`` looks paused or hung: routing keeps off it for a while."""
        self.cluster.failures.failed(node)
        if self.metrics is not None:
            self.metrics.suspicions.labels(node).inc()

    def node_failed(self, node: str, suspect: bool) -> None:
        """A call to ``node`` failed and its work moves on: suspect the node when it looks down; count it."""
        if suspect:
            self.cluster.failures.failed(node)
        if self.metrics is not None:
            self.metrics.node_failed(node, suspect)

    def sub_request(self, node: str, segs: tuple[int, ...], metadata: Metadata,
                    method: str = SEARCH_IN_FILES) -> tuple[Metadata, Finish | None]:
        """The metadata to send with one sub-request (``method``: SearchInFiles or HybridSearchInSegments) to
        ``node`` and what to call when it ends (None when neither metrics nor tracing is on): its latency is
        observed and its client span ended."""
        if self.metrics is None and self.tracing is None:
            return metadata, None
        span = None
        if self.tracing is not None:
            span, metadata = self.tracing.start_client(method, node, metadata, {spans.SEGMENTS: len(segs)})
        started = time.perf_counter()
        name = method.rpartition("/")[2]

        def finish(error: BaseException | None) -> None:
            if self.metrics is not None:
                self.metrics.subrequest(name, node, time.perf_counter() - started)
            if span is not None and self.tracing is not None:
                self.tracing.end_client(span, error)

        return metadata, finish
