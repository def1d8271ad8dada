"""Write-ahead log with group commit.

Every insert / delete batch is appended to the log and fsynced before its request is answered.
One writer thread takes *all* pending records, writes them, fsyncs once, then applies them to the
in-memory buffers in log order and completes their futures. So concurrent requests share fsyncs, and
nothing becomes visible (or acknowledged) before it is durable.

File format: ``<first lsn>.wal`` files of records ``header | payload`` where the header is
``magic u32, payload length u32, crc32 u32, lsn u64, kind u8`` (little-endian) and the crc covers
lsn, kind and payload. A torn tail (crash mid-write) is detected by length / crc and cut off.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from coordinator.errors import StorageError

log = logging.getLogger(__name__)

MAGIC = 0x4D57414C  # "MWAL"
_HEADER = struct.Struct("<IIIQB")
_INSERT = struct.Struct("<QQII")
_DELETE = struct.Struct("<QQI")
KIND_INSERT = 1
KIND_DELETE = 2


@dataclass(frozen=True, slots=True)
class InsertRecord:
    collection_id: int
    partition_id: int
    ids: np.ndarray  # int64 (n,)
    vectors: np.ndarray  # float32 (n, dim) or uint8 (n, dim/8)


@dataclass(frozen=True, slots=True)
class DeleteRecord:
    collection_id: int
    partition_id: int  # 0 = every partition
    ids: np.ndarray  # int64 (n,)


Record = InsertRecord | DeleteRecord


def encode(lsn: int, record: Record) -> bytes:
    if isinstance(record, InsertRecord):
        vec = np.ascontiguousarray(record.vectors)
        n = int(record.ids.shape[0])
        row_bytes = int(vec.shape[1]) * vec.itemsize if n else 0
        kind_flag = 1 if vec.dtype == np.uint8 else 0
        payload = b"".join(
            (
                _INSERT.pack(record.collection_id, record.partition_id, n, row_bytes | (kind_flag << 31)),
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
    crc = zlib.crc32(struct.pack("<QB", lsn, kind) + payload)
    return _HEADER.pack(MAGIC, len(payload), crc, lsn, kind) + payload


def decode(kind: int, payload: bytes) -> Record:
    if kind == KIND_INSERT:
        cid, pid, n, packed = _INSERT.unpack_from(payload)
        binary = bool(packed >> 31)
        row_bytes = packed & 0x7FFFFFFF
        off = _INSERT.size
        ids = np.frombuffer(payload, dtype=np.int64, count=n, offset=off).copy()
        off += 8 * n
        vectors: np.ndarray
        if binary:
            vectors = np.frombuffer(payload, dtype=np.uint8, count=n * row_bytes, offset=off).reshape(n, row_bytes)
        else:
            dim = row_bytes // 4
            vectors = np.frombuffer(payload, dtype=np.float32, count=n * dim, offset=off).reshape(n, dim)
        return InsertRecord(cid, pid, ids, vectors.copy())
    if kind == KIND_DELETE:
        cid, pid, n = _DELETE.unpack_from(payload)
        ids = np.frombuffer(payload, dtype=np.int64, count=n, offset=_DELETE.size).copy()
        return DeleteRecord(cid, pid, ids)
    raise ValueError(f"unknown WAL record kind {kind}")


@dataclass
class _LogFile:
    path: Path
    first_lsn: int
    last_lsn: int


def _read_file(path: Path) -> tuple[list[tuple[int, Record]], int, bool]:
    """Records of one file, the byte offset of the end of the last good record, and whether it is torn."""
    data = path.read_bytes()
    out: list[tuple[int, Record]] = []
    pos = 0
    while pos < len(data):
        if pos + _HEADER.size > len(data):
            return out, pos, True
        magic, length, crc, lsn, kind = _HEADER.unpack_from(data, pos)
        end = pos + _HEADER.size + length
        if magic != MAGIC or end > len(data):
            return out, pos, True
        payload = data[pos + _HEADER.size : end]
        if zlib.crc32(struct.pack("<QB", lsn, kind) + payload) != crc:
            return out, pos, True
        out.append((lsn, decode(kind, payload)))
        pos = end
    return out, pos, False


class WriteAheadLog:
    """The node's WAL folder: replay on open, then group-committed appends from a writer thread."""

    def __init__(
        self,
        folder: Path,
        apply: Callable[[int, Record], None],
        file_bytes: int = 64 * 1024 * 1024,
        on_fsync: Callable[[float], None] | None = None,
    ) -> None:
        self.folder = folder
        self._apply = apply
        self._file_bytes = file_bytes
        self._on_fsync = on_fsync  # told each group commit's fsync duration (seconds), e.g. a histogram
        self._files: list[_LogFile] = []
        self._cond = threading.Condition()
        self._pending: list[tuple[int, Record, bytes, Future[int]]] = []
        self._next_lsn = 1
        self._fd = -1
        self._size = 0
        self._thread: threading.Thread | None = None
        self._closing = False
        self.fsync_seconds_total = 0.0
        self.fsyncs = 0

    # -- replay --------------------------------------------------------------------------------

    def replay(self) -> Iterator[tuple[int, Record]]:
        """Yield every intact record in LSN order; cut a torn tail off the last file."""
        self.folder.mkdir(parents=True, exist_ok=True)
        paths = sorted(p for p in self.folder.glob("*.wal") if p.stem.isdigit())
        for i, path in enumerate(paths):
            records, good_end, torn = _read_file(path)
            if torn:
                if i != len(paths) - 1:
                    raise StorageError(f"WAL file {path.name} is corrupt before the end of the log")
                log.warning("cutting a torn WAL tail in %s at byte %d", path.name, good_end)
                with open(path, "r+b") as fh:
                    fh.truncate(good_end)
                    os.fsync(fh.fileno())
            first = int(path.stem)
            last = records[-1][0] if records else first - 1
            self._files.append(_LogFile(path, first, last))
            for lsn, record in records:
                self._next_lsn = max(self._next_lsn, lsn + 1)
                yield lsn, record

    def start(self, min_next_lsn: int = 1) -> None:
        """Open a fresh log file and start the writer thread."""
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
        path = self.folder / f"{first_lsn:020d}.wal"
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._size = os.fstat(self._fd).st_size
        fd = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        if not self._files or self._files[-1].path != path:
            self._files.append(_LogFile(path, first_lsn, first_lsn - 1))

    # -- appends -------------------------------------------------------------------------------

    def append(self, record: Record) -> Future[int]:
        """Queue a record; the future completes with its LSN once durable and applied."""
        fut: Future[int] = Future()
        with self._cond:
            if self._closing or self._thread is None:
                raise StorageError("The write-ahead log is closed")
            lsn = self._next_lsn
            self._next_lsn += 1
            self._pending.append((lsn, record, encode(lsn, record), fut))
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
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, start_size)
                err = StorageError(f"Cannot write the write-ahead log: {exc}")
                for *_, fut in batch:
                    fut.set_exception(err)
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

    def truncate(self, durable_lsn: int) -> None:
        """Delete closed log files whose records are all at or below ``durable_lsn``."""
        with self._cond:
            keep: list[_LogFile] = []
            for i, f in enumerate(self._files):
                is_current = i == len(self._files) - 1
                if not is_current and f.last_lsn <= durable_lsn:
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
