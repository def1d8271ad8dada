"""One index kind measured: load and settle its collection, build the index through gRPC and in-process over the
same rows in the same order, then search every point through both, each gRPC call paired with its in-process
twin."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.datasets import Dataset
from benchmarks.index_node import (
    CALL_TIMEOUT_S,
    CREATE_INDEX_TIMEOUT_S,
    collection_name,
    index_files,
    load_collection,
    node_build_seconds,
    reply_ids,
    row_order,
    search_request,
    settle,
)
from benchmarks.index_results import KindResult, PointResult, PointRound
from benchmarks.index_specs import BATCH_NQ, WARMUP_BATCHED, WARMUP_SINGLE, K, Point, Spec
from benchmarks.node_bench import batches, check_status, timed
from benchmarks.pairing import paired, ping_call, ping_latencies, search_call
from coordinator.model import MetricType
from milvus_wire import milvus_pb2
from node.indexes import SegmentIndex, build_index
from node.kernels import LiveMask
from tests.support.nodeproc import NodeProcess


def run_kind(node: NodeProcess, ds: Dataset, spec: Spec, repeats: int, scratch: Path) -> KindResult:
    res = KindResult(spec)
    name = collection_name(spec)
    stub = node.stub()
    load_collection(node, name, ds)
    segments = settle(node, name, ds.rows)
    res.segments = len(segments)
    order = row_order(stub, name, segments)
    res.rows = int(order.shape[0])
    if res.rows != ds.rows or not np.array_equal(np.sort(order), np.arange(ds.rows)):
        raise RuntimeError(f"{name}: the node holds {res.rows} rows, not the {ds.rows} inserted")

    # a) build through gRPC, then the same index in this process over the same rows in the same order.
    before = index_files(node.storage)
    index_param = milvus_pb2.IndexParam(
        collection_name=name, index_type=int(spec.kind),
        extra_params=[milvus_pb2.KeyValuePair(key="params", value=json.dumps(spec.build))],
    )
    reply, res.create_index_s = timed(lambda: stub.CreateIndex(index_param, timeout=CREATE_INDEX_TIMEOUT_S))
    check_status(reply, "CreateIndex")
    res.index_files = sorted((p.name, size) for p, size in index_files(node.storage).items() if p not in before)
    res.node_build_s = node_build_seconds(node, spec.name, segments)
    vectors = np.ascontiguousarray(ds.base[order])
    index: SegmentIndex
    index, res.local_build_s = timed(lambda: build_index(spec.kind, vectors, MetricType.L2, spec.build))
    res.effective = dict(index.effective_params)
    saved = scratch / f"{collection_name(spec)}.bin"
    index.save(saved)  # note: annoy re-maps the index onto the file it wrote, like the node's loaded copy
    res.local_file_bytes = saved.stat().st_size

    # b) search: preload, warm up, then the timed rounds of every point.
    check_status(stub.PreloadCollection(milvus_pb2.PreloadCollectionParam(collection_name=name),
                                        timeout=CALL_TIMEOUT_S), "PreloadCollection")
    live = LiveMask.build(res.rows, np.zeros(0, dtype=np.int64))
    nq = ds.queries.shape[0]
    single_q = [np.ascontiguousarray(ds.queries[i : i + 1]) for i in range(nq)]
    spans = batches(nq, BATCH_NQ)
    batched_q = [np.ascontiguousarray(ds.queries[a:b]) for a, b in spans]
    sizes = [b - a for a, b in spans]
    for point in spec.points:
        res.points.append(search_point(stub, index, live, order, name, point, single_q, batched_q, sizes,
                                       repeats))
    check_status(stub.DropCollection(milvus_pb2.CollectionName(collection_name=name), timeout=CALL_TIMEOUT_S),
                 "DropCollection")
    del index
    saved.unlink(missing_ok=True)
    return res


def search_point(stub: Any, index: SegmentIndex, live: LiveMask, order: np.ndarray, name: str, point: Point,
                 single_q: list[np.ndarray], batched_q: list[np.ndarray], sizes: list[int],
                 repeats: int) -> PointResult:
    out = PointResult(point)
    singles = [search_request(name, q, point.wire) for q in single_q]
    batched = [search_request(name, q, point.wire) for q in batched_q]

    def search(q: np.ndarray) -> Any:
        return index.search(q, K, live, point.params)

    for i in range(min(WARMUP_SINGLE, len(singles))):
        check_status(stub.Search(singles[i], timeout=CALL_TIMEOUT_S).status, "Search")
        search(single_q[i])
    for i in range(min(WARMUP_BATCHED, len(batched))):
        check_status(stub.Search(batched[i], timeout=CALL_TIMEOUT_S).status, "Search")
        search(batched_q[i])

    def local_ids(results: Sequence[Any]) -> np.ndarray:
        offs = np.concatenate([np.asarray(r.ids) for r in results])
        return np.where(offs >= 0, order[np.maximum(offs, 0)], -1)

    single_calls = [(search_call(stub, req), functools.partial(search, q)) for req, q in zip(singles, single_q,
                                                                                            strict=True)]
    batch_calls = [(search_call(stub, req), functools.partial(search, q)) for req, q in zip(batched, batched_q,
                                                                                           strict=True)]
    for r in range(repeats):
        first = r == 0
        g_single: list[Any] | None = [] if first else None
        l_single: list[Any] | None = [] if first else None
        g_batch: list[Any] | None = [] if first else None
        l_batch: list[Any] | None = [] if first else None
        mixed: list[float] = []
        g_lat, l_lat = paired(single_calls, g_single, l_single, ping_call(stub, name), mixed)
        g_bat, l_bat = paired(batch_calls, g_batch, l_batch)
        done = sum(sizes[: g_bat.shape[0]])
        g = (g_lat, g_lat.shape[0] / g_lat.sum(), done / g_bat.sum())
        loc = (l_lat, l_lat.shape[0] / l_lat.sum(), done / l_bat.sum())
        pings = ping_latencies(stub, name, len(single_q))
        out.rounds.append(PointRound(g[0], loc[0], g[1], loc[1], g[2], loc[2], pings, np.asarray(mixed)))
        if first:
            assert g_single is not None and l_single is not None and g_batch is not None and l_batch is not None
            out.grpc_batched_ids = np.concatenate([reply_ids(rp) for rp in g_batch])
            out.local_batched_ids = local_ids(l_batch)
            if len(g_single) == len(single_q) == len(l_single):
                out.grpc_single_ids = np.concatenate([reply_ids(rp) for rp in g_single])
                out.local_single_ids = local_ids(l_single)
    return out
