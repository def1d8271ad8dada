"""Warm-up that reads a segment's files, not only maps them.

Loading a segment maps its files: the ids (``ids.npy``), IVF codes and inverted lists (``IO_FLAG_MMAP_IFC``)
and ANNOY trees stay on disk until a search touches them, so the first searches of a fresh read node would pay
for the disk reads (major page faults, in the search's own thread). A warm-up (a read node's share before it
reports ready, a ``PreloadCollection``) therefore also reads those files sequentially through the page cache, in
the warming thread (``os.readv`` releases the interpreter lock: searches meanwhile are not held up), and asks
the kernel to map the ids' pages into this process (``MADV_POPULATE_READ``, also outside the lock). What an
index loads into memory anyway (FLAT's rows, HNSW and NSG graphs) is not read again.

Bounded: one warm-up reads at most ``warm_read_limit`` bytes (default the cache's capacity: pages beyond it would
be evicted by the segments loaded after them), in 1 MiB reads into one reused buffer.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import mmap
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from coordinator.model import IndexType, SegmentState

log = logging.getLogger(__name__)

CHUNK = 1 << 20
# Index kinds whose file stays mapped after loading (their search reads it): IVF kinds with IO_FLAG_MMAP_IFC, ANNOY.
MAPPED_KINDS = frozenset({IndexType.IVF_FLAT, IndexType.IVF_SQ8, IndexType.IVF_SQ8H, IndexType.IVF_PQ,
                          IndexType.ANNOY})
MADV_POPULATE_READ = getattr(mmap, "MADV_POPULATE_READ", 22)  # Linux 5.14
PAGE = mmap.PAGESIZE


@dataclass(frozen=True, slots=True)
class PageInReport:
    files: int
    bytes_read: int
    seconds: float


def mapped_files(segment_dir: Path, index_path: Path | None, index_type: int) -> list[Path]:
    """The files of a segment its loaded form keeps mapped: the ids, and the index file of a mapped kind."""
    files = [segment_dir / "ids.npy"]
    if index_path is not None and index_type in MAPPED_KINDS:
        files.append(index_path)
    return files


def read_through(path: Path, limit: int, buffer: bytearray) -> int:
    """Read ``path`` from the start (at most ``limit`` bytes) so that its pages are in the page cache; the bytes
    read (0 when it cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return 0
    total = 0
    try:
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        view = memoryview(buffer)
        while total < limit:
            got = os.readv(fd, [view[:min(len(buffer), limit - total)]])
            if got <= 0:
                break
            total += got
    except OSError as exc:
        log.debug("reading %s for the warm-up stopped: %s", path, exc)
    finally:
        os.close(fd)
    return total


@functools.cache
def libc_function(name: str, argtypes: tuple[Any, ...]) -> Any:
    """A libc function through ctypes (a foreign call releases the interpreter lock, as a long populate needs);
    None where libc cannot be loaded."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        function = getattr(libc, name)
    except (OSError, AttributeError):
        return None
    function.argtypes = list(argtypes)
    function.restype = ctypes.c_int
    return function


def page_range(address: int, nbytes: int) -> tuple[int, int]:
    """The page-aligned start and length covering ``nbytes`` from ``address``."""
    start = address - address % PAGE
    end = address + nbytes
    return start, end - start


def populate(array: np.ndarray) -> bool:
    """Map ``array``'s pages into this process ahead of use (best effort: False when the kernel refuses)."""
    if array.nbytes == 0:
        return True
    madvise = libc_function("madvise", (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int))
    if madvise is None:
        return False
    start, length = page_range(int(array.ctypes.data), int(array.nbytes))
    return int(madvise(start, length, MADV_POPULATE_READ)) == 0


def resident_share(files: Sequence[Path]) -> float:
    """The share of the files' pages in the page cache (``mincore`` over a read-only mapping of each)."""
    mincore = libc_function("mincore", (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p))
    if mincore is None:
        raise OSError("mincore is not available")
    in_memory = total = 0
    for path in files:
        size = path.stat().st_size
        if size == 0:
            continue
        pages = (size + PAGE - 1) // PAGE
        with open(path, "rb") as fh, mmap.mmap(fh.fileno(), size, prot=mmap.PROT_READ) as mapped:
            flags = ctypes.create_string_buffer(pages)
            view = np.frombuffer(mapped, dtype=np.uint8)
            failed = mincore(int(view.ctypes.data), size, flags)
            del view  # the mapping closes only without views
            if failed:
                raise OSError(ctypes.get_errno(), f"mincore of {path} failed")
            in_memory += sum(b & 1 for b in flags.raw)
            total += pages
    return in_memory / total if total else 0.0


class PageIn:
    """Reads the mapped files of segments as they are warmed, within a byte budget per warm-up."""

    def __init__(self, store: Any, limit: int) -> None:
        self.store = store
        self.limit = limit

    def files(self, collection_id: int, seg: Any) -> list[Path]:
        index = (self.store.index_path(collection_id, seg.name, seg.index_file)
                 if seg.state is SegmentState.INDEX and seg.index_file else None)
        return mapped_files(self.store.segment_dir(collection_id, seg.name), index, int(seg.index_type))

    def segments(self, loaded: Sequence[tuple[int, Any, Any]]) -> PageInReport:
        """Read in the files of the ``loaded`` segments (collection id, segment, its loaded form whose ids are
        mapped) in order, until the budget is spent."""
        started = time.perf_counter()
        left = self.limit
        files = total = 0
        buffer = bytearray(CHUNK) if left > 0 else bytearray()
        for collection_id, seg, item in loaded:
            if left <= 0:
                break
            for path in self.files(collection_id, seg):
                got = read_through(path, left, buffer)
                left -= got
                total += got
                files += 1 if got else 0
            if item is not None:
                populate(item.ids)
        return PageInReport(files, total, time.perf_counter() - started)
