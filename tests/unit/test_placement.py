"""Rendezvous placement: replica counts, determinism, balance, minimal movement on join/leave, stable hash."""

from __future__ import annotations

import hashlib
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coordinator.placement import Placement, default_replication, node_key, replicas, weight

INT64 = st.integers(-(2**63), 2**63 - 1)
NODE_ID = st.one_of(
    st.text(min_size=1, max_size=12),
    st.integers(0, 10_000).map(lambda i: f"ro-{i}"),
    st.tuples(st.integers(0, 255), st.integers(1, 65535)).map(lambda t: f"10.0.0.{t[0]}:{t[1]}"),
)


def node_sets(min_size: int, max_size: int) -> st.SearchStrategy[list[str]]:
    return st.lists(NODE_ID, min_size=min_size, max_size=max_size, unique=True)


def pairs(placement: Placement, segment_ids: list[int]) -> set[tuple[int, str]]:
    """Every (segment, node) replica assignment."""
    return {(s, n) for s, nodes in placement.replica_map(segment_ids).items() for n in nodes}


def binomial_slack(trials: int, p: float, sigmas: float = 6.0) -> float:
    """A count drawn from Binomial(trials, p) is within this of trials * p except with negligible odds."""
    return sigmas * math.sqrt(trials * p * (1.0 - p)) + 1.0


# --- replica sets ---------------------------------------------------------------------------------------


@given(nodes=st.lists(NODE_ID, max_size=10), r=st.integers(1, 5), segment_ids=st.lists(INT64, max_size=80))
@settings(max_examples=100, deadline=None)
def test_every_segment_gets_min_r_n_distinct_nodes(nodes: list[str], r: int, segment_ids: list[int]) -> None:
    distinct = set(nodes)
    placement = Placement.of(nodes, r)
    table = placement.replica_map(segment_ids)  # numpy path once 32+ segments are uncached
    assert set(table) == set(segment_ids)
    for s in segment_ids:
        got = replicas(s, nodes, r)
        assert len(got) == min(r, len(distinct)) == placement.width
        assert len(set(got)) == len(got)
        assert set(got) <= distinct
        assert placement.replicas(s) == got
        assert table[s] == got


@given(nodes=node_sets(1, 10), r=st.integers(1, 4), segment_ids=st.lists(INT64, min_size=1, max_size=60))
@settings(max_examples=100, deadline=None)
def test_replicas_are_the_highest_weights_in_order(nodes: list[str], r: int, segment_ids: list[int]) -> None:
    for s in segment_ids:
        got = replicas(s, nodes, r)
        ranking = sorted(nodes, key=lambda n: (-weight(n, s), n))
        assert got == tuple(ranking[: len(got)])
        weights = [weight(n, s) for n in got]
        assert weights == sorted(weights, reverse=True)
        assert all(0 <= w < 2**64 for w in weights)


@given(
    nodes=node_sets(1, 8),
    r=st.integers(1, 4),
    segment_ids=st.lists(INT64, min_size=40, max_size=120, unique=True),
    data=st.data(),
)
@settings(max_examples=60, deadline=None)
def test_deterministic_and_independent_of_node_order(
    nodes: list[str], r: int, segment_ids: list[int], data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(nodes))
    with_duplicates = shuffled + data.draw(st.lists(st.sampled_from(nodes), max_size=4))
    a = Placement.of(nodes, r)
    b = Placement.of(with_duplicates, r)
    assert a == b and hash(a) == hash(b)
    assert a.nodes == tuple(sorted(nodes))
    bulk = a.replica_map(segment_ids)  # vectorised
    one_by_one = {s: b.replicas(s) for s in segment_ids}  # scalar
    assert bulk == one_by_one
    assert bulk == Placement.of(nodes, r).replica_map(segment_ids)  # a fresh build, cold cache
    assert all(replicas(s, with_duplicates, r) == bulk[s] for s in segment_ids)
    assert a.assignments(reversed(segment_ids)) == {n: v[::-1] for n, v in b.assignments(segment_ids).items()}


