"""``AsyncMilvus``: the :class:`mishards_client.Milvus` API as coroutines, on ``grpc.aio``.

Same method names, arguments, return shapes and status codes as the sync client; numpy in and out through the
same wire codec; deadlines (``timeout``), retries on UNAVAILABLE with backoff, token and TLS as the sync
client. Use it inside one event loop::

    async with AsyncMilvus("127.0.0.1", 19530) as client:
        status, ids = await client.insert("vectors", array)
        status, result = await client.search("vectors", 10, queries, params={"nprobe": 16})

Calls may run concurrently (``asyncio.gather``); an ``_async`` keyword is accepted and ignored.
"""
from __future__ import annotations

import copy
import json
import uuid
from typing import Any

import numpy as np
import numpy.typing as npt

from . import codec
from ._grpc import milvus_pb2 as pb
from ._grpc import status_pb2
from .aio_hybrid import AsyncHybridMethods
from .checks import check, check_params
from .exceptions import ParamError
from .grpc_common import REQUEST_KEY_HEADER, name_bytes, params_json, reply_status, rows_to_array, status_of_failure
from .retry import insert_is_retryable
from .transport import CallFailed
from .types import CollectionSchema, IndexParam, IndexType, MetricType, PartitionParam, Status, TopKQueryResult

__all__ = ["AsyncMilvus"]


