"""A small synchronous etcd v3 client for the (threaded) rest of the code base, built on ``aetcd``.

``aetcd`` speaks etcd's gRPC API with ``grpc.aio`` and is asyncio-only. :class:`EtcdClient` owns one asyncio
event loop running in a daemon thread and exposes blocking methods with timeouts:

- key/value: :meth:`EtcdClient.put`, :meth:`~EtcdClient.get`, :meth:`~EtcdClient.get_prefix`,
  :meth:`~EtcdClient.delete`;
- transactions: :meth:`~EtcdClient.put_if_absent` (the key's create revision is 0) and
  :meth:`~EtcdClient.delete_if_value`;
- leases: :meth:`~EtcdClient.grant_lease` returns a :class:`Lease` kept alive by a background task (one refresh
  every TTL/3) that reports the loss of the lease through a callback; :meth:`~EtcdClient.revoke`;
- watches: :meth:`~EtcdClient.watch_prefix` calls ``callback(events)`` from a thread of its own and
  re-establishes the watch after errors (with backoff), resuming after the last revision it delivered.

Blocking methods must not be called from the client's own loop thread (callbacks never run there). Every
failure is raised as :class:`EtcdError` (:class:`EtcdTimeout` for a deadline, :class:`EtcdUnavailable` when no
endpoint answers). Nothing connects at import time or in the constructor: the first call picks the first
endpoint of the list that answers.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import logging
import math
import queue
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import aetcd
import grpc
from aetcd import rpc as aetcd_rpc
from aetcd import watcher as aetcd_watcher

from coordinator.fencing import boottime
from coordinator.tls import EtcdTls

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_PORT = 2379

# gRPC channel options: never use an HTTP proxy from the environment, retry a lost connection quickly (the
# default backoff grows to two minutes), and detect a dead connection under a long-lived watch stream. etcd
# refuses pings more often than every 5 s (--grpc-keepalive-min-time), so stay above that.
_CHANNEL_OPTIONS: dict[str, Any] = {
    "grpc.enable_http_proxy": 0,
    "grpc.initial_reconnect_backoff_ms": 100,
    "grpc.min_reconnect_backoff_ms": 100,
    "grpc.max_reconnect_backoff_ms": 2000,
    "grpc.keepalive_time_ms": 10_000,
    "grpc.keepalive_timeout_ms": 5_000,
    "grpc.keepalive_permit_without_calls": 0,
}

_PROBE_KEY = b"\0mishards-probe"
_WATCH_BACKOFF_MIN = 0.1
_WATCH_BACKOFF_MAX = 2.0
_KEEPALIVE_RETRY = 0.2


class EtcdError(RuntimeError):
    """An etcd request failed."""


class EtcdTimeout(EtcdError):
    """An etcd request did not complete within its timeout."""


class EtcdUnavailable(EtcdError):
    """No etcd endpoint could be reached."""


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One change seen by a watch. ``value`` is empty for deletes; ``revision`` is the change's revision."""

    kind: Literal["put", "delete"]
    key: str
    value: bytes
    revision: int
    lease: int = 0


WatchCallback = Callable[[list[WatchEvent]], None]
LeaseLostCallback = Callable[[str], None]