def test_vectorised_path_matches_scalar_on_edge_ids() -> None:
    nodes = ["ro-0", "ro-1", "ro-2", "nœud-ü", "10.0.0.5:19530"]
    ids = [0, 1, -1, 2**63 - 1, -(2**63), 2**64 - 1, 2**64, *range(-50, 50), *range(2**40, 2**40 + 50)]
    bulk = Placement.of(nodes, 3).replica_map(ids)
    assert all(bulk[s] == replicas(s, nodes, 3) for s in ids)
    # Ids are taken modulo 2**64.
    assert replicas(-1, nodes, 3) == replicas(2**64 - 1, nodes, 3)
    assert replicas(0, nodes, 3) == replicas(2**64, nodes, 3)


# --- shares ---------------------------------------------------------------------------------------------


@given(nodes=node_sets(0, 6), r=st.integers(1, 3), segment_ids=st.lists(st.integers(0, 10**6), max_size=100))
@settings(max_examples=80, deadline=None)
def test_shares_agree_with_replicas(nodes: list[str], r: int, segment_ids: list[int]) -> None:
    placement = Placement.of(nodes, r)
    unique_ids = list(dict.fromkeys(segment_ids))
    table = placement.assignments(segment_ids)
    primaries = placement.primary_assignments(segment_ids)
    assert set(table) == set(primaries) == set(nodes)
    for n in nodes:
        assert placement.share(n, segment_ids) == table[n] == [s for s in unique_ids if n in placement.replicas(s)]
        assert placement.primary_share(n, segment_ids) == primaries[n]
        assert primaries[n] == [s for s in unique_ids if placement.replicas(s)[0] == n]
    assert sum(len(v) for v in table.values()) == len(unique_ids) * placement.width
    assert sorted(s for v in primaries.values() for s in v) == (sorted(unique_ids) if nodes else [])
    assert placement.share("not-a-member", segment_ids) == []
    assert placement.primary_share("not-a-member", segment_ids) == []


def test_no_nodes_serve_nothing() -> None:
    empty = Placement.of([])
    assert empty.r == 1 and empty.width == 0
    assert empty.replicas(7) == () == replicas(7, [], 2)
    assert empty.replica_map(range(100)) == {s: () for s in range(100)}
    assert empty.assignments(range(100)) == {}


def test_default_replication() -> None:
    assert [default_replication(n) for n in range(5)] == [1, 1, 2, 2, 2]
    assert Placement.of(["a"]).r == 1
    assert Placement.of(["a", "b", "c"]).r == 2
    assert Placement.of(["a", "b", "c"], 3).r == 3
    assert Placement.of(["a", "a"]).r == 1  # duplicates count once


@pytest.mark.parametrize("r", [0, -1])
def test_replication_factor_must_be_positive(r: int) -> None:
    with pytest.raises(ValueError):
        replicas(1, ["a"], r)
    with pytest.raises(ValueError):
        Placement.of(["a"], r)


# --- balance --------------------------------------------------------------------------------------------

BALANCE_SEGMENTS = 20_000


@given(nodes=node_sets(2, 8), r=st.integers(1, 3), first=st.integers(0, 2**40))
@settings(max_examples=25, deadline=None)
def test_load_is_balanced(nodes: list[str], r: int, first: int) -> None:
    """Each node serves ~min(R, N)/N of the segments (and is primary of ~1/N), within binomial noise."""
    n = len(nodes)
    segment_ids = list(range(first, first + BALANCE_SEGMENTS))  # consecutive ids, as the catalog hands out
    placement = Placement.of(nodes, r)
    p_any = placement.width / n
    for node, served in placement.assignments(segment_ids).items():
        assert abs(len(served) - BALANCE_SEGMENTS * p_any) <= binomial_slack(BALANCE_SEGMENTS, p_any), node
    for node, led in placement.primary_assignments(segment_ids).items():
        assert abs(len(led) - BALANCE_SEGMENTS / n) <= binomial_slack(BALANCE_SEGMENTS, 1 / n), node


