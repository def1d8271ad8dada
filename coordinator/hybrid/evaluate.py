"""The scalar filter of a hybrid search over numpy columns, vectorised, and the numbers a planner needs.

``evaluate`` returns one boolean per row (an engine ANDs it with its live-row mask and hands it to the index
as a selector). Columns are the storage dtypes of :data:`coordinator.hybrid.types.STORAGE_DTYPE`, e.g.
memory-mapped segment files. Literals compare as the field's type: a FLOAT column against the literal rounded
to float32 (beyond float32's range: +-infinity, so the comparison keeps its meaning), an integer column against
an operand outside its type's range by what that operand implies (``x < 1000`` on INT8: every row).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from coordinator.hybrid.tree import Bool, Node, Range, Scalar, Term, fields_of
from coordinator.hybrid.types import CompareOp

# Exact search over the passing rows when they need fewer distance computations than this (OpenSearch's
# bound), or when they are fewer than this fraction of the segment (where filtered ANN search loses recall).
EXACT_DISTANCE_BUDGET = 2_048_000
EXACT_FRACTION = 0.07
SAMPLE_ROWS = 4096

_ABOVE_MAX = {CompareOp.LT: True, CompareOp.LTE: True, CompareOp.NE: True,
              CompareOp.GT: False, CompareOp.GTE: False, CompareOp.EQ: False}
_BELOW_MIN = {CompareOp.GT: True, CompareOp.GTE: True, CompareOp.NE: True,
              CompareOp.LT: False, CompareOp.LTE: False, CompareOp.EQ: False}


def _literal(column: np.ndarray, value: Scalar) -> np.generic:
    with np.errstate(over="ignore"):
        return column.dtype.type(value)


def _term(column: np.ndarray, values: tuple[Scalar, ...]) -> np.ndarray:
    if not values:
        return np.zeros(column.shape[0], dtype=bool)
    if len(values) == 1:
        return np.asarray(column == _literal(column, values[0]))
    with np.errstate(over="ignore"):
        wanted = np.asarray(values, dtype=column.dtype)
    return np.isin(column, wanted)


def _compare(column: np.ndarray, op: CompareOp, value: Scalar) -> np.ndarray | bool:
    """The comparison's mask, or a constant when the operand lies outside an integer column's range."""
    if column.dtype.kind in "iu":
        info = np.iinfo(column.dtype)
        if value > info.max:
            return _ABOVE_MAX[op]
        if value < info.min:
            return _BELOW_MIN[op]
    literal = _literal(column, value)
    if op is CompareOp.LT:
        return np.asarray(column < literal)
    if op is CompareOp.LTE:
        return np.asarray(column <= literal)
    if op is CompareOp.EQ:
        return np.asarray(column == literal)
    if op is CompareOp.GT:
        return np.asarray(column > literal)
    if op is CompareOp.GTE:
        return np.asarray(column >= literal)
    return np.asarray(column != literal)


def _range(column: np.ndarray, node: Range, rows: int) -> np.ndarray:
    mask = np.ones(rows, dtype=bool)
    for c in node.comparisons:
        part = _compare(column, c.op, c.value)
        if part is False:
            return np.zeros(rows, dtype=bool)
        if part is not True:
            mask &= part
    return mask


def evaluate(node: Node, columns: Mapping[str, np.ndarray], rows: int) -> np.ndarray:
    """The rows (of ``rows``) that ``node`` passes, as a boolean array; ``columns`` holds at least the fields
    of :func:`coordinator.hybrid.tree.fields_of` ``(node)``, each ``rows`` long."""
    if isinstance(node, Term | Range):
        column = columns[node.field]
        if column.shape[0] != rows:
            raise ValueError(f"column {node.field} has {column.shape[0]} rows, expected {rows}")
        return _term(column, node.values) if isinstance(node, Term) else _range(column, node, rows)
    return _bool(node, columns, rows)


def _bool(node: Bool, columns: Mapping[str, np.ndarray], rows: int) -> np.ndarray:
    mask = np.ones(rows, dtype=bool)
    for child in node.must:
        mask &= evaluate(child, columns, rows)
    if node.should:
        anyone = np.zeros(rows, dtype=bool)
        for child in node.should:
            anyone |= evaluate(child, columns, rows)
        mask &= anyone
    for child in node.must_not:
        mask &= ~evaluate(child, columns, rows)
    return mask


def selectivity(mask: np.ndarray) -> float:
    """The fraction of rows a mask passes (0.0 for no rows)."""
    return float(np.count_nonzero(mask)) / mask.shape[0] if mask.shape[0] else 0.0


def estimate_selectivity(node: Node, columns: Mapping[str, np.ndarray], rows: int,
                         sample: int = SAMPLE_ROWS) -> float:
    """The fraction of rows ``node`` passes, from ``sample`` evenly spaced rows (exact for small segments)."""
    if rows <= sample:
        return selectivity(evaluate(node, columns, rows))
    picked = np.linspace(0, rows - 1, sample).astype(np.int64)
    subset = {name: np.asarray(columns[name])[picked] for name in fields_of(node)}
    return selectivity(evaluate(node, subset, sample))


def prefer_exact(passing: int, rows: int, topk: int, dimension: int) -> bool:
    """Whether a segment of ``rows`` rows, ``passing`` of which pass the filter, is better searched exactly
    over the passing rows than through its index (reference plan, rule 2)."""
    return passing <= max(topk, EXACT_DISTANCE_BUDGET // max(dimension, 1)) or passing < EXACT_FRACTION * rows


def widened(value: int, fraction: float, cap: int) -> int:
    """A search breadth (IVF ``nprobe``, HNSW ``ef``) widened by 1 / fraction, at most ``cap``, never less."""
    if fraction <= 0:
        return max(value, cap)
    return max(value, min(cap, math.ceil(value / fraction)))
