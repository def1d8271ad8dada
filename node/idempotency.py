"""Recently applied inserts by key, so that a retried insert is answered, not applied twice.

A client (or the proxy) that did not learn the outcome of an insert sends it again. The writer recognises
the retry by the insert's *key*:

- an insert with explicit ids is keyed by its content (collection, partition, ids, vectors): sending the
  very same batch again is a retry, whatever the path (direct, through any proxy);
- an insert with automatic ids is keyed by the request key the proxy attaches (``mishards-request-key``,
  the same on each of its own retries); sent directly without one, it has no key.

A retry of an insert applied within ``window`` seconds is answered with the ids it got, without writing.
Keys travel in the write-ahead log, which keeps its files for the window, so a writer that takes over
learns the keys of its predecessor's recent inserts while it replays. A later delete of any id of a keyed
insert forgets the key (in log order, at replay too), so re-inserting deleted rows is never mistaken for a
retry.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from coordinator.headers import REQUEST_KEY_HEADER

KEY_BYTES = 16
__all__ = ["KEY_BYTES", "REQUEST_KEY_HEADER", "RecentWrites", "content_key", "parse_request_key"]


def content_key(collection_id: int, collection_created_us: int, partition_id: int, ids: np.ndarray,
                vectors: np.ndarray, scalars: Sequence[np.ndarray] = ()) -> bytes:
    """The key of an insert with explicit ids: a 128-bit hash of where it goes and what it holds (with an
    entity insert's scalar columns: the same rows with other attribute values are another insert).

    The collection's creation time is part of "where": a collection dropped and created again under an id
    its catalog reused (old SQLite catalogs do) is another collection, and the same batch sent to it is new.
    """
    digest = hashlib.blake2b(digest_size=KEY_BYTES)
    digest.update(np.array([collection_id, collection_created_us, partition_id, ids.shape[0]],
                           dtype=np.int64).tobytes())
    digest.update(np.ascontiguousarray(ids, dtype=np.int64).tobytes())
    digest.update(np.ascontiguousarray(vectors).tobytes())
    for column in scalars:  # none for a plain insert: its key is what it always was
        digest.update(column.dtype.str.encode())
        digest.update(np.ascontiguousarray(column).tobytes())
    return digest.digest()


def parse_request_key(text: str) -> bytes:
    """A request key from its metadata text (32 hex digits); b"" when absent or malformed."""
    if len(text) != 2 * KEY_BYTES:
        return b""
    try:
        return bytes.fromhex(text)
    except ValueError:
        return b""


@dataclass(frozen=True, slots=True)
class Applied:
    """What a keyed insert did: its collection, the ids it got (for the reply to a retry), its LSN."""

    collection_id: int
    ids: np.ndarray
    lsn: int
    expires: float


@dataclass(frozen=True, slots=True)
class _Deleted:
    lsn: int
    ids: np.ndarray
    expires: float


class RecentWrites:
    """Keyed inserts and all deletes applied within the window (thread-safe, bounded in count).

    Recording is cheap (inserts and deletes happen all the time); the check that none of a keyed insert's
    rows was deleted since is paid only when a retry is recognised.
    """

    def __init__(self, window: float, clock: Callable[[], float], max_entries: int = 1_000_000) -> None:
        self.window = window
        self.clock = clock
        self.max_entries = max_entries
        self._inserts: OrderedDict[bytes, Applied] = OrderedDict()
        self._deletes: dict[int, deque[_Deleted]] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.window > 0

    def __len__(self) -> int:
        return len(self._inserts)

    def inserted(self, key: bytes, collection_id: int, ids: np.ndarray, lsn: int) -> None:
        """An insert with ``key`` was applied at ``lsn``."""
        if not key or not self.enabled:
            return
        entry = Applied(collection_id, np.asarray(ids, dtype=np.int64), lsn, self.clock() + self.window)
        with self._lock:
            self._inserts[key] = entry
            self._inserts.move_to_end(key)
            self._prune_locked()

    def deleted(self, collection_id: int, ids: np.ndarray, lsn: int) -> None:
        """A delete of ``ids`` in the collection was applied at ``lsn`` (any partition)."""
        if not self.enabled or ids.size == 0:
            return
        with self._lock:
            queue = self._deletes.setdefault(collection_id, deque())
            queue.append(_Deleted(lsn, np.asarray(ids, dtype=np.int64), self.clock() + self.window))
            while len(queue) > self.max_entries:
                queue.popleft()

    def lookup(self, key: bytes) -> Applied | None:
        """The insert applied under ``key`` within the window whose rows were not deleted since, or None."""
        if not key or not self.enabled:
            return None
        with self._lock:
            self._prune_locked()
            entry = self._inserts.get(key)
            if entry is None:
                return None
            later = [d.ids for d in self._deletes.get(entry.collection_id, ()) if d.lsn > entry.lsn]
            if later and np.isin(entry.ids, np.concatenate(later)).any():
                del self._inserts[key]  # re-inserting deleted rows is a new insert, not a retry
                return None
            return entry

    def forget_collection(self, collection_id: int) -> None:
        with self._lock:
            for key in [k for k, e in self._inserts.items() if e.collection_id == collection_id]:
                del self._inserts[key]
            self._deletes.pop(collection_id, None)

    def _prune_locked(self) -> None:
        now = self.clock()
        while self._inserts:
            key, entry = next(iter(self._inserts.items()))
            if entry.expires > now and len(self._inserts) <= self.max_entries:
                break
            del self._inserts[key]
        for queue in self._deletes.values():
            while queue and queue[0].expires <= now:
                queue.popleft()
