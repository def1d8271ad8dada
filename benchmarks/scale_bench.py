"""One node at scale (1M x 128 float, 1M x 256-bit binary): insert rate, index builds, memory, QPS and recall.

    python -m benchmarks.scale_bench [--rows 1000000] [--kinds FLAT,IVF_FLAT,...] [--single 300]
    python -m benchmarks.scale_bench --rows 1000000 --table      # print every saved result, run nothing

Per data set (float kinds: FLAT, IVF_FLAT, IVF_SQ8, IVF_PQ, HNSW, ANNOY on L2; binary kinds: BIN_FLAT and
BIN_IVF_FLAT on HAMMING), one collection (index_file_size 1024 MB) in a storage folder kept under
``--workdir`` between invocations, so that a later invocation builds the next kinds on the same rows:

a) Insert (first invocation only): the rows in batches of 10,000 with user ids 0..N-1; vectors/s over the
   Insert calls (requests built outside the timer), then Flush and the wait for background merges; segment
   count and bytes on storage per kind of file.
b) Per kind, the *build node* (``OMP_NUM_THREADS=2``, ``--omp-threads 2``: both cores build) runs
   ``CreateIndex`` (wall time; it blocks until the index is built, written and committed); the new
   ``index-*`` files are measured. The node is stopped.
c) A fresh read-only *search node* on the same storage (``--role ro``, like the chart's readers: it replays
   no log; ``OMP_NUM_THREADS=1``, ``--omp-threads 1``: one thread per query, as the chart's default) is
   measured before and after ``PreloadCollection`` and after the searches: VmRSS, RssAnon / RssFile from
   /proc/<pid>/status and Pss / Pss_Anon / Pss_File from smaps_rollup (``anon`` is private memory, ``file``
   the mapped index files and raw vectors, i.e. page cache).
d) Per search point: nq=1 one call at a time over the first ``--single`` queries (p50 / p99, QPS), then nq=100
   over every query (QPS) and recall@10 of those results (ids for float; tie-tolerant by distance for
   Hamming, where many rows share the 10th distance).

Each kind's figures are written to ``--results`` as JSON, so kinds can be run in separate invocations (each
under the machine's bench lock) and ``--table`` prints them all. Nodes are stopped by their process id.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import shutil
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.datasets import CACHE_DIR, Dataset, load_binary, load_sift_like, recall_at
from benchmarks.index_node import collection_info, index_files, node_build_seconds, segment_names
from benchmarks.node_bench import batches, check_status, fmt_rate, lscpu, median, percentiles
from benchmarks.scale_results import (
    InsertFigures,
    KindFigures,
    Memory,
    PointFigures,
    read_memory,
    read_results,
    recall_by_distance,
    result_path,
    table_lines,
    write_result,
)
from coordinator.model import IndexType, MetricType
from milvus_wire import milvus_pb2
from tests.support.nodeproc import NodeProcess

K = 10
BATCH_NQ = 100
INSERT_BATCH = 10_000
INDEX_FILE_SIZE_MB = 1024
CACHE_SIZE = "16GB"  # every kind fits: the cache never evicts during the measurement
BUILD_THREADS = 2
SEARCH_THREADS = 1
CALL_TIMEOUT_S = 600.0
CREATE_INDEX_TIMEOUT_S = 3 * 3600.0
SETTLE_TIMEOUT_S = 600.0
LOOP_CAP_S = 60.0
WARMUP = 20
DEFAULT_WORKDIR = CACHE_DIR / "scale"

FLOAT_KINDS = ("FLAT", "IVF_FLAT", "IVF_SQ8", "IVF_PQ", "HNSW", "ANNOY")
BINARY_KINDS = ("BIN_FLAT", "BIN_IVF_FLAT")
KIND_ORDER = FLOAT_KINDS + BINARY_KINDS


@dataclass(frozen=True, slots=True)
class Spec:
    name: str
    data: str  # "float" or "binary"
    index_type: IndexType
    build: Mapping[str, int]
    points: tuple[tuple[str, Mapping[str, int]], ...]


def specs(rows: int) -> dict[str, Spec]:
    """Build and search parameters; float IVF uses nlist = 4 * sqrt(rows) (4000 at 1M), as index_bench.

    Binary IVF uses nlist = sqrt(rows) (1000 at 1M): faiss trains it with k-means over the bits as 256
    floats, twice the work per centroid of the 128-d float IVF, so nlist 4000 would take about 9 minutes
    at 1M with 2 threads (twice IVF_FLAT's 276 s measured here).
    """
    nlist = round(4 * math.sqrt(rows))
    probes = tuple((f"nprobe={p}", {"nprobe": p}) for p in (4, 16, 64))
    exact: tuple[tuple[str, Mapping[str, int]], ...] = (("exact", {}),)
    return {
        "FLAT": Spec("FLAT", "float", IndexType.FLAT, {}, exact),
        "IVF_FLAT": Spec("IVF_FLAT", "float", IndexType.IVF_FLAT, {"nlist": nlist}, probes),
        "IVF_SQ8": Spec("IVF_SQ8", "float", IndexType.IVF_SQ8, {"nlist": nlist}, probes),
        "IVF_PQ": Spec("IVF_PQ", "float", IndexType.IVF_PQ, {"nlist": nlist, "m": 16}, probes),
        "HNSW": Spec("HNSW", "float", IndexType.HNSW, {"M": 16, "efConstruction": 200},
                     tuple((f"ef={e}", {"ef": e}) for e in (32, 64, 128))),
        "ANNOY": Spec("ANNOY", "float", IndexType.ANNOY, {"n_trees": 16},
                      tuple((f"search_k={s}", {"search_k": s}) for s in (1000, 10000))),
        "BIN_FLAT": Spec("BIN_FLAT", "binary", IndexType.FLAT, {}, exact),
        "BIN_IVF_FLAT": Spec("BIN_IVF_FLAT", "binary", IndexType.IVF_FLAT, {"nlist": round(math.sqrt(rows))},
                             probes),
    }


def node_env(threads: int) -> dict[str, str]:
    return {"OMP_NUM_THREADS": str(threads), "OMP_WAIT_POLICY": "PASSIVE"}


def node_args(threads: int, role: str = "standalone") -> list[str]:
    return ["--role", role, "--omp-threads", str(threads), "--cache-size", CACHE_SIZE]


def collection_name(data: str) -> str:
    return f"scale_{data}"


# -- requests --------------------------------------------------------------------------------------


def records(vectors: np.ndarray) -> list[Any]:
    if vectors.dtype == np.uint8:
        return [milvus_pb2.RowRecord(binary_data=row.tobytes()) for row in vectors]
    return [milvus_pb2.RowRecord(float_data=row) for row in vectors.tolist()]


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


# -- nodes -----------------------------------------------------------------------------------------


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


# -- main ------------------------------------------------------------------------------------------


def header(args: argparse.Namespace) -> list[str]:
    cpu = lscpu()
    return [
        "== Mishards scale benchmark ==",
        f"command : {shlex.join(sys.orig_argv)}   (cwd {os.getcwd()})",
        f"machine : {cpu.get('Model name', platform.processor())}, {cpu.get('CPU(s)', os.cpu_count())} CPUs, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB; load average "
        f"{os.getloadavg()[0]:.2f} at start",
        f"nodes   : build: OMP_NUM_THREADS={BUILD_THREADS} python -m node {' '.join(node_args(BUILD_THREADS))}; "
        f"search: OMP_NUM_THREADS={SEARCH_THREADS} python -m node {' '.join(node_args(SEARCH_THREADS, 'ro'))} "
        "(other settings default); loopback",
        f"data    : {args.rows:,} rows, index_file_size {INDEX_FILE_SIZE_MB} MB, insert batches of {INSERT_BATCH:,}, "
        f"k={K}, nq=1 over {args.single} queries, nq={BATCH_NQ} over {args.queries}; storage under {args.workdir}",
    ]


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.scale_bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--queries", type=int, default=1_000, help="held-out queries (nq=100 calls and recall)")
    p.add_argument("--single", type=int, default=300, help="queries sent one at a time (latency, nq=1 QPS)")
    p.add_argument("--kinds", default="FLAT,IVF_FLAT", help=f"comma-separated, from {','.join(KIND_ORDER)}")
    p.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help="node storage, kept between runs")
    p.add_argument("--results", type=Path, default=None, help="result JSON folder (default WORKDIR/results)")
    p.add_argument("--table", action="store_true", help="only print the saved results")
    p.add_argument("--reinsert", action="store_true", help="drop and insert the rows again")
    args = p.parse_args(argv)
    kinds = [k.strip().upper() for k in args.kinds.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in KIND_ORDER]
    if unknown:
        p.error(f"--kinds: unknown {', '.join(unknown)}; choose from {', '.join(KIND_ORDER)}")
    args.kinds = list(dict.fromkeys(kinds))
    args.results = args.results or args.workdir / "results"
    return args


def print_table(args: argparse.Namespace) -> None:
    inserts, kinds = read_results(args.results, args.rows)
    print(f"-- saved results in {args.results} ({args.rows:,} rows; memory = search node growth over its start, "
          "after the searches; RSS/raw = that growth / raw vector bytes)")
    print("\n".join(table_lines(inserts, kinds, KIND_ORDER)), flush=True)


def run_data(args: argparse.Namespace, data: str, kinds: Sequence[Spec]) -> None:
    ds = load_binary(args.rows, 256, args.queries) if data == "binary" else load_sift_like(args.rows, 128, args.queries)
    storage = args.workdir / f"{data}-{args.rows}" / "storage"
    workdir = args.workdir / f"{data}-{args.rows}"
    if args.reinsert and storage.exists():
        shutil.rmtree(storage)
    with running(workdir / "build", storage, BUILD_THREADS) as node:
        if not has_rows(node.stub(), collection_name(data), ds.rows):
            ins = insert_all(node, ds, data)
            write_result(result_path(args.results, data, args.rows, "insert"), ins)
            print(f"  insert {data}: {fmt_rate(ins.vectors_per_s)} vectors/s, flush {ins.flush_s:.1f} s, "
                  f"{ins.segments} segment(s)", flush=True)
    for spec in kinds:
        t0 = time.perf_counter()
        res = run_kind(spec, ds, storage, workdir, args.single)
        write_result(result_path(args.results, data, args.rows, spec.name), res)
        print(f"  ({spec.name} took {time.perf_counter() - t0:.0f} s; search node grew by "
              f"{res.loaded.rss / 1e6:,.0f} MB, median recall {median([p.recall for p in res.points]):.3f})",
              flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if not args.table:
        print("\n".join(header(args)), flush=True)
        all_specs = specs(args.rows)
        chosen = [all_specs[k] for k in args.kinds]
        for data in ("float", "binary"):
            group = [s for s in chosen if s.data == data]
            if group:
                run_data(args, data, group)
    print_table(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
