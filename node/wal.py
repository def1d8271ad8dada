"""Write-ahead log with group commit, stamped with the writer epoch and fenced.

Every insert / delete batch is appended to the log and fsynced before its request is answered. One writer
thread takes *all* pending records, writes them, fsyncs once, then applies them to the in-memory buffers in
log order and completes their futures. So concurrent requests share fsyncs, and nothing becomes visible (or
acknowledged) before it is durable.

Fencing. A writer that was paused past its lease must not acknowledge what its successor never saw. The
writer thread asks the :class:`~coordinator.fencing.WriterFence` before writing a batch (refused: nothing
written, safe to retry elsewhere) and again after the fsync, before applying and acknowledging (refused: the
records are on disk but may or may not be replayed by the successor, so their outcome is *unknown*). After
either refusal the log accepts nothing more.

Epochs and seals. Every record and every file carries the writer epoch that wrote it. A new writer replays
the log, then records in the catalog a *seal* ``(its epoch, the last LSN it replayed)``: a record of an older
epoch with an LSN past the seal of any later epoch is void, never replayed, whatever a deposed writer appends
to its old files afterwards. The new writer starts a file of its own, so no two epochs write one file.

The record and file format is :mod:`node.wal_format`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from coordinator.errors import NotWriter, StorageError, WriteOutcomeUnknown
from coordinator.fencing import WriterFence
from node.wal_format import (
    MAGIC,
    MAGIC_V1,
    DeleteRecord,
    InsertRecord,
    Record,
    Replayed,
    Seal,
    decode,
    encode,
    file_name,
    last_valid_lsn,
    parse_file_name,
    read_file,
)

__all__ = ["MAGIC", "MAGIC_V1", "DeleteRecord", "InsertRecord", "Record", "Replayed", "Seal", "WriteAheadLog",
           "decode", "encode", "last_valid_lsn", "parse_file_name"]

log = logging.getLogger(__name__)


def _modified(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


@dataclass
class _LogFile:
    path: Path
    first_lsn: int
    last_lsn: int  # of its valid records (first_lsn - 1 when there are none)
    epoch: int


class WriteAheadLog:
    """The node's WAL folder: replay on open, then group-committed, fenced appends from a writer thread."""

    def __init__(
        self,
        folder: Path,
        apply: Callable[[int, Record], None],
        file_bytes: int = 64 * 1024 * 1024,
        on_fsync: Callable[[float], None] | None = None,
        fence: WriterFence | None = None,
    ) -> None:
        self.folder = folder
        self._apply = apply
        self._file_bytes = file_bytes
        self._on_fsync = on_fsync  # told each group commit's fsync duration (seconds), e.g. a histogram
        self._fence = fence or WriterFence()
        self._files: list[_LogFile] = []
        self._cond = threading.Condition()
        self._pending: list[tuple[int, Record, bytes, Future[int]]] = []
        self._next_lsn = 1
        self._epoch = 0
        self._fd = -1
        self._size = 0
        self._thread: threading.Thread | None = None
        self._closing = False
        self.last_replayed_lsn = 0
        self.voided = 0  # records of deposed writers found past a seal at replay
        self.fsync_seconds_total = 0.0
        self.fsyncs = 0

    # -- replay --------------------------------------------------------------------------------

    def replay(self, seals: Sequence[Seal] = ()) -> list[Replayed]:
        """Every valid record in LSN order: intact, and not past a seal of a later epoch."""
        self.folder.mkdir(parents=True, exist_ok=True)
        found = []
        for path in self.folder.iterdir():
            parsed = parse_file_name(path.name)
            if parsed is not None:
                found.append((parsed, path))
        found.sort()
        last_of_epoch = {epoch: first for (first, epoch), _ in found}
        valid: list[Replayed] = []
        for (first, epoch), path in found:
            records, torn = read_file(path, epoch)
            if torn:
                if last_of_epoch[epoch] != first:
                    raise StorageError(f"WAL file {path.name} is damaged before the end of its epoch's log")
                log.warning("ignoring a torn record at the end of WAL file %s", path.name)
            kept = []
            for rec in records:
                limit = last_valid_lsn(rec.epoch, seals)
                if limit is not None and rec.lsn > limit:
                    self.voided += 1
                    continue
                kept.append(rec)
            last = max((r.lsn for r in kept), default=first - 1)
            self._files.append(_LogFile(path, first, last, epoch))
            valid.extend(kept)
        valid.sort(key=lambda r: r.lsn)
        if valid:
            self.last_replayed_lsn = valid[-1].lsn
            self._next_lsn = max(self._next_lsn, self.last_replayed_lsn + 1)
        if self.voided:
            log.warning("%d write-ahead log records of deposed writers were past their seal and are void",
                        self.voided)
        return valid

    def start(self, min_next_lsn: int = 1, epoch: int = 0) -> None:
        """Open a fresh log file of ``epoch`` and start the writer thread."""
        self._epoch = epoch
        self._next_lsn = max(self._next_lsn, min_next_lsn)
        self._open_file(self._next_lsn)
        self._thread = threading.Thread(target=self._run, name="wal-writer", daemon=True)
        self._thread.start()

    @property
    def next_lsn(self) -> int:
        return self._next_lsn

    def _open_file(self, first_lsn: int) -> None:
        if self._fd >= 0:
            os.close(self._fd)
        path = self.folder / file_name(first_lsn, self._epoch)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._size = os.fstat(self._fd).st_size
        fd = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        if not self._files or self._files[-1].path != path:
            self._files.append(_LogFile(path, first_lsn, first_lsn - 1, self._epoch))

    # -- appends -------------------------------------------------------------------------------

    def append(self, record: Record) -> Future[int]:
        """Queue a record; the future completes with its LSN once durable, fenced and applied."""
        fut: Future[int] = Future()
        with self._cond:
            if self._closing or self._thread is None:
                raise StorageError("The write-ahead log is closed")
            self._fence.check("Writing the log")
            lsn = self._next_lsn
            self._next_lsn += 1
            self._pending.append((lsn, record, encode(lsn, record, self._epoch), fut))
            self._cond.notify()
        return fut

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closing:
                    self._cond.wait()
                if not self._pending and self._closing:
                    return
                batch, self._pending = self._pending, []
            if not self._fence.valid():
                self._fail(batch, NotWriter("This node is no longer the writer; the write was not applied"))
                continue
            start_size = self._size
            try:
                data = b"".join(item[2] for item in batch)
                view = memoryview(data)
                while view:
                    written = os.write(self._fd, view)
                    view = view[written:]
                t0 = time.perf_counter()
                os.fsync(self._fd)
                took = time.perf_counter() - t0
                self.fsync_seconds_total += took
                self.fsyncs += 1
                if self._on_fsync is not None:
                    self._on_fsync(took)
                self._size += len(data)
                self._files[-1].last_lsn = batch[-1][0]
            except OSError as exc:
                log.error("WAL write failed: %s", exc)
                try:
                    os.ftruncate(self._fd, start_size)
                except OSError as cut_exc:
                    # A damaged record would stay inside the log: stop taking writes (replay cuts it off as
                    # the torn tail of this epoch's last file).
                    log.critical("cannot cut a failed write off the log (%s); the log takes no more writes",
                                 cut_exc)
                    self._fence.revoke(f"the write-ahead log is damaged: {cut_exc}")
                self._fail(batch, StorageError(f"Cannot write the write-ahead log: {exc}"))
                continue
            if not self._fence.valid():
                # Durable, but a successor may have replayed the log before it got there: neither applied nor
                # acknowledged here; the seal decides whether it ever counts.
                log.critical("the writer lease ran out while %d records were being written; they are not "
                             "acknowledged", len(batch))
                self._fail(batch, WriteOutcomeUnknown(
                    f"{WriteOutcomeUnknown.PREFIX}: this node lost the writer role while the write was being "
                    "made durable; it may or may not take effect. Retrying the same insert is safe."))
                continue
            for lsn, record, _, fut in batch:
                try:
                    self._apply(lsn, record)
                except Exception as exc:  # an apply bug must not kill the writer thread
                    log.exception("applying WAL record %d failed", lsn)
                    fut.set_exception(exc)
                else:
                    fut.set_result(lsn)
            if self._size >= self._file_bytes:
                with self._cond:
                    self._open_file(batch[-1][0] + 1)

    @staticmethod
    def _fail(batch: list[tuple[int, Record, bytes, Future[int]]], error: Exception) -> None:
        for *_, fut in batch:
            fut.set_exception(error)

    def truncate(self, durable_lsn: int, keep_newer_than: float = float("inf")) -> None:
        """Delete closed log files whose valid records are all at or below ``durable_lsn`` and that were last
        written before ``keep_newer_than`` (wall-clock seconds: the log keeps the idempotency window's keys)."""
        with self._cond:
            keep: list[_LogFile] = []
            for i, f in enumerate(self._files):
                is_current = i == len(self._files) - 1 and self._thread is not None
                if not is_current and f.last_lsn <= durable_lsn and _modified(f.path) < keep_newer_than:
                    f.path.unlink(missing_ok=True)
                else:
                    keep.append(f)
            self._files = keep

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
