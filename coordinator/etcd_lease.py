"""etcd leases: :class:`Lease`, a lease granted by :class:`~coordinator.etcd_client.EtcdClient`, and
:func:`keep_alive`, the loop-side task that refreshes it every TTL/3 and declares it lost when etcd says it
expired or when no refresh succeeded within one TTL.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import aetcd

from coordinator.fencing import boottime

if TYPE_CHECKING:
    from coordinator.etcd_client import EtcdClient

log = logging.getLogger(__name__)

KEEPALIVE_RETRY = 0.2

LeaseLostCallback = Callable[[str], None]


def lease_id(lease: Lease | int | None) -> int:
    """The id of a lease given as a :class:`Lease` or an id (0 for none)."""
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


async def keep_alive(
    lease: Lease,
    connect: Callable[[], Awaitable[aetcd.Client]],
    connection_failed: Callable[[aetcd.Client | None], None],
) -> None:
    """Refresh ``lease`` every TTL/3 until it is revoked or lost: lost when etcd says so, or when no refresh
    succeeded within one TTL. ``connect`` gives the connection to use, ``connection_failed`` is told of one
    that failed (so that the next call picks another endpoint)."""
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
                    client = await connect()
                    reply = await client.refresh_lease(lease.id)
            except Exception as exc:
                if isinstance(exc, aetcd.ConnectionFailedError):
                    connection_failed(client)
                failures += 1
                log.log(
                    logging.WARNING if failures == 1 else logging.DEBUG,
                    "refresh of etcd lease %x failed (%d in a row): %r",
                    lease.id,
                    failures,
                    exc,
                )
                next_refresh = time.monotonic() + min(KEEPALIVE_RETRY, interval)
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
