"""Pure parts of the client: wire codec against protobuf's own encoding, retry decisions, argument checks,
result views."""

from __future__ import annotations

import json

import grpc
import numpy as np
import pytest

from mishards_client import IndexType, MetricType, ParamError, Status, codec
from mishards_client._grpc import milvus_pb2 as pb
from mishards_client._grpc import status_pb2
from mishards_client.checks import check, resolve_address
from mishards_client.retry import RetryPolicy, backoff_delay, insert_is_retryable, should_retry
from mishards_client.types import TopKQueryResult

EDGE_IDS = np.array([0, 1, 127, 128, 16383, 16384, 2**31, 2**62, 2**63 - 1, -1, -2**63, -300], dtype=np.int64)


def test_varints_round_trip_and_match_protobuf() -> None:
    rng = np.random.default_rng(1)
    ids = np.concatenate([EDGE_IDS, rng.integers(-2**63, 2**63 - 1, size=500, dtype=np.int64)])
    assert np.array_equal(codec.decode_varints(codec.encode_varints(ids)), ids)
    reply = pb.VectorIds(vector_id_array=ids.tolist()).SerializeToString()
    code, _, got = codec.decode_vector_ids(reply)
    assert code == 0 and np.array_equal(got, ids)


def test_insert_bytes_parse_as_protobuf_float_and_binary() -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((7, 13)).astype(np.float32)
    msg = pb.InsertParam.FromString(codec.encode_insert("c", codec.to_records(x), EDGE_IDS[:7], "tag", '{"k":1}'))
    assert msg.collection_name == "c" and msg.partition_tag == "tag"
    assert list(msg.row_id_array) == EDGE_IDS[:7].tolist()
    assert np.array_equal(np.array([r.float_data for r in msg.row_record_array], dtype=np.float32), x)
    bits = rng.integers(0, 256, size=(5, 300), dtype=np.uint8)  # 300 bytes: a two-byte length prefix
    msg = pb.InsertParam.FromString(codec.encode_insert("c", codec.to_records(bits), None, None, None))
    assert [r.binary_data for r in msg.row_record_array] == [row.tobytes() for row in bits]
    assert not msg.row_id_array and not msg.extra_params


def test_search_bytes_equal_protobuf_serialisation() -> None:
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    ours = codec.encode_search("c", codec.to_records(x), 5, ["a", "b"], '{"nprobe":2}')
    theirs = pb.SearchParam(collection_name="c", partition_tag_array=["a", "b"], topk=5,
                            query_record_array=[pb.RowRecord(float_data=r) for r in x.tolist()],
                            extra_params=[pb.KeyValuePair(key="params", value='{"nprobe":2}')])
    assert ours == theirs.SerializeToString()
    wrapped = pb.SearchInFilesParam.FromString(codec.encode_search_in_files(["1", "22"], ours))
    assert list(wrapped.file_id_array) == ["1", "22"] and wrapped.search_param == theirs


def test_topk_decoding_and_pymilvus_views() -> None:
    reply = pb.TopKQueryResult(row_num=2, ids=[5, 6, 7, 9, -1, -1], distances=[0.5, 1.0, 2.0, 0.25, 0, 0])
    top = codec.decode_topk(reply.SerializeToString())
    result = TopKQueryResult(top.ids, top.distances)
    assert result.ids.dtype == np.int64 and result.distances.dtype == np.float32 and result.shape == (2, 3)
    assert result.id_array == [[5, 6, 7], [9]] and result.distance_array == [[0.5, 1.0, 2.0], [0.25]]
    assert len(result) == 2 and len(result[1]) == 1 and result[0][2].id == 7 and result[0][1].distance == 1.0
    assert [len(row) for row in result] == [3, 1] and [h.id for h in result[0][:2]] == [5, 6]
    refused = status_pb2.Status(error_code=status_pb2.COLLECTION_NOT_EXISTS, reason="no such collection")
    failed = pb.TopKQueryResult(status=refused)
    top = codec.decode_topk(failed.SerializeToString())
    assert (top.code, top.reason) == (4, "no such collection")


