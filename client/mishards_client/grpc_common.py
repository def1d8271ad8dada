"""What the gRPC clients share (:class:`mishards_client.Milvus`, its method mixins, and
:class:`mishards_client.aio.AsyncMilvus`): the request-key header, request helpers, how a failed call or a
reply's status becomes a :class:`~mishards_client.types.Status`, vectors by id as one array, and
:class:`GrpcCalls`, the calls the sync method mixins make on the client they are mixed into."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import grpc
import numpy as np
import numpy.typing as npt

from ._grpc import milvus_pb2 as pb
from .futures import CallFuture
from .transport import CallFailed
from .types import Status

__all__ = ["REQUEST_KEY_HEADER", "GrpcCalls", "name_bytes", "params_json", "reply_status", "rows_to_array",
           "status_of", "status_of_failure"]

REQUEST_KEY_HEADER = "mishards-request-key"
T = TypeVar("T")


def status_of_failure(exc: CallFailed) -> Status:
    """The ``Status`` a failed call is reported with (gRPC code mapped onto the Milvus codes)."""
    if exc.code == grpc.StatusCode.UNAVAILABLE:
        code = Status.CONNECT_FAILED
    elif exc.code in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED):
        code = Status.PERMISSION_DENIED
    else:
        code = Status.UNEXPECTED_ERROR
    if exc.code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return Status(code, "Request timeout")
    return Status(code, f"Error occurred. {exc.details}")


def status_of(code: int, reason: str, ok_message: str = "Success") -> Status:
    return Status(message=ok_message) if code == 0 else Status(code=code, message=reason)


def params_json(params: dict[str, Any]) -> str:
    return json.dumps(params, separators=(",", ":"))


def name_bytes(collection_name: str) -> bytes:
    return pb.CollectionName(collection_name=collection_name).SerializeToString()


def reply_status(reply: Any) -> Status:
    return Status(reply.status.error_code, reply.status.reason)


def rows_to_array(rows: list[Any]) -> tuple[npt.NDArray[Any], npt.NDArray[np.bool_]]:
    """Vectors by id (float32 arrays, ``bytes``, empty when not found) as one ``(n, dim)`` array (float32, or
    uint8 for binary) and the ``found`` mask; rows not found are zero."""
    found = np.array([len(r) > 0 for r in rows], dtype=np.bool_)
    sample = next((r for r in rows if len(r)), None)
    if sample is None:
        return np.empty((len(rows), 0), dtype=np.float32), found
    binary = isinstance(sample, bytes)
    out: npt.NDArray[Any] = np.zeros((len(rows), len(sample)), dtype=np.uint8 if binary else np.float32)
    for i, r in enumerate(rows):
        if len(r):
            out[i] = np.frombuffer(r, dtype=np.uint8) if isinstance(r, bytes) else r
    return out, found


class GrpcCalls:
    """The calls a method mixin of :class:`mishards_client.Milvus` makes (implemented by ``Milvus``)."""

    def _call(self, method: str, request: bytes, timeout: float | None, *, retryable: bool | None = None,
              metadata: Sequence[tuple[str, str]] = ()) -> bytes:
        raise NotImplementedError

    def _status_call(self, method: str, request: bytes, timeout: float | None, ok_message: str = "Success",
                     **call_kwargs: Any) -> Status:
        raise NotImplementedError

    def _maybe_async(self, kwargs: dict[str, Any], fn: Callable[[], T]) -> T | CallFuture:
        raise NotImplementedError
