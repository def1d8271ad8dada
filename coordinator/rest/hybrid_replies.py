"""Replies of the hybrid RPCs as the JSON of the hybrid routes (pure).

A field is written as a create body declares it (``name``, ``type``, the vector field's ``dimension``, ``params``
as an object), so a described collection can be created again from its own description. An entity is an object
``{field: value}`` like an insert row: integers, booleans, FLOAT values as their float32 (shortest form), vectors
as numbers (float) or byte values (binary). Ids and distances are strings, as in Milvus 1.1's REST replies.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from coordinator.hybrid.attrs import decode_entities
from coordinator.hybrid.schema import FieldSchema, HybridSchema
from coordinator.hybrid.types import DataType
from coordinator.rest.replies import dumps, hit_rows


def _params(text: str) -> Any:
    try:
        return json.loads(text) if text.strip() else {}
    except ValueError:
        return text  # kept as given over gRPC: shown as the text it is


def field_json(f: FieldSchema) -> dict[str, Any]:
    out: dict[str, Any] = {"name": f.name, "type": f.type.name}
    if f.is_vector:
        out["dimension"] = f.dimension
    others: dict[str, str] = {}
    for key, value in f.params:
        if key == "params" and "params" not in out:
            out["params"] = _params(value)
        else:
            others[key] = value
    if others:  # entries a gRPC client gave besides "params"
        out["extra_params"] = others
    return out


def schema_json(schema: HybridSchema) -> dict[str, Any]:
    """A collection's description: its fields as declared, and what they decide (dimension, metric, segment size)."""
    return {"collection_name": schema.collection_name, "dimension": schema.dimension,
            "fields": [field_json(f) for f in schema.fields], "index_file_size": schema.index_file_size,
            "metric_type": schema.metric.name}


def _value(f: FieldSchema, column: np.ndarray) -> Any:
    value = column[0]
    return bool(value) if f.type is DataType.BOOL else value  # numpy scalars: orjson writes float32 shortest


def entity_json(schema: HybridSchema, entity: Any, fields: Sequence[str] | None = None) -> dict[str, Any] | None:
    """``GetEntityByID``'s ``HEntity`` as ``{field: value}`` (``fields`` only, in that order, when given); None when
    it holds no row (the id was not found)."""
    if entity.row_num == 0 and not entity.result_values and not entity.attr_records:
        return None
    decoded = decode_entities(schema, entity)
    if decoded.rows == 0:
        return None
    values: dict[str, Any] = {f.name: _value(f, decoded.columns[f.name]) for f in schema.scalars}
    values[schema.vector.name] = decoded.vectors[0]
    if fields is None:
        return {f.name: values[f.name] for f in schema.fields}
    return {name: values[name] for name in fields}


def hits_json(row_num: int, ids: np.ndarray, distances: np.ndarray,
              entities: Mapping[int, dict[str, Any] | None]) -> bytes:
    """A search result as ``{"num", "result": [[{"distance", "entity", "id"}, ...], ...]}``: Milvus 1.1's search
    reply with each hit's requested fields (``entity`` null for a row no longer found)."""
    if row_num <= 0:
        return b'{"num":0,"result":[]}'
    result = [[{"distance": f"{d:f}", "entity": entities.get(i), "id": str(i)} for i, d in hits]
              for hits in hit_rows(row_num, ids, distances)]
    return dumps({"num": row_num, "result": result})
