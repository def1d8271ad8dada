"""The catalog: collections, partitions and segments in one SQL database (SQLite or MySQL/MariaDB).

Every committed change bumps a single catalog *revision*, inside the same transaction that makes the
change, and only if the writer's *epoch* is still the current one. The check is a conditional UPDATE
of the one ``cluster_state`` row, so a deposed writer is refused by the database itself (the row lock
on MySQL, the write lock on SQLite), not by a check that can race.

Readers work from an immutable :class:`CatalogSnapshot`, reloaded when the revision moves.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from coordinator.errors import MetaFailed
from coordinator.model import (
    DEFAULT_PARTITION,
    Collection,
    IdMode,
    IndexType,
    MetricType,
    Partition,
    Segment,
    SegmentState,
)

log = logging.getLogger(__name__)

REVISION_SQL = "SELECT revision FROM cluster_state WHERE id = 1"

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_NAME = sa.String(255)
_TABLE_KW: dict[str, Any] = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}

LIVE = 0
DROPPED = 1

metadata = sa.MetaData()

cluster_state = sa.Table(
    "cluster_state",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("revision", sa.BigInteger, nullable=False),
    sa.Column("writer_epoch", sa.BigInteger, nullable=False),
    sa.Column("writer_id", sa.String(255), nullable=False),
    **_TABLE_KW,
)

# Who may write, where no etcd election runs (``election: catalog``): one row, a lease on the database's clock.
writer_lease = sa.Table(
    "writer_lease",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("holder", sa.String(255), nullable=False),
    sa.Column("address", sa.String(255), nullable=False),
    sa.Column("expires_at", sa.Double, nullable=False),  # seconds since the epoch, the database's clock
    **_TABLE_KW,
)


# The write-ahead log's seals: after its replay, the writer of ``epoch`` records the last LSN it replayed;
# records of older epochs past it are void (a deposed writer's late appends never count).
wal_seals = sa.Table(
    "wal_seals",
    metadata,
    sa.Column("epoch", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("sealed_lsn", sa.BigInteger, nullable=False),
    sa.Column("sealed_us", sa.BigInteger, nullable=False),
    **_TABLE_KW,
)


@dataclass(frozen=True, slots=True)
class WriterLease:
    holder: str
    address: str
    remaining: float  # seconds until it expires (<= 0: expired)


collections = sa.Table(
    "collections",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("name", _NAME, nullable=False, index=True),
    sa.Column("state", sa.Integer, nullable=False),
    sa.Column("dimension", sa.Integer, nullable=False),
    sa.Column("metric_type", sa.Integer, nullable=False),
    sa.Column("index_file_size_mb", sa.Integer, nullable=False),
    sa.Column("index_type", sa.Integer, nullable=False),
    sa.Column("index_params", sa.Text, nullable=False),
    sa.Column("id_mode", sa.Integer, nullable=False),
    sa.Column("created_us", sa.BigInteger, nullable=False),
    sa.Column("flushed_lsn", sa.BigInteger, nullable=False),
    **_TABLE_KW,
)

partitions = sa.Table(
    "partitions",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("collection_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("tag", _NAME, nullable=False),
    sa.Column("state", sa.Integer, nullable=False),
    sa.Column("created_us", sa.BigInteger, nullable=False),
    **_TABLE_KW,
)

segments = sa.Table(
    "segments",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("collection_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("partition_id", sa.BigInteger, nullable=False),
    sa.Column("state", sa.Integer, nullable=False),
    sa.Column("row_count", sa.BigInteger, nullable=False),
    sa.Column("deleted_count", sa.BigInteger, nullable=False),
    sa.Column("data_size", sa.BigInteger, nullable=False),
    sa.Column("index_type", sa.Integer, nullable=False),
    sa.Column("delete_version", sa.Integer, nullable=False),
    sa.Column("created_us", sa.BigInteger, nullable=False),
    sa.Column("updated_us", sa.BigInteger, nullable=False),
    # The built index: its file in the segment folder ('' = none), the build params, its size, and the
    # error of the last failed build ('' = none).
    sa.Column("index_file", sa.String(128), nullable=False, default=""),
    sa.Column("index_params", sa.Text, nullable=False, default="{}"),
    sa.Column("index_size", sa.BigInteger, nullable=False, default=0),
    sa.Column("index_error", sa.Text, nullable=False, default=""),
    **_TABLE_KW,
)


def params_json(params: Mapping[str, Any]) -> str:
    """The stored (and DescribeIndex) form of index params: compact JSON, keys sorted."""
    return json.dumps(dict(params), separators=(",", ":"), sort_keys=True)


def now_us() -> int:
    return time.time_ns() // 1000


class Fenced(MetaFailed):
    """This process is no longer the writer: its epoch is not the catalog's current one."""


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


