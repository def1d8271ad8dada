"""Answers of the hybrid metadata RPCs from a catalog snapshot (pure), for the node and the proxy alike.

A hybrid collection is an ordinary collection whose catalog row carries a schema (``Collection.hybrid_schema``):
it shares the name space of plain collections (``CreateHybridCollection`` of a taken name is refused as
``CreateCollection`` is), and the vector-only RPCs serve it unchanged. The hybrid RPCs address hybrid
collections only: ``HasHybridCollection`` of a plain collection is false, ``ShowHybridCollections`` lists
hybrid collections only, and the others answer a plain collection's name ``COLLECTION_NOT_EXISTS`` with a
reason saying why.
"""

from __future__ import annotations

from typing import Any

from coordinator import metadata, validation
from coordinator.catalog import CatalogSnapshot
from coordinator.errors import ErrorCode, IllegalArgument, MilvusError
from coordinator.hybrid.schema import HybridSchema, collection_schema, schema_to_json, schema_to_mapping
from coordinator.model import Collection

# The largest schema the catalog keeps (its JSON, UTF-8): 64 fields with long names and parameters fit easily.
MAX_SCHEMA_BYTES = 64 * 1024


def catalog_text(schema: HybridSchema) -> str:
    """The catalog form of a new collection's schema; a schema too large to keep is ILLEGAL_ARGUMENT."""
    text = schema_to_json(schema)
    size = len(text.encode("utf-8"))
    if size > MAX_SCHEMA_BYTES:
        raise IllegalArgument(f"The schema of collection {schema.collection_name} takes {size} bytes (field names "
                              f"and extra_params); at most {MAX_SCHEMA_BYTES} are allowed.")
    return text


class NotHybrid(MilvusError):
    code = ErrorCode.COLLECTION_NOT_EXISTS

    def __init__(self, name: str) -> None:
        super().__init__(f"Collection {name} is not a hybrid collection: it has no scalar fields. Use the "
                         "collection RPCs (DescribeCollection, Insert, ...) for it.")


def hybrid_collection(snap: CatalogSnapshot, name: str) -> tuple[Collection, HybridSchema]:
    """The named hybrid collection and its schema: the name checked as every RPC does, then COLLECTION_NOT_EXISTS
    when there is no such collection or it is a plain one."""
    coll = metadata.collection(snap, name)
    schema = collection_schema(coll)
    if schema is None:
        raise NotHybrid(name)
    return coll, schema


def has_hybrid_collection(snap: CatalogSnapshot, name: str) -> bool:
    validation.collection_name(name)
    coll = snap.collection(name)
    return coll is not None and coll.is_hybrid


def describe(coll: Collection, schema: HybridSchema) -> Any:
    """``DescribeHybridCollection``'s ``Mapping`` without its status: every field in declared order with its type,
    the vector field with its dimension, every field's ``extra_params`` as given."""
    return schema_to_mapping(schema, collection_id=coll.id)


def hybrid_mappings(snap: CatalogSnapshot) -> list[Any]:
    """``ShowHybridCollections``' mappings: every hybrid collection, by name."""
    out = []
    for name in sorted(snap.collections):
        coll = snap.collections[name]
        schema = collection_schema(coll)
        if schema is not None:
            out.append(describe(coll, schema))
    return out
