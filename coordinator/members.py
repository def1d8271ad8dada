"""Cluster members as values: :class:`Member`, the view (a tuple of members sorted by node id) that
membership providers hand out, and pure functions over such a view (``sorted_members``, ``writer``,
``readers``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

ROLES = ("rw", "ro", "standalone")
STATES = ("warming", "ready")


@dataclass(frozen=True, slots=True)
class Member:
    """One cluster member as membership sees it."""

    node_id: str
    address: str  # host:port of MilvusService
    role: str  # "rw" | "ro" | "standalone"
    state: str = "ready"  # "warming" | "ready"


MembershipCallback = Callable[[tuple[Member, ...]], None]


def sorted_members(members: Iterable[Member]) -> tuple[Member, ...]:
    """``members`` as a view: sorted by node id."""
    return tuple(sorted(members, key=lambda m: m.node_id))


def writer(members: Iterable[Member]) -> Member | None:
    """The writable (``rw``) member, or None when there is none.

    Membership alone elects nobody: with several ``rw`` members (standbys, or a static list naming more than
    one) this returns the first by node id, a deterministic choice every process agrees on. Where a writer
    election runs (etcd), its winner, not this helper, decides who writes. ``standalone`` members do not count.
    """
    rw = [m for m in members if m.role == "rw"]
    return min(rw, key=lambda m: m.node_id) if rw else None


def readers(members: Iterable[Member]) -> tuple[Member, ...]:
    """The read-only members that are ``ready`` (warming ones get no traffic yet), sorted by node id."""
    return sorted_members(m for m in members if m.role == "ro" and m.state == "ready")
