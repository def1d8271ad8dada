"""Freshness: how long after an acknowledged insert (or delete) a search sees it, at default settings.

    python -m benchmarks.freshness_bench [--probes 100] [--setups standalone,cluster] [--flush-probes 60]

Two setups, one after the other, each on loopback with its own temporary folder:

* ``standalone``: one standalone node (default settings: timed flush every 1 s), searched directly;
* ``cluster``: a writer and two read nodes (replication 2, static membership, shared SQLite catalog and
  storage) behind a proxy (strong consistency, the default); every request goes through the proxy, which
  picks the read node of each segment.

The collection gets ``--seed-rows`` rows first, then a steady background insert load (``--load-batch`` rows
every ``--load-period`` seconds) for the whole run. Each probe waits a random pause (up to the flush interval,
so acknowledgements fall anywhere in the flush cycle), inserts one distinctive vector under a known id and, in
the same moment, deletes the previous probe's vector; then one search (nq 2, top 1: both probe vectors) is
sent again and again, ``--poll`` seconds apart, until the new probe is the top hit of its own vector and the
old one is not the top hit of its. Each time counts from the acknowledgement of the write to the reply of the
first search that showed it.

"After Flush" (cluster): ``--flush-probes`` times, insert a probe, ``Flush`` through the proxy, then search
in turn (i) once through the proxy, (ii) each read node directly with the proxy's header
(``mishards-min-revision``, the catalog revision as the proxy reads it), or (iii) each read node directly
without it (informational: what a node has learnt by itself in the moment since). A search that does not find
the probe is a miss.

Nothing is asserted: PASS / MISS lines compare the p99 with the target (<= 1 s) and after-Flush misses with 0.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from benchmarks.node_bench import lscpu, percentiles, protobuf_text, row_records
from coordinator.catalog import Catalog
from coordinator.headers import MIN_REVISION_HEADER
from milvus_wire import milvus_pb2, milvus_pb2_grpc
from tests.support.cluster import LocalCluster
from tests.support.nodeproc import CHANNEL_OPTIONS, NodeProcess

COLLECTION = "freshness_bench"
PROBE_ID_BASE = 1 << 40  # probe ids; background rows count up from 1
PROBE_SCALE = 10.0  # probe vectors are 10x the spread of the background rows: never a background row's twin
GIVE_UP_S = 10.0  # a probe not seen after this long counts as this long
TARGET_P99_S = 1.0


def check(status: Any, what: str) -> None:
    if status.error_code != 0:
        raise RuntimeError(f"{what} failed: error_code {status.error_code}: {status.reason}")


def insert(stub: Any, ids: np.ndarray, vectors: np.ndarray) -> None:
    reply = stub.Insert(milvus_pb2.InsertParam(collection_name=COLLECTION, row_record_array=row_records(vectors),
                                               row_id_array=ids.tolist()), timeout=60)
    check(reply.status, "Insert")


def top_ids(stub: Any, queries: np.ndarray, metadata: Sequence[tuple[str, str]] = ()) -> list[int]:
    """The top hit's id of each query (-1 when the collection has nothing flushed yet)."""
    reply = stub.Search(milvus_pb2.SearchParam(collection_name=COLLECTION, query_record_array=row_records(queries),
                                               topk=1), timeout=30, metadata=tuple(metadata))
    if reply.status.error_code != 0:
        if "empty" in reply.status.reason:
            return [-1] * len(queries)
        check(reply.status, "Search")
    ids = list(reply.ids)
    width = len(ids) // max(1, len(queries))
    return [ids[i * width] if width else -1 for i in range(len(queries))]


@dataclass
class Background:
    """A steady insert load on its own channel until stopped."""

    address: str
    dim: int
    batch: int
    period: float
    next_id: int = 1
    failures: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="background-load", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        rng = np.random.default_rng(7)
        with grpc.insecure_channel(self.address, options=CHANNEL_OPTIONS) as channel:
            stub = milvus_pb2_grpc.MilvusServiceStub(channel)
            while not self._stop.wait(self.period):
                ids = np.arange(self.next_id, self.next_id + self.batch, dtype=np.int64)
                try:
                    insert(stub, ids, rng.standard_normal((self.batch, self.dim), dtype=np.float32))
                    self.next_id += self.batch
                except (grpc.RpcError, RuntimeError):
                    self.failures += 1

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)


@dataclass
class Probes:
    inserted: list[float] = field(default_factory=list)  # seconds from acknowledgement to first seen
    deleted: list[float] = field(default_factory=list)  # seconds from acknowledgement to first gone
    polls: int = 0
    gave_up: int = 0
    search_seconds: list[float] = field(default_factory=list)  # each poll's search, call to reply


