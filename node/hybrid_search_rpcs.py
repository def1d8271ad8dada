"""The node's hybrid search RPCs (HybridSearch, HybridSearchInSegments), mixed into :class:`node.service.MilvusService`.

Validation, first error wins: the collection name, the partition tags, the collection's existence and its scalar
schema (COLLECTION_NOT_EXISTS for a plain collection, as the other hybrid RPCs), the query against that schema
(:mod:`coordinator.hybrid.from_wire`: the tree, exactly one vector query, ``topk`` as ILLEGAL_TOPK, the result-size
rule ``nq x topk``, the params as strict JSON with ``exact`` taken out, the vectors), the params against the
collection's index type (as ``Search``), then the search-time metric (``metric_type``) and the partitions. Unlike
``Search``, topk is checked after the collection's existence: it sits inside the query, which is read against the
collection's schema.

``HybridSearchInSegments`` is the proxy's fan-out twin of ``SearchInFiles``: ``segment_id_array`` lists numeric
segment (file) ids of the collection, as ``SearchInFiles`` takes them, and the search param's partition tags are not
read (the caller chose the segments). Both are admitted like ``Search`` (``node.admission``), charged the search's
estimate plus the filter's masks and gathered rows (:func:`node.filter_plan.filter_cost`), and share the node's
:class:`~node.hybrid_search.MaskCache`.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from coordinator import validation
from coordinator.errors import UnexpectedError
from coordinator.hybrid.from_wire import query_from_search_param
from coordinator.hybrid.metadata import hybrid_collection
from coordinator.hybrid.tree import HybridQuery
from coordinator.limits import HEAVY_SEARCH_BYTES, SearchShape, search_cost
from coordinator.model import MAX_SEARCH_FILES, Collection, Segment
from milvus_wire import milvus_pb2
from node import convert, params
from node.filter_plan import filter_cost
from node.hybrid_search import MaskCache, filtered_search
from node.params import SearchParams
from node.rpc import rpc
from node.search_rpcs import SearchRpcs

if TYPE_CHECKING:
    from coordinator.catalog import CatalogSnapshot

INVALID_FILE_ID = "Invalid file id"


def hybrid_cost(nq: int, topk: int, segs: Sequence[Segment], threads: int, query_bytes: int) -> int:
    """Bytes a hybrid search holds at its peak: a search's estimate and the filter's (masks, gathered rows)."""
    width = min(topk, sum(s.live_count for s in segs))
    window = max(1, min(threads, len(segs)))
    return (search_cost(SearchShape(nq, width, len(segs), threads, query_bytes))
            + filter_cost([s.row_count for s in segs], window))


class HybridSearchRpcs(SearchRpcs):
    _mask_cache: MaskCache | None = None

    @property
    def masks(self) -> MaskCache:
        """This node's masks of recent filters (made at the first hybrid search)."""
        if self._mask_cache is None:
            self._mask_cache = MaskCache()
        return self._mask_cache

    def _hybrid_setup(self, param: Any, read_tags: bool = True) -> tuple[Collection, list[str], HybridQuery,
                                                                        SearchParams]:
        validation.collection_name(param.collection_name)
        tags = validation.partition_tags(param.partition_tag_array) if read_tags else []
        coll, schema = hybrid_collection(self.engine.snapshot(), param.collection_name)
        query = query_from_search_param(param, schema)
        vector = query.vector
        sp = params.search_params(coll.index_type, vector.params, vector.topk)
        return coll, tags, query, params.with_metric(sp, vector.params, coll.metric)

    def _admit_hybrid(self, query: HybridQuery, segs: Sequence[Segment]) -> AbstractContextManager[bool]:
        vector = query.vector
        cost = hybrid_cost(vector.nq, vector.topk, segs, self.engine.settings.search_threads,
                           int(vector.vectors.nbytes))
        what = f"A hybrid search of nq {vector.nq} topk {vector.topk} over {len(segs)} segments"
        return self.admission.admit(what, cost, search=cost >= HEAVY_SEARCH_BYTES)

    @rpc(milvus_pb2.TopKQueryResult)
    def HybridSearch(self, request: Any) -> Any:
        coll, tags, query, sp = self._hybrid_setup(request)

        def segments(snap: CatalogSnapshot) -> list[Segment]:
            return self.reader.searchable(snap, coll, self.reader.partitions(snap, coll, tags))

        segs = segments(self.engine.snapshot())
        with self._admit_hybrid(query, segs) as waited:
            if waited:  # segments merged meanwhile may have lost their files: search what is there now
                segs = segments(self.engine.snapshot())
            self._annotate(segs)
            return convert.topk_result(filtered_search(self.reader, coll, segs, query, sp, self.masks))

    @rpc(milvus_pb2.TopKQueryResult)
    def HybridSearchInSegments(self, request: Any) -> Any:
        coll, _, query, sp = self._hybrid_setup(request.search_param, read_tags=False)
        ids = request.segment_id_array
        if len(ids) == 0 or len(ids) > MAX_SEARCH_FILES:
            raise UnexpectedError(INVALID_FILE_ID)
        segs = self._requested_files(coll, ids)
        with self._admit_hybrid(query, segs) as waited:
            if waited:
                segs = self._requested_files(coll, ids)
            self._annotate(segs)
            return convert.topk_result(filtered_search(self.reader, coll, segs, query, sp, self.masks))
