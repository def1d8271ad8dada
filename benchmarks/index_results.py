"""The figures the index benchmark gathers per search-parameter point and per index kind, and their medians."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from benchmarks.datasets import recall_at
from benchmarks.index_specs import K, Point, Spec
from benchmarks.node_bench import median, percentiles


@dataclass
class PointRound:
    grpc_lat: np.ndarray  # seconds per nq=1 call
    local_lat: np.ndarray
    grpc_serial_qps: float
    local_serial_qps: float
    grpc_batched_qps: float
    local_batched_qps: float
    ping_lat: np.ndarray  # seconds per HasCollection call in a loop right after: the gRPC round trip without search
    mixed_lat: np.ndarray  # seconds per HasCollection call sent after each nq=1 pair (the caches a search leaves)


@dataclass
class PointResult:
    point: Point
    rounds: list[PointRound] = field(default_factory=list)
    # ids (user ids = row numbers of the data set) of the first repeat, nq=100 calls and nq=1 calls
    grpc_batched_ids: np.ndarray | None = None
    local_batched_ids: np.ndarray | None = None
    grpc_single_ids: np.ndarray | None = None
    local_single_ids: np.ndarray | None = None

    def _p(self, side: str) -> list[tuple[float, float, float]]:
        return [percentiles(getattr(r, f"{side}_lat")) for r in self.rounds]

    def latency(self, side: str) -> tuple[float, float, float]:
        """Median over repeats of p50 / p95 / p99 in ms (``side`` is 'grpc', 'local', 'ping' or 'mixed')."""
        per = self._p(side)
        p50, p95, p99 = (median([p[i] for p in per]) for i in range(3))
        return p50, p95, p99

    @property
    def added_p50s(self) -> list[float]:
        return [g[0] - loc[0] for g, loc in zip(self._p("grpc"), self._p("local"), strict=True)]

    @property
    def added_p50(self) -> float:
        return median(self.added_p50s)

    @property
    def beyond_floor_p50(self) -> float:
        """Added p50 minus the warm-loop HasCollection p50 of the same repeat: the node's search path (median)."""
        return median([a - p[0] for a, p in zip(self.added_p50s, self._p("ping"), strict=True)])

    @property
    def beyond_mixed_floor_p50(self) -> float:
        """Added p50 minus the p50 of the HasCollection calls interleaved with the searches (median of repeats)."""
        return median([a - p[0] for a, p in zip(self.added_p50s, self._p("mixed"), strict=True)])

    @property
    def ratios(self) -> list[float]:
        return [r.grpc_batched_qps / r.local_batched_qps for r in self.rounds]

    @property
    def ratio(self) -> float:
        return median(self.ratios)

    def qps(self, what: str) -> float:
        return median([getattr(r, what) for r in self.rounds])

    def recalls(self, gt: np.ndarray) -> tuple[float, float]:
        assert self.grpc_batched_ids is not None and self.local_batched_ids is not None
        return recall_at(self.grpc_batched_ids, gt, K), recall_at(self.local_batched_ids, gt, K)

    @property
    def same_recall(self) -> bool:
        """gRPC returns exactly the in-process results (so recall is identical)."""
        assert self.grpc_batched_ids is not None and self.local_batched_ids is not None
        return bool(np.array_equal(self.grpc_batched_ids, self.local_batched_ids))


@dataclass
class KindResult:
    spec: Spec
    rows: int = 0
    segments: int = 0
    create_index_s: float = 0.0
    node_build_s: float | None = None  # from the node's log line (build + write + commit)
    local_build_s: float = 0.0
    index_files: list[tuple[str, int]] = field(default_factory=list)
    local_file_bytes: int = 0
    effective: Mapping[str, Any] = field(default_factory=dict)
    points: list[PointResult] = field(default_factory=list)

    @property
    def index_bytes(self) -> int:
        return sum(size for _, size in self.index_files)