def probe_round(stub: Any, rng: np.random.Generator, dim: int, count: int, poll: float, pause: float,
                out: Probes) -> None:
    """``count`` probes: each inserts a new probe vector and deletes the previous one, then polls."""
    previous: tuple[int, np.ndarray] | None = None
    for i in range(count + 1):
        time.sleep(float(rng.uniform(0.0, pause)))  # phase jitter: acknowledgements anywhere in the flush cycle
        pid = PROBE_ID_BASE + i
        vector = (rng.standard_normal(dim) * PROBE_SCALE).astype(np.float32)
        insert(stub, np.array([pid], dtype=np.int64), vector[None, :])
        acked = time.perf_counter()
        if previous is not None:
            reply = stub.DeleteByID(milvus_pb2.DeleteByIDParam(collection_name=COLLECTION,
                                                               id_array=[previous[0]]), timeout=60)
            check(reply, "DeleteByID")
        delete_acked = time.perf_counter()
        queries = np.stack([vector, previous[1] if previous is not None else vector])
        seen = gone = None
        while seen is None or (previous is not None and gone is None):
            sent = time.perf_counter()
            got = top_ids(stub, queries)
            now = time.perf_counter()
            out.search_seconds.append(now - sent)
            out.polls += 1
            if seen is None and got[0] == pid:
                seen = now - acked
            if previous is not None and gone is None and got[1] != previous[0]:
                gone = now - delete_acked
            if now - acked > GIVE_UP_S:
                out.gave_up += 1
                break
            time.sleep(poll)
        if i < count:  # the last round only deletes (its insert is not timed, so counts match)
            out.inserted.append(seen if seen is not None else GIVE_UP_S)
        if previous is not None:
            out.deleted.append(gone if gone is not None else GIVE_UP_S)
        previous = (pid, vector)


@dataclass
class FlushMisses:
    searches: dict[str, int] = field(default_factory=dict)
    misses: dict[str, int] = field(default_factory=dict)

    def count(self, where: str, found: bool) -> None:
        self.searches[where] = self.searches.get(where, 0) + 1
        self.misses[where] = self.misses.get(where, 0) + (0 if found else 1)


def after_flush_round(proxy: Any, readers: Sequence[Any], revision: Callable[[], int], rng: np.random.Generator,
                      dim: int, count: int, first_id: int) -> FlushMisses:
    out = FlushMisses()
    for i in range(count):
        pid = first_id + i
        vector = (rng.standard_normal(dim) * PROBE_SCALE).astype(np.float32)
        insert(proxy, np.array([pid], dtype=np.int64), vector[None, :])
        check(proxy.Flush(milvus_pb2.FlushParam(collection_name_array=[COLLECTION]), timeout=60), "Flush")
        query = vector[None, :]
        mode = i % 3  # one kind of search per round, the first after the Flush (a search makes nodes catch up)
        if mode == 0:
            out.count("through the proxy", top_ids(proxy, query)[0] == pid)
        elif mode == 1:
            header = ((MIN_REVISION_HEADER, str(revision())),)
            for n, reader in enumerate(readers, 1):
                out.count(f"read node {n}, proxy's header", top_ids(reader, query, header)[0] == pid)
        else:
            for n, reader in enumerate(readers, 1):
                out.count(f"read node {n}, no header (informational)", top_ids(reader, query)[0] == pid)
    return out


def prepare(stub: Any, dim: int, rows: int) -> int:
    check(stub.CreateCollection(milvus_pb2.CollectionSchema(collection_name=COLLECTION, dimension=dim,
                                                            index_file_size=1024, metric_type=1), timeout=60),
          "CreateCollection")
    rng = np.random.default_rng(3)
    for start in range(0, rows, 10_000):
        stop = min(rows, start + 10_000)
        insert(stub, np.arange(start + 1, stop + 1, dtype=np.int64),
               rng.standard_normal((stop - start, dim), dtype=np.float32))
    check(stub.Flush(milvus_pb2.FlushParam(collection_name_array=[COLLECTION]), timeout=120), "Flush")
    return rows + 1


def stats(name: str, values: Sequence[float]) -> str:
    arr = np.asarray(values, dtype=np.float64)
    p50, p95, p99 = percentiles(arr)
    return (f"{name:<28} n={arr.size:<4} p50 {p50:7.0f} ms   p95 {p95:7.0f} ms   p99 {p99:7.0f} ms   "
            f"max {arr.max() * 1e3:7.0f} ms   {'PASS' if p99 <= TARGET_P99_S * 1e3 else 'MISS'} (p99 <= 1 s)")


