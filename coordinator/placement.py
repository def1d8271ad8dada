"""Placement: which read-only nodes serve which segment.

Rendezvous (highest-random-weight) hashing: every (node, segment) pair gets a 64-bit weight and a segment is
served by the ``r`` nodes with the highest weights, the first of them being its primary. The weight depends
only on the node id and the segment id, so

- every process (proxy, each ro node computing the share it preloads) gets the same answer from the same
  node list, whatever the order of that list and on any Python version;
- adding a node only moves assignments *to* that node, and removing one only moves the assignments it had
  (each of its segments gains the next node in that segment's ranking); about ``r/N`` of the segments move.

Weight of (node, segment): a per-node 64-bit key (blake2b of the node id, computed once) XOR the splitmix64
mix of the segment id, passed through the splitmix64 finaliser. Both mixes are bijections of 64-bit words,
so two nodes tie only if their keys collide; ties are broken by node id (smaller first). Segment ids are
taken modulo 2**64 (two's complement for negative ids). Everything here is pure: no I/O, no clock.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import numpy.typing as npt

NodeRef = str
"""A node is named by its id (the membership key); placement needs nothing else about it."""

MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB
_KEY_PERSON = b"mishards-hrw-v1"

# Bulk lookups with at least this many uncached segments take the numpy path.
_VECTOR_MIN = 32
CACHE_LIMIT = 1_000_000  # cached segment answers per placement (about 100 MB at most)
# Rows per numpy block (a block holds rows x nodes 64-bit weights).
_VECTOR_BLOCK = 1 << 16

U64Array = npt.NDArray[np.uint64]


def _fmix(z: int) -> int:
    """The splitmix64 finaliser on a 64-bit word (a bijection)."""
    z = ((z ^ (z >> 30)) * _M1) & MASK64
    z = ((z ^ (z >> 27)) * _M2) & MASK64
    return z ^ (z >> 31)


def _fmix_array(z: U64Array) -> U64Array:
    """``_fmix`` elementwise; uint64 arithmetic wraps modulo 2**64 exactly like the masked scalar version."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_M1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_M2)
    return z ^ (z >> np.uint64(31))


def _segment_hash(segment_id: int) -> int:
    return _fmix((segment_id + _GOLDEN) & MASK64)


@lru_cache(maxsize=4096)
def node_key(node_id: NodeRef) -> int:
    """The node's 64-bit hashing key: blake2b-64 of its UTF-8 id (stable across processes and versions)."""
    digest = hashlib.blake2b(node_id.encode("utf-8"), digest_size=8, person=_KEY_PERSON).digest()
    return int.from_bytes(digest, "little")


def weight(node_id: NodeRef, segment_id: int) -> int:
    """The rendezvous weight of ``node_id`` for ``segment_id``, an unsigned 64-bit integer."""
    return _fmix(node_key(node_id) ^ _segment_hash(segment_id & MASK64))


def default_replication(ro_nodes: int) -> int:
    """The replication factor when the config sets none: 2 with at least two ro nodes, else 1."""
    return 2 if ro_nodes >= 2 else 1


def _check_r(r: int) -> None:
    if r < 1:
        raise ValueError(f"replication factor must be >= 1, got {r}")


def _unique_sorted(nodes: Iterable[NodeRef]) -> tuple[NodeRef, ...]:
    return tuple(sorted(set(nodes)))


def _rank(segment_id: int, nodes: Sequence[NodeRef], keys: Sequence[int], r: int) -> tuple[NodeRef, ...]:
    """Top ``r`` of ``nodes`` (sorted, distinct; ``keys`` their node keys) for one segment, best first."""
    h = _segment_hash(segment_id & MASK64)
    # Sorting on -weight is stable, and nodes are sorted by id, so equal weights keep the smaller id first.
    order = sorted(range(len(nodes)), key=lambda i: -_fmix(keys[i] ^ h))
    return tuple(nodes[i] for i in order[:r])


def replicas(segment_id: int, nodes: Sequence[NodeRef], r: int) -> tuple[NodeRef, ...]:
    """The ``min(r, distinct nodes)`` nodes serving ``segment_id``, highest weight first (first = primary).

    Duplicates in ``nodes`` count once and the order of ``nodes`` does not matter. No nodes gives ``()``.
    """
    _check_r(r)
    ordered = _unique_sorted(nodes)
    return _rank(segment_id, ordered, [node_key(n) for n in ordered], r)


