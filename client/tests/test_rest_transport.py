"""The REST transport's plumbing against a small scripted HTTP server (keep-alive reuse and its limits, a
dropped idle connection, refused connections, timeouts, error bodies, the bearer token, https and mutual TLS,
threads sharing one client), and its pure decisions (search replies, error statuses, backoff)."""

from __future__ import annotations

import json
import logging
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from http_double import HttpDouble, HttpServer
from tests.support.certs import make_pki
from tests.support.waiting import free_port

from mishards_client import NotConnectError, ParamError, Status
from mishards_client.rest import RestMilvus
from mishards_client.rest_json import decode_topk, error_status, float_rows_json
from mishards_client.rest_pool import Endpoint, HttpPool, backoff_delay


@pytest.fixture
def double() -> Iterator[tuple[HttpDouble, int]]:
    d = HttpDouble()
    server = HttpServer(d)
    yield d, server.port
    server.stop()


def test_keep_alive_connections_are_reused(double: tuple[HttpDouble, int]) -> None:
    d, port = double
    with RestMilvus("127.0.0.1", port) as client:
        for _ in range(20):
            assert client.server_version() == (Status(message="Success!"), "1.1.1")
    assert len(d.seen) == 20 and len(d.ports()) == 1
    assert [s.path for s in d.seen[:1]] == ["/system/version"]


def test_a_connection_the_server_dropped_is_replaced_transparently(double: tuple[HttpDouble, int]) -> None:
    d, port = double
    with RestMilvus("127.0.0.1", port) as client:
        d.script[:] = ["drop"]
        assert client.server_status()[0].OK()
        assert client.server_status()[0].OK()  # the pooled connection is dead: sent again on a new one
    assert len(d.seen) == 2 and len(d.ports()) == 2


def test_token_sent_as_bearer_header_and_never_shown(double: tuple[HttpDouble, int],
                                                      caplog: pytest.LogCaptureFixture) -> None:
    d, port = double
    caplog.set_level(logging.DEBUG)
    with RestMilvus("127.0.0.1", port, token="s3cr3t-token") as client:
        assert client.server_version()[0].OK()
        assert "s3cr3t" not in repr(client)
    assert d.seen[-1].headers["authorization"] == "Bearer s3cr3t-token"
    assert "s3cr3t" not in caplog.text
    with RestMilvus("127.0.0.1", port) as client:
        client.server_version()
    assert "authorization" not in d.seen[-1].headers


def test_request_bodies_as_milvus_1_1_expects(double: tuple[HttpDouble, int]) -> None:
    d, port = double
    d.script[:] = ["status:201:{\"ids\":[\"7\",\"8\"]}"]
    with RestMilvus("127.0.0.1", port) as client:
        status, ids = client.insert("c", np.array([[0.5, 0.25], [1.0, 2.0]], dtype=np.float32), ids=[7, 8],
                                    partition_tag="p")
        assert status.OK() and ids == [7, 8]
        d.script[:] = ["status:200:{\"num\":1,\"result\":[[{\"id\":\"7\",\"distance\":\"0.500000\"}]]}"]
        status, result = client.search("c", 2, [bytes([1, 255])], partition_tags=["p"], params={"nprobe": 3})
        assert status.OK() and result.id_array == [[7]] and result.ids.tolist() == [[7]]
    insert, search = d.seen
    assert (insert.method, insert.path, insert.headers["content-type"]) == ("POST", "/collections/c/vectors",
                                                                             "application/json")
    assert json.loads(insert.body) == {"ids": ["7", "8"], "partition_tag": "p", "vectors": [[0.5, 0.25], [1.0, 2.0]]}
    assert (search.method, search.path) == ("PUT", "/collections/c/vectors")
    assert json.loads(search.body) == {"search": {"partition_tags": ["p"], "topk": 2, "params": {"nprobe": 3},
                                                  "vectors": [[1, 255]]}}


def test_error_bodies_become_statuses(double: tuple[HttpDouble, int]) -> None:
    d, port = double
    d.script[:] = ['status:403:{"message":"no role","code":3}', "status:502:<html>bad gateway</html>",
                   "status:200:not json", 'status:404:{"message":"Collection c does not exist","code":4}']
    with RestMilvus("127.0.0.1", port) as client:
        assert client.drop_collection("c") == Status(Status.PERMISSION_DENIED)
        status = client.drop_collection("c")
        assert status.code == Status.UNEXPECTED_ERROR and "HTTP 502" in status.message
        status, count = client.count_entities("c")
        assert status.code == Status.UNEXPECTED_ERROR and "not JSON" in status.message and count is None
        assert client.has_collection("c") == (Status(), False)


def test_refused_connections_are_retried_then_connect_failed() -> None:
    with RestMilvus("127.0.0.1", free_port(), retries=2) as client:
        status, version = client.server_version()
    assert status.code == Status.CONNECT_FAILED and version is None and "cannot connect" in status.message


def test_a_refused_connection_is_retried_with_backoff_until_the_server_listens() -> None:
    port = free_port()
    d = HttpDouble()
    servers: list[HttpServer] = []
    pauses: list[float] = []

    def pause(seconds: float) -> None:  # the endpoint comes up during the second backoff
        pauses.append(seconds)
        if len(pauses) == 2:
            servers.append(HttpServer(d, port=port))

    pool = HttpPool(Endpoint("127.0.0.1", port), retries=3, sleep=pause)
    try:
        reply = pool.request("GET", "/system/version")
    finally:
        pool.close()
        for server in servers:
            server.stop()
    assert reply.status == 200 and len(d.seen) == 1
    assert pauses == [backoff_delay(1), backoff_delay(2)]


