"""``_async=True`` results: a future over a call run on the client's small worker pool."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from typing import Any

__all__ = ["CallFuture"]


class CallFuture:
    """pymilvus' future interface: ``result(timeout=None)``, ``done()``, ``cancel()``.

    The callback given as ``_callback`` runs once the call finished, with the call's result (a tuple is
    spread into positional arguments, as pymilvus does).
    """

    def __init__(self, future: concurrent.futures.Future[Any], callback: Callable[..., Any] | None = None) -> None:
        self._future = future
        if callback is not None:
            def _done(f: concurrent.futures.Future[Any]) -> None:
                if f.cancelled() or f.exception() is not None:
                    return
                value = f.result()
                if isinstance(value, tuple):
                    callback(*value)
                else:
                    callback(value)

            future.add_done_callback(_done)

    def result(self, **kwargs: Any) -> Any:
        return self._future.result(timeout=kwargs.get("timeout"))

    def cancel(self) -> bool:
        return self._future.cancel()

    def done(self) -> bool:
        concurrent.futures.wait([self._future])
        return True

    def is_done(self) -> bool:
        return self._future.done()

    def exception(self) -> None:
        """Raise the call's exception if it ended with one (as pymilvus' futures do); never waits."""
        if self._future.done() and not self._future.cancelled():
            exc = self._future.exception()
            if exc is not None:
                raise exc
