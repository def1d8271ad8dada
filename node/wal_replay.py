"""A new writer's replay of the write-ahead log, and what each durable record leaves for retries.

:meth:`node.engine.Engine.become_writer` opens the log and calls :func:`replay_and_start`: records past each
collection's flushed LSN are applied again (without the void records of deposed writers), the log is sealed at
what was replayed, and a file of the new epoch is opened. :func:`remember` keeps the idempotency window in step
with every durable record, replayed or live.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from node.idempotency import RecentWrites
from node.wal import InsertRecord, Record, Seal, WriteAheadLog

if TYPE_CHECKING:
    from node.engine import Engine

log = logging.getLogger(__name__)


def remember(recent: RecentWrites, lsn: int, record: Record) -> None:
    """Keep what retries are recognised by: keyed inserts, and deletes that unmake them (in LSN order)."""
    if isinstance(record, InsertRecord):
        recent.inserted(record.key, record.collection_id, record.ids, lsn)
    else:
        recent.deleted(record.collection_id, record.ids, lsn)


def replay_and_start(engine: Engine, wal: WriteAheadLog, apply: Callable[[int, Record], None]) -> None:
    """Replay ``wal`` into ``apply`` (past each collection's flushed LSN, without the void records of deposed
    writers; flushed records are only remembered), seal it at what was replayed, and open a file of the engine's
    epoch."""
    snap = engine.snapshot()
    flushed = {c.id: c.flushed_lsn for c in snap.collections_by_id.values()}
    replayed = 0
    max_flushed = max(flushed.values(), default=0)
    seals = [Seal(epoch, lsn) for epoch, lsn in engine.catalog.log_seals()]
    for item in wal.replay(seals):
        record = item.record
        if item.lsn <= flushed.get(record.collection_id, item.lsn):
            remember(engine.recent, item.lsn, record)  # flushed already; its key still answers retries
            continue
        apply(item.lsn, record)
        if isinstance(record, InsertRecord) and record.ids.size:
            engine.ids.observe(int(record.ids.max()))
        replayed += 1
    sealed = max(wal.last_replayed_lsn, max_flushed)
    engine.catalog.seal_log(engine.epoch, sealed)
    wal.start(min_next_lsn=sealed + 1, epoch=engine.epoch)
    log.info("write-ahead log replayed (%d records applied, %d void) and sealed at LSN %d for epoch %d",
             replayed, wal.voided, sealed, engine.epoch)
