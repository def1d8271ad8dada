"""Search fan-out: searchable segments from the cached catalog -> placement -> one SearchInFiles per read
node in parallel within one deadline -> failover of a failed node's segments to other replicas -> merge.

The original SearchParam bytes are embedded unchanged in each SearchInFilesParam (field 2), so the query
vectors are never decoded or re-encoded by the proxy.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from typing import Any

import grpc

from coordinator.errors import ErrorCode, MilvusError
from coordinator.placement import Placement
from coordinator.topk import TopK
from coordinator.wire import encode_topk, field
from milvus_wire import wire_fastpath_pb2
from mishards.catalog_view import CatalogView
from mishards.cluster import Cluster
from mishards.results import decode_topk, merge_node_results
from mishards.routing import RoutePlan, plan, reroute, searchable_segments

log = logging.getLogger(__name__)

SEARCH_IN_FILES = "/milvus.grpc.MilvusService/SearchInFiles"


def search_in_files_request(file_ids: tuple[int, ...], search_param: bytes) -> bytes:
    """A serialized SearchInFilesParam around an already serialized SearchParam."""
    return b"".join(field(1, str(f).encode()) for f in file_ids) + field(2, search_param)


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

    def search(self, request: bytes) -> bytes | None:
        """The merged reply, or None when the writer should answer (no readers, or an error the writer words)."""
        readers = self.cluster.readers()
        if not readers:
            return None
        param = wire_fastpath_pb2.SearchParamRaw.FromString(request)
        try:
            coll, segs = searchable_segments(
                self.view.snapshot(), param.collection_name, list(param.partition_tag_array)
            )
        except MilvusError:
            return None  # the writer answers with Milvus' exact status
        if not segs:
            return None
        placement = Placement.of([m.node_id for m in readers], r=self.replication or None)
        addresses = {m.node_id: m.address for m in readers}
        with self._lock:
            inflight = dict(self._inflight)
        route = plan([s.id for s in segs], placement, inflight)
        if route.unplaced:
            raise Failed(ErrorCode.UNEXPECTED_ERROR, f"Segments {list(route.unplaced)[:5]} have no live replica")
        parts = self._gather(route, placement, addresses, request)
        merged: TopK = merge_node_results(parts, int(param.topk), coll.metric.higher_is_better)
        return encode_topk(merged)

    def _gather(self, route: RoutePlan, placement: Placement, addresses: dict[str, str], request: bytes) -> list[TopK]:
        deadline = time.monotonic() + self.timeout
        failed: set[str] = set()
        parts: list[TopK] = []
        pending = dict(route.by_node)
        while pending:
            calls = {node: self._call(addresses[node], node, segs, request, deadline) for node, segs in pending.items()}
            retry: dict[str, list[int]] = {}
            for node, fut in calls.items():
                try:
                    data = fut.result()
                except grpc.RpcError as exc:
                    if time.monotonic() >= deadline:
                        raise Failed(ErrorCode.UNEXPECTED_ERROR,
                                     "Search timed out waiting for the read nodes") from None
                    log.warning("read node %s failed (%s); retrying its segments on other replicas", node, exc.code())
                    failed.add(node)
                    again = reroute(node, RoutePlan({node: pending[node]}, ()), placement, {}, frozenset(failed))
                    if again.unplaced:
                        raise Failed(ErrorCode.UNEXPECTED_ERROR,
                                     f"Segments {list(again.unplaced)[:5]} have no live replica") from None
                    for other, segs in again.by_node.items():
                        retry.setdefault(other, []).extend(segs)
                    continue
                code, _, result = decode_topk(data)
                if code != 0:
                    raise Failed(ErrorCode(code), _status_reason(data))
                parts.append(result)
            pending = {node: tuple(segs) for node, segs in retry.items()}
        return parts

    def _call(self, address: str, node: str, segs: tuple[int, ...], request: bytes, deadline: float) -> Any:
        with self._lock:
            self._inflight[node] += 1
        call = self.cluster.channel(address).unary_unary(SEARCH_IN_FILES)
        fut = call.future(search_in_files_request(segs, request), timeout=max(0.001, deadline - time.monotonic()))

        def done(_f: Any) -> None:
            with self._lock:
                self._inflight[node] -= 1

        fut.add_done_callback(done)
        return fut


def _status_reason(data: bytes) -> str:
    from milvus_wire import milvus_pb2

    return str(milvus_pb2.TopKQueryResult.FromString(data).status.reason)
