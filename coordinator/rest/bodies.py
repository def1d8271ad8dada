"""JSON bodies of Milvus 1.1's REST API: parsing, typed fields, id lists and vectors.

Type errors are ``BODY_PARSE_FAIL`` (36, as Milvus 1.1's JSON type errors), missing fields
``BODY_FIELD_LOSS`` (34), fields of the right type with a wrong value ``ILLEGAL_BODY`` (35). Vectors are
converted by numpy as a whole; only a ragged array (rows of different lengths) is converted row by row, and
its dimension is then refused by the same check as a gRPC insert's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import orjson

from coordinator.rest.codes import RestError, WebCode

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
MISSING: Any = object()
# JSON literals that numpy's type inference would silently turn into numbers (true -> 1.0, null -> nan).
_LITERALS = (b"true", b"false", b"null")

Vectors = np.ndarray | list[np.ndarray]  # rectangular (rows, width), or one array per row when ragged


def parse_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RestError(WebCode.BODY_PARSE_FAIL, f"json error: {exc}") from None


def parse_object(body: bytes, empty_message: str = "Request payload is required.") -> dict[str, Any]:
    """A body that must be a JSON object (empty: ``BODY_FIELD_LOSS`` with ``empty_message``)."""
    if not body.strip():
        raise RestError(WebCode.BODY_FIELD_LOSS, empty_message)
    doc = parse_json(body)
    if not isinstance(doc, dict):
        raise RestError(WebCode.BODY_PARSE_FAIL, f"json error: the body must be a JSON object, not {json_kind(doc)}")
    return doc


def json_kind(value: Any) -> str:
    """How an error message names the JSON type of ``value`` ('a number', 'null', ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def type_error(name: str, wanted: str, value: Any) -> RestError:
    return RestError(WebCode.BODY_PARSE_FAIL, f"json error: field '{name}' must be {wanted}, not {json_kind(value)}")


def strict_keys(doc: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    """Typed bodies (Milvus 1.1's DTOs) refuse keys they do not know."""
    unknown = [key for key in doc if key not in allowed]
    if unknown:
        raise RestError(WebCode.ILLEGAL_BODY, f"Unknown field '{unknown[0]}'; the body takes {', '.join(allowed)}")


def string(doc: Mapping[str, Any], name: str, missing: str | None) -> str:
    """A string field; absent or null: ``BODY_FIELD_LOSS`` ``missing`` (or "" when ``missing`` is None)."""
    value = doc.get(name)
    if value is None:
        if missing is None:
            return ""
        raise RestError(WebCode.BODY_FIELD_LOSS, missing)
    if not isinstance(value, str):
        raise type_error(name, "a string", value)
    return value


def integer(doc: Mapping[str, Any], name: str, missing: str, default: int | None = None) -> int:
    """An int64 field (a JSON integer; booleans and fractions are type errors). Absent: ``default``, or
    ``BODY_FIELD_LOSS`` ``missing`` when there is none; an explicit null is always ``missing``."""
    value = doc.get(name, MISSING)
    if value is MISSING and default is not None:
        return default
    if value is MISSING or value is None:
        raise RestError(WebCode.BODY_FIELD_LOSS, missing)
    if isinstance(value, bool) or not isinstance(value, int):
        raise type_error(name, "an integer", value)
    if not INT64_MIN <= value <= INT64_MAX:
        raise RestError(WebCode.ILLEGAL_BODY, f"Field '{name}' is out of the int64 range")
    return value


def strings(value: Any, name: str) -> list[str]:
    """An array of strings (null: empty)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise type_error(name, "an array of strings", value)
    for item in value:
        if not isinstance(item, str):
            raise type_error(name, "an array of strings", item)
    return value


def plain_ids(value: list[Any]) -> np.ndarray | None:
    """Ids that are all strings of 1 to 18 ASCII digits (so within int64), converted without a check per item;
    None when any is not (a sign, another character, a longer one: the checks one by one decide)."""
    if not value or not all(type(item) is str for item in value):
        return None
    joined = "".join(value)
    if not (joined.isascii() and joined.isdigit()) or min(map(len, value)) < 1 or max(map(len, value)) > 18:
        return None
    return np.fromiter(map(int, value), dtype=np.int64, count=len(value))


def id_strings(value: Any, name: str) -> np.ndarray:
    """Ids sent as decimal strings (Milvus 1.1 takes ids as strings everywhere) as int64."""
    if not isinstance(value, list):
        raise RestError(WebCode.ILLEGAL_BODY, f'Field "{name}" must be an array')
    plain = plain_ids(value)
    if plain is not None:
        return plain
    out = np.empty(len(value), dtype=np.int64)
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise type_error(name, "an array of id strings", item)
        text = item[1:] if item[:1] == "-" else item
        if not (text.isascii() and text.isdigit()) or not INT64_MIN <= int(item) <= INT64_MAX:
            raise RestError(WebCode.ILLEGAL_BODY, f'Members in "{name}" must be integer string')
        out[i] = int(item)
    return out


def _check_numbers(arr: np.ndarray, binary: bool, name: str) -> np.ndarray:
    if binary:
        if arr.size and (arr.dtype.kind not in "iu" or int(arr.min()) < 0 or int(arr.max()) > 255):
            raise RestError(WebCode.BODY_PARSE_FAIL,
                            f"json error: '{name}' of a binary collection hold integers 0..255 (one per byte)")
        return arr.astype(np.uint8)
    if arr.size and arr.dtype.kind not in "iuf":
        raise RestError(WebCode.BODY_PARSE_FAIL, f"json error: '{name}' must hold numbers")
    with np.errstate(over="ignore"):  # beyond float32: infinity, refused like any non-finite value
        return arr.astype(np.float32)


def _has_literal(rows: list[Any]) -> bool:
    return any(item is None or isinstance(item, bool) for row in rows for item in row)


def _numbers_only(body: bytes, outside: Any) -> bool:
    """Whether the vectors of ``body`` hold no JSON string: the body has exactly the quotes that the rest of the
    document (``outside``: the document with the vectors replaced) has when written again. Any string among the
    vectors would add two; a quote escaped as \\u0022 elsewhere could hide them, so such a body does not count."""
    return b"\\u0022" not in body and body.count(b'"') == orjson.dumps(outside).count(b'"')


def vectors(value: Any, binary: bool, body: bytes, name: str = "vectors", outside: Any = None) -> Vectors:
    """Rows of numbers (float collections) or of byte values 0..255 (binary ones), converted as a whole.

    With ``outside`` (the document with the vectors replaced by a number) a float body that provably holds only
    numbers and no true/false/null is converted straight to float32, the fastest way numpy has."""
    if not isinstance(value, list):
        raise type_error(name, "an array of vectors", value)
    if not value:
        return np.empty((0, 0), dtype=np.uint8 if binary else np.float32)
    if (not binary and outside is not None and not any(word in body for word in _LITERALS)
            and _numbers_only(body, outside)):
        try:
            with np.errstate(over="ignore"):  # beyond float32: infinity, refused like any non-finite value
                whole = np.array(value, dtype=np.float32)
        except (ValueError, TypeError):
            whole = None  # ragged or nested deeper: found out below
        if whole is not None and whole.ndim == 2:
            return whole
    for row in value:
        if not isinstance(row, list):
            raise type_error(name, "an array of arrays of numbers", row)
    if any(word in body for word in _LITERALS) and _has_literal(value):
        raise RestError(WebCode.BODY_PARSE_FAIL, f"json error: '{name}' must hold numbers, not true/false/null")
    try:
        whole = np.array(value)
    except (ValueError, OverflowError):
        whole = None  # ragged rows (or numbers beyond int64): one row at a time
    if whole is not None and whole.ndim == 2:
        return _check_numbers(whole, binary, name)
    out: list[np.ndarray] = []
    for row in value:
        try:
            arr = np.array(row)
        except (ValueError, OverflowError):
            raise RestError(WebCode.BODY_PARSE_FAIL, f"json error: '{name}' must hold numbers") from None
        if arr.ndim != 1:
            raise RestError(WebCode.BODY_PARSE_FAIL, f"json error: '{name}' must hold numbers")
        out.append(_check_numbers(arr, binary, name))
    return out
