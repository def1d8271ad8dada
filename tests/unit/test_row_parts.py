"""Rows held as parts: slicing across part boundaries, live rows without copies, and the .npy files written from
parts (byte for byte what ``np.save`` writes for the joined array)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from coordinator.errors import StorageError
from node.row_parts import RowParts, Rows, live_part
from node.storage import SegmentStore, _write_array


def _parts(sizes: list[int], dim: int = 3, width: int = 1) -> RowParts:
    out, start = [], 0
    for n in sizes:
        ids = np.arange(start, start + n, dtype=np.int64)
        vectors = np.repeat(ids[:, None].astype(np.float32), dim, axis=1)
        out.append(Rows(ids, vectors, tuple(ids.astype(np.int32) * (i + 2) for i in range(width))))
        start += n
    return RowParts.of(out)


@pytest.mark.parametrize(("start", "stop"), [(0, 10), (0, 3), (2, 7), (3, 4), (4, 10), (9, 10), (5, 5), (0, 0)])
def test_sliced_matches_the_joined_rows(start: int, stop: int) -> None:
    rows = _parts([3, 0, 4, 3])  # an empty part is dropped
    assert len(rows.parts) == 3 and rows.count == 10
    part = rows.sliced(start, stop)
    joined = rows.joined()
    assert part.count == stop - start
    got = part.joined() if part.parts else Rows(np.zeros(0, np.int64), np.zeros((0, 3), np.float32), (np.zeros(0),))
    assert got.ids.tolist() == joined.ids[start:stop].tolist()
    assert got.vectors[:, 0].tolist() == joined.vectors[start:stop, 0].tolist()
    assert got.scalars[0].tolist() == joined.scalars[0][start:stop].tolist()
    for p in part.parts:  # views of the parts, never copies
        assert any(np.shares_memory(p.vectors, q.vectors) for q in rows.parts)


def test_live_part_copies_only_when_rows_are_dropped() -> None:
    ids = np.arange(4, dtype=np.int64)
    vectors = np.ones((4, 2), dtype=np.float32)
    kept = live_part(ids, vectors, (ids * 2,), np.ones(4, dtype=bool))
    assert kept.vectors is vectors and kept.ids is ids
    assert live_part(ids, vectors, (), None).vectors is vectors
    dropped = live_part(ids, vectors, (ids * 2,), np.array([True, False, True, False]))
    assert dropped.ids.tolist() == [0, 2] and dropped.scalars[0].tolist() == [0, 4]
    assert not np.shares_memory(dropped.vectors, vectors)


def test_parts_must_agree_on_scalar_columns() -> None:
    ids = np.arange(2, dtype=np.int64)
    vectors = np.zeros((2, 2), dtype=np.float32)
    with pytest.raises(ValueError, match="scalar columns"):
        RowParts.of([Rows(ids, vectors, (ids,)), Rows(ids, vectors)])


@pytest.mark.parametrize("dtype", [np.float32, np.uint8, np.int64, np.float64, np.bool_])
def test_npy_written_from_parts_is_what_np_save_writes(tmp_path: Path, dtype: type) -> None:
    rng = np.random.default_rng(1)
    whole: np.ndarray = (rng.random((1000, 5)) * 100).astype(dtype)
    pieces = [whole[:1], whole[1:400], whole[400:400], whole[400:]]
    path = tmp_path / "a.npy"
    size = _write_array(path, pieces)
    expected = io.BytesIO()
    np.save(expected, whole, allow_pickle=False)
    assert path.read_bytes() == expected.getvalue()
    assert size == len(expected.getvalue())
    assert np.array_equal(np.load(path, mmap_mode="r"), whole)


def test_parts_of_other_dtypes_or_shapes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="cannot form one array"):
        _write_array(tmp_path / "b.npy", [np.zeros((2, 3), np.float32), np.zeros((2, 3), np.float64)])
    with pytest.raises(StorageError, match="cannot form one array"):
        _write_array(tmp_path / "c.npy", [np.zeros((2, 3), np.float32), np.zeros((2, 4), np.float32)])
    with pytest.raises(StorageError, match="Nothing to write"):
        _write_array(tmp_path / "d.npy", [])


def test_segment_written_from_parts_reads_back_whole(tmp_path: Path) -> None:
    store = SegmentStore(tmp_path)
    store.prepare()
    rows = _parts([5, 7, 1], dim=4, width=2)
    store.write_segment(1, "42", rows.ids(), rows.vectors(), [rows.scalar(0), rows.scalar(1)])
    joined = rows.joined()
    assert np.array_equal(store.ids(1, "42"), joined.ids)
    assert np.array_equal(store.vectors(1, "42"), joined.vectors)
    assert np.array_equal(store.scalar(1, "42", 1), joined.scalars[1])
    with pytest.raises(StorageError, match="scalar column of 12 values for 13 rows"):
        store.write_segment(1, "43", rows.ids(), rows.vectors(), [rows.sliced(0, 12).scalar(0)])
    assert not (tmp_path / "collections" / "1" / "43").exists()
