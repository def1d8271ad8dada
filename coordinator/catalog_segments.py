"""The catalog's segment lifecycle: publishing flushed and merged segments, their index builds, and the
garbage of retired segments and dropped collections. Mixed into :class:`coordinator.catalog.Catalog`; every
change goes through the catalog's fenced write transaction (``_write``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from coordinator.catalog_schema import DROPPED, LIVE, collections, new_id, now_us, params_json, partitions, segments
from coordinator.catalog_snapshot import DeleteUpdate, NewSegment
from coordinator.errors import MetaFailed
from coordinator.model import IndexType, SegmentState


class SegmentLifecycle:
    """Segment and index-build writes, and garbage, over the catalog's database (``engine``; fenced writes
    through ``_write``)."""

    engine: Engine

    def _write(self, epoch: int) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def mark_to_index(self, epoch: int, segment_ids: Sequence[int]) -> None:
        """Queue RAW segments for an index build."""
        if not segment_ids:
            return
        with self._write(epoch) as conn:
            conn.execute(
                segments.update()
                .where(segments.c.id.in_(list(segment_ids)), segments.c.state == int(SegmentState.RAW))
                .values(state=int(SegmentState.TO_INDEX), index_error="", updated_us=now_us())
            )

    def commit_index(
        self, epoch: int, segment_id: int, index_type: IndexType, params: Mapping[str, Any], file: str, size: int
    ) -> bool:
        """Publish a built index file. Refused (False) when the segment is no longer waiting for it, or
        the collection's index changed while it was built."""
        text = params_json(params)
        with self._write(epoch) as conn:
            seg = conn.execute(
                sa.select(segments.c.collection_id, segments.c.state).where(segments.c.id == segment_id)
            ).first()
            if seg is None or seg.state != int(SegmentState.TO_INDEX):
                return False
            coll = conn.execute(
                sa.select(collections.c.index_type, collections.c.index_params, collections.c.state).where(
                    collections.c.id == seg.collection_id
                )
            ).one()
            if coll.state != LIVE or coll.index_type != int(index_type) or coll.index_params != text:
                return False
            conn.execute(
                segments.update()
                .where(segments.c.id == segment_id)
                .values(state=int(SegmentState.INDEX), index_type=int(index_type), index_file=file,
                        index_params=text, index_size=size, index_error="", updated_us=now_us())
            )
            return True

    def fail_index(self, epoch: int, segment_id: int, error: str) -> None:
        """A build failed: the segment stays searchable as RAW and remembers why."""
        with self._write(epoch) as conn:
            conn.execute(
                segments.update()
                .where(segments.c.id == segment_id, segments.c.state == int(SegmentState.TO_INDEX))
                .values(state=int(SegmentState.RAW), index_error=error[:4000], updated_us=now_us())
            )


    def commit_segments(
        self,
        epoch: int,
        collection_id: int,
        index_type: IndexType,
        added: Sequence[NewSegment] = (),
        removed: Iterable[int] = (),
        delete_updates: Sequence[DeleteUpdate] = (),
        flushed_lsn: int | None = None,
    ) -> list[int]:
        """Publish new segments, retire old ones and move delete logs, atomically.

        Returns the ids of the added segments in order.
        """
        ts = now_us()
        ids: list[int] = []
        with self._write(epoch) as conn:
            for seg in added:
                res = conn.execute(
                    segments.insert().values(
                        name=seg.name,
                        collection_id=collection_id,
                        partition_id=seg.partition_id,
                        state=int(seg.state),
                        row_count=seg.row_count,
                        deleted_count=seg.deleted_count,
                        data_size=seg.data_size,
                        index_type=int(index_type),
                        delete_version=seg.delete_version,
                        created_us=ts,
                        updated_us=ts,
                    )
                )
                ids.append(new_id(res))
            removed_ids = list(removed)
            if removed_ids:
                conn.execute(
                    segments.update()
                    .where(segments.c.id.in_(removed_ids))
                    .values(state=int(SegmentState.TO_DELETE), updated_us=ts)
                )
            for upd in delete_updates:
                conn.execute(
                    segments.update()
                    .where(segments.c.id == upd.segment_id)
                    .values(deleted_count=upd.deleted_count, delete_version=upd.delete_version, updated_us=ts)
                )
            if flushed_lsn is not None:
                conn.execute(
                    collections.update()
                    .where(collections.c.id == collection_id, collections.c.flushed_lsn < flushed_lsn)
                    .values(flushed_lsn=flushed_lsn)
                )
        return ids

    def set_flushed_lsn(self, epoch: int, collection_ids: Iterable[int], lsn: int) -> None:
        ids = list(collection_ids)
        if not ids:
            return
        with self._write(epoch) as conn:
            conn.execute(
                collections.update()
                .where(collections.c.id.in_(ids), collections.c.flushed_lsn < lsn)
                .values(flushed_lsn=lsn)
            )

    # -- garbage -------------------------------------------------------------------------------

    def garbage(self, older_than_us: int) -> tuple[list[tuple[int, int, str]], list[int]]:
        """Retired segments ``(id, collection_id, name)`` and dropped collection ids past the grace period."""
        try:
            with self.engine.connect() as conn:
                seg_rows = conn.execute(
                    sa.select(segments.c.id, segments.c.collection_id, segments.c.name).where(
                        segments.c.state == int(SegmentState.TO_DELETE), segments.c.updated_us < older_than_us
                    )
                ).all()
                coll_rows = conn.execute(
                    sa.select(collections.c.id).where(collections.c.state == DROPPED)
                ).all()
        except SQLAlchemyError as exc:
            raise MetaFailed(f"Catalog unavailable: {exc}") from exc
        return [(r.id, r.collection_id, r.name) for r in seg_rows], [r.id for r in coll_rows]

    def purge(self, epoch: int, segment_ids: Sequence[int], collection_ids: Sequence[int]) -> list[int]:
        """Forget retired segments, and dropped collections left with no segment; returns the latter."""
        done: list[int] = []
        with self._write(epoch) as conn:
            if segment_ids:
                conn.execute(segments.delete().where(segments.c.id.in_(list(segment_ids))))
            if collection_ids:
                remaining = conn.execute(
                    sa.select(segments.c.collection_id).where(segments.c.collection_id.in_(list(collection_ids)))
                ).all()
                busy = {r.collection_id for r in remaining}
                done = [c for c in collection_ids if c not in busy]
                if done:
                    conn.execute(partitions.delete().where(partitions.c.collection_id.in_(done)))
                    conn.execute(collections.delete().where(collections.c.id.in_(done)))
        return done
