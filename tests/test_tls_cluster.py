"""Cluster mTLS and edge TLS on a real cluster: a writer and two read nodes that accept only clients with a
certificate from the cluster CA, and a proxy that presents its cluster certificate when it fans out and serves
its clients over TLS (gRPC and REST). One cluster for the module."""

from __future__ import annotations

import http.client
import json
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from coordinator.catalog import Catalog
from coordinator.model import SEARCHABLE_STATES
from coordinator.placement import Placement
from milvus_wire import milvus_pb2, milvus_pb2_grpc
from tests.support.certs import Issued, TestPki, issue, make_ca, make_pki
from tests.support.cluster import LocalCluster
from tests.support.nodeproc import NodeProcess
from tests.support.requests import assert_search_exact, create, flush, insert_ok, ok, search, unique_name
from tests.support.scrape import scrape, value

DIM = 8
METRIC_L2 = 1
# Rows per flush: more than one 1 MB segment (index_file_size 1), so that background merges, which only join
# segments below the size, cannot fold the flushed segments back into one reader's share.
FLUSH_ROWS = 40_000


class Pki:
    """The module's certificates: the cluster's, a stranger's (another CA) and the proxy's edge certificate."""

    def __init__(self, root: Path) -> None:
        self.cluster = make_pki(root / "cluster", "cluster")  # server: every node; client: the proxy
        self.node = issue(self.cluster.ca, root / "cluster", "node")  # server and client (node to node)
        self.stranger: TestPki = make_pki(root / "stranger", "stranger")
        self.edge: TestPki = make_pki(root / "edge", "edge")

    def cluster_args(self, own: Issued) -> list[str]:
        return ["--cluster-tls-cert", str(own.cert_path), "--cluster-tls-key", str(own.key_path),
                "--cluster-tls-ca", str(self.cluster.ca.cert_path)]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def cluster(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    edge = ["--tls-cert", str(pki.edge.server.cert_path), "--tls-key", str(pki.edge.server.key_path)]
    started = LocalCluster(tmp_path_factory.mktemp("tlscluster"), readers=2, replication=1,
                           node_args=pki.cluster_args(pki.node), reader_args=["--metrics-port", "-1"],
                           proxy_args=[*pki.cluster_args(pki.cluster.client), *edge, "--health-port", "-1"])
    started.proxy.http = True
    started.start()
    try:
        yield started
    finally:
        started.stop()


def _health(channel: grpc.Channel) -> int:
    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
    return int(reply.status)


def _refused(channel: grpc.Channel) -> grpc.StatusCode:
    with channel, pytest.raises(grpc.RpcError) as caught:
        _health(channel)
    return caught.value.code()


def _mtls_channel(address: str, ca: Path, client: Issued | None) -> grpc.Channel:
    credentials = grpc.ssl_channel_credentials(
        ca.read_bytes(), client.key_pem if client else None, client.pem if client else None)
    return grpc.secure_channel(address, credentials)


def test_node_accepts_a_client_with_a_cluster_certificate(cluster: LocalCluster, pki: Pki) -> None:
    for node in cluster.nodes:
        with _mtls_channel(node.address, pki.cluster.ca.cert_path, pki.cluster.client) as channel:
            assert _health(channel) == health_pb2.HealthCheckResponse.SERVING


def test_node_refuses_a_plaintext_client(cluster: LocalCluster) -> None:
    assert _refused(grpc.insecure_channel(cluster.readers[0].address)) == grpc.StatusCode.UNAVAILABLE


def test_node_refuses_a_tls_client_without_a_certificate(cluster: LocalCluster, pki: Pki) -> None:
    channel = _mtls_channel(cluster.writer.address, pki.cluster.ca.cert_path, None)
    assert _refused(channel) == grpc.StatusCode.UNAVAILABLE


def test_node_refuses_a_client_certificate_from_another_ca(cluster: LocalCluster, pki: Pki) -> None:
    channel = _mtls_channel(cluster.writer.address, pki.cluster.ca.cert_path, pki.stranger.client)
    assert _refused(channel) == grpc.StatusCode.UNAVAILABLE


def test_proxy_refuses_plaintext_grpc(cluster: LocalCluster) -> None:
    assert _refused(grpc.insecure_channel(cluster.proxy.address)) == grpc.StatusCode.UNAVAILABLE


def test_proxy_health_port_is_plaintext_and_serves_health_only(cluster: LocalCluster) -> None:
    port = json.loads((cluster.proxy.workdir / "proxy-ready.json").read_text())["health_port"]
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        assert _health(channel) == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as caught:
            milvus_pb2_grpc.MilvusServiceStub(channel).Cmd(milvus_pb2.Command(cmd="version"), timeout=10)
        assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED


def _reader_shares(cluster: LocalCluster, name: str) -> list[int]:
    """How many of the collection's segments each read node serves (replication 1: one reader per segment)."""
    catalog = Catalog(cluster.meta_uri)
    try:
        snap = catalog.snapshot()
        segments = [seg.id for seg in snap.segments_of(snap.collections[name].id) if seg.state in SEARCHABLE_STATES]
    finally:
        catalog.close()
    placement = Placement.of(sorted(cluster.addresses[1:]), r=1)
    return [len(placement.share(address, segments)) for address in cluster.addresses[1:]]


def _searches_served(node: NodeProcess) -> float:
    return value(scrape(node.metrics_port), "mishards_node_request_seconds_count", method="SearchInFiles")


def test_search_through_the_proxy_over_tls_fans_out_over_mtls(cluster: LocalCluster, pki: Pki) -> None:
    """A client over edge TLS; the proxy's writes, and its fan-out over cluster mTLS to both read nodes (a full
    segment per flush, until placement gives each reader some): both serve, and the result is the exact top-k."""
    name = unique_name("tls")
    rng = np.random.default_rng(16)
    with _mtls_channel(cluster.proxy.address, pki.edge.ca.cert_path, None) as channel:
        stub = milvus_pb2_grpc.MilvusServiceStub(channel)
        ok(create(stub, name, DIM, METRIC_L2, ifs=1))
        parts: list[np.ndarray] = []
        ids: list[np.ndarray] = []
        while len(parts) < 3 or (min(_reader_shares(cluster, name)) == 0 and len(parts) < 16):
            parts.append(rng.random((FLUSH_ROWS, DIM), dtype=np.float32))
            ids.append(insert_ok(stub, name, parts[-1]))
            ok(flush(stub, name))
        assert min(_reader_shares(cluster, name)) > 0, "placement put every segment on one reader"
        before = [_searches_served(r) for r in cluster.readers]
        queries = rng.random((5, DIM), dtype=np.float32)
        status, got_ids, got_dist = search(stub, name, queries, 10)
    assert status.error_code == 0, status
    assert_search_exact(got_ids, got_dist, np.concatenate(parts), np.concatenate(ids), queries, 10, METRIC_L2)
    assert all(_searches_served(r) > b for r, b in zip(cluster.readers, before, strict=True))


def _https(port: int, context: ssl.SSLContext, path: str = "/state") -> tuple[int, bytes]:
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=30, context=context)
    try:
        conn.request("GET", path)
        reply = conn.getresponse()
        return reply.status, reply.read()
    finally:
        conn.close()


