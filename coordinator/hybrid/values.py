"""Typed literals of term and range clauses, checked against their field (pure; errors are ILLEGAL_ARGUMENT).

- Integer fields (INT8..INT64) take integers only: packed int64 in ``TermQuery.values``, an integer literal
  (``[+-]digits``) in a ``CompareExpr`` operand, a JSON integer in the DSL (``3.0`` is refused). Term values must
  fit the field's type (a value it cannot hold could never match: it is a mistake, refused as an insert would
  be); range operands may lie anywhere in int64 (``x < 1000`` on an INT8 field holds for every row).
- BOOL fields take 0 and 1 (JSON ``true``/``false`` too), and of the range operators only EQ and NE.
- FLOAT and DOUBLE fields take finite numbers (NaN and infinity are refused); a FLOAT term value must fit
  float32. Literals are kept as given; a FLOAT field compares them rounded to float32, like its stored values,
  so a value always matches the literal it was inserted as.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from coordinator.errors import IllegalArgument
from coordinator.hybrid.jsonvalue import is_integer, is_number
from coordinator.hybrid.schema import FieldSchema
from coordinator.hybrid.tree import Scalar
from coordinator.hybrid.types import FLOAT32_MAX, WIRE_INT, WIRE_VALUE_BYTES, CompareOp, DataType, integer_bounds

INT_LITERAL = re.compile(r"[+-]?[0-9]+")
FLOAT_LITERAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
INT64_MIN, INT64_MAX = integer_bounds(DataType.INT64)
BOOL_OPERATORS = frozenset({CompareOp.EQ, CompareOp.NE})
SHOWN_CHARS = 64


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "..."


def _term_fits(f: FieldSchema, value: Scalar) -> Scalar:
    if f.type.is_integer:
        low, high = integer_bounds(f.type)
        if not low <= int(value) <= high:
            raise IllegalArgument(f"Term value {value} is out of range for field {f.name} "
                                  f"({f.type.name}: {low} ~ {high}).")
        return int(value)
    number = float(value)
    if not math.isfinite(number):
        raise IllegalArgument(f"Term value {number!r} of field {f.name} is not a finite number.")
    if f.type is DataType.FLOAT and abs(number) > FLOAT32_MAX:
        with np.errstate(over="ignore"):
            if not math.isfinite(float(np.float32(number))):
                raise IllegalArgument(f"Term value {number!r} is out of range for field {f.name} (FLOAT).")
    return number


def term_values_from_bytes(f: FieldSchema, raw: bytes, value_num: int) -> tuple[Scalar, ...]:
    """``TermQuery.values``: 8 bytes little-endian a value (int64, float64 for FLOAT/DOUBLE); ``value_num`` must
    be their count or 0."""
    if len(raw) % WIRE_VALUE_BYTES:
        raise IllegalArgument(f"Term query on field {f.name}: values holds {len(raw)} bytes, not a multiple of "
                              f"{WIRE_VALUE_BYTES} (one 8-byte value each).")
    count = len(raw) // WIRE_VALUE_BYTES
    if value_num not in (0, count):
        raise IllegalArgument(f"Term query on field {f.name}: value_num is {value_num} but values holds {count} "
                              "value(s).")
    decoded = np.frombuffer(raw, dtype=WIRE_INT if f.type.is_integer else np.dtype("<f8"))
    if f.type.is_integer:
        low, high = integer_bounds(f.type)
        bad = (decoded < low) | (decoded > high)
    else:
        with np.errstate(over="ignore"):
            narrowed = decoded.astype(np.float32) if f.type is DataType.FLOAT else decoded
        bad = ~np.isfinite(decoded) | ~np.isfinite(narrowed)
    if bad.any():
        _term_fits(f, decoded[int(np.flatnonzero(bad)[0])].item())  # raises with the value's reason
    return tuple(decoded.tolist())


def term_value_from_json(f: FieldSchema, value: Any) -> Scalar:
    if f.type is DataType.BOOL and isinstance(value, bool):
        return int(value)
    if f.type.is_integer:
        if not is_integer(value):
            raise IllegalArgument(f"Term value {_shown(value)} of field {f.name} ({f.type.name}) must be an "
                                  "integer.")
        return _term_fits(f, value)
    if not is_number(value):
        raise IllegalArgument(f"Term value {_shown(value)} of field {f.name} ({f.type.name}) must be a number.")
    try:
        return _term_fits(f, float(value))
    except OverflowError:
        raise IllegalArgument(f"Term value {_shown(value)} of field {f.name} is not a finite number.") from None


def check_operator(f: FieldSchema, op: CompareOp) -> None:
    if f.type is DataType.BOOL and op not in BOOL_OPERATORS:
        raise IllegalArgument(f"Range query on BOOL field {f.name}: only EQ and NE compare booleans, not {op.name}.")


def _operand_fits(f: FieldSchema, value: Scalar) -> Scalar:
    if f.type is DataType.BOOL:
        if value not in (0, 1):
            raise IllegalArgument(f"Operand {value} of BOOL field {f.name} must be 0 or 1.")
        return int(value)
    if f.type.is_integer:
        if not INT64_MIN <= int(value) <= INT64_MAX:
            raise IllegalArgument(f"Operand {_shown(value)} of field {f.name} is out of the int64 range.")
        return int(value)
    if not math.isfinite(value):
        raise IllegalArgument(f"Operand {_shown(value)} of field {f.name} is not a finite number.")
    return float(value)


def operand_from_string(f: FieldSchema, text: str) -> Scalar:
    """A ``CompareExpr.operand``: a decimal literal (an integer one for integer fields)."""
    literal = text.strip()
    if f.type.is_integer:
        if not INT_LITERAL.fullmatch(literal):
            raise IllegalArgument(f"Operand {_shown(text)} of field {f.name} ({f.type.name}) is not an integer.")
        return _operand_fits(f, int(literal))
    if not FLOAT_LITERAL.fullmatch(literal):
        raise IllegalArgument(f"Operand {_shown(text)} of field {f.name} ({f.type.name}) is not a number.")
    return _operand_fits(f, float(literal))


def operand_from_json(f: FieldSchema, value: Any) -> Scalar:
    if f.type is DataType.BOOL and isinstance(value, bool):
        return int(value)
    if f.type.is_integer:
        if not is_integer(value):
            raise IllegalArgument(f"Operand {_shown(value)} of field {f.name} ({f.type.name}) must be an integer.")
        return _operand_fits(f, value)
    if not is_number(value):
        raise IllegalArgument(f"Operand {_shown(value)} of field {f.name} ({f.type.name}) must be a number.")
    try:
        return _operand_fits(f, float(value))
    except OverflowError:
        raise IllegalArgument(f"Operand {_shown(value)} of field {f.name} is not a finite number.") from None


def operand_to_string(value: Scalar) -> str:
    """The literal :func:`operand_from_string` reads back as ``value``."""
    return str(value) if isinstance(value, int) else repr(float(value))
