"""The proxy benchmark's cluster: a writer, two read-only nodes and two proxies on loopback, and its data.

Proxy A knows the writer and read node 1, proxy B the writer and both read nodes (two replicas per segment).
The constants and :func:`check` are shared with the other cluster benchmarks (saturation, worker choice).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from benchmarks.datasets import Dataset
from benchmarks.node_bench import row_records
from milvus_wire import milvus_pb2, milvus_pb2_grpc
from tests.support.nodeproc import CHANNEL_OPTIONS, NodeProcess
from tests.support.proxyproc import ProxyProcess
from tests.support.waiting import free_ports

COLLECTION = "proxy_bench"
K = 10
BATCH_NQ = 100
INSERT_BATCH = 10_000
READER_ARGS = ("--omp-threads", "1", "--search-threads", "1")
NODE_ENV = {"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
TIMEOUT_S = 120.0


def check(status: Any, what: str) -> None:
    if status.error_code != 0:
        raise RuntimeError(f"{what} failed: error_code {status.error_code}: {status.reason}")


def search_request(queries: np.ndarray) -> Any:
    return milvus_pb2.SearchParam(collection_name=COLLECTION, query_record_array=row_records(queries), topk=K)


def result_ids(reply: Any, nq: int) -> np.ndarray:
    check(reply.status, "Search")
    return np.array(reply.ids, dtype=np.int64).reshape(nq, -1)


@dataclass
class Cluster:
    writer: NodeProcess
    readers: list[NodeProcess]
    proxy_one: ProxyProcess  # writer + read node 1
    proxy_two: ProxyProcess  # writer + both read nodes
    channels: list[grpc.Channel] = field(default_factory=list)

    def stub(self, address: str) -> Any:
        channel = grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
        self.channels.append(channel)
        return milvus_pb2_grpc.MilvusServiceStub(channel)

    def stop(self) -> None:
        for channel in self.channels:
            channel.close()
        for proxy in (self.proxy_one, self.proxy_two):
            proxy.stop()
        for node in (self.writer, *self.readers):
            node.stop()


def start_cluster(root: Path) -> Cluster:
    meta = f"sqlite:///{root / 'meta.sqlite'}"
    storage = root / "shared"
    ports = free_ports(3)
    addrs = [f"127.0.0.1:{p}" for p in ports]
    writer = NodeProcess(root / "w", ["--role", "rw", "--port", str(ports[0]), "--auto-flush-interval", "0"],
                         meta_uri=meta, storage=storage, env=NODE_ENV)
    readers = [NodeProcess(root / f"r{i}", ["--role", "ro", "--port", str(ports[i + 1]), *READER_ARGS],
                           meta_uri=meta, storage=storage, env=NODE_ENV) for i in range(2)]
    one = ProxyProcess(root / "p1", f"static://{addrs[0]}=rw,{addrs[1]}=ro", ["--meta-uri", meta])
    two = ProxyProcess(root / "p2", f"static://{addrs[0]}=rw,{addrs[1]}=ro,{addrs[2]}=ro",
                       ["--meta-uri", meta, "--replication", "2"])
    cluster = Cluster(writer, readers, one, two)
    try:
        for node in (writer, *readers):
            node.start()
        one.start()
        two.start()
    except BaseException:
        cluster.stop()
        raise
    return cluster


def load_data(stub: Any, ds: Dataset, segments: int) -> None:
    size_mb = max(1, int(ds.base.nbytes / segments / 2**20 * 1.5))  # a segment holds 1/segments, none merge
    check(stub.CreateCollection(milvus_pb2.CollectionSchema(
        collection_name=COLLECTION, dimension=ds.dim, index_file_size=size_mb, metric_type=1)), "Create")
    ids = np.arange(ds.rows, dtype=np.int64)
    bounds = np.linspace(0, ds.rows, segments + 1).astype(int)
    for lo, hi in itertools.pairwise(bounds):
        for s in range(lo, hi, INSERT_BATCH):
            e = min(hi, s + INSERT_BATCH)
            check(stub.Insert(milvus_pb2.InsertParam(collection_name=COLLECTION, row_record_array=row_records(
                ds.base[s:e]), row_id_array=ids[s:e].tolist()), timeout=TIMEOUT_S).status, "Insert")
        check(stub.Flush(milvus_pb2.FlushParam(collection_name_array=[COLLECTION]), timeout=TIMEOUT_S), "Flush")
