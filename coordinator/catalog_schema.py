"""The catalog's tables (SQLAlchemy Core), their rows as model values, and the engine for a catalog URI.

Tables: ``cluster_state`` (one row: revision, writer epoch and id), ``writer_lease`` (the catalog election's
lease, on the database's clock), ``wal_seals`` (one row per writer epoch: the log position its writer
replayed), ``collections``, ``partitions`` and ``segments``; the users of the token authentication
(``auth_users``, ``auth_tokens``, ``auth_grants``: ``coordinator.auth``). MySQL tables use ``utf8mb4`` /
``utf8mb4_bin``.

Columns added after a table's first release (:data:`ADDED_COLUMNS`) are nullable, so that a database created by
an older version gets them with ``ALTER TABLE ... ADD COLUMN`` (:func:`add_missing_columns`) and an older
process that inserts rows without them still works; a NULL reads as the column's empty value.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Connection, Engine

from coordinator.model import Collection, IdMode, IndexType, MetricType, Segment, SegmentState

REVISION_SQL = "SELECT revision FROM cluster_state WHERE id = 1"

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_NAME = sa.String(255)
_LONG_TEXT = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")  # MySQL's TEXT stops at 64 KB
_TABLE_KW: dict[str, Any] = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}
# SQLite reuses the largest rowid once its row is deleted; an id that names a dropped collection, partition or
# segment must never name a new one (logs, caches and retry keys refer to them by id). MySQL never reuses them.
_NO_ID_REUSE: dict[str, Any] = {"sqlite_autoincrement": True}

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
    # A hybrid collection's schema (coordinator.hybrid.schema.schema_to_json); NULL or '' for a plain collection.
    sa.Column("hybrid_schema", _LONG_TEXT, nullable=True),
    **_TABLE_KW,
    **_NO_ID_REUSE,
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
    **_NO_ID_REUSE,
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
    **_NO_ID_REUSE,
)


# Token authentication (coordinator.auth): users with a global role, their tokens (SHA-256 hex of each, never the
# token; at most two live at once so that one can be rotated without downtime) and per-collection grants. These
# are operator data: written by ``mishards user``, never fenced by the writer epoch.
auth_users = sa.Table(
    "auth_users",
    metadata,
    sa.Column("name", _NAME, primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("created_us", sa.BigInteger, nullable=False),
    **_TABLE_KW,
)

auth_tokens = sa.Table(
    "auth_tokens",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("user_name", _NAME, nullable=False, index=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_us", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.Double, nullable=True),  # seconds since the epoch; NULL: never
    **_TABLE_KW,
    **_NO_ID_REUSE,
)

auth_grants = sa.Table(
    "auth_grants",
    metadata,
    sa.Column("user_name", _NAME, primary_key=True),
    sa.Column("collection_name", _NAME, primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
    **_TABLE_KW,
)

AUTH_TABLES = (auth_users, auth_tokens, auth_grants)

# (table, column) pairs added after the table's first release, in the order they were added.
ADDED_COLUMNS: tuple[tuple[sa.Table, str], ...] = ((collections, "hybrid_schema"),)


def missing_columns(present: Mapping[str, set[str]]) -> list[tuple[sa.Table, str]]:
    """Which of :data:`ADDED_COLUMNS` a database lacks, given the columns each table has (by table name)."""
    return [(table, name) for table, name in ADDED_COLUMNS
            if table.name in present and name not in present[table.name]]


def add_missing_columns(conn: Connection) -> list[str]:
    """Add the columns of :data:`ADDED_COLUMNS` an older database lacks; returns ``table.column`` of each added.

    A process that races another one here sees "duplicate column" from the database; the caller looks again."""
    inspector = sa.inspect(conn)
    present = {t.name: {c["name"] for c in inspector.get_columns(t.name)}
               for t, _ in ADDED_COLUMNS if inspector.has_table(t.name)}
    added = []
    for table, name in missing_columns(present):
        column = table.c[name]
        kind = column.type.compile(dialect=conn.dialect)
        conn.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {name} {kind} NULL")
        added.append(f"{table.name}.{name}")
    return added


def params_json(params: Mapping[str, Any]) -> str:
    """The stored (and DescribeIndex) form of index params: compact JSON, keys sorted, other than ASCII kept as
    UTF-8, as Milvus 1.1's JSON library writes the params a client gave."""
    return json.dumps(dict(params), separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def now_us() -> int:
    return time.time_ns() // 1000


def collection_of(row: Any) -> Collection:
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
        hybrid_schema=row.hybrid_schema or "",
    )


def segment_of(row: Any) -> Segment:
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


def new_id(result: Any) -> int:
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
