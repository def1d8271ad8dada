"""The connection under :class:`~coordinator.etcd_client.EtcdClient`: one asyncio event loop in a daemon thread,
the ``aetcd`` client of the endpoint in use, and blocking calls with deadlines.

:class:`EtcdConnection` picks the first endpoint of the list that answers (on the first call, not in the
constructor), runs coroutines on its loop from other threads (:meth:`EtcdConnection._run`), turns every failure
into an :class:`~coordinator.etcd_errors.EtcdError`, and with several endpoints drops a connection that failed
so that the next call picks a reachable endpoint.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Self, TypeVar

import aetcd

from coordinator.etcd_errors import EtcdError, EtcdTimeout, EtcdUnavailable
from coordinator.etcd_wire import new_client, parse_endpoints
from coordinator.tls import EtcdTls

log = logging.getLogger(__name__)

T = TypeVar("T")

_PROBE_KEY = b"\0mishards-probe"


class EtcdConnection:
    """The event loop thread and the etcd connection of one client. Thread-safe.

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

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

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
                client = new_client(host, port, self.tls, self.timeout)
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
        """Loop-side end of :meth:`close`: close the connection and cancel the loop's remaining tasks."""
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception, TimeoutError):
                await asyncio.wait_for(client.close(), timeout / 2)
        current = asyncio.current_task()
        rest = [t for t in asyncio.all_tasks() if t is not current]
        for task in rest:
            task.cancel()
        if rest:
            await asyncio.gather(*rest, return_exceptions=True)