def _rank_many(segment_ids: Sequence[int], keys: U64Array, r: int) -> npt.NDArray[np.intp]:
    """Column indices (into ``keys``, nodes sorted by id) of the top ``r`` nodes per segment, best first."""
    width = min(r, len(keys))
    out = np.empty((len(segment_ids), width), dtype=np.intp)
    for start in range(0, len(segment_ids), _VECTOR_BLOCK):
        chunk = segment_ids[start : start + _VECTOR_BLOCK]
        seg = np.fromiter(((s + _GOLDEN) & MASK64 for s in chunk), dtype=np.uint64, count=len(chunk))
        w = _fmix_array(_fmix_array(seg)[:, None] ^ keys[None, :])
        # ~w reverses the unsigned order; a stable sort keeps the smaller node id first on equal weights.
        order = np.argsort(~w, axis=1, kind="stable")
        out[start : start + len(chunk)] = order[:, :width]
    return out


@dataclass(frozen=True)
class Placement:
    """Placement of segments over one membership view: the live ro nodes and the replication factor.

    Build one per membership change (``Placement.of``); lookups are cached per segment id. ``nodes`` is kept
    sorted and free of duplicates, so two views of the same members compare equal.
    """

    nodes: tuple[NodeRef, ...]
    r: int
    _keys: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _key_array: U64Array = field(init=False, repr=False, compare=False)
    _cache: dict[int, tuple[NodeRef, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_r(self.r)
        nodes = _unique_sorted(self.nodes)
        keys = tuple(node_key(n) for n in nodes)
        object.__setattr__(self, "nodes", nodes)
        object.__setattr__(self, "_keys", keys)
        object.__setattr__(self, "_key_array", np.array(keys, dtype=np.uint64))
        object.__setattr__(self, "_cache", {})

    @classmethod
    def of(cls, nodes: Iterable[NodeRef], r: int | None = None) -> Placement:
        """Placement over ``nodes``; ``r`` defaults to ``default_replication`` of the distinct node count."""
        ordered = _unique_sorted(nodes)
        return cls(ordered, default_replication(len(ordered)) if r is None else r)

    @property
    def width(self) -> int:
        """How many replicas each segment gets: ``min(r, len(nodes))``."""
        return min(self.r, len(self.nodes))

    def replicas(self, segment_id: int) -> tuple[NodeRef, ...]:
        """The nodes serving ``segment_id``, primary first; ``()`` when there are no nodes."""
        found = self._cache.get(segment_id)
        if found is None:
            found = _rank(segment_id, self.nodes, self._keys, self.r)
            self._remember(segment_id, found)
        return found

    def _remember(self, segment_id: int, replicas: tuple[NodeRef, ...]) -> None:
        """Cache one answer; a long-lived placement (segments come and go for months) forgets all at a bound."""
        if len(self._cache) >= CACHE_LIMIT:
            self._cache.clear()
        self._cache[segment_id] = replicas

    def replica_map(self, segment_ids: Iterable[int]) -> dict[int, tuple[NodeRef, ...]]:
        """``replicas`` of many segments at once (numpy for large uncached batches)."""
        ids = list(dict.fromkeys(segment_ids))
        missing = [s for s in ids if s not in self._cache]
        if len(missing) >= _VECTOR_MIN and self.nodes:
            cols = _rank_many(missing, self._key_array, self.r)
            names = self.nodes
            for s, row in zip(missing, cols.tolist(), strict=True):
                self._remember(s, tuple(names[c] for c in row))
        return {s: self.replicas(s) for s in ids}

    def assignments(self, segment_ids: Iterable[int]) -> dict[NodeRef, list[int]]:
        """Every node -> the segments it serves as any replica (input order; nodes with none map to [])."""
        out: dict[NodeRef, list[int]] = {n: [] for n in self.nodes}
        for s, nodes in self.replica_map(segment_ids).items():
            for n in nodes:
                out[n].append(s)
        return out

    def primary_assignments(self, segment_ids: Iterable[int]) -> dict[NodeRef, list[int]]:
        """Every node -> the segments whose primary it is (input order; nodes with none map to [])."""
        out: dict[NodeRef, list[int]] = {n: [] for n in self.nodes}
        for s, nodes in self.replica_map(segment_ids).items():
            if nodes:
                out[nodes[0]].append(s)
        return out

    def share(self, node_id: NodeRef, segment_ids: Iterable[int]) -> list[int]:
        """The segments ``node_id`` serves as any replica (what an ro node preloads); [] if it is not a member."""
        if node_id not in self.nodes:
            return []
        return [s for s, nodes in self.replica_map(segment_ids).items() if node_id in nodes]

    def primary_share(self, node_id: NodeRef, segment_ids: Iterable[int]) -> list[int]:
        """The segments whose primary (first replica) is ``node_id``; [] if it is not a member."""
        if node_id not in self.nodes:
            return []
        return [s for s, nodes in self.replica_map(segment_ids).items() if nodes and nodes[0] == node_id]
