"""``mishards up`` with every security part of its command line on: edge mTLS on the proxy's gRPC and REST ports
(``--tls-cert/--tls-key/--tls-client-ca``), cluster mTLS between the proxy and its nodes (``--cluster-tls-dir``, made
by ``up`` in an empty folder) and ``--allow-anonymous none``, with an admin created by ``mishards user add`` as an
operator runs it. A client holding the client certificate and the token works over gRPC (the search is checked
against the exact answer) and REST; a client without the certificate, a plaintext client and a call without the
token are refused; the nodes refuse a client without the cluster certificate."""

from __future__ import annotations

import http.client
import json
import os
import re
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from milvus_wire import milvus_pb2, milvus_pb2_grpc
from tests.support.certs import TestPki, make_pki
from tests.support.nodeproc import ROOT
from tests.support.upproc import UpProcess
from tests.support.waiting import poll_for

DIM = 8
PERMISSION_DENIED = 3


@dataclass
class SecureUp:
    up: UpProcess
    edge: TestPki
    token: str
    nodes: list[str]

    def channel(self, with_certificate: bool = True) -> grpc.Channel:
        client = self.edge.client
        credentials = grpc.ssl_channel_credentials(self.edge.ca.pem, client.key_pem if with_certificate else None,
                                                   client.pem if with_certificate else None)
        return grpc.secure_channel(self.up.address, credentials)

    def https(self, path: str, token: bool) -> tuple[int, bytes]:
        context = ssl.create_default_context(cafile=str(self.edge.ca.cert_path))
        context.load_cert_chain(str(self.edge.client.cert_path), str(self.edge.client.key_path))
        conn = http.client.HTTPSConnection("127.0.0.1", self.up.http_port, timeout=30, context=context)
        try:
            conn.request("GET", path, headers={"Authorization": f"Bearer {self.token}"} if token else {})
            reply = conn.getresponse()
            return reply.status, reply.read()
        finally:
            conn.close()


@pytest.fixture(scope="module")
def secure_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureUp]:
    root = tmp_path_factory.mktemp("up-tls")
    edge = make_pki(root / "edge", "edge")
    up = UpProcess(root / "up", ["--http-port", "-1", "--readers", "1", "--no-metrics", "--allow-anonymous", "none",
                                 "--tls-cert", str(edge.server.cert_path), "--tls-key", str(edge.server.key_path),
                                 "--tls-client-ca", str(edge.ca.cert_path),
                                 "--cluster-tls-dir", str(root / "cluster-tls")])
    up.start()
    try:
        env = {**os.environ, "PYTHONPATH": str(ROOT),
               "MISHARDS_META_URI": f"sqlite:///{up.workdir / 'data' / 'meta.sqlite'}"}
        added = subprocess.run([sys.executable, "-m", "mishards.cli", "user", "add", "ops", "--role", "admin"],
                               capture_output=True, text=True, timeout=60, env=env, cwd=ROOT)
        assert added.returncode == 0, added.stderr
        banner = up.log_path.read_text(errors="replace")
        found = re.search(r"\(writer ([0-9.:]+), readers ([0-9.:, ]+)\)", banner)
        assert found, banner
        nodes = [found.group(1), *(a.strip() for a in found.group(2).split(","))]
        yield SecureUp(up, edge, added.stdout.strip(), nodes)
    finally:
        up.stop()


def test_a_client_with_the_certificate_and_the_token_works_over_grpc(secure_up: SecureUp) -> None:
    md = (("authorization", f"Bearer {secure_up.token}"),)
    with secure_up.channel() as channel:
        stub = milvus_pb2_grpc.MilvusServiceStub(channel)

        def admitted() -> bool:  # the processes know the new token at once (they read the users again)
            return bool(stub.HasCollection(milvus_pb2.CollectionName(collection_name="tls"), metadata=md,
                                           timeout=30).status.error_code == 0)

        poll_for(admitted, timeout=15, what="the new admin's token to be accepted")
        schema = milvus_pb2.CollectionSchema(collection_name="tls", dimension=DIM, index_file_size=1024,
                                             metric_type=1)
        assert stub.CreateCollection(schema, metadata=md, timeout=30).error_code == 0
        x = np.random.default_rng(5).random((200, DIM), dtype=np.float32)
        rows = [milvus_pb2.RowRecord(float_data=v) for v in x.tolist()]
        ids = stub.Insert(milvus_pb2.InsertParam(collection_name="tls", row_record_array=rows), metadata=md,
                          timeout=30)
        assert ids.status.error_code == 0, ids.status
        assert stub.Flush(milvus_pb2.FlushParam(collection_name_array=["tls"]), metadata=md, timeout=30) \
            .error_code == 0
        q = np.random.default_rng(6).random((3, DIM), dtype=np.float32)
        query = milvus_pb2.SearchParam(collection_name="tls", topk=5,
                                       query_record_array=[milvus_pb2.RowRecord(float_data=v) for v in q.tolist()],
                                       extra_params=[milvus_pb2.KeyValuePair(key="params", value="{}")])
        found = stub.Search(query, metadata=md, timeout=30)  # fanned out to the read node over cluster mTLS
        assert found.status.error_code == 0, found.status
        exact = np.argsort(((q[:, None, :] - x[None, :, :]) ** 2).sum(-1), axis=1, kind="stable")[:, :5]
        assert np.array_equal(np.asarray(found.ids).reshape(3, 5), np.asarray(ids.vector_id_array)[exact])
        without = stub.HasCollection(milvus_pb2.CollectionName(collection_name="tls"), timeout=30)
        assert without.status.error_code == PERMISSION_DENIED


def test_rest_over_https_with_the_client_certificate(secure_up: SecureUp) -> None:
    status, body = secure_up.https("/collections", token=True)
    assert status == 200 and json.loads(body)["count"] >= 0, body
    status, body = secure_up.https("/collections", token=False)
    assert status == 403 and json.loads(body)["code"] == PERMISSION_DENIED


def _health(channel: grpc.Channel) -> None:
    with channel:
        health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=10)


def test_clients_without_the_certificate_or_tls_are_refused(secure_up: SecureUp) -> None:
    for refused in (secure_up.channel(with_certificate=False), grpc.insecure_channel(secure_up.up.address)):
        with pytest.raises(grpc.RpcError) as caught:
            _health(refused)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    context = ssl.create_default_context(cafile=str(secure_up.edge.ca.cert_path))  # no client certificate
    conn = http.client.HTTPSConnection("127.0.0.1", secure_up.up.http_port, timeout=10, context=context)
    with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException)):
        conn.request("GET", "/state")
        conn.getresponse().read()
    conn.close()


def test_the_nodes_accept_only_the_cluster_certificate(secure_up: SecureUp) -> None:
    folder = secure_up.up.workdir.parent / "cluster-tls"
    cluster_ca = (folder / "ca.crt").read_bytes()
    edge_client = secure_up.edge.client
    for address in secure_up.nodes:
        member = grpc.secure_channel(address, grpc.ssl_channel_credentials(
            cluster_ca, (folder / "tls.key").read_bytes(), (folder / "tls.crt").read_bytes()),
            options=[("grpc.ssl_target_name_override", "mishards-cluster")])
        with member:
            reply = health_pb2_grpc.HealthStub(member).Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING, address
        for channel in (grpc.insecure_channel(address),
                        grpc.secure_channel(address, grpc.ssl_channel_credentials(
                            cluster_ca, edge_client.key_pem, edge_client.pem),
                            options=[("grpc.ssl_target_name_override", "mishards-cluster")])):
            with pytest.raises(grpc.RpcError) as caught:
                _health(channel)
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE, address
