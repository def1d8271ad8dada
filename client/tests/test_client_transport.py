"""The client's transport against a small real gRPC server: token metadata, retries on UNAVAILABLE (and which
calls are retried), deadlines, TLS with and without a client certificate, channel pooling under threads."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from grpc_double import Double, serve
from tests.support.certs import make_pki

from mishards_client import Milvus, Status
from mishards_client._grpc import milvus_pb2 as pb


@pytest.fixture
def double() -> Iterator[tuple[Double, int]]:
    d = Double()
    server, port = serve(d)
    yield d, port
    server.stop(None)


def test_token_sent_as_bearer_metadata_and_never_shown(double: tuple[Double, int],
                                                        caplog: pytest.LogCaptureFixture) -> None:
    d, port = double
    caplog.set_level(logging.DEBUG)
    client = Milvus("127.0.0.1", port, token="s3cr3t-token")
    status, version = client.server_version()
    assert status.OK() and version == "1.1.1"
    assert d.received[-1].metadata.get("authorization") == "Bearer s3cr3t-token"
    assert "s3cr3t" not in repr(client) and "s3cr3t" not in repr(client._settings)
    assert "s3cr3t" not in caplog.text
    client.close()


def test_no_token_no_authorization_header(double: tuple[Double, int]) -> None:
    d, port = double
    with Milvus("127.0.0.1", port) as client:
        assert client.has_collection("c") == (Status(), True)
    assert "authorization" not in d.received[-1].metadata


def test_idempotent_call_retried_on_unavailable(double: tuple[Double, int]) -> None:
    d, port = double
    d.script[:] = ["unavailable", "unavailable"]
    with Milvus("127.0.0.1", port, retries=3, retry_backoff=0.01) as client:
        status, present = client.has_collection("c")
    assert status.OK() and present
    assert d.methods() == ["HasCollection"] * 3


def test_retries_exhausted_give_connect_failed(double: tuple[Double, int]) -> None:
    d, port = double
    d.script[:] = ["unavailable"] * 5
    with Milvus("127.0.0.1", port, retries=2, retry_backoff=0.01) as client:
        status, present = client.has_collection("c")
    assert status.code == Status.CONNECT_FAILED and not present
    assert "scripted outage" in status.message
    assert len(d.received) == 3


def test_insert_with_ids_retried_and_auto_id_insert_retried_under_one_request_key(double: tuple[Double, int]) -> None:
    d, port = double
    vectors = np.ones((2, 4), dtype=np.float32)
    with Milvus("127.0.0.1", port, retry_backoff=0.01) as client:
        d.script[:] = ["unavailable"]
        status, ids = client.insert("c", vectors, ids=[1, 2])
        assert status.OK() and ids == [1, 2]
        assert d.methods() == ["Insert", "Insert"]
        assert d.received[0].request == d.received[1].request
        d.received.clear()
        d.script[:] = ["unavailable", "unavailable"]
        status, _ = client.insert("c", vectors)
        assert status.OK()
    keys = [r.metadata.get("mishards-request-key") for r in d.received]
    assert len(keys) == 3 and keys[0] is not None and len(keys[0]) == 32 and len(set(keys)) == 1


def test_auto_id_inserts_get_distinct_request_keys(double: tuple[Double, int]) -> None:
    d, port = double
    with Milvus("127.0.0.1", port) as client:
        client.insert("c", np.ones((1, 4), dtype=np.float32))
        client.insert("c", np.ones((1, 4), dtype=np.float32))
    keys = {r.metadata["mishards-request-key"] for r in d.received}
    assert len(keys) == 2


def test_inserts_not_retried_when_retry_inserts_is_off(double: tuple[Double, int]) -> None:
    d, port = double
    d.script[:] = ["unavailable", "unavailable"]
    with Milvus("127.0.0.1", port, retry_backoff=0.01, retry_inserts=False) as client:
        status, ids = client.insert("c", np.ones((2, 4), dtype=np.float32), ids=[1, 2])
        assert status.code == Status.CONNECT_FAILED and ids == []
        assert client.has_collection("c")[1]  # other calls still are (one more outage, then success)
    assert d.methods() == ["Insert", "HasCollection", "HasCollection"]


def test_no_retry_when_retries_zero(double: tuple[Double, int]) -> None:
    d, port = double
    d.script[:] = ["unavailable"]
    with Milvus("127.0.0.1", port, retries=0) as client:
        assert client.drop_collection("c").code == Status.CONNECT_FAILED
    assert len(d.received) == 1


def test_per_call_timeout_and_default_deadline(double: tuple[Double, int]) -> None:
    d, port = double
    with Milvus("127.0.0.1", port) as client:
        d.script[:] = ["sleep:1.0"]
        status, _ = client.has_collection("c", timeout=0.2)
        assert status.code == Status.UNEXPECTED_ERROR and status.message == "Request timeout"
    with Milvus("127.0.0.1", port, timeout=0.2) as client:
        d.script[:] = ["sleep:1.0"]
        status = client.flush(["c"])  # pymilvus' default timeout None: the client's default deadline applies
        assert status.message == "Request timeout"
        d.script[:] = ["sleep:0.5"]
        assert client.flush(["c"], timeout=5).OK()


def test_shared_client_across_threads_uses_pooled_channels(double: tuple[Double, int]) -> None:
    _, port = double
    client = Milvus("127.0.0.1", port, pool="QueuePool", pool_size=3)
    results: list[bool] = []

    def work() -> None:
        for _ in range(20):
            results.append(client.has_collection("c")[1])

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [True] * 120
    assert client._transport is not None and len(client._transport._channels) == 3
    client.close()


def test_context_exit_releases_connections_and_the_client_stays_usable(double: tuple[Double, int]) -> None:
    _, port = double
    client = Milvus("127.0.0.1", port)
    with client as entered:
        assert entered is client and client.has_collection("c")[1]
        assert client._transport is not None and len(client._transport._channels) == 1
    assert client._transport is not None and client._transport._channels == []
    assert client.has_collection("c")[1]  # as with pymilvus, usable after the with block
    client.close()


def test_closed_client_refuses_calls(double: tuple[Double, int]) -> None:
    from mishards_client import NotConnectError

    _, port = double
    client = Milvus("127.0.0.1", port)
    client.close()
    with pytest.raises(NotConnectError):
        client.has_collection("c")
    with pytest.raises(NotConnectError):
        client.flush(["c"], _async=True)


@pytest.mark.parametrize("mutual", [False, True])
def test_tls_server_and_mutual_tls(tmp_path: Path, mutual: bool) -> None:
    pki = make_pki(tmp_path)
    creds = grpc.ssl_server_credentials(
        [(pki.server.key_pem, pki.server.pem)], root_certificates=pki.ca.pem if mutual else None,
        require_client_auth=mutual)
    d = Double()
    server, port = serve(d, creds)
    try:
        kwargs: dict[str, Any] = ({"tls_cert": str(pki.client.cert_path), "tls_key": str(pki.client.key_path)}
                                  if mutual else {})
        with Milvus("localhost", port, tls=True, tls_ca=str(pki.ca.cert_path), token="t", **kwargs) as client:
            status, version = client.server_version(timeout=10)
            assert status.OK() and version == "1.1.1"
        assert d.received[-1].metadata["authorization"] == "Bearer t"
        # Plaintext against the TLS port fails cleanly, as does TLS without trusting the CA.
        with Milvus("localhost", port, retries=0) as plain:
            assert plain.server_version(timeout=3)[0].code in (Status.CONNECT_FAILED, Status.UNEXPECTED_ERROR)
        with Milvus("localhost", port, tls=True, retries=0) as untrusted:
            assert not untrusted.server_version(timeout=3)[0].OK()
        if mutual:
            with Milvus("localhost", port, tls_ca=pki.ca.pem, retries=0) as anonymous:
                assert not anonymous.server_version(timeout=3)[0].OK()
    finally:
        server.stop(None)


def test_request_bytes_are_protobuf_compatible(double: tuple[Double, int]) -> None:
    d, port = double
    vectors = np.arange(12, dtype=np.float32).reshape(3, 4)
    with Milvus("127.0.0.1", port) as client:
        client.insert("c", vectors, ids=[7, 8, 9], partition_tag="p", params={"a": 1})
    sent = pb.InsertParam.FromString(d.received[-1].request)
    assert sent.collection_name == "c" and sent.partition_tag == "p" and list(sent.row_id_array) == [7, 8, 9]
    assert [list(r.float_data) for r in sent.row_record_array] == vectors.tolist()
    assert sent.extra_params[0].key == "params" and sent.extra_params[0].value == '{"a":1}'