def parse_endpoints(endpoints: str | Sequence[tuple[str, int]]) -> tuple[tuple[str, int], ...]:
    """``"host:port[,host:port]"`` (optional ``http://``, ``[IPv6]:port``, default port 2379) -> (host, port) pairs.

    Raises:
        ValueError: if the list is empty or an item is malformed.
    """
    if not isinstance(endpoints, str):
        pairs = tuple((str(h), int(p)) for h, p in endpoints)
        if not pairs:
            raise ValueError("no etcd endpoint given")
        return pairs
    result: list[tuple[str, int]] = []
    for raw in endpoints.split(","):
        item = raw.strip()
        if not item:
            continue
        for scheme in ("http://", "https://"):
            if item.startswith(scheme):
                item = item[len(scheme) :]
        item = item.rstrip("/")
        if item.startswith("["):
            host, sep, rest = item[1:].partition("]")
            if not sep or (rest and not rest.startswith(":")):
                raise ValueError(f"invalid etcd endpoint {raw.strip()!r}")
            port_text = rest[1:]
        elif item.count(":") == 1:
            host, port_text = item.split(":")
        elif ":" not in item:
            host, port_text = item, ""
        else:
            raise ValueError(f"invalid etcd endpoint {raw.strip()!r}: write IPv6 addresses as [addr]:port")
        if not host:
            raise ValueError(f"invalid etcd endpoint {raw.strip()!r}: no host")
        if port_text:
            if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
                raise ValueError(f"invalid port in etcd endpoint {raw.strip()!r}")
            port = int(port_text)
        else:
            port = DEFAULT_PORT
        result.append((host, port))
    if not result:
        raise ValueError(f"no etcd endpoint in {endpoints!r}")
    return tuple(result)


