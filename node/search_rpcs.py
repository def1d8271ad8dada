"""The node's search RPCs (Search, SearchByID, SearchInFiles), mixed into :class:`node.service.MilvusService`.

Validation runs in Milvus 1.1's order: name, topk, result size (nq x topk), partition tags, the collection's
existence, the search params against the collection's index type, the vectors, and last the search-time metric
(``metric_type`` in the params, which 1.1 checks when it searches a segment as IDMAP / BIN_IDMAP). Results are
``min(topk, live rows)`` wide (:func:`coordinator.topk.result_width`), ordered by the metric asked for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from coordinator import limits, validation
from coordinator import tracing as spans
from coordinator.catalog import CatalogSnapshot
from coordinator.errors import IllegalArgument, UnexpectedError
from coordinator.model import MAX_SEARCH_FILES, Collection, Segment
from coordinator.topk import TopK, by_id_rows, result_width
from milvus_wire import milvus_pb2
from node import convert, params
from node.params import SearchParams
from node.rpc import rpc

if TYPE_CHECKING:
    from coordinator.tracing import Tracing
    from node.admission import Admission
    from node.engine import Engine
    from node.metrics import NodeMetrics
    from node.reader import Reader

EMPTY_COLLECTION = "Collection or partition is empty"


@dataclass(frozen=True, slots=True)
class SearchScope:
    """A validated search: its collection, the segments it searches, its params (``raw`` as given: the
    search-time metric among them is checked once the vectors are)."""

    coll: Collection
    segs: tuple[Segment, ...]
    search: SearchParams
    raw: Mapping[str, Any]
    row_bytes: int  # the collection's bytes per vector

    def with_metric(self) -> SearchParams:
        """The search params with the metric the search asks for (ILLEGAL_ARGUMENT when it may not)."""
        return params.with_metric(self.search, self.raw, self.coll.metric)


class ScopeCache:
    """Validated search scopes of one catalog snapshot by request shape (name, topk, nq, tags, params text), so
    that repeated searches skip validation, catalog look-ups and partition matching. Only successes are kept
    (errors are raised again every time); a newer snapshot starts an empty cache."""

    def __init__(self, limit: int = 1024) -> None:
        self.limit = limit
        self._snap: CatalogSnapshot | None = None
        self._items: dict[tuple[Any, ...], SearchScope] = {}

    def get(self, snap: CatalogSnapshot, key: tuple[Any, ...]) -> SearchScope | None:
        return self._items.get(key) if self._snap is snap else None

    def put(self, snap: CatalogSnapshot, key: tuple[Any, ...], scope: SearchScope) -> None:
        if self._snap is not snap or len(self._items) >= self.limit:
            self._items = {}
            self._snap = snap
        self._items[key] = scope  # keys carry the revision: a scope never answers another revision's key


class SearchRpcs:
    engine: Engine
    reader: Reader
    admission: Admission
    tracing: Tracing | None
    metrics: NodeMetrics | None
    scopes: ScopeCache

    def _search_setup(self, name: str, topk: int, nq: int, tags: Any, extra: Any) -> SearchScope:
        """Validation in Milvus order: name, topk, result size (nq x topk), tags, existence, params (against
        the collection's index); the scope of a request shaped like an earlier one of the same snapshot is
        remembered."""
        snap = self.engine.snapshot()
        key = (snap.revision, name, topk, nq, tuple(tags), params.params_text(extra))
        scope = self.scopes.get(snap, key)
        if scope is not None:
            return scope
        validation.collection_name(name)
        validation.topk(topk)
        validation.result_size(nq, topk)
        clean = validation.partition_tags(tags)
        coll = self.engine.collection(name, snap)
        raw, sp = params.search_settings(coll.index_type, extra, topk)
        segs = self.reader.searchable(snap, coll, self.reader.partitions(snap, coll, clean))
        scope = SearchScope(coll, tuple(segs), sp, raw, coll.row_bytes)
        self.scopes.put(snap, key, scope)
        return scope

    def _admit_search(self, nq: int, topk: int, segs: Sequence[Segment], query_bytes: int) -> Any:
        return self.admission.search(nq, topk, segs, self.engine.settings.search_threads, query_bytes)

    def _annotate(self, segs: Sequence[Segment]) -> None:
        if self.tracing is not None:
            self.tracing.annotate({spans.SEGMENTS: len(segs)})

    @rpc(milvus_pb2.TopKQueryResult)
    def Search(self, request: Any) -> Any:
        records = request.query_record_array
        nq = len(records)
        topk = request.topk
        scope = self._search_setup(request.collection_name, topk, nq, request.partition_tag_array,
                                   request.extra_params)
        query_bytes = nq * scope.row_bytes
        validation.vector_bytes(nq, scope.row_bytes)
        with self._admit_search(nq, topk, scope.segs, query_bytes) as waited:
            if waited:  # segments merged meanwhile may have lost their files: search what is there now
                scope = self._search_setup(request.collection_name, topk, nq, request.partition_tag_array,
                                           request.extra_params)
            if self.tracing is not None:
                self._annotate(scope.segs)
            queries = convert.vectors(records, scope.coll)
            sp = scope.with_metric()
            return convert.topk_result(self.reader.search(scope.coll, scope.segs, queries, topk, sp))

    @rpc(milvus_pb2.TopKQueryResult)
    def SearchByID(self, request: Any) -> Any:
        def setup() -> SearchScope:
            return self._search_setup(request.collection_name, request.topk, len(request.id_array),
                                      request.partition_tag_array, request.extra_params)

        scope = setup()
        if len(request.id_array) == 0:
            raise IllegalArgument("No vector id specified")
        nq = len(request.id_array)
        query_bytes = nq * (scope.coll.row_bytes + limits.QUERY_OBJECT_BYTES)
        with self._admit_search(nq, request.topk, scope.segs, query_bytes) as waited:
            if waited:
                scope = setup()
            self._annotate(scope.segs)
            return self._search_by_id(request, scope)

    def _search_by_id(self, request: Any, scope: SearchScope) -> Any:
        """As Milvus 1.1: the ids are looked up in the whole collection (every partition, whatever the search's
        tags), a collection with nothing flushed is UNEXPECTED_ERROR "Collection or partition is empty", the
        vectors found are searched in the search's partitions, and every id keeps its row (all holes where it
        was not found)."""
        coll = scope.coll
        snap = self.engine.snapshot()
        everywhere = self.reader.searchable(snap, coll, snap.partitions_of(coll.id))
        if not everywhere:
            raise UnexpectedError(EMPTY_COLLECTION)
        found = self.reader.vectors_by_id(coll, everywhere, np.asarray(request.id_array, dtype=np.int64))
        sp = scope.with_metric()
        hib = (sp.metric or coll.metric).higher_is_better
        present = [i for i, v in enumerate(found) if v is not None]
        if present:
            queries = np.stack([found[i] for i in present])  # type: ignore[misc]
            part = self.reader.search(coll, scope.segs, queries, request.topk, sp)
        else:
            part = TopK.empty(0, result_width(request.topk, sum(s.live_count for s in scope.segs)), hib)
        return convert.topk_result(by_id_rows(present, len(found), part, hib))

    @rpc(milvus_pb2.TopKQueryResult)
    def SearchInFiles(self, request: Any) -> Any:
        sp = request.search_param
        scope = self._search_setup(sp.collection_name, sp.topk, len(sp.query_record_array), [], sp.extra_params)
        if len(request.file_id_array) == 0 or len(request.file_id_array) > MAX_SEARCH_FILES:
            raise UnexpectedError("Invalid file id")
        coll = scope.coll
        segs = self._requested_files(coll, request.file_id_array)
        nq = len(sp.query_record_array)
        validation.vector_bytes(nq, coll.row_bytes)
        with self._admit_search(nq, sp.topk, segs, nq * coll.row_bytes) as waited:
            if waited:
                segs = self._requested_files(coll, request.file_id_array)
            self._annotate(segs)
            queries = convert.vectors(sp.query_record_array, coll)
            return convert.topk_result(self.reader.search(coll, segs, queries, sp.topk, scope.with_metric()))

    def _requested_files(self, coll: Collection, file_ids: Any) -> list[Segment]:
        segs = self._files(coll, file_ids, self.engine.snapshot())
        if segs is None and not self.engine.writable:
            # A caller with a newer catalog view than ours (a segment just flushed or merged): catch up once.
            segs = self._files(coll, file_ids, self.engine.refresh())
        if segs is None:
            raise UnexpectedError("Invalid file id")
        return segs

    @staticmethod
    def _files(coll: Collection, file_ids: Any, snap: CatalogSnapshot) -> list[Segment] | None:
        """The segments named by SearchInFiles file ids (deduplicated), or None if one is unknown."""
        segs: list[Segment] = []
        seen: set[int] = set()
        for raw in file_ids:
            text = raw.strip()
            seg = snap.segments_by_id.get(int(text)) if text.isdigit() else None
            if seg is None or seg.collection_id != coll.id:
                return None
            if seg.id not in seen:
                seen.add(seg.id)
                segs.append(seg)
        return segs
