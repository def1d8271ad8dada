"""What TLS costs: a plaintext cluster and the same cluster with cluster mTLS (proxy to nodes) and edge TLS
(client to proxy), side by side in one run.

    flock /tmp/mishards-bench.lock python -m benchmarks.tls_bench [--rows 20000] [--dim 128] [--queries 1000]

Each cluster: a writer, one read node, a proxy (static membership, shared SQLite catalog), the same rows in two
segments, FLAT (exact). Measured through each proxy, rotating in blocks of 25 so that both see the same machine
load: nq=1 and nq=10 searches (k=10) on one long-lived channel (p50 and mean latency), and the cost of a new
connection (a fresh channel, its handshake and one ``Cmd("version")``). Prints the ratios TLS / plaintext.
Nothing is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from milvus_wire import milvus_pb2, milvus_pb2_grpc
from tests.support.certs import make_pki
from tests.support.cluster import LocalCluster

BLOCK = 25


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--rows", type=int, default=20_000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--queries", type=int, default=1000, help="searches per kind and cluster")
    p.add_argument("--connections", type=int, default=200, help="new connections per cluster")
    return p.parse_args(argv)


def rows(vectors: np.ndarray) -> list[Any]:
    return [milvus_pb2.RowRecord(float_data=v) for v in vectors.tolist()]


def load(stub: Any, data: np.ndarray) -> None:
    schema = milvus_pb2.CollectionSchema(collection_name="bench", dimension=data.shape[1], index_file_size=1024,
                                         metric_type=1)
    assert stub.CreateCollection(schema, timeout=60).error_code == 0
    for part in np.array_split(data, 2):
        reply = stub.Insert(milvus_pb2.InsertParam(collection_name="bench", row_record_array=rows(part)), timeout=120)
        assert reply.status.error_code == 0, reply.status
        assert stub.Flush(milvus_pb2.FlushParam(collection_name_array=["bench"]), timeout=120).error_code == 0


def timed(fn: Callable[[], None], n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def summary(name: str, plain: list[float], tls: list[float]) -> str:
    p50 = statistics.median(tls) / statistics.median(plain)
    mean = statistics.fmean(tls) / statistics.fmean(plain)
    ms = 1e3
    return (f"{name:<16} plaintext p50 {statistics.median(plain) * ms:7.3f} ms mean {statistics.fmean(plain) * ms:7.3f}"
            f" | TLS p50 {statistics.median(tls) * ms:7.3f} ms mean {statistics.fmean(tls) * ms:7.3f}"
            f" | TLS/plain p50 {p50:.2f}x mean {mean:.2f}x")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="tls-bench-"))
    cluster_pki, edge_pki = make_pki(root / "cluster", "cluster"), make_pki(root / "edge", "edge")
    node_cert = cluster_pki.server  # server usage only for nodes; the proxy presents the client certificate
    mtls = ["--cluster-tls-cert", str(node_cert.cert_path), "--cluster-tls-key", str(node_cert.key_path),
            "--cluster-tls-ca", str(cluster_pki.ca.cert_path)]
    proxy_tls = ["--cluster-tls-cert", str(cluster_pki.client.cert_path), "--cluster-tls-key",
                 str(cluster_pki.client.key_path), "--cluster-tls-ca", str(cluster_pki.ca.cert_path),
                 "--tls-cert", str(edge_pki.server.cert_path), "--tls-key", str(edge_pki.server.key_path)]
    plain = LocalCluster(root / "plain", readers=1, replication=1)
    secure = LocalCluster(root / "tls", readers=1, replication=1, node_args=mtls, proxy_args=proxy_tls)
    credentials = grpc.ssl_channel_credentials(edge_pki.ca.pem)
    options = [("grpc.max_receive_message_length", -1)]
    rng = np.random.default_rng(7)
    data = rng.random((args.rows, args.dim), dtype=np.float32)
    try:
        plain.start()
        secure.start()
        channels = {"plain": grpc.insecure_channel(plain.proxy.address, options=options),
                    "tls": grpc.secure_channel(secure.proxy.address, credentials, options=options)}
        stubs = {k: milvus_pb2_grpc.MilvusServiceStub(c) for k, c in channels.items()}
        for stub in stubs.values():
            load(stub, data)
        requests = {nq: [milvus_pb2.SearchParam(collection_name="bench", topk=10, query_record_array=rows(
            rng.random((nq, args.dim), dtype=np.float32))) for _ in range(BLOCK)] for nq in (1, 10)}

        def search(which: str, nq: int) -> Callable[[], None]:
            turn = iter(range(10**9))

            def call() -> None:
                reply = stubs[which].Search(requests[nq][next(turn) % BLOCK], timeout=60)
                assert reply.status.error_code == 0, reply.status
            return call

        def connect(which: str) -> Callable[[], None]:
            address = (plain if which == "plain" else secure).proxy.address

            def call() -> None:
                channel = (grpc.insecure_channel(address) if which == "plain"
                           else grpc.secure_channel(address, credentials))
                with channel:
                    reply = milvus_pb2_grpc.MilvusServiceStub(channel).Cmd(milvus_pb2.Command(cmd="version"),
                                                                          timeout=30)
                    assert reply.status.error_code == 0
            return call

        kinds: dict[str, tuple[Callable[[str], Callable[[], None]], int]] = {
            "search nq=1": (lambda w: search(w, 1), args.queries),
            "search nq=10": (lambda w: search(w, 10), args.queries),
            "new connection": (connect, args.connections),
        }
        print(f"tls_bench: {args.rows} rows x {args.dim} (FLAT, 2 segments), 1 writer + 1 reader + proxy per cluster; "
              f"TLS = edge TLS to the proxy + cluster mTLS proxy->nodes (P-256 certificates)", flush=True)
        for name, (make, n) in kinds.items():
            calls = {w: make(w) for w in ("plain", "tls")}
            for w in calls:  # warm up: connections, caches
                timed(calls[w], 5)
            samples: dict[str, list[float]] = {"plain": [], "tls": []}
            for _ in range(max(1, n // BLOCK)):
                for w in ("plain", "tls"):
                    samples[w] += timed(calls[w], BLOCK)
            print(summary(name, samples["plain"], samples["tls"]), flush=True)
        for channel in channels.values():
            channel.close()
    finally:
        secure.stop()
        plain.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
