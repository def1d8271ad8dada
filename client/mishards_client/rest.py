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

import copy
from typing import Any

import numpy as np
import numpy.typing as npt

from . import codec
from .checks import check, check_params
from .exceptions import ParamError
from .rest_base import Malformed, failure_status, quote_segment, reply_json
from .rest_hybrid import RestHybridMethods
from .rest_json import INDEX_NAMES, decode_topk, dumps, error_status, index_type_of, insert_body, metric_of
from .rest_json import search_body as _search_body
from .rest_pool import TransportError
from .types import CollectionSchema, IndexParam, IndexType, MetricType, PartitionParam, Status, TopKQueryResult

__all__ = ["RestMilvus"]

SEGMENT_PAGE = 100_000


def _c(collection_name: str) -> str:
    """The path of a collection."""
    return f"/collections/{quote_segment(collection_name)}"


class RestMilvus(RestHybridMethods):
    """A client of one Milvus 1.1 REST endpoint: ``RestMilvus(host, port)`` or ``RestMilvus(uri="http://h:p")``.

    Thread-safe: share one instance. Keyword-only extras as :class:`Milvus`: ``token``, ``tls``/``tls_ca``/
    ``tls_cert``/``tls_key`` (PEM bytes or file paths), ``timeout`` (default seconds a call may take,
    connection attempts included), ``retries`` (further connection attempts, with backoff, when the endpoint
    refuses), and ``pool_size`` (idle keep-alive connections kept, default 8).
    """

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
            reply = self._send("GET", _c(collection_name), None, timeout)
        except TransportError as exc:
            return failure_status(exc), False
        if reply.status == 200:
            return Status(), True
        status = error_status(reply.status, reply.body)
        if reply.status == 404 and status.code == Status.COLLECTION_NOT_EXISTS:
            return Status(), False
        return status, False

    def get_collection_info(self, collection_name: str,
                            timeout: float | None = 30) -> tuple[Status, CollectionSchema | None]:
        check(collection_name=collection_name)
        status, doc = self._get(_c(collection_name), timeout)
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
        status, doc = self._get(_c(collection_name), timeout)
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
        status, doc = self._get(_c(collection_name), timeout, {"info": "stat"})
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
        return self._status("DELETE", _c(collection_name), None, timeout, 204,
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
        path = f"{_c(collection_name)}/vectors"

        def run() -> tuple[Status, list[int]]:
            try:
                reply = self._send("POST", path, body, timeout)
            except TransportError as exc:
                return failure_status(exc), []
            if reply.status != 201:
                return error_status(reply.status, reply.body), []
            try:
                got = [int(i) for i in reply_json(reply)["ids"]]
            except (Malformed, KeyError, TypeError, ValueError) as exc:
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
        status, doc = self._get(f"{_c(collection_name)}/vectors", timeout, query)
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
        path = f"{_c(collection_name)}/segments/{quote_segment(segment_name)}/ids"
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
        return self._status("PUT", f"{_c(collection_name)}/vectors", {"delete": spec}, timeout, 200)

    # --- indexes --------------------------------------------------------------------------------------

    def create_index(self, collection_name: str, index_type: IndexType | int | None = None,
                     params: dict[str, Any] | None = None, timeout: float | None = None, **kwargs: Any) -> Any:
        kind = IndexType.FLAT if index_type is None else index_type
        check(collection_name=collection_name, index_type=kind)
        name = INDEX_NAMES.get(IndexType(kind))
        if name is None:
            raise ParamError(f"index_type {kind!r} has no name in the REST API")
        body = dumps({"index_type": name, "params": check_params(params or None)})
        path = f"{_c(collection_name)}/indexes"
        return self._maybe_async(kwargs, lambda: self._status("POST", path, body, timeout, 201,
                                                              "Build index successfully!"))

    def get_index_info(self, collection_name: str, timeout: float | None = 30) -> tuple[Status, IndexParam | None]:
        check(collection_name=collection_name)
        status, doc = self._get(f"{_c(collection_name)}/indexes", timeout)
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
        return self._status("DELETE", f"{_c(collection_name)}/indexes", None, timeout, 204)

    # --- partitions -----------------------------------------------------------------------------------

    def create_partition(self, collection_name: str, partition_tag: str, timeout: float | None = 30) -> Status:
        check(collection_name=collection_name, partition_tag=partition_tag)
        return self._status("POST", f"{_c(collection_name)}/partitions",
                            {"partition_tag": partition_tag}, timeout, 201)

    def _tags(self, collection_name: str, timeout: float | None) -> tuple[Status, list[str]]:
        status, doc = self._get(f"{_c(collection_name)}/partitions", timeout, {"all_required": "true"})
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
        return self._status("DELETE", f"{_c(collection_name)}/partitions",
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
            reply = self._send("PUT", f"{_c(collection_name)}/vectors", body, timeout)
        except TransportError as exc:
            return failure_status(exc), None
        if reply.status != 200:
            return error_status(reply.status, reply.body), []
        try:
            ids, distances = decode_topk(reply_json(reply), top_k)
        except (Malformed, KeyError, TypeError, ValueError) as exc:
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
