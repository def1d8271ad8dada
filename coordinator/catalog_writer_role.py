"""The catalog's part in who writes: the writer lease of the catalog election, the writer epoch that fences
every earlier writer, and the write-ahead log's seals. Mixed into :class:`coordinator.catalog.Catalog`."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from coordinator.catalog_schema import cluster_state, now_us, wal_seals, writer_lease
from coordinator.errors import MetaFailed


@dataclass(frozen=True, slots=True)
class WriterLease:
    holder: str
    address: str
    remaining: float  # seconds until it expires (<= 0: expired)


class WriterRole:
    """Lease, epoch and seals over the catalog's database (``engine``; fenced writes through ``_write``)."""

    engine: Engine

    def _write(self, epoch: int) -> AbstractContextManager[Connection]:
        raise NotImplementedError

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
