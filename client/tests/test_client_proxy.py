"""Through a proxy (one LocalCluster with a read node for the module): the ported pymilvus scenario; an
automatic-id insert sent again under the same ``mishards-request-key`` (what the client does when it retries one)
is answered with the first attempt's ids and applied once; a hybrid collection."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from test_client_compat import run_ported
from tests.support.cluster import LocalCluster

from mishards_client import Milvus, Status, codec


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    started = LocalCluster(Path(tmp_path_factory.mktemp("client-proxy")), readers=1)
    started.start()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def proxy_client(cluster: LocalCluster) -> Iterator[Milvus]:
    host, _, port = cluster.proxy.address.rpartition(":")
    with Milvus(host, port) as client:
        yield client


def test_ported_scenario_through_the_proxy(cluster: LocalCluster, tmp_path: Path) -> None:
    # First: the scenario expects a server nothing else has used.
    run_ported(cluster.proxy.address, tmp_path)


def _insert_with_key(client: Milvus, key: str, vectors: np.ndarray) -> list[int]:
    request = codec.encode_insert("k", codec.to_records(vectors), None, None, "{}")
    reply = client._call("Insert", request, 30, metadata=(("mishards-request-key", key),))
    code, reason, ids = codec.decode_vector_ids(reply)
    assert code == 0, reason
    return ids.tolist()


def test_repeated_request_key_applies_once_through_the_proxy(proxy_client: Milvus) -> None:
    assert proxy_client.create_collection({"collection_name": "k", "dimension": 4}).OK()
    vectors = np.arange(12, dtype=np.float32).reshape(3, 4)
    key = uuid.uuid4().hex
    first = _insert_with_key(proxy_client, key, vectors)
    again = _insert_with_key(proxy_client, key, vectors)
    other = _insert_with_key(proxy_client, uuid.uuid4().hex, vectors)
    assert first == again and len(first) == 3 and set(other).isdisjoint(first)
    assert proxy_client.flush(["k"]).OK()
    assert proxy_client.count_entities("k") == (Status(), 6)
    status, ids = proxy_client.insert("k", vectors)  # the client's own path: a fresh key per insert
    assert status.OK() and set(ids).isdisjoint(first + other)
    assert proxy_client.flush(["k"]).OK()
    assert proxy_client.count_entities("k") == (Status(), 9)


def test_hybrid_through_the_proxy(proxy_client: Milvus) -> None:
    from mishards_client import hybrid as h

    fields = [h.scalar_field("n", h.DataType.INT64), h.vector_field("v", 4)]
    assert proxy_client.create_hybrid_collection("hy", fields).OK()
    vectors = np.eye(4, dtype=np.float32).repeat(5, axis=0) + np.arange(20, dtype=np.float32)[:, None] / 100
    status, ids = proxy_client.insert_entities("hy", {"n": np.arange(20)}, vectors, ids=list(range(1, 21)))
    assert status.OK() and ids == list(range(1, 21))
    assert proxy_client.flush(["hy"]).OK()
    dsl = h.bool_query(must=[h.range_query("n", GTE=10), h.vector("v", 3, vectors[:1])])
    status, result = proxy_client.hybrid_search("hy", dsl)
    assert status.OK() and result is not None
    passing = np.arange(10, 20)
    d = ((vectors[passing] - vectors[0]) ** 2).sum(1)
    assert result.ids[0].tolist() == (passing[np.argsort(d, kind="stable")[:3]] + 1).tolist()
    assert proxy_client.drop_hybrid_collection("hy").OK()
