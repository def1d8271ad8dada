"""SnapshotHolder.offer: a snapshot read by the caller is published like a refresh, never over a newer one."""

from __future__ import annotations

from pathlib import Path

from coordinator.catalog import Catalog
from coordinator.model import MetricType
from coordinator.snapshots import SnapshotHolder


def test_offer_publishes_a_fresh_snapshot_and_keeps_a_newer_one(tmp_path: Path) -> None:
    catalog = Catalog(f"sqlite:///{tmp_path / 'meta.sqlite'}")
    catalog.ensure_schema()
    try:
        holder = SnapshotHolder(catalog)
        before = holder.refresh()
        epoch = catalog.claim_writer("a")
        catalog.create_collection(epoch, "c", 4, MetricType.L2, 16)
        read = catalog.snapshot()
        assert holder.snapshot() is before and read.revision > before.revision
        assert holder.offer(read) is read and holder.snapshot() is read
        catalog.create_collection(epoch, "d", 4, MetricType.L2, 16)
        newer = holder.refresh()
        assert newer.revision > read.revision
        assert holder.offer(read) is newer and holder.snapshot() is newer  # an older one never replaces it
        assert newer.collection("d") is not None
    finally:
        catalog.close()
