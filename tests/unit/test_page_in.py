"""Warm-up reads of segment files (node/page_in.py), on real files: which files, how much, and that their pages
end up in memory."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from coordinator.model import IndexType, SegmentState
from node.page_in import PAGE, PageIn, mapped_files, page_range, populate, read_through, resident_share


def dropped(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def test_a_read_brings_the_pages_in_within_its_limit(tmp_path: Path) -> None:
    path = tmp_path / "index-1"
    path.write_bytes(os.urandom(16 << 20))
    dropped(path)
    assert resident_share([path]) < 0.1  # written back and dropped: as on a machine that has not read it
    buffer = bytearray(1 << 20)
    assert read_through(path, 1 << 20, buffer) == 1 << 20  # the limit stops it
    assert resident_share([path]) < 0.5  # the first MiB (and the kernel's read-ahead) only
    assert read_through(path, 100 << 20, buffer) == 16 << 20
    assert resident_share([path]) == 1.0
    assert read_through(tmp_path / "missing", 1 << 20, buffer) == 0


def test_which_files_a_loaded_segment_keeps_mapped(tmp_path: Path) -> None:
    index = tmp_path / "index-2"
    assert mapped_files(tmp_path, index, IndexType.IVF_FLAT) == [tmp_path / "ids.npy", index]
    assert mapped_files(tmp_path, index, IndexType.ANNOY) == [tmp_path / "ids.npy", index]
    assert mapped_files(tmp_path, index, IndexType.HNSW) == [tmp_path / "ids.npy"]  # loaded in memory anyway
    assert mapped_files(tmp_path, None, IndexType.FLAT) == [tmp_path / "ids.npy"]


def test_page_in_reads_segments_in_order_until_the_budget_is_spent(tmp_path: Path) -> None:
    class Store:
        def segment_dir(self, collection_id: int, name: str) -> Path:
            return tmp_path / str(collection_id) / name

        def index_path(self, collection_id: int, name: str, file: str) -> Path:
            return self.segment_dir(collection_id, name) / file

    segs, loaded = [], []
    for name in ("a", "b", "c"):
        folder = tmp_path / "7" / name
        folder.mkdir(parents=True)
        ids = np.arange(100_000, dtype=np.int64)
        np.save(folder / "ids.npy", ids)
        (folder / "index-1").write_bytes(os.urandom(1 << 20))
        seg = SimpleNamespace(name=name, state=SegmentState.INDEX, index_file="index-1", index_type=IndexType.IVF_FLAT)
        segs.append(seg)
        loaded.append((7, seg, SimpleNamespace(ids=np.load(folder / "ids.npy", mmap_mode="r"))))
    per_segment = (tmp_path / "7" / "a" / "ids.npy").stat().st_size + (1 << 20)
    report = PageIn(Store(), per_segment + 10).segments(loaded)
    assert report.bytes_read == per_segment + 10 and report.files == 3  # a, then 10 bytes of b's ids
    everything = PageIn(Store(), 100 << 20).segments(loaded)
    assert everything.bytes_read == 3 * per_segment and everything.files == 6
    assert PageIn(Store(), 0).segments(loaded).bytes_read == 0


def test_populate_maps_an_arrays_pages(tmp_path: Path) -> None:
    path = tmp_path / "ids.npy"
    np.save(path, np.arange(1 << 20, dtype=np.int64))
    mapped = np.load(path, mmap_mode="r")
    assert populate(mapped) and populate(mapped[:0])
    assert resident_share([path]) == 1.0
    assert page_range(PAGE + 5, 10) == (PAGE, 15) and page_range(2 * PAGE, PAGE) == (2 * PAGE, PAGE)
