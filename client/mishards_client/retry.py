"""Retry decisions: which failures are tried again, and how long to wait in between (pure functions)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

import grpc

__all__ = ["RetryPolicy", "backoff_delay", "should_retry"]

# Calls that change nothing, or whose repetition leaves the same state as one call (re-creating an index,
# flushing twice, deleting ids already deleted, ...). Insert is not here: see ``insert_is_retryable``.
IDEMPOTENT_METHODS: frozenset[str] = frozenset({
    "HasCollection", "DescribeCollection", "CountCollection", "ShowCollections", "ShowCollectionInfo",
    "DescribeIndex", "HasPartition", "ShowPartitions", "GetVectorsByID", "GetVectorIDs", "Search",
    "SearchByID", "SearchInFiles", "Cmd", "PreloadCollection", "ReleaseCollection", "ReloadSegments",
    "Flush", "Compact", "CreateIndex", "DropIndex", "DeleteByID", "CreateCollection", "DropCollection",
    "CreatePartition", "DropPartition", "CreateHybridCollection", "HasHybridCollection",
    "DropHybridCollection", "DescribeHybridCollection", "CountHybridCollection", "ShowHybridCollections",
    "HybridSearch", "HybridSearchInSegments", "GetEntityByID", "GetEntityIDs", "DeleteEntitiesByID",
    "PreloadHybridCollection",
})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``retries`` further attempts after the first, waits ``base * 2**n`` (capped at ``cap``) with full jitter."""

    retries: int = 3
    base: float = 0.1
    cap: float = 2.0


def should_retry(code: grpc.StatusCode | None, retryable: bool, attempt: int, policy: RetryPolicy) -> bool:
    """Whether attempt number ``attempt`` (0 = the first) that failed with ``code`` is tried again."""
    return retryable and code == grpc.StatusCode.UNAVAILABLE and attempt < policy.retries


def backoff_delay(attempt: int, policy: RetryPolicy, rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait after failed attempt ``attempt``: uniform in ``[0, min(cap, base * 2**attempt)]``."""
    return rand() * min(policy.cap, policy.base * (2.0 ** attempt))


def insert_is_retryable(has_ids: bool, has_request_key: bool) -> bool:
    """An insert may be sent again when the server recognises the repetition: by content when it carries
    explicit ids, by its ``mishards-request-key`` otherwise (Mishards nodes and proxies answer a repeated
    insert with the ids the first one got)."""
    return has_ids or has_request_key
