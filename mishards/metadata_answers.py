"""Metadata RPCs answered from the proxy's cached catalog (used while the writer cannot be reached)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from coordinator import metadata, validation
from coordinator.catalog import CatalogSnapshot
from coordinator.errors import MilvusError
from coordinator.wire import SUCCESS_REASON
from milvus_wire import milvus_pb2, status_pb2

OK = status_pb2.Status(reason=SUCCESS_REASON)


def _has(snap: CatalogSnapshot, raw: bytes) -> Any:
    req = milvus_pb2.CollectionName.FromString(raw)
    validation.collection_name(req.collection_name)
    return milvus_pb2.BoolReply(status=OK, bool_reply=snap.collection(req.collection_name) is not None)


def _describe(snap: CatalogSnapshot, raw: bytes) -> Any:
    coll = metadata.collection(snap, milvus_pb2.CollectionName.FromString(raw).collection_name)
    return milvus_pb2.CollectionSchema(status=OK, collection_name=coll.name, dimension=coll.dimension,
                                       index_file_size=coll.index_file_size_mb, metric_type=int(coll.metric))


def _count(snap: CatalogSnapshot, raw: bytes) -> Any:
    coll = metadata.collection(snap, milvus_pb2.CollectionName.FromString(raw).collection_name)
    return milvus_pb2.CollectionRowCount(status=OK, collection_row_count=metadata.row_count(snap, coll))


def _list(snap: CatalogSnapshot, raw: bytes) -> Any:
    return milvus_pb2.CollectionNameList(status=OK, collection_names=sorted(snap.collections))


def _info(snap: CatalogSnapshot, raw: bytes) -> Any:
    coll = metadata.collection(snap, milvus_pb2.CollectionName.FromString(raw).collection_name)
    return milvus_pb2.CollectionInfo(status=OK, json_info=metadata.collection_info(snap, coll))


def _describe_index(snap: CatalogSnapshot, raw: bytes) -> Any:
    coll = metadata.collection(snap, milvus_pb2.CollectionName.FromString(raw).collection_name)
    return milvus_pb2.IndexParam(status=OK, collection_name=coll.name, index_type=int(coll.index_type),
                                 extra_params=[milvus_pb2.KeyValuePair(key="params", value=coll.index_params)])


def _has_partition(snap: CatalogSnapshot, raw: bytes) -> Any:
    req = milvus_pb2.PartitionParam.FromString(raw)
    coll = metadata.collection(snap, req.collection_name)
    tag = validation.partition_tag(req.tag)
    return milvus_pb2.BoolReply(status=OK, bool_reply=snap.partition(coll.id, tag) is not None)


def _partitions(snap: CatalogSnapshot, raw: bytes) -> Any:
    coll = metadata.collection(snap, milvus_pb2.CollectionName.FromString(raw).collection_name)
    return milvus_pb2.PartitionList(status=OK, partition_tag_array=[p.tag for p in snap.partitions_of(coll.id)])


ANSWERS: dict[str, Callable[[CatalogSnapshot, bytes], Any]] = {
    "HasCollection": _has,
    "DescribeCollection": _describe,
    "CountCollection": _count,
    "ShowCollections": _list,
    "ShowCollectionInfo": _info,
    "DescribeIndex": _describe_index,
    "HasPartition": _has_partition,
    "ShowPartitions": _partitions,
}


def answer(method: str, snap: CatalogSnapshot, raw: bytes, reply_cls: Any) -> bytes:
    try:
        reply = ANSWERS[method](snap, raw)
    except MilvusError as err:
        status = status_pb2.Status(error_code=int(err.code), reason=err.reason)  # type: ignore[arg-type]
        reply = reply_cls(status=status)
    return bytes(reply.SerializeToString())
