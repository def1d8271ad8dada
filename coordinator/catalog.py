"""The catalog: collections, partitions and segments in one SQL database (SQLite or MySQL/MariaDB).

Every committed change bumps a single catalog *revision*, inside the same transaction that makes the
change, and only if the writer's *epoch* is still the current one. The check is a conditional UPDATE
of the one ``cluster_state`` row, so a deposed writer is refused by the database itself (the row lock
on MySQL, the write lock on SQLite), not by a check that can race.

Readers work from an immutable :class:`CatalogSnapshot`, reloaded when the revision moves.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from coordinator.catalog_schema import (
    DROPPED,
    LIVE,
    REVISION_SQL,
    add_missing_columns,
    cluster_state,
    collections,
    make_engine,
    metadata,
    new_id,
    now_us,
    params_json,
    partitions,
    segments,
)
from coordinator.catalog_segments import SegmentLifecycle
from coordinator.catalog_snapshot import CatalogSnapshot, DeleteUpdate, NewSegment, load_snapshot
from coordinator.catalog_writer_role import WriterLease, WriterRole
from coordinator.errors import MetaFailed
from coordinator.model import DEFAULT_PARTITION, IdMode, IndexType, MetricType, SegmentState

__all__ = ["Catalog", "CatalogSnapshot", "DeleteUpdate", "Fenced", "NewSegment", "WriterLease", "now_us",
           "params_json"]

log = logging.getLogger(__name__)


class Fenced(MetaFailed):
    """This process is no longer the writer: its epoch is not the catalog's current one."""


