"""The OpenAPI description of the hybrid routes (``/hybrid/collections...``), merged into ``/openapi.json``."""

from __future__ import annotations

from typing import Any

STATUS = {"type": "object", "properties": {"message": {"type": "string"}, "code": {"type": "integer"}}}
ID = {"type": ["string", "integer"], "description": "a 64-bit id (replies write it as a decimal string)"}
TYPES = ["INT8", "INT16", "INT32", "INT64", "FLOAT", "DOUBLE", "BOOL", "VECTOR"]
VALUE = {"description": "a number (integer fields: an integer; BOOL: true/false or 0/1), or for the vector field "
                        "an array of numbers (binary collections: dimension / 8 byte values 0..255)"}
ENTITY = {"type": "object", "additionalProperties": VALUE, "description": "every field of the collection: value"}
PAGE = [("offset", "first item (default 0)"), ("page_size", "items per page (default 10; 0: only count)"),
        ("all_required", "true: every item, paging ignored")]


def _obj(required: list[str], **props: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": props}


FIELD = _obj(["name", "type"], name={"type": "string"}, type={"type": "string", "enum": TYPES},
             dimension={"type": "integer", "description": "the vector field's (and only its)"},
             params={"type": "object", "description": "the vector field's: metric_type (default L2) and "
                                                      "index_file_size (MB, default 1024)"})
DESCRIPTION = _obj([], collection_name={"type": "string"}, fields={"type": "array", "items": FIELD},
                   dimension={"type": "integer"}, metric_type={"type": "string"},
                   index_file_size={"type": "integer"}, count={"type": "integer"})
DSL = {"type": "object", "description": "Milvus 0.11's query DSL: {\"bool\": {\"must\": [...], \"should\": [...], "
                                        "\"must_not\": [...]}} with term, range (GT GTE LT LTE EQ NE) and exactly "
                                        "one vector clause {FIELD: {topk, query, metric_type, params}} under must"}
HIT = _obj([], distance={"type": "string", "description": "printf %f"}, id={"type": "string"},
           entity={"type": ["object", "null"], "description": "the requested fields (only when asked for)"})

# route name: (summary, query parameters, request body schema, success body schema)
HYBRID_SPECS: dict[str, tuple[str, list[tuple[str, str]], Any, Any]] = {
    "hybrid_create": ("Create a hybrid collection: scalar fields and one vector field", [],
                      _obj(["collection_name", "fields"], collection_name={"type": "string"},
                           fields={"type": "array", "items": FIELD}), STATUS),
    "hybrid_list": ("List hybrid collections, described", PAGE, None,
                    _obj([], collections={"type": "array", "items": DESCRIPTION}, count={"type": "integer"})),
    "hybrid_describe": ("Describe a hybrid collection and count its entities (info=stat: segment statistics)",
                        [("info", "stat: the collection's statistics")], None, DESCRIPTION),
    "hybrid_drop": ("Drop a hybrid collection", [], None, None),
    "hybrid_insert": ("Insert entities, as rows or as columns (durable when answered)", [],
                      {"oneOf": [_obj(["entities"], entities={"type": "array", "items": ENTITY},
                                      ids={"type": "array", "items": ID}, partition_tag={"type": "string"}),
                                 _obj(["columns"], columns={"type": "object", "additionalProperties": {
                                     "type": "array", "items": VALUE}}, ids={"type": "array", "items": ID},
                                      partition_tag={"type": "string"})]},
                      _obj([], ids={"type": "array", "items": {"type": "string"}})),
    "hybrid_get": ("Entities by id (flushed rows; entity null for an id not found)",
                   [("ids", "comma-separated ids (at most 1000)")], None,
                   _obj([], entities={"type": "array", "items": _obj([], id={"type": "string"}, entity={
                       "type": ["object", "null"]})})),
    "hybrid_delete": ("Delete entities by id (every partition)", [],
                      _obj(["ids"], ids={"type": "array", "items": ID}), STATUS),
    "hybrid_search": ("Search filtered by the DSL: per query the best min(topk, matching rows)", [],
                      _obj(["dsl"], dsl=DSL, partition_tags={"type": "array", "items": {"type": "string"}},
                           fields={"type": "array", "items": {"type": "string"},
                                   "description": "fields each hit carries (at most 1000 distinct rows)"}),
                      _obj([], num={"type": "integer"}, result={"type": "array", "items": {
                          "type": "array", "items": HIT}})),
}
