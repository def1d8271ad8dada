"""The node side of the index benchmark: how the node is started, loading a collection through gRPC and waiting
until it settles in one segment, the node's row order, its index files and logged build times, and Search
requests and replies."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.datasets import Dataset
from benchmarks.index_specs import K, Spec
from benchmarks.node_bench import batches, check_status, row_records
from milvus_wire import milvus_pb2
from tests.support.nodeproc import NodeProcess

METRIC_L2 = 1
INDEX_FILE_SIZE_MB = 1024  # one segment holds every row (51 MB at 100k x 128, 512 MB at 1M)
INSERT_BATCH = 10_000
NODE_ARGS = ("--omp-threads", "1")
# --omp-threads is applied by the node's search threads; the environment reaches every thread (builds too).
NODE_ENV = {"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
CALL_TIMEOUT_S = 120.0
CREATE_INDEX_TIMEOUT_S = 4 * 3600.0  # CreateIndex blocks until built: 1M-row graphs take a long time


def collection_name(spec: Spec) -> str:
    return f"index_bench_{spec.label.lower().replace('/', '_')}"


def load_collection(node: NodeProcess, name: str, ds: Dataset) -> None:
    stub = node.stub()
    schema = milvus_pb2.CollectionSchema(
        collection_name=name, dimension=ds.dim, index_file_size=INDEX_FILE_SIZE_MB, metric_type=METRIC_L2
    )
    check_status(stub.CreateCollection(schema, timeout=CALL_TIMEOUT_S), "CreateCollection")
    ids = np.arange(ds.rows, dtype=np.int64)
    for a, b in batches(ds.rows, INSERT_BATCH):
        req = milvus_pb2.InsertParam(collection_name=name, row_record_array=row_records(ds.base[a:b]),
                                     row_id_array=ids[a:b].tolist())
        reply = stub.Insert(req, timeout=CALL_TIMEOUT_S)
        check_status(reply.status, "Insert")


def collection_info(stub: Any, name: str) -> dict[str, Any]:
    reply = stub.ShowCollectionInfo(milvus_pb2.CollectionName(collection_name=name), timeout=CALL_TIMEOUT_S)
    check_status(reply.status, "ShowCollectionInfo")
    info: dict[str, Any] = json.loads(reply.json_info)
    return info


def segment_names(info: Mapping[str, Any]) -> list[str]:
    return [s["name"] for p in info.get("partitions", []) for s in (p.get("segments") or [])]


def settle(node: NodeProcess, name: str, rows: int) -> list[str]:
    """Flush, then wait (bounded) until background merges leave one segment; returns the segment names."""
    stub = node.stub()
    check_status(stub.Flush(milvus_pb2.FlushParam(collection_name_array=[name]), timeout=CALL_TIMEOUT_S), "Flush")
    deadline = time.monotonic() + 60.0 + rows / 10_000
    while True:
        info = collection_info(stub, name)
        names = segment_names(info)
        if (len(names) == 1 and int(info.get("row_count", -1)) == rows) or time.monotonic() > deadline:
            return names
        time.sleep(0.2)


def row_order(stub: Any, name: str, segments: Sequence[str]) -> np.ndarray:
    """User ids of the node's rows in segment order (segment after segment): the order the node indexes."""
    parts = []
    for seg in segments:
        reply = stub.GetVectorIDs(milvus_pb2.GetVectorIDsParam(collection_name=name, segment_name=seg),
                                  timeout=CALL_TIMEOUT_S)
        check_status(reply.status, "GetVectorIDs")
        parts.append(np.asarray(reply.vector_id_array, dtype=np.int64))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def index_files(storage: Path) -> dict[Path, int]:
    return {p: p.stat().st_size for p in storage.glob("collections/*/*/index-*") if p.is_file()}


_BUILT_LINE = re.compile(r"built (\w+) index of segment (\d+) \((\d+) rows\) in ([0-9.]+)s")


def node_build_seconds(node: NodeProcess, kind: str, segments: Sequence[str]) -> float | None:
    """The node's own build time (build, write, commit) from its log, when it logged one per segment."""
    try:
        text = node.log_path.read_text(errors="replace")
    except OSError:
        return None
    found = {m.group(2): float(m.group(4)) for m in _BUILT_LINE.finditer(text) if m.group(1) == kind}
    if not segments or any(s not in found for s in segments):
        return None
    return sum(found[s] for s in segments)


def search_request(name: str, queries: np.ndarray, wire: Mapping[str, int]) -> Any:
    return milvus_pb2.SearchParam(
        collection_name=name,
        query_record_array=row_records(queries),
        topk=K,
        extra_params=[milvus_pb2.KeyValuePair(key="params", value=json.dumps(dict(wire)))],
    )


def reply_ids(reply: Any) -> np.ndarray:
    check_status(reply.status, "Search")
    return np.asarray(reply.ids, dtype=np.int64).reshape(int(reply.row_num), -1)
