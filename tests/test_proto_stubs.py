"""Checks on the Milvus 1.1 wire contract (proto/) and the generated stubs (milvus_wire/)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from milvus_wire import milvus_pb2, milvus_pb2_grpc, status_pb2

REPO_ROOT = Path(__file__).resolve().parent.parent
GEN_SCRIPT = REPO_ROOT / "scripts" / "gen_proto.py"
PACKAGE_DIR = REPO_ROOT / "milvus_wire"

EXPECTED_GENERATED: frozenset[str] = frozenset(
    {
        "status_pb2.py",
        "status_pb2.pyi",
        "milvus_pb2.py",
        "milvus_pb2.pyi",
        "milvus_pb2_grpc.py",
        "wire_fastpath_pb2.py",
        "wire_fastpath_pb2.pyi",
    }
)

# (rpc, request, response) in proto order, as listed in the protocol notes (section 2).
EXPECTED_RPCS: list[tuple[str, str, str]] = [
    ("CreateCollection", "CollectionSchema", "Status"),
    ("HasCollection", "CollectionName", "BoolReply"),
    ("DescribeCollection", "CollectionName", "CollectionSchema"),
    ("CountCollection", "CollectionName", "CollectionRowCount"),
    ("ShowCollections", "Command", "CollectionNameList"),
    ("ShowCollectionInfo", "CollectionName", "CollectionInfo"),
    ("DropCollection", "CollectionName", "Status"),
    ("CreateIndex", "IndexParam", "Status"),
    ("DescribeIndex", "CollectionName", "IndexParam"),
    ("DropIndex", "CollectionName", "Status"),
    ("CreatePartition", "PartitionParam", "Status"),
    ("HasPartition", "PartitionParam", "BoolReply"),
    ("ShowPartitions", "CollectionName", "PartitionList"),
    ("DropPartition", "PartitionParam", "Status"),
    ("Insert", "InsertParam", "VectorIds"),
    ("GetVectorsByID", "VectorsIdentity", "VectorsData"),
    ("GetVectorIDs", "GetVectorIDsParam", "VectorIds"),
    ("Search", "SearchParam", "TopKQueryResult"),
    ("SearchByID", "SearchByIDParam", "TopKQueryResult"),
    ("SearchInFiles", "SearchInFilesParam", "TopKQueryResult"),
    ("Cmd", "Command", "StringReply"),
    ("DeleteByID", "DeleteByIDParam", "Status"),
    ("PreloadCollection", "PreloadCollectionParam", "Status"),
    ("ReleaseCollection", "PreloadCollectionParam", "Status"),
    ("ReloadSegments", "ReLoadSegmentsParam", "Status"),
    ("Flush", "FlushParam", "Status"),
    ("Compact", "CollectionName", "Status"),
    ("CreateHybridCollection", "Mapping", "Status"),
    ("HasHybridCollection", "CollectionName", "BoolReply"),
    ("DropHybridCollection", "CollectionName", "Status"),
    ("DescribeHybridCollection", "CollectionName", "Mapping"),
    ("CountHybridCollection", "CollectionName", "CollectionRowCount"),
    ("ShowHybridCollections", "Command", "MappingList"),
    ("ShowHybridCollectionInfo", "CollectionName", "CollectionInfo"),
    ("PreloadHybridCollection", "CollectionName", "Status"),
    ("InsertEntity", "HInsertParam", "HEntityIDs"),
    ("HybridSearch", "HSearchParam", "TopKQueryResult"),
    ("HybridSearchInSegments", "HSearchInSegmentsParam", "TopKQueryResult"),
    ("GetEntityByID", "HEntityIdentity", "HEntity"),
    ("GetEntityIDs", "HGetEntityIDsParam", "HEntityIDs"),
    ("DeleteEntitiesByID", "HDeleteByIDParam", "Status"),
]

# Message -> {field name: field number} (protocol notes, section 3).
EXPECTED_FIELDS: dict[str, dict[str, int]] = {
    "KeyValuePair": {"key": 1, "value": 2},
    "CollectionSchema": {
        "status": 1,
        "collection_name": 2,
        "dimension": 3,
        "index_file_size": 4,
        "metric_type": 5,
        "extra_params": 6,
    },
    "RowRecord": {"float_data": 1, "binary_data": 2},
    "InsertParam": {
        "collection_name": 1,
        "row_record_array": 2,
        "row_id_array": 3,
        "partition_tag": 4,
        "extra_params": 5,
    },
    "SearchParam": {
        "collection_name": 1,
        "partition_tag_array": 2,
        "query_record_array": 3,
        "topk": 4,
        "extra_params": 5,
    },
    "SearchInFilesParam": {"file_id_array": 1, "search_param": 2},
    "SearchByIDParam": {
        "collection_name": 1,
        "partition_tag_array": 2,
        "id_array": 3,
        "topk": 4,
        "extra_params": 5,
    },
    "TopKQueryResult": {"status": 1, "row_num": 2, "ids": 3, "distances": 4},
    "IndexParam": {"status": 1, "collection_name": 2, "index_type": 3, "extra_params": 4},
    "DeleteByIDParam": {"collection_name": 1, "id_array": 2, "partition_tag": 3},
    "VectorsIdentity": {"collection_name": 1, "id_array": 2, "partition_tag": 3},
    "VectorsData": {"status": 1, "vectors_data": 2},
    "PreloadCollectionParam": {"collection_name": 1, "partition_tag_array": 2},
    "ReLoadSegmentsParam": {"collection_name": 1, "segment_id_array": 2},
    "GetVectorIDsParam": {"collection_name": 1, "segment_name": 2},
    "CollectionInfo": {"status": 1, "json_info": 2},
    "FlushParam": {"collection_name_array": 1},
    "HEntity": {
        "status": 1,
        "entity_id": 2,
        "field_names": 3,
        "attr_records": 4,
        "row_num": 5,
        "result_values": 6,
    },
}

EXPECTED_ERROR_CODES: dict[str, int] = {
    "SUCCESS": 0,
    "UNEXPECTED_ERROR": 1,
    "CONNECT_FAILED": 2,
    "PERMISSION_DENIED": 3,
    "COLLECTION_NOT_EXISTS": 4,
    "ILLEGAL_ARGUMENT": 5,
    "ILLEGAL_DIMENSION": 7,
    "ILLEGAL_INDEX_TYPE": 8,
    "ILLEGAL_COLLECTION_NAME": 9,
    "ILLEGAL_TOPK": 10,
    "ILLEGAL_ROWRECORD": 11,
    "ILLEGAL_VECTOR_ID": 12,
    "ILLEGAL_SEARCH_RESULT": 13,
    "FILE_NOT_FOUND": 14,
    "META_FAILED": 15,
    "CACHE_FAILED": 16,
    "CANNOT_CREATE_FOLDER": 17,
    "CANNOT_CREATE_FILE": 18,
    "CANNOT_DELETE_FOLDER": 19,
    "CANNOT_DELETE_FILE": 20,
    "BUILD_INDEX_ERROR": 21,
    "ILLEGAL_NLIST": 22,
    "ILLEGAL_METRIC_TYPE": 23,
    "OUT_OF_MEMORY": 24,
}


def _message(name: str) -> Any:
    """Descriptor of a milvus.proto message."""
    return milvus_pb2.DESCRIPTOR.message_types_by_name[name]


def _enum_values(enum: Any) -> dict[str, int]:
    return {value.name: value.number for value in enum.values}


def test_stubs_are_up_to_date(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(GEN_SCRIPT), "--out", str(tmp_path)],
        check=True,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    generated = {path.name for path in tmp_path.iterdir()}
    assert generated == EXPECTED_GENERATED
    for name in sorted(generated):
        committed = PACKAGE_DIR / name
        assert committed.is_file(), f"{name} missing: run python scripts/gen_proto.py"
        assert (tmp_path / name).read_bytes() == committed.read_bytes(), (
            "stubs are stale: run python scripts/gen_proto.py"
        )


def test_generator_keeps_package_init() -> None:
    init = PACKAGE_DIR / "__init__.py"
    assert init.is_file()
    assert "gen_proto.py" in init.read_text(encoding="utf-8")


def test_service_methods_in_proto_order() -> None:
    assert milvus_pb2.DESCRIPTOR.package == "milvus.grpc"
    service = milvus_pb2.DESCRIPTOR.services_by_name["MilvusService"]
    assert service.full_name == "milvus.grpc.MilvusService"
    actual = [
        (method.name, method.input_type.full_name, method.output_type.full_name) for method in service.methods
    ]
    expected = [(rpc, f"milvus.grpc.{req}", f"milvus.grpc.{resp}") for rpc, req, resp in EXPECTED_RPCS]
    assert len(actual) == 41
    assert actual == expected
    for method in service.methods:
        assert not method.client_streaming
        assert not method.server_streaming


def test_grpc_module_exposes_service() -> None:
    assert hasattr(milvus_pb2_grpc, "MilvusServiceStub")
    assert hasattr(milvus_pb2_grpc, "MilvusServiceServicer")
    assert hasattr(milvus_pb2_grpc, "add_MilvusServiceServicer_to_server")
    servicer = milvus_pb2_grpc.MilvusServiceServicer
    for rpc, _, _ in EXPECTED_RPCS:
        assert callable(getattr(servicer, rpc)), rpc


@pytest.mark.parametrize("message_name", sorted(EXPECTED_FIELDS))
def test_message_field_numbers(message_name: str) -> None:
    descriptor = _message(message_name)
    actual = {field.name: field.number for field in descriptor.fields}
    assert actual == EXPECTED_FIELDS[message_name]


def test_status_lives_in_status_proto() -> None:
    status = status_pb2.DESCRIPTOR.message_types_by_name["Status"]
    assert status.full_name == "milvus.grpc.Status"
    assert {f.name: f.number for f in status.fields} == {"error_code": 1, "reason": 2}
    assert status.fields_by_name["error_code"].enum_type.full_name == "milvus.grpc.ErrorCode"
    assert "Status" not in milvus_pb2.DESCRIPTOR.message_types_by_name
    assert [dep.name for dep in milvus_pb2.DESCRIPTOR.dependencies] == ["status.proto"]


def test_error_code_values() -> None:
    values = _enum_values(status_pb2.DESCRIPTOR.enum_types_by_name["ErrorCode"])
    assert values == EXPECTED_ERROR_CODES
    assert 6 not in values.values()
    assert status_pb2.OUT_OF_MEMORY == 24
    assert status_pb2.SUCCESS == 0


def test_hybrid_enums() -> None:
    enums = milvus_pb2.DESCRIPTOR.enum_types_by_name
    assert _enum_values(enums["DataType"]) == {
        "NULL": 0,
        "INT8": 1,
        "INT16": 2,
        "INT32": 3,
        "INT64": 4,
        "STRING": 20,
        "BOOL": 30,
        "FLOAT": 40,
        "DOUBLE": 41,
        "VECTOR": 100,
        "UNKNOWN": 9999,
    }
    assert _enum_values(enums["CompareOperator"]) == {"LT": 0, "LTE": 1, "EQ": 2, "GT": 3, "GTE": 4, "NE": 5}
    assert _enum_values(enums["Occur"]) == {"INVALID": 0, "MUST": 1, "SHOULD": 2, "MUST_NOT": 3}


def test_hybrid_oneofs() -> None:
    expected: dict[str, tuple[str, dict[str, int]]] = {
        "FieldType": ("value", {"data_type": 1, "vector_param": 2}),
        "FieldValue": (
            "value",
            {
                "int32_value": 1,
                "int64_value": 2,
                "float_value": 3,
                "double_value": 4,
                "string_value": 5,
                "bool_value": 6,
                "vector_value": 7,
            },
        ),
        "GeneralQuery": ("query", {"boolean_query": 1, "term_query": 2, "range_query": 3, "vector_query": 4}),
    }
    for message_name, (oneof_name, fields) in expected.items():
        descriptor = _message(message_name)
        assert list(descriptor.oneofs_by_name) == [oneof_name], message_name
        oneof = descriptor.oneofs_by_name[oneof_name]
        assert {f.name: f.number for f in oneof.fields} == fields, message_name


def test_wire_roundtrip_of_search_result() -> None:
    result = milvus_pb2.TopKQueryResult(
        status=status_pb2.Status(error_code=status_pb2.SUCCESS, reason=""),
        row_num=2,
        ids=[1, 2, -1, 4],
        distances=[0.5, 1.5, 3.4028234663852886e38, 0.25],
    )
    decoded = milvus_pb2.TopKQueryResult.FromString(result.SerializeToString())
    assert decoded == result
    assert list(decoded.ids) == [1, 2, -1, 4]


def test_fastpath_messages_are_wire_identical_to_milvus_requests() -> None:
    """The raw-bytes request views must parse what the 1.1 messages serialize, and back."""
    from milvus_wire import wire_fastpath_pb2

    rows = [milvus_pb2.RowRecord(float_data=[1.0, 2.5]), milvus_pb2.RowRecord(binary_data=b"\x01\x02")]
    kv = [milvus_pb2.KeyValuePair(key="params", value='{"nprobe": 4}')]
    insert = milvus_pb2.InsertParam(
        collection_name="c", row_record_array=rows, row_id_array=[5, 7], partition_tag="p", extra_params=kv
    )
    raw = wire_fastpath_pb2.InsertParamRaw.FromString(insert.SerializeToString())
    assert [milvus_pb2.RowRecord.FromString(r) for r in raw.row_record_array] == list(rows)
    assert list(raw.row_id_array) == [5, 7] and raw.partition_tag == "p" and raw.extra_params[0].key == "params"
    assert milvus_pb2.InsertParam.FromString(raw.SerializeToString()) == insert

    search = milvus_pb2.SearchParam(
        collection_name="c", partition_tag_array=["a.*"], query_record_array=rows, topk=9, extra_params=kv
    )
    files = milvus_pb2.SearchInFilesParam(file_id_array=["1", "2"], search_param=search)
    raw_files = wire_fastpath_pb2.SearchInFilesParamRaw.FromString(files.SerializeToString())
    assert list(raw_files.file_id_array) == ["1", "2"]
    assert raw_files.search_param.topk == 9 and list(raw_files.search_param.partition_tag_array) == ["a.*"]
    assert milvus_pb2.SearchInFilesParam.FromString(raw_files.SerializeToString()) == files
