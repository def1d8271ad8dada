"""etcd prefix watches: :class:`WatchHandle`, a running watch whose events reach the caller's callback in a
thread of its own, and :func:`watch_loop`, the loop-side task that keeps the watch stream open (re-created
after errors with backoff, resuming after the last revision delivered).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import logging
import queue
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import aetcd

from coordinator.etcd_wire import key_str, to_bytes

if TYPE_CHECKING:
    from coordinator.etcd_client import EtcdClient

log = logging.getLogger(__name__)

WATCH_BACKOFF_MIN = 0.1
WATCH_BACKOFF_MAX = 2.0


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One change seen by a watch. ``value`` is empty for deletes; ``revision`` is the change's revision."""

    kind: Literal["put", "delete"]
    key: str
    value: bytes
    revision: int
    lease: int = 0


WatchCallback = Callable[[list[WatchEvent]], None]


class WatchHandle:
    """A running prefix watch. :meth:`cancel` stops it (idempotent; callable from its own callback)."""

    def __init__(self, client: EtcdClient, prefix: str, callback: WatchCallback) -> None:
        self.prefix = prefix
        self._client = client
        self._callback = callback
        self._queue: queue.SimpleQueue[WatchEvent | None] = queue.SimpleQueue()
        self._cancelled = threading.Event()
        self._task: asyncio.Task[None] | None = None
        self._restarts = 0
        self._thread = threading.Thread(target=self._dispatch, name=f"etcd-watch{prefix}", daemon=True)

    @property
    def active(self) -> bool:
        return not self._cancelled.is_set()

    @property
    def restarts(self) -> int:
        """How many times the watch was re-established after an error."""
        return self._restarts

    def cancel(self, timeout: float | None = None) -> None:
        if self._cancelled.is_set():
            return
        self._cancelled.set()
        self._queue.put(None)
        self._client._cancel_watch(self, timeout)
        if threading.current_thread() is not self._thread and self._thread.is_alive():
            self._thread.join(timeout=2.0)

    def _dispatch(self) -> None:
        while True:
            first = self._queue.get()
            if first is None or self._cancelled.is_set():
                return
            batch = [first]
            stop = False
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            try:
                self._callback(batch)
            except Exception:
                log.exception("etcd watch callback for prefix %r failed", self.prefix)
            if stop or self._cancelled.is_set():
                return


    def _abandon(self) -> None:
        """Loop-side, when the client shuts down: stop dispatching and cancel the watch task."""
        self._cancelled.set()
        self._queue.put(None)
        if self._task is not None:
            self._task.cancel()


async def watch_loop(
    handle: WatchHandle,
    start_revision: int | None,
    established: concurrent.futures.Future[None],
    connect: Callable[[], Awaitable[aetcd.Client]],
    connection_failed: Callable[[aetcd.Client | None], None],
) -> None:
    """Keep ``handle``'s watch open until it is cancelled, queueing its events; ``established`` is resolved
    once the first stream is open. ``connect`` gives the connection to use, ``connection_failed`` is told of
    one that failed."""
    prefix = to_bytes(handle.prefix)
    next_revision = start_revision
    backoff = WATCH_BACKOFF_MIN
    for attempt in itertools.count():
        if handle._cancelled.is_set():
            break
        watch: Any = None
        client: aetcd.Client | None = None
        try:
            client = await connect()
            try:
                watch = await client.watch_prefix(prefix, start_revision=next_revision)
            except aetcd.RevisionCompactedError as exc:
                log.warning(
                    "etcd history of %r compacted below %d; watching from now, changes in between are lost",
                    handle.prefix,
                    exc.compacted_revision,
                )
                next_revision = None
                watch = await client.watch_prefix(prefix)
            if attempt:
                handle._restarts += 1
                log.info("etcd watch on %r re-established", handle.prefix)
            if not established.done():
                established.set_result(None)
            backoff = WATCH_BACKOFF_MIN
            async for ev in watch:
                kind: Literal["put", "delete"] = "delete" if str(ev.kind) == "DELETE" else "put"
                revision = int(ev.kv.mod_revision)
                handle._queue.put(
                    WatchEvent(kind, key_str(ev.kv.key), bytes(ev.kv.value), revision, int(ev.kv.lease))
                )
                next_revision = revision + 1
            if not handle._cancelled.is_set():
                log.warning("etcd watch stream on %r ended; re-establishing", handle.prefix)
        except asyncio.CancelledError:
            if watch is not None:
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await asyncio.wait_for(watch.cancel(), 1.0)
            raise
        except Exception as exc:
            if isinstance(exc, aetcd.ConnectionFailedError):
                connection_failed(client)
            log.warning("etcd watch on %r failed (%r); retrying in %.1fs", handle.prefix, exc, backoff)
        if handle._cancelled.is_set():
            break
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, WATCH_BACKOFF_MAX)
    if watch is not None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(watch.cancel(), 1.0)
