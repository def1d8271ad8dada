"""The engine of one node: catalog, write-ahead log, insert buffers, and their lifecycle.

Reads (search, get) live in :mod:`node.reader`; flush, merge, compaction and garbage collection in
:mod:`node.maintenance`, run in the background by :mod:`node.autoflush`; the insert buffers in
:mod:`node.write_buffers`; a new writer's replay of the write-ahead log in :mod:`node.wal_replay`. This module
owns the state they share.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING

import numpy as np

from coordinator.catalog import Catalog, CatalogSnapshot
from coordinator.errors import (
    CollectionNotFound,
    IllegalCollectionName,
    IllegalVectorId,
    ReadOnlyRole,
    UnexpectedError,
)
from coordinator.fencing import WriterFence
from coordinator.model import (
    DEFAULT_PARTITION,
    MAX_PARTITIONS,
    SEARCHABLE_STATES,
    Collection,
    IdMode,
    IndexType,
    MetricType,
    Partition,
)
from coordinator.snapshots import SnapshotHolder
from node import wal_replay
from node.idempotency import RecentWrites, content_key
from node.idgen import IdGenerator, SegmentNamer
from node.kernels import OmpThreads
from node.keyed_inserts import KeyedInserts
from node.membuffer import ALL_PARTITIONS, MemBuffer
from node.segment_cache import SegmentCache
from node.settings import NodeSettings
from node.storage import SegmentStore
from node.wal import DeleteRecord, InsertRecord, Record, WriteAheadLog
from node.write_buffers import WriteBuffers

if TYPE_CHECKING:
    from node.autoflush import Upkeep
    from node.index_builds import IndexBuilds
    from node.metrics import NodeMetrics

log = logging.getLogger(__name__)


class Engine:
    def __init__(self, settings: NodeSettings, metrics: NodeMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics  # WAL fsyncs, flushes and index builds observe their durations here
        self.catalog = Catalog(settings.catalog_uri)
        self.store = SegmentStore(settings.storage)
        self.cache = SegmentCache(settings.cache_bytes)
        self.omp_threads = OmpThreads(settings.omp_threads)
        self.ids = IdGenerator()
        self.segment_names = SegmentNamer()
        self.epoch = 0
        # Whether this process may still act as the writer: unbounded unless an election's lease bounds it
        # (the server installs the election's fence before campaigning).
        self.fence = WriterFence()
        self.writable = False  # True once this node holds the writer epoch (become_writer)
        # An rw node in an etcd cluster waits to win the writer election; otherwise it writes from the start.
        self.elects_writer = settings.role == "rw" and (
            settings.membership.startswith("etcd://") or settings.election == "catalog")
        self.bound_port = settings.port  # the real port once the server listens (``--port 0``)
        self.auto_flush_interval = settings.auto_flush_interval
        self.insert_buffer_bytes = settings.insert_buffer_bytes
        # Told of every newer snapshot a poll or a catch-up loads (a read node's share is warmed on it).
        self.snapshot_listeners: list[Callable[[CatalogSnapshot], None]] = []
        self.snapshots = SnapshotHolder(self.catalog, on_reload=self._reloaded)
        self._ddl_lock = threading.RLock()
        self.write_buffers = WriteBuffers()
        self.buffers: dict[int, MemBuffer] = self.write_buffers.by_collection  # read under _buf_lock (metrics)
        self._buf_lock = self.write_buffers.lock
        self._maint_locks: dict[int, threading.Lock] = {}
        self.wal: WriteAheadLog | None = None
        # Keyed inserts and deletes of the idempotency window (replayed from the log by a new writer), and the
        # keyed inserts still on their way to the log (a retry waits for the first attempt's outcome).
        self.recent = RecentWrites(settings.idempotency_window, time.monotonic)
        self.keyed = KeyedInserts(self.recent)
        self._stop = threading.Event()
        self.upkeep: Upkeep | None = None  # timed flushes and maintenance (the writer only)
        self._follower: threading.Thread | None = None
        self.builds: IndexBuilds | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def open(self) -> None:
        self.settings.storage.mkdir(parents=True, exist_ok=True)
        self.store.prepare()
        self.catalog.ensure_schema()
        self.refresh()
        self._follower = threading.Thread(target=self._follow_catalog, name="catalog-follower", daemon=True)
        self._follower.start()
        if self.settings.role == "standalone" or (self.settings.role == "rw" and not self.elects_writer):
            self.become_writer()

    def become_writer(self) -> int:
        """Take over writing: bump the writer epoch (fencing every earlier writer), clean up what a crashed
        writer left, replay the write-ahead log from storage, and start flushing, merging and indexing."""
        from node import maintenance
        from node.autoflush import Upkeep
        from node.index_builds import IndexBuilds

        with self._ddl_lock:
            if self.writable:
                return self.epoch
            writer_id = f"{socket.gethostname()}:{os.getpid()}"
            self.epoch = self.catalog.claim_writer(writer_id)
            self.segment_names = SegmentNamer(self.epoch)
            log.info("writer epoch %d claimed by %s", self.epoch, writer_id)
            self.refresh()
            maintenance.remove_orphans(self)
            self._open_wal()
            self.builds = IndexBuilds(self, self.settings.index_build_threads)
            self.upkeep = Upkeep(self)
            self.upkeep.start()
            self.writable = True
            return self.epoch

    def _open_wal(self) -> None:
        """Replay the log (past each collection's flushed LSN, without the void records of deposed writers),
        seal it at what was replayed, and open a file of this epoch."""
        self.wal = WriteAheadLog(self.settings.storage / "wal", self._apply, self.settings.wal_file_bytes,
                                 on_fsync=self.metrics.wal_fsync_seconds.observe if self.metrics is not None else None,
                                 fence=self.fence)
        wal_replay.replay_and_start(self, self.wal, self._apply)

    def close(self, flush: bool = True) -> None:
        self._stop.set()
        if self.upkeep is not None:
            self.upkeep.stop()
        if self._follower is not None:
            self._follower.join(timeout=60)
        if self.builds is not None:
            self.builds.close()
        if self.wal is not None:
            if flush:
                from node import maintenance

                try:
                    maintenance.flush(self, None)
                except Exception:
                    log.exception("final flush failed; the write-ahead log keeps the data")
            self.wal.close()
        self.catalog.close()

    def _follow_catalog(self) -> None:
        """Not the writer: reload the snapshot whenever the catalog revision moves (one cheap query per poll).

        Segments that disappeared leave the cache at once; new delete-log versions and new index files are
        picked up by the cache on the next search of the segment. The writer refreshes after its own commits.
        """
        self.snapshots.follow(self.settings.catalog_refresh_interval, self._stop, paused=lambda: self.writable)

    def set_auto_flush_interval(self, seconds: float) -> None:
        """Change the timed flush period now: the next flush is due by the new period, counted from the oldest
        buffered record, and the maintenance thread waits the new period from here."""
        self.auto_flush_interval = seconds
        if self.upkeep is not None:
            self.upkeep.wake(maintenance=True)

    def buffers_over_limit(self) -> bool:
        return self.write_buffers.nbytes() >= self.insert_buffer_bytes

    # -- catalog snapshot ----------------------------------------------------------------------

    def snapshot(self) -> CatalogSnapshot:
        return self.snapshots.snapshot()

    def _reloaded(self, snap: CatalogSnapshot) -> None:
        """Segments no longer searchable (merged away, dropped) leave the cache at once; listeners hear of it."""
        self.cache.retain({seg.id for seg in snap.segments_by_id.values() if seg.state in SEARCHABLE_STATES})
        for listener in self.snapshot_listeners:
            listener(snap)

    def catch_up(self, revision: int) -> None:
        """Reload the snapshot now if it is older than ``revision`` (a caller's newer view of the catalog)."""
        self.snapshots.catch_up_to(revision)

    def refresh(self) -> CatalogSnapshot:
        return self.snapshots.refresh()

    def maintenance_lock(self, collection_id: int) -> threading.Lock:
        with self._buf_lock:
            return self._maint_locks.setdefault(collection_id, threading.Lock())

    def require_writable(self, what: str) -> None:
        if self.writable:
            self.fence.check(what)
            return
        if self.settings.role == "ro":
            raise ReadOnlyRole(f"{what} is not allowed on a read-only (ro) node")
        raise ReadOnlyRole(f"{what} is not allowed: this node is a standby writer, not the elected one")

    def collection(self, name: str, snap: CatalogSnapshot | None = None) -> Collection:
        coll = (snap or self.snapshot()).collection(name)
        if coll is None:
            raise CollectionNotFound(name)
        return coll

    # -- DDL -----------------------------------------------------------------------------------

    def create_collection(self, name: str, dimension: int, metric: MetricType, index_file_size_mb: int,
                          hybrid_schema: str = "") -> None:
        self.require_writable("CreateCollection")
        with self._ddl_lock:
            try:
                self.catalog.create_collection(self.epoch, name, dimension, metric, index_file_size_mb,
                                               hybrid_schema)
            except ValueError:
                raise IllegalCollectionName("Collection already exists") from None
            self.refresh()

    def drop_collection(self, name: str) -> None:
        self.require_writable("DropCollection")
        with self._ddl_lock:
            coll = self.collection(name, self.refresh())
            with self.maintenance_lock(coll.id):
                self.catalog.drop_collection(self.epoch, coll.id)
                self.write_buffers.drop(coll.id)
                self.recent.forget_collection(coll.id)
                snap = self.refresh()
            self.cache.retain(set(snap.segments_by_id))

    def create_partition(self, name: str, tag: str) -> None:
        self.require_writable("CreatePartition")
        with self._ddl_lock:
            snap = self.refresh()
            coll = self.collection(name, snap)
            if tag == DEFAULT_PARTITION:
                raise UnexpectedError("'_default' is built-in partition tag")
            if snap.partition(coll.id, tag) is not None:
                raise UnexpectedError("Duplicate partition is not allowed")
            if len(snap.partitions_of(coll.id)) - 1 >= MAX_PARTITIONS:
                raise UnexpectedError(f"The number of partitions exceeds the upper limit({MAX_PARTITIONS})")
            self.catalog.create_partition(self.epoch, coll.id, tag)
            self.refresh()

    def drop_partition(self, name: str, tag: str) -> None:
        self.require_writable("DropPartition")
        with self._ddl_lock:
            snap = self.refresh()
            coll = self.collection(name, snap)
            if tag == DEFAULT_PARTITION:
                raise IllegalCollectionName("Default partition cannot be dropped.")
            part = snap.partition(coll.id, tag)
            if part is None:
                raise UnexpectedError(f"Partition {tag} of collection {name} not found")
            with self.maintenance_lock(coll.id):
                self.catalog.drop_partition(self.epoch, part.id)
                self.write_buffers.drop_partition(coll.id, part.id)
                snap = self.refresh()
            self.cache.retain(set(snap.segments_by_id))

    def create_index(self, name: str, kind: IndexType, params: dict[str, object]) -> list[str]:
        """CreateIndex as Milvus 1.1, for every index type FLAT included: flush every buffered row (of every
        collection) first, so that rows inserted just before are counted and searchable when it returns; merge
        the collection's small segments; set the index and build it on every eligible segment (not for FLAT).

        Blocks until the builds end; returns the errors of failed builds.
        """
        from node import maintenance, merges

        self.require_writable("CreateIndex")
        maintenance.flush(self, None)
        coll = self.collection(name, self.refresh())
        merges.merge_collection(self, coll.id)
        return self.set_index(name, kind, params)

    def set_index(self, name: str, kind: IndexType, params: dict[str, object]) -> list[str]:
        """Set the collection's index and, unless it is FLAT, build it on every eligible segment (DropIndex sets
        FLAT: nothing is flushed, as in Milvus 1.1).

        Blocks until the builds end (Milvus semantics); returns the errors of failed builds.
        """
        self.require_writable("CreateIndex" if kind is not IndexType.FLAT else "DropIndex")
        with self._ddl_lock:
            coll = self.collection(name, self.refresh())
            with self.maintenance_lock(coll.id):
                self.catalog.set_index(self.epoch, coll.id, kind, params)
            self.refresh()
        if kind is IndexType.FLAT or self.builds is None:
            return []
        return self.builds.build_collection(coll.id)

    # -- writes --------------------------------------------------------------------------------

    def insert(self, coll: Collection, partition: Partition, ids: np.ndarray | None,
               vectors: np.ndarray, request_key: bytes = b"", scalars: tuple[np.ndarray, ...] = ()) -> np.ndarray:
        """Append rows durably (with a hybrid collection's scalar columns); returns their ids once the WAL has them
        on disk.

        A retry of an insert applied within the idempotency window (the same batch with explicit ids, or an
        automatic-id batch under the same ``request_key``) is answered with the ids it got, not applied again.
        """
        self.require_writable("Insert")
        key = b""
        if self.recent.enabled:
            key = (content_key(coll.id, coll.created_us, partition.id, ids, vectors, scalars) if ids is not None
                   else request_key)
        if not key:
            return self._insert(coll, partition, ids, vectors, b"", scalars)
        return self.keyed.run(key, lambda: self._insert(coll, partition, ids, vectors, key, scalars), coll.name)

    def _insert(self, coll: Collection, partition: Partition, ids: np.ndarray | None, vectors: np.ndarray,
                key: bytes, scalars: tuple[np.ndarray, ...] = ()) -> np.ndarray:
        n = int(vectors.shape[0])
        wanted = IdMode.USER if ids is not None else IdMode.AUTO
        with self._ddl_lock:
            current = self.collection(coll.name).id_mode
            if current is IdMode.UNSET:
                self.catalog.set_id_mode(self.epoch, coll.id, wanted)
                self.refresh()
            elif current is not wanted:
                if current is IdMode.AUTO:
                    raise IllegalVectorId(
                        "Entities IDs are auto-generated. All vectors of this collection must use "
                        "auto-generated IDs."
                    )
                raise IllegalVectorId(
                    "Entities IDs are user-defined. Please provide IDs for all entities of the collection."
                )
            row_ids = self.ids.take(n) if ids is None else ids
            fut = self._append(InsertRecord(coll.id, partition.id, row_ids, vectors, key, scalars))
        fut.result()
        return row_ids

    def delete(self, coll: Collection, partition: Partition | None, ids: np.ndarray) -> None:
        self.require_writable("DeleteByID")
        pid = partition.id if partition is not None else ALL_PARTITIONS
        self._append(DeleteRecord(coll.id, pid, ids)).result()

    def _append(self, record: Record) -> Future[int]:
        assert self.wal is not None
        fut = self.wal.append(record)
        if self.upkeep is not None and self.buffers_over_limit():
            self.upkeep.wake()
        return fut

    def _apply(self, lsn: int, record: Record) -> None:
        """Apply a durable WAL record to the insert buffers (called in LSN order)."""
        wal_replay.remember(self.recent, lsn, record)
        if record.collection_id not in self.snapshot().collections_by_id:
            return
        if self.write_buffers.apply(lsn, record) and self.upkeep is not None:
            self.upkeep.wake()  # a new flush deadline starts with this record

    # -- buffers a flush takes (node.maintenance) ---------------------------------------------

    def take_buffer(self, collection_id: int) -> MemBuffer | None:
        return self.write_buffers.take(collection_id)

    def done_flushing(self, collection_id: int) -> None:
        self.write_buffers.done_flushing(collection_id)

    def restore_buffer(self, collection_id: int, older: MemBuffer) -> None:
        self.write_buffers.restore(collection_id, older)

    def buffered_collections(self) -> list[int]:
        return self.write_buffers.collections()

    def oldest_unflushed_lsn(self) -> int:
        """Every WAL record below this LSN is reflected in flushed segments."""
        assert self.wal is not None
        return self.write_buffers.oldest_lsn(self.wal.next_lsn)