def _collection(row: Any) -> Collection:
    return Collection(
        id=row.id,
        name=row.name,
        dimension=row.dimension,
        metric=MetricType(row.metric_type),
        index_file_size_mb=row.index_file_size_mb,
        index_type=IndexType(row.index_type),
        index_params=row.index_params,
        id_mode=IdMode(row.id_mode),
        created_us=row.created_us,
        flushed_lsn=row.flushed_lsn,
    )


def _segment(row: Any) -> Segment:
    return Segment(
        id=row.id,
        name=row.name,
        collection_id=row.collection_id,
        partition_id=row.partition_id,
        state=SegmentState(row.state),
        row_count=row.row_count,
        deleted_count=row.deleted_count,
        data_size=row.data_size,
        index_type=IndexType(row.index_type),
        delete_version=row.delete_version,
        created_us=row.created_us,
        index_file=row.index_file,
        index_params=row.index_params,
        index_size=row.index_size,
        index_error=row.index_error,
    )


def _new_id(result: Any) -> int:
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def make_engine(uri: str) -> Engine:
    """Create the SQLAlchemy engine for a catalog URI (``sqlite:///path`` or ``mysql+pymysql://``)."""
    if uri.startswith("sqlite"):
        engine = sa.create_engine(
            uri, connect_args={"check_same_thread": False, "timeout": 30}, pool_pre_ping=False
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy, not pysqlite, decide where transactions begin, so that the several
            # SELECTs of a snapshot read one consistent state.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Connection) -> None:
            # Deferred is enough: every write transaction starts with the fencing UPDATE, which
            # takes the write lock before anything is read.
            conn.exec_driver_sql("BEGIN")

        return engine
    return sa.create_engine(uri, pool_pre_ping=True, pool_recycle=3600, pool_size=8, max_overflow=8)


class Catalog:
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

    # -- writer lease (election through the catalog) -------------------------------------------------

    def _db_now(self) -> Any:
        """The database's clock in seconds since the epoch, as an SQL expression: every candidate compares
        against the same clock, whatever the clocks of the machines they run on."""
        if self.engine.dialect.name == "sqlite":
            return sa.literal_column("((julianday('now') - 2440587.5) * 86400.0)")
        return sa.literal_column("UNIX_TIMESTAMP(NOW(6))")

    def acquire_writer_lease(self, holder: str, address: str, ttl: float) -> bool:
        """Take (or keep) the writer lease for ``ttl`` seconds if it is free, expired or already ``holder``'s."""
        now = self._db_now()
        try:
            with self.engine.begin() as conn:
                taken = conn.execute(
                    writer_lease.update()
                    .where(writer_lease.c.id == 1)
                    .where(sa.or_(writer_lease.c.holder == holder, writer_lease.c.expires_at < now))
                    .values(holder=holder, address=address, expires_at=now + ttl)
                ).rowcount
                if taken == 1:
                    return True
                if conn.execute(sa.select(writer_lease.c.id)).first() is not None:
                    return False
                conn.execute(writer_lease.insert().values(id=1, holder=holder, address=address,
                                                          expires_at=now + ttl))
                return True
        except IntegrityError:
            return False  # another candidate created the row first
        except SQLAlchemyError as exc:
            raise MetaFailed(f"Catalog unavailable: {exc}") from exc

    def renew_writer_lease(self, holder: str, ttl: float) -> bool:
        """Extend ``holder``'s lease by ``ttl`` seconds from now; False if it expired or someone else holds it."""
        now = self._db_now()
        try:
            with self.engine.begin() as conn:
                return bool(conn.execute(
                    writer_lease.update()
                    .where(writer_lease.c.id == 1, writer_lease.c.holder == holder, writer_lease.c.expires_at >= now)
                    .values(expires_at=now + ttl)
                ).rowcount == 1)
        except SQLAlchemyError as exc:
            raise MetaFailed(f"Catalog unavailable: {exc}") from exc

    def release_writer_lease(self, holder: str) -> None:
        """Give the lease up at once (a clean stop), so that a standby need not wait for it to expire."""
        try:
            with self.engine.begin() as conn:
                conn.execute(writer_lease.update().where(writer_lease.c.id == 1, writer_lease.c.holder == holder)
                             .values(expires_at=0.0))
        except SQLAlchemyError as exc:
            raise MetaFailed(f"Catalog unavailable: {exc}") from exc

    def writer_lease(self) -> WriterLease | None:
        """The current lease, or None if none was ever taken."""
        try:
            with self.engine.connect() as conn:
                row = conn.execute(sa.select(writer_lease.c.holder, writer_lease.c.address,
                                             (writer_lease.c.expires_at - self._db_now()).label("remaining"))).first()
        except SQLAlchemyError as exc:
            raise MetaFailed(f"Catalog unavailable: {exc}") from exc
        return None if row is None else WriterLease(str(row.holder), str(row.address), float(row.remaining))

    def claim_writer(self, writer_id: str) -> int:
        """Become the writer: bump the epoch, which fences every earlier writer. Returns the new epoch."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    cluster_state.update()
                    .where(cluster_state.c.id == 1)
                    .values(
                        writer_epoch=cluster_state.c.writer_epoch + 1,
                        revision=cluster_state.c.revision + 1,
                        writer_id=writer_id,
                    )
                )
                row = conn.execute(sa.select(cluster_state.c.writer_epoch)).one()
                return int(row.writer_epoch)
        except SQLAlchemyError as exc:
            raise MetaFailed(f"Cannot claim the writer epoch: {exc}") from exc

    def log_seals(self) -> list[tuple[int, int]]:
        """Every seal of the write-ahead log as ``(epoch, sealed lsn)``, oldest epoch first."""
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(sa.select(wal_seals.c.epoch, wal_seals.c.sealed_lsn)
                                    .order_by(wal_seals.c.epoch)).all()
        except SQLAlchemyError as exc:
            raise MetaFailed(f"Catalog unavailable: {exc}") from exc
        return [(int(r.epoch), int(r.sealed_lsn)) for r in rows]

    def seal_log(self, epoch: int, lsn: int) -> None:
        """Record that the writer of ``epoch`` replayed the log up to ``lsn``: records of older epochs past it
        are void. Fenced like every write, so only the current writer seals."""
        with self._write(epoch) as conn:
            conn.execute(wal_seals.insert().values(epoch=epoch, sealed_lsn=lsn, sealed_us=now_us()))

    def writer_state(self) -> tuple[int, int, str]:
        """``(revision, writer epoch, writer id)`` as the catalog records them."""
        try:
            with self.engine.connect() as conn:
                row = conn.execute(sa.select(cluster_state)).one()
        except SQLAlchemyError as exc:
            raise MetaFailed(f"Catalog unavailable: {exc}") from exc
        return int(row.revision), int(row.writer_epoch), str(row.writer_id)

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
                revision = int(conn.execute(sa.select(cluster_state.c.revision)).scalar_one())
                coll_rows = conn.execute(
                    sa.select(collections).where(collections.c.state == LIVE).order_by(collections.c.id)
                ).all()
                part_rows = conn.execute(
                    sa.select(partitions).where(partitions.c.state == LIVE).order_by(partitions.c.id)
                ).all()
                seg_rows = conn.execute(sa.select(segments).order_by(segments.c.id)).all()
        except SQLAlchemyError as exc:
            raise MetaFailed(f"Catalog unavailable: {exc}") from exc
        by_id = {row.id: _collection(row) for row in coll_rows}
        parts: dict[int, list[Partition]] = {}
        for row in part_rows:
            if row.collection_id in by_id:
                parts.setdefault(row.collection_id, []).append(Partition(row.id, row.collection_id, row.tag))
        for plist in parts.values():
            plist.sort(key=lambda p: (p.tag != DEFAULT_PARTITION, p.id))
        segs: dict[int, list[Segment]] = {}
        seg_by_id: dict[int, Segment] = {}
        for row in seg_rows:
            seg = _segment(row)
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

    # -- writer operations ----------------------------------------------------------------------

    def create_collection(
        self, epoch: int, name: str, dimension: int, metric: MetricType, index_file_size_mb: int
    ) -> int:
        """Create a collection and its ``_default`` partition; returns the new collection id.

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
                )
            )
            cid = _new_id(res)
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

    def create_partition(self, epoch: int, collection_id: int, tag: str) -> int:
        with self._write(epoch) as conn:
            res = conn.execute(
                partitions.insert().values(collection_id=collection_id, tag=tag, state=LIVE, created_us=now_us())
            )
            return _new_id(res)

    def drop_partition(self, epoch: int, partition_id: int) -> None:
        with self._write(epoch) as conn:
            conn.execute(partitions.update().where(partitions.c.id == partition_id).values(state=DROPPED))
            conn.execute(
                segments.update()
                .where(segments.c.partition_id == partition_id)
                .values(state=int(SegmentState.TO_DELETE), updated_us=now_us())
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
                ids.append(_new_id(res))
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

    def _safe_uri(self) -> str:
        return sa.engine.make_url(self.uri).render_as_string(hide_password=True)
