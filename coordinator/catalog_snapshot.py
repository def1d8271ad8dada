"""What the catalog holds as immutable values: a whole snapshot, and the changes a writer commits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from coordinator.catalog_schema import (
    LIVE,
    cluster_state,
    collection_of,
    collections,
    partitions,
    segment_of,
    segments,
)
from coordinator.model import DEFAULT_PARTITION, Collection, Partition, Segment, SegmentState


@dataclass(frozen=True, slots=True)
class NewSegment:
    """A segment whose files are already durable, to be published by a catalog commit."""

    name: str
    partition_id: int
    row_count: int
    deleted_count: int
    data_size: int
    delete_version: int
    state: SegmentState = SegmentState.RAW


@dataclass(frozen=True, slots=True)
class DeleteUpdate:
    """A new delete-log version of an existing segment."""

    segment_id: int
    deleted_count: int
    delete_version: int


@dataclass(frozen=True)
class CatalogSnapshot:
    """An immutable view of the whole catalog at one revision (dropped objects excluded)."""

    revision: int
    collections: Mapping[str, Collection]
    collections_by_id: Mapping[int, Collection]
    partitions: Mapping[int, tuple[Partition, ...]]  # collection id -> partitions, _default first
    segments: Mapping[int, tuple[Segment, ...]]  # collection id -> current segments (not TO_DELETE)
    segments_by_id: Mapping[int, Segment] = field(default_factory=dict)  # every row, retired ones too

    def collection(self, name: str) -> Collection | None:
        return self.collections.get(name)

    def partitions_of(self, collection_id: int) -> tuple[Partition, ...]:
        return self.partitions.get(collection_id, ())

    def partition(self, collection_id: int, tag: str) -> Partition | None:
        for p in self.partitions.get(collection_id, ()):
            if p.tag == tag:
                return p
        return None

    def segments_of(self, collection_id: int) -> tuple[Segment, ...]:
        return self.segments.get(collection_id, ())


def load_snapshot(conn: Connection) -> CatalogSnapshot:
    """Read the whole catalog in one transaction (``conn`` is open) into a snapshot."""
    revision = int(conn.execute(sa.select(cluster_state.c.revision)).scalar_one())
    coll_rows = conn.execute(
        sa.select(collections).where(collections.c.state == LIVE).order_by(collections.c.id)
    ).all()
    part_rows = conn.execute(
        sa.select(partitions).where(partitions.c.state == LIVE).order_by(partitions.c.id)
    ).all()
    seg_rows = conn.execute(sa.select(segments).order_by(segments.c.id)).all()
    by_id = {row.id: collection_of(row) for row in coll_rows}
    parts: dict[int, list[Partition]] = {}
    for row in part_rows:
        if row.collection_id in by_id:
            parts.setdefault(row.collection_id, []).append(Partition(row.id, row.collection_id, row.tag))
    for plist in parts.values():
        plist.sort(key=lambda p: (p.tag != DEFAULT_PARTITION, p.id))
    segs: dict[int, list[Segment]] = {}
    seg_by_id: dict[int, Segment] = {}
    for row in seg_rows:
        seg = segment_of(row)
        seg_by_id[seg.id] = seg
        if row.collection_id in by_id and seg.state is not SegmentState.TO_DELETE:
            segs.setdefault(row.collection_id, []).append(seg)
    return CatalogSnapshot(
        revision=revision,
        collections=MappingProxyType({c.name: c for c in by_id.values()}),
        collections_by_id=MappingProxyType(by_id),
        partitions=MappingProxyType({k: tuple(v) for k, v in parts.items()}),
        segments=MappingProxyType({k: tuple(v) for k, v in segs.items()}),
        segments_by_id=MappingProxyType(seg_by_id),
    )
