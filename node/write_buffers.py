"""The writer's insert buffers: acknowledged rows and deletes of each collection awaiting a flush, and the
buffers a flush has taken but not yet published."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from node.membuffer import MemBuffer
from node.wal import InsertRecord, Record


class WriteBuffers:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.lock = threading.Lock()
        self.by_collection: dict[int, MemBuffer] = {}
        self._flushing: dict[int, int] = {}  # collection id -> first LSN of a buffer being flushed

    def apply(self, lsn: int, record: Record) -> bool:
        """Add a durable WAL record (in LSN order). True when it is the first of an empty buffer (a new flush
        deadline starts with it)."""
        with self.lock:
            buf = self.by_collection.setdefault(record.collection_id, MemBuffer())
            first = buf.empty
            if first:
                buf.first_at = self.clock()
            if isinstance(record, InsertRecord):
                buf.insert(lsn, record.partition_id, record.ids, record.vectors, record.scalars)
            else:
                buf.delete(lsn, record.partition_id, record.ids)
            return first

    def take(self, collection_id: int) -> MemBuffer | None:
        """The collection's buffer for a flush (an empty one takes its place), or None if nothing waits."""
        with self.lock:
            buf = self.by_collection.get(collection_id)
            if buf is None or buf.empty:
                return None
            self.by_collection[collection_id] = MemBuffer()
            self._flushing[collection_id] = buf.first_lsn
            return buf

    def done_flushing(self, collection_id: int) -> None:
        with self.lock:
            self._flushing.pop(collection_id, None)

    def restore(self, collection_id: int, older: MemBuffer) -> None:
        """Put back a buffer whose flush failed, in front of what arrived since."""
        with self.lock:
            self.by_collection.setdefault(collection_id, MemBuffer()).restore_before(older)

    def drop(self, collection_id: int) -> None:
        with self.lock:
            self.by_collection.pop(collection_id, None)

    def drop_partition(self, collection_id: int, partition_id: int) -> None:
        with self.lock:
            buf = self.by_collection.get(collection_id)
            if buf is not None:
                buf.drop_partition(partition_id)

    def collections(self) -> list[int]:
        """Collections with buffered rows or deletes."""
        with self.lock:
            return [cid for cid, buf in self.by_collection.items() if not buf.empty]

    def nbytes(self) -> int:
        with self.lock:
            return sum(b.nbytes for b in self.by_collection.values())

    def oldest_at(self) -> float | None:
        """When the oldest buffered (acknowledged, unflushed) record arrived (``clock`` time), or None."""
        with self.lock:
            times = [b.first_at for b in self.by_collection.values() if not b.empty]
        return min(times) if times else None

    def oldest_lsn(self, next_lsn: int) -> int:
        """Every WAL record below this LSN is reflected in flushed segments (``next_lsn`` if all are)."""
        with self.lock:
            firsts = [b.first_lsn for b in self.by_collection.values() if not b.empty and b.first_lsn]
            firsts += [lsn for lsn in self._flushing.values() if lsn]
        return min([*firsts, next_lsn])
