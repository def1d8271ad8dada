"""``GeneralQuery`` (and ``HSearchParam``) into the canonical tree, and the tree back into a ``GeneralQuery``.

A ``BooleanQuery``'s ``occur`` is its operator over its children: MUST and INVALID = all of them, SHOULD = at
least one, MUST_NOT = none. Exactly one ``VectorQuery`` anywhere in the tree, with only MUST / INVALID nodes
above it; a root that is the ``VectorQuery`` itself is a search without filter.

``HSearchParam.extra_params`` may carry the JSON DSL under key ``dsl`` (see :mod:`coordinator.hybrid.dsl`). Then
the DSL is the query, and ``general_query`` may only be absent or a bare ``VectorQuery`` carrying the query
vectors in binary form (for a DSL vector clause without ``query``); anything else is refused as ambiguous.
"""

from __future__ import annotations

import json
from typing import Any, cast

import numpy as np

from coordinator import validation
from coordinator.errors import IllegalArgument
from coordinator.hybrid import dsl
from coordinator.hybrid.clauses import (
    check_depth,
    check_vector_field,
    misplaced_vector,
    scalar_field,
    vector_clause,
    vector_count,
)
from coordinator.hybrid.jsonvalue import loads, params_object
from coordinator.hybrid.schema import HybridSchema
from coordinator.hybrid.tree import EVERYTHING, Bool, HybridQuery, Node, Range, Term, bool_of
from coordinator.hybrid.tree import Comparison as Cmp
from coordinator.hybrid.types import CompareOp, Occur, wire_dtype
from coordinator.hybrid.values import (
    check_operator,
    operand_from_string,
    operand_to_string,
    term_values_from_bytes,
)
from coordinator.hybrid.vectors import from_records, to_records
from milvus_wire import milvus_pb2

DSL_KEY = "dsl"
QUERY_KINDS = "boolean_query, term_query, range_query, vector_query"


def _pairs(extra_params: Any) -> list[tuple[str, str]]:
    return [(kv.key, kv.value) for kv in extra_params]


def _occur(raw: int) -> Occur:
    try:
        return Occur(raw)
    except ValueError:
        raise IllegalArgument(f"Invalid occur {raw} of a boolean query: INVALID (0), MUST (1), SHOULD (2) or "
                              "MUST_NOT (3).") from None


def _range(schema: HybridSchema, rq: Any) -> Range:
    f = scalar_field(schema, rq.field_name, "range")
    if not rq.operand:
        raise IllegalArgument(f"Range query on field {f.name} has no comparison.")
    out: list[Cmp] = []
    for expr in rq.operand:
        try:
            op = CompareOp(expr.operator)
        except ValueError:
            raise IllegalArgument(f"Invalid compare operator {expr.operator} in a range query on field {f.name}: "
                                  "LT (0), LTE (1), EQ (2), GT (3), GTE (4) or NE (5).") from None
        check_operator(f, op)
        out.append(Cmp(op, operand_from_string(f, expr.operand)))
    return Range(f.name, tuple(out))


def _node(gq: Any, schema: HybridSchema, found: list[Any], blocker: str | None, depth: int) -> Node | None:
    """The tree of ``gq``; None for the vector query (collected in ``found``). ``blocker`` names the nearest
    SHOULD / MUST_NOT ancestor (a vector query may not sit under one)."""
    kind = gq.WhichOneof("query")
    if kind == "boolean_query":
        check_depth(depth + 1)
        occur = _occur(gq.boolean_query.occur)
        inner = blocker or (occur.name if occur in (Occur.SHOULD, Occur.MUST_NOT) else None)
        kids = [_node(c, schema, found, inner, depth + 1) for c in gq.boolean_query.general_query]
        children = [k for k in kids if k is not None]
        if occur is Occur.SHOULD:
            return bool_of(should=children)
        if occur is Occur.MUST_NOT:
            return bool_of(must_not=children)
        return bool_of(must=children)
    if kind == "vector_query":
        if blocker:
            raise misplaced_vector(blocker)
        found.append(gq.vector_query)
        return None
    if kind == "term_query":
        tq = gq.term_query
        f = scalar_field(schema, tq.field_name, "term")
        return Term(f.name, term_values_from_bytes(f, tq.values, tq.value_num))
    if kind == "range_query":
        return _range(schema, gq.range_query)
    raise IllegalArgument(f"A GeneralQuery of the query is empty: it must set one of {QUERY_KINDS}.")