def test_proxy_rest_over_https(cluster: LocalCluster, pki: Pki) -> None:
    context = ssl.create_default_context(cafile=str(pki.edge.ca.cert_path))
    status, body = _https(cluster.proxy.http_port, context)
    assert status == 200, body
    assert json.loads(body) == {"message": "Success", "code": 0}


def test_proxy_rest_refuses_plain_http_and_untrusted_tls(cluster: LocalCluster, pki: Pki) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", cluster.proxy.http_port, timeout=10)
    try:
        with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
            conn.request("GET", "/state")
            conn.getresponse().read()
    finally:
        conn.close()
    stranger = ssl.create_default_context(cafile=str(pki.stranger.ca.cert_path))
    with pytest.raises(ssl.SSLCertVerificationError):
        _https(cluster.proxy.http_port, stranger)


def test_a_node_refuses_edge_and_cluster_tls_together(pki: Pki, tmp_path: Path) -> None:
    edge = ["--tls-cert", str(pki.edge.server.cert_path), "--tls-key", str(pki.edge.server.key_path)]
    done = subprocess.run([sys.executable, "-m", "node", "--port", "0", "--storage-path", str(tmp_path),
                           *edge, *pki.cluster_args(pki.node)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "cannot both be set on a node" in done.stderr


def test_node_refuses_a_look_alike_certificate(cluster: LocalCluster, pki: Pki, tmp_path: Path) -> None:
    """A client certificate with the cluster client's very subject, signed by a CA with the cluster CA's very
    name but another key, is refused: the CA's signature decides, not the names."""
    impostor_ca = make_ca(tmp_path, "cluster-ca")
    impostor = issue(impostor_ca, tmp_path, "cluster-client", server=False, dns=(), ips=())
    assert impostor.cert.subject == pki.cluster.client.cert.subject
    assert impostor_ca.cert.subject == pki.cluster.ca.cert.subject
    channel = _mtls_channel(cluster.readers[1].address, pki.cluster.ca.cert_path, impostor)
    assert _refused(channel) == grpc.StatusCode.UNAVAILABLE


def test_mishards_status_reaches_the_nodes_with_the_cluster_certificate(cluster: LocalCluster, pki: Pki) -> None:
    def status(*tls: str) -> str:
        done = subprocess.run([sys.executable, "-m", "mishards.cli", "status", "--membership", cluster.membership,
                               "--meta-uri", cluster.meta_uri, *tls], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    with_certificate = status(*pki.cluster_args(pki.cluster.client))
    assert with_certificate.count("SERVING") == len(cluster.nodes), with_certificate
    without = status()
    assert "SERVING" not in without and without.count("unreachable") == len(cluster.nodes), without
