"""The hybrid metadata and read RPCs against a real node: every success and refusal path, every field type at its
limits read back bit-exact, the vector-only RPCs on a hybrid collection, statuses always sent (InsertEntity's own
cases: tests/test_hybrid_inserts.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from coordinator.errors import ErrorCode
from milvus_wire import milvus_pb2
from mishards import hybrid_client as hc
from tests.support import hybrid
from tests.support import hybrid_rows as hr
from tests.support.hybrid_rows import cname, count, flush, new_collection
from tests.support.nodeproc import NodeProcess
from tests.support.requests import (
    L2,
    SUCCESS,
    TimedStub,
    assert_search_exact,
    assert_status,
    create,
    ok,
    rows,
    status_of,
    unique_name,
)

C = ErrorCode


@pytest.fixture(scope="module")
def hnode(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    """A node flushing only when asked."""
    with NodeProcess(tmp_path_factory.mktemp("hybrid"), ["--auto-flush-interval", "0"]) as proc:
        yield proc


@pytest.fixture
def api(hnode: NodeProcess) -> TimedStub:
    return TimedStub(hnode.stub())


# -- metadata --------------------------------------------------------------------------------------


def test_create_describe_has_show_count_info_drop(api: Any) -> None:
    fields = [hc.scalar_field("price", hc.DataType.DOUBLE, {"unit": "EUR"}),
              hc.vector_field("emb", 16, metric_type="IP", index_file_size=32, engine_type=1),
              hc.scalar_field("age", hc.DataType.INT8)]
    name = unique_name("meta")
    request = hc.mapping(name, fields)
    assert_status(api.CreateHybridCollection(request), SUCCESS, "OK")
    described = api.DescribeHybridCollection(cname(name))
    assert described.HasField("status") and described.status.reason == "OK"
    assert described.collection_name == name and described.collection_id > 0
    assert [(f.name, f.type.WhichOneof("value")) for f in described.fields] == [
        ("price", "data_type"), ("emb", "vector_param"), ("age", "data_type")]
    assert described.fields[1].type.vector_param.dimension == 16
    for got, sent in zip(described.fields, request.fields, strict=True):  # every field's params as given
        assert list(got.extra_params) == list(sent.extra_params) and got.type == sent.type
    plain = unique_name("plainmeta")
    ok(create(api, plain, 16, L2))
    assert ok(api.HasHybridCollection(cname(name))).bool_reply is True
    assert ok(api.HasHybridCollection(cname(plain))).bool_reply is False
    assert ok(api.HasHybridCollection(cname("nothing_here"))).bool_reply is False
    listed = ok(api.ShowHybridCollections(milvus_pb2.Command()))
    names = [m.collection_name for m in listed.mapping_list]
    assert name in names and plain not in names and names == sorted(names)
    assert next(m for m in listed.mapping_list if m.collection_name == name).fields == described.fields
    assert count(api, name) == 0
    schema = ok(api.DescribeCollection(cname(name)))  # the vector-only view of the same collection
    assert (schema.dimension, schema.metric_type, schema.index_file_size) == (16, 2, 32)
    info = json.loads(ok(api.ShowHybridCollectionInfo(cname(name))).json_info)
    assert info == {"partitions": [{"row_count": 0, "segments": None, "tag": "_default"}], "row_count": 0}
    assert_status(api.PreloadHybridCollection(cname(name)), SUCCESS, "OK")
    # The name space is shared with plain collections.
    assert_status(api.CreateHybridCollection(hybrid.mapping(name=plain)), C.ILLEGAL_COLLECTION_NAME,
                  "Collection already exists")
    assert_status(create(api, name, 16, L2), C.ILLEGAL_COLLECTION_NAME, "Collection already exists")
    assert_status(api.DropHybridCollection(cname(name)), SUCCESS, "OK")
    assert ok(api.HasHybridCollection(cname(name))).bool_reply is False
    assert ok(api.HasCollection(cname(name))).bool_reply is False
    assert_status(api.CreateHybridCollection(hybrid.mapping(name=name)), SUCCESS, "OK")  # the name is free again
    assert hr.describe(api, name).dimension == hybrid.DIM
    ok(api.DropCollection(cname(name)))  # DropCollection drops a hybrid collection too
    ok(api.DropCollection(cname(plain)))


def _field(name: str, data_type: int) -> Any:
    return milvus_pb2.FieldParam(name=name, type=milvus_pb2.FieldType(data_type=data_type))  # type: ignore[arg-type]


def _vector(name: str = "v", dim: int = 8, params: str = "") -> Any:
    pairs = [milvus_pb2.KeyValuePair(key="params", value=params)] if params else []
    return milvus_pb2.FieldParam(name=name, type=milvus_pb2.FieldType(
        vector_param=milvus_pb2.VectorFieldParam(dimension=dim)), extra_params=pairs)


@pytest.mark.parametrize(("fields", "code", "reason_part"), [
    ([_field("s", 20), _vector()], C.ILLEGAL_ARGUMENT, "type STRING is not supported"),
    ([_field("a", 4)], C.ILLEGAL_ARGUMENT, "has no vector field"),
    ([_vector("v1"), _vector("v2")], C.ILLEGAL_ARGUMENT, "2 vector fields"),
    ([_field("a", 4), _field("a", 3), _vector()], C.ILLEGAL_ARGUMENT, "Duplicate field name: a."),
    ([_field("a", 0), _vector()], C.ILLEGAL_ARGUMENT, "invalid data type NULL"),
    ([_field("a", 100), _vector()], C.ILLEGAL_ARGUMENT, "declared with type.vector_param"),
    ([_field("a-b", 4), _vector()], C.ILLEGAL_ARGUMENT, "Invalid field name: a-b."),
    ([_vector(dim=0)], C.ILLEGAL_DIMENSION, "Invalid collection dimension: 0."),
    ([_vector(dim=12, params='{"metric_type": "HAMMING"}')], C.ILLEGAL_DIMENSION, "multiple of 8"),
    ([_vector(params='{"metric_type": 9}')], C.ILLEGAL_METRIC_TYPE, "Invalid index metric type: 9."),
    ([_vector(params='{"index_file_size": 0}')], C.ILLEGAL_ARGUMENT, "Invalid index file size: 0."),
    ([_vector(params="not json")], C.ILLEGAL_ARGUMENT, "params"),
    ([], C.ILLEGAL_ARGUMENT, "has no field"),
])
def test_bad_schemas_are_refused_and_leave_nothing(api: Any, fields: list[Any], code: int, reason_part: str) -> None:
    name = unique_name("bad")
    reply = api.CreateHybridCollection(milvus_pb2.Mapping(collection_name=name, fields=fields))
    assert reply.error_code == code and reason_part in reply.reason, (reply.error_code, reply.reason)
    assert ok(api.HasCollection(cname(name))).bool_reply is False


def test_bad_names_and_a_schema_too_large_to_keep(api: Any) -> None:
    assert_status(api.CreateHybridCollection(hybrid.mapping(name="")), C.ILLEGAL_COLLECTION_NAME,
                  "Collection name should not be empty.")
    assert api.CreateHybridCollection(hybrid.mapping(name="1abc")).error_code == C.ILLEGAL_COLLECTION_NAME
    huge = _vector(params=json.dumps({"metric_type": 1, "note": "x" * 70_000}))
    name = unique_name("huge")
    reply = api.CreateHybridCollection(milvus_pb2.Mapping(collection_name=name, fields=[huge]))
    assert reply.error_code == C.ILLEGAL_ARGUMENT and "at most 65536" in reply.reason, reply.reason
    assert ok(api.HasCollection(cname(name))).bool_reply is False


def test_hybrid_rpcs_of_a_missing_or_plain_collection(api: Any) -> None:
    plain = unique_name("plain")
    ok(create(api, plain, hybrid.DIM, L2))
    schema = hybrid.schema(name=plain)
    requests = {
        "DropHybridCollection": cname, "DescribeHybridCollection": cname, "CountHybridCollection": cname,
        "ShowHybridCollectionInfo": cname, "PreloadHybridCollection": cname,
        "InsertEntity": lambda n: hc.insert_param(hybrid.schema(name=n), hr.columns(schema, 2), np.ones((2, 4))),
        "GetEntityByID": lambda n: milvus_pb2.HEntityIdentity(collection_name=n, id=1),
        "GetEntityIDs": lambda n: milvus_pb2.HGetEntityIDsParam(collection_name=n, segment_name="1"),
        "DeleteEntitiesByID": lambda n: milvus_pb2.HDeleteByIDParam(collection_name=n, id_array=[1]),
    }
    for rpc, build in requests.items():
        st = status_of(getattr(api, rpc)(build("no_such_hybrid")))
        assert st.error_code == C.COLLECTION_NOT_EXISTS and st.reason.startswith(
            "Collection no_such_hybrid does not exist."), (rpc, st)
        st = status_of(getattr(api, rpc)(build(plain)))
        assert (st.error_code, st.reason.split(":")[0]) == (C.COLLECTION_NOT_EXISTS,
                                                           f"Collection {plain} is not a hybrid collection"), rpc
    assert ok(api.HasCollection(cname(plain))).bool_reply is True  # DropHybridCollection left it alone
    ok(api.DropCollection(cname(plain)))


# -- InsertEntity and reads ----------------------------------------------------------------------------


def test_every_type_at_its_limits_reads_back_bit_exact(api: Any) -> None:
    schema = new_collection(api, "limits")
    name = schema.collection_name
    n = 40
    cols = hr.columns(schema, n, seed=1)
    vecs = hr.vectors(schema, n, seed=1)
    ids = hr.insert(api, schema, cols, vecs, ids=range(1000, 1000 + n))
    assert ids.tolist() == list(range(1000, 1000 + n))
    assert count(api, name) == 0  # not flushed yet
    assert_status(api.GetEntityByID(milvus_pb2.HEntityIdentity(collection_name=name, id=1000)),
                  C.UNEXPECTED_ERROR, "Collection or partition is empty")  # as GetVectorsByID
    flush(api, name)
    assert count(api, name) == n
    hr.assert_rows_read_back(api, name, schema, ids, cols, vecs)
    missing = hr.entity(api, name, 5)
    assert (missing.entity_id, missing.row_num, missing.attr_records) == (5, 0, b"")
    [seg] = json.loads(ok(api.ShowHybridCollectionInfo(cname(name))).json_info)["partitions"][0]["segments"]
    listed = ok(api.GetEntityIDs(milvus_pb2.HGetEntityIDsParam(collection_name=name, segment_name=seg["name"])))
    assert sorted(listed.entity_id_array) == ids.tolist()
    assert_status(api.GetEntityIDs(milvus_pb2.HGetEntityIDsParam(collection_name=name, segment_name="999")),
                  C.UNEXPECTED_ERROR, "Segment does not exist")
    ok(api.DropHybridCollection(cname(name)))


def test_vector_only_rpcs_serve_a_hybrid_collection(api: Any) -> None:
    schema = new_collection(api, "vec", dim=8, vector_params='{"metric_type": 1, "index_file_size": 1}')
    name = schema.collection_name
    n = 300
    cols = hr.columns(schema, n, seed=6)
    vecs = hr.vectors(schema, n, seed=6)
    ids = hr.insert(api, schema, cols, vecs, ids=range(n))
    flush(api, name)
    assert ok(api.CountCollection(cname(name))).collection_row_count == n
    queries = vecs[:5] + 0.01
    reply = ok(api.Search(milvus_pb2.SearchParam(collection_name=name, topk=7, query_record_array=rows(queries))))
    got_ids = np.array(reply.ids).reshape(5, -1)
    got_dist = np.array(reply.distances, dtype=np.float32).reshape(5, -1)
    assert_search_exact(got_ids, got_dist, vecs, ids, queries, 7, L2)
    by_id = ok(api.SearchByID(milvus_pb2.SearchByIDParam(collection_name=name, id_array=[4], topk=1)))
    assert list(by_id.ids) == [4]
    got = ok(api.GetVectorsByID(milvus_pb2.VectorsIdentity(collection_name=name, id_array=[9])))
    assert np.array(got.vectors_data[0].float_data, dtype=np.float32).tobytes() == vecs[9].tobytes()
    ok(api.DeleteByID(milvus_pb2.DeleteByIDParam(collection_name=name, id_array=list(range(0, 100)))))
    ok(api.Compact(cname(name)))  # flushes, then rewrites the segment that lost a third of its rows
    assert count(api, name) == n - 100
    index = milvus_pb2.IndexParam(collection_name=name, index_type=2, extra_params=[
        milvus_pb2.KeyValuePair(key="params", value='{"nlist": 4}')])
    ok(api.CreateIndex(index))
    assert ok(api.DescribeIndex(cname(name))).index_type == 2
    ok(api.PreloadCollection(milvus_pb2.PreloadCollectionParam(collection_name=name)))
    ok(api.PreloadHybridCollection(cname(name)))
    keep = np.arange(100, n)
    hr.assert_rows_read_back(api, name, schema, ids[keep], {f: c[keep] for f, c in cols.items()}, vecs[keep])
    hr.assert_absent(api, name, [0, 50, 99])
    ok(api.DropIndex(cname(name)))
    ok(api.DropHybridCollection(cname(name)))


def test_binary_hybrid_collections(api: Any) -> None:
    schema = new_collection(api, "bin", scalars={"tag": 4}, dim=64,
                            vector_params='{"metric_type": "JACCARD"}')
    assert schema.is_binary
    cols = hr.columns(schema, 10, seed=8)
    vecs = hr.vectors(schema, 10, seed=8)
    ids = hr.insert(api, schema, cols, vecs)
    flush(api, schema.collection_name)
    hr.assert_rows_read_back(api, schema.collection_name, schema, ids, cols, vecs)
    ok(api.DropHybridCollection(cname(schema.collection_name)))


def test_every_reply_carries_its_status(api: Any) -> None:
    schema = new_collection(api, "st")
    name = schema.collection_name
    hr.insert(api, schema, hr.columns(schema, 2), np.ones((2, hybrid.DIM)), ids=[1, 2])
    flush(api, name)
    calls = [
        ("HasHybridCollection", cname(name)), ("DescribeHybridCollection", cname(name)),
        ("CountHybridCollection", cname(name)), ("ShowHybridCollections", milvus_pb2.Command()),
        ("ShowHybridCollectionInfo", cname(name)),
        ("GetEntityByID", milvus_pb2.HEntityIdentity(collection_name=name, id=1)),
        ("GetEntityByID", milvus_pb2.HEntityIdentity(collection_name=name, id=99)),
        ("InsertEntity", hc.insert_param(schema, hr.columns(schema, 1), np.ones((1, hybrid.DIM)), [3])),
        ("GetEntityIDs", milvus_pb2.HGetEntityIDsParam(collection_name=name, segment_name="1")),
    ]
    for rpc, request in calls:
        for target in (request, _renamed(request, "")):  # success (or in-band error), then an empty name
            reply = getattr(api, rpc)(target)
            assert reply.HasField("status"), rpc
            if target is request and rpc != "GetEntityIDs":
                assert reply.status.reason == "OK", (rpc, reply.status)
    ok(api.DropHybridCollection(cname(name)))


def _renamed(request: Any, name: str) -> Any:
    copy = type(request)()
    copy.CopyFrom(request)
    if hasattr(copy, "collection_name"):
        copy.collection_name = name
    return copy
