"""Milvus 1.1 REST bodies: requests built from the client's arguments, replies read into its result types.

Pure functions, no I/O. Facts of the wire (Milvus 1.1's web server): ids are decimal strings both ways,
distances are strings printed ``%f``, binary vectors are one integer 0..255 per byte, metric and index types
travel by name (the REST index names differ from the enum names: ``IVFFLAT``, ``IVFSQ8``, ``IVFPQ``...), and
an error body is ``{"message": ..., "code": ...}`` with the Milvus status code.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from .codec import Records
from .exceptions import ParamError
from .types import IndexType, MetricType, Status

__all__ = [
    "INDEX_BY_NAME",
    "INDEX_NAMES",
    "decode_topk",
    "dumps",
    "error_status",
    "float_rows_json",
    "index_type_of",
    "insert_body",
    "metric_of",
    "search_body",
    "vectors_json",
    "with_raw",
]

INDEX_NAMES: dict[IndexType, str] = {
    IndexType.FLAT: "FLAT",
    IndexType.IVF_FLAT: "IVFFLAT",
    IndexType.IVF_SQ8: "IVFSQ8",
    IndexType.RNSG: "RNSG",
    IndexType.IVF_SQ8H: "IVFSQ8H",
    IndexType.IVF_PQ: "IVFPQ",
    IndexType.HNSW: "HNSW",
    IndexType.ANNOY: "ANNOY",
}
INDEX_BY_NAME: dict[str, IndexType] = {name: kind for kind, name in INDEX_NAMES.items()}


def dumps(value: Any) -> bytes:
    """Compact JSON bytes."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False).encode()


def loads(body: bytes) -> Any:
    return json.loads(body)


def metric_of(name: Any) -> MetricType | int:
    """A ``metric_type`` name (``"L2"``) as the enum; an unknown name gives ``MetricType.INVALID``."""
    try:
        return MetricType[str(name)]
    except KeyError:
        return MetricType.INVALID


def index_type_of(name: Any) -> IndexType:
    """A REST index name (``"IVFFLAT"``) as the enum; an unknown name gives ``IndexType.INVALID``."""
    return INDEX_BY_NAME.get(str(name), IndexType.INVALID)


def error_status(http_status: int, body: bytes) -> Status:
    """The ``Status`` of a reply that is not a success: its JSON ``{"code", "message"}``, else the HTTP status
    (a body that is not such JSON, e.g. a proxy's HTML page or the framework's text 404)."""
    try:
        doc = json.loads(body) if body else None
    except ValueError:
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("code"), int) and not isinstance(doc.get("code"), bool):
        code = int(doc["code"])
        message = str(doc.get("message", ""))
        if code == 0:  # an error status with a success body: report the HTTP status, never "OK"
            return Status(Status.UNEXPECTED_ERROR, f"HTTP {http_status}: {message}")
        return Status(code, message)
    text = body[:200].decode("utf-8", "replace").strip()
    if http_status in (401, 403):
        return Status(Status.PERMISSION_DENIED, f"HTTP {http_status}: {text}")
    return Status(Status.UNEXPECTED_ERROR, f"HTTP {http_status}: {text}" if text else f"HTTP {http_status}")


_NUMBER = 15  # bytes per float: sign, 9 mantissa digits, "e", exponent sign, 2 exponent digits, separator
# "000\0" .. "999\0" as 4-byte words: one word gather per group of three digits
_TRIPLES = np.array([[*f"{n:03d}".encode(), 0] for n in range(1000)], dtype=np.uint8).view(np.uint32).reshape(1000)


