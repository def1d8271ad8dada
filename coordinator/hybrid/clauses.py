"""What the protobuf and the DSL builders share: field lookups, the vector-clause checks and the limits."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np

from coordinator import validation
from coordinator.errors import IllegalArgument
from coordinator.hybrid.schema import FieldSchema, HybridSchema
from coordinator.hybrid.tree import VectorClause

MAX_DEPTH = 32  # nesting of boolean nodes: deeper trees are refused before any recursion can fail
EXACT_KEY = "exact"


def scalar_field(schema: HybridSchema, name: str, clause: str) -> FieldSchema:
    """The scalar field a term or range clause names."""
    if not name:
        raise IllegalArgument(f"A {clause} query needs a field name.")
    f = schema.field(name)
    if f is None:
        raise IllegalArgument(f"Field {name} does not exist in collection {schema.collection_name}.")
    if f.is_vector:
        raise IllegalArgument(f"Field {name} is the vector field: a {clause} query needs a scalar field.")
    return f


def check_vector_field(schema: HybridSchema, name: str) -> None:
    if name != schema.vector.name:
        shown = name or "(empty)"
        raise IllegalArgument(f"The vector query names field {shown}; the vector field of collection "
                              f"{schema.collection_name} is {schema.vector.name}.")


def check_depth(depth: int) -> None:
    if depth > MAX_DEPTH:
        raise IllegalArgument(f"The query is nested deeper than {MAX_DEPTH} levels.")


def vector_clause(schema: HybridSchema, name: str, topk: int, vectors: np.ndarray,
                  params: Mapping[str, Any]) -> VectorClause:
    """The vector clause once its vectors are decoded: topk checked as Search does (ILLEGAL_TOPK, the result-size
    rule), ``exact`` taken out of the params (a JSON boolean)."""
    check_vector_field(schema, name)
    validation.topk(topk)
    validation.result_size(int(vectors.shape[0]), topk)
    rest = dict(params)
    exact = rest.pop(EXACT_KEY, False)
    if not isinstance(exact, bool):
        raise IllegalArgument(f'Invalid search params: "{EXACT_KEY}" must be true or false.')
    return VectorClause(name, topk, vectors, MappingProxyType(rest), exact)


def vector_count(found: int) -> None:
    if found == 0:
        raise IllegalArgument("The query has no vector query: a hybrid search needs exactly one.")
    if found > 1:
        raise IllegalArgument(f"The query has {found} vector queries: a hybrid search needs exactly one.")


def misplaced_vector(occur: str) -> IllegalArgument:
    return IllegalArgument(f"The vector query is under a {occur} clause: it may sit only under MUST clauses "
                           "(a filter never decides which vectors are searched for).")
