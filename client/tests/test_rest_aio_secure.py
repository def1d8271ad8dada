"""REST and asyncio clients against a real node with edge TLS (gRPC and https) and tokens required
(``--allow-anonymous none``; module-scoped): a writer's token writes and searches, a reader's token searches and
is refused a write with PERMISSION_DENIED (nothing written), no token is refused, plaintext is refused."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import transport_scenario as scenario
from tests.support import certs
from tests.support.nodeproc import NodeProcess
from tests.support.users import add_user

from mishards_client import Milvus, Status
from mishards_client.aio import AsyncMilvus


@dataclass
class Secure:
    node: NodeProcess
    pki: certs.TestPki
    writer: str
    reader: str

    @property
    def grpc_port(self) -> str:
        return self.node.address.rpartition(":")[2]


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secure]:
    root = Path(tmp_path_factory.mktemp("client-secure"))
    pki = certs.make_pki(root)
    meta_uri = f"sqlite:///{root / 'meta.sqlite'}"
    writer = add_user(meta_uri, "writer", "readwrite")
    reader = add_user(meta_uri, "reader", "readonly")
    args = ["--auto-flush-interval", "0", "--metrics-port", "-1", "--allow-anonymous", "none",
            "--tls-cert", str(pki.server.cert_path), "--tls-key", str(pki.server.key_path)]
    with NodeProcess(root / "node", args, meta_uri=meta_uri, http=True) as node:
        yield Secure(node, pki, writer, reader)


def test_rest_over_https_with_tokens(secure: Secure) -> None:
    x, q = scenario.data(31)
    ca = str(secure.pki.ca.cert_path)
    with Milvus("localhost", secure.node.http_port, handler="HTTP", tls_ca=ca, token=secure.writer) as writer:
        assert writer.create_collection({"collection_name": "sec_rest", "dimension": scenario.DIM}).OK()
        assert writer.insert("sec_rest", x, ids=list(range(len(x))))[0].OK()
        assert writer.flush(["sec_rest"]).OK()
    with Milvus("localhost", secure.node.http_port, handler="HTTP", tls_ca=ca, token=secure.reader) as reader:
        status, result = reader.search("sec_rest", 3, q)
        assert status.OK()
        scenario.check_hits(result.ids, result.distances, scenario.l2(x, q), np.arange(len(x)), 3)
        status, ids = reader.insert("sec_rest", x[:2], ids=[900, 901])
        assert status.code == Status.PERMISSION_DENIED and ids == []
        assert reader.flush(["sec_rest"]).code == Status.PERMISSION_DENIED
        assert reader.count_entities("sec_rest") == (Status(), len(x))  # the refused insert wrote nothing
    with Milvus("localhost", secure.node.http_port, handler="HTTP", tls_ca=ca) as anonymous:
        assert anonymous.has_collection("sec_rest")[0].code == Status.PERMISSION_DENIED
    with Milvus("localhost", secure.node.http_port, handler="HTTP", token=secure.writer, retries=0) as plain:
        status, present = plain.has_collection("sec_rest")
        assert status.code in (Status.CONNECT_FAILED, Status.UNEXPECTED_ERROR) and present is False


def test_asyncio_over_tls_with_tokens(secure: Secure) -> None:
    x, q = scenario.data(32)
    ca = secure.pki.ca.pem

    async def main() -> None:
        async with AsyncMilvus("localhost", secure.grpc_port, tls_ca=ca, token=secure.writer) as writer:
            assert (await writer.create_collection({"collection_name": "sec_aio", "dimension": scenario.DIM})).OK()
            assert (await writer.insert("sec_aio", x, ids=list(range(len(x)))))[0].OK()
            assert (await writer.flush(["sec_aio"])).OK()
        async with AsyncMilvus("localhost", secure.grpc_port, tls_ca=ca, token=secure.reader) as reader:
            status, result = await reader.search("sec_aio", 4, q)
            assert status.OK()
            scenario.check_hits(result.ids, result.distances, scenario.l2(x, q), np.arange(len(x)), 4)
            assert (await reader.delete_entity_by_id("sec_aio", [1])).code == Status.PERMISSION_DENIED
            assert (await reader.get_entity_by_id("sec_aio", [1]))[1][0] == x[1].tolist()  # still there
        async with AsyncMilvus("localhost", secure.grpc_port, tls_ca=ca) as anonymous:
            assert (await anonymous.count_entities("sec_aio"))[0].code == Status.PERMISSION_DENIED
        async with AsyncMilvus("localhost", secure.grpc_port, token=secure.writer, retries=0) as plain:
            assert not (await plain.count_entities("sec_aio", timeout=5))[0].OK()

    asyncio.run(main())