def float_rows_json(data: npt.NDArray[np.float32]) -> bytes:
    """A ``(rows, dim)`` float32 array as a JSON array of arrays, each number exact (9 significant digits
    round-trip any float32), written by array arithmetic rather than one Python float per number.

    Every number takes 14 bytes, ``[ -]ddddddddde[+-]dd``, zero as ``0e+00`` right-aligned (the blanks are JSON
    whitespace). Raises ``ParamError`` for NaN or infinity, which JSON cannot carry."""
    rows, dim = data.shape
    if not np.isfinite(data).all():
        raise ParamError("vectors must hold finite numbers to travel as JSON (no NaN or infinity)")
    a = np.abs(data.astype(np.float64))
    nonzero = a > 0
    safe = np.where(nonzero, a, 1.0)
    exp = np.floor(np.log10(safe)).astype(np.int64) - 8
    mant = np.rint(safe / np.power(10.0, exp))
    low = mant < 1e8  # log10 rounded up at a power of ten
    exp = np.where(low, exp - 1, exp)
    mant = np.where(low, np.rint(safe / np.power(10.0, exp)), mant)
    high = mant >= 1e9  # the mantissa rounded up to ten digits
    exp = np.where(high, exp + 1, exp)
    mant = np.where(high, np.rint(safe / np.power(10.0, exp)), mant)
    m = np.where(nonzero, mant, 0).astype(np.int32)  # < 1e9
    e = np.where(nonzero, exp, 0)
    out = np.empty((rows, dim, _NUMBER), dtype=np.uint8)
    for first, group in ((1, m // 1_000_000), (4, m // 1000 % 1000), (7, m % 1000)):
        out[..., first:first + 3] = _TRIPLES[group].view(np.uint8).reshape(rows, dim, 4)[..., :3]
    negative = np.signbit(data)
    out[..., 0] = np.where(negative, ord("-"), ord(" "))
    zero = ~nonzero
    if zero.any():
        blank = np.full(10, ord(" "), dtype=np.uint8)
        blank[9] = ord("0")
        out[zero, :10] = blank
        out[zero & negative, 8] = ord("-")
    out[..., 10] = ord("e")
    out[..., 11] = np.where(e < 0, ord("-"), ord("+"))
    out[..., 12] = (np.abs(e) // 10 + ord("0")).astype(np.uint8)
    out[..., 13] = (np.abs(e) % 10 + ord("0")).astype(np.uint8)
    out[..., 14] = ord(",")
    out[:, -1, 14] = ord("]")
    flat = out.reshape(rows, dim * _NUMBER)
    framed = np.empty((rows, dim * _NUMBER + 2), dtype=np.uint8)
    framed[:, 0] = ord("[")
    framed[:, 1:-1] = flat
    framed[:, -1] = ord(",")
    return b"[" + framed.tobytes()[:-1] + b"]"


def vectors_json(records: Records) -> bytes:
    """Rows as JSON: float32 numbers (exact), or byte integers for binary vectors."""
    if records.binary:
        return dumps(records.data.tolist())
    return float_rows_json(records.data)


def with_raw(doc: dict[str, Any], key: str, raw: bytes) -> bytes:
    """``doc`` as JSON with a last key ``key`` holding the ready-made JSON ``raw``."""
    head = dumps(doc)[:-1]
    return head + (b"," if doc else b"") + dumps(key) + b":" + raw + b"}"


def _with_vectors(doc: dict[str, Any], vectors: bytes) -> bytes:
    return with_raw(doc, "vectors", vectors)


def insert_body(records: Records, ids: npt.NDArray[np.int64] | None, partition_tag: str | None) -> bytes:
    doc: dict[str, Any] = {}
    if ids is not None:
        doc["ids"] = [str(i) for i in ids.tolist()]
    if partition_tag:
        doc["partition_tag"] = partition_tag
    return _with_vectors(doc, vectors_json(records))


def search_body(records: Records, top_k: int, partition_tags: Sequence[str] | None, params: dict[str, Any],
                file_ids: Sequence[Any] | None = None) -> bytes:
    spec: dict[str, Any] = {}
    if partition_tags:
        spec["partition_tags"] = list(partition_tags)
    if file_ids is not None:
        spec["file_ids"] = [str(f) for f in file_ids]
    spec["topk"] = top_k
    spec["params"] = params
    return b'{"search":' + _with_vectors(spec, vectors_json(records)) + b"}"


def decode_topk(doc: Any, top_k: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """``{"num": nq, "result": [[{"id", "distance"}, ...], ...]}`` → ``(nq, k)`` ids and distances.

    The server leaves out the slots without a hit (id -1); they come back as id -1 and distance 0 at the end
    of their row, as the gRPC reply pads them. ``k`` is the longest row, at most ``top_k`` (0 when no row has
    a hit). Raises ``ValueError`` for a body of another shape.
    """
    if not isinstance(doc, dict) or not isinstance(doc.get("result"), list):
        raise ValueError("the search reply has no result list")
    rows = [row if row is not None else [] for row in doc["result"]]
    if not all(isinstance(row, list) for row in rows):
        raise ValueError("a search result row is not a list")
    nq = max(len(rows), int(doc.get("num") or 0))
    width = min(max((len(r) for r in rows), default=0), max(top_k, 0))
    ids = np.full((nq, width), -1, dtype=np.int64)
    distances = np.zeros((nq, width), dtype=np.float32)
    for i, row in enumerate(rows):
        hits = row[:width]
        if hits:
            ids[i, : len(hits)] = [int(h["id"]) for h in hits]
            distances[i, : len(hits)] = [float(h["distance"]) for h in hits]
    return ids, distances
