"""Query-of-death protection: a request after which read nodes died or hung is not replayed on more.

A request that crashes the node serving it (memory, a native bug) would, with plain failover, go to the
next replica and crash it too, and so on through the cluster. The proxy remembers, per request
fingerprint (a hash of the method and the request bytes: the query vectors, topk, parameters and
partitions), which nodes died (the connection broke mid-call) or timed out while serving it. Once
``threshold`` (2) distinct nodes did, the request is answered in-band with ``refusal_reason`` instead of
being sent anywhere, and the same request keeps being refused until ``ttl`` seconds after its last
failure. A node that could not be reached at all (connection refused) says nothing about the request and
is not counted (``mishards.outcomes.blames_request``).

The fingerprint does not include the segments: which segments a sub-request carries depends on routing
and the catalog, while what kills a node is the query. Records are kept in a bounded LRU map (the oldest
forgotten first) and expire, so the memory stays bounded whatever the traffic.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

THRESHOLD = 2
CAPACITY = 4096


@dataclass(frozen=True, slots=True)
class Record:
    nodes: frozenset[str]  # distinct nodes that died or timed out serving the request
    until: float  # clock value after which the record is forgotten


def fingerprint(method: str, request: bytes) -> bytes:
    """A 128-bit digest of one request (``method`` keeps a Search apart from the same bytes sent elsewhere)."""
    digest = hashlib.blake2b(method.encode(), digest_size=16)
    digest.update(b"\0")
    digest.update(request)
    return digest.digest()


def after_failure(previous: Record | None, node: str, now: float, ttl: float) -> Record:
    """The record once ``node`` died or timed out serving the request at ``now``."""
    nodes = frozenset({node}) if previous is None or previous.until <= now else previous.nodes | {node}
    return Record(nodes, now + ttl)


def refuses(record: Record | None, now: float, threshold: int = THRESHOLD) -> bool:
    """Whether a request with this record must not be sent to any node."""
    return record is not None and record.until > now and len(record.nodes) >= threshold


def refusal_reason(nodes: int, ttl: float) -> str:
    return (f"The request failed on {nodes} read nodes (a node died or timed out while serving it); "
            f"not retried on another node, to protect the cluster. The same request is refused for "
            f"{ttl:g} s after its last failure.")


class QueryOfDeath:
    """Thread-safe, bounded and expiring failure records per request fingerprint (``ttl`` 0: off)."""

    def __init__(self, ttl: float, threshold: int = THRESHOLD, capacity: int = CAPACITY,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if ttl < 0 or threshold < 1 or capacity < 1:
            raise ValueError("need ttl >= 0, threshold >= 1 and capacity >= 1")
        self.ttl = ttl
        self.threshold = threshold
        self.capacity = capacity
        self.clock = clock
        self._records: OrderedDict[bytes, Record] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.ttl > 0

    def __len__(self) -> int:
        return len(self._records)

    def failed(self, key: bytes, node: str) -> int:
        """Record that ``node`` died or timed out serving the request ``key``; returns how many distinct
        nodes did so within the ttl (0 when protection is off)."""
        if not self.enabled:
            return 0
        now = self.clock()
        with self._lock:
            record = after_failure(self._records.pop(key, None), node, now, self.ttl)
            self._records[key] = record
            while len(self._records) > self.capacity:
                self._records.popitem(last=False)
            return len(record.nodes)

    def refused(self, key: bytes) -> int:
        """How many nodes the request ``key`` failed on, when it must be refused; 0 when it may be sent."""
        if not self._records:  # unlocked read: the common case (no recent failure) stays cheap
            return 0
        now = self.clock()
        with self._lock:
            record = self._records.get(key)
            if record is not None and record.until <= now:
                del self._records[key]
                return 0
            return len(record.nodes) if refuses(record, now, self.threshold) and record is not None else 0
