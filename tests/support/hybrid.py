"""Hybrid-search test helpers: a schema with every scalar type, and reference evaluators written row by row
from the documented semantics (independent of the vectorised code they check)."""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from coordinator.hybrid.schema import HybridSchema, schema_from_mapping
from milvus_wire import milvus_pb2

DIM = 4
# field name -> DataType number, in declared order (the vector field "v" last)
SCALARS: dict[str, int] = {"i8": 1, "i16": 2, "i32": 3, "i64": 4, "b": 30, "f": 40, "d": 41}
INTEGER = {"i8", "i16", "i32", "i64", "b"}


def mapping(name: str = "coll", scalars: Mapping[str, int] | None = None, dim: int = DIM,
            vector_params: str = '{"metric_type": 1, "index_file_size": 16}') -> Any:
    fields = [milvus_pb2.FieldParam(name=n, type=milvus_pb2.FieldType(data_type=t))  # type: ignore[arg-type]
              for n, t in (SCALARS if scalars is None else scalars).items()]
    fields.append(milvus_pb2.FieldParam(
        name="v", type=milvus_pb2.FieldType(vector_param=milvus_pb2.VectorFieldParam(dimension=dim)),
        extra_params=[milvus_pb2.KeyValuePair(key="params", value=vector_params)]))
    return milvus_pb2.Mapping(collection_name=name, fields=fields)


def schema(**kwargs: Any) -> HybridSchema:
    return schema_from_mapping(mapping(**kwargs))


def stored(name: str, value: float) -> float:
    """A literal as the field holds it: FLOAT rounds to float32 (+-inf beyond its range)."""
    if name == "f":
        with np.errstate(over="ignore"):
            return float(np.float32(value))
    return value


def compare(op: int, left: float, right: float) -> bool:
    return [left < right, left <= right, left == right, left > right, left >= right, left != right][op]


def _term_values(tq: Any) -> list[float]:
    n = len(tq.values) // 8
    fmt = f"<{n}q" if tq.field_name in INTEGER else f"<{n}d"
    return list(struct.unpack(fmt, tq.values))


def proto_row(gq: Any, row: Mapping[str, float]) -> bool:
    """Does ``row`` pass the GeneralQuery ``gq``? MUST / INVALID: all children; SHOULD: at least one; MUST_NOT:
    none; the vector query is true."""
    kind = gq.WhichOneof("query")
    if kind == "vector_query":
        return True
    if kind == "term_query":
        name = gq.term_query.field_name
        return any(row[name] == stored(name, v) for v in _term_values(gq.term_query))
    if kind == "range_query":
        name = gq.range_query.field_name
        return all(compare(e.operator, row[name], stored(name, float(e.operand) if name not in INTEGER
                                                                else int(e.operand)))
                   for e in gq.range_query.operand)
    occur = gq.boolean_query.occur
    results = [proto_row(c, row) for c in gq.boolean_query.general_query]
    if occur == milvus_pb2.SHOULD:
        return any(results)
    if occur == milvus_pb2.MUST_NOT:
        return not any(results)
    return all(results)


OPS = {"LT": 0, "LTE": 1, "EQ": 2, "GT": 3, "GTE": 4, "NE": 5}


def dsl_row(item: Mapping[str, Any], row: Mapping[str, float]) -> bool:
    """Does ``row`` pass a DSL body or clause (the vector clause is true)?"""
    if "term" in item:
        (name, spec), = item["term"].items()
        values = spec["values"] if isinstance(spec, dict) else spec
        return any(row[name] == stored(name, float(v) if name not in INTEGER else int(v)) for v in values)
    if "range" in item:
        (name, spec), = item["range"].items()
        return all(compare(OPS[op.upper()], row[name], stored(name, v)) for op, v in spec.items())
    if "vector" in item:
        return True
    body = item.get("bool", item)
    ok = all(dsl_row(c, row) for c in body.get("must", []))
    if "should" in body:
        ok = ok and any(dsl_row(c, row) for c in body["should"])
    return ok and not any(dsl_row(c, row) for c in body.get("must_not", []))


def rows_of(columns: Mapping[str, np.ndarray], n: int) -> list[dict[str, float]]:
    """Row dicts of Python values as the columns hold them."""
    return [{name: col[i].item() for name, col in columns.items()} for i in range(n)]


def reference_mask(passes: Sequence[bool]) -> np.ndarray:
    return np.array(list(passes), dtype=bool)


def finite_f32(value: float) -> bool:
    with np.errstate(over="ignore"):
        return math.isfinite(float(np.float32(value)))