class AsyncMilvus(AsyncHybridMethods):
    """An asyncio client of one Milvus 1.1 gRPC endpoint: ``AsyncMilvus(host, port)`` or
    ``AsyncMilvus(uri="tcp://host:port")``; keyword-only extras as :class:`mishards_client.Milvus`
    (``token``, ``tls``, ``tls_ca``, ``tls_cert``, ``tls_key``, ``timeout``, ``retries``, ``pool_size``,
    ``retry_inserts``)."""

    # --- collections ----------------------------------------------------------------------------------

    async def create_collection(self, param: dict[str, Any], timeout: float | None = 30) -> Status:
        if not isinstance(param, dict):
            raise ParamError(f"Param type incorrect, expect {dict} but get {type(param)} instead")
        extra = copy.deepcopy(param)
        if "collection_name" not in extra:
            raise ParamError("collection_name is required")
        name = extra.pop("collection_name")
        if "dimension" not in extra:
            raise ParamError("dimension is required")
        dim = extra.pop("dimension")
        index_file_size = extra.pop("index_file_size", 1024)
        metric_type = extra.pop("metric_type", MetricType.L2)
        check(collection_name=name, dimension=dim, index_file_size=index_file_size, metric_type=metric_type)
        schema = pb.CollectionSchema(status=status_pb2.Status(reason="Client"), collection_name=name,
                                     dimension=dim, index_file_size=index_file_size, metric_type=int(metric_type))
        if extra:
            schema.extra_params.add(key="params", value=params_json(extra))
        return await self._status_call("CreateCollection", schema.SerializeToString(), timeout,
                                       "Create collection successfully!")

    async def has_collection(self, collection_name: str, timeout: float | None = 30) -> tuple[Status, bool]:
        check(collection_name=collection_name)
        reply = await self._message("HasCollection", name_bytes(collection_name), timeout, pb.BoolReply)
        if isinstance(reply, Status):
            return reply, False
        if reply.status.error_code == 0:
            return Status(), bool(reply.bool_reply)
        return reply_status(reply), False

    async def get_collection_info(self, collection_name: str,
                                  timeout: float | None = 30) -> tuple[Status, CollectionSchema | None]:
        check(collection_name=collection_name)
        reply = await self._message("DescribeCollection", name_bytes(collection_name), timeout, pb.CollectionSchema)
        if isinstance(reply, Status):
            return reply, None
        if reply.status.error_code != 0:
            return reply_status(reply), None
        try:
            metric: MetricType | int = MetricType(reply.metric_type)
        except ValueError:
            metric = reply.metric_type
        return Status(message="Describe collection successfully!"), CollectionSchema(
            reply.collection_name, reply.dimension, reply.index_file_size, metric)

    async def count_entities(self, collection_name: str, timeout: float | None = 30) -> tuple[Status, int | None]:
        check(collection_name=collection_name)
        reply = await self._message("CountCollection", name_bytes(collection_name), timeout, pb.CollectionRowCount)
        if isinstance(reply, Status):
            return reply, None
        if reply.status.error_code == 0:
            return Status(message="Success!"), int(reply.collection_row_count)
        return reply_status(reply), None

    async def list_collections(self, timeout: float | None = 30) -> tuple[Status, list[str]]:
        request = pb.Command(cmd="show_collections").SerializeToString()
        reply = await self._message("ShowCollections", request, timeout, pb.CollectionNameList)
        if isinstance(reply, Status):
            return reply, []
        if reply.status.error_code == 0:
            return Status(message="Show collections successfully!"), [n for n in reply.collection_names if n]
        return reply_status(reply), []

    async def get_collection_stats(self, collection_name: str,
                                   timeout: float | None = 30) -> tuple[Status, dict[str, Any] | None]:
        check(collection_name=collection_name)
        reply = await self._message("ShowCollectionInfo", name_bytes(collection_name), timeout, pb.CollectionInfo)
        if isinstance(reply, Status):
            return reply, None
        if reply.status.error_code == 0:
            return Status(), json.loads(reply.json_info) if reply.json_info else {}
        return reply_status(reply), None

    async def load_collection(self, collection_name: str, partition_tags: list[str] | None = None,
                              timeout: float | None = None) -> Status:
        check(collection_name=collection_name, partition_tag_array=partition_tags)
        request = pb.PreloadCollectionParam(collection_name=collection_name, partition_tag_array=partition_tags)
        return await self._status_call("PreloadCollection", request.SerializeToString(), timeout)

    async def release_collection(self, collection_name: str, partition_tags: list[str] | None = None,
                                 timeout: float | None = None) -> Status:
        check(collection_name=collection_name, partition_tag_array=partition_tags)
        request = pb.PreloadCollectionParam(collection_name=collection_name, partition_tag_array=partition_tags)
        return await self._status_call("ReleaseCollection", request.SerializeToString(), timeout)

    async def reload_segments(self, collection_name: str, segment_ids: list[str],
                              timeout: float | None = None) -> Status:
        check(collection_name=collection_name)
        request = pb.ReLoadSegmentsParam(collection_name=collection_name,
                                         segment_id_array=[str(s) for s in segment_ids])
        return await self._status_call("ReloadSegments", request.SerializeToString(), timeout)

    async def drop_collection(self, collection_name: str, timeout: float | None = 30) -> Status:
        check(collection_name=collection_name)
        return await self._status_call("DropCollection", name_bytes(collection_name), timeout,
                                       "Delete collection successfully!")

    # --- entities -------------------------------------------------------------------------------------

    async def insert(self, collection_name: str, records: Any, ids: Any = None, partition_tag: str | None = None,
                     params: dict[str, Any] | None = None, timeout: float | None = None,
                     **kwargs: Any) -> tuple[Status, list[int]]:
        """Insert vectors: a 2-D float32 array (uint8 for binary), or lists. ``(Status, ids)``."""
        check(collection_name=collection_name)
        rec = codec.to_records(records)
        if partition_tag is not None:
            check(partition_tag=partition_tag)
        id_array: npt.NDArray[np.int64] | None = None
        if ids is not None:
            check(ids=ids)
            id_array = np.asarray(ids, dtype=np.int64)
            if id_array.shape[0] != rec.rows:
                raise ParamError("length of vectors do not match that of ids")
        request = codec.encode_insert(collection_name, rec, id_array, partition_tag,
                                      params_json(check_params(params)))
        metadata = () if id_array is not None else ((REQUEST_KEY_HEADER, uuid.uuid4().hex),)
        retryable = self._retry_inserts and insert_is_retryable(id_array is not None, bool(metadata))
        try:
            reply = await self._call("Insert", request, timeout, retryable=retryable, metadata=metadata)
        except CallFailed as exc:
            return status_of_failure(exc), []
        code, reason, got = codec.decode_vector_ids(reply)
        if code == 0:
            return Status(message="Add vectors successfully!"), got.tolist()
        return Status(code, reason), []

    async def _get_vectors(self, collection_name: str, ids: Any, timeout: float | None,
                           partition_tag: str | None) -> tuple[Status, list[Any]]:
        check(collection_name=collection_name, ids=ids)
        if partition_tag is not None:
            check(partition_tag=partition_tag)
        request = pb.VectorsIdentity(collection_name=collection_name, id_array=[int(i) for i in ids],
                                     partition_tag=partition_tag or "")
        try:
            reply = await self._call("GetVectorsByID", request.SerializeToString(), timeout)
        except CallFailed as exc:
            return status_of_failure(exc), []
        code, reason, rows = codec.decode_vectors(reply)
        if code == 0:
            return Status(message="Obtain vector successfully"), rows
        return Status(code, reason), []

    async def get_entity_by_id(self, collection_name: str, ids: Any, timeout: float | None = None,
                               partition_tag: str | None = None) -> tuple[Status, list[Any]]:
        """One entry per id: list of floats, ``bytes`` for binary, ``[]`` when the id is unknown."""
        status, rows = await self._get_vectors(collection_name, ids, timeout, partition_tag)
        return status, [r if isinstance(r, bytes) else r.tolist() for r in rows]

    async def get_entity_array(self, collection_name: str, ids: Any, timeout: float | None = None,
                               partition_tag: str | None = None
                               ) -> tuple[Status, npt.NDArray[Any], npt.NDArray[np.bool_]]:
        """``(status, vectors (n, dim) float32 or (n, dim/8) uint8, found (n,) bool)``."""
        status, rows = await self._get_vectors(collection_name, ids, timeout, partition_tag)
        vectors, found = rows_to_array(rows)
        return status, vectors, found

    async def list_id_in_segment(self, collection_name: str, segment_name: str,
                                 timeout: float | None = None) -> tuple[Status, list[int]]:
        check(collection_name=collection_name)
        check(collection_name=segment_name)
        request = pb.GetVectorIDsParam(collection_name=collection_name, segment_name=segment_name)
        try:
            reply = await self._call("GetVectorIDs", request.SerializeToString(), timeout)
        except CallFailed as exc:
            return status_of_failure(exc), []
        code, reason, got = codec.decode_vector_ids(reply)
        if code == 0:
            return Status(), got.tolist()
        return Status(code, reason), []

    async def delete_entity_by_id(self, collection_name: str, id_array: Any, timeout: float | None = None,
                                  partition_tag: str | None = None) -> Status:
        check(collection_name=collection_name, ids=id_array)
        if partition_tag is not None:
            check(partition_tag=partition_tag)
        request = pb.DeleteByIDParam(collection_name=collection_name, id_array=[int(i) for i in id_array],
                                     partition_tag=partition_tag or "")
        return await self._status_call("DeleteByID", request.SerializeToString(), timeout)

    # --- indexes --------------------------------------------------------------------------------------

    async def create_index(self, collection_name: str, index_type: IndexType | int | None = None,
                           params: dict[str, Any] | None = None, timeout: float | None = None,
                           **kwargs: Any) -> Status:
        kind = IndexType.FLAT if index_type is None else index_type
        check(collection_name=collection_name, index_type=kind)
        request = pb.IndexParam(status=status_pb2.Status(reason="Client"),
                                collection_name=collection_name, index_type=int(kind))
        request.extra_params.add(key="params", value=params_json(check_params(params or None)))
        return await self._status_call("CreateIndex", request.SerializeToString(), timeout,
                                       "Build index successfully!")

    async def get_index_info(self, collection_name: str,
                             timeout: float | None = 30) -> tuple[Status, IndexParam | None]:
        check(collection_name=collection_name)
        reply = await self._message("DescribeIndex", name_bytes(collection_name), timeout, pb.IndexParam)
        if isinstance(reply, Status):
            return reply, None
        if reply.status.error_code != 0:
            return reply_status(reply), None
        raw = next((kv.value for kv in reply.extra_params if kv.key == "params"), "")
        if not raw and reply.extra_params:
            raw = reply.extra_params[0].value
        return Status(message="Successfully"), IndexParam(reply.collection_name, reply.index_type, raw or "{}")

    async def drop_index(self, collection_name: str, timeout: float | None = 30) -> Status:
        check(collection_name=collection_name)
        return await self._status_call("DropIndex", name_bytes(collection_name), timeout)

    # --- partitions -----------------------------------------------------------------------------------

    async def create_partition(self, collection_name: str, partition_tag: str,
                               timeout: float | None = 30) -> Status:
        check(collection_name=collection_name, partition_tag=partition_tag)
        request = pb.PartitionParam(collection_name=collection_name, tag=partition_tag)
        return await self._status_call("CreatePartition", request.SerializeToString(), timeout)

    async def has_partition(self, collection_name: str, partition_tag: str,
                            timeout: float | None = 30) -> tuple[Status, bool]:
        check(collection_name=collection_name, partition_tag=partition_tag)
        request = pb.PartitionParam(collection_name=collection_name, tag=partition_tag)
        reply = await self._message("HasPartition", request.SerializeToString(), timeout, pb.BoolReply)
        if isinstance(reply, Status):
            return reply, False
        return reply_status(reply), bool(reply.bool_reply)

    async def list_partitions(self, collection_name: str,
                              timeout: float | None = 30) -> tuple[Status, list[PartitionParam]]:
        check(collection_name=collection_name)
        reply = await self._message("ShowPartitions", name_bytes(collection_name), timeout, pb.PartitionList)
        if isinstance(reply, Status):
            return reply, []
        if reply.status.error_code == 0:
            return Status(), [PartitionParam(collection_name, t) for t in reply.partition_tag_array]
        return reply_status(reply), []

    async def drop_partition(self, collection_name: str, partition_tag: str, timeout: float | None = 30) -> Status:
        check(collection_name=collection_name, partition_tag=partition_tag)
        request = pb.PartitionParam(collection_name=collection_name, tag=partition_tag)
        return await self._status_call("DropPartition", request.SerializeToString(), timeout)

    # --- search ---------------------------------------------------------------------------------------

    async def search(self, collection_name: str, top_k: int, query_records: Any,
                     partition_tags: list[str] | None = None, params: dict[str, Any] | None = None,
                     timeout: float | None = None, **kwargs: Any) -> tuple[Status, TopKQueryResult | list[Any] | None]:
        """``(Status, TopKQueryResult)``; ``result.ids`` / ``result.distances`` are ``(nq, k)`` arrays."""
        check(collection_name=collection_name, topk=top_k)
        rec = codec.to_records(query_records)
        if partition_tags is not None:
            check(partition_tag_array=partition_tags)
        request = codec.encode_search(collection_name, rec, top_k, partition_tags,
                                      params_json(check_params(params)))
        return await self._search_call("Search", request, timeout)

    async def search_in_segment(self, collection_name: str, file_ids: list[Any], query_records: Any, top_k: int,
                                params: dict[str, Any] | None = None, timeout: float | None = None,
                                **kwargs: Any) -> tuple[Status, TopKQueryResult | list[Any] | None]:
        """Search in the given segment files (numeric file ids) only."""
        check(collection_name=collection_name, topk=top_k, ids=file_ids)
        rec = codec.to_records(query_records)
        inner = codec.encode_search(collection_name, rec, top_k, None, params_json(check_params(params)))
        request = codec.encode_search_in_files([str(f) for f in file_ids], inner)
        return await self._search_call("SearchInFiles", request, timeout)

    async def _search_call(self, method: str, request: bytes,
                           timeout: float | None) -> tuple[Status, TopKQueryResult | list[Any] | None]:
        try:
            reply = await self._call(method, request, timeout)
        except CallFailed as exc:
            return status_of_failure(exc), None
        result = codec.decode_topk(reply)
        if result.code != 0:
            return Status(result.code, result.reason), []
        return Status(message="Search vectors successfully!"), TopKQueryResult(result.ids, result.distances, reply)

    # --- maintenance ----------------------------------------------------------------------------------

    async def flush(self, collection_name_array: list[str] | None = None, timeout: float | None = None,
                    **kwargs: Any) -> Status:
        if collection_name_array in (None, []):
            names: list[str] = []
        else:
            if not isinstance(collection_name_array, list):
                raise ParamError("Collection name array must be type of list")
            for name in collection_name_array:
                check(collection_name=name)
            names = collection_name_array
        return await self._status_call("Flush", pb.FlushParam(collection_name_array=names).SerializeToString(),
                                       timeout)

    async def compact(self, collection_name: str, timeout: float | None = None, **kwargs: Any) -> Status:
        check(collection_name=collection_name)
        return await self._status_call("Compact", name_bytes(collection_name), timeout)
