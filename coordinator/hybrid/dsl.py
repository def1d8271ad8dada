"""The JSON DSL of hybrid searches (Milvus 0.11's dialect) into the canonical tree.

Grammar::

    query   := {"bool": body}
    body    := {occur: [item, ...], ...}          occur: "must" | "should" | "must_not" (at least one)
    item    := body | {"bool": body}
             | {"term":   {FIELD: [v, ...]}}  or  {"term": {FIELD: {"values": [v, ...]}}}
             | {"range":  {FIELD: {OP: v, ...}}}      OP: GT GTE LT LTE EQ NE (or lower case), ANDed
             | {"vector": {FIELD: {"topk": K, "query": [[...], ...], "metric_type": M, "params": {...}}}}

A body means AND(must) AND at-least-one(should) AND none(must_not), like a ``BooleanQuery`` tree (an empty
``should`` list passes no row). Exactly one vector clause, only under ``must`` lists. Its ``params`` are the
search params (``"exact": true`` forces an exhaustive search of the passing rows); ``metric_type``, if given,
must name the collection's metric; ``query`` may be left out when the request carries the vectors in a
``VectorQuery`` (see :mod:`coordinator.hybrid.from_wire`).

Unlike 0.11, a layer may mix leaves and nested bodies, and the root's nested bodies may hold ``should`` /
``must_not`` directly (0.11 refused both because of how it built its binary tree; here each has one meaning).
Every other 0.11 check holds: the single ``bool`` key, lists for occurs, known keys only, one field per clause,
existing scalar fields, numbers as operands, one vector clause. DSL text is strict JSON (no NaN / Infinity, no
key repeated in one object: see :func:`coordinator.hybrid.jsonvalue.loads`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from coordinator import validation
from coordinator.errors import IllegalArgument, IllegalTopk
from coordinator.hybrid.clauses import (
    check_depth,
    check_vector_field,
    misplaced_vector,
    scalar_field,
    vector_clause,
    vector_count,
)
from coordinator.hybrid.jsonvalue import is_integer
from coordinator.hybrid.schema import HybridSchema
from coordinator.hybrid.tree import Bool, Comparison, HybridQuery, Node, Range, Term, VectorClause, bool_of
from coordinator.hybrid.types import CompareOp
from coordinator.hybrid.values import check_operator, operand_from_json, term_value_from_json
from coordinator.hybrid.vectors import from_json, from_records
from coordinator.model import MAX_TOPK, MetricType

OCCURS = ("must", "should", "must_not")
RANGE_OPS = {name: op for op in CompareOp for name in (op.name, op.name.lower())}
VECTOR_KEYS = frozenset({"topk", "query", "metric_type", "params"})


@dataclass(frozen=True, slots=True)
class Carried:
    """Query vectors sent beside the DSL in a ``VectorQuery`` (``field`` may be empty)."""

    field: str
    records: Sequence[Any]


def _single_field(value: Any, clause: str) -> tuple[str, Any]:
    if not isinstance(value, dict) or len(value) != 1:
        count = len(value) if isinstance(value, dict) else 0
        raise IllegalArgument(f"A {clause} clause names exactly one field: {{\"{clause}\": {{FIELD: ...}}}}; "
                              f"got {count}.")
    return next(iter(value.items()))


def _term(value: Any, schema: HybridSchema) -> Term:
    name, spec = _single_field(value, "term")
    f = scalar_field(schema, name, "term")
    if isinstance(spec, dict):
        if set(spec) != {"values"}:
            raise IllegalArgument(f'Term clause on field {name}: give the values as a list or as {{"values": [...]}}.')
        spec = spec["values"]
    if not isinstance(spec, list):
        raise IllegalArgument(f"Term clause on field {name}: the values must be a list.")
    return Term(f.name, tuple(term_value_from_json(f, v) for v in spec))


def _range(value: Any, schema: HybridSchema) -> Range:
    name, spec = _single_field(value, "range")
    f = scalar_field(schema, name, "range")
    if not isinstance(spec, dict) or not spec:
        raise IllegalArgument(f'Range clause on field {name}: give the comparisons as {{"GT": v, "LT": w, ...}}.')
    out: list[Comparison] = []
    for key, operand in spec.items():
        op = RANGE_OPS.get(key)
        if op is None:
            raise IllegalArgument(f'Unknown range operator "{key}" on field {name}: GT, GTE, LT, LTE, EQ or NE.')
        check_operator(f, op)
        out.append(Comparison(op, operand_from_json(f, operand)))
    return Range(f.name, tuple(out))


def _item(item: Any, schema: HybridSchema, found: list[tuple[str, Any]], blocker: str | None,
          depth: int) -> Node | None:
    if not isinstance(item, dict) or not item:
        raise IllegalArgument("Every clause of a bool list must be a non-empty object.")
    if set(item) <= set(OCCURS):
        return _body(item, schema, found, blocker, depth + 1)
    if len(item) != 1:
        raise IllegalArgument(f"A clause holds one of term, range, vector or a nested bool; got keys "
                              f"{', '.join(sorted(item))}.")
    key, value = next(iter(item.items()))
    if key == "bool":
        return _body(value, schema, found, blocker, depth + 1)
    if key == "term":
        return _term(value, schema)
    if key == "range":
        return _range(value, schema)
    if key == "vector":
        if blocker:
            raise misplaced_vector(blocker.upper())
        found.append(_single_field(value, "vector"))
        return None
    raise IllegalArgument(f'Unknown clause "{key}": term, range, vector or a nested bool (must, should, must_not).')


def _body(body: Any, schema: HybridSchema, found: list[tuple[str, Any]], blocker: str | None, depth: int) -> Bool:
    check_depth(depth)
    if not isinstance(body, dict) or not body:
        raise IllegalArgument("A bool clause must be an object with must, should or must_not lists.")
    unknown = sorted(set(body) - set(OCCURS))
    if unknown:
        raise IllegalArgument(f'Unknown key "{unknown[0]}" in a bool clause: must, should or must_not.')
    lists: dict[str, list[Node]] = {}
    for occur in OCCURS:
        if occur not in body:
            continue
        items = body[occur]
        if not isinstance(items, list):
            raise IllegalArgument(f'The value of "{occur}" must be a list of clauses.')
        inner = blocker or (occur if occur != "must" else None)
        nodes = [_item(i, schema, found, inner, depth) for i in items]
        lists[occur] = [n for n in nodes if n is not None]
    return bool_of(lists.get("must", ()), lists.get("should"), lists.get("must_not", ()))


def _metric(schema: HybridSchema, raw: Any) -> None:
    metric = schema.metric
    if raw == metric.name or (is_integer(raw) and raw == int(metric)):
        return
    known = raw in MetricType.__members__ or (is_integer(raw) and raw in {int(m) for m in MetricType})
    what = "names another metric than" if known else "is not a metric of"
    raise IllegalArgument(f"The vector clause's metric_type {raw!r} {what} collection {schema.collection_name} "
                          f"({metric.name}).")


def _vector(schema: HybridSchema, name: str, spec: Any, carried: Carried | None) -> VectorClause:
    check_vector_field(schema, name)
    if not isinstance(spec, dict):
        raise IllegalArgument(f"The vector clause on field {name} must be an object with topk and query.")
    unknown = sorted(set(spec) - VECTOR_KEYS)
    if unknown:
        raise IllegalArgument(f'Unknown key "{unknown[0]}" in the vector clause: topk, query, metric_type, params.')
    if "topk" not in spec:
        raise IllegalArgument(f"The vector clause on field {name} needs a topk.")
    topk = spec["topk"]
    if not is_integer(topk):
        raise IllegalTopk(f"Invalid topk: {topk!r}. The topk must be an integer within the range of 1 ~ {MAX_TOPK}.")
    validation.topk(topk)
    if "metric_type" in spec:
        _metric(schema, spec["metric_type"])
    params = spec.get("params") or {}
    if not isinstance(params, dict):
        raise IllegalArgument("The params of the vector clause must be a JSON object.")
    vectors: np.ndarray
    if "query" in spec:
        if carried is not None:
            raise IllegalArgument("The query vectors are given twice: in the dsl and in the VectorQuery.")
        vectors = from_json(spec["query"], schema, "query vectors")
    elif carried is None:
        raise IllegalArgument(f"The vector clause on field {name} has no query vectors.")
    else:
        if carried.field:
            check_vector_field(schema, carried.field)
        vectors = from_records(carried.records, schema)
    return vector_clause(schema, name, topk, vectors, params)


def query_from_dsl(doc: Any, schema: HybridSchema, carried: Carried | None = None) -> HybridQuery:
    """The canonical query of a parsed DSL document against ``schema``; ``carried`` supplies the vectors of a
    vector clause without ``query``."""
    if not isinstance(doc, dict) or set(doc) != {"bool"}:
        raise IllegalArgument('The DSL must be an object with the single key "bool".')
    found: list[tuple[str, Any]] = []
    root = _body(doc["bool"], schema, found, None, 1)
    vector_count(len(found))
    name, spec = found[0]
    clause = _vector(schema, name, spec, carried)
    return HybridQuery(root, clause)
