"""The writer key of the etcd election (``<prefix>/writer``): its name, its JSON value, and what the lease and the
changes of the key seen by its holder mean for the holder (pure decisions; :mod:`coordinator.election` acts on them).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from coordinator.etcd_lease import Lease
from coordinator.etcd_watch import WatchEvent

log = logging.getLogger(__name__)

WRITER_KEY = "writer"

# What a holder keeps while it holds the key: the value it put, and the revision of that put.
Held = tuple[bytes, int]


def writer_key(prefix: str) -> str:
    """``<prefix>/writer`` for a prefix such as ``/mishards``."""
    return f"{prefix.rstrip('/')}/{WRITER_KEY}"


def writer_value(candidate_id: str, address: str, elected_at: float) -> bytes:
    """The value a candidate puts when it wins: JSON ``{"address", "elected_at", "node_id"}``."""
    return json.dumps(
        {"node_id": candidate_id, "address": address, "elected_at": elected_at},
        separators=(",", ":"),
        sort_keys=True,
    ).encode()


def parse_writer(raw: bytes | None) -> dict[str, Any] | None:
    """Decode the writer key's JSON value; None if absent or not a JSON object."""
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        log.warning("writer key holds a value that is not JSON: %r", raw[:200])
        return None
    return value if isinstance(value, dict) else None


def key_lost_by(events: Sequence[WatchEvent], key: str, held: Held | None) -> str | None:
    """Why the holder of ``held`` lost the key by these watch events (the last one that says so), or None: a
    deletion, or a put of another value, after the holder's own put."""
    reason = None
    for ev in events:
        if ev.key != key:
            continue
        if held is not None and ev.revision > held[1]:
            if ev.kind == "delete":
                reason = "the writer key was deleted"
            elif ev.value != held[0]:
                reason = "the writer key was taken over"
    return reason


def depose_reason(lease: Lease | None, held: Held | None, key_lost: tuple[int, str] | None) -> str | None:
    """Why the holder is no longer the writer: its lease is gone, or the key was lost after the put it holds
    (``key_lost`` is the revision of the put it concerns and why); None while neither is known."""
    if lease is None or not lease.alive:
        return f"lease lost ({lease.lost_reason if lease else 'no lease'})"
    if key_lost is not None and held is not None and key_lost[0] == held[1]:
        return key_lost[1]
    return None


def read_back_reason(raw: bytes | None, held: Held) -> str | None:
    """Why the key as read (``raw``) shows that the holder of ``held`` lost it, or None if it still holds it."""
    if raw is None:
        return "the writer key disappeared"
    if raw != held[0]:
        return "the writer key was taken over"
    return None