class Catalog(WriterRole, SegmentLifecycle):
    """Reads and (for the writer) changes the catalog. Thread-safe; holds no cache of its own."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.engine = make_engine(uri)
        # SQLite: the revision (asked before every strongly consistent search) is read on one kept connection,
        # ~15x cheaper than a pooled checkout; a server database pays its round trip either way.
        self._probe: Any = None
        self._probe_lock = threading.Lock()
        self._keep_probe = self.engine.dialect.name == "sqlite"

    def close(self) -> None:
        with self._probe_lock:
            self._drop_probe()
        self.engine.dispose()

    def _drop_probe(self) -> None:
        if self._probe is not None:
            with contextlib.suppress(Exception):  # already broken: nothing more to release
                self._probe.close()
            self._probe = None

    # -- schema and writer epoch -------------------------------------------------------------

    def ensure_schema(self, attempts: int = 5) -> None:
        """Create the tables and the state row if missing. Nodes of a new cluster may start at once: one
        that loses a race to create a table (``already exists``) looks again instead of failing."""
        for attempt in range(1, attempts + 1):
            try:
                metadata.create_all(self.engine, checkfirst=True)
                with self.engine.begin() as conn:
                    added = add_missing_columns(conn)
                if added:
                    log.info("catalog at %s upgraded: added column(s) %s", self._safe_uri(), ", ".join(added))
                with self.engine.begin() as conn:
                    if conn.execute(sa.select(cluster_state.c.id)).first() is None:
                        conn.execute(
                            cluster_state.insert().values(id=1, revision=0, writer_epoch=0, writer_id="")
                        )
                return
            except IntegrityError:
                return  # another process created the state row between our check and insert
            except SQLAlchemyError as exc:
                if attempt == attempts:
                    raise MetaFailed(f"Cannot prepare the catalog at {self._safe_uri()}: {exc}") from exc
                log.info("preparing the catalog raced with another process (%s); looking again", exc)
                time.sleep(0.05 * attempt)  # a short back-off before the next attempt (startup only)

    def revision(self) -> int:
        """The catalog revision (moves with every commit)."""
        if self._keep_probe:
            return self._probe_revision()
        try:
            with self.engine.connect() as conn:
                return int(conn.exec_driver_sql(REVISION_SQL).scalar_one())
        except SQLAlchemyError as exc:
            raise MetaFailed(f"Catalog unavailable: {exc}") from exc

    def _probe_revision(self) -> int:
        with self._probe_lock:
            try:
                if self._probe is None:
                    self._probe = self.engine.raw_connection()
                cursor = self._probe.cursor()
                try:
                    cursor.execute(REVISION_SQL)
                    row = cursor.fetchone()
                finally:
                    cursor.close()
                self._probe.rollback()  # end the read: the next one must see newer commits
            except Exception as exc:
                self._drop_probe()
                raise MetaFailed(f"Catalog unavailable: {exc}") from exc
        if row is None:
            raise MetaFailed("Catalog has no state row")
        return int(row[0])

    @contextmanager
    def _write(self, epoch: int) -> Iterator[Connection]:
        """One fenced write transaction: refused unless ``epoch`` is still the writer's epoch."""
        try:
            with self.engine.begin() as conn:
                res = conn.execute(
                    cluster_state.update()
                    .where(cluster_state.c.id == 1, cluster_state.c.writer_epoch == epoch)
                    .values(revision=cluster_state.c.revision + 1)
                )
                if res.rowcount != 1:
                    raise Fenced(f"Writer epoch {epoch} is no longer current; this node may not write")
                yield conn
        except MetaFailed:
            raise
        except SQLAlchemyError as exc:
            raise MetaFailed(f"Catalog transaction failed: {exc}") from exc

    # -- snapshot ------------------------------------------------------------------------------

    def snapshot(self) -> CatalogSnapshot:
        try:
            with self.engine.connect() as conn:
                return load_snapshot(conn)
        except SQLAlchemyError as exc:
            raise MetaFailed(f"Catalog unavailable: {exc}") from exc

    # -- writer operations ----------------------------------------------------------------------

    def create_collection(
        self, epoch: int, name: str, dimension: int, metric: MetricType, index_file_size_mb: int,
        hybrid_schema: str = "",
    ) -> int:
        """Create a collection and its ``_default`` partition; returns the new collection id. ``hybrid_schema``:
        the JSON of a hybrid collection's schema ('' for a plain collection).

        Raises ValueError when a live collection of that name exists (checked inside the fenced
        transaction, so the single writer cannot race itself).
        """
        with self._write(epoch) as conn:
            exists = conn.execute(
                sa.select(collections.c.id).where(collections.c.name == name, collections.c.state == LIVE)
            ).first()
            if exists is not None:
                raise ValueError("exists")
            ts = now_us()
            res = conn.execute(
                collections.insert().values(
                    name=name,
                    state=LIVE,
                    dimension=dimension,
                    metric_type=int(metric),
                    index_file_size_mb=index_file_size_mb,
                    index_type=int(IndexType.FLAT),
                    index_params="{}",
                    id_mode=int(IdMode.UNSET),
                    created_us=ts,
                    flushed_lsn=0,
                    hybrid_schema=hybrid_schema,
                )
            )
            cid = new_id(res)
            conn.execute(
                partitions.insert().values(collection_id=cid, tag=DEFAULT_PARTITION, state=LIVE, created_us=ts)
            )
            return cid

    def drop_collection(self, epoch: int, collection_id: int) -> None:
        with self._write(epoch) as conn:
            conn.execute(collections.update().where(collections.c.id == collection_id).values(state=DROPPED))
            conn.execute(partitions.update().where(partitions.c.collection_id == collection_id).values(state=DROPPED))
            conn.execute(
                segments.update()
                .where(segments.c.collection_id == collection_id)
                .values(state=int(SegmentState.TO_DELETE), updated_us=now_us())
            )

    def set_id_mode(self, epoch: int, collection_id: int, mode: IdMode) -> None:
        with self._write(epoch) as conn:
            conn.execute(collections.update().where(collections.c.id == collection_id).values(id_mode=int(mode)))

    def set_index(self, epoch: int, collection_id: int, index_type: IndexType, params: Mapping[str, Any]) -> bool:
        """Set a collection's index; segments built with anything else go back to RAW. Returns whether
        anything changed."""
        text = params_json(params)
        with self._write(epoch) as conn:
            row = conn.execute(
                sa.select(collections.c.index_type, collections.c.index_params).where(collections.c.id == collection_id)
            ).one()
            if row.index_type == int(index_type) and row.index_params == text:
                return False
            conn.execute(
                collections.update()
                .where(collections.c.id == collection_id)
                .values(index_type=int(index_type), index_params=text)
            )
            conn.execute(
                segments.update()
                .where(
                    segments.c.collection_id == collection_id,
                    segments.c.state.in_([int(SegmentState.TO_INDEX), int(SegmentState.INDEX)]),
                )
                .values(state=int(SegmentState.RAW), index_file="", index_params="{}", index_size=0,
                        updated_us=now_us())
            )
            conn.execute(
                segments.update()
                .where(segments.c.collection_id == collection_id, segments.c.state == int(SegmentState.RAW))
                .values(index_type=int(index_type), index_error="")
            )
            return True

    def create_partition(self, epoch: int, collection_id: int, tag: str) -> int:
        with self._write(epoch) as conn:
            res = conn.execute(
                partitions.insert().values(collection_id=collection_id, tag=tag, state=LIVE, created_us=now_us())
            )
            return new_id(res)

    def drop_partition(self, epoch: int, partition_id: int) -> None:
        with self._write(epoch) as conn:
            conn.execute(partitions.update().where(partitions.c.id == partition_id).values(state=DROPPED))
            conn.execute(
                segments.update()
                .where(segments.c.partition_id == partition_id)
                .values(state=int(SegmentState.TO_DELETE), updated_us=now_us())
            )

    def _safe_uri(self) -> str:
        return sa.engine.make_url(self.uri).render_as_string(hide_password=True)
