"""Hostile clients against a real proxy cluster (a writer, two read nodes, the proxy, on loopback).

Random field values and random bytes on every MilvusService method, messages over the nodes' size cap, clients
that open calls and never read the replies (raw HTTP/2 with a zero receive window), connections that stall
halfway through the handshake, and a flood of hundreds of channels. No reply may be a gRPC UNKNOWN (an
exception escaping a handler); after each test the proxy and every node still answer a search exactly.
Requests are generated from a fixed seed, so a failure names the request that caused it.
"""

from __future__ import annotations

import functools
import random
import socket
import struct
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import numpy as np
import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor  # type: ignore[import-untyped]

from coordinator.errors import ErrorCode
from milvus_wire import milvus_pb2, milvus_pb2_grpc, status_pb2
from tests.support.cluster import LocalCluster
from tests.support.nodeproc import CHANNEL_OPTIONS
from tests.support.requests import L2, TimedStub, assert_search_exact, create, flush, insert_ok, ok, search
from tests.support.waiting import poll_for

DIM = 8
ROWS = 300
SERVICE = milvus_pb2.DESCRIPTOR.services_by_name["MilvusService"]
METHODS = [m.name for m in SERVICE.methods]
# What a client may see besides an in-band status: RESOURCE_EXHAUSTED (a message over a size cap). Every method of
# the 1.1 service is served, the hybrid ones too: none answers UNIMPLEMENTED.
TOLERATED = {grpc.StatusCode.RESOURCE_EXHAUSTED}
CALL_TIMEOUT = 60.0
NODE_MESSAGE_CAP = "16MB"
MAX_GENERATED = 8 << 20  # the generator's own bound: random requests stay small (over-size has its own test)


def message_class(full_name: str) -> Any:
    name = full_name.rpartition(".")[2]
    return getattr(milvus_pb2, name, None) or getattr(status_pb2, name)


REQUEST = {m.name: message_class(m.input_type.full_name) for m in SERVICE.methods}
REPLY = {m.name: message_class(m.output_type.full_name) for m in SERVICE.methods}


# -- random requests -------------------------------------------------------------------------------------

STRINGS = ["", "c", "c", "c", "missing", " ", "_default", "..", "../../etc", "a/b", "\x00", "naïve", "{", "[[[",
           "{\"nprobe\": 10}", "{\"nprobe\": -1}", "{\"nlist\": 1e309}", "(a+)+$", "p" * 256, "x" * 70_000]
INTS = [0, 1, -1, 8, 10, 16384, 16385, 2**31 - 1, -(2**31), 2**62, -(2**62)]
FLOATS = [0.0, 1.0, -1.0, float("nan"), float("inf"), -float("inf"), 3.4e38, 1e-45]


def random_value(field: FieldDescriptor, rng: random.Random, depth: int, in_list: bool = False) -> Any:
    kind = field.type
    if kind == FieldDescriptor.TYPE_MESSAGE:
        return random_message(field.message_type, rng, depth + 1, small=in_list)
    if kind == FieldDescriptor.TYPE_STRING:
        if rng.random() < 0.8:
            text = rng.choice(STRINGS)
            return text[:300] if in_list else text  # one long string, not thousands
        return "".join(chr(rng.randrange(1, 0x3000)) for _ in range(rng.randrange(20)))
    if kind == FieldDescriptor.TYPE_BYTES:
        return rng.randbytes(rng.choice([0, 1, 2, 7, 8, 100]))
    if kind in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        return rng.choice(FLOATS) if rng.random() < 0.5 else rng.uniform(-10, 10)
    if kind == FieldDescriptor.TYPE_BOOL:
        return rng.random() < 0.5
    if kind == FieldDescriptor.TYPE_ENUM:
        return rng.choice([v.number for v in field.enum_type.values])
    value = rng.choice(INTS) if rng.random() < 0.7 else rng.randrange(-1000, 1000)
    if kind in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SFIXED32):
        return max(-(2**31), min(2**31 - 1, value))
    if kind in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32):
        return abs(value) % 2**32
    if kind in (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64):
        return abs(value)
    return value


