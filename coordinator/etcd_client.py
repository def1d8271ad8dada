"""A small synchronous etcd v3 client for the (threaded) rest of the code base, built on ``aetcd``.

``aetcd`` speaks etcd's gRPC API with ``grpc.aio`` and is asyncio-only. :class:`EtcdClient` owns one asyncio
event loop running in a daemon thread (:class:`~coordinator.etcd_connection.EtcdConnection`) and exposes
blocking methods with timeouts:

- key/value: :meth:`EtcdClient.put`, :meth:`~EtcdClient.get`, :meth:`~EtcdClient.get_prefix`,
  :meth:`~EtcdClient.delete`;
- transactions: :meth:`~EtcdClient.put_if_absent` (the key's create revision is 0) and
  :meth:`~EtcdClient.delete_if_value`;
- leases: :meth:`~EtcdClient.grant_lease` returns a :class:`~coordinator.etcd_lease.Lease` kept alive by a
  background task (one refresh every TTL/3) that reports the loss of the lease through a callback;
  :meth:`~EtcdClient.revoke`;
- watches: :meth:`~EtcdClient.watch_prefix` calls ``callback(events)`` from a thread of its own and
  re-establishes the watch after errors (with backoff), resuming after the last revision it delivered
  (``coordinator/etcd_watch.py``).

Blocking methods must not be called from the client's own loop thread (callbacks never run there). Every
failure is raised as :class:`~coordinator.etcd_errors.EtcdError` (``EtcdTimeout`` for a deadline,
``EtcdUnavailable`` when no endpoint answers). Nothing connects at import time or in the constructor: the
first call picks the first endpoint of the list that answers (``coordinator/etcd_wire.py`` dials it).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import math
import threading
from collections.abc import Sequence

import aetcd

from coordinator.etcd_connection import EtcdConnection
from coordinator.etcd_errors import EtcdTimeout
from coordinator.etcd_lease import Lease, LeaseLostCallback, keep_alive, lease_id
from coordinator.etcd_watch import WatchCallback, WatchHandle, watch_loop
from coordinator.etcd_wire import key_str, to_bytes
from coordinator.fencing import boottime
from coordinator.tls import EtcdTls

log = logging.getLogger(__name__)


class EtcdClient(EtcdConnection):
    """Blocking facade over ``aetcd``. Thread-safe; one event loop thread per client.

    Args: as :class:`~coordinator.etcd_connection.EtcdConnection` (endpoints, timeout, connect_timeout, tls).
    """

    def __init__(
        self,
        endpoints: str | Sequence[tuple[str, int]],
        *,
        timeout: float = 5.0,
        connect_timeout: float = 2.0,
        tls: EtcdTls | None = None,
    ) -> None:
        super().__init__(endpoints, timeout=timeout, connect_timeout=connect_timeout, tls=tls)
        # Loop-side state (only touched from the loop thread).
        self._leases: dict[int, Lease] = {}
        self._watches: set[WatchHandle] = set()

    # -- key/value --------------------------------------------------------------------------------

    def put(self, key: str, value: bytes | str, lease: Lease | int | None = None, timeout: float | None = None) -> None:
        k, v, lid = to_bytes(key), to_bytes(value), lease_id(lease)

        async def _put(c: aetcd.Client) -> None:
            await c.put(k, v, lease=lid)

        self._run(_put, timeout, f"put {key!r}")

    def get(self, key: str, timeout: float | None = None) -> bytes | None:
        k = to_bytes(key)

        async def _get(c: aetcd.Client) -> bytes | None:
            result = await c.get(k)
            return None if result is None else bytes(result.value)

        return self._run(_get, timeout, f"get {key!r}")

    def get_prefix(self, prefix: str, timeout: float | None = None) -> dict[str, bytes]:
        return self.get_prefix_with_revision(prefix, timeout)[0]

    def get_prefix_with_revision(self, prefix: str, timeout: float | None = None) -> tuple[dict[str, bytes], int]:
        """The keys under ``prefix`` and the store revision they were read at (to watch from ``revision + 1``)."""
        p = to_bytes(prefix)

        async def _get_prefix(c: aetcd.Client) -> tuple[dict[str, bytes], int]:
            result = await c.get_prefix(p)
            return {key_str(kv.key): bytes(kv.value) for kv in result.kvs}, int(result.header.revision)

        return self._run(_get_prefix, timeout, f"get prefix {prefix!r}")

    def delete(self, key: str, timeout: float | None = None) -> bool:
        """Delete ``key``; True if it existed."""
        k = to_bytes(key)

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
        k, v, lid = to_bytes(key), to_bytes(value), lease_id(lease)

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
        k, v = to_bytes(key), to_bytes(value)

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
        lid = lease_id(lease)

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
        lid = lease_id(lease)

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
                watch_loop(handle, start_revision, established, self._aclient, self._connection_failed),
                name=f"etcd-watch-{prefix}",
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

    # -- internals --------------------------------------------------------------------------------

    async def _shutdown(self, revoke_leases: bool, timeout: float) -> None:
        for handle in list(self._watches):
            handle._abandon()
        self._watches.clear()
        leases = list(self._leases.values())
        for lease in leases:
            await self._stop_keepalive(lease)
        client = self._client
        if revoke_leases and client is not None and leases:

            async def _revoke(lid: int) -> None:
                with contextlib.suppress(Exception):
                    await client.revoke_lease(lid)

            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout / 2):
                    await asyncio.gather(*(_revoke(lease.id) for lease in leases))
        await super()._shutdown(revoke_leases, timeout)

    async def _stop_keepalive(self, lease: Lease) -> None:
        lease._revoked = True
        self._leases.pop(lease.id, None)
        task, lease._task = lease._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _keepalive(self, lease: Lease) -> None:
        try:
            await keep_alive(lease, self._aclient, self._connection_failed)
        finally:
            if lease.lost_reason is not None:
                self._leases.pop(lease.id, None)

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