def test_vectors_data_decoding() -> None:
    reply = pb.VectorsData(vectors_data=[pb.RowRecord(float_data=[1.5, 2.5]), pb.RowRecord(),
                                         pb.RowRecord(binary_data=b"\x01\xff")])
    code, _, rows = codec.decode_vectors(reply.SerializeToString())
    assert code == 0 and isinstance(rows[0], np.ndarray) and rows[0].tolist() == [1.5, 2.5]
    assert len(rows[1]) == 0 and rows[2] == b"\x01\xff"


@pytest.mark.parametrize("bad", [[], [[]], [[1.0], [1.0, 2.0]], "abc", [1.0, 2.0], np.zeros((0, 4)),
                                 np.zeros(4, dtype=np.float32), [b"ab", b"abc"], np.array([["a"]])])
def test_bad_records_refused(bad: object) -> None:
    with pytest.raises(ParamError):
        codec.to_records(bad)


def test_records_kinds() -> None:
    assert codec.to_records([[1, 2], [3, 4]]).data.dtype == np.float32
    assert codec.to_records(np.ones((2, 2))).data.dtype == np.float32  # float64 narrowed, as pymilvus sends
    assert codec.to_records(np.ones((2, 2), dtype=np.uint8)).binary
    assert codec.to_records([b"ab", b"cd"]).binary
    view = np.ones((4, 8), dtype=np.float32)[:, ::2]  # not contiguous
    assert codec.to_records(view).data.flags.c_contiguous


def test_retry_decisions() -> None:
    policy = RetryPolicy(retries=2, base=0.1, cap=0.3)
    assert should_retry(grpc.StatusCode.UNAVAILABLE, True, 0, policy)
    assert not should_retry(grpc.StatusCode.UNAVAILABLE, True, 2, policy)
    assert not should_retry(grpc.StatusCode.UNAVAILABLE, False, 0, policy)
    assert not should_retry(grpc.StatusCode.DEADLINE_EXCEEDED, True, 0, policy)
    assert not should_retry(grpc.StatusCode.INVALID_ARGUMENT, True, 0, policy)
    assert backoff_delay(0, policy, lambda: 1.0) == pytest.approx(0.1)
    assert backoff_delay(1, policy, lambda: 1.0) == pytest.approx(0.2)
    assert backoff_delay(5, policy, lambda: 1.0) == pytest.approx(0.3)
    assert backoff_delay(5, policy, lambda: 0.0) == 0.0
    assert insert_is_retryable(True, False) and insert_is_retryable(False, True)
    assert not insert_is_retryable(False, False)


def test_checks_mirror_pymilvus_messages() -> None:
    with pytest.raises(ParamError, match=r"`collection_name` value  is illegal"):
        check(collection_name="")
    with pytest.raises(ParamError, match="`topk` value True is illegal"):
        check(topk=True)
    with pytest.raises(ParamError, match="`ids` value"):
        check(ids=[-1])
    with pytest.raises(ParamError, match="`ids` value"):
        check(ids=np.array([3, -1]))
    with pytest.raises(ParamError, match="`metric_type` value INVALID is illegal"):
        check(metric_type=MetricType.INVALID)
    with pytest.raises(ParamError, match="`index_type` value 99 is illegal"):
        check(index_type=99)
    with pytest.raises(ParamError, match="unknown param `nope`"):
        check(nope=1)
    check(collection_name="c", topk=10, ids=[1, 2], index_type=IndexType.HNSW, partition_tag_array=None)


