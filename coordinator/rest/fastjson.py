"""The float vectors of a large JSON body without a Python float per number.

``orjson.loads`` builds one Python float per number, which is most of the cost of a 10k x 128 insert body
(and numpy then reads them back one by one). Here the array after the body's ``"vectors":`` key is cut out of
the text and parsed by simdjson straight into one float64 buffer; the rest of the document, with the array
replaced by ``0``, is parsed by orjson as before. :func:`split` takes a body only when that provably yields
what ``orjson.loads`` of the whole body and numpy's float32 conversion of its rows would: any doubt (another
key spelled ``vectors``, an escape that could spell one, text around the array that is not whitespace and one
comma, invalid JSON anywhere, something other than numbers, nested or ragged rows, no rows, integers beyond
2**53) answers None, and the caller parses the body the general way, with the errors it always gave.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson
import simdjson

KEY = b'"vectors"'
PLACEHOLDER = b"0"
_WHITESPACE = re.compile(rb"[ \t\r\n]*")
_JSON_SPACE = b" \t\r\n"
_OPEN = ord("[")
# Integers are exact in float64 up to 2**53; beyond, orjson's Python int and simdjson's double could round to
# different float32 values, so such bodies take the general way.
EXACT_INTEGERS = float(1 << 53)
# Parsers are kept for reuse (a fresh one allocates its buffers again, about 40 % more time on a 13 MB body),
# at most KEEP_PARSERS of them and only after documents up to REUSE_LIMIT bytes: a parser keeps buffers of a few
# times the largest document it has read.
KEEP_PARSERS = 1
REUSE_LIMIT = 32 << 20
COUNT_BLOCK = 1 << 18
# The lazy document API (Parser.parse returning Array proxies with as_buffer) of pysimdjson up to 7.x: without
# it every body takes the general way.
LAZY_API = hasattr(simdjson, "Parser") and hasattr(getattr(simdjson, "Array", None), "as_buffer")


def skip_space(body: bytes, at: int) -> int:
    match = _WHITESPACE.match(body, at)
    return match.end() if match is not None else at


def locate(body: bytes) -> tuple[int, int] | None:
    """Where the array after the first ``"vectors"`` of ``body`` is, as (start, end), when that key is followed
    by ':' and '[' (JSON whitespace between) and the array text ends at the last ']' before the next '"' or '}'
    with only JSON whitespace and at most one comma after it. None otherwise. Whether this was the key wanted,
    and whether the text is one valid array, is for the caller to prove (:func:`split`)."""
    at = body.find(KEY)
    if at < 0:
        return None
    colon = skip_space(body, at + len(KEY))
    if body[colon:colon + 1] != b":":
        return None
    start = skip_space(body, colon + 1)
    if body[start:start + 1] != b"[":
        return None
    ends = [i for i in (body.find(b'"', start), body.find(b"}", start)) if i >= 0]
    stop = min(ends) if ends else len(body)
    end = body.rfind(b"]", start, stop) + 1
    if end <= start or body[end:stop].strip(_JSON_SPACE) not in (b"", b","):
        return None
    return start, end


def value_at(doc: Any, path: Sequence[str]) -> Any:
    for key in path:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(key)
    return doc


def split(body: bytes, path: Sequence[str] = ("vectors",)) -> tuple[Any, np.ndarray] | None:
    """(the document with ``0`` where its vectors were, the vectors as float32 rows) or None.

    ``path`` is where the vectors are (keys from the top). Proof that the result is ``orjson.loads(body)``
    with the vectors taken out: the rest of the body parses (so with the array, which simdjson checks to be one
    valid JSON array of rows of numbers, the whole body is valid JSON); it holds ``"vectors"`` exactly once and
    no ``\\u`` escape, so the only key of the document named ``vectors`` is the one found, and the value at
    ``path`` being the placeholder shows that it is that key, at that place."""
    where = locate(body) if LAZY_API else None
    if where is None:
        return None
    start, end = where
    rest = body[:start] + PLACEHOLDER + body[end:]
    if rest.count(KEY) != 1 or b"\\u" in rest:
        return None
    try:
        doc = orjson.loads(rest)
    except orjson.JSONDecodeError:
        return None
    value = value_at(doc, path)
    if type(value) is not int or value != 0:
        return None
    rows = float_rows(memoryview(body)[start:end])
    if rows is None:
        return None
    return doc, rows


class _Parsers:
    """simdjson parsers for reuse, one per call at a time (a parser may not parse again while values of its
    last document are referenced)."""

    def __init__(self) -> None:
        self._free: list[Any] = []
        self._lock = threading.Lock()

    def take(self) -> Any:
        with self._lock:
            if self._free:
                return self._free.pop()
        return simdjson.Parser()

    def give_back(self, parser: Any, size: int) -> None:
        if size > REUSE_LIMIT:
            return
        with self._lock:
            if len(self._free) < KEEP_PARSERS:
                self._free.append(parser)


_parsers = _Parsers()


def float_rows(text: bytes | memoryview) -> np.ndarray | None:
    """The rows of ``text`` (a JSON array of arrays of numbers, all of one length) as float32, as numpy would
    convert the Python numbers orjson gives; None for anything else (invalid JSON included)."""
    if not LAZY_API:
        return None
    parser = _parsers.take()
    rows = _rows(parser, text)  # if it raised, the parser is dropped: a traceback may still hold its values
    _parsers.give_back(parser, len(text))
    return rows


def count_byte(text: bytes | memoryview, value: int) -> int:
    """How many bytes of ``text`` equal ``value`` (counted a block at a time: the comparison stays in cache)."""
    data = np.frombuffer(text, dtype=np.uint8)
    return sum(int(np.count_nonzero(data[i:i + COUNT_BLOCK] == value)) for i in range(0, data.size, COUNT_BLOCK))


def _rows(parser: Any, text: bytes | memoryview) -> np.ndarray | None:
    try:
        root = parser.parse(text)
    except Exception:  # not JSON (simdjson's errors are ValueError, TypeError, ...): the general way reports it
        return None
    if not isinstance(root, simdjson.Array) or len(root) == 0:
        return None
    n = len(root)
    width = -1
    for row in root:
        if not isinstance(row, simdjson.Array):
            return None
        if width < 0:
            width = len(row)
        elif len(row) != width:
            return None
    if width <= 0:
        return None
    # One '[' per row and the outer one: no row holds an array (flattening would hide it).
    if count_byte(text, _OPEN) != n + 1:
        return None
    try:
        flat = np.frombuffer(root.as_buffer(of_type="d"), dtype=np.float64)
    except Exception:  # a string, true, false or null among the numbers
        return None
    if flat.size != n * width or max(float(flat.max()), -float(flat.min())) >= EXACT_INTEGERS:
        return None
    with np.errstate(over="ignore"):  # beyond float32: infinity, refused like any non-finite value
        return flat.astype(np.float32).reshape(n, width)
