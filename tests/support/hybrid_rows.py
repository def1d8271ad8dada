"""Node-level helpers for hybrid collections: rows holding every type's boundary values, and exact read-back checks
through GetEntityByID (attributes compared bit for bit with what the node must have stored)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from coordinator.hybrid.attrs import pack_attributes
from coordinator.hybrid.schema import HybridSchema
from coordinator.hybrid.types import STORAGE_DTYPE, DataType
from milvus_wire import milvus_pb2
from mishards import hybrid_client as hc
from tests.support import hybrid
from tests.support.requests import SUCCESS, assert_status, ok, unique_name


def boundaries(data_type: DataType) -> np.ndarray:
    """The values at a type's limits (and the awkward ones: -0.0, subnormals, 0.1), in its storage dtype."""
    dtype = STORAGE_DTYPE[data_type]
    if data_type is DataType.BOOL:
        return np.array([False, True], dtype=dtype)
    if data_type.is_integer:
        info = np.iinfo(dtype)
        return np.array([info.min, info.max, 0, -1, 1, info.min + 1, info.max - 1], dtype=dtype)
    finfo = np.finfo(dtype)
    return np.array([-finfo.max, finfo.max, -0.0, 0.0, finfo.smallest_subnormal, -finfo.tiny, 0.1, 1e-3],
                    dtype=dtype)


def columns(schema: HybridSchema, rows: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Scalar columns of ``rows`` rows: every boundary value of each type, then random values of its range."""
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for f in schema.scalars:
        dtype = STORAGE_DTYPE[f.type]
        edge = boundaries(f.type)
        if f.type is DataType.BOOL:
            rest = rng.integers(0, 2, rows).astype(dtype)
        elif f.type.is_integer:
            info = np.iinfo(dtype)
            rest = rng.integers(info.min, info.max, rows, dtype=dtype, endpoint=True)
        else:
            rest = (rng.standard_normal(rows) * 1e3).astype(dtype)
        rest[: min(rows, edge.size)] = edge[: min(rows, edge.size)]
        out[f.name] = rest
    return out


def vectors(schema: HybridSchema, rows: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed + 1000)
    if schema.is_binary:
        return rng.integers(0, 256, (rows, schema.dimension // 8), dtype=np.uint8)
    return rng.standard_normal((rows, schema.dimension)).astype(np.float32)


def describe(stub: Any, name: str) -> HybridSchema:
    reply = stub.DescribeHybridCollection(milvus_pb2.CollectionName(collection_name=name))
    assert reply.status.error_code == SUCCESS, reply.status.reason
    return hc.schema_of(reply)


def insert(stub: Any, schema: HybridSchema, cols: Mapping[str, np.ndarray], vecs: np.ndarray,
           ids: Iterable[int] | None = None, tag: str = "") -> np.ndarray:
    reply = stub.InsertEntity(hc.insert_param(schema, cols, vecs, list(ids) if ids is not None else None, tag))
    assert reply.status.error_code == SUCCESS, reply.status.reason
    return np.array(reply.entity_id_array, dtype=np.int64)


def entity(stub: Any, name: str, entity_id: int) -> Any:
    reply = stub.GetEntityByID(milvus_pb2.HEntityIdentity(collection_name=name, id=int(entity_id)))
    assert reply.HasField("status") and reply.status.error_code == SUCCESS, reply.status.reason
    return reply


def assert_rows_read_back(stub: Any, name: str, schema: HybridSchema, ids: np.ndarray,
                          cols: Mapping[str, np.ndarray], vecs: np.ndarray) -> None:
    """Every row comes back from GetEntityByID with the same attribute bytes (after the declared type's narrowing)
    and the same vector bytes."""
    for row, entity_id in enumerate(ids.tolist()):
        reply = entity(stub, name, entity_id)
        expected = pack_attributes(schema, {f: c[row:row + 1] for f, c in cols.items()})
        assert reply.entity_id == entity_id and reply.row_num == 1, (entity_id, reply.row_num)
        assert list(reply.field_names) == [f.name for f in schema.scalars] + [schema.vector.name]
        assert reply.attr_records == expected, f"attributes of id {entity_id} differ"
        got = hc.decode_entity(schema, reply)
        assert got.vectors.tobytes() == vecs[row].tobytes(), f"vector of id {entity_id} differs"
        for f, c in cols.items():
            assert got.columns[f].dtype == c.dtype and got.columns[f].tobytes() == c[row:row + 1].tobytes()


def assert_absent(stub: Any, name: str, ids: Iterable[int]) -> None:
    for entity_id in ids:
        reply = entity(stub, name, entity_id)
        assert (reply.row_num, reply.attr_records, len(reply.result_values)) == (0, b"", 0), entity_id


def cname(name: str) -> Any:
    return milvus_pb2.CollectionName(collection_name=name)


def flush(api: Any, name: str) -> None:
    ok(api.Flush(milvus_pb2.FlushParam(collection_name_array=[name])))


def count(api: Any, name: str) -> int:
    return int(ok(api.CountHybridCollection(cname(name))).collection_row_count)


def new_collection(api: Any, prefix: str = "h", **kwargs: Any) -> HybridSchema:
    """A new hybrid collection of ``tests.support.hybrid.mapping(**kwargs)`` under a unique name; its schema."""
    name = unique_name(prefix)
    assert_status(api.CreateHybridCollection(hybrid.mapping(name=name, **kwargs)), SUCCESS, "OK")
    return describe(api, name)
