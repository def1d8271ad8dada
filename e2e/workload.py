"""The client load: inserters with explicit ids and vectors computed from the ids, deleters of acknowledged
ids, searchers; every operation goes through the proxies (alternating) and is recorded with its outcome."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np

from e2e.outcomes import ACKED, Op, classify_search, classify_write, code_label
from milvus_wire import milvus_pb2

log = logging.getLogger(__name__)

_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xBF58476D1CE4E5B9)
_M3 = np.uint64(0x94D049BB133111EB)


def vectors_for(ids: np.ndarray, dim: int) -> np.ndarray:
    """The vector of each id: a fixed hash of (id, column) mapped to 24-bit floats in [-1, 1), exact in float32,
    so the checker recomputes what must be stored."""
    x = ids.astype(np.uint64)[:, None] * _M1 + np.arange(1, dim + 1, dtype=np.uint64)[None, :] * _M2
    x ^= x >> np.uint64(31)
    x *= _M3
    x ^= x >> np.uint64(29)
    return ((x >> np.uint64(40)).astype(np.float64) / float(1 << 23) - 1.0).astype(np.float32)


def rows(x: np.ndarray) -> list[Any]:
    return [milvus_pb2.RowRecord(float_data=v) for v in x.tolist()]


@dataclass(frozen=True)
class WorkloadConfig:
    inserters: int = 2
    deleters: int = 1
    searchers: int = 2
    batch: int = 50
    insert_interval: float = 0.1
    delete_batch: int = 10
    delete_interval: float = 0.25
    search_nq: int = 2
    topk: int = 10
    search_interval: float = 0.05
    deadline: float = 15.0  # the client's deadline for one call
    max_inflight: int = 48  # writes of one worker awaiting an answer (a stuck write must not stop the load)
    search_inflight: int = 8  # searches of one searcher awaiting an answer


class Workload:
    """Runs the load in threads until ``stop()``; ``ops()`` is every operation recorded so far."""

    def __init__(self, stubs: list[Any], collection: str, dim: int, config: WorkloadConfig, seed: int = 0) -> None:
        self.stubs = stubs
        self.collection = collection
        self.dim = dim
        self.config = config
        self.seed = seed
        self._ops: list[Op] = []
        self._lock = threading.Lock()
        self._next_id = 1
        self._acked_batches: list[tuple[int, int]] = []
        self._chosen_for_delete: set[int] = set()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._inflight: set[Any] = set()

    # -- control -----------------------------------------------------------------------------

    def start(self) -> Workload:
        c = self.config
        workers = ([(self._inserter, i) for i in range(c.inserters)] + [(self._deleter, i) for i in range(c.deleters)]
                   + [(self._searcher, i) for i in range(c.searchers)])
        for target, i in workers:
            t = threading.Thread(target=self._guard, args=(target, i), name=f"{target.__name__[1:]}-{i}", daemon=True)
            self._threads.append(t)
            t.start()
        return self

    def stop(self) -> None:
        """Stop sending, then wait for every call in flight to end (each has the client's deadline)."""
        self._stop.set()
        for t in self._threads:
            t.join(timeout=self.config.deadline + 30)
        deadline = time.monotonic() + self.config.deadline + 30
        while time.monotonic() < deadline:
            with self._lock:
                if not self._inflight:
                    return
            time.sleep(0.05)
        raise TimeoutError("calls still in flight past their deadline")

    def ops(self) -> list[Op]:
        with self._lock:
            return list(self._ops)

    def acked_rows(self) -> int:
        with self._lock:
            return sum(n for _, n in self._acked_batches)

    def _guard(self, target: Any, index: int) -> None:
        try:
            target(index)
        except Exception:
            log.exception("workload thread failed")
            raise

    def _record(self, op: Op) -> None:
        with self._lock:
            self._ops.append(op)
            if op.kind == "insert" and op.outcome == ACKED:
                self._acked_batches.append((op.first_id, op.count))

    def _send(self, proxy: int, method: str, request: Any, slots: threading.BoundedSemaphore,
              finish: Callable[[float, Any, str | None], Op]) -> None:
        """Send without waiting for the answer (a stuck call must not stop the load), at most ``slots`` calls of
        one worker in flight; ``finish(sent, reply, grpc_code)`` makes the record when the answer comes."""
        slots.acquire()
        sent = time.monotonic()
        future = getattr(self.stubs[proxy], method).future(request, timeout=self.config.deadline)

        def done(f: Any) -> None:
            try:
                reply, code = f.result(), None
            except grpc.RpcError as exc:
                reply, code = None, exc.code().name
            except Exception as exc:  # a cancelled future
                reply, code = None, type(exc).__name__
            try:
                self._record(finish(sent, reply, code))
            finally:
                slots.release()
                with self._lock:
                    self._inflight.discard(f)

        with self._lock:
            self._inflight.add(future)
        future.add_done_callback(done)

    # -- workers -----------------------------------------------------------------------------

    def _inserter(self, index: int) -> None:
        c = self.config
        slots = threading.BoundedSemaphore(c.max_inflight)
        i = 0
        while not self._stop.wait(c.insert_interval):
            with self._lock:
                first = self._next_id
                self._next_id += c.batch
            ids = np.arange(first, first + c.batch, dtype=np.int64)
            proxy = (index + i) % len(self.stubs)
            i += 1
            request = milvus_pb2.InsertParam(collection_name=self.collection, row_id_array=ids.tolist(),
                                             row_record_array=rows(vectors_for(ids, self.dim)))

            def finish(sent: float, reply: Any, grpc_code: str | None, proxy: int = proxy, first: int = first) -> Op:
                code = None if reply is None else reply.status.error_code
                reason = "" if reply is None else reply.status.reason
                return Op("insert", proxy, sent, time.monotonic(), classify_write(code, reason, grpc_code),
                          code_label(code, grpc_code), reason, first_id=first, count=c.batch)

            self._send(proxy, "Insert", request, slots, finish)

    def _deleter(self, index: int) -> None:
        c = self.config
        rng = random.Random(self.seed * 1000 + 500 + index)
        slots = threading.BoundedSemaphore(c.max_inflight)
        i = 0
        while not self._stop.wait(c.delete_interval):
            with self._lock:
                if not self._acked_batches:
                    continue
                first, count = self._acked_batches[rng.randrange(len(self._acked_batches))]
                candidates = [x for x in range(first, first + count) if x not in self._chosen_for_delete]
                chosen = rng.sample(candidates, min(c.delete_batch, len(candidates)))
                self._chosen_for_delete.update(chosen)
            if not chosen:
                continue
            proxy = (index + i) % len(self.stubs)
            i += 1

            def finish(sent: float, reply: Any, grpc_code: str | None, proxy: int = proxy,
                       chosen: tuple[int, ...] = tuple(chosen)) -> Op:
                code = None if reply is None else reply.error_code
                reason = "" if reply is None else reply.reason
                return Op("delete", proxy, sent, time.monotonic(), classify_write(code, reason, grpc_code),
                          code_label(code, grpc_code), reason, ids=chosen)

            self._send(proxy, "DeleteByID", milvus_pb2.DeleteByIDParam(collection_name=self.collection,
                                                                        id_array=chosen), slots, finish)

    def _searcher(self, index: int) -> None:
        c = self.config
        rng = random.Random(self.seed * 1000 + 900 + index)
        slots = threading.BoundedSemaphore(c.search_inflight)
        i = 0
        while not self._stop.wait(c.search_interval):
            with self._lock:
                picks = [rng.choice(self._acked_batches) for _ in range(c.search_nq)] if self._acked_batches else []
            ids = np.array([f + rng.randrange(n) for f, n in picks] or [1] * c.search_nq, dtype=np.int64)
            proxy = (index + i) % len(self.stubs)
            i += 1
            request = milvus_pb2.SearchParam(collection_name=self.collection, topk=c.topk,
                                             query_record_array=rows(vectors_for(ids, self.dim)))

            def finish(sent: float, reply: Any, grpc_code: str | None, proxy: int = proxy) -> Op:
                code = None if reply is None else reply.status.error_code
                reason = "" if reply is None else reply.status.reason
                return Op("search", proxy, sent, time.monotonic(), classify_search(code, grpc_code),
                          code_label(code, grpc_code), reason)

            self._send(proxy, "Search", request, slots, finish)
