"""Search routing (pure): which segments a search covers, and which ro node searches each of them.

``searchable_segments`` reads the cached catalog snapshot; ``plan`` spreads the segments over their replicas
(from ``coordinator.placement``) by load; ``plan_in_tiers`` keeps off nodes (suspected, slow, failed) as
long as another replica exists, which the fan-out uses for first routings, retries and hedges alike.
Nothing here does I/O or reads a clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from coordinator.catalog import CatalogSnapshot
from coordinator.errors import CollectionNotFound, UnexpectedError
from coordinator.model import SEARCHABLE_STATES, Collection, Segment
from coordinator.partitions import match_partitions
from coordinator.placement import NodeRef, Placement

NO_PARTITION = "The specified partition does not exist"


def searchable_segments(
    snap: CatalogSnapshot, collection_name: str, tags: Sequence[str]
) -> tuple[Collection, list[Segment]]:
    """The collection and its searchable segments (RAW, TO_INDEX, INDEX) in the partitions ``tags`` select.

    No tags selects every partition; a tag selects the partitions whose tag equals it or fully matches it
    as a regex (``coordinator.partitions.match_partitions``). Raises ``CollectionNotFound`` for an unknown
    collection and ``UnexpectedError`` when tags are given but select no partition.
    """
    coll = snap.collection(collection_name)
    if coll is None:
        raise CollectionNotFound(collection_name)
    partitions = snap.partitions_of(coll.id)
    if tags:
        selected = match_partitions(partitions, tags)
        if not selected:
            raise UnexpectedError(NO_PARTITION)
        wanted = {p.id for p in selected}
    else:
        wanted = {p.id for p in partitions}
    segs = [s for s in snap.segments_of(coll.id) if s.partition_id in wanted and s.state in SEARCHABLE_STATES]
    return coll, segs


@dataclass(frozen=True)
class RoutePlan:
    """Segments per node (in the order they were asked for), and the segments no allowed replica serves."""

    by_node: dict[NodeRef, tuple[int, ...]]
    unplaced: tuple[int, ...]

    @property
    def segment_count(self) -> int:
        """How many segments the plan places."""
        return sum(len(segs) for segs in self.by_node.values())

    def node_of(self, segment_id: int) -> NodeRef | None:
        """The node a segment is routed to, or None when it is unplaced (or not in the plan)."""
        for node, segs in self.by_node.items():
            if segment_id in segs:
                return node
        return None


def _assign(
    segment_ids: Iterable[int],
    placement: Placement,
    inflight: Mapping[NodeRef, int],
    exclude: frozenset[NodeRef],
    load: dict[NodeRef, int],
) -> tuple[dict[NodeRef, list[int]], list[int]]:
    """One allowed replica per segment; ``load`` (segments given to each node so far) is updated in place.

    Idle replicas (nothing in flight on any allowed node): each segment goes to the replica given the fewest
    segments so far, so one search spreads over the replicas (parallel work, lower latency). Busy replicas:
    each segment goes to the replica with the fewest requests in flight, preferring a node this search
    already uses, so a search goes whole to the least busy node (fewer sub-requests, more throughput).
    Remaining ties go to placement order (primary first).
    """
    ids = list(dict.fromkeys(segment_ids))
    replica_map = placement.replica_map(ids)
    busy = any(inflight.get(n, 0) > 0 for n in placement.nodes if n not in exclude)
    by_node: dict[NodeRef, list[int]] = {}
    unplaced: list[int] = []
    for seg in ids:
        best: NodeRef | None = None
        best_key: tuple[int, int] = (0, 0)
        # Only a strictly smaller key displaces the current choice, so ties keep placement order.
        for node in replica_map[seg]:
            if node in exclude:
                continue
            key = (inflight.get(node, 0), 0 if node in by_node else 1) if busy else (load.get(node, 0), 0)
            if best is None or key < best_key:
                best, best_key = node, key
        if best is None:
            unplaced.append(seg)
            continue
        load[best] = load.get(best, 0) + 1
        by_node.setdefault(best, []).append(seg)
    return by_node, unplaced


def plan(
    segment_ids: Iterable[int],
    placement: Placement,
    inflight: Mapping[NodeRef, int],
    exclude: frozenset[NodeRef] = frozenset(),
) -> RoutePlan:
    """Route each segment to the replica, among those not in ``exclude``, with the least load.

    On idle replicas the segments of one search spread evenly over them; on busy ones (``inflight``: requests
    in flight per node, missing = 0) a search goes whole to the least busy replica that holds its segments
    (``_assign``); ties go to placement order
    (primary first). Duplicate segment ids count once. Segments whose replicas are all excluded (or that
    have none: no ro nodes) are returned in ``unplaced``.
    """
    by_node, unplaced = _assign(segment_ids, placement, inflight, exclude, {})
    return RoutePlan({node: tuple(segs) for node, segs in by_node.items()}, tuple(unplaced))


def plan_in_tiers(
    segment_ids: Iterable[int],
    placement: Placement,
    inflight: Mapping[NodeRef, int],
    tiers: Sequence[frozenset[NodeRef]],
) -> RoutePlan:
    """``plan`` with fallbacks: each segment goes to a replica outside the first exclusion set of ``tiers``
    that leaves it one; segments that none leaves a replica are ``unplaced``.

    The fan-out's tiers are: keep off suspects and nodes slow or failed in this search; then off the slow
    and failed ones only; then off the failed ones only (a node that failed is never asked again by the
    same search). Segments routed by a later tier are appended to their node's list.
    """
    route = RoutePlan({}, tuple(dict.fromkeys(segment_ids)))
    for exclude in tiers:
        if not route.unplaced:
            break
        more = plan(route.unplaced, placement, inflight, exclude)
        route = _joined(RoutePlan(route.by_node, ()), more, more.unplaced)
    return route


def plan_avoiding(
    segment_ids: Iterable[int],
    placement: Placement,
    inflight: Mapping[NodeRef, int],
    suspects: frozenset[NodeRef],
) -> RoutePlan:
    """``plan`` keeping off the ``suspects`` (nodes that failed recently) while another replica exists;
    segments whose every replica is suspected go to a suspect anyway, as a last resort."""
    return plan_in_tiers(segment_ids, placement, inflight, (suspects, frozenset()))


def _joined(base: RoutePlan, more: RoutePlan, unplaced: tuple[int, ...]) -> RoutePlan:
    """``base`` with ``more``'s segments appended to their nodes' lists."""
    by_node = dict(base.by_node)
    for node, segs in more.by_node.items():
        by_node[node] = by_node.get(node, ()) + segs
    return RoutePlan(by_node, unplaced)
