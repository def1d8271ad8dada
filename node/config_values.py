"""How Milvus 1.1 reads the values of its server config: sizes, natural numbers, booleans, addresses, paths.

Pure functions, used to validate ``set_config`` values exactly as Milvus 1.1 does (same accepted forms, same
reasons) and to turn them into the node's own settings.
"""

from __future__ import annotations

import math
import re
import socket

INT64_MAX = (1 << 63) - 1
_UNITS = {"b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
_DECIMAL = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")
_FLOAT = re.compile(r"\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_TIME_OFFSET = re.compile(r"[+-](([0-9]|0[0-9]|1[0-9]|2[0-3])|(([0-9]|0[0-9]|1[0-9]|2[0-3]):[0-5][0-9]))")
_META_URI = re.compile(r"(.*)://(.*):(.*)@(.*):(.*)/(.*)")
TRUE_WORDS = frozenset({"true", "on", "yes", "1"})
BOOL_WORDS = TRUE_WORDS | {"false", "off", "no", "0", ""}
LOG_LEVELS = ("debug", "info", "warning", "error", "fatal")
UNITS_REASON = ("The specified value for memory ({value}) should specify the units."
                "The postfix should be one of the `b` `k` `m` `g` characters")
UNPARSABLE_REASON = "Unknown error happened on parse bytes."


def is_natural(text: str) -> bool:
    """A natural number as Milvus 1.1 checks it: ASCII digits only, within int64 ("1.5", "-1", "1+2" are not)."""
    return bool(text) and text.isascii() and text.isdigit() and int(text) <= INT64_MAX


def parse_bytes(text: str) -> int:
    """A memory size in Milvus 1.1's forms: ``1073741824``, ``1024MB``, ``1g``, ``512k``, ``64b``.

    Units are b, k, m, g (any case, an extra trailing ``b`` allowed: ``GB``); the empty string is 0; the number
    may be negative (callers refuse it) or have decimals (``1.5GB``: Milvus 1.1 keeps the integer part, this
    keeps the exact value). Raises ``ValueError`` with Milvus 1.1's reason.
    """
    if is_natural(text):
        return int(text)
    if not text:
        return 0
    if len(text) < 2:
        raise ValueError(UNPARSABLE_REASON)
    body = text
    if body[-2:].isalpha() and body[-1] in "bB":
        body = body[:-1]
    suffix = body[-1].lower()
    if suffix.isascii() and suffix.isdigit():
        digits, unit = body, 1
    elif suffix in _UNITS:
        digits, unit = body[:-1], _UNITS[suffix]
    else:
        raise ValueError(UNITS_REASON.format(value=text))
    digits = digits.strip()
    if not _DECIMAL.fullmatch(digits):
        raise ValueError(UNPARSABLE_REASON)
    value = math.floor(float(digits) * unit)
    if abs(value) > INT64_MAX:
        raise ValueError(UNPARSABLE_REASON)
    return int(value)


def is_bool(text: str) -> bool:
    """Milvus 1.1's booleans: true/on/yes/1, false/off/no/0 and the empty string, in any case."""
    return text.lower() in BOOL_WORDS


def as_bool(text: str) -> bool:
    return text.lower() in TRUE_WORDS


def is_float(text: str) -> bool:
    """A non-negative number with a decimal part or exponent allowed (what ``std::stof`` reads)."""
    match = _FLOAT.match(text)
    return match is not None and math.isfinite(float(match.group(0)))


def float_prefix(text: str) -> float:
    """The number at the start of ``text`` (``is_float`` must hold)."""
    match = _FLOAT.match(text)
    assert match is not None
    return float(match.group(0))


def timezone_problem(value: str) -> str:
    """'' for a valid ``UTC+8`` / ``UTC-5:30`` / ``UTC+08:30``; else ``"prefix"`` (no ``UTC`` prefix or too short)
    or ``"offset"`` (Milvus 1.1 answers them with different codes)."""
    if len(value) <= 3 or value[:3] != "UTC":
        return "prefix"
    return "" if _TIME_OFFSET.fullmatch(value[3:]) else "offset"


def is_ipv4(text: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET, text)
    except (OSError, ValueError):
        return False
    return True


def port_in_range(text: str) -> bool:
    """Milvus 1.1's ports: a number strictly between 1024 and 65535."""
    return is_natural(text) and 1024 < int(text) < 65535


def is_storage_path(path: str) -> bool:
    """Milvus 1.1's rule for storage paths: absolute, made of word characters, single ``-`` after a word
    character and single ``/`` separators (``/a//a``, ``/a--/a``, ``/-a/a``, ``/a@#/a``, ``aaa/b`` are refused).

    Written as a scan: the rule's regular expression has nested repetition, which backtracks exponentially in
    Python's engine on long refused paths.
    """
    if len(path) < 2 or path[0] != "/":
        return False
    previous = "/"
    for ch in path[1:]:
        if ch.isascii() and (ch.isalnum() or ch == "_"):
            previous = "w"
        elif ch == "-" and previous == "w":
            previous = "-"
        elif ch == "/" and previous in ("w", "-"):
            previous = "/"
        else:
            return False
    return True


def is_meta_uri(uri: str) -> bool:
    """``dialect://user:password@host:port/database`` with a mysql or sqlite dialect and a numeric (or empty)
    port, as Milvus 1.1 checks ``general.meta_uri`` (``sqlite://:@:/`` is the local default)."""
    match = _META_URI.fullmatch(uri)
    if match is None:
        return False
    dialect, port = match.group(1).lower(), match.group(5)
    return ("mysql" in dialect or "sqlite" in dialect) and (not port or is_natural(port))


def catalog_uri_of(meta_uri: str) -> str:
    """The node's ``meta_uri`` setting for a Milvus 1.1 ``general.meta_uri`` (``is_meta_uri`` must hold):
    SQLite means the node's own catalog file (''); ``mysql://`` uses the PyMySQL driver with utf8mb4."""
    match = _META_URI.fullmatch(meta_uri)
    assert match is not None
    dialect = match.group(1).lower()
    if "mysql" not in dialect:
        return ""
    if "+" in dialect:
        return meta_uri  # already a SQLAlchemy URI with its driver
    rest = meta_uri.split("://", 1)[1]
    return f"mysql+pymysql://{rest}{'&' if '?' in rest else '?'}charset=utf8mb4"


def is_log_level(value: str) -> bool:
    return value in LOG_LEVELS
