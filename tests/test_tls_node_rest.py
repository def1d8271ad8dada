"""A node's REST port under cluster mTLS (``--cluster-tls-*`` with ``--http-port``) answers only clients holding
the cluster certificate, like its gRPC port: plain HTTP, TLS without a certificate and a certificate of another
CA are cut off. Unlike the gRPC port, a verified certificate does not make a REST call internal (the proxy
never dials a node's REST port; ``coordinator.rest.backend.RestContext`` has no auth context): on
``--allow-anonymous none`` a peer still needs a token there."""

from __future__ import annotations

import http.client
import json
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from coordinator.auth import users_db
from coordinator.auth.model import Role
from coordinator.catalog_schema import make_engine
from tests.support.certs import Issued, TestPki, issue, make_pki
from tests.support.nodeproc import NodeProcess

PERMISSION_DENIED = 3


@dataclass
class Node:
    proc: NodeProcess
    cluster: TestPki
    other: TestPki
    token: str


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    root: Path = tmp_path_factory.mktemp("node-rest-mtls")
    cluster, other = make_pki(root / "cluster", "cluster"), make_pki(root / "other", "other")
    own = issue(cluster.ca, root / "cluster", "node")
    meta_uri = f"sqlite:///{root / 'meta.sqlite'}"
    engine = make_engine(meta_uri)
    token = users_db.add_user(engine, "reader", Role.READONLY).token
    engine.dispose()
    proc = NodeProcess(root / "n", ["--cluster-tls-cert", str(own.cert_path), "--cluster-tls-key", str(own.key_path),
                                    "--cluster-tls-ca", str(cluster.ca.cert_path), "--allow-anonymous", "none"],
                       meta_uri=meta_uri, http=True)
    with proc:
        yield Node(proc, cluster, other, token)


def _context(ca: Path, client: Issued | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca))
    if client is not None:
        context.load_cert_chain(str(client.cert_path), str(client.key_path))
    return context


def _get(port: int, context: ssl.SSLContext | None, path: str = "/collections",
         headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    conn = (http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=context) if context
            else http.client.HTTPConnection("127.0.0.1", port, timeout=10))
    try:
        conn.request("GET", path, headers=headers or {})
        reply = conn.getresponse()
        return reply.status, reply.read()
    finally:
        conn.close()


def test_a_peer_with_the_cluster_certificate_is_served_with_a_token(node: Node) -> None:
    peer = _context(node.cluster.ca.cert_path, node.cluster.client)
    status, body = _get(node.proc.http_port, peer, headers={"Authorization": f"Bearer {node.token}"})
    assert status == 200, body
    for headers in ({}, {"Authorization": "Bearer mshd_" + "A" * 43}):
        status, body = _get(node.proc.http_port, peer, headers=headers)
        assert status == 403 and json.loads(body)["code"] == PERMISSION_DENIED, body


@pytest.mark.parametrize("client", ["plain http", "no certificate", "other CA"])
def test_clients_without_the_cluster_certificate_are_cut_off(node: Node, client: str) -> None:
    ca = node.cluster.ca.cert_path
    context = {"plain http": None, "no certificate": _context(ca, None),
               "other CA": _context(ca, node.other.client)}[client]
    with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException)):
        _get(node.proc.http_port, context, headers={"Authorization": f"Bearer {node.token}"})
    status, _ = _get(node.proc.http_port, _context(ca, node.cluster.client), path="/state")
    assert status == 200  # still serving peers
