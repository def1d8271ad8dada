"""Writer-side upkeep of segments: flush, publication and garbage collection (merges and compaction:
:mod:`node.merges`)."""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from coordinator.catalog import DeleteUpdate, NewSegment, now_us
from coordinator.model import MB, Collection, Segment, SegmentState
from node.engine import Engine
from node.idgen import next_delete_version
from node.membuffer import MemBuffer
from node.reader import load_segment
from node.row_parts import RowParts

log = logging.getLogger(__name__)


def split_rows(total: int, max_rows: int) -> list[tuple[int, int]]:
    """Cut ``total`` rows into consecutive ranges of at most ``max_rows``."""
    step = max(1, max_rows)
    return [(start, min(total, start + step)) for start in range(0, total, step)]


def flush(engine: Engine, collection_ids: Iterable[int] | None) -> None:
    """Turn buffered rows into segments and apply pending deletes; blocks until committed."""
    targets = engine.buffered_collections() if collection_ids is None else list(collection_ids)
    for cid in targets:
        flush_collection(engine, cid)
    if engine.wal is not None:
        engine.fence.check("Removing log files")
        # Flushed files go once older than the idempotency window (their keys answer retries until then).
        engine.wal.truncate(engine.oldest_unflushed_lsn() - 1, time.time() - engine.settings.idempotency_window)


def flush_collection(engine: Engine, collection_id: int) -> None:
    with engine.maintenance_lock(collection_id):
        buf = engine.take_buffer(collection_id)
        if buf is None:
            return
        started = time.perf_counter()
        written: list[str] = []
        searched: list[int] = []
        try:
            snap = engine.snapshot()
            coll = snap.collections_by_id.get(collection_id)
            if coll is None:
                return  # dropped while buffered
            added = _write_buffered_rows(engine, coll, buf, written)
            current = snap.segments_of(coll.id)
            updates = _apply_deletes(engine, coll, current, buf)
            if added or updates or buf.last_lsn > coll.flushed_lsn:
                new_ids = engine.catalog.commit_segments(
                    engine.epoch, coll.id, coll.index_type, added=added, delete_updates=updates,
                    flushed_lsn=buf.last_lsn,
                )
                searched = searched_after_flush(
                    new_ids, [u.segment_id for u in updates], [s.id for s in current], engine.cache.contains)
        except Exception:
            engine.restore_buffer(collection_id, buf)
            if engine.fence.valid():  # names are this epoch's own: no successor uses them
                for name in written:
                    engine.store.remove_segment(collection_id, name)
            raise
        finally:
            engine.done_flushing(collection_id)
        publish(engine, coll, searched)
        if engine.metrics is not None:
            engine.metrics.flush_seconds.observe(time.perf_counter() - started)
        if added and engine.upkeep is not None and engine.auto_flush_interval > 0:
            # Timed flushes write a small segment every interval: merge them now, not at the next pass (with
            # timed flushes off, segments are merged at the regular pass, a second or so later).
            engine.upkeep.wake(maintenance=True)


def searched_after_flush(new_ids: Sequence[int], updated_ids: Sequence[int], current_ids: Sequence[int],
                         cached: Callable[[int], bool]) -> list[int]:
    """The segments a flush should load before it publishes, so that no search pays their load: on a node that
    searches the collection (a segment of it is in the cache), the new segments and the cached segments whose
    delete log the flush changed; nothing on a node that does not search it (a cluster's writer, a collection
    being imported and not yet searched: loading would only push hot segments of other collections out)."""
    if not any(cached(i) for i in current_ids):
        return []
    return [*new_ids, *(i for i in updated_ids if cached(i))]


def _write_buffered_rows(engine: Engine, coll: Collection, buf: MemBuffer, written: list[str]) -> list[NewSegment]:
    snap = engine.snapshot()
    live_partitions = {p.id for p in snap.partitions_of(coll.id)}
    added: list[NewSegment] = []
    for pid, rows in buf.partition_rows().items():
        if pid not in live_partitions:
            continue
        added += write_rows(engine, coll, pid, rows, written)
    return added


def write_rows(engine: Engine, coll: Collection, partition_id: int, rows: RowParts,
                written: list[str]) -> list[NewSegment]:
    """Write ``rows`` as new segments of at most ``index_file_size`` (of vectors) each, scalar columns beside."""
    max_rows = coll.index_file_size_mb * MB // coll.row_bytes
    added: list[NewSegment] = []
    for start, stop in split_rows(rows.count, max_rows):
        name = engine.segment_names.next()
        engine.fence.check("Writing a segment")
        part = rows.sliced(start, stop)
        size = engine.store.write_segment(coll.id, name, part.ids(), part.vectors(),
                                          [part.scalar(i) for i in range(rows.width)])
        written.append(name)
        added.append(NewSegment(name, partition_id, stop - start, 0, size, 0))
    return added


