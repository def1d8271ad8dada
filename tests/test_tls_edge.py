"""Edge mTLS on a standalone node (``--tls-cert/--tls-key/--tls-client-ca``) on its gRPC and REST ports, and a
certificate replaced on disk served to the next new connection without a restart. One node for the module."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives import hashes

from milvus_wire import milvus_pb2, milvus_pb2_grpc
from tests.support.certs import Authority, Issued, TestPki, issue, make_ca, make_pki, served_certificate
from tests.support.nodeproc import NodeProcess
from tests.support.waiting import poll_for


@dataclass(frozen=True)
class Edge:
    node: NodeProcess
    pki: TestPki  # the CA and client certificate clients use; its server certificate is the first one served
    stranger: TestPki
    served_cert: Path  # the files the node was started with (replaced in place by the rotation test)
    served_key: Path
    trust: Path  # both server CAs (the first one's and the rotation's): tests pass in any order
    next_ca: Authority  # the CA of the certificate the rotation test puts in place
    next_ca_dir: Path

    @property
    def grpc_address(self) -> str:
        return self.node.address

    @property
    def http_port(self) -> int:
        return self.node.http_port


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    root = tmp_path_factory.mktemp("edge")
    pki = make_pki(root / "pki", "edge")
    stranger = make_pki(root / "stranger", "stranger")
    served = root / "served"
    served.mkdir()
    cert, key = served / "server.crt", served / "server.key"
    shutil.copy(pki.server.cert_path, cert)
    shutil.copy(pki.server.key_path, key)
    next_ca = make_ca(root / "next", "next-ca")
    trust = root / "trust.pem"
    trust.write_bytes(pki.ca.pem + next_ca.pem)
    node = NodeProcess(root / "node", ["--tls-cert", str(cert), "--tls-key", str(key),
                                       "--tls-client-ca", str(pki.ca.cert_path)], http=True)
    node.start()
    try:
        yield Edge(node, pki, stranger, cert, key, trust, next_ca, root / "next")
    finally:
        node.stop()


def _channel(address: str, roots: Path, client: Issued | None) -> grpc.Channel:
    credentials = grpc.ssl_channel_credentials(roots.read_bytes(), client.key_pem if client else None,
                                               client.pem if client else None)
    return grpc.secure_channel(address, credentials)


def _version(channel: grpc.Channel) -> str:
    with channel:
        reply = milvus_pb2_grpc.MilvusServiceStub(channel).Cmd(milvus_pb2.Command(cmd="version"), timeout=10)
    assert reply.status.error_code == 0, reply.status
    return str(reply.string_reply)


def _refused(channel: grpc.Channel) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as caught:
        _version(channel)
    return caught.value.code()


def _context(roots: Path, client: Issued | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(roots))
    if client is not None:
        context.load_cert_chain(client.cert_path, client.key_path)
    return context


def _rest_state(port: int, context: ssl.SSLContext) -> int:
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=30, context=context)
    try:
        conn.request("GET", "/state")
        return conn.getresponse().status
    finally:
        conn.close()


def test_grpc_with_a_client_certificate(edge: Edge) -> None:
    assert _version(_channel(edge.grpc_address, edge.trust, edge.pki.client)) == "1.1.1"


def test_grpc_refuses_clients_without_a_certificate_from_the_client_ca(edge: Edge) -> None:
    assert _refused(grpc.insecure_channel(edge.grpc_address)) == grpc.StatusCode.UNAVAILABLE
    assert _refused(_channel(edge.grpc_address, edge.trust, None)) == grpc.StatusCode.UNAVAILABLE
    assert _refused(_channel(edge.grpc_address, edge.trust, edge.stranger.client)) == grpc.StatusCode.UNAVAILABLE


def test_rest_with_a_client_certificate(edge: Edge) -> None:
    assert _rest_state(edge.http_port, _context(edge.trust, edge.pki.client)) == 200


def test_rest_refuses_clients_without_a_certificate_from_the_client_ca(edge: Edge) -> None:
    for client in (None, edge.stranger.client):
        with pytest.raises((ssl.SSLError, ConnectionError)):
            _rest_state(edge.http_port, _context(edge.trust, client))


def _served_fingerprint(port: int, roots: Path, client: Issued) -> bytes | None:
    """The SHA-256 fingerprint of the certificate the REST port serves to a new connection that trusts only
    ``roots`` (None: the handshake failed, e.g. the old certificate is still served)."""
    context = _context(roots, client)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
                context.wrap_socket(raw, server_hostname="localhost") as tls:
            der = tls.getpeercert(binary_form=True)
    except (ssl.SSLError, ConnectionError):
        return None
    assert der is not None
    return served_certificate(der).fingerprint(hashes.SHA256())


def test_a_certificate_replaced_on_disk_is_served_to_new_connections(edge: Edge) -> None:
    first_ca = edge.next_ca_dir / "first.pem"
    first_ca.write_bytes(edge.pki.ca.pem)
    rotated = issue(edge.next_ca, edge.next_ca_dir, "rotated-server", client=False)
    only_next = edge.next_ca.cert_path
    assert _served_fingerprint(edge.http_port, only_next, edge.pki.client) is None  # not served yet
    # replace the files the node was started with, each atomically (as a Secret volume or cert-manager does)
    for source, target in ((rotated.key_path, edge.served_key), (rotated.cert_path, edge.served_cert)):
        shutil.copy(source, target.with_suffix(".new"))
        os.replace(target.with_suffix(".new"), target)
    served = poll_for(lambda: _served_fingerprint(edge.http_port, only_next, edge.pki.client), timeout=20,
                      interval=0.1, what="the REST port serving the rotated certificate")
    assert served == rotated.fingerprint
    # gRPC: a fresh channel trusting only the new CA works at once, one trusting only the old CA no longer does
    assert _version(_channel(edge.grpc_address, only_next, edge.pki.client)) == "1.1.1"
    assert _refused(_channel(edge.grpc_address, first_ca, edge.pki.client)) == grpc.StatusCode.UNAVAILABLE
    assert _served_fingerprint(edge.http_port, first_ca, edge.pki.client) is None


def test_worker_processes_serve_tls_on_their_own_ports_and_forward_to_the_primary(tmp_path: Path) -> None:
    """``--workers 2`` with edge TLS: each worker's own port speaks TLS (plaintext refused), and a write sent
    to the secondary reaches the primary (forwarded over the primary's private socket)."""
    pki = make_pki(tmp_path / "pki", "workers")
    node = NodeProcess(tmp_path / "node", ["--workers", "2", "--auto-flush-interval", "0", "--tls-cert",
                                           str(pki.server.cert_path), "--tls-key", str(pki.server.key_path)])
    node.start()
    try:
        primary, secondary = json.loads((node.workdir / "ready.json").read_text())["workers"]
        name = "through_the_secondary"
        schema = milvus_pb2.CollectionSchema(collection_name=name, dimension=4, index_file_size=1, metric_type=1)
        with _channel(secondary, pki.ca.cert_path, None) as channel:
            assert milvus_pb2_grpc.MilvusServiceStub(channel).CreateCollection(schema, timeout=30).error_code == 0
        with _channel(primary, pki.ca.cert_path, None) as channel:
            has = milvus_pb2_grpc.MilvusServiceStub(channel).HasCollection(
                milvus_pb2.CollectionName(collection_name=name), timeout=30)
        assert has.status.error_code == 0 and has.bool_reply
        for address in (primary, secondary, node.address):
            assert _refused(grpc.insecure_channel(address)) == grpc.StatusCode.UNAVAILABLE
    finally:
        node.stop()
