"""Bad inserts (vectors, ids, sizes, hand-made wire encodings), gets by id and deletes."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import grpc
import numpy as np
import pytest

from milvus_wire import milvus_pb2
from tests.support.bad_requests import (
    DIM,
    EMPTY_VECTORS,
    ILLEGAL_ARGUMENT,
    ILLEGAL_DIMENSION,
    ILLEGAL_ROWRECORD,
    ILLEGAL_VECTOR_ID,
    UNEXPECTED_ERROR,
    WRONG_DIMENSION,
    new_collection,
    one_query,
)
from tests.support.nodeproc import CHANNEL_OPTIONS, NodeProcess
from tests.support.requests import (
    TIMEOUT,
    assert_status,
    count,
    delete,
    flush,
    get_vectors,
    insert,
    insert_ok,
    ok,
    search,
    segments,
    status_of,
)


@pytest.fixture(scope="module")
def raw_channel(node: NodeProcess) -> Iterator[grpc.Channel]:
    """A channel for requests given as raw bytes (hand-made wire encodings)."""
    channel = grpc.insecure_channel(node.address, options=CHANNEL_OPTIONS)
    try:
        yield channel
    finally:
        channel.close()


def raw_call(channel: grpc.Channel, rpc: str, payload: bytes, reply_type: Any) -> Any:
    method = channel.unary_unary(
        f"/milvus.grpc.MilvusService/{rpc}", request_serializer=None, response_deserializer=reply_type.FromString
    )
    return method(payload, timeout=TIMEOUT)


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def length_delimited(field: int, payload: bytes) -> bytes:
    return varint(field << 3 | 2) + varint(len(payload)) + payload


# -- insert ---------------------------------------------------------------------------------------


def test_insert_bad_vectors(api: Any, floats_coll: str, binary_coll: str) -> None:
    before = count(api, floats_coll)
    assert_status(api.Insert(milvus_pb2.InsertParam(collection_name=floats_coll)), ILLEGAL_ROWRECORD, EMPTY_VECTORS)
    short = milvus_pb2.InsertParam(collection_name=floats_coll, row_record_array=one_query(DIM - 1))
    assert_status(api.Insert(short), ILLEGAL_DIMENSION, WRONG_DIMENSION)
    mixed = milvus_pb2.InsertParam(collection_name=floats_coll, row_record_array=one_query() + one_query(DIM + 1))
    assert_status(api.Insert(mixed), ILLEGAL_DIMENSION, WRONG_DIMENSION)
    as_bits = milvus_pb2.InsertParam(
        collection_name=floats_coll, row_record_array=[milvus_pb2.RowRecord(binary_data=b"\x01" * 32)]
    )
    assert_status(api.Insert(as_bits), ILLEGAL_DIMENSION, WRONG_DIMENSION)
    ok(flush(api, floats_coll))
    assert count(api, floats_coll) == before

    bits_before = count(api, binary_coll)
    for data in (b"", b"\x01", b"\x01\x02\x03", b"\x00" * 16):
        reply = api.Insert(milvus_pb2.InsertParam(
            collection_name=binary_coll, row_record_array=[milvus_pb2.RowRecord(binary_data=b"\x01\x02"),
                                                           milvus_pb2.RowRecord(binary_data=data)],
        ))
        assert_status(reply, ILLEGAL_DIMENSION, WRONG_DIMENSION)
    as_floats = milvus_pb2.InsertParam(collection_name=binary_coll, row_record_array=one_query(16))
    assert_status(api.Insert(as_floats), ILLEGAL_DIMENSION, WRONG_DIMENSION)
    ok(flush(api, binary_coll))
    assert count(api, binary_coll) == bits_before


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_insert_non_finite_values_inserts_nothing(api: Any, bad: float) -> None:
    name = new_collection(api)
    rng = np.random.default_rng(4)
    insert_ok(api, name, rng.random((3, DIM), dtype=np.float32))
    vecs = rng.random((5, DIM), dtype=np.float32)
    vecs[4, 2] = bad
    reply = insert(api, name, vecs)
    assert status_of(reply).error_code == ILLEGAL_ROWRECORD, status_of(reply)
    assert len(reply.vector_id_array) == 0
    ok(flush(api, name))
    assert count(api, name) == 3
    st, got, dist = search(api, name, vecs[:1], 10)
    ok(st)
    assert got.shape == (1, 3) and np.isfinite(dist).all()


def test_insert_id_errors(api: Any) -> None:
    rng = np.random.default_rng(5)
    vecs = rng.random((3, DIM), dtype=np.float32)
    name = new_collection(api)
    assert_status(insert(api, name, vecs, ids=[1, 2]), ILLEGAL_VECTOR_ID,
                  "The size of vector ID array must be equal to the size of the vector.")
    assert_status(insert(api, name, vecs, ids=[1, 2, 3, 4]), ILLEGAL_VECTOR_ID,
                  "The size of vector ID array must be equal to the size of the vector.")
    # Negative ids are refused (pymilvus never sends them; a row id of -1 would read as a hole).
    reply = insert(api, name, vecs, ids=[1, -1, 3])
    assert status_of(reply).error_code == ILLEGAL_VECTOR_ID, status_of(reply)
    # None of that fixed the id mode: user ids still work, then auto ids are refused.
    assert insert_ok(api, name, vecs, ids=[7, 8, 9]).tolist() == [7, 8, 9]
    assert_status(insert(api, name, vecs), ILLEGAL_VECTOR_ID,
                  "Entities IDs are user-defined. Please provide IDs for all entities of the collection.")

    auto = new_collection(api)
    insert_ok(api, auto, vecs)
    assert_status(insert(api, auto, vecs, ids=[1, 2, 3]), ILLEGAL_VECTOR_ID,
                  "Entities IDs are auto-generated. All vectors of this collection must use auto-generated IDs.")
    ok(flush(api, name, auto))
    assert (count(api, name), count(api, auto)) == (3, 3)


def test_insert_over_256_mb_is_refused(api: Any, raw_channel: grpc.Channel) -> None:
    dim = 32768
    name = new_collection(api, dim=dim)
    # 2049 rows x 32768 float32 = 256 MB + 128 KB, sent as hand-made bytes (one encoded row, repeated).
    record = milvus_pb2.RowRecord(float_data=[0.25] * dim).SerializeToString()
    item = length_delimited(2, record)
    payload = b"".join([length_delimited(1, name.encode()), *([item] * 2049)])
    assert len(payload) > 256 * 1024 * 1024
    reply = raw_call(raw_channel, "Insert", payload, milvus_pb2.VectorIds)
    del payload
    assert_status(reply, ILLEGAL_ROWRECORD, "The amount of data inserted each time cannot exceed 256 MB")
    assert len(reply.vector_id_array) == 0
    ok(flush(api, name))
    assert count(api, name) == 0


def test_malformed_row_record_bytes(api: Any, raw_channel: grpc.Channel) -> None:
    name = new_collection(api)
    payload = length_delimited(1, name.encode()) + length_delimited(2, b"\xff\xff\xff")
    reply = raw_call(raw_channel, "Insert", payload, milvus_pb2.VectorIds)
    assert status_of(reply).error_code == ILLEGAL_ROWRECORD, status_of(reply)
    search_payload = length_delimited(1, name.encode()) + length_delimited(3, b"\x0a\xff") + b"\x20\x01"
    reply = raw_call(raw_channel, "Search", search_payload, milvus_pb2.TopKQueryResult)
    assert status_of(reply).error_code == ILLEGAL_ROWRECORD, status_of(reply)
    ok(flush(api, name))
    assert count(api, name) == 0


def test_non_canonical_row_encodings_are_accepted(api: Any, raw_channel: grpc.Channel) -> None:
    """Unpacked repeated floats are valid protobuf: they must decode to the same vectors."""
    name = new_collection(api)
    vec = np.arange(DIM, dtype=np.float32) / 7
    unpacked = b"".join(b"\x0d" + np.float32(v).tobytes() for v in vec)
    payload = length_delimited(1, name.encode()) + length_delimited(2, unpacked) + b"\x18\x2a"  # row id 42
    reply = raw_call(raw_channel, "Insert", payload, milvus_pb2.VectorIds)
    assert list(ok(reply).vector_id_array) == [42]
    ok(flush(api, name))
    got = ok(get_vectors(api, name, [42])).vectors_data[0]
    np.testing.assert_array_equal(np.array(got.float_data, dtype=np.float32), vec)


# -- get / delete ---------------------------------------------------------------------------------


def test_get_vectors_by_id_id_counts(api: Any, floats_coll: str) -> None:
    assert_status(get_vectors(api, floats_coll, []), ILLEGAL_ARGUMENT, "No vector id specified")
    assert_status(get_vectors(api, floats_coll, range(1001)), ILLEGAL_ARGUMENT,
                  "Input id array size cannot exceed: 1000")
    assert len(ok(get_vectors(api, floats_coll, range(1000))).vectors_data) == 1000
    assert_status(get_vectors(api, new_collection(api), [1]), UNEXPECTED_ERROR, "Collection or partition is empty")
    assert_status(get_vectors(api, floats_coll, [1], tag="p1"), UNEXPECTED_ERROR, "Collection or partition is empty")


def test_get_vector_ids_unknown_segment(api: Any, floats_coll: str, binary_coll: str) -> None:
    for segment in ("", "123", "../x", "nope"):
        reply = api.GetVectorIDs(milvus_pb2.GetVectorIDsParam(collection_name=floats_coll, segment_name=segment))
        assert_status(reply, UNEXPECTED_ERROR, "Segment does not exist")
    other = segments(api, binary_coll)[0]["name"]
    reply = api.GetVectorIDs(milvus_pb2.GetVectorIDsParam(collection_name=floats_coll, segment_name=other))
    assert_status(reply, UNEXPECTED_ERROR, "Segment does not belong to this collection")


def test_delete_by_id_errors(api: Any, floats_coll: str) -> None:
    assert_status(delete(api, floats_coll, []), ILLEGAL_ARGUMENT, "No vector id specified")
    before = count(api, floats_coll)
    ok(delete(api, floats_coll, [-1, 2**63 - 1, 0]))  # unknown ids are skipped silently
    ok(flush(api, floats_coll))
    assert count(api, floats_coll) == before
