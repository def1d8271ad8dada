"""The node's .npy reader: what numpy.save writes reads back identically, without ast (not thread-safe on 3.11)."""

from __future__ import annotations

import ast
import threading
from pathlib import Path

import numpy as np
import pytest

from node import npy
from node.storage import SegmentStore


@pytest.mark.parametrize("array", [
    np.arange(12, dtype=np.int64),
    np.random.default_rng(1).standard_normal((7, 5)).astype(np.float32),
    np.random.default_rng(2).integers(0, 256, size=(4, 16), dtype=np.uint8),
    np.zeros(0, dtype=np.int64),
    np.zeros((0, 8), dtype=np.float32),
    np.float32(3.5).reshape(()),
])
@pytest.mark.parametrize("mmap", [True, False])
def test_reads_what_numpy_writes(tmp_path: Path, array: np.ndarray, mmap: bool) -> None:
    path = tmp_path / "a.npy"
    np.save(path, array, allow_pickle=False)
    got = npy.load(path, mmap)
    assert got.dtype == array.dtype and got.shape == array.shape
    assert np.array_equal(np.asarray(got), array)


def test_refuses_what_it_cannot_read(tmp_path: Path) -> None:
    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"not numpy at all")
    with pytest.raises(ValueError):
        npy.load(bad, mmap=True)
    fortran = tmp_path / "f.npy"
    np.save(fortran, np.asfortranarray(np.ones((3, 2), np.float32)))
    with pytest.raises(ValueError):
        npy.load(fortran, mmap=False)
    short = tmp_path / "short.npy"
    np.save(short, np.arange(100, dtype=np.int64))
    short.write_bytes(short.read_bytes()[:-16])
    with pytest.raises(ValueError):
        npy.load(short, mmap=False)
    with pytest.raises(ValueError):
        npy.parse_header("{'descr': '|O', 'fortran_order': False, 'shape': (3,), }")


def test_segment_files_load_without_ast_from_many_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = SegmentStore(tmp_path)
    store.prepare()
    ids = np.arange(50, dtype=np.int64)
    vectors = np.random.default_rng(3).standard_normal((50, 4)).astype(np.float32)
    store.write_segment(1, "100", ids, vectors)
    store.write_deletes(1, "100", 7, np.array([2, 9], np.int64))

    def no_ast(*_args: object) -> object:
        raise AssertionError("ast.literal_eval is not thread-safe on CPython 3.11 (python/cpython#106905)")

    monkeypatch.setattr(ast, "literal_eval", no_ast)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(200):
                assert np.array_equal(store.ids(1, "100"), ids)
                assert np.array_equal(store.vectors(1, "100"), vectors)
                assert store.deletes(1, "100", 7).tolist() == [2, 9]
        except BaseException as exc:  # collected and reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:1]