@pytest.mark.parametrize("n", range(2, 9))
@pytest.mark.parametrize("r", [1, 2, 3])
def test_load_is_balanced_within_a_few_percent(n: int, r: int) -> None:
    """Realistic node ids: every node's share of the segments is within 1.5 percentage points of R/N."""
    nodes = [f"ro-{i}" for i in range(n)]
    placement = Placement.of(nodes, r)
    shares = placement.assignments(range(1, BALANCE_SEGMENTS + 1))
    expected = min(r, n) / n
    for node, served in shares.items():
        assert abs(len(served) / BALANCE_SEGMENTS - expected) <= 0.015, (node, len(served))


def test_replica_orderings_are_uniform() -> None:
    """Weights of different nodes are independent: with 4 nodes and R=2 each ordered pair leads ~1/12."""
    nodes = ["ro-0", "ro-1", "ro-2", "ro-3"]
    counts: dict[tuple[str, ...], int] = {}
    for pair in Placement.of(nodes, 2).replica_map(range(BALANCE_SEGMENTS)).values():
        counts[pair] = counts.get(pair, 0) + 1
    assert len(counts) == 12
    for pair, count in counts.items():
        assert abs(count - BALANCE_SEGMENTS / 12) <= binomial_slack(BALANCE_SEGMENTS, 1 / 12), pair


# --- membership changes ---------------------------------------------------------------------------------

CHURN_SEGMENTS = 3000


@given(nodes=node_sets(1, 8), new=NODE_ID, r=st.integers(1, 3), first=st.integers(0, 2**40))
@settings(max_examples=40, deadline=None)
def test_adding_a_node_moves_assignments_only_to_it(nodes: list[str], new: str, r: int, first: int) -> None:
    if new in nodes:
        nodes = [x for x in nodes if x != new]
    if not nodes:
        nodes = [new + "-old"]
    segment_ids = list(range(first, first + CHURN_SEGMENTS))
    before = Placement.of(nodes, r)
    after = Placement.of([*nodes, new], r)
    old_table, new_table = before.replica_map(segment_ids), after.replica_map(segment_ids)
    for s in segment_ids:
        old, now = old_table[s], new_table[s]
        # The new node slots into the old ranking; nobody else changes rank, the last may fall off.
        assert tuple(x for x in now if x != new) == old[: len(now) - (new in now)]
    old_pairs, new_pairs = pairs(before, segment_ids), pairs(after, segment_ids)
    gained, lost = new_pairs - old_pairs, old_pairs - new_pairs
    assert all(node == new for _, node in gained)  # an existing node never gains a segment
    assert len(lost) == (len(gained) if after.width == before.width else 0)
    # The new node takes ~1/(N+1) of all the assignments.
    total = CHURN_SEGMENTS * after.width
    p_new = after.width / (len(nodes) + 1)
    assert abs(len(gained) - CHURN_SEGMENTS * p_new) <= binomial_slack(CHURN_SEGMENTS, p_new)
    assert abs(len(gained) / total - 1 / (len(nodes) + 1)) <= 0.1


@given(nodes=node_sets(2, 9), r=st.integers(1, 3), first=st.integers(0, 2**40), data=st.data())
@settings(max_examples=40, deadline=None)
def test_removing_a_node_moves_only_its_assignments(nodes: list[str], r: int, first: int, data: st.DataObject) -> None:
    gone = data.draw(st.sampled_from(nodes))
    rest = [x for x in nodes if x != gone]
    segment_ids = list(range(first, first + CHURN_SEGMENTS))
    before = Placement.of(nodes, r)
    after = Placement.of(rest, r)
    old_table, new_table = before.replica_map(segment_ids), after.replica_map(segment_ids)
    for s in segment_ids:
        old, now = old_table[s], new_table[s]
        if gone not in old:
            assert now == old
            continue
        kept = tuple(x for x in old if x != gone)
        # The survivors keep their order; the next node in the ranking (if any is left) takes the last slot.
        assert now[: len(kept)] == kept
        assert len(now) - len(kept) == (1 if len(rest) >= r else 0)
        assert gone not in now and not set(now[len(kept) :]) & set(old)
    old_pairs, new_pairs = pairs(before, segment_ids), pairs(after, segment_ids)
    lost = old_pairs - new_pairs
    assert lost == {(s, node) for s, node in old_pairs if node == gone}
    # The leaver had ~1/N of all the assignments.
    p_gone = before.width / len(nodes)
    assert abs(len(lost) - CHURN_SEGMENTS * p_gone) <= binomial_slack(CHURN_SEGMENTS, p_gone)


