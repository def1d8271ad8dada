"""Reads over flushed segments: search, get by id, segment ids, preload / release."""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from coordinator.catalog import CatalogSnapshot
from coordinator.errors import IllegalArgument, UnexpectedError
from coordinator.hybrid.schema import collection_schema
from coordinator.limits import FOLD_BYTES, SEARCH_BLOCK_BYTES, SEARCH_BYTES_PER_RESULT
from coordinator.model import SEARCHABLE_STATES, Collection, IndexType, Partition, Segment, SegmentState
from coordinator.partitions import match_partitions
from coordinator.topk import NO_ID, TopK, merge_rows, result_width
from node.engine import Engine
from node.indexes import build_index, load_index
from node.kernels import _OVERSAMPLE_LIMIT, LiveMask
from node.page_in import PageIn
from node.params import SearchParams
from node.segment_cache import LoadedSegment

log = logging.getLogger(__name__)

_SMALL_RESULT = 256  # results mapped to ids without clipping the holes first (their temporary costs more)


def query_block(k: int) -> int:
    """Queries searched per index call for results ``k`` wide (all of them for ordinary widths)."""
    return max(1, SEARCH_BLOCK_BYTES // (max(1, k) * SEARCH_BYTES_PER_RESULT))


def _row_ids(row_ids: np.ndarray, offsets: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Map row offsets (-1 holes) to row ids, into ``out`` (which may be ``offsets`` itself)."""
    holes = offsets < 0
    if offsets.size <= _SMALL_RESULT:  # a few results (nq=1): the fewest numpy calls (-1 takes the last row)
        row_ids.take(offsets, out=out)
    else:
        row_ids.take(np.maximum(offsets, 0), out=out)
    out[holes] = NO_ID
    return out


def load_segment(engine: Engine, coll: Collection, seg: Segment, force: bool = False) -> LoadedSegment:
    """The segment's search structures from the engine's cache, loaded on a miss (once, even under concurrency):
    its built index, or the exact kernel over its rows when it has none."""
    index_file = seg.index_file if seg.state is SegmentState.INDEX else ""
    if not force:  # the common case, a segment held: no closures made
        held = engine.cache.hit(seg.id, seg.delete_version, index_file)
        if held is not None:
            return held
    store = engine.store

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

    return engine.cache.get(seg.id, seg.delete_version, index_file, load, reload_deletes, force)


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
        return load_segment(self.engine, coll, seg, force)

    def scalars(self, coll: Collection, seg: Segment, fields: Sequence[str],
                item: LoadedSegment | None = None) -> dict[str, np.ndarray]:
        """The named scalar columns of a flushed segment of a hybrid collection: memory-mapped, kept with the
        segment's cache entry (``item``, loaded if not given), row ``r`` of each aligned with ``item.ids[r]`` and
        ``item.live``."""
        schema = collection_schema(coll)
        if schema is None:
            raise IllegalArgument(f"Collection {coll.name} has no scalar fields")
        entry = item if item is not None else self.loaded(coll, seg)
        store = self.engine.store
        return self.engine.cache.columns(
            entry, fields, lambda missing: store.load_scalars(coll.id, seg.name, schema, missing))

    def preload(self, coll: Collection, segs: Sequence[Segment]) -> None:
        self.page_in([(coll.id, seg, self.loaded(coll, seg, force=True)) for seg in segs])

    def page_in(self, loaded: Sequence[tuple[int, Segment, LoadedSegment]]) -> None:
        """Read the mapped files of segments just loaded by a warm-up into memory (``node/page_in.py``)."""
        limit = self.engine.settings.warm_read_bytes
        if limit <= 0 or not loaded:
            return
        report = PageIn(self.engine.store, limit).segments(loaded)
        log.debug("warm-up read %d bytes of %d files in %.3f s", report.bytes_read, report.files, report.seconds)

    def release(self, segs: Sequence[Segment]) -> None:
        self.engine.cache.evict({s.id for s in segs})

    # -- search --------------------------------------------------------------------------------

    def search(self, coll: Collection, segs: Sequence[Segment], queries: np.ndarray, topk: int,
               params: SearchParams | None = None) -> TopK:
        """Top-k over ``segs``; width ``min(topk, live rows)`` (Milvus 1.1.1's k', :func:`result_width`), -1 holes only
        past the live rows (or where an index finds fewer). Ordered by the metric ``params`` ask for, if any.

        Memory: at most ``search_threads`` segments are searched at once for one request, and their results are
        folded into one accumulator as they arrive (a batch of small ones at a time), so a search holds its
        result plus about one partial result per thread (see :func:`node.admission.search_cost`), not one per
        segment. Finished results wait to be folded until FOLD_BYTES of them are there: small searches merge
        once at the end, wide ones fold as they go.
        """
        sp = params or SearchParams()
        width = result_width(topk, sum(s.live_count for s in segs))
        hib = (sp.metric or coll.metric).higher_is_better  # the direction of the metric asked for, if any
        if width <= 0:
            return TopK.empty(queries.shape[0], 0, hib)
        if len(segs) == 1:
            only = self._search_one(coll, segs[0], queries, width, sp)
            if only.k == width:
                return only  # already sorted, holes last: nothing to merge
            return merge_rows([only], width, hib)
        return self._fold(coll, segs, queries, width, sp)

    def _fold(self, coll: Collection, segs: Sequence[Segment], queries: np.ndarray, width: int,
              sp: SearchParams) -> TopK:
        hib = (sp.metric or coll.metric).higher_is_better
        return self.fold(segs, width, hib, lambda seg: self._search_one(coll, seg, queries, width, sp))

    def fold(self, segs: Sequence[Segment], width: int, hib: bool, search_one: Callable[[Segment], TopK]) -> TopK:
        """The results ``search_one`` gives for each of ``segs`` (at most ``width`` wide), folded into one
        ``width``-wide result.

        ``search_threads`` workers take segments from one queue until it is empty: the calling thread is one of
        them and the pool runs the others, so a search costs ``search_threads - 1`` pool hops however many
        segments it covers. Each worker folds its finished parts into its own accumulator once its share of
        FOLD_BYTES is there (so a search holds about one partial result and one accumulator per worker), and the
        workers' results are merged at the end.
        """
        todo = deque(segs)
        workers = max(1, min(self.engine.settings.search_threads, len(todo)))
        fold_bytes = FOLD_BYTES // workers  # the workers' unfolded parts stay under FOLD_BYTES together

        def work() -> TopK | None:
            acc: TopK | None = None
            done: list[TopK] = []  # finished parts not folded yet (less than fold_bytes of them)
            while True:
                try:
                    seg = todo.popleft()
                except IndexError:
                    break
                done.append(search_one(seg))
                if sum(p.ids.nbytes + p.distances.nbytes for p in done) >= fold_bytes:
                    acc = merge_rows(done if acc is None else [acc, *done], width, hib, out=acc)
                    done = []
            if not done:
                return acc
            return merge_rows(done if acc is None else [acc, *done], width, hib, out=acc)

        helpers = [self.pool.submit(work) for _ in range(workers - 1)]
        try:
            parts = [work()]
        except BaseException:
            todo.clear()  # the helpers stop after the segment they are searching
            for fut in helpers:
                fut.cancel()
            raise
        for fut in helpers:
            if not fut.cancel():  # a helper that never started has nothing to give
                parts.append(fut.result())
        found = [p for p in parts if p is not None]
        return found[0] if len(found) == 1 else merge_rows(found, width, hib)

    def _search_one(self, coll: Collection, seg: Segment, queries: np.ndarray, width: int,
                    params: SearchParams) -> TopK:
        """One segment's top ``min(width, live rows)`` of every query, row ids mapped from offsets.

        Wide searches run a block of queries at a time (faiss keeps a working set of about twice its output
        per call): the temporaries stay under SEARCH_BLOCK_BYTES, the result is written in place.
        """
        self.engine.omp_threads.apply()
        item = self.loaded(coll, seg)
        k = min(width, item.live.live)
        nq = queries.shape[0]
        if k <= 0:
            return TopK.empty(nq, 0, (params.metric or coll.metric).higher_is_better)
        row_ids = np.asarray(item.ids)
        extra = item.live.deleted if item.live.deleted <= _OVERSAMPLE_LIMIT else 0  # oversampled searches
        block = query_block(k + extra)
        if block >= nq:
            res = item.index.search(queries, k, item.live, params)
            offsets = np.asarray(res.ids)
            in_place = offsets.dtype == np.int64 and offsets.flags.writeable and offsets.flags.c_contiguous
            ids = _row_ids(row_ids, offsets, offsets if in_place else np.empty(offsets.shape, dtype=np.int64))
            return TopK(ids, np.asarray(res.distances, dtype=np.float32))
        out = TopK(np.empty((nq, k), dtype=np.int64), np.empty((nq, k), dtype=np.float32))
        for start in range(0, nq, block):
            rows = slice(start, min(nq, start + block))
            res = item.index.search(queries[rows], k, item.live, params)
            _row_ids(row_ids, res.ids, out.ids[rows])
            out.distances[rows] = res.distances
        return out

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
