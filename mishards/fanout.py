"""Search fan-out: searchable segments from the cached catalog -> placement -> one SearchInFiles per read
node in parallel, each within its own deadline, hedged on another replica when slow, retried elsewhere when
a node fails (``mishards.gather``) -> merge.

The original SearchParam bytes are embedded unchanged in each SearchInFilesParam (field 2), so the query
vectors are never decoded or re-encoded by the proxy. SearchByID first fetches the vectors of the ids
(GetVectorsByID on a read node, from the whole collection as Milvus 1.1 does), then fans out as a search of those
vectors in the searched partitions; ids not found keep their row, all holes, as on a single server. Node replies
merge in the direction of the metric the search asks for (``metric_type``), else the collection's.

HybridSearch fans out the same way, one HybridSearchInSegments per node around the client's HSearchParam bytes
(that message has SearchInFilesParam's layout), after reading the query against the collection's schema in the
catalog view (a query the nodes would refuse is refused here, with their code and reason).

Every sub-request carries the revision of the catalog view it was routed from (``mishards-min-revision``),
so a read node that has not yet seen that revision catches up before answering: what a client flushed
through this proxy is what the read nodes search.

A request after which two read nodes died or timed out is not sent anywhere again for a while
(``mishards.querydeath``); its fingerprint is computed only once a node failed on some request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

import grpc

from coordinator import tracing as spans
from coordinator import validation
from coordinator.auth.guard import forwarded
from coordinator.catalog import CatalogSnapshot
from coordinator.errors import ErrorCode, MilvusError
from coordinator.hybrid.from_wire import query_from_search_param
from coordinator.hybrid.schema import collection_schema
from coordinator.hybrid.tree import HybridQuery
from coordinator.membership import Member
from coordinator.model import MAX_GET_IDS, MAX_TOPK, Collection, MetricType, Segment
from coordinator.placement import Placement
from coordinator.search_params import parse_extra_params, search_metric
from coordinator.topk import TopK, by_id_rows
from coordinator.wire import encode_topk
from milvus_wire import milvus_pb2, wire_fastpath_pb2
from mishards.catalog_view import CatalogView
from mishards.cluster import Cluster
from mishards.gather import gather
from mishards.outcomes import Ending, blames_request, node_fault, reply_status, rpc_ending, suspects_node
from mishards.querydeath import fingerprint
from mishards.results import merge_node_results
from mishards.routing import searchable_segments
from mishards.subrequests import (
    HYBRID_SEARCH_IN_SEGMENTS,
    MIN_REVISION_HEADER,
    SEARCH_IN_FILES,
    TOO_LARGE,
    Failed,
    FanoutPolicy,
    SubRequests,
    as_error_code,
    search_in_files_request,
)

if TYPE_CHECKING:
    from coordinator.tracing import Metadata, Tracing
    from mishards.metrics import ProxyMetrics

__all__ = ["MIN_REVISION_HEADER", "SEARCH_IN_FILES", "Failed", "Fanout", "FanoutPolicy", "merge_direction",
           "search_in_files_request", "search_param_for_ids"]

log = logging.getLogger(__name__)

GET_VECTORS = "/milvus.grpc.MilvusService/GetVectorsByID"
EMPTY_SCOPE = "Collection or partition is empty"
RequestKey = Callable[[], bytes]


def request_key(method: str, request: bytes) -> RequestKey:
    """The request's fingerprint, computed on first use (most searches never need it)."""
    cached: list[bytes] = []

    def key() -> bytes:
        if not cached:
            cached.append(fingerprint(method, request))
        return cached[0]

    return key


def result_size_refusal(name: str, topk: int, nq: int) -> Failed | None:
    """Milvus 1.1.1's result-size rule (nq x topk x 12 bytes under 2 GiB), at the place the nodes check it:
    after the collection name and topk, whose errors the writer words (None), before partitions and the
    collection's existence. Only a refused size costs more than a multiplication."""
    try:
        validation.result_size(nq, topk)
        return None
    except MilvusError as refused:
        try:
            validation.collection_name(name)
            validation.topk(topk)
        except MilvusError:
            return None
        return Failed(refused.code, refused.reason)


def search_param_for_ids(param: Any, records: Sequence[Any]) -> bytes:
    """The SearchParam that searches ``records`` (the vectors of a SearchByIDParam's found ids)."""
    return bytes(milvus_pb2.SearchParam(
        collection_name=param.collection_name, partition_tag_array=param.partition_tag_array,
        query_record_array=records, topk=param.topk, extra_params=param.extra_params,
    ).SerializeToString())


