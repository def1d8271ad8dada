"""``AsyncMilvus`` against a real node (module-scoped): the shared scenario gives the same results as the sync
gRPC client, concurrent calls under ``asyncio.gather`` each match the numpy oracle; then, against a small
scripted gRPC server, retries on UNAVAILABLE with backoff, request keys, deadlines, the bearer token and TLS."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
import transport_scenario as scenario
from grpc_double import Double, serve
from tests.support.certs import make_pki
from tests.support.nodeproc import NodeProcess

from mishards_client import Milvus, NotConnectError, ParamError, Status
from mishards_client import hybrid as h
from mishards_client.aio import AsyncMilvus


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    args = ["--auto-flush-interval", "0", "--metrics-port", "-1"]
    with NodeProcess(tmp_path_factory.mktemp("aio-client"), args) as proc:
        yield proc


@pytest.fixture(scope="module")
def grpc_client(node: NodeProcess) -> Iterator[Milvus]:
    client = Milvus(uri=f"tcp://{node.address}")
    yield client
    client.close()


@pytest.fixture
def double() -> Iterator[tuple[Double, int]]:
    d = Double()
    server, port = serve(d)
    yield d, port
    server.stop(None)


def test_same_scenario_results_over_asyncio_and_grpc(node: NodeProcess, grpc_client: Milvus) -> None:
    blocking = scenario.Blocking(lambda: AsyncMilvus(uri=f"tcp://{node.address}"))
    try:
        over_aio = scenario.run(blocking, "sc_aio")
        assert blocking.connected() and blocking.handler == "GRPC"
        assert blocking.server_version() == (Status(message="Success!"), "1.1.1")
        assert blocking.get_config("cache", "cache_size") == grpc_client.get_config("cache", "cache_size")
    finally:
        blocking.close()
    assert over_aio == scenario.run(grpc_client, "sc_sync")


def test_concurrent_calls_share_one_client(node: NodeProcess) -> None:
    x, q = scenario.data(21)
    batches = np.array_split(np.arange(len(x)), 8)

    async def main() -> None:
        async with AsyncMilvus(uri=f"tcp://{node.address}", pool_size=3) as client:
            assert (await client.create_collection({"collection_name": "conc", "dimension": scenario.DIM})).OK()
            inserted = await asyncio.gather(*(client.insert("conc", x[b], ids=(b + 1).tolist()) for b in batches))
            assert all(s.OK() for s, _ in inserted)
            assert sorted(i for _, got in inserted for i in got) == list(range(1, len(x) + 1))
            assert (await client.flush(["conc"])).OK()
            assert await client.count_entities("conc") == (Status(), len(x))
            searches = await asyncio.gather(*(client.search("conc", 5, q[i:i + 1]) for i in range(len(q))),
                                            client.get_entity_array("conc", [1, 2, 10_000]))
            truth = scenario.l2(x, q)
            for i, (status, result) in enumerate(searches[:-1]):
                assert status.OK()
                scenario.check_hits(result.ids, result.distances, truth[i:i + 1], np.arange(1, len(x) + 1), 5)
            status, vectors, found = searches[-1]
            assert status.OK() and found.tolist() == [True, True, False] and np.array_equal(vectors[:2], x[:2])
            assert (await client.drop_collection("conc")).OK()
        with pytest.raises(NotConnectError):
            await client.has_collection("conc")

    asyncio.run(main())


def test_hybrid_collections_match_the_sync_client(node: NodeProcess, grpc_client: Milvus) -> None:
    rng = np.random.default_rng(41)
    rows = 200
    age = rng.integers(10, 90, rows).astype(np.int32)
    price = rng.uniform(0, 100, rows).round(2)
    vectors = rng.random((rows, 8), dtype=np.float32)
    fields = [h.scalar_field("age", h.DataType.INT32), h.scalar_field("price", h.DataType.DOUBLE),
              h.vector_field("embedding", 8)]
    queries = vectors[:3] + np.float32(0.01)
    dsl = h.bool_query(must=[h.range_query("age", GTE=30, LT=70), h.vector("embedding", 4, queries)],
                       must_not=[h.range_query("price", GT=75)])

    async def main() -> tuple[list[list[int]], list[dict[str, object] | None]]:
        async with AsyncMilvus(uri=f"tcp://{node.address}") as client:
            assert (await client.create_hybrid_collection("shop_aio", fields)).OK()
            assert await client.has_hybrid_collection("shop_aio") == (Status(), True)
            status, schema = await client.describe_hybrid_collection("shop_aio")
            assert status.OK() and schema is not None and [f.name for f in schema.fields] == ["age", "price",
                                                                                              "embedding"]
            status, ids = await client.insert_entities("shop_aio", {"age": age, "price": price}, vectors,
                                                       ids=list(range(1, rows + 1)))
            assert status.OK() and ids == list(range(1, rows + 1))
            assert (await client.flush(["shop_aio"])).OK()
            assert await client.count_hybrid_collection("shop_aio") == (Status(), rows)
            assert "shop_aio" in (await client.list_hybrid_collections())[1]
            status, result = await client.hybrid_search("shop_aio", dsl)
            assert status.OK() and result is not None
            status, entities = await client.get_entities_by_id("shop_aio", [7, 10_000])
            assert status.OK()
            assert (await client.delete_entities_by_id("shop_aio", [7])).OK()
            assert (await client.flush(["shop_aio"])).OK()
            assert await client.count_hybrid_collection("shop_aio") == (Status(), rows - 1)
            return result.ids.tolist(), entities

    found, entities = asyncio.run(main())
    passing = np.flatnonzero((age >= 30) & (age < 70) & ~(price > 75))
    truth = scenario.l2(vectors[passing], queries)
    assert [sorted(row) for row in found] == [sorted((passing[np.argsort(t)[:4]] + 1).tolist()) for t in truth]
    entity = entities[0]
    assert entities[1] is None and entity is not None and entity["id"] == 7 and entity["age"] == int(age[6])
    assert np.array_equal(np.array(entity["embedding"], dtype=np.float32), vectors[6])
    status, over_sync = grpc_client.hybrid_search("shop_aio", h.bool_query(
        must=[h.range_query("age", GTE=30, LT=70), h.vector("embedding", 4, queries[:1])]))
    assert status.OK() and over_sync is not None and 7 not in over_sync.ids[0].tolist()
    assert grpc_client.drop_hybrid_collection("shop_aio").OK()


def test_retries_on_unavailable_with_backoff_and_request_keys(double: tuple[Double, int]) -> None:
    d, port = double

    async def main() -> None:
        async with AsyncMilvus("127.0.0.1", port, retries=3, retry_backoff=0.01) as client:
            d.script[:] = ["unavailable", "unavailable"]
            assert await client.has_collection("c") == (Status(), True)
            assert d.methods() == ["HasCollection"] * 3
            d.received.clear()
            d.script[:] = ["unavailable"]
            status, _ = await client.insert("c", np.ones((2, 4), dtype=np.float32))  # auto ids: one request key
            assert status.OK()
            keys = [r.metadata.get("mishards-request-key") for r in d.received]
            assert len(keys) == 2 and keys[0] and len(set(keys)) == 1
            assert d.received[0].request == d.received[1].request
        async with AsyncMilvus("127.0.0.1", port, retry_backoff=0.01, retry_inserts=False) as client:
            d.received.clear()
            d.script[:] = ["unavailable"]
            status, _ = await client.insert("c", np.ones((2, 4), dtype=np.float32), ids=[1, 2])
            assert status.code == Status.CONNECT_FAILED and len(d.received) == 1  # one attempt only
        async with AsyncMilvus("127.0.0.1", port, retries=1, retry_backoff=0.01) as client:
            d.received.clear()
            d.script[:] = ["unavailable"] * 3
            status = await client.drop_collection("c")
            assert status.code == Status.CONNECT_FAILED and "scripted outage" in status.message
            assert len(d.received) == 2

    asyncio.run(main())


def test_deadlines_per_call_and_default(double: tuple[Double, int]) -> None:
    d, port = double

    async def main() -> None:
        async with AsyncMilvus("127.0.0.1", port) as client:
            d.script[:] = ["sleep:1.0"]
            status, present = await client.has_collection("c", timeout=0.2)
            assert (status.code, status.message, present) == (Status.UNEXPECTED_ERROR, "Request timeout", False)
        async with AsyncMilvus("127.0.0.1", port, timeout=0.2) as client:
            d.script[:] = ["sleep:1.0"]
            assert (await client.flush(["c"])).message == "Request timeout"
            d.script[:] = ["sleep:0.4"]
            assert (await client.flush(["c"], timeout=5)).OK()

    asyncio.run(main())


def test_token_metadata_and_argument_checks(double: tuple[Double, int]) -> None:
    d, port = double

    async def main() -> None:
        async with AsyncMilvus("127.0.0.1", port, token="s3cr3t") as client:
            assert (await client.server_version())[1] == "1.1.1"
            assert "s3cr3t" not in repr(client)
            with pytest.raises(ParamError):
                await client.search("c", 3, [])
        assert d.received[-1].metadata["authorization"] == "Bearer s3cr3t"
        async with AsyncMilvus("127.0.0.1", port) as client:
            await client.has_collection("c")
        assert "authorization" not in d.received[-1].metadata

    asyncio.run(main())
    with pytest.raises(ParamError):
        AsyncMilvus("127.0.0.1", port, handler="HTTP")
    with pytest.raises(ParamError):
        AsyncMilvus("127.0.0.1", port, retries=-1)


@pytest.mark.parametrize("mutual", [False, True])
def test_tls_and_mutual_tls(tmp_path: Path, mutual: bool) -> None:
    pki = make_pki(tmp_path)
    creds = grpc.ssl_server_credentials([(pki.server.key_pem, pki.server.pem)],
                                        root_certificates=pki.ca.pem if mutual else None,
                                        require_client_auth=mutual)
    d = Double()
    server, port = serve(d, creds)

    async def main() -> None:
        extra = {"tls_cert": str(pki.client.cert_path), "tls_key": str(pki.client.key_path)} if mutual else {}
        async with AsyncMilvus("localhost", port, tls_ca=str(pki.ca.cert_path), token="t", **extra) as client:
            assert (await client.server_version(timeout=10)) == (Status(message="Success!"), "1.1.1")
        async with AsyncMilvus("localhost", port, retries=0) as plain:
            assert not (await plain.server_version(timeout=3))[0].OK()
        if mutual:
            async with AsyncMilvus("localhost", port, tls_ca=pki.ca.pem, retries=0) as anonymous:
                assert not (await anonymous.server_version(timeout=3))[0].OK()

    try:
        asyncio.run(main())
        assert d.received[0].metadata["authorization"] == "Bearer t"
    finally:
        server.stop(None)
