"""The proxy's cached view of the catalog, refreshed when the catalog revision moves (never per request)."""

from __future__ import annotations

import logging
import threading

from coordinator.catalog import Catalog, CatalogSnapshot

log = logging.getLogger(__name__)


class CatalogView:
    def __init__(self, uri: str, interval: float = 0.2) -> None:
        self.catalog = Catalog(uri)
        self.interval = interval
        self._snapshot: CatalogSnapshot | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="catalog-view", daemon=True)

    def start(self) -> None:
        self.refresh()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self.catalog.close()

    def snapshot(self) -> CatalogSnapshot:
        snap = self._snapshot
        return snap if snap is not None else self.refresh()

    def refresh(self) -> CatalogSnapshot:
        with self._lock:
            snap = self.catalog.snapshot()
            if self._snapshot is None or snap.revision >= self._snapshot.revision:
                self._snapshot = snap
            return self._snapshot

    def catch_up(self) -> CatalogSnapshot:
        """The newest snapshot: reloaded now if the catalog revision moved (one cheap query otherwise)."""
        snap = self.snapshot()
        return self.refresh() if self.catalog.revision() != snap.revision else snap

    def _follow(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.catch_up()
            except Exception as exc:
                log.warning("catalog refresh failed (%s); serving the last view", exc)
