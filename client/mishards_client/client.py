"""``Milvus``: the pymilvus 1.1 client API over the Milvus 1.1 gRPC protocol, with numpy in and out."""

from __future__ import annotations

import concurrent.futures
import contextlib
import copy
import json
import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import grpc
import numpy as np
import numpy.typing as npt

from . import codec
from ._grpc import milvus_pb2 as pb
from ._grpc import status_pb2
from .checks import check, check_params, resolve_address
from .exceptions import NotConnectError, ParamError
from .futures import CallFuture
from .hybrid_methods import HybridMethods
from .retry import IDEMPOTENT_METHODS, RetryPolicy, insert_is_retryable
from .transport import CallFailed, Transport, TransportSettings, read_pem
from .types import (
    CollectionSchema,
    IndexParam,
    IndexType,
    MetricType,
    PartitionParam,
    Status,
    TopKQueryResult,
)

__all__ = ["Milvus", "status_of_failure"]

LOGGER = logging.getLogger(__name__)
REQUEST_KEY_HEADER = "mishards-request-key"
_POOLS = ("SingletonThread", "QueuePool", "Singleton")
T = TypeVar("T")
PemSource = str | bytes | Path | None


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


def _status(code: int, reason: str, ok_message: str = "Success") -> Status:
    return Status(message=ok_message) if code == 0 else Status(code=code, message=reason)


def _params_json(params: dict[str, Any]) -> str:
    return json.dumps(params, separators=(",", ":"))


