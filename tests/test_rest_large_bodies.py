"""The REST server (in this process, on loopback) reads large bodies in large socket reads and hands the
endpoint every byte: a 10k x 128 insert body arrives whole, its rows reach the backend exactly (read by the
fast path), and the connection's transport reads 4 MiB at a time."""

from __future__ import annotations

import http.client
from collections.abc import Iterator

import numpy as np
import orjson
import pytest

from coordinator.rest.server import READ_SIZE, RestServer, serve_rest
from milvus_wire import milvus_pb2, wire_fastpath_pb2
from tests.support.rest_backend import FakeBackend


@pytest.fixture
def served() -> Iterator[tuple[RestServer, FakeBackend]]:
    backend = FakeBackend(binary=False)
    server = serve_rest(backend, "127.0.0.1", 0, workers=2, max_body=64 << 20)
    try:
        yield server, backend
    finally:
        server.stop()


def test_a_large_insert_body_arrives_whole(served: tuple[RestServer, FakeBackend]) -> None:
    server, backend = served
    rows = np.random.default_rng(3).standard_normal((10_000, 128)).astype(np.float32)
    body = orjson.dumps({"ids": [str(i) for i in range(10_000)], "vectors": rows}, option=orjson.OPT_SERIALIZE_NUMPY)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        for _ in range(2):  # twice on one kept-alive connection
            conn.request("POST", "/collections/c/vectors", body=body, headers={"Content-Type": "application/json"})
            reply = conn.getresponse()
            data = reply.read()
            assert reply.status == 201, data[:200]
            assert orjson.loads(data) == {"ids": [str(i) for i in range(10_000)]}
        assert server._server is not None
        transports = [p.transport for p in server._server.server_state.connections]
        assert transports and all(getattr(t, "max_size", READ_SIZE) == READ_SIZE for t in transports)
    finally:
        conn.close()
    method, request = backend.calls[-1]
    assert method == "Insert"
    sent = wire_fastpath_pb2.InsertParamRaw.FromString(request)
    assert sent.collection_name == "c" and list(sent.row_id_array) == list(range(10_000))
    got = np.array([milvus_pb2.RowRecord.FromString(r).float_data for r in sent.row_record_array], dtype=np.float32)
    assert got.tobytes() == rows.tobytes()
