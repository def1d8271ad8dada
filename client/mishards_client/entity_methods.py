"""Vectors as ``Milvus`` methods (mixed into :class:`mishards_client.Milvus`): insert, by id, ids of a segment,
delete by id, and search."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from . import codec
from ._grpc import milvus_pb2 as pb
from .checks import check, check_params
from .exceptions import ParamError
from .grpc_common import REQUEST_KEY_HEADER, GrpcCalls, params_json, rows_to_array, status_of_failure
from .retry import insert_is_retryable
from .transport import CallFailed
from .types import Status, TopKQueryResult

__all__ = ["EntityMethods"]


class EntityMethods(GrpcCalls):
    """Insert (retried as the client's ``retry_inserts`` says), vectors by id, deletes, search."""

    _retry_inserts: bool

    def insert(self, collection_name: str, records: Any, ids: Any = None, partition_tag: str | None = None,
               params: dict[str, Any] | None = None, timeout: float | None = None,
               **kwargs: Any) -> Any:
        """Insert vectors: a 2-D float32 array (uint8 for binary), or lists as pymilvus takes them.

        Returns ``(Status, ids)`` with ``ids`` a list of ints, or with ``_async=True`` a future of it.
        """
        prepared = kwargs.get("insert_param")
        if prepared is not None:  # pymilvus' Prepare.insert_param(...) message, sent as it is
            if not isinstance(prepared, pb.InsertParam):
                raise ParamError("The value of key 'insert_param' is invalid")
            body = prepared.SerializeToString()
            has_ids = len(prepared.row_id_array) > 0
            key_md = () if has_ids else ((REQUEST_KEY_HEADER, uuid.uuid4().hex),)
            return self._maybe_async(kwargs, lambda: self._insert_call(body, timeout, has_ids, key_md))
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
        return self._maybe_async(kwargs, lambda: self._insert_call(request, timeout, id_array is not None, metadata))

    def _insert_call(self, request: bytes, timeout: float | None, has_ids: bool,
                     metadata: Sequence[tuple[str, str]]) -> tuple[Status, list[int]]:
        retryable = self._retry_inserts and insert_is_retryable(has_ids, bool(metadata))
        try:
            reply = self._call("Insert", request, timeout, retryable=retryable, metadata=metadata)
        except CallFailed as exc:
            return status_of_failure(exc), []
        code, reason, got = codec.decode_vector_ids(reply)
        if code == 0:
            return Status(message="Add vectors successfully!"), got.tolist()
        return Status(code, reason), []

    def get_entity_by_id(self, collection_name: str, ids: Any, timeout: float | None = None,
                         partition_tag: str | None = None) -> tuple[Status, list[Any]]:
        """Vectors by id: a list with one entry per id (list of floats, ``bytes`` for binary, ``[]`` when
        the id is unknown), as pymilvus returns them."""
        status, rows = self._get_vectors(collection_name, ids, timeout, partition_tag)
        return status, [r if isinstance(r, bytes) else r.tolist() for r in rows]

    def get_entity_array(self, collection_name: str, ids: Any, timeout: float | None = None,
                         partition_tag: str | None = None) -> tuple[Status, npt.NDArray[Any], npt.NDArray[np.bool_]]:
        """numpy flavour of ``get_entity_by_id``: ``(status, vectors (n, dim) float32 or (n, dim/8) uint8,
        found (n,) bool)``; the rows of ids not found are zero."""
        status, rows = self._get_vectors(collection_name, ids, timeout, partition_tag)
        out, found = rows_to_array(rows)
        return status, out, found

    def _get_vectors(self, collection_name: str, ids: Any, timeout: float | None,
                     partition_tag: str | None) -> tuple[Status, list[Any]]:
        check(collection_name=collection_name, ids=ids)
        if partition_tag is not None:
            check(partition_tag=partition_tag)
        request = pb.VectorsIdentity(collection_name=collection_name, id_array=[int(i) for i in ids],
                                     partition_tag=partition_tag or "")
        try:
            reply = self._call("GetVectorsByID", request.SerializeToString(), timeout)
        except CallFailed as exc:
            return status_of_failure(exc), []
        code, reason, rows = codec.decode_vectors(reply)
        if code == 0:
            return Status(message="Obtain vector successfully"), rows
        return Status(code, reason), []

    def list_id_in_segment(self, collection_name: str, segment_name: str,
                           timeout: float | None = None) -> tuple[Status, list[int]]:
        check(collection_name=collection_name)
        check(collection_name=segment_name)
        request = pb.GetVectorIDsParam(collection_name=collection_name, segment_name=segment_name)
        try:
            reply = self._call("GetVectorIDs", request.SerializeToString(), timeout)
        except CallFailed as exc:
            return status_of_failure(exc), []
        code, reason, got = codec.decode_vector_ids(reply)
        if code == 0:
            return Status(), got.tolist()
        return Status(code, reason), []

    def delete_entity_by_id(self, collection_name: str, id_array: Any, timeout: float | None = None,
                            partition_tag: str | None = None) -> Status:
        check(collection_name=collection_name, ids=id_array)
        if partition_tag is not None:
            check(partition_tag=partition_tag)
        request = pb.DeleteByIDParam(collection_name=collection_name, id_array=[int(i) for i in id_array],
                                     partition_tag=partition_tag or "")
        return self._status_call("DeleteByID", request.SerializeToString(), timeout)

    # --- search ---------------------------------------------------------------------------------------

    def search(self, collection_name: str, top_k: int, query_records: Any, partition_tags: list[str] | None = None,
               params: dict[str, Any] | None = None, timeout: float | None = None, **kwargs: Any) -> Any:
        """``(Status, TopKQueryResult)``; ``result.ids`` / ``result.distances`` are ``(nq, k)`` arrays."""
        check(collection_name=collection_name, topk=top_k)
        rec = codec.to_records(query_records)
        if partition_tags is not None:
            check(partition_tag_array=partition_tags)
        request = codec.encode_search(collection_name, rec, top_k, partition_tags,
                                      params_json(check_params(params)))
        return self._maybe_async(kwargs, lambda: self._search_call("Search", request, timeout))

    def search_in_segment(self, collection_name: str, file_ids: list[Any], query_records: Any, top_k: int,
                          params: dict[str, Any] | None = None, timeout: float | None = None,
                          **kwargs: Any) -> Any:
        """Search in the given segment files (numeric file ids) only."""
        check(collection_name=collection_name, topk=top_k, ids=file_ids)
        rec = codec.to_records(query_records)
        inner = codec.encode_search(collection_name, rec, top_k, None, params_json(check_params(params)))
        request = codec.encode_search_in_files([str(f) for f in file_ids], inner)
        return self._maybe_async(kwargs, lambda: self._search_call("SearchInFiles", request, timeout))

    def _search_call(self, method: str, request: bytes,
                     timeout: float | None) -> tuple[Status, TopKQueryResult | list[Any] | None]:
        try:
            reply = self._call(method, request, timeout)
        except CallFailed as exc:
            return status_of_failure(exc), None
        result = codec.decode_topk(reply)
        if result.code != 0:
            return Status(result.code, result.reason), []
        return Status(message="Search vectors successfully!"), TopKQueryResult(result.ids, result.distances, reply)
