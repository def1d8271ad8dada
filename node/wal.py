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

File format: ``<first lsn>-<epoch>.wal`` files of records ``header | payload`` where the header is ``magic u32,
payload length u32, crc32 u32, lsn u64, epoch u64, kind u8`` (little-endian) and the crc covers lsn, epoch, kind
and payload. Insert payloads carry the request's 16-byte idempotency key (zeros: none). Files of the first
format (``<first lsn>.wal``, no epoch, no key) are read as epoch 0. A torn tail (crash mid-write) is detected by
length / crc and ignored; a damaged record anywhere else is an error.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from coordinator.errors import NotWriter, StorageError, WriteOutcomeUnknown
from coordinator.fencing import WriterFence

log = logging.getLogger(__name__)

MAGIC_V1 = 0x4D57414C  # "MWAL": no epoch, no idempotency key
MAGIC = 0x4D574C32  # "MWL2"
_HEADER_V1 = struct.Struct("<IIIQB")
_HEADER = struct.Struct("<IIIQQB")
_INSERT_V1 = struct.Struct("<QQII")
_INSERT = struct.Struct("<QQII16s")
_DELETE = struct.Struct("<QQI")
KIND_INSERT = 1
KIND_DELETE = 2
KEY_BYTES = 16
NO_KEY = bytes(KEY_BYTES)


@dataclass(frozen=True, slots=True)
class InsertRecord:
    collection_id: int
    partition_id: int
    ids: np.ndarray  # int64 (n,)
    vectors: np.ndarray  # float32 (n, dim) or uint8 (n, dim/8)
    key: bytes = b""  # the request's idempotency key (16 bytes), b"" = none


@dataclass(frozen=True, slots=True)
class DeleteRecord:
    collection_id: int
    partition_id: int  # 0 = every partition
    ids: np.ndarray  # int64 (n,)


Record = InsertRecord | DeleteRecord


@dataclass(frozen=True, slots=True)
class Seal:
    """Written by the writer of ``epoch`` after its replay: records of older epochs past ``lsn`` are void."""

    epoch: int
    lsn: int


@dataclass(frozen=True, slots=True)
class Replayed:
    """One valid record found in the log."""

    lsn: int
    epoch: int
    record: Record


def last_valid_lsn(epoch: int, seals: Sequence[Seal]) -> int | None:
    """The last LSN at which a record of ``epoch`` still counts (None: no later epoch sealed it)."""
    limits = [s.lsn for s in seals if s.epoch > epoch]
    return min(limits) if limits else None


def encode(lsn: int, record: Record, epoch: int = 0) -> bytes:
    if isinstance(record, InsertRecord):
        vec = np.ascontiguousarray(record.vectors)
        n = int(record.ids.shape[0])
        row_bytes = int(vec.shape[1]) * vec.itemsize if n else 0
        kind_flag = 1 if vec.dtype == np.uint8 else 0
        key = record.key or NO_KEY
        if len(key) != KEY_BYTES:
            raise ValueError(f"an idempotency key has {KEY_BYTES} bytes, not {len(key)}")
        payload = b"".join(
            (
                _INSERT.pack(record.collection_id, record.partition_id, n, row_bytes | (kind_flag << 31), key),
                np.ascontiguousarray(record.ids, dtype=np.int64).tobytes(),
                vec.tobytes(),
            )
        )
        kind = KIND_INSERT
    else:
        n = int(record.ids.shape[0])
        payload = _DELETE.pack(record.collection_id, record.partition_id, n) + np.ascontiguousarray(
            record.ids, dtype=np.int64
        ).tobytes()
        kind = KIND_DELETE
    crc = zlib.crc32(struct.pack("<QQB", lsn, epoch, kind) + payload)
    return _HEADER.pack(MAGIC, len(payload), crc, lsn, epoch, kind) + payload


