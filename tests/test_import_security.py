"""``mishards import`` against a node that wants TLS and a token (``--allow-anonymous none``): with ``--tls-ca``
and a read-write token the rows go in; without a token, or with a read-only one, the import is refused with the
server's reason and nothing is inserted."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from mishards_client import Milvus

from coordinator.auth import users_db
from coordinator.auth.model import Role
from coordinator.catalog_schema import make_engine
from mishards_tools import import_cli
from tests.support.certs import TestPki, make_pki
from tests.support.nodeproc import NodeProcess


@dataclass
class Secured:
    uri: str
    pki: TestPki
    tokens: dict[str, str]

    def admin(self) -> Milvus:
        return Milvus("localhost", int(self.uri.rpartition(":")[2]), token=self.tokens["admin"],
                      tls_ca=str(self.pki.ca.cert_path))


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    root = tmp_path_factory.mktemp("import-secured")
    pki = make_pki(root / "pki", "import")
    meta_uri = f"sqlite:///{root / 'meta.sqlite'}"
    engine = make_engine(meta_uri)
    tokens = {"admin": users_db.add_user(engine, "root", Role.ADMIN).token,
              "readwrite": users_db.add_user(engine, "loader", Role.READWRITE).token,
              "readonly": users_db.add_user(engine, "reader", Role.READONLY).token}
    engine.dispose()
    node = NodeProcess(root / "node", ["--allow-anonymous", "none", "--tls-cert", str(pki.server.cert_path),
                                       "--tls-key", str(pki.server.key_path)], meta_uri=meta_uri)
    node.start()
    try:
        yield Secured(f"localhost:{node.address.rpartition(':')[2]}", pki, tokens)
    finally:
        node.stop()


def test_token_and_tls(secured: Secured, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    vectors = np.random.default_rng(5).random((120, 8)).astype(np.float32)
    np.save(tmp_path / "v.npy", vectors)
    base = [str(tmp_path / "v.npy"), "--collection", "secure", "--uri", secured.uri, "--create", "--batch", "50",
            "--tls-ca", str(secured.pki.ca.cert_path), "--retries", "0"]

    assert import_cli.main(base) == 1  # no token
    err = capsys.readouterr().err
    assert "has_collection 'secure'" in err and "(status 3)" in err
    assert import_cli.main([*base, "--token", secured.tokens["readonly"]]) == 1
    err = capsys.readouterr().err
    assert "create_collection 'secure'" in err and "(status 3)" in err
    with secured.admin() as admin:
        assert admin.has_collection("secure")[1] is False

    assert import_cli.main([*base, "--token", secured.tokens["readwrite"]]) == 0, capsys.readouterr().err
    assert "import complete: 120 rows sent" in capsys.readouterr().out
    with secured.admin() as admin:
        assert admin.count_entities("secure")[1] == 120
        status, got = admin.get_entity_by_id("secure", list(range(120)))
        assert status.OK()
        np.testing.assert_array_equal(np.array(got, dtype=np.float32), vectors)
