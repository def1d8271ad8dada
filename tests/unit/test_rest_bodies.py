"""JSON bodies to requests and replies to JSON: vectors taken whole by numpy, ids as strings, the wire bytes
of the requests equal protobuf's own, Milvus 1.1's formats of distances and configuration."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest

from coordinator.rest import bodies, encode
from coordinator.rest.api_system import config_sections
from coordinator.rest.codes import RestError
from coordinator.rest.replies import search_result, vectors_body
from milvus_wire import milvus_pb2, wire_fastpath_pb2


def _vectors(doc: Any, binary: bool = False) -> Any:
    body = orjson.dumps({"vectors": doc})
    return bodies.vectors(orjson.loads(body)["vectors"], binary, body)


def test_vectors_are_converted_whole_and_checked() -> None:
    rows = _vectors([[1, 2.5], [3, 4]])
    assert isinstance(rows, np.ndarray) and rows.dtype == np.float32 and rows.tolist() == [[1, 2.5], [3, 4]]
    codes = _vectors([[0, 255], [7, 8]], binary=True)
    assert isinstance(codes, np.ndarray) and codes.dtype == np.uint8 and codes.tolist() == [[0, 255], [7, 8]]
    ragged = _vectors([[1.0, 2.0], [3.0]])
    assert isinstance(ragged, list) and [r.tolist() for r in ragged] == [[1.0, 2.0], [3.0]]
    for bad, binary in (([[1, "2"]], False), ([[1, True]], False), ([[1, None]], False), ([1, 2], False),
                        ("x", False), ([[256]], True), ([[1.5]], True), ([[-1]], True), ([[[1]]], False)):
        with pytest.raises(RestError) as err:
            _vectors(bad, binary)
        assert err.value.code == 36, bad
    assert _vectors([]).shape == (0, 0)


def test_ids_are_decimal_strings() -> None:
    assert bodies.id_strings(["1", "-2", str((1 << 63) - 1)], "ids").tolist() == [1, -2, (1 << 63) - 1]
    with pytest.raises(RestError) as err:
        bodies.id_strings([1], "ids")
    assert err.value.code == 36
    for bad in (["1x"], [""], [str(1 << 63)], ["1.0"]):
        with pytest.raises(RestError) as err:
            bodies.id_strings(bad, "ids")
        assert err.value.code == 35
    with pytest.raises(RestError) as err:
        bodies.id_strings("1", "ids")
    assert err.value.code == 35


def test_typed_fields() -> None:
    doc = {"a": 5, "b": True, "c": "7", "n": None}
    assert bodies.integer(doc, "a", "missing") == 5
    assert bodies.integer(doc, "zz", "missing", 9) == 9
    for name, code in (("b", 36), ("c", 36), ("n", 34), ("zz", 34)):
        with pytest.raises(RestError) as err:
            bodies.integer(doc, name, "missing")
        assert err.value.code == code, name
    with pytest.raises(RestError) as err:
        bodies.strict_keys({"x": 1}, ("a",))
    assert err.value.code == 35
    with pytest.raises(RestError) as err:
        bodies.parse_json(b"{")
    assert err.value.code == 36
    with pytest.raises(RestError) as err:
        bodies.parse_object(b"")
    assert err.value.code == 34


def test_requests_parse_as_the_messages_a_grpc_client_sends() -> None:
    rng = np.random.default_rng(3)
    rows = rng.random((5, 8), dtype=np.float32)
    ids = np.arange(5, dtype=np.int64) * 11
    raw = encode.insert("c", rows, False, ids, "p")
    msg = milvus_pb2.InsertParam.FromString(raw)
    assert msg.collection_name == "c" and msg.partition_tag == "p" and list(msg.row_id_array) == ids.tolist()
    assert np.array_equal(np.array([r.float_data for r in msg.row_record_array], dtype=np.float32), rows)
    fast = wire_fastpath_pb2.InsertParamRaw.FromString(raw)
    expected = [milvus_pb2.RowRecord(float_data=r).SerializeToString() for r in rows.tolist()]
    assert list(fast.row_record_array) == expected  # each record byte for byte as protobuf writes it
    codes = rng.integers(0, 256, (3, 4), dtype=np.uint8)
    search = milvus_pb2.SearchParam.FromString(encode.search_param("c", ["t.*"], codes, True, 7, '{"nprobe":2}'))
    assert [r.binary_data for r in search.query_record_array] == [bytes(c) for c in codes]
    assert search.topk == 7 and list(search.partition_tag_array) == ["t.*"]
    assert (search.extra_params[0].key, search.extra_params[0].value) == ("params", '{"nprobe":2}')
    files = milvus_pb2.SearchInFilesParam.FromString(encode.search_in_files(["3", "4"], "c", rows[:2], False, 1, "{}"))
    assert list(files.file_id_array) == ["3", "4"] and files.search_param.collection_name == "c"
    assert len(files.search_param.query_record_array) == 2
    ragged = [np.array([1.0, 2.0], np.float32), np.array([3.0], np.float32)]
    msg = milvus_pb2.InsertParam.FromString(encode.insert("c", ragged, False, None, ""))
    assert [list(r.float_data) for r in msg.row_record_array] == [[1.0, 2.0], [3.0]]
    with pytest.raises(RestError):
        encode.search_param("c", [], rows, False, 1 << 63, "{}")


def test_search_results_are_milvus_11_json() -> None:
    ids = np.array([[5, 9, -1], [-1, -1, -1]], dtype=np.int64)
    dist = np.array([[0.0, 1.2345678, 3.4e38], [0, 0, 0]], dtype=np.float32)
    doc = orjson.loads(search_result(2, ids, dist))
    assert doc["num"] == 2
    assert doc["result"] == [[{"distance": "0.000000", "id": "5"}, {"distance": "1.234568", "id": "9"}], []]
    assert search_result(0, np.empty(0, np.int64), np.empty(0, np.float32)) == b'{"num":0,"result":[]}'
    big = orjson.loads(search_result(1, np.array([1]), np.array([np.finfo(np.float32).max], np.float32)))
    assert big["result"][0][0]["distance"] == "340282346638528859811704183484516925440.000000"  # as C prints FLT_MAX
    assert "-0.250000" in search_result(1, np.array([1]), np.array([-0.25], np.float32)).decode()


def test_vectors_and_config_replies() -> None:
    records = [milvus_pb2.RowRecord(float_data=[0.1, 2.0]), milvus_pb2.RowRecord(), milvus_pb2.RowRecord(
        binary_data=b"\x01\xff")]
    doc = orjson.loads(vectors_body([1, 2, 3], records, {"code": 0, "message": "OK"}))
    assert list(doc) == ["code", "message", "vectors"]
    assert doc["vectors"] == [{"id": "1", "vector": [0.1, 2.0]}, {"id": "2", "vector": []},
                              {"id": "3", "vector": [1, 255]}]
    flat = {"cache.cache_size": "4GB", "network.bind.address": "127.0.0.1", "storage": '{"path": "/d", "n": 1}'}
    assert config_sections(flat) == {"cache": {"cache_size": "4GB"}, "network": {"bind.address": "127.0.0.1"},
                                     "storage": {"path": "/d", "n": "1"}}


def test_the_float32_shortcut_never_takes_strings_or_literals() -> None:
    def convert(body: bytes) -> Any:
        doc = orjson.loads(body)
        return bodies.vectors(doc["vectors"], False, body, outside={**doc, "vectors": 0})

    assert convert(b'{"partition_tag": "a\\"b", "vectors": [[1, 2.5]]}').tolist() == [[1.0, 2.5]]
    for body in (b'{"vectors": [["1.5", 2]]}',
                 b'{"partition_tag": "\\u0022\\u0022", "vectors": [["1.5", 2]]}',  # escaped quotes cannot hide it
                 b'{"vectors": [[true, 2]]}', b'{"vectors": [[null, 2]]}', b'{"vectors": [[[1], 2]]}'):
        with pytest.raises(RestError) as err:
            convert(body)
        assert err.value.code == 36, body
    ragged = convert(b'{"vectors": [[1, 2], [3]]}')
    assert isinstance(ragged, list) and len(ragged) == 2
