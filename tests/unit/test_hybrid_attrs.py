"""``attr_records``: decoding every type at its boundaries, exact length and order checks, refusals of values a
type cannot hold, and packing back (GetEntityByID replies, the client helper)."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coordinator.errors import ErrorCode, MilvusError
from coordinator.hybrid.attrs import (
    decode_attributes,
    decode_entities,
    entity_message,
    field_names,
    pack_attributes,
    scalar_order,
)
from coordinator.hybrid.types import FLOAT32_MAX
from milvus_wire import milvus_pb2
from tests.support.hybrid import schema

S = schema()
NAMES = field_names(S)
I64 = (-(2**63), 2**63 - 1)


def _pack(ints: dict[str, list[int]], floats: dict[str, list[float]], order: list[str]) -> bytes:
    out = b""
    for name in order:
        if name in ints:
            out += struct.pack(f"<{len(ints[name])}q", *ints[name])
        else:
            out += struct.pack(f"<{len(floats[name])}d", *floats[name])
    return out


BOUNDARY_INTS = {"i8": [-128, 127, 0], "i16": [-32768, 32767, -1], "i32": [-(2**31), 2**31 - 1, 5],
                 "i64": [I64[0], I64[1], 7], "b": [0, 1, 1]}
BOUNDARY_FLOATS = {"f": [FLOAT32_MAX, -FLOAT32_MAX, 0.1], "d": [1e308, -5e-324, 0.1]}


def _error(fn: Any, *args: Any) -> MilvusError:
    with pytest.raises(MilvusError) as info:
        fn(*args)
    return info.value


def test_every_type_at_its_boundaries() -> None:
    raw = _pack(BOUNDARY_INTS, BOUNDARY_FLOATS, NAMES[:-1])
    cols = decode_attributes(S, NAMES, raw, 3)
    assert list(cols) == NAMES[:-1]
    assert cols["i8"].dtype == np.int8 and cols["i8"].tolist() == [-128, 127, 0]
    assert cols["i16"].dtype == np.int16 and cols["i16"].tolist() == [-32768, 32767, -1]
    assert cols["i32"].dtype == np.int32 and cols["i32"].tolist() == [-(2**31), 2**31 - 1, 5]
    assert cols["i64"].dtype == np.int64 and cols["i64"].tolist() == [I64[0], I64[1], 7]
    assert cols["b"].dtype == np.bool_ and cols["b"].tolist() == [False, True, True]
    assert cols["f"].dtype == np.float32 and cols["f"].tolist() == [FLOAT32_MAX, -FLOAT32_MAX, float(np.float32(0.1))]
    assert cols["d"].dtype == np.float64 and cols["d"].tolist() == [1e308, -5e-324, 0.1]
    assert all(c.flags.c_contiguous and c.flags.writeable for c in cols.values())


def test_field_names_in_any_scalar_order() -> None:
    order = ["d", "b", "i64", "f", "i8", "i32", "i16"]
    raw = _pack(BOUNDARY_INTS, BOUNDARY_FLOATS, order)
    cols = decode_attributes(S, [*order, "v"], raw, 3)
    assert list(cols) == NAMES[:-1]  # schema order whatever the wire order
    assert cols["i16"].tolist() == [-32768, 32767, -1] and cols["d"].tolist() == [1e308, -5e-324, 0.1]
    assert [f.name for f in scalar_order(S, [*order, "v"])] == order


@pytest.mark.parametrize(("names", "reason"), [
    (["i8", "i16", "i32", "i64", "b", "f", "d"], "field_names must name every field of collection coll with the "
     "vector field v last."),
    (["v", "i8", "i16", "i32", "i64", "b", "f", "d"], "field_names must name every field of collection coll with "
     "the vector field v last."),
    ([], "field_names must name every field of collection coll with the vector field v last."),
    (["i8", "v", "i16", "i32", "i64", "b", "f", "d", "v"], "field_names must name the vector field v once, last."),
    (["i8", "i8", "i16", "i32", "i64", "b", "f", "d", "v"], "Field i8 is named more than once in field_names."),
    (["i8", "x", "i16", "i32", "i64", "b", "f", "d", "v"], "Field x does not exist in collection coll."),
    (["i8", "i16", "i32", "i64", "b", "f", "v"], "field_names lacks field(s) d of collection coll: every field "
     "needs a value in every row."),
    (["v"], "field_names lacks field(s) i8, i16, i32, i64, b, f, d of collection coll: every field needs a value "
     "in every row."),
])
def test_field_name_refusals(names: list[str], reason: str) -> None:
    err = _error(decode_attributes, S, names, b"", 0)
    assert (err.code, err.reason) == (ErrorCode.ILLEGAL_ARGUMENT, reason)


@pytest.mark.parametrize("delta", [-8, -1, 1, 8, 56])
def test_length_must_be_exact(delta: int) -> None:
    raw = _pack(BOUNDARY_INTS, BOUNDARY_FLOATS, NAMES[:-1])
    raw = raw[:delta] if delta < 0 else raw + b"\0" * delta
    err = _error(decode_attributes, S, NAMES, raw, 3)
    assert err.code == ErrorCode.ILLEGAL_ARGUMENT
    assert err.reason == (f"attr_records holds {168 + delta} bytes; 3 rows of 7 scalar field(s) need exactly 168 "
                          "(8 bytes a value).")


def test_row_count_must_match_the_length() -> None:
    raw = _pack(BOUNDARY_INTS, BOUNDARY_FLOATS, NAMES[:-1])
    assert _error(decode_attributes, S, NAMES, raw, 2).reason.startswith("attr_records holds 168 bytes; 2 rows")
    assert _error(decode_attributes, S, NAMES, raw, 4).reason.startswith("attr_records holds 168 bytes; 4 rows")


@pytest.mark.parametrize(("name", "value", "why"), [
    ("i8", 128, "is out of range for INT8 (-128 ~ 127)"),
    ("i8", -129, "is out of range for INT8 (-128 ~ 127)"),
    ("i16", 32768, "is out of range for INT16 (-32768 ~ 32767)"),
    ("i16", -32769, "is out of range for INT16 (-32768 ~ 32767)"),
    ("i32", 2**31, "is out of range for INT32 (-2147483648 ~ 2147483647)"),
    ("i32", -(2**31) - 1, "is out of range for INT32 (-2147483648 ~ 2147483647)"),
    ("i8", 256, "is out of range for INT8 (-128 ~ 127)"),  # would wrap to 0
    ("b", 2, "is out of range for BOOL (0 ~ 1)"),
    ("b", -1, "is out of range for BOOL (0 ~ 1)"),
])
def test_integers_out_of_range_are_refused_not_wrapped(name: str, value: int, why: str) -> None:
    ints = {k: [0, 0] for k in BOUNDARY_INTS}
    ints[name] = [0, value]
    raw = _pack(ints, {"f": [0.0, 0.0], "d": [0.0, 0.0]}, NAMES[:-1])
    err = _error(decode_attributes, S, NAMES, raw, 2)
    assert (err.code, err.reason) == (ErrorCode.ILLEGAL_ARGUMENT, f"Value {value} of field {name} (row index 1) {why}.")


@pytest.mark.parametrize(("name", "value", "why"), [
    ("f", float("nan"), "is not a finite number (NaN and infinity are refused)"),
    ("d", float("nan"), "is not a finite number (NaN and infinity are refused)"),
    ("f", float("inf"), "is not a finite number (NaN and infinity are refused)"),
    ("d", float("-inf"), "is not a finite number (NaN and infinity are refused)"),
    ("f", 3.5e38, f"is out of range for FLOAT (+-{FLOAT32_MAX!r})"),
    ("f", -1e300, f"is out of range for FLOAT (+-{FLOAT32_MAX!r})"),
])
def test_floats_refused(name: str, value: float, why: str) -> None:
    floats = {"f": [0.0, 1.0], "d": [0.0, 1.0]}
    floats[name] = [1.0, value]
    raw = _pack({k: [0, 0] for k in BOUNDARY_INTS}, floats, NAMES[:-1])
    err = _error(decode_attributes, S, NAMES, raw, 2)
    assert err.code == ErrorCode.ILLEGAL_ARGUMENT
    assert err.reason == f"Value {np.float64(value)!r} of field {name} (row index 1) {why}."


def test_float_values_that_round_to_the_largest_float32_are_kept() -> None:
    just_above = float(np.nextafter(FLOAT32_MAX, np.inf))  # still rounds to FLT_MAX, not to infinity
    raw = _pack({k: [0] for k in BOUNDARY_INTS}, {"f": [just_above], "d": [0.0]}, NAMES[:-1])
    assert decode_attributes(S, NAMES, raw, 1)["f"].tolist() == [FLOAT32_MAX]
    raw = _pack({k: [0] for k in BOUNDARY_INTS}, {"f": [1e-50], "d": [0.0]}, NAMES[:-1])
    assert decode_attributes(S, NAMES, raw, 1)["f"].tolist() == [0.0]  # underflow rounds, as any narrowing


def test_vector_only_collection_has_no_attributes() -> None:
    s = schema(scalars={})
    assert decode_attributes(s, ["v"], b"", 5) == {}
    reason = "attr_records holds 8 bytes; 1 rows of 0 scalar field(s) need exactly 0 (8 bytes a value)."
    assert _error(decode_attributes, s, ["v"], b"\0" * 8, 1).reason == reason


def _entity(rows: int, vectors: np.ndarray, extra_values: int = 0) -> Any:
    ints = {k: [1] * rows for k in BOUNDARY_INTS}
    raw = _pack(ints, {"f": [0.5] * rows, "d": [2.5] * rows}, NAMES[:-1])
    values = [milvus_pb2.FieldValue(vector_value=milvus_pb2.VectorFieldValue(
        value=[milvus_pb2.RowRecord(float_data=r) for r in vectors]))]
    values += [milvus_pb2.FieldValue(int64_value=1)] * extra_values
    return milvus_pb2.HEntity(field_names=NAMES, attr_records=raw, row_num=rows, result_values=values)


def test_decode_entities() -> None:
    vecs = np.arange(12, dtype=np.float32).reshape(3, 4)
    out = decode_entities(S, _entity(3, vecs))
    assert out.rows == 3 and np.array_equal(out.vectors, vecs) and out.vectors.dtype == np.float32
    assert out.columns["d"].tolist() == [2.5] * 3 and out.columns["b"].tolist() == [True] * 3


@pytest.mark.parametrize(("entity", "code", "reason"), [
    (_entity(3, np.zeros((2, 4), np.float32)), ErrorCode.ILLEGAL_ARGUMENT,
     "HEntity.row_num is 3 but it carries 2 vector(s)."),
    (_entity(2, np.zeros((2, 4), np.float32), extra_values=1), ErrorCode.ILLEGAL_ARGUMENT,
     "HEntity.result_values must hold exactly one FieldValue with the vectors (vector_value); got 2 value(s)."),
    (milvus_pb2.HEntity(field_names=NAMES, row_num=2), ErrorCode.ILLEGAL_ARGUMENT,
     "HEntity.result_values must hold exactly one FieldValue with the vectors (vector_value); got 0 value(s)."),
    (_entity(0, np.zeros((0, 4), np.float32)), ErrorCode.ILLEGAL_ROWRECORD,
     "The vector array is empty. Make sure you have entered vector records."),
    (_entity(2, np.zeros((2, 3), np.float32)), ErrorCode.ILLEGAL_DIMENSION,
     "The vector dimension must be equal to the collection dimension."),
    (_entity(1, np.array([[0, np.nan, 0, 0]], np.float32)), ErrorCode.ILLEGAL_ROWRECORD,
     "The vector data must not contain NaN or infinity values."),
])
def test_entity_refusals(entity: Any, code: ErrorCode, reason: str) -> None:
    err = _error(decode_entities, S, entity)
    assert (err.code, err.reason) == (code, reason)


def test_a_message_of_the_old_incompatible_client_is_refused() -> None:
    # pymilvus 0.2.14's HInsertParam decodes as field names and a row count with no values at all
    entity = milvus_pb2.HEntity(field_names=["i8", "v"], row_num=2)
    err = _error(decode_entities, schema(scalars={"i8": 1}), entity)
    assert err.code == ErrorCode.ILLEGAL_ARGUMENT


def test_attributes_are_checked_before_vectors_are_decoded() -> None:
    entity = _entity(2, np.zeros((2, 4), np.float32))
    entity.attr_records = entity.attr_records[:-8]
    calls: list[int] = []

    def decoder(records: Any, s: Any) -> np.ndarray:
        calls.append(len(records))
        return np.zeros((2, 4), np.float32)

    with pytest.raises(MilvusError):
        decode_entities(S, entity, decoder)
    assert calls == []
    decode_entities(S, _entity(2, np.zeros((2, 4), np.float32)), decoder)
    assert calls == [2]


def test_binary_collection_entities() -> None:
    s = schema(scalars={"a": 4}, dim=16, vector_params='{"metric_type": 3}')
    bits = np.array([[1, 2], [255, 0]], dtype=np.uint8)
    message = entity_message(s, {"a": [5, -5]}, bits, entity_id=9)
    out = decode_entities(s, message)
    assert np.array_equal(out.vectors, bits) and out.columns["a"].tolist() == [5, -5]
    assert message.entity_id == 9 and list(message.field_names) == ["a", "v"]


def test_entity_message_layout() -> None:
    cols = {"i8": [-1], "i16": [2], "i32": [3], "i64": [4], "b": [True], "f": [np.float32(0.1)], "d": [0.25]}
    message = entity_message(S, cols, np.ones((1, 4), np.float32), entity_id=42)
    assert message.row_num == 1 and list(message.field_names) == NAMES
    assert message.attr_records == struct.pack("<5q2d", -1, 2, 3, 4, 1, float(np.float32(0.1)), 0.25)
    assert list(message.result_values[0].vector_value.value[0].float_data) == [1.0] * 4


@pytest.mark.parametrize(("columns", "reason"), [
    ({"a": [1.5]}, "The values of field a (INT32) must be integers."),
    ({"a": [1], "x": ["1"]}, "The values of field x (DOUBLE) must be numbers."),
    ({"a": [True], "x": [True]}, "The values of field x (DOUBLE) must be numbers."),
    ({"a": [1, 2], "x": [1.0]}, "Field x has 1 values, other fields 2."),
    ({"a": [[1]], "x": [1.0]}, "The values of field a must be one-dimensional."),
    ({"a": [1]}, "No values for field x."),
])
def test_pack_refusals(columns: dict[str, Any], reason: str) -> None:
    s = schema(scalars={"a": 3, "x": 41})
    err = _error(pack_attributes, s, columns)
    assert err.reason == reason


def test_pack_sends_values_unchecked() -> None:
    s = schema(scalars={"a": 1})
    assert pack_attributes(s, {"a": [300]}) == struct.pack("<q", 300)  # the server refuses it, not the packer


COLUMN = {
    "i8": st.integers(-128, 127), "i16": st.integers(-(2**15), 2**15 - 1), "i32": st.integers(-(2**31), 2**31 - 1),
    "i64": st.integers(*I64), "b": st.booleans(), "f": st.floats(width=32, allow_nan=False, allow_infinity=False),
    "d": st.floats(allow_nan=False, allow_infinity=False),
}


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 6).flatmap(lambda n: st.fixed_dictionaries({k: st.lists(v, min_size=n, max_size=n)
                                                                 for k, v in COLUMN.items()})))
def test_pack_then_decode_is_identity(columns: dict[str, list[Any]]) -> None:
    rows = len(columns["i8"])
    decoded = decode_attributes(S, NAMES, pack_attributes(S, columns), rows)
    for f in S.scalars:
        assert decoded[f.name].tolist() == list(columns[f.name])
