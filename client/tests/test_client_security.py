"""TLS and tokens against a real node started with ``--tls-cert/--tls-key/--tls-client-ca`` and
``--allow-anonymous none``: the client's certificate and bearer token get in, each role's refusals come back as
in-band PERMISSION_DENIED statuses, a client without certificate or TLS gets nowhere."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest
from tests.support.certs import TestPki, make_pki
from tests.support.nodeproc import NodeProcess
from tests.support.users import add_user

from mishards_client import Milvus, Status


@dataclass
class Secured:
    port: int
    pki: TestPki
    tokens: dict[str, str]

    def client(self, role: str | None, **kwargs: object) -> Milvus:
        tls: dict[str, object] = {"tls_ca": str(self.pki.ca.cert_path), "tls_cert": str(self.pki.client.cert_path),
                                  "tls_key": self.pki.client.key_path.read_bytes()}
        tls.update(kwargs)
        token = self.tokens.get(role) if role else None
        return Milvus("localhost", self.port, token=token, retries=0, timeout=10, **tls)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    root = tmp_path_factory.mktemp("client-secured")
    pki = make_pki(root / "pki", "client")
    meta_uri = f"sqlite:///{root / 'meta.sqlite'}"
    tokens = {"admin": add_user(meta_uri, "root", "admin"), "readonly": add_user(meta_uri, "reader", "readonly")}
    node = NodeProcess(root / "node", ["--auto-flush-interval", "0", "--allow-anonymous", "none",
                                       "--tls-cert", str(pki.server.cert_path), "--tls-key", str(pki.server.key_path),
                                       "--tls-client-ca", str(pki.ca.cert_path)], meta_uri=meta_uri)
    node.start()
    try:
        yield Secured(int(node.address.rpartition(":")[2]), pki, tokens)
    finally:
        node.stop()


def test_admin_token_over_mutual_tls(secured: Secured) -> None:
    with secured.client("admin") as client:
        assert client.create_collection({"collection_name": "s", "dimension": 4}).OK()
        status, ids = client.insert("s", np.eye(4, dtype=np.float32))
        assert status.OK() and len(ids) == 4
        assert client.flush(["s"]).OK()
        status, result = client.search("s", 1, np.eye(4, dtype=np.float32)[2:3])
        assert status.OK() and result is not None and result.id_array == [[ids[2]]]


def test_roles_and_missing_token_refused_in_band(secured: Secured) -> None:
    with secured.client("admin") as admin:
        admin.create_collection({"collection_name": "r", "dimension": 4})
    with secured.client("readonly") as reader:
        assert reader.has_collection("r") == (Status(), True)
        status, ids = reader.insert("r", np.ones((1, 4), dtype=np.float32))
        assert status.code == Status.PERMISSION_DENIED and ids == []
        assert reader.drop_collection("r").code == Status.PERMISSION_DENIED
    with secured.client(None) as anonymous:
        status, present = anonymous.has_collection("r")
        assert status.code == Status.PERMISSION_DENIED and not present
    with secured.client("admin") as admin:
        assert admin.has_collection("r") == (Status(), True)  # nothing was dropped


def test_without_client_certificate_or_tls_nothing_gets_in(secured: Secured) -> None:
    with secured.client("admin", tls_cert=None, tls_key=None) as no_cert:
        assert not no_cert.server_version(timeout=5)[0].OK()
    with Milvus("localhost", secured.port, token=secured.tokens["admin"], retries=0) as plaintext:
        assert plaintext.server_version(timeout=5)[0].code in (Status.CONNECT_FAILED, Status.UNEXPECTED_ERROR)
