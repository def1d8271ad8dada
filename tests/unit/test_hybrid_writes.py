"""Pure pieces of the hybrid write path: buffered scalar columns, idempotency keys of entity inserts, entity ids,
and the metadata answers computed from a catalog snapshot."""

from __future__ import annotations

from types import MappingProxyType

import numpy as np
import pytest

from coordinator.catalog import CatalogSnapshot
from coordinator.errors import ErrorCode, MilvusError
from coordinator.hybrid import metadata as hybrid_meta
from coordinator.hybrid.schema import schema_to_json
from coordinator.model import Collection, IdMode, IndexType, MetricType
from node.hybrid_rpcs import entity_ids, insert_bytes_per_row
from node.idempotency import content_key
from node.membuffer import MemBuffer
from tests.support import hybrid


def _columns(*values: int) -> tuple[np.ndarray, np.ndarray]:
    return np.array(values, dtype=np.int8), np.array(values, dtype=np.float64) / 2


def test_buffered_scalar_columns_follow_their_rows_through_deletes_and_restores() -> None:
    buf = MemBuffer()
    buf.insert(1, 10, np.array([1, 2, 3], np.int64), np.zeros((3, 2), np.float32), _columns(1, 2, 3))
    buf.insert(2, 11, np.array([4], np.int64), np.zeros((1, 2), np.float32), _columns(4))
    buf.insert(3, 10, np.array([5, 6], np.int64), np.zeros((2, 2), np.float32), _columns(5, 6))
    assert buf.nbytes == 6 * (8 + 8 + 1 + 8)
    buf.delete(4, 0, np.array([2, 6], np.int64))
    rows = {pid: parts.joined() for pid, parts in buf.partition_rows().items()}
    assert rows[10].ids.tolist() == [1, 3, 5]
    assert [c.tolist() for c in rows[10].scalars] == [[1, 3, 5], [0.5, 1.5, 2.5]]
    assert rows[10].scalars[0].dtype == np.int8 and rows[11].scalars[1].tolist() == [2.0]
    # A failed flush puts the buffer back in front of the newer one; deletes made since apply to it.
    newer = MemBuffer()
    newer.insert(5, 10, np.array([7], np.int64), np.zeros((1, 2), np.float32), _columns(7))
    newer.delete(6, 0, np.array([1], np.int64))
    newer.restore_before(buf)
    again = {pid: parts.joined() for pid, parts in newer.partition_rows().items()}
    assert again[10].ids.tolist() == [3, 5, 7]
    assert [c.tolist() for c in again[10].scalars] == [[3, 5, 7], [1.5, 2.5, 3.5]]


def test_plain_rows_have_no_scalar_columns_and_mixed_rows_are_refused() -> None:
    buf = MemBuffer()
    buf.insert(1, 10, np.array([1], np.int64), np.zeros((1, 2), np.float32))
    assert buf.partition_rows()[10].width == 0
    assert buf.rows_by_partition()[10][0].tolist() == [1]
    buf.insert(2, 10, np.array([2], np.int64), np.zeros((1, 2), np.float32), _columns(2))
    with pytest.raises(ValueError, match="differ in their scalar columns"):
        buf.partition_rows()


def test_entity_insert_keys_cover_the_attributes() -> None:
    ids = np.arange(3, dtype=np.int64)
    vectors = np.ones((3, 4), np.float32)
    plain = content_key(1, 5, 2, ids, vectors)
    assert content_key(1, 5, 2, ids, vectors, ()) == plain  # a plain insert's key is unchanged
    cols = (np.array([1, 2, 3], np.int32), np.array([0.5, 0.25, 0.0]))
    key = content_key(1, 5, 2, ids, vectors, cols)
    assert key == content_key(1, 5, 2, ids, vectors, (cols[0].copy(), cols[1].copy())) and key != plain
    negative_zero = (cols[0], np.array([0.5, 0.25, -0.0]))  # equal as numbers, another value stored
    other_type = (cols[0].astype(np.int64), cols[1])
    assert len({key, content_key(1, 5, 2, ids, vectors, negative_zero),
                content_key(1, 5, 2, ids, vectors, other_type)}) == 3


