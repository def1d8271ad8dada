"""The hybrid RPCs as ``AsyncMilvus`` coroutines (mixed into :class:`mishards_client.aio.AsyncMilvus`): the
same requests, replies and schema cache as the sync :class:`~mishards_client.hybrid_methods.HybridMethods`."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from . import codec
from ._grpc import milvus_pb2 as pb
from .aio_base import AsyncBase
from .checks import check
from .exceptions import ParamError
from .grpc_common import REQUEST_KEY_HEADER, name_bytes, status_of_failure
from .hybrid import Field, HybridSchema, decode_entity, insert_entity_bytes, mapping_bytes, schema_from_mapping
from .hybrid import search_bytes as hybrid_search_bytes
from .transport import CallFailed
from .types import Status, TopKQueryResult

__all__ = ["AsyncHybridMethods"]


class AsyncHybridMethods(AsyncBase):
    """Hybrid collections: create / describe / has / count / list / drop, insert entities (scalar columns and
    vectors), filtered search with the JSON DSL (:mod:`mishards_client.hybrid`), entities by id, deletes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._schemas: dict[str, HybridSchema] = {}  # one event loop: no lock needed

    async def create_hybrid_collection(self, collection_name: str, fields: Sequence[Field],
                                       timeout: float | None = 30) -> Status:
        check(collection_name=collection_name)
        if not fields or not all(isinstance(f, Field) for f in fields):
            raise ParamError("fields must be a non-empty list of hybrid.Field (scalar_field / vector_field)")
        self._schemas.pop(collection_name, None)
        return await self._status_call("CreateHybridCollection", mapping_bytes(collection_name, fields), timeout)

    async def describe_hybrid_collection(self, collection_name: str,
                                         timeout: float | None = 30) -> tuple[Status, HybridSchema | None]:
        check(collection_name=collection_name)
        reply = await self._message("DescribeHybridCollection", name_bytes(collection_name), timeout, pb.Mapping)
        if isinstance(reply, Status):
            return reply, None
        if reply.status.error_code != 0:
            return Status(reply.status.error_code, reply.status.reason), None
        schema = schema_from_mapping(reply)
        self._schemas[collection_name] = schema
        return Status(), schema

    async def has_hybrid_collection(self, collection_name: str, timeout: float | None = 30) -> tuple[Status, bool]:
        check(collection_name=collection_name)
        reply = await self._message("HasHybridCollection", name_bytes(collection_name), timeout, pb.BoolReply)
        if isinstance(reply, Status):
            return reply, False
        return Status(reply.status.error_code, reply.status.reason or "Success"), bool(reply.bool_reply)

    async def count_hybrid_collection(self, collection_name: str,
                                      timeout: float | None = 30) -> tuple[Status, int | None]:
        check(collection_name=collection_name)
        reply = await self._message("CountHybridCollection", name_bytes(collection_name), timeout,
                                    pb.CollectionRowCount)
        if isinstance(reply, Status):
            return reply, None
        if reply.status.error_code != 0:
            return Status(reply.status.error_code, reply.status.reason), None
        return Status(), int(reply.collection_row_count)

    async def list_hybrid_collections(self, timeout: float | None = 30) -> tuple[Status, list[str]]:
        reply = await self._message("ShowHybridCollections", pb.Command().SerializeToString(), timeout,
                                    pb.MappingList)
        if isinstance(reply, Status):
            return reply, []
        if reply.status.error_code != 0:
            return Status(reply.status.error_code, reply.status.reason), []
        return Status(), [m.collection_name for m in reply.mapping_list]

    async def drop_hybrid_collection(self, collection_name: str, timeout: float | None = 30) -> Status:
        check(collection_name=collection_name)
        self._schemas.pop(collection_name, None)
        return await self._status_call("DropHybridCollection", name_bytes(collection_name), timeout)

    async def _schema(self, collection_name: str, timeout: float | None) -> tuple[Status, HybridSchema | None]:
        known = self._schemas.get(collection_name)
        if known is not None:
            return Status(), known
        return await self.describe_hybrid_collection(collection_name, timeout)

    async def insert_entities(self, collection_name: str, entities: Mapping[str, Any], vectors: Any,
                              ids: Any = None, partition_tag: str | None = None,
                              timeout: float | None = None) -> tuple[Status, list[int]]:
        """Insert rows: ``entities`` maps every scalar field to its column, ``vectors`` a 2-D array or lists.
        Retried after UNAVAILABLE only with explicit ``ids``."""
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
        status, schema = await self._schema(collection_name, timeout)
        if schema is None:
            return status, []
        request = insert_entity_bytes(schema, entities, records, id_array, partition_tag)
        metadata = () if id_array is not None else ((REQUEST_KEY_HEADER, uuid.uuid4().hex),)
        try:
            reply = await self._call("InsertEntity", request, timeout,
                                     retryable=self._retry_inserts and id_array is not None, metadata=metadata)
        except CallFailed as exc:
            return status_of_failure(exc), []
        code, reason, got = codec.decode_vector_ids(reply)
        if code != 0:
            return Status(code, reason), []
        return Status(message="Add entities successfully!"), got.tolist()

    async def hybrid_search(self, collection_name: str, dsl: Mapping[str, Any],
                            partition_tags: list[str] | None = None,
                            timeout: float | None = None) -> tuple[Status, TopKQueryResult | None]:
        """Filtered search with a JSON DSL document (``hybrid.bool_query`` & co.), shaped like ``search``'s."""
        check(collection_name=collection_name)
        if partition_tags is not None:
            check(partition_tag_array=partition_tags)
        request = hybrid_search_bytes(collection_name, dsl, partition_tags)
        try:
            reply = await self._call("HybridSearch", request, timeout)
        except CallFailed as exc:
            return status_of_failure(exc), None
        result = codec.decode_topk(reply)
        if result.code != 0:
            return Status(result.code, result.reason), None
        return Status(message="Search vectors successfully!"), TopKQueryResult(result.ids, result.distances, reply)

    async def get_entities_by_id(self, collection_name: str, ids: Sequence[int],
                                 timeout: float | None = None) -> tuple[Status, list[dict[str, Any] | None]]:
        """Entities by id: one ``{"id", field: value, ..., vector field: vector}`` per id, ``None`` if not found."""
        check(collection_name=collection_name, ids=list(ids))
        status, schema = await self._schema(collection_name, timeout)
        if schema is None:
            return status, []
        out: list[dict[str, Any] | None] = []
        for entity_id in ids:
            request = pb.HEntityIdentity(collection_name=collection_name, id=int(entity_id)).SerializeToString()
            reply = await self._message("GetEntityByID", request, timeout, pb.HEntity)
            if isinstance(reply, Status):
                return reply, []
            if reply.status.error_code != 0:
                return Status(reply.status.error_code, reply.status.reason), []
            out.append(decode_entity(schema, reply))
        return Status(), out

    async def delete_entities_by_id(self, collection_name: str, ids: Sequence[int],
                                    timeout: float | None = None) -> Status:
        check(collection_name=collection_name, ids=list(ids))
        request = pb.HDeleteByIDParam(collection_name=collection_name, id_array=[int(i) for i in ids])
        return await self._status_call("DeleteEntitiesByID", request.SerializeToString(), timeout)