def _apply_deletes(engine: Engine, coll: Collection, segs: Sequence[Segment], buf: MemBuffer) -> list[DeleteUpdate]:
    if not buf.deletes:
        return []
    updates: list[DeleteUpdate] = []
    for seg in segs:
        wanted = buf.delete_ids_for(seg.partition_id)
        if wanted.size == 0:
            continue
        hit = np.flatnonzero(np.isin(engine.store.ids(coll.id, seg.name), wanted))
        if hit.size == 0:
            continue
        old = engine.store.deletes(coll.id, seg.name, seg.delete_version)
        new = np.union1d(old, hit).astype(np.int64)
        if new.size == old.size:
            continue
        version = next_delete_version(seg.delete_version, engine.epoch)
        engine.fence.check("Writing a delete log")
        engine.store.write_deletes(coll.id, seg.name, version, new)
        updates.append(DeleteUpdate(seg.id, int(new.size), version))
    return updates


def publish(engine: Engine, coll: Collection, load_first: Sequence[int]) -> None:
    """Publish the committed catalog to this node's searches. The segments ``load_first`` (new segments of a flush
    or merge that the node searches) are loaded into the cache before, while its searches still see the segments
    as they were, so that no search pays the load (or the first touch of fresh pages) when they become visible;
    the snapshot read for that is the one published, not read twice. A load that fails is left to the first
    search, which reports it."""
    if not load_first:
        engine.refresh()
        return
    fresh = engine.catalog.snapshot()  # committed, not yet this node's published view
    for seg_id in load_first:
        seg = fresh.segments_by_id.get(seg_id)
        if seg is None:
            continue
        try:
            load_segment(engine, coll, seg)
        except Exception:
            log.warning("loading segment %d ahead of its first search failed", seg_id, exc_info=True)
    engine.snapshots.offer(fresh)


def collect_garbage(engine: Engine) -> None:
    """Remove files of retired segments and dropped collections once the grace period has passed."""
    grace_us = int(engine.settings.file_cleanup_timeout * 1_000_000)
    segs, colls = engine.catalog.garbage(now_us() - grace_us)
    if not segs and not colls:
        return
    for _, cid, name in segs:
        engine.fence.check("Removing segment files")
        engine.store.remove_segment(cid, name)
    for cid in engine.catalog.purge(engine.epoch, [s[0] for s in segs], colls):
        engine.fence.check("Removing collection files")
        engine.store.remove_collection(cid)
    snap = engine.refresh()
    engine.cache.retain(set(snap.segments_by_id))


def remove_stale_index_files(engine: Engine) -> int:
    """Delete index files that no segment uses any more (rebuilt or dropped indexes), after the grace period."""
    cutoff = time.time() - engine.settings.file_cleanup_timeout
    removed = 0
    snap = engine.snapshot()
    for seg in snap.segments_by_id.values():
        if seg.collection_id not in snap.collections_by_id or seg.state is SegmentState.TO_DELETE:
            continue
        for path in engine.store.stale_index_files(seg.collection_id, seg.name, seg.index_file, cutoff):
            engine.fence.check("Removing index files")
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def remove_orphans(engine: Engine) -> None:
    """At writer start: delete folders the catalog does not know (left by a crash mid-write)."""
    engine.fence.check("Removing orphaned folders")
    snap = engine.snapshot()
    known: dict[int, set[str]] = {}
    for seg in snap.segments_by_id.values():
        known.setdefault(seg.collection_id, set()).add(seg.name)
    _, dropped = engine.catalog.garbage(0)
    live_collections = set(snap.collections_by_id) | set(dropped)
    started = time.monotonic()
    removed = 0
    for cid in engine.store.collection_ids():
        if cid not in live_collections and cid not in known:
            engine.store.remove_collection(cid)
            removed += 1
            continue
        folder = engine.store.collection_dir(cid)
        for entry in folder.iterdir():
            if entry.is_dir() and entry.name not in known.get(cid, set()):
                shutil.rmtree(entry, ignore_errors=True)
                removed += 1
    if removed:
        log.info("removed %d orphaned storage folders in %.2fs", removed, time.monotonic() - started)
