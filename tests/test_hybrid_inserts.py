"""InsertEntity against a real node: FLOAT narrowing, every refusal leaving nothing behind (values, lengths, field
names, vectors, ids, tags, the memory budget), partitions, deletes and retries, and RowRecord encodings."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import grpc
import numpy as np
import pytest

from coordinator.errors import ErrorCode
from coordinator.hybrid.attrs import field_names
from milvus_wire import milvus_pb2, wire_fastpath_pb2
from mishards import hybrid_client as hc
from tests.support import hybrid
from tests.support import hybrid_rows as hr
from tests.support.hybrid_rows import cname, count, flush, new_collection
from tests.support.nodeproc import NodeProcess
from tests.support.requests import SUCCESS, TimedStub, assert_status, ok, rows

C = ErrorCode


@pytest.fixture(scope="module")
def hnode(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    """A node flushing only when asked, with a small request memory budget (8 MB) for the admission case."""
    with NodeProcess(tmp_path_factory.mktemp("hybrid_inserts"), ["--auto-flush-interval", "0", "--request-memory",
                                                                 "8MB"]) as proc:
        yield proc


@pytest.fixture
def api(hnode: NodeProcess) -> TimedStub:
    return TimedStub(hnode.stub())


def test_float_values_are_narrowed_as_declared(api: Any) -> None:
    schema = new_collection(api, "narrow", scalars={"f": 40, "d": 41})
    name = schema.collection_name
    # 0.1 and 1/3 are not float32 numbers: FLOAT keeps their float32 rounding (3.4028235e38 rounds to FLT_MAX),
    # DOUBLE keeps them exactly.
    sent = {"f": np.array([0.1, 1 / 3, 3.4028235e38]), "d": np.array([0.1, 1 / 3, 5e-324])}
    ids = hr.insert(api, schema, sent, np.ones((3, hybrid.DIM)), ids=[1, 2, 3])
    flush(api, name)
    for row, entity_id in enumerate(ids.tolist()):
        got = hc.decode_entity(schema, hr.entity(api, name, entity_id))
        assert got.columns["f"][0] == np.float32(sent["f"][row]) and got.columns["f"].dtype == np.float32
        assert got.columns["d"][0] == sent["d"][row]
    ok(api.DropHybridCollection(cname(name)))


def _entity_request(schema: Any, cols: dict[str, Any], vecs: Any, **changes: Any) -> Any:
    request = hc.insert_param(schema, cols, np.asarray(vecs, dtype=np.float32))
    entity = request.entities
    for key, value in changes.items():
        if key == "ids":
            request.entity_id_array[:] = value
        elif key == "tag":
            request.partition_tag = value
        elif key == "field_names":
            del entity.field_names[:]
            entity.field_names.extend(value)
        elif key == "result_values":
            del entity.result_values[:]
            entity.result_values.extend(value)
        else:
            setattr(entity, key, value)
    return request


def test_bad_inserts_are_refused_whole_and_leave_nothing(api: Any) -> None:
    schema = new_collection(api, "refuse")
    name = schema.collection_name
    good = hr.columns(schema, 3)
    vecs = np.ones((3, hybrid.DIM))
    scalar_names = [f.name for f in schema.scalars]
    cases: list[tuple[Any, int, str | None]] = [
        (_entity_request(schema, {**good, "i8": [1, 128, 0]}, vecs), C.ILLEGAL_ARGUMENT,
         "Value 128 of field i8 (row index 1) is out of range for INT8 (-128 ~ 127)."),
        (_entity_request(schema, {**good, "i16": [-32769, 0, 0]}, vecs), C.ILLEGAL_ARGUMENT, "out of range for INT16"),
        (_entity_request(schema, {**good, "i32": [0, 0, 2**31]}, vecs), C.ILLEGAL_ARGUMENT, "out of range for INT32"),
        (_entity_request(schema, {**good, "b": [0, 2, 1]}, vecs), C.ILLEGAL_ARGUMENT, "out of range for BOOL (0 ~ 1)"),
        (_entity_request(schema, {**good, "f": [1e39, 0, 0]}, vecs), C.ILLEGAL_ARGUMENT, "out of range for FLOAT"),
        (_entity_request(schema, {**good, "d": [0, float("nan"), 0]}, vecs), C.ILLEGAL_ARGUMENT, "not a finite"),
        (_entity_request(schema, {**good, "f": [0, 0, float("inf")]}, vecs), C.ILLEGAL_ARGUMENT, "not a finite"),
        (_entity_request(schema, good, vecs, attr_records=b"\0" * 7), C.ILLEGAL_ARGUMENT, "attr_records holds 7"),
        (_entity_request(schema, good, vecs, row_num=4), C.ILLEGAL_ARGUMENT, "row_num is 4 but it carries 3"),
        (_entity_request(schema, good, vecs, field_names=scalar_names), C.ILLEGAL_ARGUMENT, "vector field v last"),
        (_entity_request(schema, good, vecs, field_names=[*scalar_names[1:], "v"]), C.ILLEGAL_ARGUMENT,
         "lacks field(s) i8"),
        (_entity_request(schema, good, vecs, field_names=["zz", *scalar_names, "v"]), C.ILLEGAL_ARGUMENT,
         "Field zz does not exist"),
        (_entity_request(schema, good, vecs, result_values=[]), C.ILLEGAL_ARGUMENT, "exactly one FieldValue"),
        (_entity_request(schema, good, np.ones((3, hybrid.DIM + 1))), C.ILLEGAL_DIMENSION, None),
        (_entity_request(schema, good, np.full((3, hybrid.DIM), np.nan)), C.ILLEGAL_ROWRECORD,
         "The vector data must not contain NaN or infinity values."),
        (_entity_request(schema, good, vecs, ids=[1, 2]), C.ILLEGAL_VECTOR_ID, "must be equal"),
        (_entity_request(schema, good, vecs, ids=[1, -2, 3]), C.ILLEGAL_VECTOR_ID, "non-negative"),
        (_entity_request(schema, good, vecs, tag="nope"), C.UNEXPECTED_ERROR, "Partition nope"),
        (_entity_request(schema, {f: [] for f in good}, np.zeros((0, hybrid.DIM))), C.ILLEGAL_ROWRECORD, None),
        # What pymilvus 0.2.14's insert_hybrid decodes to here: field names and a row count, no data.
        (milvus_pb2.HInsertParam(collection_name=name, entities=milvus_pb2.HEntity(
            field_names=field_names(schema), row_num=2)), C.ILLEGAL_ARGUMENT, "exactly one FieldValue"),
    ]
    for request, code, reason in cases:
        reply = api.InsertEntity(request)
        assert reply.HasField("status") and reply.status.error_code == code, (reason, reply.status)
        assert reason is None or reason in reply.status.reason, (reason, reply.status.reason)
        assert len(reply.entity_id_array) == 0
    flush(api, name)
    assert count(api, name) == 0
    # The id mode a collection takes from its first insert holds for entities too.
    hr.insert(api, schema, good, vecs)
    reply = api.InsertEntity(_entity_request(schema, good, vecs, ids=[7, 8, 9]))
    assert reply.status.error_code == C.ILLEGAL_VECTOR_ID and "auto-generated" in reply.status.reason
    # Plain Insert is refused in-band, and nothing of it is kept.
    plain = api.Insert(milvus_pb2.InsertParam(collection_name=name, row_record_array=rows(np.ones((2, 4)))))
    assert_status(plain, C.ILLEGAL_ARGUMENT, f"Collection {name} has scalar fields: insert its rows with "
                  "InsertEntity (every field needs a value).")
    flush(api, name)
    assert count(api, name) == 3
    ok(api.DropHybridCollection(cname(name)))


def test_an_insert_over_the_memory_budget_is_refused_before_decoding(api: Any) -> None:
    schema = new_collection(api, "oom")
    rows_n = 40_000  # (16 bytes of vector + 7 attributes of 8 bytes) x 4 copies + an id: 11.8 MB > 8 MB
    request = hc.insert_param(schema, hr.columns(schema, rows_n), np.ones((rows_n, hybrid.DIM)))
    reply = api.InsertEntity(request)
    assert reply.status.error_code == C.OUT_OF_MEMORY and "exceeds the node's request memory budget" in \
        reply.status.reason, reply.status
    flush(api, schema.collection_name)
    assert count(api, schema.collection_name) == 0
    ok(api.DropHybridCollection(cname(schema.collection_name)))


def test_partitions_deletes_and_retries(api: Any) -> None:
    schema = new_collection(api, "parts")
    name = schema.collection_name
    ok(api.CreatePartition(milvus_pb2.PartitionParam(collection_name=name, tag="p1")))
    cols = hr.columns(schema, 20, seed=4)
    vecs = hr.vectors(schema, 20, seed=4)
    first = hr.insert(api, schema, {f: c[:10] for f, c in cols.items()}, vecs[:10], ids=range(10))
    second = hr.insert(api, schema, {f: c[10:] for f, c in cols.items()}, vecs[10:], ids=range(10, 20), tag="p1")
    # The same batch again is a retry (answered, not applied); other attribute values make it another insert.
    retry = hr.insert(api, schema, {f: c[:10] for f, c in cols.items()}, vecs[:10], ids=range(10))
    assert retry.tolist() == first.tolist()
    flush(api, name)
    assert count(api, name) == 20
    info = json.loads(ok(api.ShowHybridCollectionInfo(cname(name))).json_info)
    assert [(p["tag"], p["row_count"]) for p in info["partitions"]] == [("_default", 10), ("p1", 10)]
    ids = np.concatenate([first, second])
    hr.assert_rows_read_back(api, name, schema, ids, cols, vecs)
    assert_status(api.DeleteEntitiesByID(milvus_pb2.HDeleteByIDParam(collection_name=name, id_array=[3, 15])),
                  SUCCESS, "OK")
    assert_status(api.DeleteEntitiesByID(milvus_pb2.HDeleteByIDParam(collection_name=name)), C.ILLEGAL_ARGUMENT,
                  "No entity id specified")
    flush(api, name)
    assert count(api, name) == 18
    hr.assert_absent(api, name, [3, 15])
    keep = np.array([i for i in range(20) if i not in (3, 15)])
    hr.assert_rows_read_back(api, name, schema, ids[keep], {f: c[keep] for f, c in cols.items()}, vecs[keep])
    changed = {f: c[:10].copy() for f, c in cols.items()}
    changed["i32"][0] += 1
    hr.insert(api, schema, changed, vecs[:10], ids=range(10))
    flush(api, name)
    assert count(api, name) == 28
    ok(api.DropHybridCollection(cname(name)))


def test_vectors_in_any_valid_encoding_are_decoded(api: Any, hnode: NodeProcess) -> None:
    """InsertEntity reads its vectors as raw bytes (decoded all at once when canonical): other valid encodings of a
    RowRecord are decoded one by one, malformed ones refused."""
    schema = new_collection(api, "enc")
    name = schema.collection_name
    cols = hr.columns(schema, 2, seed=9)
    vecs = hr.vectors(schema, 2, seed=9)
    raw = wire_fastpath_pb2.HInsertParamRaw.FromString(
        hc.insert_param(schema, cols, vecs, ids=[1, 2]).SerializeToString())
    records = raw.entities.result_values[0].vector_value.value
    records[1] = b"".join(b"\x0d" + np.float32(v).tobytes() for v in vecs[1])  # floats unpacked, one tag each
    channel = grpc.insecure_channel(hnode.address)
    try:
        call = channel.unary_unary("/milvus.grpc.MilvusService/InsertEntity",
                                   request_serializer=lambda m: m.SerializeToString(),
                                   response_deserializer=milvus_pb2.HEntityIDs.FromString)
        assert list(ok(call(raw, timeout=60)).entity_id_array) == [1, 2]
        records[0] = b"\xff\xff"
        bad = call(raw, timeout=60)
        assert_status(bad, C.ILLEGAL_ROWRECORD, "Malformed vector record")
    finally:
        channel.close()
    flush(api, name)
    assert count(api, name) == 2
    hr.assert_rows_read_back(api, name, schema, np.array([1, 2]), cols, vecs)
    ok(api.DropHybridCollection(cname(name)))
