"""Endpoints of vectors: insert, get by ids, search (by vectors, by ids, in segments) and delete."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from coordinator.rest import bodies, encode, fastjson
from coordinator.rest.backend import Backend, call
from coordinator.rest.codes import RestError, WebCode
from coordinator.rest.replies import OK_SORTED, Reply, Request, dumps, search_result, vectors_body
from coordinator.tracing import COLLECTION, NQ, TOPK
from milvus_wire import milvus_pb2


def _name(req: Request) -> str:
    return req.params["collection_name"]


def _binary(backend: Backend, name: str) -> bool:
    """Whether the collection holds binary vectors (its metric decides how JSON rows are read)."""
    known = backend.known_binary(name)
    if known is not None:
        return known
    schema = call(backend, "DescribeCollection", milvus_pb2.CollectionName(collection_name=name))
    return int(schema.metric_type) >= 3


def insert(backend: Backend, req: Request) -> Reply:
    if not req.body.strip():
        raise RestError(WebCode.BODY_FIELD_LOSS, "Request payload is required.")
    name = _name(req)
    binary = _binary(backend, name)  # as Milvus 1.1: a missing collection is reported before the body
    # Float rows straight from the text when provably the same; otherwise (and for binary rows) the general way.
    fast = None if binary else fastjson.split(req.body)
    rows: bodies.Vectors
    if fast is not None:
        doc, rows = fast
    else:
        doc = bodies.parse_object(req.body)
        if doc.get("vectors") is None:
            raise RestError(WebCode.BODY_FIELD_LOSS, "Field 'vectors' is required")
        rows = bodies.vectors(doc["vectors"], binary, req.body, outside={**doc, "vectors": 0})
    ids = None if doc.get("ids") is None else bodies.id_strings(doc["ids"], "ids")
    tag = bodies.string(doc, "partition_tag", None)
    reply = call(backend, "Insert", encode.insert(name, rows, binary, ids, tag))
    body = dumps({"ids": [str(i) for i in reply.vector_id_array]})
    return Reply(201, body, attributes={COLLECTION: name, NQ: len(rows)})


def _id_list(text: str) -> list[int]:
    if text == "":
        return []
    out = []
    for part in text.split(","):
        digits = part[1:] if part[:1] == "-" else part
        if not (digits.isascii() and digits.isdigit()) or not -(1 << 63) <= int(part) < (1 << 63):
            raise RestError(WebCode.ILLEGAL_QUERY_PARAM, f"Query param 'ids' must list integers, not {part!r}")
        out.append(int(part))
    return out


def get_vectors(backend: Backend, req: Request) -> Reply:
    if "ids" not in req.query:
        raise RestError(WebCode.QUERY_PARAM_LOSS, "Query param ids is required.")
    ids = _id_list(req.query["ids"])
    data = call(backend, "GetVectorsByID", milvus_pb2.VectorsIdentity(
        collection_name=_name(req), id_array=ids, partition_tag=req.query.get("partition_tag", "")))
    body = vectors_body(ids, data.vectors_data, {"code": 0, "message": "OK"})
    return Reply(200, body, attributes={COLLECTION: _name(req)})


def search_or_delete(backend: Backend, req: Request) -> Reply:
    doc = bodies.parse_object(req.body, "Request payload is required.")
    if "delete" in doc:  # Milvus 1.1: delete wins when both are present
        return _delete(backend, req, doc["delete"])
    if "search" in doc:
        return _search(backend, req, doc, doc["search"])
    raise RestError(WebCode.ILLEGAL_BODY, "Unknown body")


def _delete(backend: Backend, req: Request, spec: Any) -> Reply:
    if not isinstance(spec, dict):
        raise bodies.type_error("delete", "an object", spec)
    if "ids" not in spec:
        raise RestError(WebCode.BODY_FIELD_LOSS, 'Field "delete" must contains "ids"')
    if not isinstance(spec["ids"], list):
        raise RestError(WebCode.BODY_FIELD_LOSS, '"ids" must be an array')
    ids = bodies.id_strings(spec["ids"], "ids")
    tag = bodies.string(spec, "partition_tag", None)
    call(backend, "DeleteByID", milvus_pb2.DeleteByIDParam(collection_name=_name(req), id_array=ids.tolist(),
                                                           partition_tag=tag))
    return Reply(200, OK_SORTED, attributes={COLLECTION: _name(req)})


def _search(backend: Backend, req: Request, doc: dict[str, Any], spec: Any) -> Reply:
    if not isinstance(spec, dict):
        raise bodies.type_error("search", "an object", spec)
    name = _name(req)
    if "topk" not in spec:
        raise RestError(WebCode.BODY_FIELD_LOSS, "Field 'topk' is required")
    topk = bodies.integer(spec, "topk", "Field 'topk' is required")
    if "params" not in spec:
        raise RestError(WebCode.BODY_FIELD_LOSS, "Field 'params' is required")
    params = orjson.dumps(spec["params"]).decode()
    tags = bodies.strings(spec.get("partition_tags"), "partition_tags")
    if "ids" in spec:
        ids = bodies.id_strings(spec["ids"], "ids")
        reply = call(backend, "SearchByID", encode.search_by_id(name, tags, ids, topk, params))
        return _result(reply, name, len(ids), topk)
    file_ids = bodies.strings(spec.get("file_ids"), "file_ids")
    binary = _binary(backend, name)
    if spec.get("vectors") is None:
        raise RestError(WebCode.BODY_FIELD_LOSS, 'Field "vectors" is required')
    rows = bodies.vectors(spec["vectors"], binary, req.body, outside={**doc, "search": {**spec, "vectors": 0}})
    if "file_ids" in spec and spec["file_ids"] is not None:
        reply = call(backend, "SearchInFiles", encode.search_in_files(file_ids, name, rows, binary, topk, params))
    else:
        reply = call(backend, "Search", encode.search_param(name, tags, rows, binary, topk, params))
    return _result(reply, name, len(rows), topk)


def _result(reply: Any, name: str, nq: int, topk: int) -> Reply:
    body = search_result(int(reply.row_num), np.asarray(reply.ids, dtype=np.int64),
                         np.asarray(reply.distances, dtype=np.float32))
    return Reply(200, body, attributes={COLLECTION: name, NQ: nq, TOPK: topk})
