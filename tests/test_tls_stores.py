"""TLS to the cluster's stores: etcd with client-certificate authentication (membership URI query parameters
``tls_ca``, ``tls_cert``, ``tls_key``) and MariaDB with a user that must present a certificate (meta URI query
parameters ``ssl_ca``, ``ssl_cert``, ``ssl_key``, as SQLAlchemy and PyMySQL take them). Real servers; the
password of the meta URI never shows in the node's log or its get_config."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest

from coordinator.errors import MilvusError
from coordinator.etcd_client import EtcdClient
from coordinator.etcd_errors import EtcdError
from coordinator.membership import create_provider, parse_membership_uri
from coordinator.tls import EtcdTls
from milvus_wire import milvus_pb2
from tests.support.certs import TestPki, make_pki
from tests.support.etcd import EtcdServer, EtcdServerTls
from tests.support.mariadb import APP_PASSWORD, APP_USER, MariaDBServer
from tests.support.nodeproc import NodeProcess
from tests.support.waiting import poll_for


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_pki(tmp_path_factory.mktemp("storespki"), "stores")


# -- etcd ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def etcd(pki: TestPki) -> Iterator[EtcdServer]:
    tls = EtcdServerTls(pki.server.cert_path, pki.server.key_path, pki.ca.cert_path, pki.client.cert_path,
                        pki.client.key_path)
    with EtcdServer(tls=tls) as server:
        yield server


def _etcd_uri(etcd: EtcdServer, pki: TestPki, prefix: str, **params: str) -> str:
    query = {"tls_ca": str(pki.ca.cert_path), "tls_cert": str(pki.client.cert_path),
             "tls_key": str(pki.client.key_path), **params}
    return f"etcd://{etcd.endpoint}/{prefix}?{urlencode({k: v for k, v in query.items() if v})}"


def test_etcd_tls_from_the_membership_uri(etcd: EtcdServer, pki: TestPki) -> None:
    config = parse_membership_uri(_etcd_uri(etcd, pki, "p1"))
    assert config.etcd_tls == EtcdTls(str(pki.ca.cert_path), str(pki.client.cert_path), str(pki.client.key_path))
    with EtcdClient(config.endpoints, tls=config.etcd_tls) as client:
        client.put("/p1/k", b"v")
        assert client.get("/p1/k") == b"v"


def test_etcd_refuses_plaintext_and_clients_without_a_certificate(etcd: EtcdServer, pki: TestPki) -> None:
    without_cert = EtcdTls(str(pki.ca.cert_path))
    for tls in (None, without_cert):
        with EtcdClient(etcd.endpoint, tls=tls, timeout=2.0, connect_timeout=1.0) as client, \
                pytest.raises(EtcdError):
            client.get("/p1/k")


def test_a_node_registers_in_etcd_over_tls(etcd: EtcdServer, pki: TestPki, tmp_path: Path) -> None:
    membership = _etcd_uri(etcd, pki, "tlscluster")
    watcher = create_provider(membership)
    watcher.start()
    node = NodeProcess(tmp_path / "r", ["--role", "ro", "--membership", membership],
                       meta_uri=f"sqlite:///{tmp_path / 'meta.sqlite'}", storage=tmp_path / "shared")
    try:
        node.start()
        poll_for(lambda: any(m.address == node.address for m in watcher.members()), 30,
                 what="the node's registration, read back over TLS")
    finally:
        node.stop()
        watcher.stop()


def test_bad_etcd_tls_parameters_are_refused_clearly() -> None:
    with pytest.raises(ValueError, match="needs tls_ca"):
        parse_membership_uri("etcd://127.0.0.1:2379/p?tls_cert=/a&tls_key=/b")
    with pytest.raises(ValueError, match="go together"):
        parse_membership_uri("etcd://127.0.0.1:2379/p?tls_ca=/c&tls_cert=/a")
    with pytest.raises(ValueError, match="unknown parameter"):
        parse_membership_uri("etcd://127.0.0.1:2379/p?tls_cafile=/c")


# -- MariaDB -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mariadb(pki: TestPki) -> Iterator[MariaDBServer]:
    server = MariaDBServer(extra_args=[f"--ssl-ca={pki.ca.cert_path}", f"--ssl-cert={pki.server.cert_path}",
                                       f"--ssl-key={pki.server.key_path}"])
    with server:
        conn = server.connect_root()
        try:
            with conn.cursor() as cur:  # the catalog's user must come over TLS with a certificate from the CA
                cur.execute("ALTER USER %s@%s REQUIRE X509", (APP_USER, "127.0.0.1"))
        finally:
            conn.close()
        yield server


def _tls_uri(mariadb: MariaDBServer, pki: TestPki) -> str:
    return mariadb.uri + "&" + urlencode({"ssl_ca": str(pki.ca.cert_path), "ssl_cert": str(pki.client.cert_path),
                                          "ssl_key": str(pki.client.key_path)})


def test_the_catalog_over_tls_with_a_client_certificate(mariadb: MariaDBServer, pki: TestPki, tmp_path: Path) -> None:
    uri = _tls_uri(mariadb, pki)
    node = NodeProcess(tmp_path / "n", ["--auto-flush-interval", "0"], meta_uri=uri)
    try:
        node.start()
        stub = node.stub()
        schema = milvus_pb2.CollectionSchema(collection_name="over_tls", dimension=4, index_file_size=1,
                                             metric_type=1)
        assert stub.CreateCollection(schema, timeout=30).error_code == 0
        reply = stub.HasCollection(milvus_pb2.CollectionName(collection_name="over_tls"), timeout=30)
        assert reply.status.error_code == 0 and reply.bool_reply
        shown = stub.Cmd(milvus_pb2.Command(cmd="get_config general.meta_uri"), timeout=30)
        assert shown.status.error_code == 0
        assert f"{APP_USER}:***@" in shown.string_reply and f"{APP_USER}:{APP_PASSWORD}@" not in shown.string_reply
        assert "ssl_cert=" in shown.string_reply  # the TLS parameters are kept
    finally:
        node.stop()
    logged = node.log_path.read_text(errors="replace")
    assert f"{APP_USER}:{APP_PASSWORD}@" not in logged


def test_the_catalog_user_is_refused_without_tls(mariadb: MariaDBServer, tmp_path: Path) -> None:
    from coordinator.catalog import Catalog

    catalog = Catalog(mariadb.uri)
    try:
        with pytest.raises(MilvusError) as caught:
            catalog.ensure_schema(attempts=1)
    finally:
        catalog.close()
    assert f"{APP_USER}:{APP_PASSWORD}@" not in str(caught.value)
