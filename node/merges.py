"""Writer-side rewrites of segments: merges of small RAW segments and compaction.

``merge_collection`` and ``compact`` hold the collection's maintenance lock for the whole rewrite (CreateIndex and
Compact want it done when they return). The background pass (``merge_all`` with a :class:`MergeContention`) holds
it only to plan and to commit: the rows are read and written without it, so a timed flush of the same collection
does not wait for a rewrite of a large segment. Under the lock before committing, each source segment must still
be RAW with the delete version the merge read; otherwise (a flush applied deletes to it, a compaction or another
merge replaced it) the written files are dropped and the segments are merged at a later pass. A collection whose
background merges were dropped twice in a row is merged under the lock at its next pass, so that a stream of
deletes cannot keep its segments from being merged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from coordinator.catalog import CatalogSnapshot, NewSegment
from coordinator.hybrid.schema import collection_schema
from coordinator.model import MB, Collection, Segment, SegmentState
from node.engine import Engine
from node.maintenance import flush, publish, write_rows
from node.row_parts import RowParts, live_part

log = logging.getLogger(__name__)

COMPACT_THRESHOLD = 0.1  # deleted / rows of a segment, as Milvus 1.1
CONTENDED_AFTER = 2  # background merges of a collection dropped in a row before its next one holds the lock


def plan_merges(sizes: Sequence[tuple[int, int]], limit: int) -> list[list[int]]:
    """Group small segments ``(id, bytes)`` into merges whose total stays within ``limit``.

    Smallest first, greedily; only groups of two or more are worth a rewrite.
    """
    groups: list[list[int]] = []
    current: list[int] = []
    used = 0
    for seg_id, size in sorted(sizes, key=lambda item: (item[1], item[0])):
        if size >= limit:
            continue
        if current and used + size > limit:
            groups.append(current)
            current, used = [], 0
        current.append(seg_id)
        used += size
    groups.append(current)
    return [g for g in groups if len(g) >= 2]


@dataclass(frozen=True, slots=True)
class MergeGroup:
    """RAW segments of one partition to be rewritten as one, as the merge read them."""

    partition_id: int
    segments: tuple[Segment, ...]


def merge_groups(snap: CatalogSnapshot, coll: Collection) -> list[MergeGroup]:
    """The merges :func:`plan_merges` makes of each partition's RAW segments."""
    by_partition: dict[int, list[Segment]] = {}
    for seg in snap.segments_of(coll.id):
        if seg.state is SegmentState.RAW:
            by_partition.setdefault(seg.partition_id, []).append(seg)
    out: list[MergeGroup] = []
    for pid, segs in by_partition.items():
        by_id = {s.id: s for s in segs}
        sizes = [(s.id, s.live_count * coll.row_bytes) for s in segs]
        out += [MergeGroup(pid, tuple(by_id[i] for i in group))
                for group in plan_merges(sizes, coll.index_file_size_mb * MB)]
    return out


def unchanged(fresh: CatalogSnapshot, group: MergeGroup) -> bool:
    """Whether every segment of ``group`` is still RAW in ``fresh`` with the delete version the merge read."""
    for seg in group.segments:
        now = fresh.segments_by_id.get(seg.id)
        if now is None or now.state is not SegmentState.RAW or now.delete_version != seg.delete_version:
            return False
    return True


def live_rows(engine: Engine, coll: Collection, segs: Sequence[Segment]) -> RowParts:
    """The live rows of ``segs`` in segment order, scalar columns (of a hybrid collection) aligned with the ids: the
    mapped files of a segment without deletes, a copy of the live rows of one with deletes."""
    schema = collection_schema(coll)
    width = len(schema.scalars) if schema is not None else 0
    parts = []
    for seg in segs:
        ids = np.asarray(engine.store.ids(coll.id, seg.name))
        vecs = np.asarray(engine.store.vectors(coll.id, seg.name))
        scalars = [np.asarray(engine.store.scalar(coll.id, seg.name, i)) for i in range(width)]
        deleted = engine.store.deletes(coll.id, seg.name, seg.delete_version)
        keep = None
        if deleted.size:
            keep = np.ones(ids.shape[0], dtype=bool)
            keep[deleted] = False
        parts.append(live_part(ids, vecs, scalars, keep))
    return RowParts.of(parts)


def _drop_written(engine: Engine, coll: Collection, written: Sequence[str]) -> None:
    if engine.fence.valid():  # names are this epoch's own: no successor uses them
        for name in written:
            engine.store.remove_segment(coll.id, name)


def _write_group(engine: Engine, coll: Collection, group: MergeGroup, written: list[str]) -> list[NewSegment]:
    return write_rows(engine, coll, group.partition_id, live_rows(engine, coll, group.segments), written)


