"""Sizes in settings: ``4GB``, ``512MB``, ``1048576``."""

from __future__ import annotations

# What a gRPC message-size setting may be: at least gRPC's default, below its 2 GiB limit.
MIN_MESSAGE_BYTES = 4 << 20
MAX_MESSAGE_BYTES = (2 << 30) - (1 << 20)

_UNITS = {"": 1, "B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}


def parse_size(text: str) -> int:
    """Parse a size such as ``4GB``, ``512MB`` or ``1048576`` into bytes."""
    raw = str(text).strip().upper().replace(" ", "")
    digits = raw.rstrip("KMGTB")
    unit = raw[len(digits) :]
    if unit not in _UNITS or not digits:
        raise ValueError(f"invalid size {text!r}: use a number with an optional B/KB/MB/GB/TB unit")
    try:
        value = float(digits)
    except ValueError:
        raise ValueError(f"invalid size {text!r}") from None
    if not 0 <= value < float("inf"):  # also refuses NaN and infinity (int() would raise otherwise)
        raise ValueError(f"invalid size {text!r}")
    return int(value * _UNITS[unit])
