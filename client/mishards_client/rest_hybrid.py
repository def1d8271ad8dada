"""The hybrid methods over REST (mixed into :class:`mishards_client.rest.RestMilvus`): Mishards' routes under
``/hybrid/collections`` (beyond Milvus 1.1's web API), with the same arguments, checks and return values as the
gRPC client's :class:`~mishards_client.hybrid_methods.HybridMethods`."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from . import codec
from .checks import check
from .exceptions import ParamError
from .hybrid import FLOAT_TYPES, DataType, Field, HybridSchema, split_dsl
from .rest_base import Malformed, RestBase, failure_status, quote_segment, reply_json
from .rest_json import decode_topk, dumps, error_status, vectors_json, with_raw
from .rest_pool import TransportError
from .types import Status, TopKQueryResult

__all__ = ["RestHybridMethods"]

H = "/hybrid/collections"
MAX_IDS = 1000  # entities the server returns per request


def _h(collection_name: str) -> str:
    return f"{H}/{quote_segment(collection_name)}"


def field_json(f: Field) -> dict[str, Any]:
    out: dict[str, Any] = {"name": f.name, "type": f.type.name}
    if f.type == DataType.VECTOR:
        out["dimension"] = f.dimension
    if f.params:
        out["params"] = dict(f.params)
    return out


def schema_of(doc: Any) -> HybridSchema:
    """A described collection (``{"collection_name", "fields": [{"name", "type", "dimension", "params"}]}``)."""
    fields = []
    for f in doc["fields"]:
        params = f.get("params")
        fields.append(Field(str(f["name"]), DataType[str(f["type"])], int(f.get("dimension") or 0),
                            params if isinstance(params, dict) else {}))
    return HybridSchema(str(doc["collection_name"]), tuple(fields))


def entity_of(schema: HybridSchema, entity_id: int, values: Any) -> dict[str, Any] | None:
    """An entity as the gRPC client reads it: ``{"id", field: value, ..., vector field: floats or bytes}``."""
    if values is None:
        return None
    out: dict[str, Any] = {"id": entity_id}
    for f in schema.scalars:
        value = values[f.name]
        if f.type == DataType.FLOAT:
            out[f.name] = float(np.float32(value))
        elif f.type in FLOAT_TYPES:
            out[f.name] = float(value)
        elif f.type == DataType.BOOL:
            out[f.name] = bool(value)
        else:
            out[f.name] = int(value)
    vector = values[schema.vector.name]
    out[schema.vector.name] = bytes(vector) if schema.is_binary else np.asarray(vector, dtype=np.float32).tolist()
    return out


def dsl_topk(dsl: Any) -> int:
    """The ``topk`` of the DSL's vector clause (0 when absent)."""
    if isinstance(dsl, Mapping):
        if set(dsl) == {"vector"} and isinstance(dsl["vector"], Mapping):
            for spec in dsl["vector"].values():
                if isinstance(spec, Mapping) and isinstance(spec.get("topk"), int):
                    return int(spec["topk"])
        return max((dsl_topk(v) for v in dsl.values()), default=0)
    if isinstance(dsl, list):
        return max((dsl_topk(v) for v in dsl), default=0)
    return 0


