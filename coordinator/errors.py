"""One error hierarchy for the whole project, each error carrying its Milvus 1.1 status code.

The servicer edge maps these to an in-band ``Status{error_code, reason}``; nothing else should
construct wire statuses from exceptions.
"""

from __future__ import annotations

from enum import IntEnum


class ErrorCode(IntEnum):
    """Mirror of ``milvus.grpc.ErrorCode`` (status.proto); value 6 does not exist in 1.1."""

    SUCCESS = 0
    UNEXPECTED_ERROR = 1
    CONNECT_FAILED = 2
    PERMISSION_DENIED = 3
    COLLECTION_NOT_EXISTS = 4
    ILLEGAL_ARGUMENT = 5
    ILLEGAL_DIMENSION = 7
    ILLEGAL_INDEX_TYPE = 8
    ILLEGAL_COLLECTION_NAME = 9
    ILLEGAL_TOPK = 10
    ILLEGAL_ROWRECORD = 11
    ILLEGAL_VECTOR_ID = 12
    ILLEGAL_SEARCH_RESULT = 13
    FILE_NOT_FOUND = 14
    META_FAILED = 15
    CACHE_FAILED = 16
    CANNOT_CREATE_FOLDER = 17
    CANNOT_CREATE_FILE = 18
    CANNOT_DELETE_FOLDER = 19
    CANNOT_DELETE_FILE = 20
    BUILD_INDEX_ERROR = 21
    ILLEGAL_NLIST = 22
    ILLEGAL_METRIC_TYPE = 23
    OUT_OF_MEMORY = 24


class MilvusError(Exception):
    """Base of every error that is reported to a client as a Milvus status."""

    code: ErrorCode = ErrorCode.UNEXPECTED_ERROR

    def __init__(self, reason: str, code: ErrorCode | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        if code is not None:
            self.code = code


class UnexpectedError(MilvusError):
    code = ErrorCode.UNEXPECTED_ERROR


class IllegalArgument(MilvusError):
    code = ErrorCode.ILLEGAL_ARGUMENT


class IllegalCollectionName(MilvusError):
    code = ErrorCode.ILLEGAL_COLLECTION_NAME


class CollectionNotFound(MilvusError):
    code = ErrorCode.COLLECTION_NOT_EXISTS

    def __init__(self, name: str, code: ErrorCode | None = None) -> None:
        super().__init__(
            f"Collection {name} does not exist. Use milvus.has_collection to verify whether the "
            "collection exists. You also can check whether the collection name exists.",
            code,
        )


class IllegalDimension(MilvusError):
    code = ErrorCode.ILLEGAL_DIMENSION


class IllegalIndexType(MilvusError):
    code = ErrorCode.ILLEGAL_INDEX_TYPE


class IllegalTopk(MilvusError):
    code = ErrorCode.ILLEGAL_TOPK


class IllegalRowRecord(MilvusError):
    code = ErrorCode.ILLEGAL_ROWRECORD


class IllegalVectorId(MilvusError):
    code = ErrorCode.ILLEGAL_VECTOR_ID


class IllegalMetricType(MilvusError):
    code = ErrorCode.ILLEGAL_METRIC_TYPE


class MetaFailed(MilvusError):
    """The catalog database failed or refused a change (includes fencing of a deposed writer)."""

    code = ErrorCode.META_FAILED


class StorageError(MilvusError):
    code = ErrorCode.CANNOT_CREATE_FILE


class FileNotFound(MilvusError):
    code = ErrorCode.FILE_NOT_FOUND


class BuildIndexError(MilvusError):
    code = ErrorCode.BUILD_INDEX_ERROR


class ReadOnlyRole(MilvusError):
    """A write reached a node whose role cannot accept it."""

    code = ErrorCode.PERMISSION_DENIED


class NotWriter(ReadOnlyRole):
    """This process lost (or never held) the writer role: the write was refused before anything was written,
    so it is safe to send again to the current writer."""


class WriteOutcomeUnknown(UnexpectedError):
    """A write reached the log but could not be acknowledged: it may or may not take effect. Retrying the
    same insert (same ids, or through the proxy, which retries with the request's idempotency key) is safe."""

    PREFIX = "Write outcome unknown"
