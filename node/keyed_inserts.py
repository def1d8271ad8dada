"""Inserts under an idempotency key run once: a retry of one applied within the window is answered with the ids it
got, and one arriving while the first attempt is still on its way waits for that attempt's outcome."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future

import numpy as np

from node.idempotency import RecentWrites

log = logging.getLogger(__name__)


class KeyedInserts:
    def __init__(self, recent: RecentWrites) -> None:
        self.recent = recent
        self._lock = threading.Lock()
        self._pending: dict[bytes, Future[np.ndarray]] = {}

    def run(self, key: bytes, attempt: Callable[[], np.ndarray], what: str) -> np.ndarray:
        """The ids of the insert under ``key``: those of an earlier attempt if there was one, else ``attempt()``'s."""
        claimed: Future[np.ndarray] = Future()
        with self._lock:
            done = self.recent.lookup(key)
            earlier = self._pending.get(key)
            if done is None and earlier is None:
                self._pending[key] = claimed
        if done is not None:
            log.info("insert of %d rows into %s is a retry of one applied at LSN %d: not applied again",
                     done.ids.size, what, done.lsn)
            return done.ids
        if earlier is not None:
            return earlier.result()  # the first attempt is still on its way: its outcome is the answer
        try:
            row_ids = attempt()
        except BaseException as exc:
            claimed.set_exception(exc)
            raise
        else:
            claimed.set_result(row_ids)
            return row_ids
        finally:
            with self._lock:
                self._pending.pop(key, None)
