"""Endpoints of hybrid collections (``/hybrid/collections...``): scalar fields beside the vector field, entities as
JSON rows, and searches filtered with the JSON DSL.

Beyond Milvus 1.1's web API (its server had no such routes), under a prefix none of its routes uses. Each endpoint
translates JSON into the request of a hybrid RPC (:mod:`coordinator.rest.hybrid_bodies`) and calls it through the
process's backend, like every other endpoint: on a node the servicer in-process, on the proxy its forwarder (the
writer for metadata and writes, the read nodes' fan-out for searches). Errors are Milvus 1.1's ``{"message",
"code"}`` with the RPC's code; a missing (or plain) collection under ``/hybrid/collections/{name}`` answers 404.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from coordinator.errors import ErrorCode, MilvusError
from coordinator.hybrid.schema import HybridSchema, schema_from_mapping
from coordinator.rest import bodies
from coordinator.rest.backend import Backend, call
from coordinator.rest.codes import CallFailed, RestError, WebCode
from coordinator.rest.hybrid_bodies import id_list, insert_param, mapping_from_json, search_request, strict_object
from coordinator.rest.hybrid_replies import entity_json, hits_json, schema_json
from coordinator.rest.paging import parse_page
from coordinator.rest.replies import OK_SORTED, Reply, Request, dumps, json_reply, ok_dto, search_result
from coordinator.tracing import COLLECTION, NQ
from milvus_wire import milvus_pb2

MAX_IDS = 1000  # entities fetched by one request (Milvus 1.1's limit of ids per GetVectorsByID)
Endpoint = Callable[[Backend, Request], Reply]


def _model_errors(endpoint: Endpoint) -> Endpoint:
    """Errors of the hybrid model raised while translating (a field unknown to the schema, a value out of range)
    answer like the same error from the RPC."""

    @functools.wraps(endpoint)
    def run(backend: Backend, req: Request) -> Reply:
        try:
            return endpoint(backend, req)
        except MilvusError as exc:
            raise CallFailed(int(exc.code), exc.reason) from None

    return run


def _name(req: Request) -> str:
    return req.params["collection_name"]


def _ident(name: str) -> Any:
    return milvus_pb2.CollectionName(collection_name=name)


def _schema(backend: Backend, name: str) -> HybridSchema:
    return schema_from_mapping(call(backend, "DescribeHybridCollection", _ident(name)))


def _tagged(name: str, reply: Reply) -> Reply:
    return Reply(reply.status, reply.body, reply.content_type, {COLLECTION: name, **reply.attributes})


@_model_errors
def create(backend: Backend, req: Request) -> Reply:
    mapping = mapping_from_json(bodies.parse_object(req.body))
    call(backend, "CreateHybridCollection", mapping)
    return ok_dto(201)


@_model_errors
def list_collections(backend: Backend, req: Request) -> Reply:
    page = parse_page(req.query)
    mappings = list(call(backend, "ShowHybridCollections", milvus_pb2.Command()).mapping_list)
    shown = [schema_json(schema_from_mapping(m)) for m in page.of(mappings)]
    return json_reply({"collections": shown, "count": len(mappings)})


@_model_errors
def describe(backend: Backend, req: Request) -> Reply:
    name = _name(req)
    if req.query.get("info") == "stat":
        info = call(backend, "ShowHybridCollectionInfo", _ident(name))
        return _tagged(name, Reply(200, info.json_info.encode()))
    schema = _schema(backend, name)
    count = int(call(backend, "CountHybridCollection", _ident(name)).collection_row_count)
    return _tagged(name, json_reply({**schema_json(schema), "count": count}))


@_model_errors
def drop(backend: Backend, req: Request) -> Reply:
    call(backend, "DropHybridCollection", _ident(_name(req)))
    return _tagged(_name(req), Reply(204))


@_model_errors
def insert(backend: Backend, req: Request) -> Reply:
    if not req.body.strip():
        raise RestError(WebCode.BODY_FIELD_LOSS, "Request payload is required.")
    name = _name(req)
    schema = _schema(backend, name)  # a missing collection is reported before the body is read
    request = insert_param(name, schema, bodies.parse_object(req.body))
    reply = call(backend, "InsertEntity", request.body)
    body = dumps({"ids": [str(i) for i in reply.entity_id_array]})
    return Reply(201, body, attributes={COLLECTION: name, NQ: request.rows})


def _query_ids(req: Request) -> list[int]:
    if "ids" not in req.query:
        raise RestError(WebCode.QUERY_PARAM_LOSS, "Query param ids is required.")
    text = req.query["ids"]
    parts = text.split(",") if text else []
    try:
        ids = id_list(parts)
    except RestError:
        raise RestError(WebCode.ILLEGAL_QUERY_PARAM, "Query param 'ids' must list integers (comma-separated), "
                                                     f"not {text[:40]!r}") from None
    if len(ids) > MAX_IDS:
        raise RestError(ErrorCode.ILLEGAL_ARGUMENT, f"Input id array size cannot exceed: {MAX_IDS}")
    return ids


def _entity(backend: Backend, schema: HybridSchema, name: str, entity_id: int,
            fields: tuple[str, ...] | None = None) -> dict[str, Any] | None:
    reply = call(backend, "GetEntityByID", milvus_pb2.HEntityIdentity(collection_name=name, id=entity_id))
    return entity_json(schema, reply, fields)


@_model_errors
def get_entities(backend: Backend, req: Request) -> Reply:
    name = _name(req)
    ids = _query_ids(req)
    schema = _schema(backend, name)
    found = [{"entity": _entity(backend, schema, name, i), "id": str(i)} for i in ids]
    return _tagged(name, json_reply({"entities": found}))


@_model_errors
def delete_entities(backend: Backend, req: Request) -> Reply:
    doc = bodies.parse_object(req.body)
    bodies.strict_keys(doc, ("ids",))
    if doc.get("ids") is None:
        raise RestError(WebCode.BODY_FIELD_LOSS, "Field 'ids' is required")
    ids = id_list(doc["ids"])
    call(backend, "DeleteEntitiesByID", milvus_pb2.HDeleteByIDParam(collection_name=_name(req), id_array=ids))
    return _tagged(_name(req), Reply(200, OK_SORTED))


def _with_fields(backend: Backend, schema: HybridSchema, fields: tuple[str, ...], reply: Any) -> bytes:
    """The hits of ``reply`` with the requested fields of each row (one ``GetEntityByID`` per distinct row)."""
    ids = np.asarray(reply.ids, dtype=np.int64)
    distinct = [int(i) for i in dict.fromkeys(ids.tolist()) if i != -1]
    if len(distinct) > MAX_IDS:
        raise RestError(ErrorCode.ILLEGAL_ARGUMENT, f"The search found {len(distinct)} distinct rows; fields are "
                                                    f"returned for at most {MAX_IDS}: ask for fewer or none")
    entities: dict[int, dict[str, Any] | None] = {}
    for entity_id in distinct:
        try:
            entities[entity_id] = _entity(backend, schema, schema.collection_name, entity_id, fields)
        except CallFailed as exc:
            if exc.code != ErrorCode.UNEXPECTED_ERROR:  # not "Collection or partition is empty" (dropped meanwhile)
                raise
            entities[entity_id] = None
    return hits_json(int(reply.row_num), ids, np.asarray(reply.distances, dtype=np.float32), entities)


@_model_errors
def search(backend: Backend, req: Request) -> Reply:
    name = _name(req)
    wanted = search_request(name, strict_object(req.body))
    schema = None
    if wanted.fields is not None:
        schema = _schema(backend, name)
        unknown = next((f for f in wanted.fields if schema.field(f) is None), None)
        if unknown is not None:
            raise CallFailed(int(ErrorCode.ILLEGAL_ARGUMENT),
                             f"Field {unknown} does not exist in collection {name} (fields).")
    reply = call(backend, "HybridSearch", wanted.param)
    if schema is None or wanted.fields is None:
        body = search_result(int(reply.row_num), np.asarray(reply.ids, dtype=np.int64),
                             np.asarray(reply.distances, dtype=np.float32))
    else:
        body = _with_fields(backend, schema, wanted.fields, reply)
    return Reply(200, body, attributes={COLLECTION: name, NQ: int(reply.row_num)})


ENDPOINTS: dict[str, Endpoint] = {
    "hybrid_create": create, "hybrid_list": list_collections, "hybrid_describe": describe, "hybrid_drop": drop,
    "hybrid_insert": insert, "hybrid_get": get_entities, "hybrid_delete": delete_entities, "hybrid_search": search,
}