def random_message(descriptor: Descriptor, rng: random.Random, depth: int = 0, small: bool = False) -> Any:
    """A message of this type with random fields: names mostly of the real collection (to reach deep paths),
    extreme numbers, NaN, hostile strings, lists from empty to a few thousand items."""
    msg = message_class(descriptor.full_name)()
    for field in descriptor.fields:
        if depth > 3 or rng.random() < 0.25:
            continue
        if field.is_repeated:
            count = rng.choice([0, 1, 2, DIM, DIM, 3, 50, 1001, 5000] if depth == 0 else [0, 1, DIM, DIM, 9])
            target = getattr(msg, field.name)
            for _ in range(count):
                value = random_value(field, rng, depth, in_list=True)
                if field.type == FieldDescriptor.TYPE_MESSAGE:
                    target.add().CopyFrom(value)
                else:
                    target.append(value)
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            getattr(msg, field.name).CopyFrom(random_value(field, rng, depth, in_list=small))
        else:
            setattr(msg, field.name, random_value(field, rng, depth, in_list=small))
    return msg


# -- the cluster -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalCluster, np.ndarray, np.ndarray]]:
    root = tmp_path_factory.mktemp("proxy-bad-input")
    # No write retries: the writer is up throughout, and whatever it refuses must be answered at once.
    with LocalCluster(root, readers=2, node_args=["--grpc-max-message-size", NODE_MESSAGE_CAP],
                      proxy_args=["--write-retry-timeout", "0"]) as running:
        stub = TimedStub(running.stub())
        ok(create(stub, "c", DIM, L2))
        x = np.random.default_rng(3).random((ROWS, DIM), dtype=np.float32)
        ids = insert_ok(stub, "c", x)
        ok(flush(stub, "c"))

        def searchable() -> bool:
            status, got, _ = search(stub, "c", x[:1], 1)
            return status.error_code == 0 and got.shape == (1, 1) and int(got[0, 0]) == int(ids[0])

        poll_for(searchable, 60, what="the rows to be searchable through the proxy")
        yield running, x, ids


def _answered(stub: Any, queries: np.ndarray) -> tuple[Any, np.ndarray, np.ndarray] | None:
    """A search's answer, or None while the node's catalog snapshot predates the module's setup: it does not know
    the collection yet, or knows it from before the flush (a success without rows)."""
    found = search(TimedStub(stub, 30), "c", queries, 5)
    status, got_ids, _ = found
    if status.error_code == ErrorCode.COLLECTION_NOT_EXISTS or (status.error_code == 0 and got_ids.size == 0):
        return None
    return found


@pytest.fixture(autouse=True)
def everyone_still_answers(cluster: tuple[LocalCluster, np.ndarray, np.ndarray]) -> Iterator[None]:
    """After every test: each process is running, and the proxy and every node answer a search exactly."""
    yield
    running, x, ids = cluster
    queries = x[[0, 17, 299]]
    for name, stub in [("proxy", running.stub()), *((n.address, n.stub()) for n in running.nodes)]:
        # A read node asked directly (no revision header) may not have polled the catalog since the module's
        # setup: it catches up within its refresh interval (longer on a busy machine).
        answered = poll_for(functools.partial(_answered, stub, queries), 10, what=f"{name} to know the collection")
        assert answered is not None
        status, got_ids, got_dist = answered
        assert status.error_code == 0, f"{name}: {status.reason}"
        assert_search_exact(got_ids, got_dist, x, ids, queries, 5, L2)
    for proc in [running.proxy.proc, *(n.proc for n in running.nodes)]:
        assert proc is not None and proc.poll() is None, "a process exited"


def raw_method(channel: grpc.Channel, method: str) -> Any:
    return channel.unary_unary(f"/milvus.grpc.MilvusService/{method}", request_serializer=None,
                               response_deserializer=None)


def check_answer(method: str, payload: bytes, call: Any) -> None:
    """The call is answered in-band (a reply of the method's type) or with a tolerated gRPC status."""
    try:
        reply = call(payload, timeout=CALL_TIMEOUT)
    except grpc.RpcError as exc:
        assert exc.code() in TOLERATED, (
            f"{method} answered {exc.code().name} ({exc.details()}) to {payload[:200]!r}... ({len(payload)} bytes)")
        return
    REPLY[method].FromString(reply)  # a well-formed reply of the right type


@pytest.fixture(scope="module")
def channel(cluster: tuple[LocalCluster, np.ndarray, np.ndarray]) -> Iterator[grpc.Channel]:
    running, _, _ = cluster
    with grpc.insecure_channel(running.proxy.address, options=CHANNEL_OPTIONS) as opened:
        yield opened


