"""Endpoints of collections, indexes, partitions and segments."""

from __future__ import annotations

from typing import Any

import orjson

from coordinator.rest import bodies
from coordinator.rest.backend import Backend, call
from coordinator.rest.codes import RestError, WebCode
from coordinator.rest.paging import parse_page
from coordinator.rest.replies import (
    INDEX_TYPES,
    METRIC_TYPES,
    Reply,
    Request,
    dumps,
    index_name,
    index_params,
    json_reply,
    metric_name,
    ok_dto,
    vectors_body,
)
from coordinator.tracing import COLLECTION
from milvus_wire import milvus_pb2

MAX_IDS = 1000  # ids per GetVectorsByID (Milvus 1.1)
DEFAULT_INDEX_FILE_SIZE = 1024


def _name(req: Request) -> str:
    return req.params["collection_name"]


def _tagged(req: Request, reply: Reply) -> Reply:
    return Reply(reply.status, reply.body, reply.content_type, {COLLECTION: _name(req)})


def create_collection(backend: Backend, req: Request) -> Reply:
    doc = bodies.parse_object(req.body)
    bodies.strict_keys(doc, ("collection_name", "dimension", "index_file_size", "metric_type"))
    name = bodies.string(doc, "collection_name", "Field 'collection_name' is missing")
    dimension = bodies.integer(doc, "dimension", "Field 'dimension' is missing")
    size = bodies.integer(doc, "index_file_size", "Field 'index_file_size' is missing", DEFAULT_INDEX_FILE_SIZE)
    metric_text = bodies.string(doc, "metric_type", "Field 'metric_type' is missing") if "metric_type" in doc else "L2"
    metric = METRIC_TYPES.get(metric_text)
    if metric is None:
        raise RestError(23, "metric_type is illegal")
    call(backend, "CreateCollection", milvus_pb2.CollectionSchema(
        collection_name=name, dimension=dimension, index_file_size=size, metric_type=metric))
    return ok_dto(201)


def describe(backend: Backend, name: str) -> dict[str, Any]:
    """One collection as the list and describe endpoints show it (describe + count + describe index)."""
    ident = milvus_pb2.CollectionName(collection_name=name)
    schema = call(backend, "DescribeCollection", ident)
    count = call(backend, "CountCollection", ident).collection_row_count
    index = call(backend, "DescribeIndex", ident)
    params = orjson.dumps(index_params(index.extra_params), option=orjson.OPT_SORT_KEYS).decode()
    return {"collection_name": schema.collection_name, "count": int(count), "dimension": int(schema.dimension),
            "index": index_name(index.index_type), "index_file_size": int(schema.index_file_size),
            "index_params": params, "metric_type": metric_name(schema.metric_type)}


def list_collections(backend: Backend, req: Request) -> Reply:
    page = parse_page(req.query, strict_all=False)
    names = list(call(backend, "ShowCollections", milvus_pb2.Command()).collection_names)
    return json_reply({"collections": [describe(backend, n) for n in page.of(names)], "count": len(names)})


def get_collection(backend: Backend, req: Request) -> Reply:
    name = _name(req)
    if req.query.get("info") == "stat":
        info = call(backend, "ShowCollectionInfo", milvus_pb2.CollectionName(collection_name=name))
        return _tagged(req, Reply(200, info.json_info.encode()))
    return _tagged(req, json_reply(describe(backend, name)))


def drop_collection(backend: Backend, req: Request) -> Reply:
    call(backend, "DropCollection", milvus_pb2.CollectionName(collection_name=_name(req)))
    return _tagged(req, Reply(204))


def create_index(backend: Backend, req: Request) -> Reply:
    doc = bodies.parse_object(req.body)
    if "index_type" not in doc:
        raise RestError(WebCode.BODY_FIELD_LOSS, "Field 'index_type' is required")
    kind = INDEX_TYPES.get(bodies.string(doc, "index_type", "Field 'index_type' is required"))
    if kind is None:
        raise RestError(8, "The index type is invalid.")
    if "params" not in doc:
        raise RestError(WebCode.BODY_FIELD_LOSS, "Field 'params' is required")
    params = orjson.dumps(doc["params"]).decode()
    call(backend, "CreateIndex", milvus_pb2.IndexParam(
        collection_name=_name(req), index_type=kind,
        extra_params=[milvus_pb2.KeyValuePair(key="params", value=params)]))
    return _tagged(req, ok_dto(201))


