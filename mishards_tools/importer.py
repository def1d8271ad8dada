"""``mishards import``: validate a file whole, then send it in parallel batches with explicit ids, journaling
every batch so an interrupted import resumes without duplicates (see ``journal.py``)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from mishards_tools.connection import Endpoint, ToolError, check, connect, status_ok
from mishards_tools.dataset_types import Chunk, DatasetInfo
from mishards_tools.datasets import Dataset, ReaderOptions, open_dataset
from mishards_tools.import_target import prepare_collection
from mishards_tools.journal import Journal, JournalHeader, journal_path, mismatch, pending
from mishards_tools.progress import Progress

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImportSettings:
    path: Path
    collection: str
    endpoint: Endpoint = field(default_factory=Endpoint)
    create: bool = False
    metric: str | None = None
    index_file_size: int = 1024
    partition: str = ""
    batch: int = 10_000
    parallel: int = 2
    state_dir: Path | None = None
    id_start: int = 0
    retries: int = 3
    restart: bool = False
    reader: ReaderOptions = field(default_factory=ReaderOptions)


@dataclass(frozen=True)
class ImportSummary:
    rows: int  # rows in the file
    sent: int  # rows acknowledged in this run
    already: int  # rows acknowledged by earlier runs
    batches: int  # batches acknowledged in this run
    resent: int  # batches of unknown outcome deleted and sent again
    failures: int  # batches that failed for good in this run
    seconds: float
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.failures and not self.error

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else 0.0


def format_summary(s: ImportSummary) -> str:
    """Pure: the closing report."""
    head = "import complete" if s.ok else "import FAILED"
    lines = [f"{head}: {s.sent:,} rows sent in {s.seconds:.1f} s ({s.rate:,.0f} rows/s, the final flush included), "
             f"{s.batches} batches",
             f"  file rows {s.rows:,}; already imported before this run {s.already:,}; "
             f"re-sent after an unknown outcome {s.resent} batches; failed batches {s.failures}"]
    if s.error:
        lines.append(f"  error: {s.error}")
    if not s.ok:
        lines.append("  run the same command again to resume: acknowledged batches are not sent again")
    return "\n".join(lines)


class BatchFailed(RuntimeError):
    pass


def batch_ids(chunk: Chunk, id_start: int | None) -> np.ndarray:
    """Pure: the ids a batch is sent with: the file's, or ``id_start + row``."""
    if chunk.ids is not None:
        return chunk.ids
    assert id_start is not None
    return np.arange(id_start + chunk.start, id_start + chunk.stop, dtype=np.int64)


class _Clients:
    """One client per sending thread (a pymilvus-style client need not be shared across threads)."""

    def __init__(self, endpoint: Endpoint) -> None:
        self._endpoint = endpoint
        self._local = threading.local()
        self._all: list[Any] = []
        self._lock = threading.Lock()

    def get(self) -> Any:
        client = getattr(self._local, "client", None)
        if client is None:
            client = connect(self._endpoint, retry_inserts=False)
            self._local.client = client
            with self._lock:
                self._all.append(client)
        return client

    def close(self) -> None:
        for client in self._all:
            close = getattr(client, "close", None)
            if callable(close):
                close()


def send_batch(client: Any, settings: ImportSettings, chunk: Chunk, ids: np.ndarray, delete_first: bool,
               sleep: Callable[[float], None] = time.sleep) -> None:
    """Insert one batch with explicit ids. A failed attempt may or may not have been applied (a timeout, a lost
    connection), so every retry first deletes the batch's ids, then sends it again: the rows end up present
    exactly once whatever the server's idempotency window."""
    partition = settings.partition or None
    attempt = 0
    while True:
        try:
            if delete_first:
                what = f"delete of rows {chunk.start}..{chunk.stop - 1} before re-sending them"
                if chunk.scalars:
                    check(client.delete_entities_by_id(settings.collection, ids.tolist()), what)
                else:
                    check(client.delete_entity_by_id(settings.collection, ids, partition_tag=partition), what)
            if chunk.scalars:
                status, _ = client.insert_entities(settings.collection, chunk.scalars, chunk.vectors, ids=ids,
                                                   partition_tag=partition)
            else:
                status, _ = client.insert(settings.collection, chunk.vectors, ids=ids, partition_tag=partition)
            if status_ok(status):
                return
            reason = f"{getattr(status, 'message', status)} (status {getattr(status, 'code', '?')})"
        except ToolError as exc:
            reason = str(exc)
        except Exception as exc:  # a client that raises on transport failures
            reason = f"{type(exc).__name__}: {exc}"
        delete_first = True
        attempt += 1
        if attempt > settings.retries:
            raise BatchFailed(f"rows {chunk.start}..{chunk.stop - 1}: {reason}")
        log.warning("rows %d..%d: %s; retrying (%d/%d)", chunk.start, chunk.stop - 1, reason, attempt,
                    settings.retries)
        sleep(min(2.0, 0.2 * 2 ** attempt))


