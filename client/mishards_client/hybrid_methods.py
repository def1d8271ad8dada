"""The hybrid RPCs as ``Milvus`` methods (mixed into :class:`mishards_client.Milvus`)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from . import codec
from ._grpc import milvus_pb2 as pb
from .checks import check
from .exceptions import ParamError
from .grpc_common import REQUEST_KEY_HEADER, GrpcCalls, name_bytes, status_of_failure
from .hybrid import Field, HybridSchema, decode_entity, insert_entity_bytes, mapping_bytes, schema_from_mapping
from .hybrid import search_bytes as hybrid_search_bytes
from .transport import CallFailed
from .types import Status, TopKQueryResult

__all__ = ["HybridMethods"]


class HybridMethods(GrpcCalls):
    """Hybrid collections: create / describe / has / count / list / drop, insert entities (scalar columns and
    vectors), filtered search with the JSON DSL (:mod:`mishards_client.hybrid`), entities by id, deletes."""

    _schemas: dict[str, HybridSchema]
    _retry_inserts: bool
    _schemas_lock: threading.Lock

    def _forget_schema(self, collection_name: str) -> None:
        with self._schemas_lock:
            self._schemas.pop(collection_name, None)

    def create_hybrid_collection(self, collection_name: str, fields: Sequence[Field],
                                 timeout: float | None = 30) -> Status:
        """Create a collection with scalar ``fields`` and one vector field (see ``hybrid.scalar_field`` /
        ``hybrid.vector_field``)."""
        check(collection_name=collection_name)
        if not fields or not all(isinstance(f, Field) for f in fields):
            raise ParamError("fields must be a non-empty list of hybrid.Field (scalar_field / vector_field)")
        self._forget_schema(collection_name)
        return self._status_call("CreateHybridCollection", mapping_bytes(collection_name, fields), timeout)

    def describe_hybrid_collection(self, collection_name: str,
                                   timeout: float | None = 30) -> tuple[Status, HybridSchema | None]:
        check(collection_name=collection_name)
        try:
            reply = pb.Mapping.FromString(self._call("DescribeHybridCollection", name_bytes(collection_name), timeout))
        except CallFailed as exc:
            return status_of_failure(exc), None
        if reply.status.error_code != 0:
            return Status(reply.status.error_code, reply.status.reason), None
        schema = schema_from_mapping(reply)
        with self._schemas_lock:
            self._schemas[collection_name] = schema
        return Status(), schema

    def has_hybrid_collection(self, collection_name: str, timeout: float | None = 30) -> tuple[Status, bool]:
        check(collection_name=collection_name)
        try:
            reply = pb.BoolReply.FromString(self._call("HasHybridCollection", name_bytes(collection_name), timeout))
        except CallFailed as exc:
            return status_of_failure(exc), False
        return Status(reply.status.error_code, reply.status.reason or "Success"), reply.bool_reply

    def count_hybrid_collection(self, collection_name: str, timeout: float | None = 30) -> tuple[Status, int | None]:
        check(collection_name=collection_name)
        try:
            reply = pb.CollectionRowCount.FromString(
                self._call("CountHybridCollection", name_bytes(collection_name), timeout))
        except CallFailed as exc:
            return status_of_failure(exc), None
        if reply.status.error_code != 0:
            return Status(reply.status.error_code, reply.status.reason), None
        return Status(), reply.collection_row_count

    def list_hybrid_collections(self, timeout: float | None = 30) -> tuple[Status, list[str]]:
        try:
            reply = pb.MappingList.FromString(self._call("ShowHybridCollections", pb.Command().SerializeToString(),
                                                         timeout))
        except CallFailed as exc:
            return status_of_failure(exc), []
        if reply.status.error_code != 0:
            return Status(reply.status.error_code, reply.status.reason), []
        return Status(), [m.collection_name for m in reply.mapping_list]

    def drop_hybrid_collection(self, collection_name: str, timeout: float | None = 30) -> Status:
        check(collection_name=collection_name)
        self._forget_schema(collection_name)
        return self._status_call("DropHybridCollection", name_bytes(collection_name), timeout)

    def _schema(self, collection_name: str, timeout: float | None) -> tuple[Status, HybridSchema | None]:
        with self._schemas_lock:
            known = self._schemas.get(collection_name)
        if known is not None:
            return Status(), known
        return self.describe_hybrid_collection(collection_name, timeout)

    def insert_entities(self, collection_name: str, entities: Mapping[str, Any], vectors: Any, ids: Any = None,
                        partition_tag: str | None = None, timeout: float | None = None) -> tuple[Status, list[int]]:
        """Insert rows: ``entities`` maps every scalar field to its column (one value per row), ``vectors`` is a
        2-D float32 array (uint8 packed bits for a binary metric) or lists. ``(Status, ids)``.

        The schema is read once per collection (``DescribeHybridCollection``) to pack the columns. Retried after
        UNAVAILABLE only with explicit ``ids`` (the server recognises a repeated batch by its content)."""
        check(collection_name=collection_name)
        if partition_tag is not None:
            check(partition_tag=partition_tag)
        if not isinstance(entities, Mapping):
            raise ParamError("entities must map each scalar field to its column")
        records = codec.to_records(vectors)
        id_array: npt.NDArray[np.int64] | None = None
        if ids is not None:
            check(ids=ids)
            id_array = np.asarray(ids, dtype=np.int64)
            if id_array.shape[0] != records.rows:
                raise ParamError("length of vectors do not match that of ids")
        status, schema = self._schema(collection_name, timeout)
        if schema is None:
            return status, []
        request = insert_entity_bytes(schema, entities, records, id_array, partition_tag)
        metadata = () if id_array is not None else ((REQUEST_KEY_HEADER, uuid.uuid4().hex),)
        try:
            reply = self._call("InsertEntity", request, timeout, retryable=self._retry_inserts and id_array is not None,
                              metadata=metadata)
        except CallFailed as exc:
            return status_of_failure(exc), []
        code, reason, got = codec.decode_vector_ids(reply)
        if code != 0:
            return Status(code, reason), []
        return Status(message="Add entities successfully!"), got.tolist()

    def hybrid_search(self, collection_name: str, dsl: Mapping[str, Any], partition_tags: list[str] | None = None,
                      timeout: float | None = None) -> tuple[Status, TopKQueryResult | None]:
        """Filtered search with a JSON DSL document (``hybrid.bool_query`` & co.); the result is shaped like
        ``search``'s (``ids`` / ``distances`` arrays, pymilvus views)."""
        check(collection_name=collection_name)
        if partition_tags is not None:
            check(partition_tag_array=partition_tags)
        request = hybrid_search_bytes(collection_name, dsl, partition_tags)
        try:
            reply = self._call("HybridSearch", request, timeout)
        except CallFailed as exc:
            return status_of_failure(exc), None
        result = codec.decode_topk(reply)
        if result.code != 0:
            return Status(result.code, result.reason), None
        return Status(message="Search vectors successfully!"), TopKQueryResult(result.ids, result.distances, reply)

    def get_entities_by_id(self, collection_name: str, ids: Sequence[int],
                           timeout: float | None = None) -> tuple[Status, list[dict[str, Any] | None]]:
        """Entities by id (flushed rows): one ``{"id", field: value, ..., vector field: vector}`` per id, ``None``
        for an id not found."""
        check(collection_name=collection_name, ids=list(ids))
        status, schema = self._schema(collection_name, timeout)
        if schema is None:
            return status, []
        out: list[dict[str, Any] | None] = []
        for entity_id in ids:
            request = pb.HEntityIdentity(collection_name=collection_name, id=int(entity_id)).SerializeToString()
            try:
                reply = pb.HEntity.FromString(self._call("GetEntityByID", request, timeout))
            except CallFailed as exc:
                return status_of_failure(exc), []
            if reply.status.error_code != 0:
                return Status(reply.status.error_code, reply.status.reason), []
            out.append(decode_entity(schema, reply))
        return Status(), out

    def delete_entities_by_id(self, collection_name: str, ids: Sequence[int], timeout: float | None = None) -> Status:
        check(collection_name=collection_name, ids=list(ids))
        request = pb.HDeleteByIDParam(collection_name=collection_name, id_array=[int(i) for i in ids])
        return self._status_call("DeleteEntitiesByID", request.SerializeToString(), timeout)