def get_index(backend: Backend, req: Request) -> Reply:
    index = call(backend, "DescribeIndex", milvus_pb2.CollectionName(collection_name=_name(req)))
    return _tagged(req, json_reply({"index_type": index_name(index.index_type),
                                    "params": index_params(index.extra_params)}))


def drop_index(backend: Backend, req: Request) -> Reply:
    call(backend, "DropIndex", milvus_pb2.CollectionName(collection_name=_name(req)))
    return _tagged(req, Reply(204))


def create_partition(backend: Backend, req: Request) -> Reply:
    doc = bodies.parse_object(req.body)
    bodies.strict_keys(doc, ("partition_tag",))
    tag = bodies.string(doc, "partition_tag", "Field 'partition_tag' is required")
    call(backend, "CreatePartition", milvus_pb2.PartitionParam(collection_name=_name(req), tag=tag))
    return _tagged(req, ok_dto(201))


def list_partitions(backend: Backend, req: Request) -> Reply:
    page = parse_page(req.query)
    tags = list(call(backend, "ShowPartitions", milvus_pb2.CollectionName(collection_name=_name(req)))
                .partition_tag_array)
    return _tagged(req, json_reply({"partitions": [{"partition_tag": t} for t in page.of(tags)],
                                    "count": len(tags)}))


def drop_partition(backend: Backend, req: Request) -> Reply:
    doc = bodies.parse_object(req.body)
    tag = doc.get("partition_tag")
    if not isinstance(tag, str):
        raise RestError(WebCode.BODY_PARSE_FAIL, "json error: field 'partition_tag' must be a string")
    call(backend, "DropPartition", milvus_pb2.PartitionParam(collection_name=_name(req), tag=tag))
    return _tagged(req, Reply(204))


def _segments(backend: Backend, name: str) -> list[dict[str, Any]]:
    info = call(backend, "ShowCollectionInfo", milvus_pb2.CollectionName(collection_name=name))
    doc = orjson.loads(info.json_info or "{}")
    out = []
    for part in doc.get("partitions") or []:
        for seg in part.get("segments") or []:
            out.append(dict(sorted({**seg, "partition_tag": part.get("tag", "")}.items())))
    return out


def list_segments(backend: Backend, req: Request) -> Reply:
    page = parse_page(req.query)
    segments = _segments(backend, _name(req))
    tag = req.query.get("partition_tag")
    if tag is not None:
        segments = [s for s in segments if s["partition_tag"] == tag]
    return _tagged(req, json_reply({"code": 0, "count": len(segments), "message": "OK",
                                    "segments": page.of(segments)}))


def segment_data(backend: Backend, req: Request) -> Reply:
    info = req.params["info"]
    if info not in ("ids", "vectors"):
        raise RestError(WebCode.UNKNOWN_PATH, f"Unknown path: segments/{{segment}}/{info}; use ids or vectors")
    page = parse_page({k: v for k, v in req.query.items() if k != "all_required"})
    ids = call(backend, "GetVectorIDs", milvus_pb2.GetVectorIDsParam(
        collection_name=_name(req), segment_name=req.params["segment_name"])).vector_id_array
    chosen = page.of(ids)
    if info == "ids":
        return _tagged(req, Reply(200, dumps({"count": len(ids), "ids": [str(i) for i in chosen]})))
    extra = {"code": 0, "count": len(ids), "message": "OK"}
    if not chosen:
        return _tagged(req, Reply(200, vectors_body([], [], extra)))
    if len(chosen) > MAX_IDS:
        raise RestError(5, f"Input id array size cannot exceed: {MAX_IDS} (lower page_size)")
    data = call(backend, "GetVectorsByID", milvus_pb2.VectorsIdentity(collection_name=_name(req), id_array=chosen))
    return _tagged(req, Reply(200, vectors_body(chosen, data.vectors_data, extra)))

