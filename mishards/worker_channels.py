"""Sub-requests spread over the worker processes of a node (``python -m node --workers N``).

A node with several workers answers ``Cmd("mishards_workers")`` with each worker's own address. The proxy asks
every node once (in the background, at its first use; again after a worker address stops answering), and its
channel to the node, :class:`SpreadChannel`, sends each search call to the next worker in turn (round robin)
over a channel of that worker's own (at the host the proxy reaches the node at, on the worker's port); every
other call, and every call while the workers are not known (an older node, a single-process one), goes to the
node's main address. Failure handling (hedging, failover, suspects) stays per node: the fan-out sees one node,
whichever worker answered.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import grpc

from milvus_wire import milvus_pb2

log = logging.getLogger(__name__)

SERVICE = "/milvus.grpc.MilvusService/"
SPREAD_METHODS = frozenset(SERVICE + name for name in (
    "Search", "SearchByID", "SearchInFiles", "HybridSearch", "HybridSearchInSegments"))
WORKERS_COMMAND = "mishards_workers"
ASK_TIMEOUT = 2.0
RETRY_SECONDS = 5.0  # a node that did not answer the question is asked again after this long


def parse_workers(status_code: int, reply: str, main: str) -> tuple[str, ...]:
    """Where the proxy reaches each worker a node's answer names: the host it reaches the node at (``main``;
    every worker listens on the node's host) and the worker's own port. ``(main,)`` when the answer names
    none (an error status, an older node's "Unknown command", a malformed answer)."""
    if status_code != 0:
        return (main,)
    try:
        found = json.loads(reply).get("workers")
    except (ValueError, AttributeError):
        return (main,)
    if not isinstance(found, list) or not found or not all(isinstance(a, str) and a for a in found):
        return (main,)
    host = main.rpartition(":")[0]
    ports = [a.rpartition(":")[2] for a in found]
    if not all(port.isdigit() for port in ports):
        return (main,)
    return tuple(f"{host}:{port}" for port in ports)


def spreads(method: str, workers: tuple[str, ...]) -> bool:
    """Whether a call of ``method`` goes to a worker of its own (a search, with more than one worker)."""
    return len(workers) > 1 and method in SPREAD_METHODS


class RoundRobin:
    """The next worker index, in turn (thread safe)."""

    def __init__(self) -> None:
        self._count = itertools.count()

    def pick(self, n: int) -> int:
        return next(self._count) % n


class WorkerDirectory:
    """What each node answered to ``mishards_workers``, asked in the background."""

    def __init__(self, main_channel: Callable[[str], grpc.Channel], clock: Callable[[], float] = time.monotonic):
        self.main_channel = main_channel
        self.clock = clock
        self._known: dict[str, tuple[str, ...]] = {}
        self._asked: dict[str, float] = {}  # address -> when last asked (a question in flight or unanswered)
        self._lock = threading.Lock()

    def workers(self, address: str) -> tuple[str, ...]:
        """The node's worker addresses when known (else empty, and a question is sent)."""
        with self._lock:
            known = self._known.get(address)
            if known is not None:
                return known
            asked = self._asked.get(address)
            if asked is not None and self.clock() - asked < RETRY_SECONDS:
                return ()
            self._asked[address] = self.clock()
        self._ask(address)
        return ()

    def forget(self, address: str) -> None:
        """Ask the node again at its next use (a worker stopped answering: the node may have restarted)."""
        with self._lock:
            if self._known.pop(address, None) is not None:
                self._asked.pop(address, None)
                log.info("workers of %s forgotten: asking again", address)

    def _ask(self, address: str) -> None:
        request = milvus_pb2.Command(cmd=WORKERS_COMMAND).SerializeToString()
        try:
            future = self.main_channel(address).unary_unary(SERVICE + "Cmd").future(request, timeout=ASK_TIMEOUT)
        except Exception as exc:  # e.g. a closed channel: asked again later
            log.debug("cannot ask %s for its workers: %s", address, exc)
            return

        def answered(fut: grpc.Future) -> None:
            if fut.cancelled() or fut.exception() is not None:
                return  # asked again after RETRY_SECONDS
            reply = milvus_pb2.StringReply.FromString(bytes(fut.result()))
            found = parse_workers(reply.status.error_code, reply.string_reply, address)
            with self._lock:
                self._known[address] = found
            if len(found) > 1:
                log.info("node %s has %d workers: %s", address, len(found), ", ".join(found))

        future.add_done_callback(answered)


class _Watched:
    """A worker's multicallable that reports the worker as unreachable (UNAVAILABLE) to ``on_lost``."""

    def __init__(self, inner: Any, on_lost: Callable[[], None]) -> None:
        self.inner = inner
        self.on_lost = on_lost

    def _check(self, exc: BaseException | None) -> None:
        if isinstance(exc, grpc.RpcError) and exc.code() == grpc.StatusCode.UNAVAILABLE:
            self.on_lost()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return self.inner(*args, **kwargs)
        except grpc.RpcError as exc:
            self._check(exc)
            raise

    def future(self, *args: Any, **kwargs: Any) -> Any:
        fut = self.inner.future(*args, **kwargs)
        fut.add_done_callback(lambda f: None if f.cancelled() else self._check(f.exception()))
        return fut

    def with_call(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return self.inner.with_call(*args, **kwargs)
        except grpc.RpcError as exc:
            self._check(exc)
            raise


class SpreadChannel(grpc.Channel):
    """The proxy's channel to one node: searches go round robin to its workers, the rest to its address."""

    def __init__(self, address: str, main: grpc.Channel, directory: WorkerDirectory,
                 plain: Callable[[str], grpc.Channel]) -> None:
        self.address = address
        self.main = main
        self.directory = directory
        self.plain = plain
        self.turn = RoundRobin()

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        if method not in SPREAD_METHODS:
            return self.main.unary_unary(method, *args, **kwargs)
        workers = self.directory.workers(self.address)
        if not spreads(method, workers):
            return self.main.unary_unary(method, *args, **kwargs)
        worker = workers[self.turn.pick(len(workers))]
        return _Watched(self.plain(worker).unary_unary(method, *args, **kwargs),
                        lambda: self.directory.forget(self.address))

    def unary_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self.main.unary_stream(method, *args, **kwargs)

    def stream_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self.main.stream_unary(method, *args, **kwargs)

    def stream_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self.main.stream_stream(method, *args, **kwargs)

    def subscribe(self, callback: Any, try_to_connect: bool = False) -> None:
        self.main.subscribe(callback, try_to_connect)

    def unsubscribe(self, callback: Any) -> None:
        self.main.unsubscribe(callback)

    def close(self) -> None:
        """The underlying channels belong to the cluster, which closes them."""

    def __enter__(self) -> SpreadChannel:
        return self

    def __exit__(self, *exc: object) -> None:
        return None