def _header(settings: ImportSettings, info: DatasetInfo) -> JournalHeader:
    stat = settings.path.stat()
    return JournalHeader(str(settings.path.resolve()), stat.st_size, stat.st_mtime_ns, settings.collection,
                         settings.partition, settings.batch, info.rows, None if info.has_ids else settings.id_start)


def _open_journal(settings: ImportSettings, info: DatasetInfo, err: TextIO) -> tuple[Journal, set[int], set[int]]:
    """The journal, the start rows to delete and re-send, and the start rows to send."""
    journal = Journal(journal_path(settings.path, settings.collection, settings.partition, settings.state_dir))
    header = _header(settings, info)
    state = journal.read()
    if state.header is not None and not settings.restart:
        why = mismatch(state.header, header)
        if why:
            raise ToolError(f"the journal {journal.path} belongs to another import ({why}); pass --restart to "
                            f"start over (rows it sent stay in the collection) or use another --state-dir")
        unknown, fresh = pending(header, state)
        if state.done:
            err.write(f"{journal.path} says this import is complete: nothing to send (--restart sends it all "
                      f"again)\n")
            journal.open(None)
            return journal, set(), set()
        err.write(f"resuming from {journal.path}: {len(state.acked)} batches acknowledged before, "
                  f"{len(unknown)} of unknown outcome (deleted and re-sent), {len(fresh)} to send\n")
        journal.open(None)
        return journal, set(unknown), set(fresh)
    journal.open(header)
    return journal, set(), set(range(0, info.rows, settings.batch))


def _chunks_to_send(dataset: Dataset, batch: int, todo: set[int]) -> Iterator[Chunk]:
    for chunk in dataset.chunks(batch):
        if chunk.start in todo:
            yield chunk


def run_import(settings: ImportSettings, err: TextIO) -> ImportSummary:
    """Validate, prepare the collection, send what the journal says is missing, flush, report."""
    if settings.batch <= 0 or settings.parallel <= 0:
        raise ToolError("--batch and --parallel must be positive")
    dataset = open_dataset(settings.path, settings.reader)
    err.write(f"validating {settings.path} ...\n")
    err.flush()
    dataset.validate()
    info = dataset.info
    err.write(f"{info.format}: {info.rows:,} rows of dimension {info.dimension}"
              f"{' (binary)' if info.binary else ''}{', ids from the file' if info.has_ids else ''}"
              f"{', scalars ' + ', '.join(info.scalars) if info.scalars else ''}\n")
    clients = _Clients(settings.endpoint)
    started = time.monotonic()
    try:
        dtypes = {n: c.dtype for n, c in next(dataset.chunks(1)).scalars.items()} if info.scalars else {}
        prepare_collection(clients.get(), settings, info, dtypes)
        journal, unknown, fresh = _open_journal(settings, info, err)
        try:
            return _send_all(settings, dataset, info, clients, journal, unknown, fresh, started, err)
        finally:
            journal.close()
    finally:
        clients.close()


def _send_all(settings: ImportSettings, dataset: Dataset, info: DatasetInfo, clients: _Clients, journal: Journal,
              unknown: set[int], fresh: set[int], started: float, err: TextIO) -> ImportSummary:
    todo = unknown | fresh
    remaining_rows = sum(min(settings.batch, info.rows - s) for s in todo)
    already = info.rows - remaining_rows
    progress = Progress(info.rows, err, start_done=already)
    id_start = None if info.has_ids else settings.id_start
    sent = batches = failures = 0
    error = ""
    in_flight: dict[Future[None], Chunk] = {}

    def settle(done: set[Future[None]]) -> None:
        nonlocal sent, batches, failures, error
        for future in done:
            chunk = in_flight.pop(future)
            exc = future.exception()
            if exc is None:
                journal.ack(chunk.start, chunk.stop)
                sent += len(chunk.vectors)
                batches += 1
                progress.add(len(chunk.vectors))
            else:
                failures += 1
                error = error or str(exc)

    def work(chunk: Chunk, ids: np.ndarray, delete_first: bool) -> None:
        send_batch(clients.get(), settings, chunk, ids, delete_first)

    with ThreadPoolExecutor(max_workers=settings.parallel, thread_name_prefix="import") as pool:
        for chunk in _chunks_to_send(dataset, settings.batch, todo):
            if failures:
                break  # stop at the first batch that failed for good; the journal lets a rerun resume
            while len(in_flight) >= 2 * settings.parallel:
                settle(wait(in_flight, return_when=FIRST_COMPLETED).done)
            journal.sent(chunk.start, chunk.stop)
            future = pool.submit(work, chunk, batch_ids(chunk, id_start), chunk.start in unknown)
            in_flight[future] = chunk
        while in_flight:
            settle(wait(in_flight, return_when=FIRST_COMPLETED).done)
    progress.finish()
    if not failures:  # also after a resume with nothing left to send: a flush that failed last time
        check(clients.get().flush([settings.collection]), "flush")
    if not failures:
        journal.done()
    return ImportSummary(info.rows, sent, already, batches, len(unknown), failures,
                         time.monotonic() - started, error)
