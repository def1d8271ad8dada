"""Scalar columns of hybrid segments on storage (scalar.<i>.npy beside ids and vectors) and in the segment cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from coordinator.errors import FileNotFound, StorageError
from coordinator.hybrid.types import STORAGE_DTYPE, DataType
from coordinator.model import IndexType
from node.indexes import build_index
from node.kernels import LiveMask
from node.segment_cache import LoadedSegment, SegmentCache
from node.storage import SegmentStore, scalar_file
from tests.support import hybrid

SCHEMA = hybrid.schema()  # i8, i16, i32, i64, b, f, d then the vector field v


def _columns(rows: int) -> list[np.ndarray]:
    rng = np.random.default_rng(5)
    out = []
    for f in SCHEMA.scalars:
        dtype = STORAGE_DTYPE[f.type]
        if f.type is DataType.BOOL:
            out.append(rng.integers(0, 2, rows).astype(dtype))
        elif f.type.is_integer:
            info = np.iinfo(dtype)
            out.append(rng.integers(info.min, info.max, rows, dtype=dtype, endpoint=True))
        else:
            out.append(rng.standard_normal(rows).astype(dtype))
    return out


def test_scalar_columns_are_written_beside_the_vectors_and_read_back_memory_mapped(tmp_path: Path) -> None:
    store = SegmentStore(tmp_path)
    store.prepare()
    ids = np.arange(40, 80, dtype=np.int64)
    vectors = np.random.default_rng(1).standard_normal((40, hybrid.DIM)).astype(np.float32)
    columns = _columns(40)
    size = store.write_segment(3, "123", ids, vectors, columns)
    folder = store.segment_dir(3, "123")
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(["ids.npy", "vectors.npy", *(scalar_file(i) for i in range(len(columns)))])
    assert size == sum(p.stat().st_size for p in folder.iterdir())

    got = store.load_scalars(3, "123", SCHEMA, ["d", "i8", "b"])
    assert list(got) == ["d", "i8", "b"]
    for name, column in got.items():
        expected = columns[[f.name for f in SCHEMA.scalars].index(name)]
        assert isinstance(column, np.memmap)
        assert column.dtype == expected.dtype and column.tobytes() == expected.tobytes()

    with pytest.raises(StorageError, match="no scalar field 'v'"):
        store.load_scalars(3, "123", SCHEMA, ["v"])
    store.write_segment(3, "124", ids, vectors)  # a plain segment: no scalar files
    with pytest.raises(FileNotFound):
        store.load_scalars(3, "124", SCHEMA, ["i8"])


def test_a_column_of_another_length_is_refused_and_leaves_no_folder(tmp_path: Path) -> None:
    store = SegmentStore(tmp_path)
    store.prepare()
    ids = np.arange(5, dtype=np.int64)
    vectors = np.zeros((5, 4), np.float32)
    with pytest.raises(StorageError, match="scalar column"):
        store.write_segment(1, "7", ids, vectors, [np.zeros(4, np.int8)])
    assert store.segment_names(1) == []


def test_the_cache_keeps_loaded_columns_and_counts_their_bytes(tmp_path: Path) -> None:
    cache = SegmentCache(1 << 30)
    vectors = np.zeros((10, 4), np.float32)
    item = LoadedSegment(1, np.arange(10, dtype=np.int64), build_index(IndexType.FLAT, vectors, SCHEMA.metric, {}),
                         LiveMask.build(10, np.zeros(0, np.int64)), 0, "")
    cache.get(1, 0, "", lambda: item, lambda i: i.live)
    before = cache.used_bytes
    calls: list[list[str]] = []

    def load(names: list[str]) -> dict[str, np.ndarray]:
        calls.append(names)
        return {n: np.arange(10, dtype=np.int32) for n in names}

    first = cache.columns(item, ["i32", "d"], load)
    again = cache.columns(item, ["d", "i32", "i64"], load)
    assert calls == [["i32", "d"], ["i64"]]
    assert first["i32"] is again["i32"]
    assert cache.used_bytes == before + 3 * 40
    cache.evict([1])
    assert cache.used_bytes == 0