def _b(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")


def _key_str(key: bytes) -> str:
    return key.decode("utf-8", errors="surrogateescape")


def _lease_id(lease: Lease | int | None) -> int:
    if lease is None:
        return 0
    return lease.id if isinstance(lease, Lease) else int(lease)


class Lease:
    """A granted etcd lease; kept alive in the background unless granted with ``keepalive=False``.

    ``ttl`` is the TTL etcd granted (it rounds small values up: etcd 3.4 grants at least 2 s on a default
    single-member cluster). ``lost_reason`` is set once the lease is known or presumed gone: a refresh
    reported it expired, or no refresh succeeded within one TTL of the last successful one. The ``on_lost``
    callback then runs once, in a thread of its own. Revoking through :meth:`revoke` does not count as lost.
    """

    def __init__(self, client: EtcdClient, lease_id: int, ttl: int, on_lost: LeaseLostCallback | None) -> None:
        self.id = lease_id
        self.ttl = ttl
        self._client = client
        self._on_lost = on_lost
        self._task: asyncio.Task[None] | None = None
        self._revoked = False
        self._lost_reason: str | None = None
        # Boot-time instant until which the lease provably lives: when its last successful grant or refresh
        # was *sent*, plus the TTL etcd answered (etcd stamped its expiry later than that).
        self.valid_until = 0.0

    @property
    def alive(self) -> bool:
        """False once the lease was revoked or lost (as far as this process knows)."""
        return not self._revoked and self._lost_reason is None

    @property
    def lost_reason(self) -> str | None:
        return self._lost_reason

    def revoke(self, timeout: float | None = None) -> None:
        self._client.revoke(self, timeout=timeout)

    def __repr__(self) -> str:
        state = "revoked" if self._revoked else (f"lost: {self._lost_reason}" if self._lost_reason else "alive")
        return f"Lease(id={self.id:x}, ttl={self.ttl}, {state})"

    # -- loop-side ------------------------------------------------------------------------------

    def _mark_lost(self, reason: str) -> None:
        if self._revoked or self._lost_reason is not None:
            return
        self._lost_reason = reason
        log.warning("etcd lease %x lost: %s", self.id, reason)
        callback = self._on_lost
        if callback is not None:

            def _notify() -> None:
                try:
                    callback(reason)
                except Exception:
                    log.exception("lease-lost callback of lease %x failed", self.id)

            threading.Thread(target=_notify, name=f"etcd-lease-lost-{self.id:x}", daemon=True).start()


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


class _TlsClient(aetcd.Client):
    """``aetcd.Client`` over a TLS channel (aetcd itself dials plaintext only): the same stubs and watcher,
    on ``grpc.aio.secure_channel``."""

    def __init__(self, host: str, port: int, tls: EtcdTls, **kwargs: Any) -> None:
        super().__init__(host=host, port=port, **kwargs)
        self._tls = tls

    async def connect(self) -> None:
        if self._connected.is_set():
            return
        if self._is_connecting:  # type: ignore[has-type]  # (aetcd is untyped)
            await asyncio.wait_for(self._connected.wait(), self._connect_wait_timeout)
            return
        self._is_connecting = True
        try:
            options = {**self._options, **self._tls.channel_options()}
            self.channel = grpc.aio.secure_channel(f"{self._host}:{self._port}", self._tls.credentials(),
                                                   options=list(options.items()))
            self.kvstub = aetcd_rpc.KVStub(self.channel)
            self.clusterstub = aetcd_rpc.ClusterStub(self.channel)
            self.leasestub = aetcd_rpc.LeaseStub(self.channel)
            self.maintenancestub = aetcd_rpc.MaintenanceStub(self.channel)
            self._watcher = aetcd_watcher.Watcher(aetcd_rpc.WatchStub(self.channel), timeout=self._timeout,
                                                  metadata=self.metadata)
            self._connected.set()
        finally:
            self._is_connecting = False


class EtcdClient:
    """Blocking facade over ``aetcd``. Thread-safe; one event loop thread per client.

    Args:
        endpoints: ``"host:port[,host:port]"`` or (host, port) pairs; the first one that answers is used, and
            with several endpoints an unreachable one is replaced by the next reachable one.
        timeout: default timeout in seconds of every blocking call (each takes its own ``timeout`` too).
        connect_timeout: how long to try one endpoint when picking one.
        tls: TLS to etcd (CA, optional client certificate; files read again at each new connection), None for
            plaintext.
    """

    def __init__(
        self,
        endpoints: str | Sequence[tuple[str, int]],
        *,
        timeout: float = 5.0,
        connect_timeout: float = 2.0,
        tls: EtcdTls | None = None,
    ) -> None:
        self.endpoints = parse_endpoints(endpoints)
        self.tls = tls
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closed = False
        # Loop-side state (only touched from the loop thread).
        self._client: aetcd.Client | None = None
        self._endpoint: tuple[str, int] | None = None
        self._select_lock: asyncio.Lock | None = None
        self._leases: dict[int, Lease] = {}
        self._watches: set[WatchHandle] = set()

    def _new_client(self, host: str, port: int) -> aetcd.Client:
        if self.tls is None:
            return aetcd.Client(host=host, port=port, timeout=self.timeout, options=dict(_CHANNEL_OPTIONS))
        return _TlsClient(host, port, self.tls, timeout=self.timeout, options=dict(_CHANNEL_OPTIONS))

    # -- lifecycle --------------------------------------------------------------------------------

    @property
    def endpoint(self) -> str | None:
        """The endpoint in use (``host:port``), or None before the first request."""
        ep = self._endpoint
        return f"{ep[0]}:{ep[1]}" if ep else None

    @property
    def closed(self) -> bool:
        return self._closed

    def connect(self, timeout: float | None = None) -> str:
        """Pick an endpoint now (instead of on the first request) and return it."""

        async def _connect(_client: aetcd.Client) -> str:
            ep = self._endpoint
            assert ep is not None
            return f"{ep[0]}:{ep[1]}"

        return self._run(_connect, timeout, "connect")

    def close(self, *, revoke_leases: bool = True, timeout: float = 2.0) -> None:
        """Stop watches and keepalives, revoke leases (unless told not to), close the connection and the loop.

        With ``revoke_leases=False`` the leases simply stop being refreshed and expire on their TTL, as if
        the process had died. Idempotent.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if threading.current_thread() is thread:
            raise RuntimeError("EtcdClient.close() cannot be called from the client's event loop")
        fut = asyncio.run_coroutine_threadsafe(self._shutdown(revoke_leases, timeout), loop)
        try:
            fut.result(timeout + 1.0)
        except Exception as exc:
            log.warning("etcd client shutdown was not clean: %r", exc)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=timeout + 1.0)
        if thread.is_alive():
            log.warning("etcd client loop thread did not stop within %.1fs", timeout + 1.0)
        log.debug("etcd client for %s closed", self.endpoints)

    def __enter__(self) -> EtcdClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- key/value --------------------------------------------------------------------------------

    def put(self, key: str, value: bytes | str, lease: Lease | int | None = None, timeout: float | None = None) -> None:
        k, v, lid = _b(key), _b(value), _lease_id(lease)

        async def _put(c: aetcd.Client) -> None:
            await c.put(k, v, lease=lid)

        self._run(_put, timeout, f"put {key!r}")

    def get(self, key: str, timeout: float | None = None) -> bytes | None:
        k = _b(key)

        async def _get(c: aetcd.Client) -> bytes | None:
            result = await c.get(k)
            return None if result is None else bytes(result.value)

        return self._run(_get, timeout, f"get {key!r}")

    def get_prefix(self, prefix: str, timeout: float | None = None) -> dict[str, bytes]:
        return self.get_prefix_with_revision(prefix, timeout)[0]

    def get_prefix_with_revision(self, prefix: str, timeout: float | None = None) -> tuple[dict[str, bytes], int]:
        """The keys under ``prefix`` and the store revision they were read at (to watch from ``revision + 1``)."""
        p = _b(prefix)

        async def _get_prefix(c: aetcd.Client) -> tuple[dict[str, bytes], int]:
            result = await c.get_prefix(p)
            return {_key_str(kv.key): bytes(kv.value) for kv in result.kvs}, int(result.header.revision)

        return self._run(_get_prefix, timeout, f"get prefix {prefix!r}")

    def delete(self, key: str, timeout: float | None = None) -> bool:
        """Delete ``key``; True if it existed."""
        k = _b(key)

        async def _delete(c: aetcd.Client) -> bool:
            return await c.delete(k) is not None

        return self._run(_delete, timeout, f"delete {key!r}")

    def put_if_absent(
        self, key: str, value: bytes | str, lease: Lease | int | None = None, timeout: float | None = None
    ) -> bool:
        """Create ``key`` only if it does not exist (create revision 0), atomically. True if created."""
        return self.put_if_absent_revision(key, value, lease, timeout) is not None

    def put_if_absent_revision(
        self, key: str, value: bytes | str, lease: Lease | int | None = None, timeout: float | None = None
    ) -> int | None:
        """Like :meth:`put_if_absent`, returning the revision of the put, or None if the key existed."""
        k, v, lid = _b(key), _b(value), _lease_id(lease)

        async def _txn(c: aetcd.Client) -> int | None:
            ok, responses = await c.transaction(
                compare=[c.transactions.create(k) == 0],
                success=[c.transactions.put(k, v, lease=lid)],
                failure=[],
            )
            if not ok:
                return None
            revision = int(responses[0].response_put.header.revision) if responses else 0
            if revision <= 0:  # not filled in by this server: read it back
                current = await c.get(k)
                revision = int(current.mod_revision) if current is not None else 0
            return revision

        return self._run(_txn, timeout, f"put-if-absent {key!r}")

    def delete_if_value(self, key: str, value: bytes | str, timeout: float | None = None) -> bool:
        """Delete ``key`` only if its value is exactly ``value``, atomically. True if deleted."""
        k, v = _b(key), _b(value)

        async def _txn(c: aetcd.Client) -> bool:
            ok, _ = await c.transaction(
                compare=[c.transactions.value(k) == v],
                success=[c.transactions.delete(k)],
                failure=[],
            )
            return bool(ok)

        return self._run(_txn, timeout, f"delete-if-value {key!r}")

    # -- leases -----------------------------------------------------------------------------------

    def grant_lease(
        self,
        ttl: float,
        on_lost: LeaseLostCallback | None = None,
        *,
        keepalive: bool = True,
        timeout: float | None = None,
    ) -> Lease:
        """Grant a lease of ``ttl`` seconds (rounded up to whole seconds) and keep it alive in the background."""
        seconds = max(1, math.ceil(ttl))

        async def _grant(c: aetcd.Client) -> Lease:
            sent = boottime()
            granted = await c.lease(seconds)
            lease = Lease(self, int(granted.id), int(granted.ttl), on_lost)
            lease.valid_until = sent + lease.ttl
            self._leases[lease.id] = lease
            if keepalive:
                lease._task = asyncio.get_running_loop().create_task(
                    self._keepalive(lease), name=f"etcd-keepalive-{lease.id:x}"
                )
            log.debug("granted etcd lease %x (ttl %ds, asked %.1fs)", lease.id, lease.ttl, ttl)
            return lease

        return self._run(_grant, timeout, f"grant lease (ttl {ttl})")

    def revoke(self, lease: Lease | int, timeout: float | None = None) -> None:
        """Stop refreshing the lease (if this client keeps it alive) and revoke it, deleting its keys.

        A lease that is already gone is not an error. A lease of another client (or process) can be revoked by
        its id; its owner then learns from its next refresh that the lease is lost.
        """
        lid = _lease_id(lease)

        async def _revoke(c: aetcd.Client) -> None:
            own = self._leases.get(lid)
            if own is not None:
                await self._stop_keepalive(own)
            elif isinstance(lease, Lease) and lease._client is self:
                lease._revoked = True
            try:
                await c.revoke_lease(lid)
            except aetcd.ClientError as exc:
                if "not found" not in str(exc):
                    raise
            log.debug("revoked etcd lease %x", lid)

        self._run(_revoke, timeout, f"revoke lease {lid:x}")

    def lease_remaining(self, lease: Lease | int, timeout: float | None = None) -> int:
        """The lease's remaining TTL in seconds as etcd sees it (-1 if it does not exist)."""
        lid = _lease_id(lease)

        async def _ttl(c: aetcd.Client) -> int:
            info = await c.get_lease_info(lid, keys=False)
            return int(info.TTL)

        return self._run(_ttl, timeout, f"lease {lid:x} TTL")

    # -- watches ----------------------------------------------------------------------------------

    def watch_prefix(
        self,
        prefix: str,
        callback: WatchCallback,
        *,
        start_revision: int | None = None,
        timeout: float | None = None,
    ) -> WatchHandle:
        """Watch every key under ``prefix``; ``callback(events)`` runs in the watch's own thread.

        Returns once the watch is established (so every later change is delivered). Events arrive in
        revision order, batched when several are pending. After a stream error the watch is re-created
        from the revision after the last delivered event; if etcd compacted that history, it restarts from
        the current revision and logs a warning (events in between are lost).

        Raises:
            EtcdError: if the watch could not be established within ``timeout``.
        """
        handle = WatchHandle(self, prefix, callback)
        limit = self.timeout if timeout is None else timeout
        established: concurrent.futures.Future[None] = concurrent.futures.Future()

        async def _start(_c: aetcd.Client) -> None:
            self._watches.add(handle)
            handle._task = asyncio.get_running_loop().create_task(
                self._watch_loop(handle, start_revision, established), name=f"etcd-watch-{prefix}"
            )

        self._run(_start, timeout, f"watch {prefix!r}")
        handle._thread.start()
        try:
            established.result(limit)
        except concurrent.futures.TimeoutError:
            handle.cancel()
            raise EtcdTimeout(f"watch on {prefix!r} was not established within {limit:.1f}s") from None
        except BaseException:
            handle.cancel()
            raise
        return handle

    # -- internals: running coroutines --------------------------------------------------------------

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._closed:
                raise EtcdError("etcd client is closed")
            if self._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def _run_loop() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    try:
                        loop.run_forever()
                    finally:
                        try:
                            loop.run_until_complete(loop.shutdown_asyncgens())
                        finally:
                            loop.close()

                thread = threading.Thread(target=_run_loop, name="etcd-client-loop", daemon=True)
                thread.start()
                ready.wait()
                self._loop, self._thread = loop, thread
            return self._loop

    def _run(self, fn: Callable[[aetcd.Client], Awaitable[T]], timeout: float | None, what: str) -> T:
        loop = self._ensure_loop()
        if threading.current_thread() is self._thread:
            raise RuntimeError("blocking EtcdClient methods cannot be called from the client's event loop")
        limit = self.timeout if timeout is None else timeout
        fut = asyncio.run_coroutine_threadsafe(self._call(fn, limit, what), loop)
        try:
            return fut.result(limit + 1.0)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise EtcdTimeout(f"etcd {what} timed out after {limit:.1f}s") from None
        except concurrent.futures.CancelledError:
            raise EtcdError(f"etcd {what} was cancelled (client closing)") from None

    async def _call(self, fn: Callable[[aetcd.Client], Awaitable[T]], timeout: float, what: str) -> T:
        client: aetcd.Client | None = None
        try:
            async with asyncio.timeout(timeout):
                client = await self._aclient()
                return await fn(client)
        except TimeoutError:
            raise EtcdTimeout(f"etcd {what} timed out after {timeout:.1f}s") from None
        except EtcdError:
            raise
        except aetcd.ConnectionTimeoutError as exc:
            raise EtcdTimeout(f"etcd {what} timed out: {exc}") from exc
        except aetcd.ConnectionFailedError as exc:
            self._connection_failed(client)
            raise EtcdUnavailable(f"etcd {what} failed, {self.endpoint or self.endpoints} unreachable: {exc}") from exc
        except aetcd.ClientError as exc:
            raise EtcdError(f"etcd {what} failed: {exc}") from exc
        except Exception as exc:  # grpc.aio usage errors when a channel closes under a call, and the like
            raise EtcdError(f"etcd {what} failed: {exc!r}") from exc

    async def _aclient(self) -> aetcd.Client:
        if self._client is not None:
            return self._client
        if self._select_lock is None:
            self._select_lock = asyncio.Lock()
        async with self._select_lock:
            if self._client is not None:
                return self._client
            errors: list[str] = []
            for host, port in self.endpoints:
                client = self._new_client(host, port)
                try:
                    await asyncio.wait_for(client.get(_PROBE_KEY), self.connect_timeout)
                except Exception as exc:
                    errors.append(f"{host}:{port}: {exc!r}")
                    with contextlib.suppress(Exception):
                        await client.close()
                    continue
                self._client, self._endpoint = client, (host, port)
                log.info("etcd client connected to %s:%d", host, port)
                return client
            raise EtcdUnavailable("no etcd endpoint reachable: " + "; ".join(errors))

    def _connection_failed(self, client: aetcd.Client | None) -> None:
        """With several endpoints, drop a connection that failed so the next call picks a reachable one."""
        if client is None or client is not self._client or len(self.endpoints) < 2:
            return
        log.warning("etcd endpoint %s unreachable; switching to another endpoint", self.endpoint)
        self._client = None
        asyncio.get_running_loop().create_task(self._close_quietly(client))

    @staticmethod
    async def _close_quietly(client: aetcd.Client) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.close(), 2.0)

    async def _shutdown(self, revoke_leases: bool, timeout: float) -> None:
        for handle in list(self._watches):
            handle._cancelled.set()
            handle._queue.put(None)
            if handle._task is not None:
                handle._task.cancel()
        self._watches.clear()
        leases = list(self._leases.values())
        for lease in leases:
            await self._stop_keepalive(lease)
        client = self._client
        if revoke_leases and client is not None and leases:

            async def _revoke(lease_id: int) -> None:
                with contextlib.suppress(Exception):
                    await client.revoke_lease(lease_id)

            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout / 2):
                    await asyncio.gather(*(_revoke(lease.id) for lease in leases))
        self._client = None
        if client is not None:
            with contextlib.suppress(Exception, TimeoutError):
                await asyncio.wait_for(client.close(), timeout / 2)
        current = asyncio.current_task()
        rest = [t for t in asyncio.all_tasks() if t is not current]
        for task in rest:
            task.cancel()
        if rest:
            await asyncio.gather(*rest, return_exceptions=True)

    # -- internals: leases -----------------------------------------------------------------------

    async def _stop_keepalive(self, lease: Lease) -> None:
        lease._revoked = True
        self._leases.pop(lease.id, None)
        task, lease._task = lease._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _keepalive(self, lease: Lease) -> None:
        """Refresh every TTL/3. Lost when etcd says so, or when no refresh succeeded within one TTL."""
        interval = max(lease.ttl / 3.0, 0.1)
        # The lease lives at least until ``valid_until`` (measured from when a successful refresh was sent).
        valid_until = time.monotonic() + lease.ttl
        next_refresh = time.monotonic() + interval
        failures = 0
        client: aetcd.Client | None = None
        try:
            while not lease._revoked:
                now = time.monotonic()
                if now >= valid_until:
                    lease._mark_lost(f"no successful refresh within the {lease.ttl}s TTL")
                    return
                await asyncio.sleep(max(0.0, min(next_refresh, valid_until) - now))
                if time.monotonic() < next_refresh:
                    continue
                sent = time.monotonic()
                sent_boot = boottime()
                try:
                    async with asyncio.timeout(max(0.05, min(interval, valid_until - sent))):
                        client = await self._aclient()
                        reply = await client.refresh_lease(lease.id)
                except Exception as exc:
                    if isinstance(exc, aetcd.ConnectionFailedError):
                        self._connection_failed(client)
                    failures += 1
                    log.log(
                        logging.WARNING if failures == 1 else logging.DEBUG,
                        "refresh of etcd lease %x failed (%d in a row): %r",
                        lease.id,
                        failures,
                        exc,
                    )
                    next_refresh = time.monotonic() + min(_KEEPALIVE_RETRY, interval)
                    continue
                if lease._revoked:
                    return
                remaining = int(reply.TTL) if reply is not None else 0
                if remaining <= 0:
                    lease._mark_lost("etcd reports the lease expired")
                    return
                if failures:
                    log.info("refresh of etcd lease %x succeeded again after %d failures", lease.id, failures)
                failures = 0
                valid_until = sent + remaining
                lease.valid_until = sent_boot + remaining
                next_refresh = sent + interval
        except asyncio.CancelledError:
            return
        finally:
            if lease._lost_reason is not None:
                self._leases.pop(lease.id, None)

    # -- internals: watches ----------------------------------------------------------------------

    def _cancel_watch(self, handle: WatchHandle, timeout: float | None) -> None:
        loop = self._loop
        if loop is None or self._closed or threading.current_thread() is self._thread:
            return

        async def _cancel() -> None:
            self._watches.discard(handle)
            task = handle._task
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

        fut = asyncio.run_coroutine_threadsafe(_cancel(), loop)
        with contextlib.suppress(Exception):
            fut.result(self.timeout if timeout is None else timeout)

    async def _watch_loop(
        self, handle: WatchHandle, start_revision: int | None, established: concurrent.futures.Future[None]
    ) -> None:
        prefix = _b(handle.prefix)
        next_revision = start_revision
        backoff = _WATCH_BACKOFF_MIN
        for attempt in itertools.count():
            if handle._cancelled.is_set():
                break
            watch: Any = None
            client: aetcd.Client | None = None
            try:
                client = await self._aclient()
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
                backoff = _WATCH_BACKOFF_MIN
                async for ev in watch:
                    kind: Literal["put", "delete"] = "delete" if str(ev.kind) == "DELETE" else "put"
                    revision = int(ev.kv.mod_revision)
                    handle._queue.put(
                        WatchEvent(kind, _key_str(ev.kv.key), bytes(ev.kv.value), revision, int(ev.kv.lease))
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
                    self._connection_failed(client)
                log.warning("etcd watch on %r failed (%r); retrying in %.1fs", handle.prefix, exc, backoff)
            if handle._cancelled.is_set():
                break
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _WATCH_BACKOFF_MAX)
        if watch is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(watch.cancel(), 1.0)
