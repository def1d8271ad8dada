"""The scale benchmark's measurements of one index kind: its build, then searches on a fresh read-only node."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.datasets import Dataset, recall_at
from benchmarks.index_node import collection_info, index_files, node_build_seconds, segment_names
from benchmarks.node_bench import batches, check_status, fmt_rate, percentiles
from benchmarks.scale_node import memory_of, records, running
from benchmarks.scale_results import KindFigures, Memory, PointFigures, recall_by_distance
from benchmarks.scale_specs import (
    BATCH_NQ,
    BUILD_THREADS,
    CALL_TIMEOUT_S,
    CREATE_INDEX_TIMEOUT_S,
    LOOP_CAP_S,
    SEARCH_THREADS,
    WARMUP,
    K,
    Spec,
    collection_name,
)
from milvus_wire import milvus_pb2
from tests.support.nodeproc import NodeProcess


def search_request(name: str, queries: np.ndarray, params: Mapping[str, int]) -> Any:
    return milvus_pb2.SearchParam(
        collection_name=name, query_record_array=records(queries), topk=K,
        extra_params=[milvus_pb2.KeyValuePair(key="params", value=json.dumps(dict(params)))],
    )


def reply_arrays(reply: Any) -> tuple[np.ndarray, np.ndarray]:
    check_status(reply.status, "Search")
    rows = int(reply.row_num)
    return (np.asarray(reply.ids, dtype=np.int64).reshape(rows, -1),
            np.asarray(reply.distances, dtype=np.float32).reshape(rows, -1))


# -- one kind --------------------------------------------------------------------------------------


def build(node: NodeProcess, spec: Spec) -> tuple[float, float | None, int, int, Memory]:
    """CreateIndex through gRPC: (wall seconds, the node's logged build seconds, index bytes, segments, memory)."""
    stub, name = node.stub(), collection_name(spec.data)
    before = set(index_files(node.storage))
    param = milvus_pb2.IndexParam(collection_name=name, index_type=int(spec.index_type),
                                  extra_params=[milvus_pb2.KeyValuePair(key="params", value=json.dumps(spec.build))])
    t0 = time.perf_counter()
    check_status(stub.CreateIndex(param, timeout=CREATE_INDEX_TIMEOUT_S), "CreateIndex")
    wall = time.perf_counter() - t0
    segs = segment_names(collection_info(stub, name))
    new = {p: size for p, size in index_files(node.storage).items() if p not in before}
    logged = node_build_seconds(node, spec.index_type.name, segs)
    return wall, logged, sum(new.values()), len(segs), memory_of(node)


def search_point(stub: Any, ds: Dataset, name: str, label: str, params: Mapping[str, int],
                 single: int) -> PointFigures:
    singles = [search_request(name, ds.queries[i : i + 1], params) for i in range(min(single, len(ds.queries)))]
    spans = batches(ds.queries.shape[0], BATCH_NQ)
    batched = [search_request(name, ds.queries[a:b], params) for a, b in spans]
    for req in singles[:WARMUP]:
        check_status(stub.Search(req, timeout=CALL_TIMEOUT_S).status, "Search")
    check_status(stub.Search(batched[0], timeout=CALL_TIMEOUT_S).status, "Search")
    lat: list[float] = []
    t_start = time.perf_counter()
    for req in singles:
        t0 = time.perf_counter()
        reply = stub.Search(req, timeout=CALL_TIMEOUT_S)
        lat.append(time.perf_counter() - t0)
        check_status(reply.status, "Search")
        if time.perf_counter() - t_start > LOOP_CAP_S:
            break
    qps1 = len(lat) / (time.perf_counter() - t_start)
    found_ids, found_dist = [], []
    t_start = time.perf_counter()
    for req in batched:
        ids, dist = reply_arrays(stub.Search(req, timeout=CALL_TIMEOUT_S))
        found_ids.append(ids)
        found_dist.append(dist)
    qps100 = ds.queries.shape[0] / (time.perf_counter() - t_start)
    if ds.metric == "HAMMING":
        recall = recall_by_distance(np.concatenate(found_dist), ds.gt_distances, K)
    else:
        recall = recall_at(np.concatenate(found_ids), ds.gt_ids, K)
    p50, _, p99 = percentiles(np.asarray(lat))
    return PointFigures(label, recall, p50, p99, qps1, qps100)


def run_kind(spec: Spec, ds: Dataset, storage: Path, workdir: Path, single: int) -> KindFigures:
    name = collection_name(spec.data)
    with running(workdir / f"build-{spec.name.lower()}", storage, BUILD_THREADS) as node:
        create_s, logged_s, index_bytes, segments, builder = build(node, spec)
    print(f"  {spec.name}: CreateIndex {create_s:.1f} s ({BUILD_THREADS} threads), index files "
          f"{index_bytes / 1e6:.1f} MB, {segments} segment(s)", flush=True)
    with running(workdir / f"search-{spec.name.lower()}", storage, SEARCH_THREADS, "ro") as node:
        stub = node.stub()
        base = memory_of(node)
        t0 = time.perf_counter()
        check_status(stub.PreloadCollection(milvus_pb2.PreloadCollectionParam(collection_name=name),
                                            timeout=CALL_TIMEOUT_S), "PreloadCollection")
        preload_s = time.perf_counter() - t0
        preloaded = memory_of(node)
        points = []
        for label, params in spec.points:
            pt = search_point(stub, ds, name, label, params, single)
            print(f"    {label:<14} recall@10 {pt.recall:.3f}  nq=1 p50 {pt.p50_ms:.2f} ms p99 {pt.p99_ms:.2f} ms "
                  f"QPS {fmt_rate(pt.qps1)}  nq=100 QPS {fmt_rate(pt.qps100)}", flush=True)
            points.append(pt)
        searched = memory_of(node)
    raw = ds.rows * (ds.dim // 8 if spec.data == "binary" else ds.dim * 4)
    notes = {"load_average": os.getloadavg()[0], "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
             "single_queries": min(single, len(ds.queries)), "queries": int(ds.queries.shape[0])}
    return KindFigures(spec.data, spec.name, ds.rows, ds.dim, raw, segments, dict(spec.build), create_s, logged_s,
                       index_bytes, preload_s, base, preloaded, searched, tuple(points), notes, builder)
