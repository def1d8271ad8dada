"""Election of the cluster's single writer through etcd.

Every ``rw`` node runs a :class:`WriterElection`. Candidates campaign for the key ``<prefix>/writer``: the one
that creates it (a transaction that succeeds only while the key does not exist) under a lease of its own is
the writer; its value is JSON ``{"node_id", "address", "elected_at"}``. The others watch the key and try again
as soon as it is deleted, which happens when the writer resigns or stops, or when its lease expires because
the process died or lost etcd. The key's name and value, and what a change of it means for its holder, are in
:mod:`coordinator.writer_key`.

On winning, the optional ``claim`` callable runs first (a node passes ``lambda: catalog.claim_writer(node_id)``,
which bumps the writer epoch in the catalog and so fences every earlier writer), its result is kept as
:attr:`WriterElection.epoch`, then ``on_elected`` runs. When the lease is lost (no successful keepalive within
one TTL, or etcd reports it expired), when the key is deleted or taken over, or on :meth:`resign`,
``on_deposed`` runs and the candidate campaigns again unless stopped. etcd is only the fast path: safety comes
from the catalog epoch, which refuses a deposed writer's writes even if it has not noticed yet.

Callbacks run in the election's thread (``on_deposed`` for :meth:`resign` in the caller's thread) and may take
time (a new writer replays its WAL in ``on_elected``). ``on_deposed`` runs before the key is released, so the
old writer stops before a standby can start. A callback may call :meth:`stop` or :meth:`resign`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from coordinator.etcd_client import EtcdClient
from coordinator.etcd_errors import EtcdError
from coordinator.etcd_lease import Lease
from coordinator.etcd_watch import WatchEvent, WatchHandle
from coordinator.writer_key import (
    Held,
    depose_reason,
    key_lost_by,
    parse_writer,
    read_back_reason,
    writer_key,
    writer_value,
)

log = logging.getLogger(__name__)


class WriterElection:
    """Campaign for ``<prefix>/writer`` in background threads; see the module docstring.

    Args:
        client: the etcd client (not closed by the election).
        prefix: the cluster's key prefix, e.g. ``/mishards``.
        candidate_id: this node's id (``node_id`` in the key's value).
        address: this node's ``host:port`` (``address`` in the key's value).
        ttl: lease TTL in seconds; etcd rounds it up to whole seconds (at least 2 s on a default etcd).
        on_elected: called after winning (and after ``claim``).
        on_deposed: called after losing the writer role, unless the win was never completed.
        claim: called on winning, before ``on_elected``; returns the new writer epoch. If it raises, the
            candidate gives the key up and campaigns again after ``retry_interval``.
        retry_interval: how long a standby waits between campaign attempts when it sees no change
            (a deletion of the key wakes it at once); defaults to ``ttl``.
        resign_holdoff: after :meth:`resign`, do not campaign for this long (so that a standby can take over);
            defaults to ``ttl``.
    """

    def __init__(
        self,
        client: EtcdClient,
        prefix: str,
        candidate_id: str,
        address: str,
        ttl: float = 5.0,
        on_elected: Callable[[], None] | None = None,
        on_deposed: Callable[[], None] | None = None,
        claim: Callable[[], int] | None = None,
        *,
        retry_interval: float | None = None,
        resign_holdoff: float | None = None,
    ) -> None:
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        self.client = client
        self.prefix = prefix
        self.key = writer_key(prefix)
        self.candidate_id = candidate_id
        self.address = address
        self.ttl = ttl
        self._on_elected = on_elected
        self._on_deposed = on_deposed
        self._claim = claim
        self._retry_interval = ttl if retry_interval is None else retry_interval
        self._resign_holdoff = ttl if resign_holdoff is None else resign_holdoff
        # Short per-request timeouts keep stop() prompt even when etcd hangs.
        self._op_timeout = max(1.0, min(client.timeout, ttl / 2))

        self._lock = threading.RLock()  # serialises winning, deposing and resigning
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._watch: WatchHandle | None = None
        self._started = False

        # Leadership state. ``_held`` is (value, revision of our put) while we hold the key; it is replaced
        # as a whole so that the watch thread reads a consistent pair without the lock.
        self._lease: Lease | None = None
        self._held: Held | None = None
        self._leader = False
        self._key_lost: tuple[int, str] | None = None  # (revision of the put it concerns, why)
        self._holdoff_until = 0.0
        self._epoch: int | None = None
        self._terms = 0

    # -- public API -------------------------------------------------------------------------------

    @property
    def is_leader(self) -> bool:
        """True while this candidate is the elected writer (claim done, not yet deposed)."""
        return self._leader

    @property
    def epoch(self) -> int | None:
        """The epoch returned by ``claim`` on the latest win (None if never won or no ``claim``)."""
        return self._epoch

    @property
    def terms(self) -> int:
        """How many times this candidate has won."""
        return self._terms

    def valid_until(self) -> float:
        """The boot-time instant until which this candidate provably holds the writer key (0: it does not):
        its lease's last successful grant or refresh was sent then minus the TTL. For the writer's fence."""
        lease, held = self._lease, self._held
        if lease is None or held is None or not lease.alive:
            return 0.0
        return lease.valid_until

    def start(self) -> None:
        """Start campaigning in a background thread. Idempotent; an election cannot restart once stopped."""
        with self._lock:
            if self._started:
                return
            self._started = True
            self._thread = threading.Thread(target=self._run, name=f"writer-election-{self.candidate_id}", daemon=True)
            self._thread.start()
        log.info("candidate %s (%s) campaigning for %s", self.candidate_id, self.address, self.key)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop campaigning; if leader, give the key up (delete it, revoke the lease) and call ``on_deposed``.

        Idempotent. Normally returns at once; if etcd hangs, after at most ``timeout`` seconds (the thread then
        finishes in the background and calls ``on_deposed`` then, if this candidate was the writer).
        """
        # No lock here: a long on_elected callback holds it, and stop() must not wait for that.
        if self._stop.is_set():
            return
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.warning("writer election thread of %s did not stop within %.1fs", self.candidate_id, timeout)
        log.info("candidate %s stopped campaigning", self.candidate_id)

    def resign(self) -> bool:
        """Give up the writer role if held: delete the key only if it still holds our value, revoke the lease,
        call ``on_deposed``. The candidate campaigns again after ``resign_holdoff`` unless stopped.

        Returns True if this candidate was the writer.
        """
        with self._lock:
            if not self._leader and self._held is None:
                return False
            was_leader = self._leader
            self._give_up("resigned")
            self._holdoff_until = time.monotonic() + self._resign_holdoff
        self._wake.set()
        return was_leader

    def current_writer(self, timeout: float | None = None) -> dict[str, Any] | None:
        """The writer key's value (``node_id``, ``address``, ``elected_at``), or None if there is no writer."""
        return parse_writer(self.client.get(self.key, timeout=timeout))

    def wait_elected(self, timeout: float) -> bool:
        """Block until this candidate is the writer (True) or ``timeout`` passes (False). For tests and tools."""
        deadline = time.monotonic() + timeout
        while not self._leader:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._stop.is_set():
                return self._leader
            time.sleep(min(0.02, remaining))
        return True

    # -- the campaign thread -------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._establish_watch()
            while not self._stop.is_set():
                try:
                    if self._leader:
                        self._check_leadership()
                    else:
                        self._campaign_once()
                except Exception:
                    log.exception("writer election step of %s failed; retrying", self.candidate_id)
                    self._stop.wait(min(self._retry_interval, 1.0))
        finally:
            with self._lock:
                if self._leader or self._held is not None:
                    self._give_up("stopped")
            watch, self._watch = self._watch, None
            if watch is not None:
                watch.cancel(timeout=1.0)

    def _establish_watch(self) -> None:
        backoff = 0.1
        while not self._stop.is_set():
            try:
                self._watch = self.client.watch_prefix(self.key, self._on_events, timeout=self._op_timeout)
                return
            except EtcdError as exc:
                log.warning("cannot watch %s yet (%s); retrying in %.1fs", self.key, exc, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 2.0)

    def _wait(self, seconds: float) -> None:
        """Sleep until woken (a change of the key, a lost lease, resign, stop) or ``seconds`` pass."""
        if seconds > 0:
            self._wake.wait(seconds)
        self._wake.clear()

    def _campaign_once(self) -> None:
        holdoff = self._holdoff_until - time.monotonic()
        if holdoff > 0:
            self._wait(holdoff)
            return
        try:
            holder = self.current_writer(timeout=self._op_timeout)
        except EtcdError as exc:
            log.warning("candidate %s cannot read %s: %s", self.candidate_id, self.key, exc)
            self._wait(min(self._retry_interval, 1.0))
            return
        if holder is not None:
            self._wait(self._retry_interval)
            return
        if self._stop.is_set():
            return
        self._try_to_win()

    def _try_to_win(self) -> None:
        value = writer_value(self.candidate_id, self.address, time.time())
        lease: Lease | None = None
        try:
            lease = self.client.grant_lease(self.ttl, on_lost=self._on_lease_lost, timeout=self._op_timeout)
            self._lease = lease
            revision = self.client.put_if_absent_revision(self.key, value, lease, timeout=self._op_timeout)
        except EtcdError as exc:
            log.warning("candidate %s could not campaign: %s", self.candidate_id, exc)
            self._drop_lease(lease)
            self._wait(min(self._retry_interval, 1.0))
            return
        if revision is None:
            log.debug("candidate %s lost the race for %s", self.candidate_id, self.key)
            self._drop_lease(lease)
            return
        with self._lock:
            if self._stop.is_set() or not lease.alive:
                # Stopped, or the lease was lost while we were winning: undo.
                self._held = (value, revision)
                self._give_up("stopped while winning" if self._stop.is_set() else "lease lost while winning")
                return
            self._held = (value, revision)
            log.info(
                "candidate %s won the writer election (%s, revision %d, lease %x, ttl %ds)",
                self.candidate_id,
                self.key,
                revision,
                lease.id,
                lease.ttl,
            )
            if self._claim is not None:
                try:
                    self._epoch = self._claim()
                except Exception:
                    log.exception("candidate %s won but could not claim the writer epoch; giving up", self.candidate_id)
                    self._give_up("claim failed")
                    self._holdoff_until = time.monotonic() + self._retry_interval
                    return
                log.info("candidate %s is the writer with epoch %d", self.candidate_id, self._epoch)
            self._leader = True
            self._terms += 1
            if self._on_elected is not None:
                try:
                    self._on_elected()
                except Exception:
                    log.exception("on_elected callback of %s failed", self.candidate_id)

    def _check_leadership(self) -> None:
        reason = self._depose_reason()
        if reason is None:
            self._wait(self._retry_interval)
            reason = self._depose_reason()
            if reason is None and self._leader and not self._stop.is_set():
                reason = self._verify_key()
        if reason is not None:
            with self._lock:
                if self._leader:
                    self._give_up(reason)

    def _depose_reason(self) -> str | None:
        return depose_reason(self._lease, self._held, self._key_lost)

    def _verify_key(self) -> str | None:
        """Read the key as a safety net for missed watch events; a read error proves nothing."""
        held = self._held
        if held is None:
            return None
        try:
            raw = self.client.get(self.key, timeout=self._op_timeout)
        except EtcdError:
            return None
        return read_back_reason(raw, held)

    def _give_up(self, reason: str) -> None:
        """Leave the writer role (called with the lock held): notify, then delete our key and revoke the lease."""
        held, lease, was_leader = self._held, self._lease, self._leader
        self._leader = False
        self._held = None
        self._lease = None
        self._key_lost = None
        if was_leader:
            log.warning("candidate %s is no longer the writer: %s", self.candidate_id, reason)
            # Stop writing first, then let the others in: etcd may be slow or unreachable right now.
            if self._on_deposed is not None:
                try:
                    self._on_deposed()
                except Exception:
                    log.exception("on_deposed callback of %s failed", self.candidate_id)
        if held is not None:
            try:
                self.client.delete_if_value(self.key, held[0], timeout=self._cleanup_timeout())
            except EtcdError as exc:
                log.warning("could not delete %s (it expires with the lease): %s", self.key, exc)
        self._drop_lease(lease)

    def _cleanup_timeout(self) -> float:
        return min(self._op_timeout, 0.5) if self._stop.is_set() else self._op_timeout

    def _drop_lease(self, lease: Lease | None) -> None:
        if lease is None:
            return
        if self._lease is lease:
            self._lease = None
        try:
            self.client.revoke(lease, timeout=self._cleanup_timeout())
        except EtcdError as exc:
            log.debug("could not revoke lease %x (it expires on its own): %s", lease.id, exc)

    # -- callbacks from other threads ------------------------------------------------------------

    def _on_lease_lost(self, reason: str) -> None:
        # _check_leadership sees that the lease is no longer alive; just wake it.
        log.debug("lease of candidate %s lost: %s", self.candidate_id, reason)
        self._wake.set()

    def _on_events(self, events: list[WatchEvent]) -> None:
        held = self._held
        reason = key_lost_by(events, self.key, held)
        if reason is not None and held is not None:
            self._key_lost = (held[1], reason)
        self._wake.set()
