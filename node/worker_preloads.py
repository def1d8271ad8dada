"""What a multi-process node (``--workers N``) keeps preloaded, so that a worker the parent restarts loads it
again before it reports ready.

Each worker has its own segment cache; ``PreloadCollection``, ``PreloadHybridCollection`` and
``ReleaseCollection`` reach every worker (``node/worker_broadcast.py``), but a worker started later has not seen
them. The primary records each of these calls it served successfully, whoever received it, in
``preloads.json`` in the parent's private folder (``WorkerSpec.run_dir``, which outlives the workers), written
under an exclusive ``flock`` of ``preloads.lock`` and replaced atomically. A starting worker reads it and
applies the calls in order to its own servicer (marked local and carrying the node's worker secret, as a call
another worker sends on) before it serves: a standalone node's worker before it listens, a read node's before
it reports ready (after its first warm-up of its share).

The record is a short log, compacted by :func:`recorded` (pure): a preload replaces an earlier one of the same
kind and scope, a release of a whole collection removes everything recorded for it, a release of some
partitions is kept after the preloads it narrows. At most :data:`MAX_ENTRIES` entries are kept (the oldest go).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coordinator.workers import LOCAL_HEADER, SECRET_HEADER, WorkerSpec
from milvus_wire import milvus_pb2, status_pb2

log = logging.getLogger(__name__)

STATE_FILE = "preloads.json"
LOCK_FILE = "preloads.lock"
MAX_ENTRIES = 1000
PRELOAD = "PreloadCollection"
PRELOAD_HYBRID = "PreloadHybridCollection"
RELEASE = "ReleaseCollection"
RECORDED_METHODS = frozenset({PRELOAD, PRELOAD_HYBRID, RELEASE})

Behavior = Callable[[Any, Any], Any]


@dataclass(frozen=True, slots=True)
class CacheCall:
    """One recorded call: the method, the collection and the partition tags (empty: the whole collection)."""

    method: str
    collection: str
    partitions: tuple[str, ...] = ()

    def request(self) -> Any:
        if self.method == PRELOAD_HYBRID:
            return milvus_pb2.CollectionName(collection_name=self.collection)
        return milvus_pb2.PreloadCollectionParam(collection_name=self.collection,
                                                 partition_tag_array=list(self.partitions))

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "collection": self.collection, "partitions": list(self.partitions)}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> CacheCall:
        return cls(str(raw["method"]), str(raw["collection"]), tuple(str(p) for p in raw.get("partitions", ())))


def call_of(method: str, request: Any) -> CacheCall:
    """The record of a served call."""
    tags = () if method == PRELOAD_HYBRID else tuple(sorted(set(request.partition_tag_array)))
    return CacheCall(method, str(request.collection_name), tags)


def recorded(entries: Sequence[CacheCall], call: CacheCall) -> tuple[CacheCall, ...]:
    """The record after ``call`` (compacted, at most :data:`MAX_ENTRIES`)."""
    if call.method == RELEASE and not call.partitions:
        return tuple(e for e in entries if e.collection != call.collection)
    kept = tuple(e for e in entries if e != call)
    return (*kept, call)[-MAX_ENTRIES:]


def parse(text: str) -> tuple[CacheCall, ...]:
    """The record in a state file's text (an unreadable one: nothing)."""
    try:
        raw = json.loads(text)
        return tuple(CacheCall.from_json(item) for item in raw["calls"] if item.get("method") in RECORDED_METHODS)
    except (ValueError, KeyError, TypeError, AttributeError):
        log.warning("the preload record is unreadable; a restarted worker loads segments at its first searches")
        return ()


class PreloadRecord:
    """The node's record in its private folder ``run_dir``."""

    def __init__(self, run_dir: str) -> None:
        self.path = Path(run_dir) / STATE_FILE
        self.lock_path = Path(run_dir) / LOCK_FILE

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _read(self) -> tuple[CacheCall, ...]:
        try:
            return parse(self.path.read_text())
        except FileNotFoundError:
            return ()

    def read(self) -> tuple[CacheCall, ...]:
        with self._locked():
            return self._read()

    def add(self, call: CacheCall) -> None:
        with self._locked():
            calls = recorded(self._read(), call)
            temporary = self.path.with_suffix(".tmp")
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump({"calls": [c.to_json() for c in calls]}, fh)
            os.replace(temporary, self.path)


def record_for(spec: WorkerSpec | None) -> PreloadRecord | None:
    """The node's record (None: one process, or no private folder)."""
    if spec is None or spec.count < 2 or not spec.run_dir:
        return None
    return PreloadRecord(spec.run_dir)


def recording(record: PreloadRecord, method: str, behavior: Behavior) -> Behavior:
    """``behavior`` that records a cache call it served successfully (the primary's)."""
    if method not in RECORDED_METHODS:
        return behavior

    def handler(request: Any, context: Any) -> Any:
        reply = behavior(request, context)
        if isinstance(reply, status_pb2.Status) and reply.error_code == 0:
            try:
                record.add(call_of(method, request))
            except OSError as exc:  # the reply stands; only a later restart of a worker misses it
                log.warning("cannot record %s of %s: %s", method, request.collection_name, exc)
        return reply

    return handler


class ReplayContext:
    """The call context of a replayed call: marked for this worker alone, with the node's worker secret (the
    auth guard counts it as another worker's call), no deadline."""

    def __init__(self, secret: str) -> None:
        self._metadata = ((LOCAL_HEADER, "1"), *(((SECRET_HEADER, secret),) if secret else ()))

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    def time_remaining(self) -> float | None:
        return None

    def is_active(self) -> bool:
        return True

    def peer(self) -> str:
        return "worker-replay"

    def auth_context(self) -> dict[str, list[bytes]]:
        return {}

    def abort(self, code: Any, details: str) -> None:
        raise RuntimeError(f"{code}: {details}")

    def set_code(self, code: Any) -> None:
        return None

    def set_details(self, details: str) -> None:
        return None


def replay(record: PreloadRecord, servicer: Any, secret: str) -> int:
    """Apply the recorded calls, in order, to this worker's ``servicer``; how many succeeded (a failed one, e.g.
    of a collection dropped since, is logged and skipped)."""
    context = ReplayContext(secret)
    done = 0
    for call in record.read():
        try:
            reply = getattr(servicer, call.method)(call.request(), context)
        except Exception as exc:  # never keep a worker from starting
            log.warning("replaying %s of %s failed: %s", call.method, call.collection, exc)
            continue
        if reply.error_code == 0:
            done += 1
        else:
            log.info("replaying %s of %s: %s", call.method, call.collection, reply.reason)
    return done
