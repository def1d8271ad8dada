"""The newest catalog snapshot a process has seen, kept by one holder shared by nodes and the proxy.

A snapshot is reloaded when asked (``refresh``), when a caller knows a newer revision (``catch_up_to``), or
when a poll finds the catalog revision moved (``catch_up`` / ``follow``): one cheap query per poll, never a
reload per request. A reload never replaces a newer snapshot with an older one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from coordinator.catalog import Catalog, CatalogSnapshot

log = logging.getLogger(__name__)


class SnapshotHolder:
    def __init__(self, catalog: Catalog, on_reload: Callable[[CatalogSnapshot], None] | None = None) -> None:
        self.catalog = catalog
        self.on_reload = on_reload  # called after a poll or catch-up loaded a newer snapshot
        self.checked_at = 0.0  # wall-clock time of the last successful look at the catalog revision
        self._snapshot: CatalogSnapshot | None = None
        self._lock = threading.Lock()

    def snapshot(self) -> CatalogSnapshot:
        snap = self._snapshot
        return snap if snap is not None else self.refresh()

    def refresh(self) -> CatalogSnapshot:
        """Reload now (keeping the newer of the loaded and the held snapshot)."""
        with self._lock:
            return self._keep(self.catalog.snapshot())

    def offer(self, snap: CatalogSnapshot) -> CatalogSnapshot:
        """Publish ``snap``, a snapshot the caller has just read from the catalog, as :meth:`refresh` would have
        (unless the holder has a newer one): for a caller that needed the snapshot before publishing it."""
        with self._lock:
            return self._keep(snap)

    def _keep(self, snap: CatalogSnapshot) -> CatalogSnapshot:
        if self._snapshot is None or snap.revision >= self._snapshot.revision:
            self._snapshot = snap
        self.checked_at = time.time()
        return self._snapshot

    def catch_up(self) -> CatalogSnapshot:
        """The newest snapshot: reloaded if the catalog revision moved, else the held one."""
        held = self.snapshot()
        if self.catalog.revision() == held.revision:
            self.checked_at = time.time()
            return held
        return self._reloaded()

    def catch_up_to(self, revision: int) -> CatalogSnapshot:
        """Reload if the held snapshot is older than ``revision`` (a caller has seen a newer catalog)."""
        held = self._snapshot
        if held is not None and (not revision or held.revision >= revision):
            return held
        return self._reloaded()

    def _reloaded(self) -> CatalogSnapshot:
        snap = self.refresh()
        if self.on_reload is not None:
            self.on_reload(snap)
        return snap

    def follow(self, interval: float, stop: threading.Event, paused: Callable[[], bool] = lambda: False) -> None:
        """Poll the revision every ``interval`` seconds until ``stop`` is set (skipping polls while ``paused``)."""
        while not stop.wait(interval):
            if paused():
                continue
            try:
                self.catch_up()
            except Exception as exc:
                log.warning("catalog refresh failed (%s); serving the last snapshot", exc)