def query_from_general(gq: Any, schema: HybridSchema) -> HybridQuery:
    """The canonical query of a ``GeneralQuery`` against ``schema`` (errors: ILLEGAL_ARGUMENT for the tree,
    ILLEGAL_TOPK, ILLEGAL_DIMENSION / ILLEGAL_ROWRECORD for the vectors)."""
    found: list[Any] = []
    root = _node(gq, schema, found, None, 0)
    vector_count(len(found))
    vq = found[0]
    check_vector_field(schema, vq.field_name)
    validation.topk(vq.topk)
    params = params_object(_pairs(vq.extra_params), "search params")
    vectors = from_records(vq.records, schema)
    clause = vector_clause(schema, vq.field_name, vq.topk, vectors, params)
    if root is None:
        return HybridQuery(EVERYTHING, clause)
    return HybridQuery(root if isinstance(root, Bool) else bool_of(must=(root,)), clause)


def _carried(gq: Any) -> dsl.Carried:
    """The vectors a ``general_query`` beside a ``dsl`` may carry: a bare ``VectorQuery`` and nothing else."""
    kind = gq.WhichOneof("query")
    if kind != "vector_query":
        raise IllegalArgument("HSearchParam has both a general_query and a dsl: send one of them (beside a dsl, "
                              "general_query may only be a VectorQuery carrying the query vectors).")
    vq = gq.vector_query
    if vq.topk or len(vq.extra_params):
        raise IllegalArgument("Beside a dsl, the VectorQuery carries only the query vectors: topk and params "
                              "belong to the dsl's vector clause.")
    return dsl.Carried(vq.field_name, vq.records)


def query_from_search_param(param: Any, schema: HybridSchema) -> HybridQuery:
    """The query of an ``HSearchParam``: its ``dsl`` entry when there is one, else its ``general_query``."""
    text = next((v for k, v in _pairs(param.extra_params) if k == DSL_KEY), None)
    has_tree = param.HasField("general_query") and param.general_query.WhichOneof("query") is not None
    if text is None:
        if not has_tree:
            raise IllegalArgument("HSearchParam has no query: set general_query, or a dsl in extra_params.")
        return query_from_general(param.general_query, schema)
    carried = _carried(param.general_query) if has_tree else None
    return dsl.query_from_dsl(loads(text, "dsl"), schema, carried)


def _term_message(schema: HybridSchema, term: Term) -> Any:
    f = schema.field(term.field)
    assert f is not None
    packed = np.asarray(term.values, dtype=wire_dtype(f.type)).tobytes()
    return milvus_pb2.GeneralQuery(term_query=milvus_pb2.TermQuery(
        field_name=term.field, values=packed, value_num=len(term.values)))


def _node_message(schema: HybridSchema, node: Node, occur: Occur = Occur.MUST, extra: tuple[Any, ...] = ()) -> Any:
    if isinstance(node, Term):
        return _term_message(schema, node)
    if isinstance(node, Range):
        exprs = [milvus_pb2.CompareExpr(operator=cast(Any, int(c.op)), operand=operand_to_string(c.value))
                 for c in node.comparisons]
        return milvus_pb2.GeneralQuery(range_query=milvus_pb2.RangeQuery(field_name=node.field, operand=exprs))
    children = [_group(schema, Occur.SHOULD, node.should)] if node.should else []
    children.extend(_node_message(schema, c) for c in node.must)
    if node.must_not:
        children.append(_group(schema, Occur.MUST_NOT, node.must_not))
    children.extend(extra)
    return _boolean(occur, children)


def _boolean(occur: Occur, children: list[Any]) -> Any:
    query = milvus_pb2.BooleanQuery(occur=cast(Any, int(occur)), general_query=children)
    return milvus_pb2.GeneralQuery(boolean_query=query)


def _group(schema: HybridSchema, occur: Occur, nodes: tuple[Node, ...]) -> Any:
    return _boolean(occur, [_node_message(schema, n) for n in nodes])


def vector_message(query: HybridQuery, binary: bool) -> Any:
    v = query.vector
    params = dict(v.params)
    if v.exact:
        params["exact"] = True
    pairs = [milvus_pb2.KeyValuePair(key="params", value=json.dumps(params, separators=(",", ":")))]
    return milvus_pb2.GeneralQuery(vector_query=milvus_pb2.VectorQuery(
        field_name=v.field, records=to_records(v.vectors, binary), topk=v.topk, extra_params=pairs))


def query_to_general(query: HybridQuery, schema: HybridSchema) -> Any:
    """A ``GeneralQuery`` that :func:`query_from_general` reads back as ``query``: a MUST root holding a SHOULD
    node, the filter's MUST children, a MUST_NOT node and the vector query."""
    return _node_message(schema, query.filter, Occur.MUST, (vector_message(query, schema.is_binary),))
