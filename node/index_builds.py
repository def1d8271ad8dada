"""Background index building: queue eligible segments, build them in a bounded pool, publish atomically.

A segment goes RAW -> TO_INDEX -> INDEX. Builds read the segment's raw rows (mmap) and never block
inserts or searches; the index file is written atomically next to the segment and published by a
catalog commit that is refused if the collection's index changed meanwhile. A failed build puts the
segment back to RAW (still searched exactly) and records the error.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait

import numpy as np

from coordinator.errors import BuildIndexError
from coordinator.model import MB, Collection, IndexType, Segment, SegmentState
from node import maintenance, merges
from node.engine import Engine
from node.indexes import build_index

log = logging.getLogger(__name__)

# Segments with fewer rows are searched exactly even when the collection has an index (Milvus 1.1).
BUILD_INDEX_THRESHOLD = 4096


def background_candidates(coll: Collection, segs: Sequence[Segment]) -> list[int]:
    """RAW segments that reached ``index_file_size`` and have not failed to build before."""
    if coll.index_type is IndexType.FLAT:
        return []
    limit = coll.index_file_size_mb * MB
    return [
        s.id for s in segs
        if s.state is SegmentState.RAW and not s.index_error
        and s.row_count >= BUILD_INDEX_THRESHOLD and s.row_count * coll.row_bytes >= limit
    ]


def requested_candidates(coll: Collection, segs: Sequence[Segment]) -> list[int]:
    """RAW segments that ``CreateIndex`` builds: every one with enough rows, failed ones retried."""
    if coll.index_type is IndexType.FLAT:
        return []
    return [s.id for s in segs if s.state is SegmentState.RAW and s.row_count >= BUILD_INDEX_THRESHOLD]


class IndexBuilds:
    def __init__(self, engine: Engine, threads: int = 1) -> None:
        self.engine = engine
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="index-build")
        self._lock = threading.Lock()
        self._inflight: dict[int, Future[None]] = {}
        self.built = 0
        self.failed = 0
        self.build_seconds_total = 0.0

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    # -- scheduling ----------------------------------------------------------------------------

    def tick(self) -> None:
        """Background: queue segments that reached their full size, and start every queued build."""
        snap = self.engine.snapshot()
        queued: list[int] = []
        for coll in snap.collections_by_id.values():
            queued += background_candidates(coll, snap.segments_of(coll.id))
        if queued:
            self.engine.catalog.mark_to_index(self.engine.epoch, queued)
            self.engine.refresh()
        self.schedule()

    def schedule(self, collection_id: int | None = None) -> list[Future[None]]:
        """Start builds for queued segments (of one collection, or all) not already running."""
        snap = self.engine.snapshot()
        started: list[Future[None]] = []
        with self._lock:
            for seg in snap.segments_by_id.values():
                if seg.state is not SegmentState.TO_INDEX or seg.collection_id not in snap.collections_by_id:
                    continue
                if collection_id is not None and seg.collection_id != collection_id:
                    continue
                fut = self._inflight.get(seg.id)
                if fut is None or fut.done():
                    fut = self.pool.submit(self._build, seg.id)
                    self._inflight[seg.id] = fut
                started.append(fut)
        return started

    def build_collection(self, collection_id: int) -> list[str]:
        """What CreateIndex waits for: flush, merge small segments, build every eligible one.

        Returns the errors of builds that failed (empty when all succeeded).
        """
        engine = self.engine
        maintenance.flush(engine, [collection_id])
        merges.merge_collection(engine, collection_id)
        snap = engine.snapshot()
        coll = snap.collections_by_id.get(collection_id)
        if coll is None:
            return []
        ids = requested_candidates(coll, snap.segments_of(coll.id))
        if ids:
            engine.catalog.mark_to_index(engine.epoch, ids)
            engine.refresh()
        errors: list[str] = []
        waited: set[int] = set()
        while True:
            futures = self.schedule(collection_id)
            pending = [f for f in futures if id(f) not in waited]
            if not pending:
                break
            wait(pending)
            for fut in pending:
                waited.add(id(fut))
                exc = fut.exception()
                if exc is not None:
                    errors.append(str(exc))
        return errors

    # -- one build -----------------------------------------------------------------------------

    def _build(self, segment_id: int) -> None:
        engine = self.engine
        snap = engine.snapshot()
        seg = snap.segments_by_id.get(segment_id)
        coll = snap.collections_by_id.get(seg.collection_id) if seg is not None else None
        if seg is None or coll is None or seg.state is not SegmentState.TO_INDEX:
            return
        kind = coll.index_type
        params = json.loads(coll.index_params)
        started = time.perf_counter()
        file = ""
        try:
            vectors = np.asarray(engine.store.vectors(coll.id, seg.name))
            index = build_index(kind, vectors, coll.metric, params)
            file = f"index-{engine.segment_names.next()}.bin"
            engine.fence.check("Writing an index file")
            size = engine.store.write_index(coll.id, seg.name, file, index.save)
            if not engine.catalog.commit_index(engine.epoch, seg.id, kind, params, file, size):
                engine.store.index_path(coll.id, seg.name, file).unlink(missing_ok=True)
                return
        except Exception as exc:
            self.failed += 1
            if engine.metrics is not None:
                engine.metrics.index_build_seconds.observe(time.perf_counter() - started)
            reason = f"{kind.name} build of segment {seg.name} failed: {exc}"
            log.warning("%s", reason)
            if file:
                engine.store.index_path(coll.id, seg.name, file).unlink(missing_ok=True)
            engine.catalog.fail_index(engine.epoch, seg.id, reason)
            engine.refresh()
            raise BuildIndexError(reason) from exc
        self.built += 1
        self.build_seconds_total += time.perf_counter() - started
        if engine.metrics is not None:
            engine.metrics.index_build_seconds.observe(time.perf_counter() - started)
        log.info("built %s index of segment %s (%d rows) in %.2fs", kind.name, seg.name, seg.row_count,
                 time.perf_counter() - started)
        engine.refresh()
