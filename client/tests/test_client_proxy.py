"""Through a proxy: an automatic-id insert sent again under the same ``mishards-request-key`` (what the client
does when it retries one) is answered with the first attempt's ids and applied once; the token travels."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from tests.support.cluster import LocalCluster

from mishards_client import Milvus, Status, codec


@pytest.fixture(scope="module")
def proxy_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Milvus]:
    cluster = LocalCluster(Path(tmp_path_factory.mktemp("client-proxy")), readers=1)
    cluster.start()
    try:
        host, _, port = cluster.proxy.address.rpartition(":")
        with Milvus(host, port) as client:
            yield client
    finally:
        cluster.stop()


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