def decode(kind: int, payload: bytes, version: int = 2) -> Record:
    if kind == KIND_INSERT:
        key = b""
        if version == 1:
            cid, pid, n, packed = _INSERT_V1.unpack_from(payload)
            off = _INSERT_V1.size
        else:
            cid, pid, n, packed, raw_key = _INSERT.unpack_from(payload)
            off = _INSERT.size
            key = b"" if raw_key == NO_KEY else bytes(raw_key)
        binary = bool(packed >> 31)
        row_bytes = packed & 0x7FFFFFFF
        ids = np.frombuffer(payload, dtype=np.int64, count=n, offset=off).copy()
        off += 8 * n
        vectors: np.ndarray
        if binary:
            vectors = np.frombuffer(payload, dtype=np.uint8, count=n * row_bytes, offset=off).reshape(n, row_bytes)
        else:
            dim = row_bytes // 4
            vectors = np.frombuffer(payload, dtype=np.float32, count=n * dim, offset=off).reshape(n, dim)
        return InsertRecord(cid, pid, ids, vectors.copy(), key)
    if kind == KIND_DELETE:
        cid, pid, n = _DELETE.unpack_from(payload)
        ids = np.frombuffer(payload, dtype=np.int64, count=n, offset=_DELETE.size).copy()
        return DeleteRecord(cid, pid, ids)
    raise ValueError(f"unknown WAL record kind {kind}")


def _next_record(data: bytes, pos: int, file_epoch: int) -> tuple[Replayed, int] | None:
    """The record at ``pos`` and the offset after it, or None if it is torn or damaged."""
    if pos + 4 > len(data):
        return None
    (magic,) = struct.unpack_from("<I", data, pos)
    if magic == MAGIC:
        if pos + _HEADER.size > len(data):
            return None
        _, length, crc, lsn, epoch, kind = _HEADER.unpack_from(data, pos)
        start = pos + _HEADER.size
        covered = struct.pack("<QQB", lsn, epoch, kind)
        version = 2
    elif magic == MAGIC_V1:
        if pos + _HEADER_V1.size > len(data):
            return None
        _, length, crc, lsn, kind = _HEADER_V1.unpack_from(data, pos)
        epoch = file_epoch
        start = pos + _HEADER_V1.size
        covered = struct.pack("<QB", lsn, kind)
        version = 1
    else:
        return None
    end = start + length
    if end > len(data):
        return None
    payload = data[start:end]
    if zlib.crc32(covered + payload) != crc:
        return None
    try:
        record = decode(kind, payload, version)
    except (ValueError, struct.error):
        return None
    return Replayed(lsn, epoch, record), end


def _intact_record_after(data: bytes, pos: int, file_epoch: int) -> bool:
    """Whether an intact record starts anywhere after ``pos`` (then the damage is not a torn tail)."""
    for magic in (MAGIC, MAGIC_V1):
        needle = struct.pack("<I", magic)
        at = data.find(needle, pos + 1)
        while at >= 0:
            if _next_record(data, at, file_epoch) is not None:
                return True
            at = data.find(needle, at + 1)
    return False


def read_file(path: Path, file_epoch: int) -> tuple[list[Replayed], bool]:
    """Every intact record of one file, and whether it ends in a torn record (a crash mid-write).

    Raises StorageError when a damaged record is followed by intact ones: that is not a torn tail.
    """
    data = path.read_bytes()
    out: list[Replayed] = []
    pos = 0
    while pos < len(data):
        found = _next_record(data, pos, file_epoch)
        if found is None:
            if _intact_record_after(data, pos, file_epoch):
                raise StorageError(f"WAL file {path.name} is damaged at byte {pos}, before intact records")
            return out, True
        record, pos = found
        out.append(record)
    return out, False


def parse_file_name(name: str) -> tuple[int, int] | None:
    """``(first lsn, epoch)`` of a log file name, or None for anything else."""
    if not name.endswith(".wal"):
        return None
    first, _, epoch = name[: -len(".wal")].partition("-")
    if not first.isdigit() or (epoch and not epoch.isdigit()):
        return None
    return int(first), int(epoch or 0)


def _modified(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def file_name(first_lsn: int, epoch: int) -> str:
    return f"{first_lsn:020d}-{epoch:010d}.wal"


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
