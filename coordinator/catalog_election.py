"""Writer election through the catalog, for clusters without etcd (``election: catalog``).

Every ``rw`` node is a candidate. The writer holds a lease row in the catalog (``writer_lease``) stamped with
the database's clock and renews it every TTL/3; a standby takes it only once it has expired on that same
clock, then claims the writer epoch (which fences every earlier writer in the catalog) and replays the log.

The holder counts its lease as valid until the moment it *sent* its last successful renewal plus the TTL:
the database stamped the expiry later than that, so the holder's own deadline always comes first. Missing
it (the catalog unreachable for a TTL) or finding the lease taken over deposes the holder, which then stops
(fail-stop, as with etcd): it must not acknowledge a write its successor would not replay.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable

from coordinator.catalog import Catalog
from coordinator.errors import MetaFailed
from coordinator.fencing import boottime

log = logging.getLogger(__name__)


class CatalogElection:
    def __init__(self, catalog: Catalog, candidate_id: str, address: str, ttl: float,
                 claim: Callable[[], int], on_deposed: Callable[[str], None],
                 clock: Callable[[], float] = boottime) -> None:
        if ttl <= 0:
            raise ValueError("ttl must be > 0")
        self.catalog = catalog
        self.candidate_id = candidate_id
        self.address = address
        self.ttl = ttl
        self.interval = max(ttl / 3.0, 0.05)  # between renewals (and between attempts to win)
        self.claim = claim
        self.on_deposed = on_deposed
        self.clock = clock
        self.epoch: int | None = None
        self._leader = False
        self._valid_until = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="catalog-election", daemon=True)

    @property
    def is_leader(self) -> bool:
        return self._leader and self.clock() < self._valid_until

    def valid_until(self) -> float:
        """The instant (on ``clock``) until which this candidate provably holds the lease (0: it does not)."""
        return self._valid_until if self._leader else 0.0

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop campaigning; a leader gives the lease up so that a standby takes over at once."""
        self._stop.set()
        self._thread.join(timeout=timeout)
        if self._leader:
            self._leader = False
            try:
                self.catalog.release_writer_lease(self.candidate_id)
            except MetaFailed as exc:
                log.warning("could not release the writer lease (%s); it expires within %.1f s", exc, self.ttl)

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._leader:
                if not self._renew():
                    return
            else:
                self._try_to_win()
            self._stop.wait(self.interval)

    def _try_to_win(self) -> None:
        sent = self.clock()
        try:
            won = self.catalog.acquire_writer_lease(self.candidate_id, self.address, self.ttl)
        except MetaFailed as exc:
            log.warning("writer lease: catalog unavailable (%s)", exc)
            return
        if not won:
            return
        self._valid_until = sent + self.ttl
        self._leader = True
        log.info("candidate %s won the writer lease (ttl %.1f s)", self.candidate_id, self.ttl)
        # Claiming replays the log; the lease is renewed meanwhile by a thread of its own.
        claiming = threading.Event()
        keeper = threading.Thread(target=self._keep_while_claiming, args=(claiming,), name="lease-keeper",
                                  daemon=True)
        keeper.start()
        try:
            self.epoch = self.claim()
        except Exception as exc:
            log.error("claiming the writer role failed (%s); giving the lease back", exc)
            self._leader = False
            claiming.set()
            keeper.join()
            with contextlib.suppress(MetaFailed):
                self.catalog.release_writer_lease(self.candidate_id)
            return
        claiming.set()
        keeper.join()

    def _keep_while_claiming(self, done: threading.Event) -> None:
        while not done.wait(self.interval) and not self._stop.is_set():
            if not self._renew():
                return

    def _renew(self) -> bool:
        """Renew the lease; on failure past the deadline (or when it was taken over) give the role up."""
        if not self._leader:
            return False
        sent = self.clock()
        try:
            kept = self.catalog.renew_writer_lease(self.candidate_id, self.ttl)
        except MetaFailed as exc:
            if self.clock() < self._valid_until:
                log.warning("writer lease: renewal failed (%s); retrying before it runs out", exc)
                return True
            return self._depose(f"the writer lease could not be renewed within {self.ttl:.1f} s")
        if not kept:
            return self._depose("the writer lease expired or was taken over")
        self._valid_until = sent + self.ttl
        return True

    def _depose(self, reason: str) -> bool:
        if not self._leader:
            return False
        self._leader = False
        log.critical("writer %s deposed: %s", self.candidate_id, reason)
        self.on_deposed(reason)
        return False
