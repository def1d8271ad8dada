"""Sub-requests spread over the worker processes of a node (``python -m node --workers N``).

A node with several workers answers ``Cmd("mishards_workers")`` with each worker's own address. The proxy asks
every node once (in the background, at its first use; again after a worker address stops answering), and its
channel to the node, :class:`SpreadChannel`, sends each search call to the worker with the fewest of this
proxy's calls in flight (:func:`least_busy`; among equals, the next in turn), over a channel of that worker's
own (at the host the proxy reaches the node at, on the worker's port); every other call, and every call while
the workers are not known (an older node, a single-process one), goes to the node's main address. Failure
handling (hedging, failover, suspects) stays per node: the fan-out sees one node, whichever worker answered.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
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


def least_busy(in_flight: Sequence[int], start: int) -> int:
    """The index of the worker to call next: the one with the fewest calls in flight; among equals, the first
    at or after ``start`` (wrapping), so that a turn counter makes equally busy workers take turns."""
    n = len(in_flight)
    first = start % n
    return (first + min(range(n), key=lambda k: in_flight[(first + k) % n])) % n


class InFlight:
    """Calls in flight per worker address and a turn counter; :meth:`pick` chooses with :func:`least_busy`
    and counts the call, :meth:`done` uncounts it (thread safe)."""

    def __init__(self) -> None:
        self._count = itertools.count()
        self._busy: dict[str, int] = {}
        self._lock = threading.Lock()

    def pick(self, workers: Sequence[str]) -> str:
        with self._lock:
            chosen = workers[least_busy([self._busy.get(w, 0) for w in workers], next(self._count))]
            self._busy[chosen] = self._busy.get(chosen, 0) + 1
            return chosen

    def done(self, worker: str) -> None:
        with self._lock:
            left = self._busy.get(worker, 0) - 1
            if left > 0:
                self._busy[worker] = left
            else:
                self._busy.pop(worker, None)

    def busy(self, worker: str) -> int:
        with self._lock:
            return self._busy.get(worker, 0)


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


class _Spread:
    """A search method's multicallable on a node with several workers: each call goes to the least busy worker
    (chosen when it starts, counted until it ends); a worker that answers UNAVAILABLE makes the directory ask
    the node again."""

    def __init__(self, node: SpreadChannel, workers: tuple[str, ...], method: str, args: Any, kwargs: Any) -> None:
        self.node = node
        self.workers = workers
        self.method = method
        self.args = args
        self.kwargs = kwargs

    def _start(self) -> tuple[str, Any]:
        worker = self.node.in_flight.pick(self.workers)
        return worker, self.node.plain(worker).unary_unary(self.method, *self.args, **self.kwargs)

    def _ended(self, worker: str, exc: BaseException | None) -> None:
        self.node.in_flight.done(worker)
        if isinstance(exc, grpc.RpcError) and exc.code() == grpc.StatusCode.UNAVAILABLE:
            self.node.directory.forget(self.node.address)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        worker, call = self._start()
        try:
            reply = call(*args, **kwargs)
        except BaseException as exc:
            self._ended(worker, exc)
            raise
        self._ended(worker, None)
        return reply

    def with_call(self, *args: Any, **kwargs: Any) -> Any:
        worker, call = self._start()
        try:
            reply = call.with_call(*args, **kwargs)
        except BaseException as exc:
            self._ended(worker, exc)
            raise
        self._ended(worker, None)
        return reply

    def future(self, *args: Any, **kwargs: Any) -> Any:
        worker, call = self._start()
        try:
            fut = call.future(*args, **kwargs)
        except BaseException as exc:
            self._ended(worker, exc)
            raise
        fut.add_done_callback(lambda f: self._ended(worker, None if f.cancelled() else f.exception()))
        return fut


class SpreadChannel(grpc.Channel):
    """The proxy's channel to one node: searches go to its least busy worker, the rest to its address."""

    def __init__(self, address: str, main: grpc.Channel, directory: WorkerDirectory,
                 plain: Callable[[str], grpc.Channel]) -> None:
        self.address = address
        self.main = main
        self.directory = directory
        self.plain = plain
        self.in_flight = InFlight()

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        if method not in SPREAD_METHODS:
            return self.main.unary_unary(method, *args, **kwargs)
        workers = self.directory.workers(self.address)
        if not spreads(method, workers):
            return self.main.unary_unary(method, *args, **kwargs)
        return _Spread(self, workers, method, args, kwargs)

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
