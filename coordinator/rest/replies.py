"""Milvus 1.1's JSON replies: the request and reply values of an endpoint, names, and the bulk encoders.

Bodies Milvus 1.1 builds from a typed object list their keys in declaration order (its status body is
``{"message", "code"}``); bodies it builds as free JSON list them alphabetically. Ids and distances are JSON
strings; distances are printed as C's ``printf("%f")`` prints a float32.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from coordinator.model import IndexType, MetricType
from coordinator.rest.routes import Route

JSON = "application/json"
CORS_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"access-control-allow-origin", b"*"),
    (b"access-control-allow-methods", b"GET, POST, OPTIONS, PUT, DELETE"),
    (b"access-control-allow-headers",
     b"DNT, User-Agent, X-Requested-With, If-Modified-Since, Cache-Control, Content-Type, Range, Authorization"),
    (b"access-control-max-age", b"1728000"),
)

# REST index names (they differ from the names inside CollectionInfo JSON: FLAT is IDMAP there).
INDEX_NAMES: dict[int, str] = {
    IndexType.FLAT: "FLAT", IndexType.IVF_FLAT: "IVFFLAT", IndexType.IVF_SQ8: "IVFSQ8", IndexType.RNSG: "RNSG",
    IndexType.IVF_SQ8H: "IVFSQ8H", IndexType.IVF_PQ: "IVFPQ", IndexType.HNSW: "HNSW", IndexType.ANNOY: "ANNOY",
}
INDEX_TYPES: dict[str, int] = {name: int(kind) for kind, name in INDEX_NAMES.items()}
METRIC_NAMES: dict[int, str] = {int(m): m.name for m in MetricType}
METRIC_TYPES: dict[str, int] = {name: value for value, name in METRIC_NAMES.items()}


@dataclass(frozen=True, slots=True)
class Request:
    route: Route
    params: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes = b""
    content_type: str = JSON
    # What a trace span of the request should carry (collection, nq, topk): set by the endpoint.
    attributes: Mapping[str, Any] = field(default_factory=dict)


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY)


def json_reply(value: Any, status: int = 200) -> Reply:
    return Reply(status, dumps(value))


def status_body(code: int, message: str) -> bytes:
    """Milvus 1.1's status object, in its declaration order."""
    return dumps({"message": message, "code": code})


def ok_dto(status: int) -> Reply:
    return Reply(status, b'{"message":"OK","code":0}')


OK_SORTED = b'{"code":0,"message":"OK"}'


def metric_name(value: int) -> str:
    return METRIC_NAMES.get(value, str(value))


def index_name(value: int) -> str:
    return INDEX_NAMES.get(value, str(value))


def hit_rows(row_num: int, ids: np.ndarray, distances: np.ndarray) -> list[list[tuple[int, float]]]:
    """The ``(id, distance)`` hits of each of a result's ``row_num`` rows, slots of id -1 (no row) left out."""
    id_rows = np.asarray(ids, dtype=np.int64).reshape(row_num, -1)
    dist_rows = np.asarray(distances, dtype=np.float32).reshape(row_num, -1)
    out = []
    for id_row, dist_row in zip(id_rows, dist_rows, strict=True):
        keep = id_row != -1
        out.append(list(zip(id_row[keep].tolist(), dist_row[keep].tolist(), strict=True)))
    return out


def search_result(row_num: int, ids: np.ndarray, distances: np.ndarray) -> bytes:
    """``{"num": nq, "result": [[{"distance", "id"}, ...], ...]}``; slots of id -1 (no row) are left out, so
    a row may be shorter than topk or empty (``[]``, never ``null``)."""
    if row_num <= 0:
        return b'{"num":0,"result":[]}'
    rows = []
    for hits in hit_rows(row_num, ids, distances):
        rows.append("[" + ",".join(f'{{"distance":"{d:f}","id":"{i}"}}' for i, d in hits) + "]")
    return f'{{"num":{row_num},"result":[{",".join(rows)}]}}'.encode()


def vector_value(record: Any) -> Any:
    """A RowRecord as JSON: byte values for binary data, float32 numbers (shortest form) otherwise, [] if empty."""
    if record.binary_data:
        return list(record.binary_data)
    if len(record.float_data):
        return np.asarray(record.float_data, dtype=np.float32)
    return []


def vectors_body(ids: Sequence[int], records: Sequence[Any], extra: Mapping[str, Any]) -> bytes:
    """``{..extra, "vectors": [{"id", "vector"}, ...]}`` with keys in Milvus 1.1's (alphabetical) order."""
    entries = [{"id": str(i), "vector": vector_value(r)} for i, r in zip(ids, records, strict=True)]
    return dumps(dict(sorted({**extra, "vectors": entries}.items())))


def index_params(extra_params: Sequence[Any]) -> Any:
    """The index parameters an ``IndexParam`` reply carries (its ``params`` entry, JSON text) as a value."""
    for kv in extra_params:
        if kv.key == "params":
            try:
                return orjson.loads(kv.value or "{}")
            except orjson.JSONDecodeError:
                return {}
    return {}