# -- random fields and random bytes ----------------------------------------------------------------------

# Calls that change the cluster are sent against other collections only (the one searched must stay as is).
CHANGING = {"DropCollection", "DropPartition", "DeleteByID", "DropIndex", "CreateIndex", "Compact",
            "ReleaseCollection", "Insert"}


def _aim(method: str, msg: Any, rng: random.Random) -> Any:
    """Keep the searched collection intact: changing calls name another one (often one that exists)."""
    if method in CHANGING and getattr(msg, "collection_name", "") == "c":
        msg.collection_name = rng.choice(["scratch", "missing", ""])
    return msg


@pytest.mark.parametrize("method", METHODS)
def test_random_fields_on_every_method(channel: grpc.Channel, method: str) -> None:
    rng = random.Random(f"fields-{method}")
    call = raw_method(channel, method)
    descriptor = REQUEST[method].DESCRIPTOR
    for _ in range(25):
        msg = _aim(method, random_message(descriptor, rng), rng)
        payload = msg.SerializeToString()
        assert len(payload) < MAX_GENERATED, f"generated {len(payload)} bytes"
        check_answer(method, payload, call)


@pytest.mark.parametrize("method", METHODS)
def test_random_bytes_on_every_method(channel: grpc.Channel, method: str) -> None:
    rng = random.Random(f"bytes-{method}")
    call = raw_method(channel, method)
    for size in [0, 1, 2, 3, 5, 8, 13, 64, 200, 1000, 4096, 65_536]:
        payload = rng.randbytes(size)
        if method in CHANGING:  # valid prefixes could name the searched collection: prefix another name
            payload = b"\x0a\x07scratch" + payload
        check_answer(method, payload, call)


def test_truncated_and_corrupted_real_requests(channel: grpc.Channel,
                                               cluster: tuple[LocalCluster, np.ndarray, np.ndarray]) -> None:
    """A real search and a real insert cut at every length and with flipped bytes."""
    _, x, _ = cluster
    rng = random.Random("truncated")
    query = milvus_pb2.SearchParam(collection_name="c", topk=3, query_record_array=[
        milvus_pb2.RowRecord(float_data=v) for v in x[:2].tolist()]).SerializeToString()
    rows = milvus_pb2.InsertParam(collection_name="scratch", row_record_array=[
        milvus_pb2.RowRecord(float_data=v) for v in x[:2].tolist()]).SerializeToString()
    for method, payload in (("Search", query), ("SearchByID", query), ("Insert", rows), ("Cmd", query)):
        call = raw_method(channel, method)
        for cut in range(0, len(payload), 3):
            check_answer(method, payload[:cut], call)
        for _ in range(30):
            damaged = bytearray(payload)
            for _ in range(rng.randrange(1, 4)):
                damaged[rng.randrange(len(damaged))] = rng.randrange(256)
            check_answer(method, bytes(damaged), call)


# -- size, slow and flooding clients ---------------------------------------------------------------------


def test_messages_over_the_nodes_cap(channel: grpc.Channel) -> None:
    """Requests bigger than the nodes accept (16 MB here): refused cleanly, whichever hop refuses them."""
    big = np.zeros((4200, 1024), dtype=np.float32)  # 17 MB of vectors
    records = [milvus_pb2.RowRecord(float_data=v) for v in big.tolist()]
    insert = milvus_pb2.InsertParam(collection_name="scratch", row_record_array=records).SerializeToString()
    query = milvus_pb2.SearchParam(collection_name="c", topk=1, query_record_array=records).SerializeToString()
    for method, payload in (("Insert", insert), ("Search", query), ("Cmd", b"\x0a" + b"\xff\xff\xff\x08" + query)):
        check_answer(method, payload, raw_method(channel, method))


def _frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def _literal(name: str, value: str) -> bytes:
    """An HPACK literal header field without indexing, new name, no Huffman coding (lengths under 127)."""
    return b"\x00" + bytes([len(name)]) + name.encode() + bytes([len(value)]) + value.encode()


