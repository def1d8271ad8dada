"""Hybrid collections through the client against a real node: create / describe / has / count / list / drop,
entities as columns, filtered searches with the DSL helper against a numpy oracle over the passing rows,
entities by id read back exactly, deletes, refusals."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from tests.support.nodeproc import NodeProcess

from mishards_client import Milvus, ParamError, Status
from mishards_client import hybrid as h

DIM = 8
ROWS = 300


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Milvus]:
    node = NodeProcess(tmp_path_factory.mktemp("client-hybrid"), ["--auto-flush-interval", "0"])
    node.start()
    try:
        host, _, port = node.address.rpartition(":")
        with Milvus(host, port) as c:
            yield c
    finally:
        node.stop()


@pytest.fixture(scope="module")
def shop(client: Milvus) -> dict[str, np.ndarray]:
    fields = [h.scalar_field("age", h.DataType.INT32), h.scalar_field("price", h.DataType.DOUBLE),
              h.scalar_field("member", h.DataType.BOOL), h.vector_field("embedding", DIM)]
    assert client.create_hybrid_collection("shop", fields).OK()
    rng = np.random.default_rng(11)
    data: dict[str, np.ndarray] = {
        "age": rng.integers(10, 90, ROWS).astype(np.int32), "price": rng.uniform(0, 100, ROWS).round(2),
        "member": rng.integers(0, 2, ROWS).astype(bool),
        "vectors": rng.standard_normal((ROWS, DIM)).astype(np.float32), "ids": np.arange(1, ROWS + 1)}
    status, ids = client.insert_entities("shop", {k: data[k] for k in ("age", "price", "member")},
                                         data["vectors"], ids=data["ids"].tolist())
    assert status.OK() and ids == data["ids"].tolist()
    assert client.flush(["shop"]).OK()
    return data


def test_metadata(client: Milvus, shop: dict[str, np.ndarray]) -> None:
    status, schema = client.describe_hybrid_collection("shop")
    assert status.OK() and schema is not None
    assert [(f.name, f.type) for f in schema.fields] == [("age", h.DataType.INT32), ("price", h.DataType.DOUBLE),
                                                         ("member", h.DataType.BOOL),
                                                         ("embedding", h.DataType.VECTOR)]
    assert schema.vector.dimension == DIM and not schema.is_binary
    assert client.has_hybrid_collection("shop") == (Status(), True)
    assert client.count_hybrid_collection("shop") == (Status(), ROWS)
    status, names = client.list_hybrid_collections()
    assert status.OK() and names == ["shop"]
    assert client.has_collection("shop")[1]  # the plain RPCs see it too


def test_filtered_search_against_oracle(client: Milvus, shop: dict[str, np.ndarray]) -> None:
    queries = shop["vectors"][:3] + np.float32(0.05)
    dsl = h.bool_query(must=[h.range_query("age", GTE=30, LT=60), h.term("member", [1]),
                             h.vector("embedding", 5, queries)],
                       must_not=[h.range_query("price", GT=80)])
    status, result = client.hybrid_search("shop", dsl)
    assert status.OK() and result is not None
    passing = (shop["age"] >= 30) & (shop["age"] < 60) & shop["member"] & ~(shop["price"] > 80)
    rows = np.flatnonzero(passing)
    for q in range(3):
        d = ((shop["vectors"][rows].astype(np.float64) - queries[q]) ** 2).sum(1)
        best = np.sort(d)[:5]
        np.testing.assert_allclose(result.distances[q], best, rtol=1e-4, atol=1e-5)
        assert set(result.ids[q].tolist()) <= set(shop["ids"][rows].tolist())


def test_entities_by_id_exact(client: Milvus, shop: dict[str, np.ndarray]) -> None:
    status, entities = client.get_entities_by_id("shop", [5, 100000])
    assert status.OK() and entities[1] is None
    e = entities[0]
    assert e is not None and e["id"] == 5
    assert e["age"] == int(shop["age"][4]) and e["price"] == float(shop["price"][4])
    assert e["member"] == bool(shop["member"][4])
    assert np.array_equal(np.array(e["embedding"], dtype=np.float32), shop["vectors"][4])


def test_refusals(client: Milvus, shop: dict[str, np.ndarray]) -> None:
    q = shop["vectors"][:1]
    status, _ = client.hybrid_search("shop", h.bool_query(must=[h.term("nope", [1]), h.vector("embedding", 5, q)]))
    assert status.code == Status.ILLEGAL_ARGUMENT and "nope" in status.message
    with pytest.raises(ParamError, match="exactly one vector clause"):
        client.hybrid_search("shop", h.bool_query(must=[h.term("age", [1])]))
    with pytest.raises(ParamError, match="missing"):
        client.insert_entities("shop", {"age": [1]}, q)
    with pytest.raises(ParamError, match="range on age"):
        h.range_query("age", BETWEEN=3)
    status, ids = client.insert_entities("nope", {}, q)
    assert status.code == Status.COLLECTION_NOT_EXISTS and ids == []


def test_auto_ids_delete_and_drop(client: Milvus, shop: dict[str, np.ndarray]) -> None:
    fields = [h.scalar_field("n", h.DataType.INT64), h.vector_field("v", 16, metric_type="HAMMING")]
    assert client.create_hybrid_collection("bits", fields).OK()
    codes = np.random.default_rng(2).integers(0, 256, (20, 2), dtype=np.uint8)
    status, ids = client.insert_entities("bits", {"n": np.arange(20)}, codes)
    assert status.OK() and len(ids) == 20
    assert client.flush(["bits"]).OK()
    status, result = client.hybrid_search("bits", h.bool_query(
        must=[h.range_query("n", LT=10), h.vector("v", 1, codes[3:4])]))
    assert status.OK() and result is not None and result.id_array == [[ids[3]]]
    assert client.delete_entities_by_id("bits", ids[:5]).OK()
    assert client.flush(["bits"]).OK()
    assert client.count_hybrid_collection("bits") == (Status(), 15)
    assert client.drop_hybrid_collection("bits").OK()
    assert client.has_hybrid_collection("bits")[1] is False
