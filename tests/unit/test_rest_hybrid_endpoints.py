"""The hybrid endpoints over a recording backend: which RPCs they call with which requests, and how refusals (the
REST layer's, the hybrid model's, the RPC's) become HTTP statuses and Milvus error bodies."""

from __future__ import annotations

from typing import Any

import orjson

from coordinator.hybrid.schema import schema_to_mapping
from coordinator.rest.app import run_endpoint
from coordinator.rest.backend import message_class
from coordinator.rest.paging import parse_query
from coordinator.rest.replies import Reply
from coordinator.rest.routes import match
from milvus_wire import milvus_pb2 as pb
from milvus_wire import status_pb2
from tests.unit.test_rest_hybrid_bodies import CREATE, DSL, ROWS, SCHEMA

OK = status_pb2.Status(reason="OK")
MISSING = status_pb2.Status(error_code=status_pb2.COLLECTION_NOT_EXISTS, reason="Collection x does not exist.")


class Recorder:
    """Serves "shop" (SCHEMA) with two stored entities; any other name is missing."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def known_binary(self, collection: str) -> bool | None:
        return None

    def call(self, method: str, request: bytes) -> bytes:
        rpc = pb.DESCRIPTOR.services_by_name["MilvusService"].methods_by_name[method]
        message = message_class(rpc.input_type.full_name).FromString(request)
        self.calls.append((method, message))
        name = getattr(message, "collection_name", "shop")
        reply: Any
        if method == "DescribeHybridCollection":
            reply = schema_to_mapping(SCHEMA) if name == "shop" else pb.Mapping(status=MISSING)
            reply.status.CopyFrom(OK if name == "shop" else MISSING)
        elif method == "InsertEntity":
            reply = pb.HEntityIDs(status=OK, entity_id_array=range(message.entities.row_num))
        elif method == "HybridSearch":
            reply = pb.TopKQueryResult(status=OK, row_num=1, ids=[5, -1], distances=[0.25, 0.0])
        elif method == "GetEntityByID":
            reply = pb.HEntity(status=OK, entity_id=message.id)
        elif method == "CreateHybridCollection":
            reply = status_pb2.Status(error_code=status_pb2.ILLEGAL_ARGUMENT, reason="refused")
        else:
            reply = OK
        return bytes(reply.SerializeToString())


def serve(backend: Recorder, method: str, path: str, body: Any = b"") -> Reply:
    raw_path, _, query = path.partition("?")
    found = match(method, raw_path)
    assert found is not None, path
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    return run_endpoint(backend, found, parse_query(query), data)


def error(reply: Reply) -> tuple[int, int]:
    doc = orjson.loads(reply.body)
    assert list(doc) == ["message", "code"] and doc["message"]
    return reply.status, doc["code"]


def test_insert_describes_then_sends_one_insert_entity() -> None:
    backend = Recorder()
    reply = serve(backend, "POST", "/hybrid/collections/shop/entities", {"entities": ROWS, "partition_tag": "p"})
    assert reply.status == 201 and orjson.loads(reply.body) == {"ids": ["0", "1"]}
    assert [m for m, _ in backend.calls] == ["DescribeHybridCollection", "InsertEntity"]
    sent = backend.calls[1][1]
    assert sent.collection_name == "shop" and sent.partition_tag == "p" and sent.entities.row_num == 2


def test_refusals_map_to_statuses_and_send_nothing() -> None:
    backend = Recorder()
    cases = [
        ("POST", "/hybrid/collections/shop/entities", b"{", (400, 36)),
        ("POST", "/hybrid/collections/shop/entities", b"", (400, 34)),
        ("POST", "/hybrid/collections/shop/entities", {"entities": [{**ROWS[0], "zz": 1}]}, (400, 5)),
        ("POST", "/hybrid/collections/shop/entities", {"entities": [{**ROWS[0], "i8": "1"}]}, (400, 36)),
        ("POST", "/hybrid/collections/shop/entities", {"entities": [{**ROWS[0], "v": [1]}]}, (400, 7)),
        ("POST", "/hybrid/collections/nope/entities", {"entities": ROWS}, (404, 4)),
        ("POST", "/hybrid/collections/shop/search", {"dsl": DSL, "fields": ["zz"]}, (400, 5)),
        ("POST", "/hybrid/collections/shop/search", b'{"dsl": {}, "dsl": {}}', (400, 36)),
        ("GET", "/hybrid/collections/shop/entities", b"", (400, 33)),
        ("GET", "/hybrid/collections/shop/entities?ids=1,x", b"", (400, 37)),
        ("GET", "/hybrid/collections/shop/entities?ids=" + ",".join(["1"] * 1001), b"", (400, 5)),
        ("DELETE", "/hybrid/collections/shop/entities", {"id": [1]}, (400, 35)),
        ("DELETE", "/hybrid/collections/shop/entities", {}, (400, 34)),
        ("POST", "/hybrid/collections", {"collection_name": "c", "fields": [{"name": "a", "type": "TEXT"}]},
         (400, 5)),
    ]
    for method, path, body, expected in cases:
        assert error(serve(backend, method, path, body)) == expected, (method, path, body)
    sent = {m for m, _ in backend.calls}
    assert sent <= {"DescribeHybridCollection"}, sent


def test_an_rpc_refusal_is_its_code() -> None:
    backend = Recorder()
    assert error(serve(backend, "POST", "/hybrid/collections", CREATE)) == (400, 5)  # the recorder refuses creates
    assert [m for m, _ in backend.calls] == ["CreateHybridCollection"]


def test_search_sends_the_dsl_and_fetches_fields_of_each_distinct_hit() -> None:
    backend = Recorder()
    plain = serve(backend, "POST", "/hybrid/collections/shop/search", {"dsl": DSL, "partition_tags": ["p"]})
    assert plain.status == 200 and plain.body == b'{"num":1,"result":[[{"distance":"0.250000","id":"5"}]]}'
    (method, sent), = backend.calls
    assert method == "HybridSearch" and list(sent.partition_tag_array) == ["p"]
    assert orjson.loads(sent.extra_params[0].value) == DSL
    backend.calls.clear()
    with_fields = serve(backend, "POST", "/hybrid/collections/shop/search", {"dsl": DSL, "fields": ["i8"]})
    assert orjson.loads(with_fields.body)["result"] == [[{"distance": "0.250000", "entity": None, "id": "5"}]]
    assert [m for m, _ in backend.calls] == ["DescribeHybridCollection", "HybridSearch", "GetEntityByID"]
