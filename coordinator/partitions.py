"""Selection of partitions by search tags (pure): equal, or a full match of the tag as a regex."""

from __future__ import annotations

import time
from collections.abc import Sequence

import regex

from coordinator.errors import UnexpectedError
from coordinator.model import Partition


def match_partitions(
    partitions: Sequence[Partition], patterns: Sequence[str], budget_seconds: float = 1.0
) -> list[Partition]:
    """Partitions selected by search tags: equal, or a full match of the tag as a regex.

    No tags selects every partition. A tag that is not a valid regex matches only literally. The
    matching of one request may take at most ``budget_seconds`` (a pathological pattern against many
    partition tags would otherwise hold a worker thread for hours); past it, the request fails.
    """
    if not patterns:
        return list(partitions)
    compiled: list[regex.Pattern[str] | None] = []
    for pattern in patterns:
        try:
            compiled.append(regex.compile(pattern))
        except (regex.error, RecursionError, OverflowError):
            compiled.append(None)
    deadline = time.monotonic() + budget_seconds
    selected = []
    for part in partitions:
        for pattern, rx in zip(patterns, compiled, strict=True):
            if part.tag == pattern:
                selected.append(part)
                break
            if rx is None:
                continue
            try:
                hit = rx.fullmatch(part.tag, timeout=max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                raise UnexpectedError(
                    f"Invalid partition tag: {pattern}. Matching it against the partition tags takes too long."
                ) from None
            if hit:
                selected.append(part)
                break
    return selected
