"""Mishards through pymilvus 1.1.2 as shipped users run it, for ``benchmarks.lite_bench``.

    PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python python -m benchmarks.lite_pymilvus1

The same JSON-lines protocol as ``benchmarks/lite_worker.py``. pymilvus 1.1.2's generated code predates
protobuf 4, so it runs with the pure-Python protobuf runtime, in its own process. Ops: ``open`` (host,
port), ``insert`` (a fresh collection, rows in batches, the time until every batch is acknowledged; the
collection is dropped afterwards), ``search`` (nq=1 latencies and nq=100 QPS on an existing collection).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import sys
import time
from typing import Any

import numpy as np

from benchmarks.lite_worker import Dispatcher, protobuf_backend, serve_stdio, timed_searches

CALL_TIMEOUT_S = 120.0


def check(status: Any, what: str) -> None:
    if not status.OK():
        raise RuntimeError(f"{what}: {status}")


class Pymilvus1Worker(Dispatcher):
    OPS = ("open", "insert", "search", "close")

    def __init__(self) -> None:
        self.milvus: Any = None
        self.client: Any = None

    def open(self, req: dict[str, Any]) -> dict[str, Any]:
        self.milvus = importlib.import_module("milvus")
        self.client = self.milvus.Milvus(host=req["host"], port=str(req["port"]))
        return {"pymilvus": importlib.metadata.version("pymilvus"), "protobuf": protobuf_backend()}

    def insert(self, req: dict[str, Any]) -> dict[str, Any]:
        c, name = self.client, req["collection"]
        base = np.load(req["base"], mmap_mode="r")
        check(c.create_collection({"collection_name": name, "dimension": int(base.shape[1]),
                                   "index_file_size": int(req["index_file_size"]),
                                   "metric_type": self.milvus.MetricType.L2}), "create_collection")
        data = [(base[a:b].tolist(), list(range(a, b))) for a, b in req["spans"]]  # before the clock
        started = time.perf_counter()
        for rows, ids in data:
            status, got = c.insert(name, rows, ids=ids, timeout=CALL_TIMEOUT_S)
            check(status, "insert")
            if len(got) != len(ids):
                raise RuntimeError(f"insert acknowledged {len(got)} of {len(ids)} rows")
        insert_s = time.perf_counter() - started
        check(c.drop_collection(name), "drop_collection")
        return {"insert_s": insert_s}

    def search(self, req: dict[str, Any]) -> dict[str, Any]:
        c, name, k, params = self.client, req["collection"], int(req["k"]), json.loads(req["params"])

        def run(vectors: list[list[float]]) -> list[list[int]]:
            status, result = c.search(name, k, vectors, params=params, timeout=CALL_TIMEOUT_S)
            check(status, "search")
            return [list(map(int, row)) for row in result.id_array]

        return timed_searches(run, req)

    def close(self, req: dict[str, Any] | None = None) -> dict[str, Any]:
        if self.client is not None:
            self.client.close()
            self.client = None
        return {}


if __name__ == "__main__":
    sys.exit(serve_stdio(Pymilvus1Worker()))
