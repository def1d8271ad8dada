"""An OpenAPI 3.1 description of the REST API (``/openapi.json``) and a page that renders it (``/docs``).

The page is plain HTML built from the same document on the server: it needs no script and nothing from
another host, so it also works where the server has no internet access.
"""

from __future__ import annotations

import functools
import html
from typing import Any

from coordinator.rest.openapi_hybrid import HYBRID_SPECS
from coordinator.rest.replies import Reply, Request, dumps
from coordinator.rest.routes import ROUTES, Route

STATUS = {"type": "object", "properties": {"message": {"type": "string"}, "code": {"type": "integer"}}}
ID = {"type": "string", "pattern": "^-?[0-9]+$", "description": "a 64-bit id as a decimal string"}
VECTOR = {"type": "array", "items": {"type": "number"},
          "description": "floats; for binary collections one integer 0..255 per byte (dimension / 8 of them)"}
PAGE = [("offset", "first item (default 0)"), ("page_size", "items per page (default 10; 0: only count)")]
ALL = [("all_required", "true: every item, paging ignored")]
NAME = ("collection_name", "the collection")
DESCRIPTION = {"type": "object", "properties": {
    "collection_name": {"type": "string"}, "count": {"type": "integer"}, "dimension": {"type": "integer"},
    "index": {"type": "string"}, "index_file_size": {"type": "integer"},
    "index_params": {"type": "string", "description": "JSON text"}, "metric_type": {"type": "string"}}}
HIT = {"type": "object", "properties": {"distance": {"type": "string", "description": "printf %f"}, "id": ID}}


