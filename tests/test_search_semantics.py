"""Search semantics of Milvus 1.1.1 on a node and through the proxy (1 writer + 2 read nodes, each segment on one
of them, so the proxy merges), checked against an exact numpy oracle:

- a search of exactly searched segments may ask for another metric of the collection's kind (``metric_type`` in
  its params): L2 <-> IP, and any pair of HAMMING, JACCARD, TANIMOTO, SUBSTRUCTURE, SUPERSTRUCTURE, for Search,
  SearchByID and SearchInFiles; anything else is ILLEGAL_ARGUMENT; indexed segments keep the collection's metric;
- results are ``min(topk, live rows)`` wide whatever the index type, deleted rows never count nor come back; with
  every row deleted a search answers ``row_num`` 0 (as 1.1, whose file row counts drop by the deletes a flush
  applies), and SearchByID keeps a row per id;
- SearchByID looks the ids up in the whole collection whatever the search's partition tags, and answers
  "Collection or partition is empty" when nothing is flushed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from coordinator.catalog import Catalog
from milvus_wire import milvus_pb2
from tests.support.cluster import LocalCluster
from tests.support.requests import (
    BINARY_METRICS,
    HAMMING,
    IP,
    JACCARD,
    L2,
    METRIC_NAMES,
    NO_ID,
    SUBSTRUCTURE,
    SUPERSTRUCTURE,
    TANIMOTO,
    TimedStub,
    assert_search_exact,
    assert_status,
    create,
    delete,
    flush,
    insert_ok,
    ok,
    search,
    search_by_id,
    search_in_files,
    unique_name,
)

DIM = 8
BIN_DIM = 128
ROWS = 200  # per segment of the metric collections
INDEXED_ROWS = 4100  # per segment of the index-type collections: Milvus indexes segments from 4,096 rows
KEPT = 5  # live rows left per segment of the index-type collections
ILLEGAL_ARGUMENT, UNEXPECTED_ERROR = 5, 1
FLOAT_PAIRS = [(L2, IP), (IP, L2)]
BINARY_PAIRS = [(c, r) for c in sorted(BINARY_METRICS) for r in sorted(BINARY_METRICS) if c != r]


def _name(pair: tuple[int, int]) -> str:
    return f"{METRIC_NAMES[pair[0]]}-as-{METRIC_NAMES[pair[1]]}"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with LocalCluster(tmp_path_factory.mktemp("semantics"), readers=2, replication=1) as c:
        yield c


def _stubs(cluster: LocalCluster) -> dict[str, Any]:
    return {"node": TimedStub(cluster.writer.stub()), "proxy": TimedStub(cluster.stub())}


def _file_ids(cluster: LocalCluster, name: str) -> list[int]:
    catalog = Catalog(cluster.meta_uri)
    try:
        snap = catalog.snapshot()
        return [seg.id for seg in snap.segments_of(snap.collections[name].id)]
    finally:
        catalog.close()


def _vectors(rng: np.random.Generator, metric: int, n: int) -> np.ndarray:
    if metric in BINARY_METRICS:
        # Sparse bits: sub/superstructure matches (and Hamming ties) are common, as in real fingerprints.
        return np.packbits(rng.random((n, BIN_DIM)) < 0.08, axis=1)
    return rng.standard_normal((n, DIM)).astype(np.float32)


@pytest.fixture(scope="module")
def by_metric(cluster: LocalCluster) -> dict[int, dict[str, Any]]:
    """A FLAT collection per metric: two segments in ``_default`` and one in partition ``p1``."""
    s = TimedStub(cluster.stub())
    rng = np.random.default_rng(11)
    out: dict[int, dict[str, Any]] = {}
    for metric in METRIC_NAMES:
        name = unique_name(f"m{metric}")
        ok(create(s, name, BIN_DIM if metric in BINARY_METRICS else DIM, metric))
        ok(s.CreatePartition(milvus_pb2.PartitionParam(collection_name=name, tag="p1")))
        bases, ids = [], []
        for tag in ("", "", "p1"):
            x = _vectors(rng, metric, ROWS)
            ids.append(insert_ok(s, name, x, tag=tag))
            bases.append(x)
            ok(flush(s, name))
        out[metric] = {"name": name, "base": np.concatenate(bases), "ids": np.concatenate(ids),
                       "default": (np.concatenate(bases[:2]), np.concatenate(ids[:2])), "p1": (bases[2], ids[2]),
                       "queries": np.concatenate([_vectors(rng, metric, 3), bases[0][:2], bases[2][:1]])}
    return out


# -- search-time metric ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("pair", FLOAT_PAIRS + BINARY_PAIRS, ids=_name)
def test_a_flat_search_may_ask_for_another_metric(cluster: LocalCluster, by_metric: dict[int, dict[str, Any]],
                                                  pair: tuple[int, int]) -> None:
    collection, wanted = pair
    data = by_metric[collection]
    name, base, ids, queries = data["name"], data["base"], data["ids"], data["queries"]
    params = {"metric_type": wanted}
    for where, stub in _stubs(cluster).items():
        for k in (1, 7, 3 * ROWS + 5):
            st, got, dist = search(stub, name, queries, k, params=params)
            ok(st)
            assert_search_exact(got, dist, base, ids, queries, k, wanted)
            assert got.shape == (len(queries), min(k, len(ids))), where
        st, got, dist = search(stub, name, queries, 10, tags=["p1"], params=params)
        ok(st)
        p1_base, p1_ids = data["p1"]
        assert_search_exact(got, dist, p1_base, p1_ids, queries, 10, wanted)
        # SearchByID: the stored vectors of these ids, searched under the metric asked for.
        wanted_ids = [int(ids[3]), int(data["p1"][1][0]), 987654321]
        st, got, dist = search_by_id(stub, name, wanted_ids, 6, params=params)
        ok(st)
        assert got.shape == (3, 6) and (got[2] == NO_ID).all()
        stored = base[[3, 2 * ROWS]]
        assert_search_exact(got[:2], dist[:2], base, ids, stored, 6, wanted)
    files = _file_ids(cluster, name)
    for reader in cluster.readers:  # SearchInFiles on a read node (what the proxy sends it)
        st, got, dist = search_in_files(TimedStub(reader.stub()), name, files, queries, 9, params=params)
        ok(st)
        assert_search_exact(got, dist, base, ids, queries, 9, wanted)


def test_asking_for_the_collections_own_metric_changes_nothing(cluster: LocalCluster,
                                                                by_metric: dict[int, dict[str, Any]]) -> None:
    for metric in (L2, JACCARD):
        data = by_metric[metric]
        for stub in _stubs(cluster).values():
            st, got, dist = search(stub, data["name"], data["queries"], 8, params={"metric_type": metric})
            ok(st)
            assert_search_exact(got, dist, data["base"], data["ids"], data["queries"], 8, metric)


@pytest.mark.parametrize(("collection", "value", "shown", "kind"), [
    (L2, 3, "3", "float"), (IP, "IP", '"IP"', "float"), (L2, 2.5, "2.5", "float"),
    (JACCARD, 2, "2", "binary"), (HAMMING, 0, "0", "binary"), (SUPERSTRUCTURE, 8, "8", "binary"),
])
def test_a_metric_of_the_other_kind_is_an_illegal_argument(cluster: LocalCluster,
                                                           by_metric: dict[int, dict[str, Any]], collection: int,
                                                           value: Any, shown: str, kind: str) -> None:
    accepted = ("1 (L2) or 2 (IP)" if kind == "float" else
                "3 (HAMMING), 4 (JACCARD), 5 (TANIMOTO), 6 (SUBSTRUCTURE) or 7 (SUPERSTRUCTURE)")
    reason = f"Illegal metric type: {shown}. A search of a {kind} collection may ask for metric_type {accepted}."
    data = by_metric[collection]
    params = {"metric_type": value}
    files = _file_ids(cluster, data["name"])
    for stub in _stubs(cluster).values():
        assert_status(search(stub, data["name"], data["queries"], 5, params=params)[0], ILLEGAL_ARGUMENT, reason)
        assert_status(search_by_id(stub, data["name"], data["ids"][:2], 5, params=params)[0], ILLEGAL_ARGUMENT,
                      reason)
        assert_status(search_in_files(stub, data["name"], files, data["queries"], 5, params=params)[0],
                      ILLEGAL_ARGUMENT, reason)


def test_indexed_segments_keep_the_collections_metric(cluster: LocalCluster) -> None:
    """Milvus 1.1 honours ``metric_type`` only for files searched as IDMAP: an IVF collection's indexed segment
    answers L2 whatever is asked, while a segment too small to be indexed answers the metric asked for."""
    s = TimedStub(cluster.stub())
    rng = np.random.default_rng(5)
    indexed, small = unique_name("ivf_big"), unique_name("ivf_small")
    big_base, small_base = rng.standard_normal((INDEXED_ROWS, DIM)).astype(np.float32), _vectors(rng, L2, 300)
    for name, base in ((indexed, big_base), (small, small_base)):
        ok(create(s, name, DIM, L2))
        ids = insert_ok(s, name, base)
        ok(s.CreateIndex(milvus_pb2.IndexParam(collection_name=name, index_type=2, extra_params=[
            milvus_pb2.KeyValuePair(key="params", value=json.dumps({"nlist": 16}))]), timeout=120))
        if name == indexed:
            big_ids = ids
        else:
            small_ids = ids
    assert {seg.state for seg in _segments(cluster, indexed)} == {3}  # INDEX
    queries = rng.standard_normal((4, DIM)).astype(np.float32)
    params = {"nprobe": 16, "metric_type": IP}  # nprobe = nlist: the IVF search is exact
    for stub in _stubs(cluster).values():
        st, got, dist = search(stub, indexed, queries, 10, params=params)
        ok(st)
        assert_search_exact(got, dist, big_base, big_ids, queries, 10, L2)
        st, got, dist = search(stub, small, queries, 10, params=params)
        ok(st)
        assert_search_exact(got, dist, small_base, small_ids, queries, 10, IP)


def _segments(cluster: LocalCluster, name: str) -> list[Any]:
    catalog = Catalog(cluster.meta_uri)
    try:
        snap = catalog.snapshot()
        return list(snap.segments_of(snap.collections[name].id))
    finally:
        catalog.close()


# -- k' and deleted rows, every index type ----------------------------------------------------------------------

INDEXES = {
    "FLAT": (L2, 1, {}, {}),
    "IVF_FLAT": (L2, 2, {"nlist": 32}, {"nprobe": 32}),
    "IVF_SQ8": (L2, 3, {"nlist": 32}, {"nprobe": 32}),
    "IVF_PQ": (L2, 6, {"nlist": 32, "m": 4}, {"nprobe": 32}),
    "HNSW": (IP, 11, {"M": 8, "efConstruction": 40}, {"ef": 64}),
    "RNSG": (L2, 4, {"search_length": 40, "out_degree": 20, "candidate_pool_size": 100, "knng": 20},
             {"search_length": 40}),
    "ANNOY": (L2, 12, {"n_trees": 4}, {"search_k": -1}),
    "BIN_IVF_FLAT": (HAMMING, 2, {"nlist": 32}, {"nprobe": 32}),
    "BIN_FLAT": (TANIMOTO, 1, {}, {}),
}


@pytest.mark.parametrize("kind", list(INDEXES))
def test_results_are_as_wide_as_the_live_rows_and_every_id_keeps_its_row(cluster: LocalCluster, kind: str) -> None:
    metric, index_type, build, search_params = INDEXES[kind]
    s = TimedStub(cluster.stub())
    rng = np.random.default_rng(index_type * 100 + metric)
    name = unique_name(f"deleted_{kind.lower()}")
    ok(create(s, name, BIN_DIM if metric in BINARY_METRICS else DIM, metric))
    bases, ids = [], []
    for _ in range(2):
        bases.append(_vectors(rng, metric, INDEXED_ROWS))
        ids.append(insert_ok(s, name, bases[-1]))
        ok(flush(s, name))
    ok(s.CreateIndex(milvus_pb2.IndexParam(collection_name=name, index_type=index_type, extra_params=[
        milvus_pb2.KeyValuePair(key="params", value=json.dumps(build))]), timeout=300))
    if kind not in ("FLAT", "BIN_FLAT"):
        assert {seg.state for seg in _segments(cluster, name)} == {3}  # both segments indexed
    ok(delete(s, name, np.concatenate([i[KEPT:] for i in ids])))
    ok(flush(s, name))
    live_base = np.concatenate([b[:KEPT] for b in bases])
    live_ids = np.concatenate([i[:KEPT] for i in ids])
    queries = np.concatenate([live_base[:1], bases[0][-1:], _vectors(rng, metric, 2)])
    for where, stub in _stubs(cluster).items():
        st, got, dist = search(stub, name, queries, 50, params=search_params)
        ok(st)
        assert got.shape == (len(queries), 2 * KEPT), where  # k' = min(topk, live rows): deleted rows do not count
        assert set(got.ravel().tolist()) == set(live_ids.tolist())  # every live row found, no deleted one back
        if kind in ("FLAT", "IVF_FLAT", "BIN_IVF_FLAT", "BIN_FLAT", "HNSW", "ANNOY", "RNSG"):
            assert_search_exact(got, dist, live_base, live_ids, queries, 50, metric)
        st, got, _ = search_by_id(stub, name, [int(live_ids[0]), int(ids[0][-1])], 50, params=search_params)
        ok(st)
        assert got.shape == (2, 2 * KEPT) and got[0, 0] == live_ids[0] and (got[1] == NO_ID).all()
    ok(delete(s, name, live_ids))
    ok(flush(s, name))
    for where, stub in _stubs(cluster).items():
        st, got, _ = search(stub, name, queries, 50, params=search_params)
        ok(st)
        assert got.shape == (0, 0), where  # nothing left to search: row_num 0, as Milvus 1.1 answers
        st, got, dist = search_by_id(stub, name, live_ids[:3], 50, params=search_params)
        ok(st)
        assert (got == NO_ID).all() and got.shape[0] == 3, where  # one row per id, all holes


# -- SearchByID's scope ------------------------------------------------------------------------------------------


def test_search_by_id_finds_the_ids_in_every_partition(cluster: LocalCluster,
                                                       by_metric: dict[int, dict[str, Any]]) -> None:
    """Milvus 1.1 looks the ids up in the whole collection, then searches the partitions the tags select."""
    data = by_metric[L2]
    in_p1 = [int(data["p1"][1][0]), int(data["p1"][1][1])]
    default_base, default_ids = data["default"]
    for stub in _stubs(cluster).values():
        st, got, dist = search_by_id(stub, data["name"], in_p1, 4, tags=["_default"])
        ok(st)
        assert_search_exact(got, dist, default_base, default_ids, data["p1"][0][:2], 4, L2)


def test_search_by_id_of_a_collection_with_nothing_flushed(cluster: LocalCluster) -> None:
    s = TimedStub(cluster.stub())
    name = unique_name("unflushed")
    ok(create(s, name, DIM, L2))
    insert_ok(s, name, np.ones((3, DIM), np.float32))  # buffered only: the writer flushes on request here
    for stub in _stubs(cluster).values():
        st, got, _ = search(stub, name, np.ones((2, DIM), np.float32), 3)
        ok(st)
        assert got.shape == (0, 0)  # nothing searchable: row_num 0
        assert_status(search_by_id(stub, name, [1, 2], 3)[0], UNEXPECTED_ERROR, "Collection or partition is empty")


def test_a_binary_collection_without_matches_keeps_its_rows_wide(cluster: LocalCluster,
                                                                 by_metric: dict[int, dict[str, Any]]) -> None:
    """SUBSTRUCTURE / SUPERSTRUCTURE exclude non-matching rows: rows stay k' wide, padded with -1 and +FLT_MAX."""
    for metric in (SUBSTRUCTURE, SUPERSTRUCTURE):
        data = by_metric[metric]
        dense = np.full((1, BIN_DIM // 8), 0xFF if metric == SUBSTRUCTURE else 0x00, dtype=np.uint8)
        dense[0, 0] = 0x7F if metric == SUBSTRUCTURE else 0x80  # matches no stored row
        for stub in _stubs(cluster).values():
            st, got, dist = search(stub, data["name"], dense, 4)
            ok(st)
            if metric == SUPERSTRUCTURE:
                # Rows contained in the query: the empty fingerprint (if stored) or none; the oracle decides.
                assert_search_exact(got, dist, data["base"], data["ids"], dense, 4, metric)
            else:
                assert got.shape == (1, 4) and (got == NO_ID).all()
                assert (dist == np.finfo(np.float32).max).all()
