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
from collections.abc import Sequence
from typing import Any

import grpc

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
from mishards.routing import RoutePlan, plan, reroute, searchable_segments

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
    def __init__(self, cluster: Cluster, view: CatalogView, timeout: float, replication: int = 0) -> None:
        self.cluster = cluster
        self.view = view
        self.timeout = timeout or 60.0
        self.replication = replication
        self._inflight: Counter[str] = Counter()
        self._lock = threading.Lock()

    # -- entry points ----------------------------------------------------------------------------

    def search(self, request: bytes) -> bytes | None:
        """The merged reply, or None when the writer should answer (no readers, or an error the writer words)."""
        readers = self.cluster.readers()
        if not readers:
            return None
        param = wire_fastpath_pb2.SearchParamRaw.FromString(request)
        snap = self.view.snapshot()
        try:
            coll, segs = searchable_segments(snap, param.collection_name, list(param.partition_tag_array))
        except MilvusError:
            return None  # the writer answers with Milvus' exact status
        if not segs:
            return None
        deadline = time.monotonic() + self.timeout
        merged = self._search(coll, segs, readers, request, int(param.topk), snap.revision, deadline)
        return encode_topk(merged)

    def search_by_id(self, request: bytes) -> bytes | None:
        """SearchByID over the read nodes, or None when the writer should answer."""
        readers = self.cluster.readers()
        if not readers:
            return None
        param = milvus_pb2.SearchByIDParam.FromString(request)
        if not param.id_array or not 0 < param.topk <= MAX_TOPK:
            return None  # the writer words the error
        snap = self.view.snapshot()
        tags = list(param.partition_tag_array)
        try:
            coll, segs = searchable_segments(snap, param.collection_name, tags)
        except MilvusError:
            return None
        if not segs:
            return None
        deadline = time.monotonic() + self.timeout
        scopes = [p.tag for p in match_partitions(snap.partitions_of(coll.id), tags)] if tags else [""]
        records = self._vectors(coll, scopes, list(param.id_array), readers, snap.revision, deadline)
        found = [i for i, r in enumerate(records) if r.float_data or r.binary_data]
        if not found:
            return None  # nothing to search: the writer answers (all holes, or its own error wording)
        hib = coll.metric.higher_is_better
        query = search_param_for_ids(param, [records[i] for i in found])
        part = self._search(coll, segs, readers, query, int(param.topk), snap.revision, deadline)
        return encode_topk(fill_rows(found, len(records), part, hib))

    # -- search ----------------------------------------------------------------------------------

    def _search(self, coll: Collection, segs: list[Segment], readers: tuple[Member, ...], request: bytes,
                topk: int, revision: int, deadline: float) -> TopK:
        placement = Placement.of([m.node_id for m in readers], r=self.replication or None)
        addresses = {m.node_id: m.address for m in readers}
        with self._lock:
            inflight = dict(self._inflight)
        suspects = self.cluster.failures.suspects()
        route = plan([s.id for s in segs], placement, inflight, suspects)
        if route.unplaced and suspects:  # every replica suspected: try them anyway
            last_resort = plan(route.unplaced, placement, inflight)
            by_node = dict(route.by_node)
            for node, ids in last_resort.by_node.items():
                by_node[node] = by_node.get(node, ()) + ids
            route = RoutePlan(by_node, last_resort.unplaced)
        if route.unplaced:
            raise Failed(ErrorCode.UNEXPECTED_ERROR, f"Segments {list(route.unplaced)[:5]} have no live replica")
        parts = self._gather(route, placement, addresses, request, revision, deadline)
        return merge_node_results(parts, topk, coll.metric.higher_is_better)

    def _gather(self, route: RoutePlan, placement: Placement, addresses: dict[str, str], request: bytes,
                revision: int, deadline: float) -> list[TopK]:
        failed: set[str] = set()
        parts: list[TopK] = []
        pending = dict(route.by_node)
        while pending:
            calls = {node: self._call(addresses[node], node, segs, request, revision, deadline)
                     for node, segs in pending.items()}
            retry: dict[str, list[int]] = {}
            for node, fut in calls.items():
                try:
                    data = fut.result()
                except grpc.RpcError as exc:
                    if time.monotonic() >= deadline:
                        raise Failed(ErrorCode.UNEXPECTED_ERROR,
                                     "Search timed out waiting for the read nodes") from None
                    log.warning("read node %s failed (%s); retrying its segments on other replicas", node, exc.code())
                    if exc.code() in NODE_DOWN:
                        self.cluster.failures.failed(node)
                    failed.add(node)
                    again = reroute(node, RoutePlan({node: pending[node]}, ()), placement, {}, frozenset(failed))
                    if again.unplaced:
                        raise Failed(ErrorCode.UNEXPECTED_ERROR,
                                     f"Segments {list(again.unplaced)[:5]} have no live replica") from None
                    for other, segs in again.by_node.items():
                        retry.setdefault(other, []).extend(segs)
                    continue
                self.cluster.failures.succeeded(node)
                code, _, result = decode_topk(data)
                if code != 0:
                    raise Failed(ErrorCode(code), _status_reason(data))
                parts.append(result)
            pending = {node: tuple(segs) for node, segs in retry.items()}
        return parts

    def _call(self, address: str, node: str, segs: tuple[int, ...], request: bytes, revision: int,
              deadline: float) -> Any:
        with self._lock:
            self._inflight[node] += 1
        call = self.cluster.channel(address).unary_unary(SEARCH_IN_FILES)
        fut = call.future(search_in_files_request(segs, request), timeout=max(0.001, deadline - time.monotonic()),
                          metadata=((MIN_REVISION_HEADER, str(revision)),))

        def done(_f: Any) -> None:
            with self._lock:
                self._inflight[node] -= 1

        fut.add_done_callback(done)
        return fut

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
            try:
                data = bytes(call(request, timeout=max(0.001, deadline - time.monotonic()),
                                  metadata=((MIN_REVISION_HEADER, str(revision)),)))
            except grpc.RpcError as exc:
                log.warning("%s on %s failed (%s); trying another node", method.rpartition("/")[2], member.node_id,
                            exc.code())
                if exc.code() in NODE_DOWN:
                    self.cluster.failures.failed(member.node_id)
                continue
            self.cluster.failures.succeeded(member.node_id)
            return data
        raise Failed(ErrorCode.UNEXPECTED_ERROR, "No node could serve the request in time")


def _status_reason(data: bytes) -> str:
    return str(milvus_pb2.TopKQueryResult.FromString(data).status.reason)

