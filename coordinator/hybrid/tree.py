"""The canonical query tree of a hybrid search, built alike from ``GeneralQuery`` and from the JSON DSL.

A search is a :class:`HybridQuery`: a scalar filter (a :class:`Bool`) and the one :class:`VectorClause`. The
vector clause counts as TRUE wherever it sat (only under MUST / INVALID nodes), so it is taken out of the tree.

Semantics of ``Bool(must, should, must_not)`` on a row: every ``must`` child true, at least one ``should`` child
true when ``should`` is non-empty, no ``must_not`` child true. ``Bool()`` (:data:`EVERYTHING`) passes every row;
an empty SHOULD group ("at least one of none", like an empty term list) passes none and is written
:data:`NOTHING`. :func:`bool_of` builds every ``Bool`` in normal form, so equivalent groupings (a MUST node
holding a SHOULD node, or one node with both lists) give equal trees:

- ``must`` holds leaves, then ``Bool(should=...)`` groups beyond the first (the first becomes ``should``);
- children of ``should`` / ``must_not`` are leaves or ``Bool``s that are not a plain OR group (those are
  flattened) nor a single ``must`` child (replaced by it);
- :data:`NOTHING` never appears inside another ``Bool`` except as the whole tree; :data:`EVERYTHING` only as the
  whole filter (or inside :data:`NOTHING`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np

from coordinator.hybrid.types import CompareOp

Scalar: TypeAlias = int | float


@dataclass(frozen=True, slots=True)
class Term:
    """The field's value is one of ``values`` (an empty tuple matches no row)."""

    field: str
    values: tuple[Scalar, ...]


@dataclass(frozen=True, slots=True)
class Comparison:
    op: CompareOp
    value: Scalar  # as given (a FLOAT field compares it rounded to float32, like its stored values)


@dataclass(frozen=True, slots=True)
class Range:
    """Every comparison holds (``field <op> value``, ANDed)."""

    field: str
    comparisons: tuple[Comparison, ...]


@dataclass(frozen=True, slots=True)
class Bool:
    must: tuple[Node, ...] = ()
    should: tuple[Node, ...] = ()
    must_not: tuple[Node, ...] = ()


Node: TypeAlias = Term | Range | Bool

EVERYTHING = Bool()
NOTHING = Bool(must_not=(EVERYTHING,))


@dataclass(frozen=True, slots=True, eq=False)
class VectorClause:
    """The vector part: ``nq`` query vectors (float32 rows, or packed bits as uint8), ``topk``, the search
    params (the JSON object of ``extra_params["params"]`` without ``exact``), and ``exact`` (search the passing
    rows exhaustively whatever the index)."""

    field: str
    topk: int
    vectors: np.ndarray
    params: Mapping[str, Any]
    exact: bool = False

    @property
    def nq(self) -> int:
        return int(self.vectors.shape[0])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VectorClause):
            return NotImplemented
        return (self.field == other.field and self.topk == other.topk and self.exact == other.exact
                and dict(self.params) == dict(other.params) and self.vectors.dtype == other.vectors.dtype
                and np.array_equal(self.vectors, other.vectors))

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class HybridQuery:
    filter: Bool
    vector: VectorClause


def normal(node: Node) -> Node:
    """Any tree in normal form, children first (leaves are already)."""
    if not isinstance(node, Bool):
        return node
    should = [normal(c) for c in node.should] if node.should else None
    return bool_of([normal(c) for c in node.must], should, [normal(c) for c in node.must_not])


def _or_items(nodes: Iterable[Node]) -> list[Node] | None:
    """Normal-form alternatives of an OR over ``nodes``; None when one of them is always true."""
    out: list[Node] = []
    for node in nodes:
        if node == NOTHING:
            continue
        if node == EVERYTHING:
            return None
        if isinstance(node, Bool) and not node.must and not node.must_not:
            out.extend(node.should)  # an OR group inside an OR
        elif isinstance(node, Bool) and len(node.must) == 1 and not node.should and not node.must_not:
            out.append(node.must[0])  # a leaf (normal form holds no one-alternative group)
        else:
            out.append(node)
    return out


def bool_of(must: Iterable[Node] = (), should: Iterable[Node] | None = None,
            must_not: Iterable[Node] = ()) -> Bool:
    """The normal form of AND(must) AND OR(should) AND NOT OR(must_not), from children in normal form (leaves, or
    what ``bool_of`` / :func:`normal` returned: builders work bottom-up, so each node is visited once);
    ``should=None`` means no SHOULD clause and an empty ``should`` an empty one (no row passes). A one-alternative
    SHOULD is a MUST."""
    pending = list(must)
    groups: list[tuple[Node, ...]] = []
    if should is not None:
        alternatives = _or_items(should)
        if alternatives is not None:
            if not alternatives:
                return NOTHING
            if len(alternatives) == 1:
                pending.append(alternatives[0])
            else:
                groups.append(tuple(alternatives))
    leaves: list[Node] = []
    not_out: list[Node] = []
    for child in pending:
        if not isinstance(child, Bool):
            leaves.append(child)
            continue
        if child == NOTHING:
            return NOTHING
        leaves.extend(c for c in child.must if not isinstance(c, Bool))
        if child.should:
            groups.append(child.should)
        groups.extend(c.should for c in child.must if isinstance(c, Bool))
        not_out.extend(child.must_not)
    excluded = _or_items(must_not)
    if excluded is None:
        return NOTHING
    not_out.extend(excluded)
    leaves.extend(Bool(should=g) for g in groups[1:])
    return Bool(tuple(leaves), groups[0] if groups else (), tuple(not_out))


def walk(node: Node) -> Iterator[Node]:
    """Every node of a tree, parents before children."""
    yield node
    if isinstance(node, Bool):
        for child in (*node.must, *node.should, *node.must_not):
            yield from walk(child)


def fields_of(node: Node) -> frozenset[str]:
    """The fields a filter reads (the columns an engine must load for it)."""
    return frozenset(n.field for n in walk(node) if isinstance(n, Term | Range))
