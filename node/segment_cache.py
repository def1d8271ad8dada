"""Loaded segments: search structures in an LRU bounded in bytes (``cache.cache_size``)."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from node.indexes import SegmentIndex
from node.kernels import LiveMask

log = logging.getLogger(__name__)


@dataclass
class LoadedSegment:
    segment_id: int
    ids: np.ndarray  # int64, mmapped from the segment folder
    index: SegmentIndex
    live: LiveMask
    delete_version: int
    index_file: str  # the built index in use ('' = exact search over the raw rows)
    _lookup: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)
    # Scalar columns of a hybrid collection loaded so far (memory-mapped, aligned with ``ids``); see
    # :meth:`SegmentCache.columns`.
    scalars: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def nbytes(self) -> int:
        return self.index.nbytes + int(self.ids.nbytes) + sum(int(c.nbytes) for c in self.scalars.values())

    def lookup(self) -> tuple[np.ndarray, np.ndarray]:
        """Sorted ids and the row offset of each, for vectorised id look-ups."""
        if self._lookup is None:
            order = np.argsort(self.ids, kind="stable")
            self._lookup = (np.asarray(self.ids)[order], order)
        return self._lookup

    def offsets_of(self, wanted: np.ndarray) -> np.ndarray:
        """Offset of the live row holding each wanted id, or -1."""
        sorted_ids, order = self.lookup()
        pos = np.searchsorted(sorted_ids, wanted)
        pos_c = np.minimum(pos, max(0, sorted_ids.size - 1))
        found = (pos < sorted_ids.size) & (sorted_ids[pos_c] == wanted) if sorted_ids.size else np.zeros(
            wanted.shape, dtype=bool
        )
        offs = np.where(found, order[pos_c] if sorted_ids.size else 0, -1).astype(np.int64)
        if self.live.mask is not None:
            ok = offs >= 0
            ok[ok] = self.live.mask[offs[ok]]
            offs = np.where(ok, offs, -1)
        return offs


class SegmentCache:
    def __init__(self, capacity_bytes: int) -> None:
        self.capacity_bytes = capacity_bytes
        self._items: OrderedDict[int, LoadedSegment] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[int, threading.Lock] = {}
        self.used_bytes = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    def hit(self, segment_id: int, delete_version: int, index_file: str) -> LoadedSegment | None:
        """The loaded segment when it is held with this index file and delete-log version (counted as a hit, as
        :meth:`get` counts it), else None (nothing counted: :meth:`get` loads or refreshes it)."""
        with self._lock:
            item = self._items.get(segment_id)
            if item is None or item.index_file != index_file or item.delete_version != delete_version:
                return None
            self._items.move_to_end(segment_id)
            self.hits += 1
            return item

    def get(self, segment_id: int, delete_version: int, index_file: str, load: Callable[[], LoadedSegment],
            reload_deletes: Callable[[LoadedSegment], LiveMask], force: bool = False) -> LoadedSegment:
        """The loaded segment, loading it (once, even under concurrency) on a miss.

        An entry loaded with another index file (the index was built, rebuilt or dropped since) is
        replaced; one with another delete-log version only reloads its live mask.
        """
        with self._lock:
            item = self._items.get(segment_id)
            if item is not None and item.index_file != index_file:
                self._items.pop(segment_id)
                self.used_bytes -= item.nbytes
                item = None
            if item is not None:
                self._items.move_to_end(segment_id)
                self.hits += 1
            else:
                self.misses += 1
            key_lock = self._loading.setdefault(segment_id, threading.Lock())
        if item is None:
            with key_lock:
                with self._lock:
                    item = self._items.get(segment_id)
                if item is None or item.index_file != index_file:
                    item = load()
                    self._put(item, force)
        if item.delete_version != delete_version:
            with key_lock:
                if item.delete_version != delete_version:
                    item.live = reload_deletes(item)
                    item.delete_version = delete_version
        return item

    def _put(self, item: LoadedSegment, force: bool) -> None:
        with self._lock:
            self._items[item.segment_id] = item
            self.used_bytes += item.nbytes
            while self.used_bytes > self.capacity_bytes and len(self._items) > 1:
                oldest_id, oldest = next(iter(self._items.items()))
                if oldest_id == item.segment_id or force:
                    break
                self._items.popitem(last=False)
                self.used_bytes -= oldest.nbytes
                self.evictions += 1

    def columns(self, item: LoadedSegment, fields: Sequence[str],
                load: Callable[[list[str]], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        """The named scalar columns of a loaded segment: those not loaded yet are loaded (``load(missing)``, once
        even under concurrency) and kept with the entry, their bytes counted in the cache's use."""
        with self._lock:
            missing = [f for f in dict.fromkeys(fields) if f not in item.scalars]
            key_lock = self._loading.setdefault(item.segment_id, threading.Lock())
        if missing:
            with key_lock:
                missing = [f for f in missing if f not in item.scalars]
                if missing:
                    loaded = load(missing)
                    with self._lock:
                        item.scalars.update({f: loaded[f] for f in missing})
                        if self._items.get(item.segment_id) is item:
                            self.used_bytes += sum(int(loaded[f].nbytes) for f in missing)
        return {f: item.scalars[f] for f in fields}

    def resize(self, capacity_bytes: int) -> None:
        """A new capacity, in effect at once: least recently used segments leave until the rest fits."""
        with self._lock:
            self.capacity_bytes = capacity_bytes
            while self.used_bytes > self.capacity_bytes and self._items:
                _, oldest = self._items.popitem(last=False)
                self.used_bytes -= oldest.nbytes
                self.evictions += 1

    def evict(self, segment_ids: list[int] | set[int]) -> int:
        removed = 0
        with self._lock:
            for sid in segment_ids:
                item = self._items.pop(sid, None)
                if item is not None:
                    self.used_bytes -= item.nbytes
                    removed += 1
                self._loading.pop(sid, None)
        return removed

    def retain(self, live_ids: set[int]) -> None:
        """Drop entries of segments that no longer exist."""
        with self._lock:
            gone = [sid for sid in self._items if sid not in live_ids]
        self.evict(gone)

    def contains(self, segment_id: int) -> bool:
        with self._lock:
            return segment_id in self._items

    def segment_ids(self) -> list[int]:
        """The ids of the segments held, in id order."""
        with self._lock:
            return sorted(self._items)

    def __len__(self) -> int:
        return len(self._items)