def test_timeouts_per_call_and_default(double: tuple[HttpDouble, int]) -> None:
    d, port = double
    with RestMilvus("127.0.0.1", port) as client:
        d.script[:] = ["sleep:1.0"]
        assert client.has_collection("c", timeout=0.2) == (Status(Status.UNEXPECTED_ERROR), False)
        d.script[:] = ["sleep:1.0"]
        assert client.flush(["c"], timeout=0.2).message == "Request timeout"
    with RestMilvus("127.0.0.1", port, timeout=0.2) as client:
        d.script[:] = ["sleep:1.0"]
        assert client.compact("c").message == "Request timeout"
        d.script[:] = ["sleep:0.4"]
        assert client.compact("c", timeout=5).OK()


def test_threads_share_one_client(double: tuple[HttpDouble, int]) -> None:
    d, port = double
    errors: list[BaseException] = []
    with RestMilvus("127.0.0.1", port, pool_size=4) as client:

        def work() -> None:
            try:
                for _ in range(25):
                    assert client.server_version()[1] == "1.1.1"
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert not errors and len(d.seen) == 150
    assert len(d.ports()) < 150  # connections were reused across calls and threads
    with pytest.raises(NotConnectError):
        client.server_version()


@pytest.mark.parametrize("mutual", [False, True])
def test_https_and_mutual_tls(tmp_path: Path, mutual: bool) -> None:
    pki = make_pki(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(pki.server.cert_path), str(pki.server.key_path))
    if mutual:
        context.load_verify_locations(cafile=str(pki.ca.cert_path))
        context.verify_mode = ssl.CERT_REQUIRED
    d = HttpDouble()
    server = HttpServer(d, context)
    try:
        extra = {"tls_cert": pki.client.pem, "tls_key": pki.client.key_pem} if mutual else {}
        with RestMilvus("localhost", server.port, tls_ca=str(pki.ca.cert_path), token="t", **extra) as client:
            assert client.url.startswith("https://")
            assert client.server_version()[1] == "1.1.1"
        assert d.seen[-1].headers["authorization"] == "Bearer t"
        with RestMilvus("localhost", server.port, tls=True, retries=0) as untrusted:  # system roots only
            assert untrusted.server_version()[0].code == Status.CONNECT_FAILED
        if mutual:
            with RestMilvus("localhost", server.port, tls_ca=pki.ca.pem, retries=0) as anonymous:
                assert not anonymous.server_version()[0].OK()
    finally:
        server.stop()


def test_decode_search_reply_pads_missing_hits() -> None:
    doc = {"num": 3, "result": [[{"id": "5", "distance": "0.250000"}, {"id": "9", "distance": "1.500000"}],
                                [], [{"id": "2", "distance": "0.000000"}]]}
    ids, distances = decode_topk(doc, 4)
    assert ids.tolist() == [[5, 9], [-1, -1], [2, -1]]
    assert distances.dtype == np.float32 and distances.tolist() == [[0.25, 1.5], [0.0, 0.0], [0.0, 0.0]]
    ids, _ = decode_topk({"num": 0, "result": []}, 4)
    assert ids.shape == (0, 0)
    with pytest.raises(ValueError):
        decode_topk({"num": 1}, 4)


def test_error_status_decisions() -> None:
    assert error_status(400, b'{"message":"bad","code":9}') == Status(9)
    assert error_status(401, b"denied").code == Status.PERMISSION_DENIED
    assert error_status(500, b'{"message":"OK","code":0}').code == Status.UNEXPECTED_ERROR
    assert error_status(404, b"server=oatpp\ncode=404").message.startswith("HTTP 404")
    assert error_status(503, b"").message == "HTTP 503"


def test_backoff_doubles_up_to_its_cap() -> None:
    assert [backoff_delay(n, 0.1, 0.5) for n in (1, 2, 3, 4)] == [0.1, 0.2, 0.4, 0.5]


def test_float_rows_json_is_exact_for_every_float32() -> None:
    rng = np.random.default_rng(3)
    patterns = rng.integers(0, 2**32, size=(3000, 64), dtype=np.uint64).astype(np.uint32).view(np.float32)
    cases = [np.where(np.isfinite(patterns), patterns, np.float32(1.5)).astype(np.float32),  # subnormals too
             *((rng.standard_normal((500, 32)) * scale).astype(np.float32) for scale in (1e-30, 1e-4, 1, 1e6, 1e37)),
             np.array([[0.0, -0.0, 1.0, -1.0, 10.0, 1000.0, 1e-45, -1e-45, 3.4028235e38, -3.4028235e38,
                        1.1754944e-38, 0.1, 9.999999e-5, 99999.99, 1e10]], dtype=np.float32)]
    for data in cases:
        text = float_rows_json(data)
        back = np.array(json.loads(text), dtype=np.float32)
        assert back.shape == data.shape and back.view(np.uint32).tolist() == data.view(np.uint32).tolist()
    assert float_rows_json(np.array([[1.5, -0.0]], dtype=np.float32)) == b"[[ 150000000e-08,        -0e+00]]"
    with pytest.raises(ParamError):
        float_rows_json(np.array([[1.0, np.nan]], dtype=np.float32))