def _obj(required: list[str], **props: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": props}


SEARCH = _obj(["topk", "params"], topk={"type": "integer"}, params={"type": "object"},
              partition_tags={"type": ["array", "null"], "items": {"type": "string"}},
              vectors={"type": "array", "items": VECTOR},
              file_ids={"type": ["array", "null"], "items": {"type": "string"}},
              ids={"type": "array", "items": ID, "description": "search by these ids' vectors instead"})

# route name: (summary, query parameters, request body schema, success body schema)
SPECS: dict[str, tuple[str, list[tuple[str, str]], Any, Any]] = {
    "root": ("Welcome text", [], None, {"type": "string"}),
    "state": ("Liveness: always {\"message\":\"Success\",\"code\":0}", [], None, STATUS),
    "devices": ("Memory of the machine (GiB)", [], None, {"type": "object"}),
    "get_advanced": ("Cache capacity (GB) and advanced settings", [], None, {"type": "object"}),
    "set_advanced": ("Change cache capacity (GB) and advanced settings", [],
                     _obj([], cpu_cache_capacity={"type": "integer"}, cache_insert_data={"type": "boolean"},
                          use_blas_threshold={"type": "integer"}), STATUS),
    "create_collection": ("Create a collection", [],
                          _obj(["collection_name", "dimension"], collection_name={"type": "string"},
                               dimension={"type": "integer"}, index_file_size={"type": "integer", "default": 1024},
                               metric_type={"type": "string", "default": "L2",
                                            "enum": ["L2", "IP", "HAMMING", "JACCARD", "TANIMOTO", "SUBSTRUCTURE",
                                                     "SUPERSTRUCTURE"]}), STATUS),
    "list_collections": ("List collections, described", [*PAGE, *ALL], None,
                         _obj([], collections={"type": "array", "items": DESCRIPTION}, count={"type": "integer"})),
    "get_collection": ("Describe a collection (info=stat: segment statistics)",
                       [("info", "stat: the collection's statistics")], None, DESCRIPTION),
    "drop_collection": ("Drop a collection", [], None, None),
    "create_index": ("Build an index (blocks until built)", [],
                     _obj(["index_type", "params"], index_type={"type": "string", "enum": [
                         "FLAT", "IVFFLAT", "IVFSQ8", "RNSG", "IVFSQ8H", "IVFPQ", "HNSW", "ANNOY"]},
                          params={"type": "object"}), STATUS),
    "get_index": ("Describe the index", [], None, _obj([], index_type={"type": "string"}, params={"type": "object"})),
    "drop_index": ("Drop the index (back to FLAT)", [], None, None),
    "create_partition": ("Create a partition", [], _obj(["partition_tag"], partition_tag={"type": "string"}), STATUS),
    "list_partitions": ("List partitions (_default first)", [*PAGE, *ALL], None,
                        _obj([], partitions={"type": "array", "items": _obj([], partition_tag={"type": "string"})},
                             count={"type": "integer"})),
    "drop_partition": ("Drop a partition", [], _obj(["partition_tag"], partition_tag={"type": "string"}), None),
    "list_segments": ("List segments", [*PAGE, *ALL, ("partition_tag", "only this partition's segments")], None,
                      {"type": "object"}),
    "segment_data": ("Ids (info=ids) or vectors (info=vectors) of a segment", PAGE, None, {"type": "object"}),
    "get_vectors": ("Vectors by id ([] for ids not found)",
                    [("ids", "comma-separated ids (at most 1000)"), ("partition_tag", "look in this partition only")],
                    None, _obj([], code={"type": "integer"}, message={"type": "string"}, vectors={
                        "type": "array", "items": _obj([], id=ID, vector=VECTOR)})),
    "insert": ("Insert vectors (durable when answered)", [],
               _obj(["vectors"], vectors={"type": "array", "items": VECTOR},
                    ids={"type": "array", "items": ID}, partition_tag={"type": "string"}),
               _obj([], ids={"type": "array", "items": ID})),
    "search_or_delete": ("Search ({\"search\": ...}) or delete by ids ({\"delete\": ...})", [],
                         {"oneOf": [_obj(["search"], search=SEARCH),
                                    _obj(["delete"], delete=_obj(["ids"], ids={"type": "array", "items": ID},
                                                                 partition_tag={"type": "string"}))]},
                         _obj([], num={"type": "integer"},
                              result={"type": "array", "items": {"type": "array", "items": HIT}})),
    "system_info": ("Server command: version, status, mode, config (every setting), info, ...", [], None,
                    _obj([], code={"type": "integer"}, message={"type": "string"}, reply={"type": "string"})),
    "system_op": ("PUT /system/task: load, flush, compact or release; PUT /system/config: set settings", [],
                  {"type": "object"}, {"type": "object"}),
    "openapi": ("This document", [], None, {"type": "object"}),
    "docs": ("This document as a page", [], None, {"type": "string"}),
    **HYBRID_SPECS,
}


def _operation(route: Route) -> dict[str, Any]:
    summary, query, body, success = SPECS[route.name]
    params = [{"name": p[1:-1], "in": "path", "required": True, "schema": {"type": "string"}}
              for p in route.parts if p.startswith("{")]
    params += [{"name": n, "in": "query", "required": n == "ids", "description": d, "schema": {"type": "string"}}
               for n, d in query]
    ok: dict[str, Any] = {"description": "success"}
    if success is not None and route.success != 204:
        ok["content"] = {"application/json": {"schema": success}}
    responses: dict[str, Any] = {str(route.success): ok,
                                 "400": {"description": "refused: Milvus code and reason",
                                         "content": {"application/json": {"schema": STATUS}}}}
    if route.not_found:
        responses["404"] = {"description": "no such collection (code 4)",
                            "content": {"application/json": {"schema": STATUS}}}
    op: dict[str, Any] = {"operationId": route.name, "summary": summary, "parameters": params,
                          "responses": responses}
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return op


@functools.cache
def document() -> bytes:
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(route.pattern, {})[route.method.lower()] = _operation(route)
    return dumps({
        "openapi": "3.1.0",
        "info": {"title": "Milvus 1.1 RESTful API (Mishards)", "version": "1.1.1",
                 "description": "Milvus 1.1's web server API. Ids and distances are JSON strings; errors are "
                                "{\"message\", \"code\"} with Milvus status codes (31..37 for REST-only ones). "
                                "Beyond 1.1: /hybrid/collections (scalar fields, filtered search with the DSL). "
                                "With token authentication, send 'Authorization: Bearer <token>'; a call the "
                                "caller may not make answers 403 with code 3 (PERMISSION_DENIED)."},
        "paths": paths,
        # optional: a deployment with --allow-anonymous readwrite (the default) takes calls without a token too
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                                      "description": "a token of `mishards user add`"}}},
        "security": [{}, {"bearer": []}],
    })


def document_endpoint(backend: object, req: Request) -> Reply:
    return Reply(200, document())


@functools.cache
def page() -> bytes:
    rows = []
    for route in ROUTES:
        summary, query, body, _ = SPECS[route.name]
        params = ", ".join(html.escape(n) for n, _ in query)
        rows.append(f"<tr><td><code>{route.method}</code></td><td><code>{html.escape(route.pattern)}</code></td>"
                    f"<td>{html.escape(summary)}</td><td>{params}</td><td>{route.success}</td>"
                    f"<td>{'JSON' if body is not None else ''}</td></tr>")
    text = ("<!doctype html><html><head><meta charset='utf-8'><title>Milvus 1.1 RESTful API</title>"
            "<style>body{font-family:sans-serif;margin:2em}td,th{border-bottom:1px solid #ddd;padding:4px 8px;"
            "text-align:left}</style></head><body><h1>Milvus 1.1 RESTful API</h1>"
            "<p>Machine-readable: <a href='/openapi.json'>/openapi.json</a> (OpenAPI 3.1). Ids and distances are "
            "strings; every error is <code>{\"message\", \"code\"}</code>.</p><table><tr><th>method</th>"
            "<th>path</th><th>what</th><th>query</th><th>success</th><th>body</th></tr>"
            + "".join(rows) + "</table></body></html>")
    return text.encode()


def docs_endpoint(backend: object, req: Request) -> Reply:
    return Reply(200, page(), "text/html; charset=utf-8")