# --- stability of the hash ------------------------------------------------------------------------------


def test_weight_follows_the_documented_formula() -> None:
    """blake2b-64 node key XOR splitmix64(segment), through the splitmix64 finaliser."""
    mask = 2**64 - 1

    def fmix(z: int) -> int:
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        return z ^ (z >> 31)

    for node in ["ro-0", "nœud-ü", "10.0.0.5:19530"]:
        key = int.from_bytes(
            hashlib.blake2b(node.encode(), digest_size=8, person=b"mishards-hrw-v1").digest(), "little"
        )
        assert node_key(node) == key
        for s in [0, 1, -1, 12345, 2**63 - 1]:
            assert weight(node, s) == fmix(key ^ fmix((s + 0x9E3779B97F4A7C15) & mask))


PINNED_WEIGHTS = [
    ("ro-0", 0, 7122891418690900754),
    ("ro-1", 1, 7548758111925954914),
    ("10.0.0.5:19530", 42, 6362914616597318841),
    ("nœud-ü", -1, 12086959792562739022),
    ("ro-7", 2**63 - 1, 4074902642229218259),
]

PINNED_NODES = ("ro-0", "ro-1", "ro-2", "ro-3", "ro-4")
PINNED_REPLICAS = {
    0: ("ro-4", "ro-2", "ro-0"),
    1: ("ro-2", "ro-1", "ro-4"),
    2: ("ro-0", "ro-4", "ro-2"),
    3: ("ro-2", "ro-0", "ro-4"),
    17: ("ro-4", "ro-1", "ro-3"),
    1000: ("ro-0", "ro-3", "ro-2"),
    123456789: ("ro-0", "ro-4", "ro-3"),
    -7: ("ro-4", "ro-2", "ro-0"),
    2**62: ("ro-1", "ro-4", "ro-3"),
}


@pytest.mark.parametrize(("node", "segment_id", "expected"), PINNED_WEIGHTS)
def test_weight_is_pinned(node: str, segment_id: int, expected: int) -> None:
    assert weight(node, segment_id) == expected


def test_replicas_are_pinned() -> None:
    """Every process, on every Python version, must place these segments exactly so."""
    assert node_key("ro-0") == 4421262738895376445
    for s, expected in PINNED_REPLICAS.items():
        assert replicas(s, PINNED_NODES, 3) == expected
        assert replicas(s, PINNED_NODES[::-1], 2) == expected[:2]
    ids = [*PINNED_REPLICAS, *range(10**6, 10**6 + 40)]  # enough for the numpy path
    table = Placement.of(PINNED_NODES, 3).replica_map(ids)
    assert {s: table[s] for s in PINNED_REPLICAS} == PINNED_REPLICAS


def test_the_replica_cache_is_bounded_and_answers_do_not_change(monkeypatch: pytest.MonkeyPatch) -> None:
    import coordinator.placement as placement_module

    fresh = Placement.of(["a", "b", "c"], r=2)
    expected = {s: fresh.replicas(s) for s in range(100)}
    monkeypatch.setattr(placement_module, "CACHE_LIMIT", 10)
    bounded = Placement.of(["a", "b", "c"], r=2)
    assert {s: bounded.replicas(s) for s in range(100)} == expected
    assert bounded.replica_map(range(100, 200)) == {s: fresh.replicas(s) for s in range(100, 200)}
    assert len(bounded._cache) <= 10