def _plain(value: Any) -> Any:
    """numpy values of a DSL or a column as JSON values."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


class RestHybridMethods(RestBase):
    """Hybrid collections over REST: create / describe / has / count / list / drop, insert entities, filtered
    search with the JSON DSL, entities by id, deletes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._hybrid_schemas: dict[str, HybridSchema] = {}
        self._hybrid_lock = threading.Lock()

    def _remember(self, collection_name: str, schema: HybridSchema | None) -> None:
        with self._hybrid_lock:
            if schema is None:
                self._hybrid_schemas.pop(collection_name, None)
            else:
                self._hybrid_schemas[collection_name] = schema

    def create_hybrid_collection(self, collection_name: str, fields: Sequence[Field],
                                 timeout: float | None = 30) -> Status:
        check(collection_name=collection_name)
        if not fields or not all(isinstance(f, Field) for f in fields):
            raise ParamError("fields must be a non-empty list of hybrid.Field (scalar_field / vector_field)")
        self._remember(collection_name, None)
        body = {"collection_name": collection_name, "fields": [_plain(field_json(f)) for f in fields]}
        return self._status("POST", H, body, timeout, 201)

    def _describe(self, collection_name: str, timeout: float | None) -> tuple[Status, Any]:
        check(collection_name=collection_name)
        return self._get(_h(collection_name), timeout)

    def describe_hybrid_collection(self, collection_name: str,
                                   timeout: float | None = 30) -> tuple[Status, HybridSchema | None]:
        status, doc = self._describe(collection_name, timeout)
        if not status.OK():
            return status, None
        try:
            schema = schema_of(doc)
        except (KeyError, TypeError, ValueError) as exc:
            return Status(Status.UNEXPECTED_ERROR, f"the collection description is malformed: {exc}"), None
        self._remember(collection_name, schema)
        return Status(), schema

    def has_hybrid_collection(self, collection_name: str, timeout: float | None = 30) -> tuple[Status, bool]:
        status, _ = self._describe(collection_name, timeout)
        if status.OK():
            return Status(), True
        if status.code == Status.COLLECTION_NOT_EXISTS:
            return Status(), False
        return status, False

    def count_hybrid_collection(self, collection_name: str, timeout: float | None = 30) -> tuple[Status, int | None]:
        status, doc = self._describe(collection_name, timeout)
        if not status.OK():
            return status, None
        try:
            return Status(), int(doc["count"])
        except (KeyError, TypeError, ValueError) as exc:
            return Status(Status.UNEXPECTED_ERROR, f"the collection description lacks {exc}"), None

    def list_hybrid_collections(self, timeout: float | None = 30) -> tuple[Status, list[str]]:
        status, doc = self._get(H, timeout, {"all_required": "true"})
        if not status.OK():
            return status, []
        try:
            return Status(), [str(c["collection_name"]) for c in doc["collections"]]
        except (KeyError, TypeError) as exc:
            return Status(Status.UNEXPECTED_ERROR, f"the collection list is malformed: {exc}"), []

    def drop_hybrid_collection(self, collection_name: str, timeout: float | None = 30) -> Status:
        check(collection_name=collection_name)
        self._remember(collection_name, None)
        return self._status("DELETE", _h(collection_name), None, timeout, 204)

    def _schema(self, collection_name: str, timeout: float | None) -> tuple[Status, HybridSchema | None]:
        with self._hybrid_lock:
            known = self._hybrid_schemas.get(collection_name)
        if known is not None:
            return Status(), known
        return self.describe_hybrid_collection(collection_name, timeout)

    def insert_entities(self, collection_name: str, entities: Mapping[str, Any], vectors: Any, ids: Any = None,
                        partition_tag: str | None = None, timeout: float | None = None) -> tuple[Status, list[int]]:
        """Insert rows: ``entities`` maps every scalar field to its column, ``vectors`` a 2-D array or lists."""
        check(collection_name=collection_name)
        if partition_tag is not None:
            check(partition_tag=partition_tag)
        if not isinstance(entities, Mapping):
            raise ParamError("entities must map each scalar field to its column")
        records = codec.to_records(vectors)
        id_array: npt.NDArray[np.int64] | None = None
        if ids is not None:
            check(ids=ids)
            id_array = np.asarray(ids, dtype=np.int64)
            if id_array.shape[0] != records.rows:
                raise ParamError("length of vectors do not match that of ids")
        status, schema = self._schema(collection_name, timeout)
        if schema is None:
            return status, []
        columns = {str(name): _plain(np.asarray(values)) for name, values in entities.items()}
        doc: dict[str, Any] = {}
        if id_array is not None:
            doc["ids"] = [str(i) for i in id_array.tolist()]
        if partition_tag:
            doc["partition_tag"] = partition_tag
        body = with_raw(doc, "columns", with_raw(columns, schema.vector.name, vectors_json(records)))
        try:
            reply = self._send("POST", f"{_h(collection_name)}/entities", body, timeout)
        except TransportError as exc:
            return failure_status(exc), []
        if reply.status != 201:
            return error_status(reply.status, reply.body), []
        try:
            got = [int(i) for i in reply_json(reply)["ids"]]
        except (Malformed, KeyError, TypeError, ValueError) as exc:
            return Status(Status.UNEXPECTED_ERROR, f"the insert reply is malformed: {exc}"), []
        return Status(message="Add entities successfully!"), got

    def hybrid_search(self, collection_name: str, dsl: Mapping[str, Any], partition_tags: list[str] | None = None,
                      timeout: float | None = None) -> tuple[Status, TopKQueryResult | None]:
        """Filtered search with a JSON DSL document (``hybrid.bool_query`` & co.), shaped like ``search``'s."""
        check(collection_name=collection_name)
        if partition_tags is not None:
            check(partition_tag_array=partition_tags)
        split_dsl(dsl)  # the gRPC client's checks of the document
        doc: dict[str, Any] = {"dsl": _plain(dsl)}
        if partition_tags:
            doc["partition_tags"] = list(partition_tags)
        try:
            reply = self._send("POST", f"{_h(collection_name)}/search", dumps(doc), timeout)
        except TransportError as exc:
            return failure_status(exc), None
        if reply.status != 200:
            return error_status(reply.status, reply.body), None
        try:
            ids, distances = decode_topk(reply_json(reply), dsl_topk(dsl))
        except (Malformed, KeyError, TypeError, ValueError) as exc:
            return Status(Status.UNEXPECTED_ERROR, f"the search reply is malformed: {exc}"), None
        return Status(message="Search vectors successfully!"), TopKQueryResult(ids, distances, reply.body)

    def get_entities_by_id(self, collection_name: str, ids: Sequence[int],
                           timeout: float | None = None) -> tuple[Status, list[dict[str, Any] | None]]:
        """Entities by id: one ``{"id", field: value, ..., vector field: vector}`` per id, ``None`` if not found."""
        check(collection_name=collection_name, ids=list(ids))
        status, schema = self._schema(collection_name, timeout)
        if schema is None:
            return status, []
        wanted = [int(i) for i in ids]
        out: list[dict[str, Any] | None] = []
        for start in range(0, len(wanted), MAX_IDS):
            chunk = wanted[start:start + MAX_IDS]
            status, doc = self._get(f"{_h(collection_name)}/entities", timeout,
                                    {"ids": ",".join(str(i) for i in chunk)})
            if not status.OK():
                return status, []
            try:
                out += [entity_of(schema, i, e["entity"]) for i, e in zip(chunk, doc["entities"], strict=True)]
            except (KeyError, TypeError, ValueError) as exc:
                return Status(Status.UNEXPECTED_ERROR, f"the entities reply is malformed: {exc}"), []
        return Status(), out

    def delete_entities_by_id(self, collection_name: str, ids: Sequence[int], timeout: float | None = None) -> Status:
        check(collection_name=collection_name, ids=list(ids))
        return self._status("DELETE", f"{_h(collection_name)}/entities", {"ids": [str(int(i)) for i in ids]},
                            timeout, 200)
