"""``RestMilvus``: the same API as :class:`mishards_client.Milvus` over Milvus 1.1's REST API (port 19121).

``Milvus(host, port, handler="HTTP")`` returns one (as pymilvus selects its HTTP handler); it can also be
made directly. Connections are standard-library ``http.client`` keep-alive connections in a small thread-safe
pool (:mod:`.rest_pool`); ``https`` with ``tls=True`` / ``tls_ca`` (and ``tls_cert``/``tls_key`` for mutual
TLS); ``token`` is sent as ``Authorization: Bearer <token>``. Return shapes and status codes are those of the
gRPC client: an error reply's JSON body carries the Milvus code, a failure to connect is
``Status.CONNECT_FAILED``, a timeout ``"Request timeout"``.

What REST cannot do: ``reload_segments`` (no endpoint: ``NotImplementedError``, as pymilvus' HTTP handler),
extra ``create_collection`` parameters (the server's body is strict: they are not sent). Distances come back
rounded to 6 decimals (the server prints them ``%f``).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import copy
import logging
import os
import ssl
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlencode, urlparse

import numpy as np
import numpy.typing as npt

from . import codec
from .checks import check, check_params, resolve_address
from .exceptions import NotConnectError, ParamError
from .futures import CallFuture
from .rest_json import INDEX_NAMES, decode_topk, dumps, error_status, index_type_of, insert_body, loads, metric_of
from .rest_json import search_body as _search_body
from .rest_pool import Endpoint, HttpPool, Reply, TransportError
from .types import CollectionSchema, IndexParam, IndexType, MetricType, PartitionParam, Status, TopKQueryResult

__all__ = ["RestMilvus"]

LOGGER = logging.getLogger(__name__)
T = TypeVar("T")
PemSource = str | bytes | Path | None
SEGMENT_PAGE = 100_000
_POOLS = ("SingletonThread", "QueuePool", "Singleton")


def _q(segment: str) -> str:
    return quote(segment, safe="")


def _failure(exc: TransportError) -> Status:
    if exc.unavailable:
        return Status(Status.CONNECT_FAILED, f"Error occurred. {exc}")
    if exc.timeout:
        return Status(Status.UNEXPECTED_ERROR, "Request timeout")
    return Status(Status.UNEXPECTED_ERROR, f"Error occurred. {exc}")


class _Bad(Exception):
    """A reply whose body is not what its success status promises."""


def _json(reply: Reply) -> Any:
    try:
        return loads(reply.body)
    except ValueError as exc:
        raise _Bad(f"HTTP {reply.status}: the reply is not JSON: {exc}") from None


def _ssl_context(ca: PemSource, cert: PemSource, key: PemSource) -> ssl.SSLContext:
    """A verifying client context; PEM given as bytes is loaded the way the file-only APIs need."""
    if isinstance(ca, bytes):
        context = ssl.create_default_context(cadata=ca.decode())
    else:
        context = ssl.create_default_context(cafile=str(ca) if ca is not None else None)
    if cert is not None:
        with contextlib.ExitStack() as stack:
            paths: list[str | None] = []
            for pem in (cert, key):
                if isinstance(pem, bytes):
                    fd, name = tempfile.mkstemp(suffix=".pem")
                    stack.callback(os.unlink, name)
                    with os.fdopen(fd, "wb") as f:
                        f.write(pem)
                    paths.append(name)
                else:
                    paths.append(str(pem) if pem is not None else None)
            context.load_cert_chain(paths[0] or "", paths[1])
    return context


class RestMilvus:
    """A client of one Milvus 1.1 REST endpoint: ``RestMilvus(host, port)`` or ``RestMilvus(uri="http://h:p")``.

    Thread-safe: share one instance. Keyword-only extras as :class:`Milvus`: ``token``, ``tls``/``tls_ca``/
    ``tls_cert``/``tls_key`` (PEM bytes or file paths), ``timeout`` (default seconds a call may wait on the
    socket), ``retries`` (further connection attempts, with backoff, when the endpoint refuses), and
    ``pool_size`` (idle keep-alive connections kept, default 8).
    """

    def __init__(self, host: str | None = None, port: int | str | None = None, handler: str = "HTTP",
                 pool: str = "SingletonThread", *, token: str | None = None, tls: bool = False,
                 tls_ca: PemSource = None, tls_cert: PemSource = None, tls_key: PemSource = None,
                 timeout: float | None = None, retries: int = 3, **kwargs: Any) -> None:
        if pool not in _POOLS:
            raise ParamError(f"Unknown pool value: {pool}")
        if handler != "HTTP":
            raise ParamError(f"Unknown handler {handler!r}: this class speaks REST (handler='HTTP')")
        if retries < 0:
            raise ParamError("retries must be >= 0")
        if (tls_cert is None) != (tls_key is None):
            raise ParamError("tls_cert and tls_key go together")
        pool_size = int(kwargs.get("pool_size", 8))
        if pool_size < 1:
            raise ParamError("pool_size must be at least 1")
        uri = kwargs.get("uri")
        self._name = kwargs.get("name")
        self._address = resolve_address(host, port, uri, "HTTP")
        scheme = urlparse(uri).scheme if host is None and port is None and uri else ""
        secure = tls or tls_ca is not None or tls_cert is not None or scheme == "https" or \
            self._address.endswith(":443")
        hostname, _, port_text = self._address.rpartition(":")
        context = _ssl_context(tls_ca, tls_cert, tls_key) if secure else None
        endpoint = Endpoint(hostname.strip("[]"), int(port_text), context)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._tls = secure
        self._timeout = timeout
        self._http: HttpPool | None = HttpPool(endpoint, size=pool_size, retries=retries, headers=headers)
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<RestMilvus: address={self._address!r}, tls={self._tls}>"

    def __enter__(self) -> RestMilvus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    # --- plumbing -----------------------------------------------------------------------------------

    @property
    def name(self) -> Any:
        return self._name

    @property
    def handler(self) -> str:
        return "HTTP"

    @property
    def address(self) -> str:
        return self._address

    @property
    def url(self) -> str:
        """``http(s)://host:port`` of the endpoint."""
        return f"{'https' if self._tls else 'http'}://{self._address}"

    def _send(self, method: str, path: str, body: Any = None, timeout: float | None = None,
              query: dict[str, Any] | None = None) -> Reply:
        http = self._http
        if http is None:
            raise NotConnectError("the client is closed")
        if query:
            path = f"{path}?{urlencode(query)}"
        data = body if isinstance(body, bytes) or body is None else dumps(body)
        return http.request(method, path, data, timeout if timeout is not None else self._timeout)

    def _status(self, method: str, path: str, body: Any, timeout: float | None, success: int,
                ok_message: str = "Success") -> Status:
        try:
            reply = self._send(method, path, body, timeout)
        except TransportError as exc:
            return _failure(exc)
        if reply.status == success:
            return Status(message=ok_message)
        return error_status(reply.status, reply.body)

    def _get(self, path: str, timeout: float | None, query: dict[str, Any] | None = None) -> tuple[Status, Any]:
        """GET a JSON document: ``(Status(), doc)`` on 200, else ``(error status, None)``."""
        try:
            reply = self._send("GET", path, None, timeout, query)
        except TransportError as exc:
            return _failure(exc), None
        if reply.status != 200:
            return error_status(reply.status, reply.body), None
        try:
            return Status(), _json(reply)
        except _Bad as exc:
            return Status(Status.UNEXPECTED_ERROR, str(exc)), None

    def _maybe_async(self, kwargs: dict[str, Any], fn: Callable[[], T]) -> T | CallFuture:
        if kwargs.get("_async", False) is not True:
            return fn()
        with self._lock:
            if self._executor is None:
                self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=4,
                                                                       thread_name_prefix="mishards-rest")
            executor = self._executor
        return CallFuture(executor.submit(fn), kwargs.get("_callback"))

    # --- connection -----------------------------------------------------------------------------------

    def connect(self, host: str | None = None, port: int | str | None = None, uri: str | None = None,
                timeout: float = 2) -> Status:
        """Check that the server answers (``GET /system/version``) within ``timeout`` seconds."""
        status, _ = self._cmd("version", timeout)
        if not status.OK():
            raise NotConnectError(f"Fail connecting to server on {self._address}: {status.message}")
        return Status(message="Connected")

    def connected(self) -> bool:
        return self._http is not None

    def disconnect(self) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections; further calls raise ``NotConnectError``."""
        with self._lock:
            http, self._http = getattr(self, "_http", None), None
            executor, self._executor = getattr(self, "_executor", None), None
        if executor is not None:
            executor.shutdown(wait=False)
        if http is not None:
            http.close()

    def client_version(self) -> str:
        from . import __version__

        return __version__

    def server_status(self, timeout: float | None = 30) -> tuple[Status, str | None]:
        return self._cmd("status", timeout)

    def server_version(self, timeout: float | None = 30) -> tuple[Status, str | None]:
        return self._cmd("version", timeout)

    def _cmd(self, cmd: str, timeout: float | None = 30) -> tuple[Status, str | None]:
        check(cmd=cmd)
        words = cmd.split()
        if words[0] == "get_config" and len(words) == 2 and "." in words[1]:
            parent, child = words[1].split(".", 1)
            return self._get_config(parent, child, timeout)
        if words[0] == "set_config" and len(words) >= 3 and "." in words[1]:
            parent, child = words[1].split(".", 1)
            return self.set_config(parent, child, " ".join(words[2:]), timeout)
        status, doc = self._get(f"/system/{_q(cmd)}", timeout)
        if not status.OK():
            return status, None
        if not isinstance(doc, dict) or "reply" not in doc:
            return Status(Status.UNEXPECTED_ERROR, "the reply has no 'reply'"), None
        return Status(message="Success!"), str(doc["reply"])

    def _get_config(self, parent_key: str, child_key: str, timeout: float | None) -> tuple[Status, str | None]:
        status, doc = self._get("/system/config", timeout)
        if not status.OK():
            return status, None
        section = doc.get(parent_key) if isinstance(doc, dict) else None
        value = section.get(child_key) if isinstance(section, dict) else None
        if value is None:
            return Status(Status.UNEXPECTED_ERROR, f"Config {parent_key}.{child_key} not supported"), None
        return Status(message="Success!"), str(value)

    def get_config(self, parent_key: str, child_key: str, timeout: float | None = 30) -> tuple[Status, str | None]:
        """One setting, as text (``GET /system/config``; ``child_key`` may hold dots)."""
        return self._get_config(parent_key, child_key, timeout)

    def set_config(self, parent_key: str, child_key: str, value: Any,
                   timeout: float | None = 30) -> tuple[Status, str | None]:
        """Change one setting (``PUT /system/config``); the value is sent as text, as pymilvus does."""
        try:
            reply = self._send("PUT", "/system/config", {parent_key: {child_key: str(value)}}, timeout)
        except TransportError as exc:
            return _failure(exc), None
        if reply.status != 200:
            return error_status(reply.status, reply.body), None
        try:
            doc = _json(reply)
        except _Bad as exc:
            return Status(Status.UNEXPECTED_ERROR, str(exc)), None
        return Status(message="Success!"), str(doc.get("message", "")) if isinstance(doc, dict) else ""

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
        body = {"collection_name": name, "dimension": dim, "index_file_size": index_file_size,
                "metric_type": MetricType(metric_type).name}
        return self._status("POST", "/collections", body, timeout, 201, "Create collection successfully!")

    def has_collection(self, collection_name: str, timeout: float | None = 30) -> tuple[Status, bool]:
        check(collection_name=collection_name)
        try:
            reply = self._send("GET", f"/collections/{_q(collection_name)}", None, timeout)
        except TransportError as exc:
            return _failure(exc), False
        if reply.status == 200:
            return Status(), True
        status = error_status(reply.status, reply.body)
        if reply.status == 404 and status.code == Status.COLLECTION_NOT_EXISTS:
            return Status(), False
        return status, False

    def get_collection_info(self, collection_name: str,
                            timeout: float | None = 30) -> tuple[Status, CollectionSchema | None]:
        check(collection_name=collection_name)
        status, doc = self._get(f"/collections/{_q(collection_name)}", timeout)
        if not status.OK():
            return status, None
        try:
            schema = CollectionSchema(str(doc["collection_name"]), int(doc["dimension"]),
                                      int(doc["index_file_size"]), metric_of(doc["metric_type"]))
        except (KeyError, TypeError, ValueError) as exc:
            return Status(Status.UNEXPECTED_ERROR, f"the collection reply lacks {exc}"), None
        return Status(message="Describe collection successfully!"), schema

    def count_entities(self, collection_name: str, timeout: float | None = 30) -> tuple[Status, int | None]:
        check(collection_name=collection_name)
        status, doc = self._get(f"/collections/{_q(collection_name)}", timeout)
        if not status.OK():
            return status, None
        try:
            return Status(message="Success!"), int(doc["count"])
        except (KeyError, TypeError, ValueError) as exc:
            return Status(Status.UNEXPECTED_ERROR, f"the collection reply lacks {exc}"), None

    def list_collections(self, timeout: float | None = 30) -> tuple[Status, list[str]]:
        status, doc = self._get("/collections", timeout, {"all_required": "true"})
        if not status.OK():
            return status, []
        try:
            names = [str(c["collection_name"]) for c in doc["collections"]]
        except (KeyError, TypeError) as exc:
            return Status(Status.UNEXPECTED_ERROR, f"the collection list lacks {exc}"), []
        return Status(message="Show collections successfully!"), names

    def get_collection_stats(self, collection_name: str,
                             timeout: float | None = 30) -> tuple[Status, dict[str, Any] | None]:
        check(collection_name=collection_name)
        status, doc = self._get(f"/collections/{_q(collection_name)}", timeout, {"info": "stat"})
        if not status.OK():
            return status, None
        return Status(), doc if isinstance(doc, dict) else {}

    def _task(self, task: str, spec: dict[str, Any], timeout: float | None) -> Status:
        return self._status("PUT", "/system/task", {task: spec}, timeout, 200)

    def load_collection(self, collection_name: str, partition_tags: list[str] | None = None,
                        timeout: float | None = None) -> Status:
        check(collection_name=collection_name, partition_tag_array=partition_tags)
        spec: dict[str, Any] = {"collection_name": collection_name}
        if partition_tags:
            spec["partition_tags"] = list(partition_tags)
        return self._task("load", spec, timeout)

    def release_collection(self, collection_name: str, partition_tags: list[str] | None = None,
                           timeout: float | None = None) -> Status:
        check(collection_name=collection_name, partition_tag_array=partition_tags)
        spec: dict[str, Any] = {"collection_name": collection_name}
        if partition_tags:
            spec["partition_tags"] = list(partition_tags)
        return self._task("release", spec, timeout)

    def reload_segments(self, collection_name: str, segment_ids: list[str], timeout: float | None = None) -> Status:
        raise NotImplementedError("Not implemented in http server")

    def drop_collection(self, collection_name: str, timeout: float | None = 30) -> Status:
        check(collection_name=collection_name)
        return self._status("DELETE", f"/collections/{_q(collection_name)}", None, timeout, 204,
                            "Delete collection successfully!")

    # --- entities -------------------------------------------------------------------------------------

    def insert(self, collection_name: str, records: Any, ids: Any = None, partition_tag: str | None = None,
               params: dict[str, Any] | None = None, timeout: float | None = None, **kwargs: Any) -> Any:
        """Insert vectors (a 2-D float32 array, uint8 for binary, or lists): ``(Status, ids)``."""
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
        check_params(params)
        body = insert_body(rec, id_array, partition_tag)
        path = f"/collections/{_q(collection_name)}/vectors"

        def run() -> tuple[Status, list[int]]:
            try:
                reply = self._send("POST", path, body, timeout)
            except TransportError as exc:
                return _failure(exc), []
            if reply.status != 201:
                return error_status(reply.status, reply.body), []
            try:
                got = [int(i) for i in _json(reply)["ids"]]
            except (_Bad, KeyError, TypeError, ValueError) as exc:
                return Status(Status.UNEXPECTED_ERROR, f"the insert reply is malformed: {exc}"), []
            return Status(message="Add vectors successfully!"), got

        return self._maybe_async(kwargs, run)

    def _get_vectors(self, collection_name: str, ids: Any, timeout: float | None,
                     partition_tag: str | None) -> tuple[Status, list[Any]]:
        """One entry per id: a float32 array, ``bytes`` (binary collection) or an empty array (not found)."""
        check(collection_name=collection_name, ids=ids)
        if partition_tag is not None:
            check(partition_tag=partition_tag)
        status, schema = self.get_collection_info(collection_name, timeout)
        if schema is None:
            return status, []
        binary = int(schema.metric_type) >= int(MetricType.HAMMING)
        query = {"ids": ",".join(str(int(i)) for i in ids)}
        if partition_tag:
            query["partition_tag"] = partition_tag
        status, doc = self._get(f"/collections/{_q(collection_name)}/vectors", timeout, query)
        if not status.OK():
            return status, []
        rows: list[Any] = []
        try:
            for entry in doc["vectors"]:
                values = entry["vector"]
                if binary and values:
                    rows.append(bytes(values))
                else:
                    rows.append(np.asarray(values, dtype=np.float32))
        except (KeyError, TypeError, ValueError) as exc:
            return Status(Status.UNEXPECTED_ERROR, f"the vectors reply is malformed: {exc}"), []
        return Status(message="Obtain vector successfully"), rows

    def get_entity_by_id(self, collection_name: str, ids: Any, timeout: float | None = None,
                         partition_tag: str | None = None) -> tuple[Status, list[Any]]:
        """Vectors by id: one entry per id (list of floats, ``bytes`` for binary, ``[]`` when not found)."""
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
        width = len(sample)
        out: npt.NDArray[Any] = np.zeros((len(rows), width), dtype=np.uint8 if isinstance(sample, bytes)
                                         else np.float32)
        for i, r in enumerate(rows):
            if len(r):
                out[i] = np.frombuffer(r, dtype=np.uint8) if isinstance(r, bytes) else r
        return status, out, found

    def list_id_in_segment(self, collection_name: str, segment_name: str,
                           timeout: float | None = None) -> tuple[Status, list[int]]:
        check(collection_name=collection_name)
        check(collection_name=segment_name)
        path = f"/collections/{_q(collection_name)}/segments/{_q(segment_name)}/ids"
        out: list[int] = []
        while True:
            status, doc = self._get(path, timeout, {"offset": len(out), "page_size": SEGMENT_PAGE})
            if not status.OK():
                return status, []
            try:
                page = [int(i) for i in doc["ids"]]
                total = int(doc["count"])
            except (KeyError, TypeError, ValueError) as exc:
                return Status(Status.UNEXPECTED_ERROR, f"the segment reply is malformed: {exc}"), []
            out += page
            if not page or len(out) >= total:
                return Status(), out

    def delete_entity_by_id(self, collection_name: str, id_array: Any, timeout: float | None = None,
                            partition_tag: str | None = None) -> Status:
        check(collection_name=collection_name, ids=id_array)
        if partition_tag is not None:
            check(partition_tag=partition_tag)
        spec: dict[str, Any] = {"ids": [str(int(i)) for i in id_array]}
        if partition_tag:
            spec["partition_tag"] = partition_tag
        return self._status("PUT", f"/collections/{_q(collection_name)}/vectors", {"delete": spec}, timeout, 200)

    # --- indexes --------------------------------------------------------------------------------------

    def create_index(self, collection_name: str, index_type: IndexType | int | None = None,
                     params: dict[str, Any] | None = None, timeout: float | None = None, **kwargs: Any) -> Any:
        kind = IndexType.FLAT if index_type is None else index_type
        check(collection_name=collection_name, index_type=kind)
        name = INDEX_NAMES.get(IndexType(kind))
        if name is None:
            raise ParamError(f"index_type {kind!r} has no name in the REST API")
        body = dumps({"index_type": name, "params": check_params(params or None)})
        path = f"/collections/{_q(collection_name)}/indexes"
        return self._maybe_async(kwargs, lambda: self._status("POST", path, body, timeout, 201,
                                                              "Build index successfully!"))

    def get_index_info(self, collection_name: str, timeout: float | None = 30) -> tuple[Status, IndexParam | None]:
        check(collection_name=collection_name)
        status, doc = self._get(f"/collections/{_q(collection_name)}/indexes", timeout)
        if not status.OK():
            return status, None
        try:
            params = doc.get("params") or {}
            return Status(message="Successfully"), IndexParam(collection_name, index_type_of(doc["index_type"]),
                                                              params if isinstance(params, dict) else str(params))
        except (KeyError, AttributeError, ValueError) as exc:
            return Status(Status.UNEXPECTED_ERROR, f"the index reply is malformed: {exc}"), None

    def drop_index(self, collection_name: str, timeout: float | None = 30) -> Status:
        check(collection_name=collection_name)
        return self._status("DELETE", f"/collections/{_q(collection_name)}/indexes", None, timeout, 204)

    # --- partitions -----------------------------------------------------------------------------------

    def create_partition(self, collection_name: str, partition_tag: str, timeout: float | None = 30) -> Status:
        check(collection_name=collection_name, partition_tag=partition_tag)
        return self._status("POST", f"/collections/{_q(collection_name)}/partitions",
                            {"partition_tag": partition_tag}, timeout, 201)

    def _tags(self, collection_name: str, timeout: float | None) -> tuple[Status, list[str]]:
        status, doc = self._get(f"/collections/{_q(collection_name)}/partitions", timeout, {"all_required": "true"})
        if not status.OK():
            return status, []
        try:
            return Status(), [str(p["partition_tag"]) for p in doc["partitions"]]
        except (KeyError, TypeError) as exc:
            return Status(Status.UNEXPECTED_ERROR, f"the partition list is malformed: {exc}"), []

    def has_partition(self, collection_name: str, partition_tag: str,
                      timeout: float | None = 30) -> tuple[Status, bool]:
        check(collection_name=collection_name, partition_tag=partition_tag)
        status, tags = self._tags(collection_name, timeout)
        return status, status.OK() and partition_tag in tags

    def list_partitions(self, collection_name: str,
                        timeout: float | None = 30) -> tuple[Status, list[PartitionParam]]:
        check(collection_name=collection_name)
        status, tags = self._tags(collection_name, timeout)
        return status, [PartitionParam(collection_name, t) for t in tags]

    def drop_partition(self, collection_name: str, partition_tag: str, timeout: float | None = 30) -> Status:
        check(collection_name=collection_name, partition_tag=partition_tag)
        return self._status("DELETE", f"/collections/{_q(collection_name)}/partitions",
                            {"partition_tag": partition_tag}, timeout, 204)

    # --- search ---------------------------------------------------------------------------------------

    def search(self, collection_name: str, top_k: int, query_records: Any, partition_tags: list[str] | None = None,
               params: dict[str, Any] | None = None, timeout: float | None = None, **kwargs: Any) -> Any:
        """``(Status, TopKQueryResult)``; ``result.ids`` / ``result.distances`` are ``(nq, k)`` arrays."""
        check(collection_name=collection_name, topk=top_k)
        rec = codec.to_records(query_records)
        if partition_tags is not None:
            check(partition_tag_array=partition_tags)
        body = _search_body(rec, top_k, partition_tags, check_params(params))
        return self._maybe_async(kwargs, lambda: self._search_call(collection_name, body, top_k, timeout))

    def search_in_segment(self, collection_name: str, file_ids: list[Any], query_records: Any, top_k: int,
                          params: dict[str, Any] | None = None, timeout: float | None = None,
                          **kwargs: Any) -> Any:
        """Search in the given segment files (numeric file ids) only."""
        check(collection_name=collection_name, topk=top_k, ids=file_ids)
        rec = codec.to_records(query_records)
        body = _search_body(rec, top_k, None, check_params(params), file_ids=file_ids)
        return self._maybe_async(kwargs, lambda: self._search_call(collection_name, body, top_k, timeout))

    def _search_call(self, collection_name: str, body: bytes, top_k: int,
                     timeout: float | None) -> tuple[Status, TopKQueryResult | list[Any] | None]:
        try:
            reply = self._send("PUT", f"/collections/{_q(collection_name)}/vectors", body, timeout)
        except TransportError as exc:
            return _failure(exc), None
        if reply.status != 200:
            return error_status(reply.status, reply.body), []
        try:
            ids, distances = decode_topk(_json(reply), top_k)
        except (_Bad, KeyError, TypeError, ValueError) as exc:
            return Status(Status.UNEXPECTED_ERROR, f"the search reply is malformed: {exc}"), []
        return Status(message="Search vectors successfully!"), TopKQueryResult(ids, distances, reply.body)

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
        return self._maybe_async(kwargs, lambda: self._task("flush", {"collection_names": names}, timeout))

    def compact(self, collection_name: str, timeout: float | None = None, **kwargs: Any) -> Any:
        check(collection_name=collection_name)
        return self._maybe_async(kwargs, lambda: self._task("compact", {"collection_name": collection_name},
                                                            timeout))