def test_address_resolution() -> None:
    assert resolve_address("h", 1, None) == "h:1"
    assert resolve_address("h", None, None) == "h:19530"
    assert resolve_address(None, None, "tcp://10.0.0.1:1234") == "10.0.0.1:1234"
    assert resolve_address(None, None, None) == "127.0.0.1:19530"
    assert resolve_address("::1", 5, None) == "[::1]:5"
    with pytest.raises(ParamError, match="Param is not complete"):
        resolve_address(None, 1, None)
    with pytest.raises(ParamError, match="is illegal"):
        resolve_address("h", 70000, None)


def test_status_semantics() -> None:
    assert Status().OK() and Status() == 0 and Status(3, "x") == Status(3, "y") and Status(1) != Status(2)
    assert repr(Status(5, "bad")) == "Status(code=5, message='bad')"
    assert str(MetricType.IP) == "IP" and repr(IndexType.IVFLAT) == "<IndexType: IVF_FLAT>"


def test_hybrid_request_bytes_parse_as_protobuf() -> None:
    from mishards_client import hybrid as h

    schema = h.HybridSchema("s", (h.scalar_field("a", h.DataType.INT8), h.scalar_field("f", h.DataType.FLOAT),
                                  h.vector_field("v", 2)))
    vectors = np.array([[1, 2], [3, 4]], dtype=np.float32)
    raw = h.insert_entity_bytes(schema, {"a": [1, -2], "f": [0.5, 1.5]}, codec.to_records(vectors),
                                np.array([7, 8]), "p")
    msg = pb.HInsertParam.FromString(raw)
    assert (msg.collection_name, msg.partition_tag, list(msg.entity_id_array)) == ("s", "p", [7, 8])
    assert list(msg.entities.field_names) == ["a", "f", "v"] and msg.entities.row_num == 2
    attrs = np.frombuffer(msg.entities.attr_records, dtype="<i8")
    assert attrs[:2].tolist() == [1, -2] and attrs[2:].view("<f8").tolist() == [0.5, 1.5]
    assert [list(r.float_data) for r in msg.entities.result_values[0].vector_value.value] == vectors.tolist()
    dsl = h.bool_query(must=[h.term("a", [1]), h.vector("v", 3, vectors[:1], params={"nprobe": 2})])
    search = pb.HSearchParam.FromString(h.search_bytes("s", dsl, ["p"]))
    assert search.collection_name == "s" and list(search.partition_tag_array) == ["p"]
    vq = search.general_query.vector_query
    assert vq.field_name == "v" and not vq.topk and [list(r.float_data) for r in vq.records] == [[1.0, 2.0]]
    assert search.extra_params[0].key == "dsl"
    assert json.loads(search.extra_params[0].value) == {
        "bool": {"must": [{"term": {"a": [1]}}, {"vector": {"v": {"topk": 3, "params": {"nprobe": 2}}}}]}}
    mapping = pb.Mapping.FromString(h.mapping_bytes("s", schema.fields))
    assert h.schema_from_mapping(mapping) == schema


def test_client_package_imports_no_project_package() -> None:
    import ast
    from pathlib import Path

    import mishards_client

    root = Path(mishards_client.__file__).parent
    project = {"node", "coordinator", "mishards", "milvus_wire", "mishards_tools", "tests"}
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for item in ast.walk(tree):
            names = ([a.name for a in item.names] if isinstance(item, ast.Import)
                     else [item.module or ""] if isinstance(item, ast.ImportFrom) and not item.level else [])
            for name in names:
                assert name.split(".")[0] not in project, f"{path.name} imports {name}"


def test_same_proto_files_as_milvus_wire_in_one_interpreter() -> None:
    from milvus_wire import milvus_pb2 as wire

    assert wire.InsertParam.DESCRIPTOR.full_name == pb.InsertParam.DESCRIPTOR.full_name
    ours = pb.SearchParam(collection_name="c", topk=3).SerializeToString()
    assert wire.SearchParam.FromString(ours).topk == 3
    theirs = wire.TopKQueryResult(row_num=1, ids=[4], distances=[0.5]).SerializeToString()
    assert codec.decode_topk(theirs).ids.tolist() == [[4]]