def _collection(cid: int, name: str, schema_text: str = "", id_mode: IdMode = IdMode.UNSET) -> Collection:
    return Collection(cid, name, hybrid.DIM, MetricType.L2, 16, IndexType.FLAT, "{}", id_mode, 0, 0, schema_text)


def _snapshot(*colls: Collection) -> CatalogSnapshot:
    return CatalogSnapshot(1, MappingProxyType({c.name: c for c in colls}), MappingProxyType({c.id: c for c in colls}),
                           MappingProxyType({}), MappingProxyType({}))


def test_metadata_answers_from_a_snapshot() -> None:
    shop = hybrid.schema(name="shop")
    also = hybrid.schema(name="also", scalars={"x": 4})
    snap = _snapshot(_collection(2, "shop", schema_to_json(shop)), _collection(3, "plain"),
                     _collection(4, "also", schema_to_json(also)))
    assert hybrid_meta.has_hybrid_collection(snap, "shop") is True
    assert hybrid_meta.has_hybrid_collection(snap, "plain") is False
    assert hybrid_meta.has_hybrid_collection(snap, "none") is False
    coll, schema = hybrid_meta.hybrid_collection(snap, "shop")
    assert (coll.id, schema) == (2, shop)
    described = hybrid_meta.describe(coll, schema)
    assert described.collection_id == 2 and [f.name for f in described.fields] == [f.name for f in shop.fields]
    assert [m.collection_name for m in hybrid_meta.hybrid_mappings(snap)] == ["also", "shop"]
    for name, reason in [("plain", "Collection plain is not a hybrid collection"),
                         ("none", "Collection none does not exist.")]:
        with pytest.raises(MilvusError) as caught:
            hybrid_meta.hybrid_collection(snap, name)
        assert caught.value.code is ErrorCode.COLLECTION_NOT_EXISTS and caught.value.reason.startswith(reason)
    with pytest.raises(MilvusError) as bad_name:
        hybrid_meta.has_hybrid_collection(snap, "")
    assert bad_name.value.code is ErrorCode.ILLEGAL_COLLECTION_NAME


def test_schema_size_limit_and_row_weight() -> None:
    schema = hybrid.schema(name="w")
    assert hybrid_meta.catalog_text(schema) == schema_to_json(schema)
    big = hybrid.schema(name="w", vector_params='{"metric_type": 1, "pad": "' + "é" * 33_000 + '"}')
    with pytest.raises(MilvusError) as caught:
        hybrid_meta.catalog_text(big)  # fewer than 64 KiB characters, more than 64 KiB of UTF-8
    assert caught.value.code is ErrorCode.ILLEGAL_ARGUMENT and "at most 65536" in caught.value.reason
    coll = _collection(1, "w", schema_to_json(schema))
    assert insert_bytes_per_row(coll, schema) == hybrid.DIM * 4 + 8 * len(schema.scalars)


def test_entity_ids_follow_inserts_rules() -> None:
    auto = _collection(1, "a")
    assert entity_ids([], 3, auto) is None
    got = entity_ids([5, 6, 7], 3, auto)
    assert got is not None and got.tolist() == [5, 6, 7] and got.dtype == np.int64
    for raw, mode, reason in [([1, 2], IdMode.UNSET, "must be equal"), ([1, -1, 2], IdMode.UNSET, "non-negative"),
                              ([], IdMode.USER, "user-defined")]:
        with pytest.raises(MilvusError) as caught:
            entity_ids(raw, 3, _collection(1, "a", id_mode=mode))
        assert caught.value.code is ErrorCode.ILLEGAL_VECTOR_ID and reason in caught.value.reason
