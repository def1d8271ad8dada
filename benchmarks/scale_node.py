"""The scale benchmark's nodes and rows: a node process for a block, its memory, the insert of every row."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.datasets import Dataset
from benchmarks.index_node import collection_info, segment_names
from benchmarks.node_bench import batches, check_status
from benchmarks.scale_results import InsertFigures, Memory, read_memory
from benchmarks.scale_specs import (
    CALL_TIMEOUT_S,
    INDEX_FILE_SIZE_MB,
    INSERT_BATCH,
    SETTLE_TIMEOUT_S,
    collection_name,
    node_args,
    node_env,
)
from coordinator.model import MetricType
from milvus_wire import milvus_pb2
from tests.support.nodeproc import NodeProcess


def records(vectors: np.ndarray) -> list[Any]:
    if vectors.dtype == np.uint8:
        return [milvus_pb2.RowRecord(binary_data=row.tobytes()) for row in vectors]
    return [milvus_pb2.RowRecord(float_data=row) for row in vectors.tolist()]


@contextmanager
def running(workdir: Path, storage: Path, threads: int, role: str = "standalone") -> Iterator[NodeProcess]:
    node = NodeProcess(workdir, node_args(threads, role), env=node_env(threads), storage=storage).start(timeout=300.0)
    try:
        yield node
    finally:
        node.stop(timeout=120.0)


def memory_of(node: NodeProcess) -> Memory:
    assert node.proc is not None
    return read_memory(node.proc.pid)


def storage_bytes(storage: Path) -> dict[str, int]:
    """Bytes on storage by kind of file: raw vectors, ids, index files, write-ahead log, catalog, other."""
    out: dict[str, int] = {}
    for path in storage.rglob("*"):
        if not path.is_file():
            continue
        name, parts = path.name, path.relative_to(storage).parts
        if name.startswith("index-"):
            key = "index"
        elif name.startswith("vectors"):
            key = "vectors"
        elif name.startswith("ids"):
            key = "ids"
        elif "wal" in parts[0].lower():
            key = "wal"
        elif name.startswith("meta"):
            key = "catalog"
        else:
            key = "other"
        out[key] = out.get(key, 0) + path.stat().st_size
    return out


def settle(stub: Any, name: str, rows: int) -> int:
    """Wait (bounded) until every row is flushed and merges left one segment, or nothing changed for 20 s."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        info = collection_info(stub, name)
        count = len(segment_names(info))
        if int(info.get("row_count", -1)) == rows and (count == 1 or time.monotonic() - since > 20.0):
            return count
        if count != last:
            last, since = count, time.monotonic()
        time.sleep(0.5)
    return last


def has_rows(stub: Any, name: str, rows: int) -> bool:
    reply = stub.HasCollection(milvus_pb2.CollectionName(collection_name=name), timeout=CALL_TIMEOUT_S)
    check_status(reply.status, "HasCollection")
    return bool(reply.bool_reply) and int(collection_info(stub, name).get("row_count", -1)) == rows


def insert_all(node: NodeProcess, ds: Dataset, data: str) -> InsertFigures:
    stub, name = node.stub(), collection_name(data)
    started_mem = memory_of(node)
    metric = MetricType.HAMMING if data == "binary" else MetricType.L2
    reply = stub.HasCollection(milvus_pb2.CollectionName(collection_name=name), timeout=CALL_TIMEOUT_S)
    if reply.bool_reply:
        check_status(stub.DropCollection(milvus_pb2.CollectionName(collection_name=name), timeout=CALL_TIMEOUT_S),
                     "DropCollection")
    schema = milvus_pb2.CollectionSchema(collection_name=name, dimension=ds.dim,
                                         index_file_size=INDEX_FILE_SIZE_MB, metric_type=int(metric))
    check_status(stub.CreateCollection(schema, timeout=CALL_TIMEOUT_S), "CreateCollection")
    ids = np.arange(ds.rows, dtype=np.int64)
    in_calls = 0.0
    wall0 = time.perf_counter()
    for a, b in batches(ds.rows, INSERT_BATCH):
        req = milvus_pb2.InsertParam(collection_name=name, row_record_array=records(ds.base[a:b]),
                                     row_id_array=ids[a:b].tolist())
        t0 = time.perf_counter()
        reply = stub.Insert(req, timeout=CALL_TIMEOUT_S)
        in_calls += time.perf_counter() - t0
        check_status(reply.status, "Insert")
    wall = time.perf_counter() - wall0
    t0 = time.perf_counter()
    check_status(stub.Flush(milvus_pb2.FlushParam(collection_name_array=[name]), timeout=CALL_TIMEOUT_S), "Flush")
    flush_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    segments = settle(stub, name, ds.rows)
    settle_s = time.perf_counter() - t0
    return InsertFigures(data, ds.rows, ds.dim, INSERT_BATCH, in_calls, wall, flush_s, settle_s, segments,
                         storage_bytes(node.storage), memory_of(node),
                         {"writer_start": started_mem.rss})