def search_stats(values: Sequence[float]) -> str:
    """The probes' searches while rows stream in and timed flushes and merges publish new segments (no target:
    a search that has to load a segment the flush or merge left shows here)."""
    arr = np.asarray(values, dtype=np.float64) * 1e3
    p50, p99, p999 = np.percentile(arr, [50, 99, 99.9])
    return (f"{'search while ingesting':<28} n={arr.size:<4} p50 {p50:7.2f} ms   p99 {p99:7.2f} ms   "
            f"p99.9 {p999:7.2f} ms   max {arr.max():7.2f} ms   (nq 2, top 1; not a target)")


def run_setup(kind: str, args: argparse.Namespace, root: Path) -> list[str]:
    rng = np.random.default_rng(11)
    cluster: LocalCluster | None = None
    node: NodeProcess | None = None
    if kind == "cluster":
        cluster = LocalCluster(root / kind, readers=2, replication=2, writer_args=()).start()
        address, stub = cluster.proxy.address, cluster.stub()
    else:
        node = NodeProcess(root / kind, ["--role", "standalone"]).start()
        address, stub = node.address, node.stub()
    load: Background | None = None
    try:
        next_id = prepare(stub, args.dim, args.seed_rows)
        load = Background(address, args.dim, args.load_batch, args.load_period, next_id=next_id)
        load.start()
        probes = Probes()
        started = time.perf_counter()
        probe_round(stub, rng, args.dim, args.probes, args.poll, args.pause, probes)
        took = time.perf_counter() - started
        lines = [f"-- {kind}: {'through the proxy (R=2, 2 read nodes)' if cluster else 'node direct'}; "
                 f"{args.probes} probes in {took:.0f} s, {probes.polls} searches, background rows "
                 f"{load.next_id - next_id}, load failures {load.failures}, probes given up {probes.gave_up}",
                 stats("insert -> found", probes.inserted), stats("delete -> gone", probes.deleted),
                 search_stats(probes.search_seconds)]
        if cluster is not None and args.flush_probes:
            catalog = Catalog(cluster.meta_uri)
            try:
                misses = after_flush_round(stub, [r.stub() for r in cluster.readers], catalog.revision, rng,
                                           args.dim, args.flush_probes, PROBE_ID_BASE + (1 << 20))
            finally:
                catalog.close()
            for where, n in misses.searches.items():
                missed = misses.misses[where]
                verdict = "" if "informational" in where else ("   PASS" if missed == 0 else "   MISS")
                lines.append(f"after Flush, {where:<42} {missed} / {n} missed{verdict}")
        return lines
    finally:
        if load is not None:
            load.stop()
        if cluster is not None:
            cluster.stop()
        if node is not None:
            node.stop()


def header(args: argparse.Namespace) -> list[str]:
    cpu = lscpu()
    return [
        "== Mishards freshness benchmark ==",
        f"command : {shlex.join(sys.orig_argv)}   (cwd {os.getcwd()})",
        f"machine : {cpu.get('Model name', platform.processor() or 'unknown')}, {cpu.get('CPU(s)', os.cpu_count())} "
        f"CPUs; load average {os.getloadavg()[0]:.2f} at start",
        f"software: python {platform.python_version()}, grpcio {grpc.__version__}, {protobuf_text()}",
        f"data    : {args.seed_rows} x {args.dim} float32 first, then {args.load_batch} rows every "
        f"{args.load_period} s; probes every 0-{args.pause} s, searches {args.poll * 1e3:.0f} ms apart; "
        f"default node settings (auto_flush_interval 1 s, catalog_refresh_interval 0.2 s)",
    ]


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.freshness_bench", description=__doc__.split("\n")[0])
    p.add_argument("--probes", type=int, default=100, help="insert and delete probes per setup")
    p.add_argument("--setups", default="standalone,cluster", help="comma-separated: standalone, cluster")
    p.add_argument("--flush-probes", type=int, default=60, help="insert + Flush + search rounds (cluster)")
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--seed-rows", type=int, default=20_000)
    p.add_argument("--load-batch", type=int, default=50, help="background rows per insert")
    p.add_argument("--load-period", type=float, default=0.1, help="seconds between background inserts")
    p.add_argument("--poll", type=float, default=0.002, help="seconds between searches of one probe")
    p.add_argument("--pause", type=float, default=1.0, help="most seconds of random pause before a probe")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    print("\n".join(header(args)), flush=True)
    with tempfile.TemporaryDirectory(prefix="mishards-freshness-") as tmp:
        for kind in [s.strip() for s in args.setups.split(",") if s.strip()]:
            if kind not in ("standalone", "cluster"):
                raise SystemExit(f"unknown setup {kind!r}")
            print("\n".join(run_setup(kind, args, Path(tmp))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
