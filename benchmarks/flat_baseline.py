"""The in-process side of the FLAT benchmarks (``benchmarks.node_bench``, ``benchmarks.ingest_search``).

Two baselines over the same rows, one faiss thread each:

- ``SameKernel``: what the node runs for a FLAT segment (``node.kernels.FloatFlat``): faiss' brute-force
  ``knn_L2sqr`` over a numpy copy of the rows, which numpy places in transparent huge pages where the kernel
  allows them on request (``madvise``). The node's added latency is measured against this one: same kernel,
  same memory layout, same threads.
- stock ``faiss.IndexFlatL2``: what a faiss user gets by default (its own storage, 4 KB pages where THP is
  ``madvise`` only); reported beside it.

Each gRPC call runs back to back with both (:func:`paired_three`, the order rotating), so that bursts of other
work on the machine weigh on all three alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import faiss
import numpy as np

LOOP_CAP_S = 120.0  # a paired loop stops after this much gRPC time (unless its results are kept)


@dataclass(frozen=True)
class SameKernel:
    """Exact L2 top-k over ``rows`` (float32, C-contiguous, numpy-allocated) as the node's FLAT segments run it."""

    rows: np.ndarray

    @staticmethod
    def of(base: np.ndarray) -> SameKernel:
        return SameKernel(np.array(base, dtype=np.float32, order="C", copy=True))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Distances and row offsets, as ``faiss.Index.search`` returns them."""
        q = np.ascontiguousarray(queries, dtype=np.float32)
        nq, dim = q.shape
        dist = np.empty((nq, k), dtype=np.float32)
        offs = np.empty((nq, k), dtype=np.int64)
        faiss.knn_L2sqr(faiss.swig_ptr(q), faiss.swig_ptr(self.rows), dim, nq, int(self.rows.shape[0]), k,
                        faiss.swig_ptr(dist), faiss.swig_ptr(offs), None, None)
        return dist, offs


@dataclass(frozen=True)
class Baselines:
    """Both in-process sides over the same rows."""

    same: SameKernel
    stock: faiss.IndexFlatL2

    @staticmethod
    def of(base: np.ndarray) -> Baselines:
        stock = faiss.IndexFlatL2(int(base.shape[1]))
        stock.add(np.ascontiguousarray(base, dtype=np.float32))
        return Baselines(SameKernel.of(base), stock)


@dataclass(frozen=True)
class Triple:
    """Seconds per call of the gRPC side and of both in-process sides, call for call."""

    grpc: np.ndarray
    same: np.ndarray
    stock: np.ndarray


def paired_three(calls: Sequence[tuple[Callable[[], Any], Callable[[], Any], Callable[[], Any]]],
                 keep_grpc: list[Any] | None = None) -> Triple:
    """Seconds of each gRPC call and of its two in-process twins, run back to back (the order rotates). Stops after
    LOOP_CAP_S of gRPC time unless the gRPC results are kept."""
    out: tuple[list[float], list[float], list[float]] = ([], [], [])
    for i, trio in enumerate(calls):
        for j in range(3):
            side = (i + j) % 3
            t0 = time.perf_counter()
            result = trio[side]()
            out[side].append(time.perf_counter() - t0)
            if side == 0 and keep_grpc is not None:
                keep_grpc.append(result)
        if sum(out[0]) > LOOP_CAP_S and keep_grpc is None:
            break
    return Triple(*(np.asarray(times) for times in out))
