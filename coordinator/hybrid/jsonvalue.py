"""Strict JSON for hybrid requests: no NaN/Infinity (not JSON), no repeated keys in one object."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from coordinator.errors import IllegalArgument


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"key {key!r} repeated in one object")
        out[key] = value
    return out


def loads(text: str, what: str) -> Any:
    """Parse ``text``; anything that is not strict JSON is ILLEGAL_ARGUMENT naming ``what``."""
    try:
        return json.loads(text, parse_constant=_no_constant, object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError) as exc:
        raise IllegalArgument(f"Invalid {what}: not valid JSON ({exc})") from None


def params_object(pairs: Iterable[tuple[str, str]], what: str) -> dict[str, Any]:
    """The JSON object under key ``params`` of (key, value) pairs ({} when absent, empty or null)."""
    for key, raw in pairs:
        if key != "params":
            continue
        text = raw.strip()
        if not text:
            return {}
        value = loads(text, what)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise IllegalArgument(f"Invalid {what}: expected a JSON object, got {type(value).__name__}")
        return value
    return {}


def is_integer(value: Any) -> bool:
    """A JSON integer (``true``/``false`` are not)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
