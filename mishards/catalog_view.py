"""The proxy's cached view of the catalog, refreshed when the catalog revision moves (never per request)."""

from __future__ import annotations

import threading

from coordinator.catalog import Catalog, CatalogSnapshot
from coordinator.snapshots import SnapshotHolder


class CatalogView:
    def __init__(self, uri: str, interval: float = 0.2) -> None:
        self.catalog = Catalog(uri)
        self.interval = interval
        self.snapshots = SnapshotHolder(self.catalog)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.snapshots.follow, args=(interval, self._stop),
                                        name="catalog-view", daemon=True)

    def start(self) -> None:
        self.snapshots.refresh()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self.catalog.close()

    def snapshot(self) -> CatalogSnapshot:
        return self.snapshots.snapshot()

    def catch_up(self) -> CatalogSnapshot:
        """The newest snapshot: reloaded now if the catalog revision moved."""
        return self.snapshots.catch_up()