def stalled_call(address: str, method: str, message: bytes) -> socket.socket:
    """A raw HTTP/2 client that sends one gRPC call with a receive window of 0 and never reads: the server can
    send no reply data. The caller keeps the socket open (and closes it at the end)."""
    host, _, port = address.rpartition(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    settings = struct.pack(">HI", 0x4, 0)  # SETTINGS_INITIAL_WINDOW_SIZE = 0
    headers = b"".join(_literal(k, v) for k, v in ((":method", "POST"), (":scheme", "http"),
                                                   (":path", f"/milvus.grpc.MilvusService/{method}"),
                                                   (":authority", address), ("content-type", "application/grpc"),
                                                   ("te", "trailers")))
    body = b"\x00" + struct.pack(">I", len(message)) + message
    sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + _frame(0x4, 0, 0, settings)
                 + _frame(0x1, 0x4, 1, headers) + _frame(0x0, 0x1, 1, body))
    return sock


def test_clients_that_never_read_their_replies(cluster: tuple[LocalCluster, np.ndarray, np.ndarray]) -> None:
    """Forty raw HTTP/2 clients each start a search with a large reply and never grant a byte of window; a
    dozen more stall halfway through the connection preface. Meanwhile and afterwards everyone answers."""
    running, x, ids = cluster
    query = milvus_pb2.SearchParam(collection_name="c", topk=ROWS, query_record_array=[
        milvus_pb2.RowRecord(float_data=v) for v in x[:100].tolist()]).SerializeToString()
    sockets = [stalled_call(running.proxy.address, "Search", query) for _ in range(40)]
    host, _, port = running.proxy.address.rpartition(":")
    for _ in range(12):
        half = socket.create_connection((host, int(port)), timeout=10)
        half.sendall(b"PRI * HTTP/2.0\r\n")
        sockets.append(half)
    try:
        status, got_ids, got_dist = search(TimedStub(running.stub(), 30), "c", x[:3], 4)
        assert status.error_code == 0, status.reason
        assert_search_exact(got_ids, got_dist, x, ids, x[:3], 4, L2)
    finally:
        for sock in sockets:
            sock.close()


def test_a_flood_of_channels(cluster: tuple[LocalCluster, np.ndarray, np.ndarray]) -> None:
    """Three hundred channels, each its own connection, each searching once, sixty at a time."""
    running, x, ids = cluster
    failures: list[str] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        with grpc.insecure_channel(running.proxy.address, options=[("grpc.use_local_subchannel_pool", 1)]) as ch:
            stub = TimedStub(milvus_pb2_grpc.MilvusServiceStub(ch), 60)
            try:
                status, got, _ = search(stub, "c", x[i % ROWS][None], 1)
            except grpc.RpcError as exc:
                with lock:
                    failures.append(f"{i}: {exc.code().name}")
                return
            if status.error_code or int(got[0, 0]) != int(ids[i % ROWS]):
                with lock:
                    failures.append(f"{i}: {status.error_code} {status.reason} {got.tolist()}")

    with ThreadPoolExecutor(60) as pool:
        list(pool.map(one, range(300)))
    assert not failures, failures[:10]



def _oversized_insert() -> bytes:
    big = np.zeros((4200, 1024), dtype=np.float32)  # 17 MB of vectors, over the nodes' 16 MB
    return milvus_pb2.InsertParam(collection_name="scratch", row_record_array=[
        milvus_pb2.RowRecord(float_data=v) for v in big.tolist()]).SerializeToString()


@pytest.mark.parametrize(("method", "payload"), [
    ("Insert", b"\x0a\x07scratch\x12\xff"),  # a length that runs past the end: no message at all
    ("CreateCollection", b"\x0a\x07scratch\x12\xff"),
    ("DeleteByID", b"\x0a\x07scratch\x12\xff"),
    ("Insert", None),  # over the writer's message cap
], ids=["Insert-truncated", "CreateCollection-truncated", "DeleteByID-truncated", "Insert-oversized"])
def test_a_write_the_writer_refuses_to_read_is_answered_as_bad_input(channel: grpc.Channel, method: str,
                                                                    payload: bytes | None) -> None:
    request = payload if payload is not None else _oversized_insert()
    reply = REPLY[method].FromString(raw_method(channel, method)(request, timeout=CALL_TIMEOUT))
    status = reply if isinstance(reply, status_pb2.Status) else reply.status
    assert status.error_code != 0
    assert "outcome unknown" not in status.reason and "could not be reached" not in status.reason, status.reason
    assert status.error_code not in (2,), status.reason  # CONNECT_FAILED: the writer was reached
