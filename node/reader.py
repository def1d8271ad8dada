"""Reads over flushed segments: search, get by id, segment ids, preload / release."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from coordinator.catalog import CatalogSnapshot
from coordinator.errors import UnexpectedError
from coordinator.model import SEARCHABLE_STATES, Collection, IndexType, Partition, Segment, SegmentState
from coordinator.partitions import match_partitions
from coordinator.topk import NO_ID, TopK, merge
from node.engine import Engine
from node.indexes import build_index, load_index
from node.kernels import LiveMask
from node.params import SearchParams
from node.segment_cache import LoadedSegment

log = logging.getLogger(__name__)


class Reader:
    def __init__(self, engine: Engine, pool: ThreadPoolExecutor) -> None:
        self.engine = engine
        self.pool = pool

    # -- scope ---------------------------------------------------------------------------------

    def partitions(self, snap: CatalogSnapshot, coll: Collection, tags: Sequence[str]) -> list[Partition]:
        selected = match_partitions(snap.partitions_of(coll.id), tags)
        if tags and not selected:
            raise UnexpectedError("The specified partition does not exist")
        return selected

    @staticmethod
    def searchable(snap: CatalogSnapshot, coll: Collection, parts: Sequence[Partition]) -> list[Segment]:
        wanted = {p.id for p in parts}
        return [s for s in snap.segments_of(coll.id) if s.partition_id in wanted and s.state in SEARCHABLE_STATES]

    # -- loading -------------------------------------------------------------------------------

    def loaded(self, coll: Collection, seg: Segment, force: bool = False) -> LoadedSegment:
        store = self.engine.store

        def load() -> LoadedSegment:
            ids = store.ids(coll.id, seg.name)
            vectors = store.vectors(coll.id, seg.name)
            live = LiveMask.build(int(ids.shape[0]), store.deletes(coll.id, seg.name, seg.delete_version))
            if seg.state is SegmentState.INDEX and seg.index_file:
                path = store.index_path(coll.id, seg.name, seg.index_file)
                index = load_index(seg.index_type, path, vectors, coll.metric, json.loads(seg.index_params))
            else:
                index = build_index(IndexType.FLAT, vectors, coll.metric, {})
            return LoadedSegment(seg.id, ids, index, live, seg.delete_version, seg.index_file)

        def reload_deletes(item: LoadedSegment) -> LiveMask:
            return LiveMask.build(item.live.rows, store.deletes(coll.id, seg.name, seg.delete_version))

        index_file = seg.index_file if seg.state is SegmentState.INDEX else ""
        return self.engine.cache.get(seg.id, seg.delete_version, index_file, load, reload_deletes, force)

    def preload(self, coll: Collection, segs: Sequence[Segment]) -> None:
        for seg in segs:
            self.loaded(coll, seg, force=True)

    def release(self, segs: Sequence[Segment]) -> None:
        self.engine.cache.evict({s.id for s in segs})

    # -- search --------------------------------------------------------------------------------

    def search(self, coll: Collection, segs: Sequence[Segment], queries: np.ndarray, topk: int,
               params: SearchParams | None = None) -> TopK:
        """Exact top-k over ``segs``; width ``min(topk, live rows)``, -1 holes only past the live rows."""
        live_rows = sum(s.live_count for s in segs)
        width = min(topk, live_rows)
        hib = coll.metric.higher_is_better
        if width <= 0:
            return TopK.empty(queries.shape[0], 0, hib)
        sp = params or SearchParams()
        if len(segs) == 1:
            only = self._search_one(coll, segs[0], queries, width, sp)
            if only.k == width:
                return only  # already sorted, holes last: nothing to merge
            return merge([only], width, hib)
        parts = list(self.pool.map(lambda s: self._search_one(coll, s, queries, width, sp), segs))
        return merge(parts, width, hib)

    def _search_one(self, coll: Collection, seg: Segment, queries: np.ndarray, width: int,
                    params: SearchParams) -> TopK:
        self.engine.omp_threads.apply()
        item = self.loaded(coll, seg)
        k = min(width, item.live.live)
        if k <= 0:
            return TopK.empty(queries.shape[0], 0, coll.metric.higher_is_better)
        res = item.index.search(queries, k, item.live, params)
        offs = res.ids
        ids = np.where(offs >= 0, np.asarray(item.ids)[np.maximum(offs, 0)], NO_ID)
        return TopK(ids.astype(np.int64, copy=False), res.distances)

    # -- point reads ---------------------------------------------------------------------------

    def vectors_by_id(self, coll: Collection, segs: Sequence[Segment], wanted: np.ndarray) -> list[np.ndarray | None]:
        """The stored vector of each wanted id (newest segment first), or None when absent or deleted."""
        found: list[np.ndarray | None] = [None] * int(wanted.shape[0])
        missing = np.ones(wanted.shape[0], dtype=bool)
        for seg in sorted(segs, key=lambda s: s.id, reverse=True):
            if not missing.any():
                break
            item = self.loaded(coll, seg)
            offs = item.offsets_of(wanted)
            hit = np.flatnonzero(missing & (offs >= 0))
            if hit.size == 0:
                continue
            vectors = self.engine.store.vectors(coll.id, seg.name)
            for i in hit:
                found[int(i)] = np.array(vectors[int(offs[i])])
            missing[hit] = False
        return found

    def live_ids(self, coll: Collection, seg: Segment) -> np.ndarray:
        item = self.loaded(coll, seg)
        ids = np.asarray(item.ids)
        if item.live.mask is not None:
            ids = ids[item.live.mask]
        return ids
