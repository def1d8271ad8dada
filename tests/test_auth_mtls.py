"""Tokens with cluster mTLS: nodes that take no anonymous call (``--allow-anonymous none``) still serve the
proxy's sub-requests made for an anonymous client, because the proxy presents the cluster certificate (an
internal peer needs no token); a token, when sent, is judged by the token even from a peer; the node's audit
line names the peer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from coordinator.auth import users_db
from coordinator.auth.model import Role
from coordinator.catalog_schema import make_engine
from milvus_wire import milvus_pb2, milvus_pb2_grpc
from tests.support.certs import Issued, TestPki, issue, make_pki
from tests.support.cluster import LocalCluster
from tests.support.waiting import poll_for

DIM = 4
PERMISSION_DENIED = 3


class Pki:
    def __init__(self, root: Path) -> None:
        self.cluster: TestPki = make_pki(root / "cluster", "cluster")
        self.node = issue(self.cluster.ca, root / "cluster", "node")

    def args(self, own: Issued) -> list[str]:
        return ["--cluster-tls-cert", str(own.cert_path), "--cluster-tls-key", str(own.key_path),
                "--cluster-tls-ca", str(self.cluster.ca.cert_path)]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalCluster, Pki, str]]:
    root = tmp_path_factory.mktemp("authmtls")
    pki = Pki(root / "pki")
    cluster = LocalCluster(root, readers=1, node_args=[*pki.args(pki.node), "--allow-anonymous", "none"],
                           proxy_args=pki.args(pki.cluster.client))
    engine = make_engine(cluster.meta_uri)
    token = users_db.add_user(engine, "reader", Role.READONLY).token
    engine.dispose()
    cluster.start()
    try:
        yield cluster, pki, token
    finally:
        cluster.stop()


def _peer_stub(address: str, pki: Pki) -> tuple[grpc.Channel, milvus_pb2_grpc.MilvusServiceStub]:
    credentials = grpc.ssl_channel_credentials(pki.cluster.ca.cert_path.read_bytes(), pki.node.key_pem,
                                               pki.node.pem)
    channel = grpc.secure_channel(address, credentials)
    return channel, milvus_pb2_grpc.MilvusServiceStub(channel)


def test_anonymous_clients_reach_strict_nodes_through_the_proxy(setup: tuple[LocalCluster, Pki, str]) -> None:
    cluster, _pki, token = setup
    stub = cluster.stub()
    schema = milvus_pb2.CollectionSchema(collection_name="open", dimension=DIM, index_file_size=1024, metric_type=1)
    assert stub.CreateCollection(schema).error_code == 0
    rows = [milvus_pb2.RowRecord(float_data=[float(i), 0.0, 0.0, 0.0]) for i in range(20)]
    ids = stub.Insert(milvus_pb2.InsertParam(collection_name="open", row_record_array=rows))
    assert ids.status.error_code == 0
    assert stub.Flush(milvus_pb2.FlushParam(collection_name_array=["open"])).error_code == 0
    query = milvus_pb2.SearchParam(collection_name="open", topk=1,
                                   query_record_array=[milvus_pb2.RowRecord(float_data=[3.0, 0.0, 0.0, 0.0])],
                                   extra_params=[milvus_pb2.KeyValuePair(key="params", value="{}")])
    found = stub.Search(query)  # fanned out to the read node, which takes no anonymous call
    assert found.status.error_code == 0 and list(found.ids) == [ids.vector_id_array[3]]
    with_token = (("authorization", f"Bearer {token}"),)
    assert stub.Search(query, metadata=with_token).status.error_code == 0
    refused = stub.DropCollection(milvus_pb2.CollectionName(collection_name="open"), metadata=with_token)
    assert refused.error_code == PERMISSION_DENIED
    assert stub.HasCollection(milvus_pb2.CollectionName(collection_name="open")).bool_reply

    def audited() -> str:
        text = cluster.writer.log_path.read_text(errors="replace")
        return text if '"rpc":"CreateCollection"' in text else ""

    line = next(ln for ln in poll_for(audited, timeout=5).splitlines() if '"rpc":"CreateCollection"' in ln)
    assert '"who":"peer:' in line and token not in line


def test_a_peer_sending_a_token_is_judged_by_it(setup: tuple[LocalCluster, Pki, str]) -> None:
    cluster, pki, token = setup
    channel, stub = _peer_stub(cluster.writer.address, pki)
    with channel:
        name = milvus_pb2.CollectionName(collection_name="open")
        assert stub.CountCollection(name, timeout=10).status.error_code == 0  # a peer without a token
        wrong = (("authorization", "Bearer mshd_" + "A" * 43),)
        assert stub.CountCollection(name, metadata=wrong, timeout=10).status.error_code == PERMISSION_DENIED
        readonly = (("authorization", f"Bearer {token}"),)
        assert stub.DropCollection(name, metadata=readonly, timeout=10).error_code == PERMISSION_DENIED
        assert stub.HasCollection(name, timeout=10).bool_reply
