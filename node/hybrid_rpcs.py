"""The node's hybrid metadata and write RPCs, mixed into :class:`node.service.MilvusService`.

A hybrid collection is a collection with a scalar schema in the catalog (``coordinator.hybrid.metadata``): the
metadata RPCs are the plain ones' twins restricted to hybrid collections; ``InsertEntity`` checks the whole
request (field names, counts, every value against its type, the vectors) before anything is written, then
takes the plain insert's path with the scalar columns beside the vectors (one WAL record, the insert buffer,
``scalar.<i>.npy`` files of each segment). ``GetEntityByID`` reads flushed rows as ``GetVectorsByID`` does;
``GetEntityIDs`` and ``DeleteEntitiesByID`` are ``GetVectorIDs`` and ``DeleteByID`` of a hybrid collection.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from coordinator import limits, metadata, validation
from coordinator.auth.guard import visible_to_caller
from coordinator.errors import IllegalArgument, IllegalVectorId, UnexpectedError
from coordinator.hybrid import metadata as hybrid_meta
from coordinator.hybrid.attrs import decode_entities, entity_message, entity_records, scalar_order
from coordinator.hybrid.schema import HybridSchema, schema_from_mapping
from coordinator.hybrid.types import WIRE_VALUE_BYTES
from coordinator.model import Collection, IdMode, Partition, Segment
from milvus_wire import milvus_pb2, status_pb2
from node import convert
from node.rpc import request_key, rpc

if TYPE_CHECKING:
    from node.admission import Admission
    from node.engine import Engine
    from node.metrics import NodeMetrics
    from node.reader import Reader

EMPTY_COLLECTION = "Collection or partition is empty"


@dataclass(frozen=True, slots=True, eq=False)
class FoundEntity:
    """One stored row: its vector and its scalar values (one-element columns, storage dtypes)."""

    vector: np.ndarray
    columns: dict[str, np.ndarray]


def entity_ids(raw: Sequence[int], rows: int, coll: Collection) -> np.ndarray | None:
    """The ids an insert gives (None: automatic), checked as ``Insert`` checks ``row_id_array``."""
    if len(raw):
        if len(raw) != rows:
            raise IllegalVectorId("The size of entity ID array must be equal to the number of entities.")
        ids = np.asarray(raw, dtype=np.int64)
        if (ids < 0).any():
            raise IllegalVectorId("Entity IDs must be non-negative integers.")
        return ids
    if coll.id_mode is IdMode.USER:
        raise IllegalVectorId("Entities IDs are user-defined. Please provide IDs for all entities of the collection.")
    return None


def insert_bytes_per_row(coll: Collection, schema: HybridSchema) -> int:
    """What a row of an entity insert weighs for the 256 MB rule and the memory estimate: its vector and its
    attributes as they travel (8 bytes a value)."""
    return coll.row_bytes + WIRE_VALUE_BYTES * len(schema.scalars)


class HybridRpcs:
    engine: Engine
    reader: Reader
    admission: Admission
    metrics: NodeMetrics | None
    share: Callable[[list[int]], set[int]] | None
    # MilvusService's helpers
    _partition_for_write: Callable[[Collection, str], Partition]
    _scope: Callable[[Collection, Any], list[Segment]]

    def _hybrid(self, name: str) -> tuple[Collection, HybridSchema]:
        return hybrid_meta.hybrid_collection(self.engine.snapshot(), name)

    # -- collections ---------------------------------------------------------------------------

    @rpc(status_pb2.Status)
    def CreateHybridCollection(self, request: Any) -> Any:
        schema = schema_from_mapping(request)
        text = hybrid_meta.catalog_text(schema)
        self.engine.create_collection(schema.collection_name, schema.dimension, schema.metric,
                                      schema.index_file_size, text)
        return convert.OK

    @rpc(milvus_pb2.BoolReply)
    def HasHybridCollection(self, request: Any) -> Any:
        exists = hybrid_meta.has_hybrid_collection(self.engine.snapshot(), request.collection_name)
        return milvus_pb2.BoolReply(status=convert.OK, bool_reply=exists)

    @rpc(status_pb2.Status)
    def DropHybridCollection(self, request: Any) -> Any:
        self._hybrid(request.collection_name)
        self.engine.drop_collection(request.collection_name)
        return convert.OK

    @rpc(milvus_pb2.Mapping)
    def DescribeHybridCollection(self, request: Any) -> Any:
        coll, schema = self._hybrid(request.collection_name)
        reply = hybrid_meta.describe(coll, schema)
        reply.status.CopyFrom(convert.OK)
        return reply

    @rpc(milvus_pb2.CollectionRowCount)
    def CountHybridCollection(self, request: Any) -> Any:
        coll, _ = self._hybrid(request.collection_name)
        rows = metadata.row_count(self.engine.snapshot(), coll)
        return milvus_pb2.CollectionRowCount(status=convert.OK, collection_row_count=rows)

    @rpc(milvus_pb2.MappingList)
    def ShowHybridCollections(self, request: Any) -> Any:
        mappings = hybrid_meta.hybrid_mappings(self.engine.snapshot())
        shown = set(visible_to_caller([m.collection_name for m in mappings]))
        return milvus_pb2.MappingList(status=convert.OK,
                                      mapping_list=[m for m in mappings if m.collection_name in shown])

    @rpc(milvus_pb2.CollectionInfo)
    def ShowHybridCollectionInfo(self, request: Any) -> Any:
        coll, _ = self._hybrid(request.collection_name)
        text = metadata.collection_info(self.engine.snapshot(), coll)
        return milvus_pb2.CollectionInfo(status=convert.OK, json_info=text)

    @rpc(status_pb2.Status)
    def PreloadHybridCollection(self, request: Any) -> Any:
        """Loads every segment (this node's share on a reader) with all of its scalar columns."""
        coll, schema = self._hybrid(request.collection_name)
        segs = self._scope(coll, [])
        if self.share is not None:  # a reader warms its own share; the proxy asks every reader
            mine = self.share([s.id for s in segs])
            segs = [s for s in segs if s.id in mine]
        fields = [f.name for f in schema.scalars]
        for seg in segs:
            item = self.reader.loaded(coll, seg, force=True)
            self.reader.scalars(coll, seg, fields, item)
        return convert.OK

    # -- data ----------------------------------------------------------------------------------

    @rpc(milvus_pb2.HEntityIDs)
    def InsertEntity(self, request: Any) -> Any:
        validation.collection_name(request.collection_name)
        tag = validation.partition_tag(request.partition_tag) if request.partition_tag else ""
        self.engine.require_writable("InsertEntity")
        coll, schema = self._hybrid(request.collection_name)
        entity = request.entities
        scalar_order(schema, list(entity.field_names))  # the cheap checks first, in the order decoding makes them
        records = entity_records(entity)
        rows = len(records)
        if rows == 0:
            raise validation.IllegalRowRecord(validation.EMPTY_VECTORS)
        row_bytes = insert_bytes_per_row(coll, schema)
        validation.vector_bytes(rows, row_bytes)
        cost = limits.insert_cost(rows, row_bytes, len(request.entity_id_array) > 0)
        with self.admission.admit(f"An insert of {rows} entities", cost, search=False):
            decoded = decode_entities(schema, entity, lambda recs, _schema: convert.vectors(recs, coll))
            ids = entity_ids(request.entity_id_array, decoded.rows, coll)
            part = self._partition_for_write(coll, tag)
            scalars = tuple(np.ascontiguousarray(decoded.columns[f.name]) for f in schema.scalars)
            row_ids = self.engine.insert(coll, part, ids, decoded.vectors, request_key(), scalars)
            return convert.vector_ids(row_ids)  # HEntityIDs has VectorIds' field numbers

    @rpc(milvus_pb2.HEntity)
    def GetEntityByID(self, request: Any) -> Any:
        coll, schema = self._hybrid(request.collection_name)
        segs = self._scope(coll, [])
        if not segs:
            raise UnexpectedError(EMPTY_COLLECTION)
        found = self._find_entity(coll, schema, segs, int(request.id))
        if found is None:
            return milvus_pb2.HEntity(status=convert.OK, entity_id=request.id)
        reply = entity_message(schema, found.columns, found.vector[None, :], entity_id=request.id)
        reply.status.CopyFrom(convert.OK)
        return reply

    def _find_entity(self, coll: Collection, schema: HybridSchema, segs: Sequence[Segment],
                     entity_id: int) -> FoundEntity | None:
        """The live row of ``entity_id`` (newest segment first), or None."""
        wanted = np.array([entity_id], dtype=np.int64)
        fields = [f.name for f in schema.scalars]
        for seg in sorted(segs, key=lambda s: s.id, reverse=True):
            item = self.reader.loaded(coll, seg)
            offset = int(item.offsets_of(wanted)[0])
            if offset < 0:
                continue
            vector = np.array(self.engine.store.vectors(coll.id, seg.name)[offset])
            columns = self.reader.scalars(coll, seg, fields, item)
            return FoundEntity(vector, {name: np.array(column[offset:offset + 1]) for name, column in columns.items()})
        return None

    @rpc(milvus_pb2.HEntityIDs)
    def GetEntityIDs(self, request: Any) -> Any:
        coll, _ = self._hybrid(request.collection_name)
        snap = self.engine.snapshot()
        seg = next((s for s in snap.segments_of(coll.id) if s.name == request.segment_name), None)
        if seg is None:
            other = any(s.name == request.segment_name for s in snap.segments_by_id.values())
            raise UnexpectedError("Segment does not belong to this collection" if other else "Segment does not exist")
        cost = seg.row_count * limits.IDS_REPLY_BYTES_PER_ROW
        with self.admission.admit(f"The ids of a segment of {seg.row_count} rows", cost, search=False):
            return convert.vector_ids(self.reader.live_ids(coll, seg))

    @rpc(status_pb2.Status)
    def DeleteEntitiesByID(self, request: Any) -> Any:
        validation.collection_name(request.collection_name)
        if len(request.id_array) == 0:
            raise IllegalArgument("No entity id specified")
        limits.delete_ids(len(request.id_array))
        self.engine.require_writable("DeleteEntitiesByID")
        coll, _ = self._hybrid(request.collection_name)
        self.engine.delete(coll, None, np.asarray(request.id_array, dtype=np.int64))
        return convert.OK
