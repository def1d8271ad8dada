"""Search fan-out: searchable segments from the cached catalog -> placement -> one SearchInFiles per read
node in parallel within one deadline -> failover of a failed node's segments to other replicas -> merge.

The original SearchParam bytes are embedded unchanged in each SearchInFilesParam (field 2), so the query
vectors are never decoded or re-encoded by the proxy. SearchByID first fetches the vectors of the ids
(GetVectorsByID on a read node, scoped to the searched partitions), then fans out as a search of those
vectors; ids not found keep their row, all holes, as on a single server.

Every sub-request carries the revision of the catalog view it was routed from (``mishards-min-revision``),
so a read node that has not yet seen that revision catches up before answering: what a client flushed
through this proxy is what the read nodes search.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

import grpc

from coordinator import tracing as spans
from coordinator.catalog import CatalogSnapshot
from coordinator.errors import ErrorCode, MilvusError
from coordinator.membership import Member
from coordinator.model import MAX_GET_IDS, MAX_TOPK, Collection, Segment
from coordinator.partitions import match_partitions
from coordinator.placement import Placement
from coordinator.topk import TopK
from coordinator.wire import encode_topk, field
from milvus_wire import milvus_pb2, wire_fastpath_pb2
from mishards.catalog_view import CatalogView
from mishards.cluster import Cluster
from mishards.results import decode_topk, merge_node_results
from mishards.routing import RoutePlan, plan_avoiding, reroute, searchable_segments

if TYPE_CHECKING:
    from coordinator.tracing import Metadata, Tracing
    from mishards.metrics import ProxyMetrics

log = logging.getLogger(__name__)

SEARCH_IN_FILES = "/milvus.grpc.MilvusService/SearchInFiles"
GET_VECTORS = "/milvus.grpc.MilvusService/GetVectorsByID"
MIN_REVISION_HEADER = "mishards-min-revision"
EMPTY_SCOPE = "Collection or partition is empty"
# Errors after which a node is suspected for a while (it is down or unreachable, not merely busy).
NODE_DOWN = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED})


def search_in_files_request(file_ids: tuple[int, ...], search_param: bytes) -> bytes:
    """A serialized SearchInFilesParam around an already serialized SearchParam."""
    return b"".join(field(1, str(f).encode()) for f in file_ids) + field(2, search_param)


def search_param_for_ids(param: Any, records: Sequence[Any]) -> bytes:
    """The SearchParam that searches ``records`` (the vectors of a SearchByIDParam's found ids)."""
    return bytes(milvus_pb2.SearchParam(
        collection_name=param.collection_name, partition_tag_array=param.partition_tag_array,
        query_record_array=records, topk=param.topk, extra_params=param.extra_params,
    ).SerializeToString())


def fill_rows(found: Sequence[int], total: int, part: TopK, higher_is_better: bool) -> TopK:
    """``total`` rows: row ``found[i]`` is ``part``'s row i, every other row is all holes."""
    if len(found) == total:
        return part
    full = TopK.empty(total, part.k, higher_is_better)
    full.ids[list(found)] = part.ids
    full.distances[list(found)] = part.distances
    return full


class Failed(Exception):
    def __init__(self, code: ErrorCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class Fanout:
    def __init__(self, cluster: Cluster, view: CatalogView, timeout: float, replication: int = 0,
                 metrics: ProxyMetrics | None = None, tracing: Tracing | None = None, strong: bool = False) -> None:
        self.cluster = cluster
        self.view = view
        self.timeout = timeout or 60.0
        self.replication = replication
        self.metrics = metrics
        self.tracing = tracing
        self.strong = strong  # check the catalog revision before each search (no stale read across proxies)
        self._inflight: Counter[str] = Counter()
        self._placements: tuple[tuple[str, ...], Placement] | None = None
        self._lock = threading.Lock()

    # -- entry points ----------------------------------------------------------------------------

    def search(self, request: bytes) -> bytes | None:
        """The merged reply, or None when the writer should answer (no readers, or an error the writer words)."""
        readers = self.cluster.readers()
        if not readers:
            return None
        param = wire_fastpath_pb2.SearchParamRaw.FromString(request)
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
        deadline = time.monotonic() + self.timeout
        parts = self._search(coll, segs, readers, request, snap.revision, deadline)
        if len(parts) == 1:
            return parts[0][0]  # one node searched every segment: its reply is the answer, byte for byte
        return encode_topk(self._merge([p[1] for p in parts], int(param.topk), coll.metric.higher_is_better))

    def search_by_id(self, request: bytes) -> bytes | None:
        """SearchByID over the read nodes, or None when the writer should answer."""
        readers = self.cluster.readers()
        if not readers:
            return None
        param = milvus_pb2.SearchByIDParam.FromString(request)
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
        deadline = time.monotonic() + self.timeout
        scopes = [p.tag for p in match_partitions(snap.partitions_of(coll.id), tags)] if tags else [""]
        records = self._vectors(coll, scopes, list(param.id_array), readers, snap.revision, deadline)
        found = [i for i, r in enumerate(records) if r.float_data or r.binary_data]
        if not found:
            return None  # nothing to search: the writer answers (all holes, or its own error wording)
        hib = coll.metric.higher_is_better
        query = search_param_for_ids(param, [records[i] for i in found])
        parts = self._search(coll, segs, readers, query, snap.revision, deadline)
        part = self._merge([p[1] for p in parts], int(param.topk), hib)
        return encode_topk(fill_rows(found, len(records), part, hib))

    # -- search ----------------------------------------------------------------------------------

    def _search(self, coll: Collection, segs: list[Segment], readers: tuple[Member, ...], request: bytes,
                revision: int, deadline: float) -> list[tuple[bytes, TopK]]:
        """Each answering node's reply (serialized and decoded), together covering ``segs`` once."""
        placement = self._placement(readers)
        addresses = {m.node_id: m.address for m in readers}
        with self._lock:
            inflight = dict(self._inflight)
        route = plan_avoiding([s.id for s in segs], placement, inflight, self.cluster.failures.suspects())
        if route.unplaced:
            raise Failed(ErrorCode.UNEXPECTED_ERROR, f"Segments {list(route.unplaced)[:5]} have no live replica")
        if self.metrics is not None:
            self.metrics.fanout_width.observe(len(route.by_node))
        return self._gather(route, placement, addresses, request, revision, deadline)

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

    def _gather(self, route: RoutePlan, placement: Placement, addresses: dict[str, str], request: bytes,
                revision: int, deadline: float) -> list[tuple[bytes, TopK]]:
        failed: set[str] = set()
        parts: list[tuple[bytes, TopK]] = []
        pending = dict(route.by_node)
        while pending:
            outcomes = self._call_all(pending, addresses, request, revision, deadline)
            retry: dict[str, list[int]] = {}
            for node, outcome in outcomes.items():
                if isinstance(outcome, grpc.RpcError):
                    exc = outcome
                    if time.monotonic() >= deadline:
                        raise Failed(ErrorCode.UNEXPECTED_ERROR,
                                     "Search timed out waiting for the read nodes") from None
                    log.warning("read node %s failed (%s); retrying its segments on other replicas", node, exc.code())
                    self._node_failed(node, exc.code())
                    failed.add(node)
                    again = reroute(node, RoutePlan({node: pending[node]}, ()), placement, {}, frozenset(failed))
                    if again.unplaced:
                        raise Failed(ErrorCode.UNEXPECTED_ERROR,
                                     f"Segments {list(again.unplaced)[:5]} have no live replica") from None
                    for other, segs in again.by_node.items():
                        retry.setdefault(other, []).extend(segs)
                    continue
                data = outcome
                self.cluster.failures.succeeded(node)
                code, _, result = decode_topk(data)
                if code != 0:
                    raise Failed(ErrorCode(code), _status_reason(data))
                parts.append((data, result))
            pending = {node: tuple(segs) for node, segs in retry.items()}
        return parts

    def _call_all(self, pending: dict[str, tuple[int, ...]], addresses: dict[str, str], request: bytes,
                  revision: int, deadline: float) -> dict[str, bytes | grpc.RpcError]:
        """One SearchInFiles per node, in parallel: every call but the last as a future, the last in this
        thread (a lone call never pays for the future's helper thread)."""
        items = list(pending.items())
        metadata: Metadata = ((MIN_REVISION_HEADER, str(revision)),)
        with self._lock:
            for node, _ in items:
                self._inflight[node] += 1
        futures = []
        try:
            for node, segs in items[:-1]:
                call = self.cluster.channel(addresses[node]).unary_unary(SEARCH_IN_FILES)
                sent, finish = self._sub_request(node, segs, metadata)
                fut = call.future(search_in_files_request(segs, request),
                                  timeout=max(0.001, deadline - time.monotonic()), metadata=sent)
                if finish is not None:
                    fut.add_done_callback(lambda f, finish=finish: finish(f.exception()))
                futures.append((node, fut))
            node, segs = items[-1]
            call = self.cluster.channel(addresses[node]).unary_unary(SEARCH_IN_FILES)
            outcomes: dict[str, bytes | grpc.RpcError] = {}
            sent, finish = self._sub_request(node, segs, metadata)
            try:
                outcomes[node] = bytes(call(search_in_files_request(segs, request),
                                            timeout=max(0.001, deadline - time.monotonic()), metadata=sent))
            except grpc.RpcError as exc:
                outcomes[node] = exc
            if finish is not None:
                last = outcomes[node]
                finish(last if isinstance(last, grpc.RpcError) else None)
            for other, fut in futures:
                try:
                    outcomes[other] = bytes(fut.result())
                except grpc.RpcError as exc:
                    outcomes[other] = exc
            return outcomes
        finally:
            with self._lock:
                for node, _ in items:
                    self._inflight[node] -= 1

    def _sub_request(self, node: str, segs: tuple[int, ...], metadata: Metadata
                     ) -> tuple[Metadata, Callable[[BaseException | None], None] | None]:
        """The metadata to send with one SearchInFiles to ``node`` and what to call when it ends (None when
        neither metrics nor tracing is on): its latency is observed and its client span ended."""
        if self.metrics is None and self.tracing is None:
            return metadata, None
        span = None
        if self.tracing is not None:
            span, metadata = self.tracing.start_client(SEARCH_IN_FILES, node, metadata, {spans.SEGMENTS: len(segs)})
        started = time.perf_counter()

        def finish(error: BaseException | None) -> None:
            if self.metrics is not None:
                self.metrics.subrequest("SearchInFiles", node, time.perf_counter() - started)
            if span is not None and self.tracing is not None:
                self.tracing.end_client(span, error)

        return metadata, finish

    def _node_failed(self, node: str, code: grpc.StatusCode) -> None:
        """A call to ``node`` failed and its work moves on: suspect the node if it looks down; count it."""
        down = code in NODE_DOWN
        if down:
            self.cluster.failures.failed(node)
        if self.metrics is not None:
            self.metrics.node_failed(node, down)

    def _traced(self, path: str, node: str, metadata: Metadata) -> AbstractContextManager[Metadata]:
        """A client span around one blocking call to ``node`` when tracing is on; yields the metadata to send."""
        if self.tracing is None:
            return nullcontext(metadata)
        return self.tracing.client(path, node, metadata)

    # -- vectors by id -----------------------------------------------------------------------------

    def _vectors(self, coll: Collection, scopes: list[str], ids: list[int], readers: tuple[Member, ...],
                 revision: int, deadline: float) -> list[Any]:
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
                                                                        deadline))
                if reply.status.error_code:
                    if reply.status.reason == EMPTY_SCOPE:
                        continue
                    raise Failed(ErrorCode(reply.status.error_code), reply.status.reason)
                for i, record in zip(todo, reply.vectors_data, strict=False):
                    if record.float_data or record.binary_data:
                        records[i] = record
        empty = milvus_pb2.RowRecord()
        return [r if r is not None else empty for r in records]

    def any_node(self, readers: tuple[Member, ...], method: str, request: bytes, revision: int,
                 deadline: float, writer_last: bool = True) -> bytes:
        """The reply of the first node that answers: readers least loaded first (suspects last), then the
        writer (unless ``writer_last`` is False)."""
        suspects = self.cluster.failures.suspects()
        with self._lock:
            order = sorted(readers, key=lambda m: (m.node_id in suspects, self._inflight[m.node_id]))
        writer = self.cluster.writer() if writer_last else None
        candidates = [*order, *([writer] if writer is not None else [])]
        for member in candidates:
            if time.monotonic() >= deadline:
                break
            call = self.cluster.channel(member.address).unary_unary(method)
            started = time.perf_counter()
            try:
                with self._traced(method, member.node_id, ((MIN_REVISION_HEADER, str(revision)),)) as metadata:
                    data = bytes(call(request, timeout=max(0.001, deadline - time.monotonic()), metadata=metadata))
            except grpc.RpcError as exc:
                log.warning("%s on %s failed (%s); trying another node", method.rpartition("/")[2], member.node_id,
                            exc.code())
                self._node_failed(member.node_id, exc.code())
                continue
            finally:
                if self.metrics is not None:
                    self.metrics.subrequest(method.rpartition("/")[2], member.node_id, time.perf_counter() - started)
            self.cluster.failures.succeeded(member.node_id)
            return data
        raise Failed(ErrorCode.UNEXPECTED_ERROR, "No node could serve the request in time")


def _status_reason(data: bytes) -> str:
    return str(milvus_pb2.TopKQueryResult.FromString(data).status.reason)

