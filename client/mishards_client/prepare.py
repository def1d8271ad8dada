"""``Prepare``: pymilvus 1.1's request builders, returning this package's protobuf messages.

``Milvus.insert(None, None, insert_param=Prepare.insert_param(...))`` sends a prepared ``InsertParam``, as
pymilvus does. New code passes arrays to ``insert`` / ``search`` directly (faster: no message objects).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ._grpc import milvus_pb2 as pb
from ._grpc import status_pb2

__all__ = ["Prepare"]


def _row(vector: Any) -> pb.RowRecord:
    if isinstance(vector, (bytes, bytearray)):
        return pb.RowRecord(binary_data=bytes(vector))
    return pb.RowRecord(float_data=[float(v) for v in vector])


def _params(params: dict[str, Any] | None) -> pb.KeyValuePair:
    return pb.KeyValuePair(key="params", value=json.dumps(params or {}))


class Prepare:
    @classmethod
    def collection_name(cls, collection_name: str) -> pb.CollectionName:
        return pb.CollectionName(collection_name=collection_name)

    @classmethod
    def collection_schema(cls, collection_name: str, dimension: int, index_file_size: int, metric_type: int,
                          param: dict[str, Any] | None) -> pb.CollectionSchema:
        schema = pb.CollectionSchema(status=status_pb2.Status(reason="Client"), collection_name=collection_name,
                                     dimension=dimension, index_file_size=index_file_size,
                                     metric_type=int(metric_type))
        if param:
            schema.extra_params.append(pb.KeyValuePair(key="params", value=json.dumps(param)))
        return schema

    @classmethod
    def preload_param(cls, collection_name: str, partition_tags: Sequence[str] | None) -> pb.PreloadCollectionParam:
        return pb.PreloadCollectionParam(collection_name=collection_name, partition_tag_array=partition_tags)

    release_param = preload_param

    @classmethod
    def reload_param(cls, collection_name: str, segment_ids: Sequence[str]) -> pb.ReLoadSegmentsParam:
        return pb.ReLoadSegmentsParam(collection_name=collection_name, segment_id_array=segment_ids)

    @classmethod
    def insert_param(cls, collection_name: str, vectors: Sequence[Any], partition_tag: str | None,
                     ids: Sequence[int] | None = None, params: dict[str, Any] | None = None,
                     **kwargs: Any) -> pb.InsertParam:
        return pb.InsertParam(collection_name=collection_name, partition_tag=partition_tag or "",
                              row_id_array=ids or [], row_record_array=[_row(v) for v in vectors],
                              extra_params=[_params(params)])

    @classmethod
    def index_param(cls, collection_name: str, index_type: int, params: dict[str, Any] | None) -> pb.IndexParam:
        return pb.IndexParam(status=status_pb2.Status(reason="Client"), collection_name=collection_name,
                             index_type=int(index_type), extra_params=[_params(params)])

    @classmethod
    def search_param(cls, collection_name: str, topk: int, query_records: Sequence[Any],
                     partitions: Sequence[str] | None, params: dict[str, Any] | None) -> pb.SearchParam:
        return pb.SearchParam(collection_name=collection_name, topk=topk, partition_tag_array=partitions,
                              query_record_array=[_row(v) for v in query_records], extra_params=[_params(params)])

    @classmethod
    def search_vector_in_files_param(cls, collection_name: str, query_records: Sequence[Any], topk: int,
                                     ids: Sequence[Any], params: dict[str, Any] | None) -> pb.SearchInFilesParam:
        return pb.SearchInFilesParam(file_id_array=[str(i) for i in ids],
                                     search_param=cls.search_param(collection_name, topk, query_records, None,
                                                                   params))

    @classmethod
    def cmd(cls, cmd: str) -> pb.Command:
        return pb.Command(cmd=cmd)

    @classmethod
    def partition_param(cls, collection_name: str, tag: str) -> pb.PartitionParam:
        return pb.PartitionParam(collection_name=collection_name, tag=tag)

    @classmethod
    def delete_by_id_param(cls, collection_name: str, id_array: Sequence[int],
                           partition_tag: str | None) -> pb.DeleteByIDParam:
        return pb.DeleteByIDParam(collection_name=collection_name, id_array=id_array, partition_tag=partition_tag or "")

    @classmethod
    def flush_param(cls, collection_names: Sequence[str]) -> pb.FlushParam:
        return pb.FlushParam(collection_name_array=collection_names)

    @classmethod
    def compact_param(cls, collection_name: str) -> pb.CollectionName:
        return pb.CollectionName(collection_name=collection_name)