def merge_direction(collection_metric: MetricType, extra_params: Any) -> bool:
    """Whether the merged results sort descending: by the metric the search asks for (``metric_type`` in its
    params, honoured by segments searched exactly), else the collection's. Params the nodes refuse (malformed,
    an illegal metric) leave the collection's: every node answers the error, nothing is merged."""
    try:
        return search_metric(parse_extra_params(extra_params, "search params"), collection_metric).higher_is_better
    except MilvusError:
        return collection_metric.higher_is_better


def hybrid_scope(snap: CatalogSnapshot, request: bytes) -> tuple[Collection, list[Segment], HybridQuery,
                                                                 CatalogSnapshot] | None:
    """What a HybridSearch covers, read against the catalog view in the node's validation order; None for what the
    writer answers in its own words (a bad name or tags, an unknown or plain collection, tags matching nothing,
    nothing to search), Failed for a query the nodes would refuse (the same code and reason: the same code reads
    it against the same schema)."""
    try:
        param = milvus_pb2.HSearchParam.FromString(request)
    except Exception:  # undecodable: the writer's refusal is the answer
        return None
    try:
        validation.collection_name(param.collection_name)
        tags = validation.partition_tags(param.partition_tag_array)
    except MilvusError:
        return None
    coll = snap.collection(param.collection_name)
    schema = collection_schema(coll) if coll is not None else None
    if schema is None:
        return None
    try:
        query = query_from_search_param(param, schema)
    except MilvusError as refused:
        raise Failed(refused.code, refused.reason) from None
    try:
        coll, segs = searchable_segments(snap, param.collection_name, tags)
    except MilvusError:
        return None
    return (coll, segs, query, snap) if segs else None


