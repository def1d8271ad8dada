"""Answers to the metadata RPCs computed from a catalog snapshot (pure), shared by the node and the proxy,
so that the proxy can keep answering them from its cached catalog while the writer is down."""

from __future__ import annotations

import json
from typing import Any

from coordinator import validation
from coordinator.catalog import CatalogSnapshot
from coordinator.errors import CollectionNotFound
from coordinator.model import INDEX_NAMES, Collection


def collection(snap: CatalogSnapshot, name: str) -> Collection:
    validation.collection_name(name)
    coll = snap.collection(name)
    if coll is None:
        raise CollectionNotFound(name)
    return coll


def row_count(snap: CatalogSnapshot, coll: Collection) -> int:
    """Live rows of flushed segments (what CountCollection answers)."""
    return sum(s.live_count for s in snap.segments_of(coll.id))


def collection_info(snap: CatalogSnapshot, coll: Collection) -> str:
    """ShowCollectionInfo's JSON: partitions (``_default`` first), their segments (``null`` when none), row counts;
    keys sorted, compact, as Milvus 1.1 writes it."""
    segs = snap.segments_of(coll.id)
    parts: list[dict[str, Any]] = []
    for part in snap.partitions_of(coll.id):
        mine = [s for s in segs if s.partition_id == part.id]
        seg_info = [
            {
                "data_size": s.data_size + s.index_size,
                "index_name": INDEX_NAMES.get(s.index_type, "Unknow"),
                "name": s.name,
                "row_count": s.live_count,
            }
            for s in mine
        ]
        parts.append({"row_count": sum(s.live_count for s in mine), "segments": seg_info or None, "tag": part.tag})
    info = {"partitions": parts, "row_count": sum(s.live_count for s in segs)}
    return json.dumps(info, separators=(",", ":"), sort_keys=True)