def _commit(engine: Engine, coll: Collection, group: MergeGroup, added: Sequence[NewSegment]) -> list[int]:
    """One catalog commit: the written segments in, the group's segments out; returns the new segments' ids."""
    return engine.catalog.commit_segments(
        engine.epoch, coll.id, coll.index_type, added=added, removed=[s.id for s in group.segments])


def rewrite(engine: Engine, coll: Collection, group: MergeGroup) -> list[int]:
    """Replace the group's segments by new segments holding only their live rows (one atomic catalog commit);
    returns the new segments' ids. The caller holds the collection's maintenance lock."""
    written: list[str] = []
    try:
        return _commit(engine, coll, group, _write_group(engine, coll, group, written))
    except Exception:
        _drop_written(engine, coll, written)
        raise


def merge_collection(engine: Engine, collection_id: int) -> None:
    """Merge the collection's small RAW segments, holding its maintenance lock throughout."""
    with engine.maintenance_lock(collection_id):
        snap = engine.snapshot()
        coll = snap.collections_by_id.get(collection_id)
        if coll is None:
            return
        changed = False
        searched: list[int] = []  # merged segments replacing at least one this node had loaded for searches
        for group in merge_groups(snap, coll):
            was_loaded = any(engine.cache.contains(s.id) for s in group.segments)
            added = rewrite(engine, coll, group)
            changed = True
            if was_loaded:
                searched.extend(added)
        if changed:
            publish(engine, coll, searched)


def merge_unlocked(engine: Engine, collection_id: int, before_commit: Callable[[], None] | None = None) -> int:
    """Merge the collection's small RAW segments holding its maintenance lock only to plan and to commit each
    merge (see the module's text); returns how many merges were dropped because a source segment changed.

    ``before_commit`` runs after a merge's files are written, before the lock is taken to commit them.
    """
    lock = engine.maintenance_lock(collection_id)
    with lock:
        snap = engine.snapshot()
        coll = snap.collections_by_id.get(collection_id)
        if coll is None:
            return 0
        groups = merge_groups(snap, coll)
    dropped = 0
    for group in groups:
        written: list[str] = []
        try:
            added = _write_group(engine, coll, group, written)
            if before_commit is not None:
                before_commit()
        except Exception:
            _drop_written(engine, coll, written)
            raise
        with lock:
            try:
                fresh = engine.catalog.snapshot()
                if coll.id not in fresh.collections_by_id or not unchanged(fresh, group):
                    log.debug("merge of segments %s dropped: a segment changed while it was written",
                              [s.id for s in group.segments])
                    _drop_written(engine, coll, written)
                    dropped += 1
                    continue
                was_loaded = any(engine.cache.contains(s.id) for s in group.segments)
                new_ids = _commit(engine, coll, group, added)
            except Exception:
                _drop_written(engine, coll, written)
                raise
            # Committed: the files are the catalog's now, whatever happens next. Published under the lock, so
            # that a flush sees the merge.
            publish(engine, coll, new_ids if was_loaded else [])
    return dropped


@dataclass
class MergeContention:
    """Background merges of each collection dropped in a row (see the module's text)."""

    dropped: dict[int, int] = field(default_factory=dict)

    def locked_next(self, collection_id: int) -> bool:
        return self.dropped.get(collection_id, 0) >= CONTENDED_AFTER

    def record(self, collection_id: int, dropped: int) -> None:
        if dropped:
            self.dropped[collection_id] = self.dropped.get(collection_id, 0) + 1
        else:
            self.dropped.pop(collection_id, None)


def merge_all(engine: Engine, contention: MergeContention | None = None) -> None:
    """Merge every collection: under its lock without ``contention`` (or when its merges were dropped too often),
    else holding the lock only to plan and commit."""
    for coll in list(engine.snapshot().collections_by_id.values()):
        if contention is None or contention.locked_next(coll.id):
            merge_collection(engine, coll.id)
            if contention is not None:
                contention.record(coll.id, 0)
        else:
            contention.record(coll.id, merge_unlocked(engine, coll.id))


def compact(engine: Engine, collection_id: int) -> None:
    """Rewrite segments whose deleted share reaches the threshold (after flushing the collection)."""
    flush(engine, [collection_id])
    with engine.maintenance_lock(collection_id):
        snap = engine.snapshot()
        coll = snap.collections_by_id.get(collection_id)
        if coll is None:
            return
        changed = False
        for seg in snap.segments_of(coll.id):
            if seg.row_count and seg.deleted_count / seg.row_count >= COMPACT_THRESHOLD:
                rewrite(engine, coll, MergeGroup(seg.partition_id, (seg,)))
                changed = True
        if changed:
            engine.refresh()