class Fanout:
    def __init__(self, cluster: Cluster, view: CatalogView, timeout: float, replication: int = 0,
                 metrics: ProxyMetrics | None = None, tracing: Tracing | None = None, strong: bool = False,
                 policy: FanoutPolicy | None = None) -> None:
        self.cluster = cluster
        self.view = view
        self.timeout = timeout or 60.0
        self.replication = replication
        self.metrics = metrics
        self.tracing = tracing
        self.strong = strong  # check the catalog revision before each search (no stale read across proxies)
        self.subrequests = SubRequests(cluster, policy or FanoutPolicy(), metrics, tracing)
        self._placements: tuple[tuple[str, ...], Placement] | None = None

    # -- entry points ----------------------------------------------------------------------------

    def search(self, request: bytes) -> bytes | None:
        """The merged reply, or None when the writer should answer (no readers, or an error the writer words)."""
        readers = self.cluster.readers()
        if not readers:
            return None
        param = wire_fastpath_pb2.SearchParamRaw.FromString(request)
        too_big = result_size_refusal(param.collection_name, int(param.topk), len(param.query_record_array))
        if too_big is not None:
            raise too_big  # no node gets it: the merge alone would need more than the result's size
        snap = self._snapshot()
        try:
            coll, segs = searchable_segments(snap, param.collection_name, list(param.partition_tag_array))
        except MilvusError:
            return None  # the writer answers with Milvus' exact status
        if not segs:
            return None
        if self.tracing is not None:
            self.tracing.annotate({spans.COLLECTION: coll.name, spans.NQ: len(param.query_record_array),
                                   spans.TOPK: int(param.topk), spans.SEGMENTS: len(segs)})
        key = request_key("Search", request)
        self.subrequests.check_refused(key)
        deadline = time.monotonic() + self.timeout
        parts = self._search(segs, readers, request, snap.revision, deadline, key)
        if len(parts) == 1:
            return parts[0][0]  # one node searched every segment: its reply is the answer, byte for byte
        hib = merge_direction(coll.metric, param.extra_params)
        return encode_topk(self._merge([p[1] for p in parts], int(param.topk), hib))

    def search_by_id(self, request: bytes) -> bytes | None:
        """SearchByID over the read nodes, or None when the writer should answer."""
        readers = self.cluster.readers()
        if not readers:
            return None
        param = milvus_pb2.SearchByIDParam.FromString(request)
        too_big = result_size_refusal(param.collection_name, int(param.topk), len(param.id_array))
        if too_big is not None:
            raise too_big
        if not param.id_array or not 0 < param.topk <= MAX_TOPK:
            return None  # the writer words the error
        snap = self._snapshot()
        tags = list(param.partition_tag_array)
        try:
            coll, segs = searchable_segments(snap, param.collection_name, tags)
        except MilvusError:
            return None
        if not segs:
            return None
        if self.tracing is not None:
            self.tracing.annotate({spans.COLLECTION: coll.name, spans.NQ: len(param.id_array),
                                   spans.TOPK: int(param.topk), spans.SEGMENTS: len(segs)})
        key = request_key("SearchByID", request)
        self.subrequests.check_refused(key)
        deadline = time.monotonic() + self.timeout
        # As Milvus 1.1: the ids are looked up in the whole collection, whatever the search's partition tags.
        records = self._vectors(coll, [""], list(param.id_array), readers, snap.revision, deadline, key)
        found = [i for i, r in enumerate(records) if r.float_data or r.binary_data]
        if not found:
            return None  # nothing to search: the writer answers (all holes, or its own error wording)
        hib = merge_direction(coll.metric, param.extra_params)
        query = search_param_for_ids(param, [records[i] for i in found])
        parts = self._search(segs, readers, query, snap.revision, deadline, key)
        part = self._merge([p[1] for p in parts], int(param.topk), hib)
        return encode_topk(by_id_rows(found, len(records), part, hib))

    # -- search ----------------------------------------------------------------------------------

    def hybrid_search(self, request: bytes) -> bytes | None:
        """HybridSearch over the read nodes (one HybridSearchInSegments per node, exactly as Search fans out), or
        None when the writer should answer (no readers, an error the writer words, nothing to search)."""
        readers = self.cluster.readers()
        if not readers:
            return None
        scope = hybrid_scope(self._snapshot(), request)
        if scope is None:
            return None
        coll, segs, query, snap = scope
        if self.tracing is not None:
            self.tracing.annotate({spans.COLLECTION: coll.name, spans.NQ: query.vector.nq,
                                   spans.TOPK: query.vector.topk, spans.SEGMENTS: len(segs)})
        key = request_key("HybridSearch", request)
        self.subrequests.check_refused(key)
        deadline = time.monotonic() + self.timeout
        parts = self._search(segs, readers, request, snap.revision, deadline, key, HYBRID_SEARCH_IN_SEGMENTS)
        if len(parts) == 1:
            return parts[0][0]
        try:
            hib = search_metric(query.vector.params, coll.metric).higher_is_better
        except MilvusError:
            hib = coll.metric.higher_is_better  # every node refuses the metric: nothing is merged
        return encode_topk(self._merge([p[1] for p in parts], query.vector.topk, hib))

    def _search(self, segs: list[Segment], readers: tuple[Member, ...], request: bytes, revision: int,
                deadline: float, key: RequestKey, method: str = SEARCH_IN_FILES) -> list[tuple[bytes, TopK]]:
        """Each accepted node reply (serialized and decoded), together covering ``segs`` once."""
        placement = self._placement(readers)
        addresses = {m.node_id: m.address for m in readers}
        return gather(self.subrequests, [s.id for s in segs], placement, addresses, request, revision, deadline, key,
                      method)

    def _merge(self, parts: list[TopK], topk: int, higher_is_better: bool) -> TopK:
        started = time.perf_counter()
        merged = merge_node_results(parts, topk, higher_is_better)
        if self.metrics is not None:
            self.metrics.merge_seconds.observe(time.perf_counter() - started)
        return merged

    def _snapshot(self) -> CatalogSnapshot:
        """The catalog view a search routes from: checked against the catalog first when ``strong``."""
        if not self.strong:
            return self.view.snapshot()
        try:
            return self.view.catch_up()
        except Exception as exc:  # the catalog is unreachable: route from the last view rather than fail
            log.warning("catalog revision check failed (%s); searching the last view", exc)
            return self.view.snapshot()

    def _placement(self, readers: tuple[Member, ...]) -> Placement:
        """Placement over these readers, kept while they do not change (it caches replicas per segment)."""
        key = tuple(sorted(m.node_id for m in readers))
        cached = self._placements
        if cached is None or cached[0] != key:
            cached = (key, Placement.of(key, r=self.replication or None))
            self._placements = cached
        return cached[1]

    def _traced(self, path: str, node: str, metadata: Metadata) -> AbstractContextManager[Metadata]:
        """A client span around one blocking call to ``node`` when tracing is on; yields the metadata to send."""
        if self.tracing is None:
            return nullcontext(metadata)
        return self.tracing.client(path, node, metadata)

    # -- vectors by id -----------------------------------------------------------------------------

    def _vectors(self, coll: Collection, scopes: list[str], ids: list[int], readers: tuple[Member, ...],
                 revision: int, deadline: float, key: RequestKey) -> list[Any]:
        """One RowRecord per id (empty where the id is not in the scopes), read from the least-loaded
        reader that answers, then from the writer."""
        records: list[Any] = [None] * len(ids)
        for scope in scopes:
            for start in range(0, len(ids), MAX_GET_IDS):
                todo = [i for i in range(start, min(len(ids), start + MAX_GET_IDS)) if records[i] is None]
                if not todo:
                    continue
                request = milvus_pb2.VectorsIdentity(collection_name=coll.name, partition_tag=scope,
                                                     id_array=[ids[i] for i in todo]).SerializeToString()
                reply = milvus_pb2.VectorsData.FromString(self.any_node(readers, GET_VECTORS, request, revision,
                                                                        deadline, key=key))
                if reply.status.error_code:
                    if reply.status.reason == EMPTY_SCOPE:
                        continue
                    raise Failed(as_error_code(reply.status.error_code), reply.status.reason)
                for i, record in zip(todo, reply.vectors_data, strict=False):
                    if record.float_data or record.binary_data:
                        records[i] = record
        empty = milvus_pb2.RowRecord()
        return [r if r is not None else empty for r in records]

    def any_node(self, readers: tuple[Member, ...], method: str, request: bytes, revision: int,
                 deadline: float, writer_last: bool = True, key: RequestKey | None = None) -> bytes:
        """The reply of the first node that answers well: readers least loaded first (suspects last), then
        the writer (unless ``writer_last`` is False). Each call gets the sub-request timeout; a node whose
        in-band status is its own trouble (``outcomes.node_fault``) is passed over while another remains
        (its reply is returned when none does). ``key`` is the request's fingerprint for query-of-death
        protection (by default this request's own)."""
        shared = self.subrequests
        key = key or request_key(method, request)
        shared.check_refused(key)
        suspects = self.cluster.failures.suspects()
        load = shared.inflight.snapshot()
        order = sorted(readers, key=lambda m: (m.node_id in suspects, load.get(m.node_id, 0)))
        writer = self.cluster.writer() if writer_last else None
        candidates = [*order, *([writer] if writer is not None else [])]
        name = method.rpartition("/")[2]
        fallback: bytes | None = None
        for member in candidates:
            if time.monotonic() >= deadline:
                break
            call = self.cluster.channel(member.address).unary_unary(method)
            started = time.perf_counter()
            try:
                sent = ((MIN_REVISION_HEADER, str(revision)), *forwarded())
                with self._traced(method, member.node_id, sent) as metadata:
                    data = bytes(call(request, timeout=shared.call_timeout(deadline), metadata=metadata))
            except grpc.RpcError as exc:
                ending = rpc_ending(exc.code(), exc.details())
                if ending == Ending.TOO_LARGE:  # every node refuses the same bytes
                    raise Failed(ErrorCode.UNEXPECTED_ERROR, f"{TOO_LARGE}: {exc.details()}") from None
                log.warning("%s on %s failed (%s); trying another node", name, member.node_id, exc.code())
                shared.node_failed(member.node_id, suspects_node(ending))
                if ending == Ending.TIMED_OUT and self.metrics is not None:
                    self.metrics.subrequest_timeouts.labels(member.node_id).inc()
                if blames_request(ending) and shared.deaths.enabled:
                    shared.blame(key, member.node_id)
                continue
            finally:
                if self.metrics is not None:
                    self.metrics.subrequest(name, member.node_id, time.perf_counter() - started)
            code, reason = reply_status(data)
            if node_fault(code, reason):
                log.warning("%s on %s answered %d (%s); trying another node", name, member.node_id, code, reason)
                shared.node_failed(member.node_id, suspect=True)
                fallback = data
                continue
            self.cluster.failures.succeeded(member.node_id)
            return data
        if fallback is not None:
            return fallback
        raise Failed(ErrorCode.UNEXPECTED_ERROR, "No node could serve the request in time")
