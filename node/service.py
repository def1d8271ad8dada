"""The node's MilvusService: thin handlers that validate, call the engine, and build replies.

Every handler is wrapped by :func:`node.rpc.rpc`, the one place where errors become in-band Milvus statuses.
The search RPCs live in :mod:`node.search_rpcs` and :mod:`node.hybrid_search_rpcs`, the hybrid metadata and write
RPCs in :mod:`node.hybrid_rpcs`; hybrid RPCs no mixin defines answer gRPC UNIMPLEMENTED, as in Milvus 1.1.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import grpc
import numpy as np

from coordinator import limits, metadata, validation
from coordinator.auth.guard import Guard, visible_to_caller
from coordinator.errors import (
    BuildIndexError,
    CollectionNotFound,
    IllegalArgument,
    IllegalVectorId,
    UnexpectedError,
)
from coordinator.model import (
    DEFAULT_PARTITION,
    MAX_GET_IDS,
    Collection,
    IdMode,
    Partition,
    Segment,
)
from milvus_wire import milvus_pb2, milvus_pb2_grpc, status_pb2
from node import convert, maintenance, merges, params
from node.admission import Admission
from node.admission import from_settings as admission_from
from node.commands import Commands
from node.engine import Engine
from node.hybrid_rpcs import HybridRpcs
from node.hybrid_search_rpcs import HybridSearchRpcs
from node.metrics import NodeMetrics
from node.reader import Reader
from node.rpc import MIN_REVISION_HEADER, request_key, rpc
from node.search_rpcs import ScopeCache

if TYPE_CHECKING:
    from coordinator.tracing import Tracing

__all__ = ["MIN_REVISION_HEADER", "MilvusService"]

log = logging.getLogger(__name__)


class MilvusService(HybridSearchRpcs, HybridRpcs, milvus_pb2_grpc.MilvusServiceServicer):
    def __init__(self, engine: Engine, search_pool: ThreadPoolExecutor, metrics: NodeMetrics | None = None,
                 tracing: Tracing | None = None, admission: Admission | None = None) -> None:
        self.engine = engine
        self.metrics = metrics
        # Heavy requests (searches, inserts, large reads) start only within the node's memory budget.
        self.admission = admission or admission_from(engine.settings)
        if metrics is not None:
            metrics.admission = self.admission.stats
        self.tracing = tracing  # when set, searches tag the current span with the segments they cover
        self.reader = Reader(engine, search_pool)
        self.scopes = ScopeCache()  # validated search scopes of the current catalog snapshot
        self.commands = Commands(engine)
        # Read-only node in a cluster: which of these segment ids are this node's placement share.
        self.share: Callable[[list[int]], set[int]] | None = None
        self.guard: Guard | None = None  # who may run what (coordinator.auth); None: every call runs

    # -- helpers -------------------------------------------------------------------------------

    def _collection(self, name: str) -> Collection:
        validation.collection_name(name)
        return self.engine.collection(name)

    def _partition_for_write(self, coll: Collection, tag: str) -> Partition:
        snap = self.engine.snapshot()
        if not tag:
            part = snap.partition(coll.id, DEFAULT_PARTITION)
        else:
            part = snap.partition(coll.id, validation.partition_tag(tag))
        if part is None:
            raise UnexpectedError(f"Partition {tag} of collection {coll.name} not found")
        return part

    def _scope(self, coll: Collection, tags: Any) -> list[Segment]:
        clean = validation.partition_tags(tags)
        snap = self.engine.snapshot()
        return self.reader.searchable(snap, coll, self.reader.partitions(snap, coll, clean))

    # -- collections ---------------------------------------------------------------------------

    @rpc(status_pb2.Status)
    def CreateCollection(self, request: Any) -> Any:
        validation.collection_name(request.collection_name)
        validation.dimension(request.dimension, request.metric_type)
        validation.index_file_size(request.index_file_size)
        metric = validation.metric_type(request.metric_type)
        self.engine.create_collection(request.collection_name, request.dimension, metric, request.index_file_size)
        return convert.OK

    @rpc(milvus_pb2.BoolReply)
    def HasCollection(self, request: Any) -> Any:
        validation.collection_name(request.collection_name)
        exists = self.engine.snapshot().collection(request.collection_name) is not None
        return milvus_pb2.BoolReply(status=convert.OK, bool_reply=exists)

    @rpc(milvus_pb2.CollectionSchema)
    def DescribeCollection(self, request: Any) -> Any:
        coll = self._collection(request.collection_name)
        return milvus_pb2.CollectionSchema(
            status=convert.OK,
            collection_name=coll.name,
            dimension=coll.dimension,
            index_file_size=coll.index_file_size_mb,
            metric_type=int(coll.metric),
        )

    @rpc(milvus_pb2.CollectionRowCount)
    def CountCollection(self, request: Any) -> Any:
        coll = self._collection(request.collection_name)
        rows = metadata.row_count(self.engine.snapshot(), coll)
        return milvus_pb2.CollectionRowCount(status=convert.OK, collection_row_count=rows)

    @rpc(milvus_pb2.CollectionNameList)
    def ShowCollections(self, request: Any) -> Any:
        names = visible_to_caller(sorted(self.engine.snapshot().collections))
        return milvus_pb2.CollectionNameList(status=convert.OK, collection_names=names)

    @rpc(milvus_pb2.CollectionInfo)
    def ShowCollectionInfo(self, request: Any) -> Any:
        coll = self._collection(request.collection_name)
        text = metadata.collection_info(self.engine.snapshot(), coll)
        return milvus_pb2.CollectionInfo(status=convert.OK, json_info=text)

    @rpc(status_pb2.Status)
    def DropCollection(self, request: Any) -> Any:
        self._collection(request.collection_name)
        self.engine.drop_collection(request.collection_name)
        return convert.OK

    # -- indexes -------------------------------------------------------------------------------

    @rpc(status_pb2.Status)
    def CreateIndex(self, request: Any) -> Any:
        coll = self._collection(request.collection_name)
        kind = params.index_type(request.index_type, coll.metric)
        raw = params.parse_extra_params(request.extra_params, "index params")
        stored = params.build_params(kind, raw, coll.dimension)
        errors = self.engine.create_index(coll.name, kind, stored)
        if errors:
            raise BuildIndexError("; ".join(sorted(set(errors))))
        return convert.OK

    @rpc(milvus_pb2.IndexParam)
    def DescribeIndex(self, request: Any) -> Any:
        coll = self._collection(request.collection_name)
        return milvus_pb2.IndexParam(
            status=convert.OK,
            collection_name=coll.name,
            index_type=int(coll.index_type),
            extra_params=[milvus_pb2.KeyValuePair(key="params", value=coll.index_params)],
        )

    @rpc(status_pb2.Status)
    def DropIndex(self, request: Any) -> Any:
        coll = self._collection(request.collection_name)
        self.engine.set_index(coll.name, params.IndexType.FLAT, {})
        return convert.OK

    # -- partitions ----------------------------------------------------------------------------

    @rpc(status_pb2.Status)
    def CreatePartition(self, request: Any) -> Any:
        self._collection(request.collection_name)
        tag = validation.partition_tag(request.tag)
        self.engine.create_partition(request.collection_name, tag)
        return convert.OK

    @rpc(milvus_pb2.BoolReply)
    def HasPartition(self, request: Any) -> Any:
        coll = self._collection(request.collection_name)
        tag = validation.partition_tag(request.tag)
        exists = self.engine.snapshot().partition(coll.id, tag) is not None
        return milvus_pb2.BoolReply(status=convert.OK, bool_reply=exists)

    @rpc(milvus_pb2.PartitionList)
    def ShowPartitions(self, request: Any) -> Any:
        coll = self._collection(request.collection_name)
        tags = [p.tag for p in self.engine.snapshot().partitions_of(coll.id)]
        return milvus_pb2.PartitionList(status=convert.OK, partition_tag_array=tags)

    @rpc(status_pb2.Status)
    def DropPartition(self, request: Any) -> Any:
        self._collection(request.collection_name)
        tag = validation.partition_tag(request.tag)
        self.engine.drop_partition(request.collection_name, tag)
        return convert.OK

    # -- data ----------------------------------------------------------------------------------

    @rpc(milvus_pb2.VectorIds)
    def Insert(self, request: Any) -> Any:
        validation.collection_name(request.collection_name)
        if len(request.row_record_array) == 0:
            raise validation.IllegalRowRecord(validation.EMPTY_VECTORS)
        tag = validation.partition_tag(request.partition_tag) if request.partition_tag else ""
        self.engine.require_writable("Insert")
        coll = self.engine.collection(request.collection_name)
        if coll.is_hybrid:
            raise IllegalArgument(f"Collection {coll.name} has scalar fields: insert its rows with InsertEntity "
                                  "(every field needs a value).")
        rows = len(request.row_record_array)
        validation.vector_bytes(rows, coll.row_bytes)
        cost = limits.insert_cost(rows, coll.row_bytes, len(request.row_id_array) > 0)
        with self.admission.admit(f"An insert of {rows} vectors", cost, search=False):
            return self._insert(request, coll, tag)

    def _insert(self, request: Any, coll: Collection, tag: str) -> Any:
        vectors = convert.vectors(request.row_record_array, coll)
        ids: np.ndarray | None = None
        if len(request.row_id_array):
            if len(request.row_id_array) != vectors.shape[0]:
                raise IllegalVectorId("The size of vector ID array must be equal to the size of the vector.")
            ids = np.asarray(request.row_id_array, dtype=np.int64)
            if (ids < 0).any():
                raise IllegalVectorId("Entity IDs must be non-negative integers.")
        elif coll.id_mode is IdMode.USER:
            raise IllegalVectorId(
                "Entities IDs are user-defined. Please provide IDs for all entities of the collection."
            )
        part = self._partition_for_write(coll, tag)
        row_ids = self.engine.insert(coll, part, ids, vectors, request_key())
        return convert.vector_ids(row_ids)

    @rpc(milvus_pb2.VectorsData)
    def GetVectorsByID(self, request: Any) -> Any:
        validation.collection_name(request.collection_name)
        n = len(request.id_array)
        if n == 0:
            raise IllegalArgument("No vector id specified")
        if n > MAX_GET_IDS:
            raise IllegalArgument(f"Input id array size cannot exceed: {MAX_GET_IDS}")
        coll = self.engine.collection(request.collection_name)
        if request.partition_tag:  # one partition, named exactly (not a pattern as in searches)
            snap = self.engine.snapshot()
            part = snap.partition(coll.id, validation.partition_tag(request.partition_tag))
            if part is None:
                raise UnexpectedError("The specified partition does not exist")
            segs = self.reader.searchable(snap, coll, [part])
        else:
            segs = self._scope(coll, [])
        if not segs:
            raise UnexpectedError("Collection or partition is empty")
        wanted = np.asarray(request.id_array, dtype=np.int64)
        cost = n * (coll.row_bytes * 3 + limits.QUERY_OBJECT_BYTES)  # the vectors, the reply buffer and bytes
        with self.admission.admit(f"A read of {n} vectors", cost, search=False):
            found = self.reader.vectors_by_id(coll, segs, wanted)
            return convert.vectors_data(found, coll.is_binary)

    @rpc(milvus_pb2.VectorIds)
    def GetVectorIDs(self, request: Any) -> Any:
        coll = self._collection(request.collection_name)
        snap = self.engine.snapshot()
        seg = next((s for s in snap.segments_of(coll.id) if s.name == request.segment_name), None)
        if seg is None:
            other = any(s.name == request.segment_name for s in snap.segments_by_id.values())
            raise UnexpectedError(
                "Segment does not belong to this collection" if other else "Segment does not exist"
            )
        cost = seg.row_count * limits.IDS_REPLY_BYTES_PER_ROW
        with self.admission.admit(f"The ids of a segment of {seg.row_count} rows", cost, search=False):
            return convert.vector_ids(self.reader.live_ids(coll, seg))

    @rpc(status_pb2.Status)
    def DeleteByID(self, request: Any) -> Any:
        validation.collection_name(request.collection_name)
        if len(request.id_array) == 0:
            raise IllegalArgument("No vector id specified")
        limits.delete_ids(len(request.id_array))
        self.engine.require_writable("DeleteByID")
        coll = self.engine.collection(request.collection_name)
        part = self._partition_for_write(coll, request.partition_tag) if request.partition_tag else None
        self.engine.delete(coll, part, np.asarray(request.id_array, dtype=np.int64))
        return convert.OK

    # -- maintenance and cache -----------------------------------------------------------------

    @rpc(status_pb2.Status)
    def Flush(self, request: Any) -> Any:
        self.engine.require_writable("Flush")
        snap = self.engine.snapshot()
        names = list(request.collection_name_array)
        ids = []
        for name in names:
            validation.collection_name(name)
            coll = snap.collection(name)
            if coll is None:
                raise CollectionNotFound(name)
            ids.append(coll.id)
        maintenance.flush(self.engine, ids if names else None)
        return convert.OK

    @rpc(status_pb2.Status)
    def Compact(self, request: Any) -> Any:
        self.engine.require_writable("Compact")
        coll = self._collection(request.collection_name)
        merges.compact(self.engine, coll.id)
        return convert.OK

    @rpc(status_pb2.Status)
    def PreloadCollection(self, request: Any) -> Any:
        coll = self._collection(request.collection_name)
        segs = self._scope(coll, request.partition_tag_array)
        if self.share is not None:  # a reader warms its own share; the proxy asks every reader
            mine = self.share([s.id for s in segs])
            segs = [s for s in segs if s.id in mine]
        self.reader.preload(coll, segs)
        return convert.OK

    @rpc(status_pb2.Status)
    def ReleaseCollection(self, request: Any) -> Any:
        coll = self._collection(request.collection_name)
        clean = validation.partition_tags(request.partition_tag_array)
        snap = self.engine.snapshot()
        wanted = {p.id for p in self.reader.partitions(snap, coll, clean)}
        # Every segment of the scope, searchable or not (a merged-away segment may still be cached).
        self.reader.release([s for s in snap.segments_of(coll.id) if s.partition_id in wanted])
        return convert.OK

    @rpc(status_pb2.Status)
    def ReloadSegments(self, request: Any) -> Any:
        self._collection(request.collection_name)
        if not self.engine.writable:
            self.engine.refresh()
        return convert.OK

    @rpc(milvus_pb2.StringReply)
    def Cmd(self, request: Any) -> Any:
        return milvus_pb2.StringReply(status=convert.OK, string_reply=self.commands.run(request.cmd))


HYBRID_RPCS = (
    "CreateHybridCollection", "HasHybridCollection", "DropHybridCollection", "DescribeHybridCollection",
    "CountHybridCollection", "ShowHybridCollections", "ShowHybridCollectionInfo", "PreloadHybridCollection",
    "InsertEntity", "HybridSearch", "HybridSearchInSegments", "GetEntityByID", "GetEntityIDs",
    "DeleteEntitiesByID",
)


def _unimplemented(name: str) -> Callable[..., Any]:
    def handler(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{name} is not implemented (as in Milvus 1.1)")

    handler.__name__ = name
    return handler


def _defined(name: str) -> bool:
    """Whether a handler of ``name`` is defined above the generated servicer (whose methods answer UNIMPLEMENTED
    without a message)."""
    return any(name in vars(cls) for cls in MilvusService.__mro__ if cls is not milvus_pb2_grpc.MilvusServiceServicer)


for _name in HYBRID_RPCS:
    if not _defined(_name):
        setattr(MilvusService, _name, _unimplemented(_name))
