"""Collections, partitions and indexes as ``Milvus`` methods (mixed into :class:`mishards_client.Milvus`)."""

from __future__ import annotations

import copy
import json
from typing import Any

from ._grpc import milvus_pb2 as pb
from ._grpc import status_pb2
from .checks import check, check_params
from .exceptions import ParamError
from .grpc_common import GrpcCalls, name_bytes, params_json, status_of_failure
from .transport import CallFailed
from .types import CollectionSchema, IndexParam, IndexType, MetricType, PartitionParam, Status

__all__ = ["CollectionMethods"]


class CollectionMethods(GrpcCalls):
    """Create / describe / count / list / load / release / drop collections; partitions; indexes."""

    def create_collection(self, param: dict[str, Any], timeout: float | None = 30) -> Status:
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
        return self._status_call("CreateCollection", schema.SerializeToString(), timeout,
                                 "Create collection successfully!")

    def has_collection(self, collection_name: str, timeout: float | None = 30) -> tuple[Status, bool]:
        check(collection_name=collection_name)
        try:
            reply = pb.BoolReply.FromString(self._call("HasCollection", name_bytes(collection_name), timeout))
        except CallFailed as exc:
            return status_of_failure(exc), False
        if reply.status.error_code == 0:
            return Status(), reply.bool_reply
        return Status(reply.status.error_code, reply.status.reason), False

    def get_collection_info(self, collection_name: str,
                            timeout: float | None = 30) -> tuple[Status, CollectionSchema | None]:
        check(collection_name=collection_name)
        try:
            reply = pb.CollectionSchema.FromString(
                self._call("DescribeCollection", name_bytes(collection_name), timeout))
        except CallFailed as exc:
            return status_of_failure(exc), None
        if reply.status.error_code != 0:
            return Status(reply.status.error_code, reply.status.reason), None
        try:
            metric: MetricType | int = MetricType(reply.metric_type)
        except ValueError:
            metric = reply.metric_type
        return Status(message="Describe collection successfully!"), CollectionSchema(
            reply.collection_name, reply.dimension, reply.index_file_size, metric)

    def count_entities(self, collection_name: str, timeout: float | None = 30) -> tuple[Status, int | None]:
        check(collection_name=collection_name)
        try:
            reply = pb.CollectionRowCount.FromString(
                self._call("CountCollection", name_bytes(collection_name), timeout))
        except CallFailed as exc:
            return status_of_failure(exc), None
        if reply.status.error_code == 0:
            return Status(message="Success!"), reply.collection_row_count
        return Status(reply.status.error_code, reply.status.reason), None

    def list_collections(self, timeout: float | None = 30) -> tuple[Status, list[str]]:
        request = pb.Command(cmd="show_collections").SerializeToString()
        try:
            reply = pb.CollectionNameList.FromString(self._call("ShowCollections", request, timeout))
        except CallFailed as exc:
            return status_of_failure(exc), []
        if reply.status.error_code == 0:
            return Status(message="Show collections successfully!"), [n for n in reply.collection_names if n]
        return Status(reply.status.error_code, reply.status.reason), []

    def get_collection_stats(self, collection_name: str,
                             timeout: float | None = 30) -> tuple[Status, dict[str, Any] | None]:
        check(collection_name=collection_name)
        try:
            reply = pb.CollectionInfo.FromString(self._call("ShowCollectionInfo", name_bytes(collection_name), timeout))
        except CallFailed as exc:
            return status_of_failure(exc), None
        if reply.status.error_code == 0:
            return Status(), json.loads(reply.json_info) if reply.json_info else {}
        return Status(reply.status.error_code, reply.status.reason), None

    def load_collection(self, collection_name: str, partition_tags: list[str] | None = None,
                        timeout: float | None = None) -> Status:
        check(collection_name=collection_name, partition_tag_array=partition_tags)
        request = pb.PreloadCollectionParam(collection_name=collection_name, partition_tag_array=partition_tags)
        return self._status_call("PreloadCollection", request.SerializeToString(), timeout)

    def release_collection(self, collection_name: str, partition_tags: list[str] | None = None,
                           timeout: float | None = None) -> Status:
        check(collection_name=collection_name, partition_tag_array=partition_tags)
        request = pb.PreloadCollectionParam(collection_name=collection_name, partition_tag_array=partition_tags)
        return self._status_call("ReleaseCollection", request.SerializeToString(), timeout)

    def reload_segments(self, collection_name: str, segment_ids: list[str], timeout: float | None = None) -> Status:
        check(collection_name=collection_name)
        request = pb.ReLoadSegmentsParam(collection_name=collection_name,
                                         segment_id_array=[str(s) for s in segment_ids])
        return self._status_call("ReloadSegments", request.SerializeToString(), timeout)

    def drop_collection(self, collection_name: str, timeout: float | None = 30) -> Status:
        check(collection_name=collection_name)
        return self._status_call("DropCollection", name_bytes(collection_name), timeout,
                                 "Delete collection successfully!")

    # --- indexes --------------------------------------------------------------------------------------

    def create_index(self, collection_name: str, index_type: IndexType | int | None = None,
                     params: dict[str, Any] | None = None, timeout: float | None = None, **kwargs: Any) -> Any:
        kind = IndexType.FLAT if index_type is None else index_type
        check(collection_name=collection_name, index_type=kind)
        params = check_params(params or None)
        request = pb.IndexParam(status=status_pb2.Status(reason="Client"),
                                collection_name=collection_name, index_type=int(kind))
        request.extra_params.add(key="params", value=params_json(params))
        body = request.SerializeToString()
        return self._maybe_async(kwargs, lambda: self._status_call("CreateIndex", body, timeout,
                                                                   "Build index successfully!"))

    def get_index_info(self, collection_name: str, timeout: float | None = 30) -> tuple[Status, IndexParam | None]:
        check(collection_name=collection_name)
        try:
            reply = pb.IndexParam.FromString(self._call("DescribeIndex", name_bytes(collection_name), timeout))
        except CallFailed as exc:
            return status_of_failure(exc), None
        if reply.status.error_code != 0:
            return Status(reply.status.error_code, reply.status.reason), None
        raw = next((kv.value for kv in reply.extra_params if kv.key == "params"), "")
        if not raw and reply.extra_params:
            raw = reply.extra_params[0].value
        return Status(message="Successfully"), IndexParam(reply.collection_name, reply.index_type, raw or "{}")

    def drop_index(self, collection_name: str, timeout: float | None = 30) -> Status:
        check(collection_name=collection_name)
        return self._status_call("DropIndex", name_bytes(collection_name), timeout)

    # --- partitions -----------------------------------------------------------------------------------

    def create_partition(self, collection_name: str, partition_tag: str, timeout: float | None = 30) -> Status:
        check(collection_name=collection_name, partition_tag=partition_tag)
        request = pb.PartitionParam(collection_name=collection_name, tag=partition_tag)
        return self._status_call("CreatePartition", request.SerializeToString(), timeout)

    def has_partition(self, collection_name: str, partition_tag: str,
                      timeout: float | None = 30) -> tuple[Status, bool]:
        check(collection_name=collection_name, partition_tag=partition_tag)
        request = pb.PartitionParam(collection_name=collection_name, tag=partition_tag)
        try:
            reply = pb.BoolReply.FromString(self._call("HasPartition", request.SerializeToString(), timeout))
        except CallFailed as exc:
            return status_of_failure(exc), False
        return Status(reply.status.error_code, reply.status.reason), reply.bool_reply

    def list_partitions(self, collection_name: str,
                        timeout: float | None = 30) -> tuple[Status, list[PartitionParam]]:
        check(collection_name=collection_name)
        try:
            reply = pb.PartitionList.FromString(self._call("ShowPartitions", name_bytes(collection_name), timeout))
        except CallFailed as exc:
            return status_of_failure(exc), []
        if reply.status.error_code == 0:
            return Status(), [PartitionParam(collection_name, t) for t in reply.partition_tag_array]
        return Status(reply.status.error_code, reply.status.reason), []

    def drop_partition(self, collection_name: str, partition_tag: str, timeout: float | None = 30) -> Status:
        check(collection_name=collection_name, partition_tag=partition_tag)
        request = pb.PartitionParam(collection_name=collection_name, tag=partition_tag)
        return self._status_call("DropPartition", request.SerializeToString(), timeout)