class Milvus(HybridMethods):
    """A client of one Milvus 1.1 endpoint (a Mishards node or proxy, or Milvus 1.1 itself).

    ``Milvus(host, port)`` or ``Milvus(uri="tcp://host:port")``. Thread-safe: share one instance. Keyword-only
    extras: ``token`` (sent as ``authorization: Bearer <token>``), ``tls``/``tls_ca``/``tls_cert``/``tls_key``
    (PEM bytes or file paths), ``timeout`` (default deadline of calls given no ``timeout``), ``retries``
    (further attempts after UNAVAILABLE), ``pool_size`` (gRPC channels, default 2), ``retry_inserts`` (default
    True: inserts are retried too, which Mishards recognises as repeats by content or request key; set False
    against a server that does not, such as Milvus 1.1 itself).
    ``handler="HTTP"`` gives the same API over the REST API instead (:class:`mishards_client.rest.RestMilvus`).
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Milvus:
        handler = kwargs.get("handler", args[2] if len(args) > 2 else "GRPC")
        if cls is Milvus and handler == "HTTP":  # pymilvus' way of choosing its HTTP handler
            from .rest import RestMilvus

            return RestMilvus(*args, **kwargs)  # type: ignore[return-value]
        return super().__new__(cls)

    def __init__(self, host: str | None = None, port: int | str | None = None, handler: str = "GRPC",
                 pool: str = "SingletonThread", *, token: str | None = None, tls: bool = False,
                 tls_ca: PemSource = None, tls_cert: PemSource = None, tls_key: PemSource = None,
                 timeout: float | None = None, retries: int = 3, **kwargs: Any) -> None:
        if pool not in _POOLS:
            raise ParamError(f"Unknown pool value: {pool}")
        if handler != "GRPC":
            raise ParamError(f"Unknown handler {handler!r}: this class speaks gRPC; for REST use "
                             "mishards_client.rest")
        if retries < 0:
            raise ParamError("retries must be >= 0")
        if (tls_cert is None) != (tls_key is None):
            raise ParamError("tls_cert and tls_key go together")
        self._name = kwargs.get("name")
        self._handler = handler
        self._address = resolve_address(host, port, kwargs.get("uri"), handler)
        pool_size = int(kwargs.get("pool_size", 2))
        if pool_size < 1:
            raise ParamError("pool_size must be at least 1")
        self._settings = TransportSettings(
            address=self._address, token=token, tls=tls or tls_ca is not None or tls_cert is not None,
            tls_ca=read_pem(tls_ca), tls_cert=read_pem(tls_cert), tls_key=read_pem(tls_key),
            tls_server_name=kwargs.get("tls_server_name"), timeout=timeout,
            retry=RetryPolicy(retries=retries, base=float(kwargs.get("retry_backoff", 0.1)),
                              cap=float(kwargs.get("retry_backoff_max", 2.0))),
            pool_size=pool_size)
        self._transport: Transport | None = Transport(self._settings)
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._schemas = {}
        self._retry_inserts = bool(kwargs.get("retry_inserts", True))
        self._schemas_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<Milvus: address={self._address!r}, tls={self._settings.tls}>"

    def __enter__(self) -> Milvus:
        return self

    def __exit__(self, *exc: object) -> None:
        """Release the connections (as pymilvus returns its connection to the pool); the client stays usable and
        reconnects on its next call. ``close()`` ends it for good."""
        with self._lock:
            transport = self._transport
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)
        if transport is not None:
            transport.release()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # at interpreter shutdown
            self.close()

    # --- plumbing -----------------------------------------------------------------------------------

    @property
    def name(self) -> Any:
        return self._name

    @property
    def handler(self) -> str:
        return self._handler

    @property
    def address(self) -> str:
        return self._address

    def _call(self, method: str, request: bytes, timeout: float | None, *, retryable: bool | None = None,
              metadata: Sequence[tuple[str, str]] = ()) -> bytes:
        transport = self._transport
        if transport is None:
            raise NotConnectError("the client is closed")
        ok = method in IDEMPOTENT_METHODS if retryable is None else retryable
        return transport.call(method, request, timeout=timeout, retryable=ok, metadata=metadata)

    def _maybe_async(self, kwargs: dict[str, Any], fn: Callable[[], T]) -> T | CallFuture:
        if kwargs.get("_async", False) is not True:
            return fn()
        with self._lock:
            if self._transport is None:
                raise NotConnectError("the client is closed")
            if self._executor is None:
                self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=4,
                                                                       thread_name_prefix="mishards-client")
            executor = self._executor
        return CallFuture(executor.submit(fn), kwargs.get("_callback"))

    def _status_call(self, method: str, request: bytes, timeout: float | None, ok_message: str = "Success",
                     **call_kwargs: Any) -> Status:
        try:
            reply = self._call(method, request, timeout, **call_kwargs)
        except CallFailed as exc:
            return status_of_failure(exc)
        code, reason = codec.decode_status_only(reply)
        return _status(code, reason, ok_message)

    # --- connection -----------------------------------------------------------------------------------

    def connect(self, host: str | None = None, port: int | str | None = None, uri: str | None = None,
                timeout: float = 2) -> Status:
        """Check that the server answers (``Cmd("version")``) within ``timeout`` seconds."""
        status, _ = self._cmd("version", timeout)
        if not status.OK():
            raise NotConnectError(f"Fail connecting to server on {self._address}: {status.message}")
        return Status(message="Connected")

    def connected(self) -> bool:
        return self._transport is not None

    def disconnect(self) -> None:
        self.close()

    def close(self) -> None:
        """Close the channels; further calls raise ``NotConnectError``."""
        with self._lock:
            transport, self._transport = getattr(self, "_transport", None), None
            executor, self._executor = getattr(self, "_executor", None), None
        if executor is not None:
            executor.shutdown(wait=False)
        if transport is not None:
            transport.close()

    def client_version(self) -> str:
        from . import __version__

        return __version__

    def server_status(self, timeout: float | None = 30) -> tuple[Status, str | None]:
        return self._cmd("status", timeout)

    def server_version(self, timeout: float | None = 30) -> tuple[Status, str | None]:
        return self._cmd("version", timeout)

    def _cmd(self, cmd: str, timeout: float | None = 30) -> tuple[Status, str | None]:
        check(cmd=cmd)
        try:
            reply = pb.StringReply.FromString(self._call("Cmd", pb.Command(cmd=cmd).SerializeToString(), timeout))
        except CallFailed as exc:
            return status_of_failure(exc), None
        if reply.status.error_code == 0:
            return Status(message="Success!"), reply.string_reply
        return Status(reply.status.error_code, reply.status.reason), None

    def get_config(self, parent_key: str, child_key: str) -> tuple[Status, str | None]:
        return self._cmd(f"get_config {parent_key}.{child_key}")

    def set_config(self, parent_key: str, child_key: str, value: Any) -> tuple[Status, str | None]:
        return self._cmd(f"set_config {parent_key}.{child_key} {value}")

    # --- collections ----------------------------------------------------------------------------------

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
            schema.extra_params.add(key="params", value=_params_json(extra))
        return self._status_call("CreateCollection", schema.SerializeToString(), timeout,
                                 "Create collection successfully!")

    def has_collection(self, collection_name: str, timeout: float | None = 30) -> tuple[Status, bool]:
        check(collection_name=collection_name)
        try:
            reply = pb.BoolReply.FromString(self._call("HasCollection", _name(collection_name), timeout))
        except CallFailed as exc:
            return status_of_failure(exc), False
        if reply.status.error_code == 0:
            return Status(), reply.bool_reply
        return Status(reply.status.error_code, reply.status.reason), False

    def get_collection_info(self, collection_name: str,
                            timeout: float | None = 30) -> tuple[Status, CollectionSchema | None]:
        check(collection_name=collection_name)
        try:
            reply = pb.CollectionSchema.FromString(self._call("DescribeCollection", _name(collection_name), timeout))
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
            reply = pb.CollectionRowCount.FromString(self._call("CountCollection", _name(collection_name), timeout))
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
            reply = pb.CollectionInfo.FromString(self._call("ShowCollectionInfo", _name(collection_name), timeout))
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
        return self._status_call("DropCollection", _name(collection_name), timeout, "Delete collection successfully!")

    # --- entities -------------------------------------------------------------------------------------

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
                                      _params_json(check_params(params)))
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
        found = np.array([len(r) > 0 for r in rows], dtype=np.bool_)
        sample = next((r for r in rows if len(r)), None)
        if sample is None:
            return status, np.empty((len(rows), 0), dtype=np.float32), found
        if isinstance(sample, bytes):
            out: npt.NDArray[Any] = np.zeros((len(rows), len(sample)), dtype=np.uint8)
            for i, r in enumerate(rows):
                if len(r):
                    out[i] = np.frombuffer(r, dtype=np.uint8) if isinstance(r, bytes) else r
        else:
            out = np.zeros((len(rows), len(sample)), dtype=np.float32)
            for i, r in enumerate(rows):
                if len(r):
                    out[i] = r
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

    # --- indexes --------------------------------------------------------------------------------------

    def create_index(self, collection_name: str, index_type: IndexType | int | None = None,
                     params: dict[str, Any] | None = None, timeout: float | None = None, **kwargs: Any) -> Any:
        kind = IndexType.FLAT if index_type is None else index_type
        check(collection_name=collection_name, index_type=kind)
        params = check_params(params or None)
        request = pb.IndexParam(status=status_pb2.Status(reason="Client"),
                                collection_name=collection_name, index_type=int(kind))
        request.extra_params.add(key="params", value=_params_json(params))
        body = request.SerializeToString()
        return self._maybe_async(kwargs, lambda: self._status_call("CreateIndex", body, timeout,
                                                                   "Build index successfully!"))

    def get_index_info(self, collection_name: str, timeout: float | None = 30) -> tuple[Status, IndexParam | None]:
        check(collection_name=collection_name)
        try:
            reply = pb.IndexParam.FromString(self._call("DescribeIndex", _name(collection_name), timeout))
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
        return self._status_call("DropIndex", _name(collection_name), timeout)

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
            reply = pb.PartitionList.FromString(self._call("ShowPartitions", _name(collection_name), timeout))
        except CallFailed as exc:
            return status_of_failure(exc), []
        if reply.status.error_code == 0:
            return Status(), [PartitionParam(collection_name, t) for t in reply.partition_tag_array]
        return Status(reply.status.error_code, reply.status.reason), []

    def drop_partition(self, collection_name: str, partition_tag: str, timeout: float | None = 30) -> Status:
        check(collection_name=collection_name, partition_tag=partition_tag)
        request = pb.PartitionParam(collection_name=collection_name, tag=partition_tag)
        return self._status_call("DropPartition", request.SerializeToString(), timeout)

    # --- search ---------------------------------------------------------------------------------------

    def search(self, collection_name: str, top_k: int, query_records: Any, partition_tags: list[str] | None = None,
               params: dict[str, Any] | None = None, timeout: float | None = None, **kwargs: Any) -> Any:
        """``(Status, TopKQueryResult)``; ``result.ids`` / ``result.distances`` are ``(nq, k)`` arrays."""
        check(collection_name=collection_name, topk=top_k)
        rec = codec.to_records(query_records)
        if partition_tags is not None:
            check(partition_tag_array=partition_tags)
        request = codec.encode_search(collection_name, rec, top_k, partition_tags,
                                      _params_json(check_params(params)))
        return self._maybe_async(kwargs, lambda: self._search_call("Search", request, timeout))

    def search_in_segment(self, collection_name: str, file_ids: list[Any], query_records: Any, top_k: int,
                          params: dict[str, Any] | None = None, timeout: float | None = None,
                          **kwargs: Any) -> Any:
        """Search in the given segment files (numeric file ids) only."""
        check(collection_name=collection_name, topk=top_k, ids=file_ids)
        rec = codec.to_records(query_records)
        inner = codec.encode_search(collection_name, rec, top_k, None, _params_json(check_params(params)))
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

    # --- maintenance ----------------------------------------------------------------------------------

    def flush(self, collection_name_array: list[str] | None = None, timeout: float | None = None,
              **kwargs: Any) -> Any:
        if collection_name_array in (None, []):
            names: list[str] = []
        else:
            if not isinstance(collection_name_array, list):
                raise ParamError("Collection name array must be type of list")
            for name in collection_name_array:
                check(collection_name=name)
            names = collection_name_array
        body = pb.FlushParam(collection_name_array=names).SerializeToString()
        return self._maybe_async(kwargs, lambda: self._status_call("Flush", body, timeout))

    def compact(self, collection_name: str, timeout: float | None = None, **kwargs: Any) -> Any:
        check(collection_name=collection_name)
        body = _name(collection_name)
        return self._maybe_async(kwargs, lambda: self._status_call("Compact", body, timeout))


def _name(collection_name: str) -> bytes:
    return pb.CollectionName(collection_name=collection_name).SerializeToString()
