"""Scripted compatibility scenario: the real pymilvus 1.1.2 client against a Milvus 1.1 server.

Standalone script (not a pytest module, no project imports). It drives every RPC the node
implements through the public pymilvus API, checks each answer (search results against an exact
numpy oracle), and stops at the first failed check with a message and a non-zero exit status.

Usage::

    PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python python pymilvus_scenario.py --host 127.0.0.1 --port 19530
    PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python python pymilvus_scenario.py --port 19121 --handler HTTP

With ``--handler HTTP`` the same checks run through pymilvus' REST client (``Milvus(..., handler="HTTP")``,
Milvus 1.1's web server API). Six things differ on the client's side only: its search results have no
``id_array`` / ``distance_array`` (the scenario reads the hits of each row instead), it cannot encode numpy
arrays (the scenario sends lists), it turns the empty entry of an id not found in a binary collection into
``b""`` (bytes, like the others), its ``reload_segments``
raises NotImplementedError without calling the server (skipped), and its URL library removes ``..`` path
segments, so the invalid name sent in URLs is ``..x`` (``../x`` would reach the server as another path), and
its ``get_config`` of an unknown key returns a bare ``Status`` instead of a tuple.

Exit status: 0 all checks passed (last line ``pymilvus scenario: N checks passed``), 1 a check
failed, 2 an unexpected exception, 3 pymilvus 1.1.2 cannot be imported.

The scenario expects a server that has nothing else running against it: it switches automatic
flushing off (``storage.auto_flush_interval`` 0) so that "unflushed data are invisible" can be
checked, and restores the setting at the end.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import traceback
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

with warnings.catch_warnings():
    # pymilvus 1.1.2 imports pkg_resources, which warns about its own deprecation.
    warnings.simplefilter("ignore", UserWarning)
    try:
        from milvus import IndexType, MetricType, Milvus, Status  # type: ignore[import-untyped]
    except ImportError as exc:
        print(
            f"pymilvus scenario: cannot import pymilvus 1.1.2 ({exc}). "
            "Run scripts/bootstrap.sh to install it into the project venv.",
            file=sys.stderr,
        )
        sys.exit(3)

EXPECTED_VERSION = "1.1.1"
DIM = 16
BIN_DIM = 64
TOP_K = 10
RTOL = 1e-4
ATOL = 1e-4
BINARY_METRICS = ("HAMMING", "JACCARD", "TANIMOTO", "SUBSTRUCTURE", "SUPERSTRUCTURE")
# Collections of the index-type step: one segment big enough to be indexed (Milvus builds from 4,096 rows).
TYPE_ROWS = 6000
TYPE_QUERIES = 20
TYPE_BIN_DIM = 128


class CheckFailed(Exception):
    """A scenario expectation did not hold."""


Records = list[list[float]]


def rows(vectors: np.ndarray) -> Records:
    """float32 rows as the plain lists pymilvus sends (each value exactly a float32)."""
    return [[float(x) for x in row] for row in vectors]


def bin_rows(codes: np.ndarray) -> list[bytes]:
    return [bytes(row.tobytes()) for row in codes]


def id_array(result: Any) -> list[list[int]]:
    """The ids of every row of a search result (the REST client's results only give the hits row by row)."""
    if hasattr(result, "id_array"):
        return [list(row) for row in result.id_array]
    return [[hit.id for hit in row] for row in result]


def distance_array(result: Any) -> list[list[float]]:
    if hasattr(result, "distance_array"):
        return [list(row) for row in result.distance_array]
    return [[hit.distance for hit in row] for row in result]


# -- exact oracles -------------------------------------------------------------------------------


def float_oracle(metric: str, data: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """(nq, n) distances in float64: squared L2, or inner product."""
    d = data.astype(np.float64)
    q = queries.astype(np.float64)
    if metric == "IP":
        return q @ d.T
    out: np.ndarray = ((q[:, None, :] - d[None, :, :]) ** 2).sum(axis=2)
    return out


def binary_oracle(metric: str, data: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """(nq, n) Milvus 1.1 binary distances; NaN marks rows that are no candidate at all.

    SUBSTRUCTURE keeps rows that contain every bit of the query (the query is a substructure of
    the row), SUPERSTRUCTURE rows whose bits all lie in the query; both report distance 0, as the
    faiss fork of Milvus 1.1 does.
    """
    q = queries[:, None, :]
    b = data[None, :, :]
    inter = np.bitwise_count(q & b).sum(axis=2).astype(np.float64)
    union = np.bitwise_count(q | b).sum(axis=2).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        if metric == "HAMMING":
            out: np.ndarray = np.bitwise_count(q ^ b).sum(axis=2).astype(np.float64)
            return out
        if metric == "JACCARD":
            return 1.0 - inter / union
        if metric == "TANIMOTO":
            return -np.log2(inter / union)
    if metric == "SUBSTRUCTURE":
        match = ((q & b) == q).all(axis=2)
    elif metric == "SUPERSTRUCTURE":
        match = ((q & b) == b).all(axis=2)
    else:
        raise ValueError(metric)
    return np.where(match, 0.0, np.nan)


# -- the scenario --------------------------------------------------------------------------------


class Scenario:
    def __init__(self, host: str, port: int, handler: str = "GRPC", scheme: str = "") -> None:
        self.host = host
        self.port = port
        self.handler = handler
        self.scheme = scheme  # "https": pymilvus' REST client given an https:// URI (CA from REQUESTS_CA_BUNDLE)
        self.http = handler == "HTTP"
        # An invalid collection name that reaches the server inside a URL path (see the module's docstring).
        self.bad_name = "..x" if self.http else "../x"
        self.passed = 0
        self.rng = np.random.default_rng(20210420)
        self.prefix = f"compat{os.getpid()}"
        self.client: Any = None

    # -- check helpers -------------------------------------------------------------------------

    def check(self, condition: bool, what: str) -> None:
        if not condition:
            raise CheckFailed(what)
        self.passed += 1

    def ok(self, status: Any, what: str) -> None:
        self.check(bool(status.OK()), f"{what}: expected success, got {status!r}")

    def code(self, status: Any, code: int, what: str) -> None:
        self.check(status.code == code, f"{what}: expected error code {code}, got {status!r}")

    def failed(self, status: Any, what: str) -> None:
        self.check(not status.OK(), f"{what}: expected an error status, got {status!r}")

    def section(self, title: str) -> None:
        print(f"== {title}", flush=True)

    def check_topk(self, what: str, result: Any, oracle: np.ndarray, row_ids: np.ndarray, k: int,
                   descending: bool = False) -> None:
        """Compare a pymilvus TopKQueryResult with an exact oracle, tolerating ties.

        ``oracle`` is (nq, n) over the rows ``row_ids`` that may be found; NaN = never a hit.
        Every returned id must be a candidate whose oracle distance equals the returned one, the
        distances must be the best ``min(k, candidates)`` in order, and ids must not repeat.
        Together this pins the ids wherever distances are unique.
        """
        id_rows = id_array(result)
        dist_rows = distance_array(result)
        nq = oracle.shape[0]
        self.check(len(id_rows) == nq and len(dist_rows) == nq,
                   f"{what}: expected {nq} result rows, got {len(id_rows)}")
        col_of = {int(r): c for c, r in enumerate(row_ids)}
        for qi in range(nq):
            ids = [int(x) for x in id_rows[qi]]
            dists = np.asarray(dist_rows[qi], dtype=np.float64)
            candidates = oracle[qi][~np.isnan(oracle[qi])]
            want = min(k, int(candidates.size))
            self.check(len(ids) == want and dists.size == want,
                       f"{what} query {qi}: expected {want} hits, got {len(ids)}: {ids}")
            self.check(len(set(ids)) == len(ids), f"{what} query {qi}: duplicate ids {ids}")
            unknown = [i for i in ids if i not in col_of or np.isnan(oracle[qi, col_of[i]])]
            self.check(not unknown, f"{what} query {qi}: ids {unknown} are not candidates")
            actual = oracle[qi, [col_of[i] for i in ids]]
            self.check(bool(np.allclose(dists, actual, rtol=RTOL, atol=ATOL)),
                       f"{what} query {qi}: returned distances {dists.tolist()} differ from the "
                       f"exact distances of the returned ids {actual.tolist()}")
            best = np.sort(candidates)
            if descending:
                best = best[::-1]
            best = best[:want]
            self.check(bool(np.allclose(dists, best, rtol=RTOL, atol=ATOL)),
                       f"{what} query {qi}: distances {dists.tolist()} are not the exact top-{k} "
                       f"{best.tolist()}")
            steps = np.diff(dists)
            ordered = bool(np.all(steps <= 1e-6)) if descending else bool(np.all(steps >= -1e-6))
            self.check(ordered, f"{what} query {qi}: distances out of order {dists.tolist()}")

    def search_ok(self, what: str, coll: str, k: int, queries: Any, **kwargs: Any) -> Any:
        status, result = self.client.search(coll, k, queries, **kwargs)
        self.ok(status, what)
        return result

    def live_ids_via_segments(self, coll: str) -> dict[str, set[int]]:
        """Ids per partition tag, read segment by segment (stats + list_id_in_segment).

        Background merges may retire a segment between the two calls; then read again.
        """
        for _ in range(10):
            status, stats = self.client.get_collection_stats(coll)
            self.ok(status, f"get_collection_stats({coll})")
            out: dict[str, set[int]] = {}
            retry = False
            for part in stats["partitions"]:
                ids: set[int] = set()
                for seg in part["segments"] or []:
                    st, seg_ids = self.client.list_id_in_segment(coll, seg["name"])
                    if not st.OK():
                        retry = True
                        break
                    self.check(len(seg_ids) == seg["row_count"],
                               f"list_id_in_segment({coll}, {seg['name']}): {len(seg_ids)} ids but the "
                               f"segment reports row_count {seg['row_count']}")
                    ids.update(int(i) for i in seg_ids)
                out[part["tag"]] = ids
            if not retry:
                return out
            time.sleep(0.2)
        raise CheckFailed(f"segments of {coll} kept changing while being listed")

    # -- steps ---------------------------------------------------------------------------------

    def run(self) -> None:
        self.section(f"connect to {self.host}:{self.port}")
        if self.scheme:
            self.client = Milvus(uri=f"{self.scheme}://{self.host}:{self.port}", handler=self.handler)
        else:
            self.client = Milvus(host=self.host, port=str(self.port), handler=self.handler)
        try:
            self.commands()
            self.collections()
            self.partitions()
            self.empty_collection()
            self.inserts()
            self.stats_and_segments()
            self.entities()
            self.float_searches()
            self.binary_searches()
            self.segment_searches()
            self.deletes_and_compact()
            self.indexes()
            self.index_types()
            self.milvus_111_semantics()
            self.cache_ops()
            self.drops()
            self.restore_config()
        finally:
            self.restore_quietly()
            self.client.close()

    def restore_quietly(self) -> None:
        """Best effort after a failure: give the server its automatic flushing back."""
        try:
            if hasattr(self, "flush_interval"):
                self.client.set_config("storage", "auto_flush_interval", self.flush_interval)
        except Exception as exc:  # the scenario's own failure is what gets reported
            print(f"(could not restore auto_flush_interval: {exc})", flush=True)

    def commands(self) -> None:
        self.section("Cmd: version, status, mode, get_config / set_config")
        c = self.client
        status, version = c.server_version()
        self.ok(status, "server_version")
        self.check(version == EXPECTED_VERSION, f"server_version: expected {EXPECTED_VERSION!r}, got {version!r}")
        status, reply = c.server_status()
        self.ok(status, "server_status")
        self.check(reply == "OK", f"server_status: expected 'OK', got {reply!r}")
        status, mode = c._cmd("mode")
        self.ok(status, "_cmd('mode')")
        self.check(mode == "CPU", f"_cmd('mode'): expected 'CPU', got {mode!r}")
        status, reply = c._cmd("no_such_command")
        self.ok(status, "_cmd(unknown)")
        self.check(reply == "Unknown command", f"_cmd(unknown): expected 'Unknown command', got {reply!r}")

        status, self.cache_size = c.get_config("cache", "cache_size")
        self.ok(status, "get_config cache.cache_size")
        self.check(bool(self.cache_size), "get_config cache.cache_size: empty value")
        self.ok(c.set_config("cache", "cache_size", "2GB")[0], "set_config cache.cache_size 2GB")
        status, value = c.get_config("cache", "cache_size")
        self.ok(status, "get_config cache.cache_size after set")
        self.check(value == "2GB", f"get_config cache.cache_size: expected '2GB' after set, got {value!r}")

        # The node runs with automatic flushing off (--auto-flush-interval 0), so that unflushed
        # rows can be shown to be invisible; change the setting and put it back.
        status, self.flush_interval = c.get_config("storage", "auto_flush_interval")
        self.ok(status, "get_config storage.auto_flush_interval")
        self.check(self.flush_interval == "0",
                   f"the scenario needs a node started with --auto-flush-interval 0, got {self.flush_interval!r}")
        self.ok(c.set_config("storage", "auto_flush_interval", "7")[0], "set_config storage.auto_flush_interval 7")
        status, value = c.get_config("storage", "auto_flush_interval")
        self.ok(status, "get_config storage.auto_flush_interval after set")
        self.check(value == "7", f"auto_flush_interval: expected '7' after set, got {value!r}")
        self.ok(c.set_config("storage", "auto_flush_interval", "0")[0], "set_config storage.auto_flush_interval 0")

        answer = c.get_config("no_such", "node")
        # pymilvus' REST client answers a key missing from the config map with a bare Status, not a tuple.
        status = answer if isinstance(answer, Status) else answer[0]
        self.code(status, Status.UNEXPECTED_ERROR, "get_config of an unknown node")

    def collections(self) -> None:
        self.section("create / has / describe / list collections")
        c = self.client
        p = self.prefix
        self.l2 = f"{p}_l2"
        self.ip = f"{p}_ip"
        self.uid = f"{p}_uid"
        self.bins = {m: f"{p}_bin_{m.lower()}" for m in BINARY_METRICS}
        specs = [(self.l2, DIM, MetricType.L2), (self.ip, DIM, MetricType.IP), (self.uid, DIM, MetricType.L2)]
        specs += [(name, BIN_DIM, getattr(MetricType, m)) for m, name in self.bins.items()]
        for name, dim, metric in specs:
            status = c.create_collection({"collection_name": name, "dimension": dim, "metric_type": metric,
                                          "index_file_size": 256})
            self.ok(status, f"create_collection({name}, {metric!r})")
        for name, dim, metric in specs:
            status, exists = c.has_collection(name)
            self.ok(status, f"has_collection({name})")
            self.check(exists is True, f"has_collection({name}): expected True, got {exists!r}")
            status, info = c.get_collection_info(name)
            self.ok(status, f"get_collection_info({name})")
            self.check(info.collection_name == name and info.dimension == dim and info.metric_type == metric
                       and info.index_file_size == 256,
                       f"get_collection_info({name}): unexpected {info!r}")
        status, exists = c.has_collection(f"{p}_missing")
        self.ok(status, "has_collection(missing)")
        self.check(exists is False, f"has_collection(missing): expected False, got {exists!r}")
        status, names = c.list_collections()
        self.ok(status, "list_collections")
        missing = {s[0] for s in specs} - set(names)
        self.check(not missing, f"list_collections: {sorted(missing)} missing from {names}")

        self.code(c.create_collection({"collection_name": self.l2, "dimension": DIM}),
                  Status.ILLEGAL_COLLECTION_NAME, "create_collection of an existing name")
        self.code(c.create_collection({"collection_name": "../x", "dimension": DIM}),
                  Status.ILLEGAL_COLLECTION_NAME, "create_collection('../x')")
        self.code(c.has_collection(self.bad_name)[0], Status.ILLEGAL_COLLECTION_NAME,
                  f"has_collection({self.bad_name!r})")
        self.code(c.create_collection({"collection_name": f"{p}_dim0", "dimension": 0}),
                  Status.ILLEGAL_DIMENSION, "create_collection with dimension 0")
        self.code(c.create_collection({"collection_name": f"{p}_dimbig", "dimension": 32769}),
                  Status.ILLEGAL_DIMENSION, "create_collection with dimension 32769")
        self.code(c.create_collection({"collection_name": f"{p}_bin12", "dimension": 12,
                                       "metric_type": MetricType.HAMMING}),
                  Status.ILLEGAL_DIMENSION, "create_collection of a binary collection with dimension 12")
        self.code(c.create_collection({"collection_name": f"{p}_ifs0", "dimension": DIM, "index_file_size": 0}),
                  Status.ILLEGAL_ARGUMENT, "create_collection with index_file_size 0")
        status, info = c.get_collection_info(f"{p}_missing")
        self.code(status, Status.COLLECTION_NOT_EXISTS, "get_collection_info(missing)")
        self.code(c.count_entities(f"{p}_missing")[0], Status.COLLECTION_NOT_EXISTS, "count_entities(missing)")

    def partitions(self) -> None:
        self.section("create / has / list / drop partitions")
        c = self.client
        self.tags = ["p_a", "p_b", "q_c", "zz_empty"]
        for tag in self.tags:
            self.ok(c.create_partition(self.l2, tag), f"create_partition({tag})")
        self.ok(c.create_partition(self.l2, "tmp_part"), "create_partition(tmp_part)")
        for tag in [*self.tags, "_default", "tmp_part"]:
            status, exists = c.has_partition(self.l2, tag)
            self.ok(status, f"has_partition({tag})")
            self.check(exists is True, f"has_partition({tag}): expected True, got {exists!r}")
        status, exists = c.has_partition(self.l2, "nope")
        self.ok(status, "has_partition(nope)")
        self.check(exists is False, f"has_partition(nope): expected False, got {exists!r}")
        status, parts = c.list_partitions(self.l2)
        self.ok(status, "list_partitions")
        tags = [part.tag for part in parts]
        self.check(tags[:1] == ["_default"] and set(tags) == {"_default", *self.tags, "tmp_part"}
                   and len(tags) == 6, f"list_partitions: unexpected {tags}")
        self.ok(c.drop_partition(self.l2, "tmp_part"), "drop_partition(tmp_part)")
        status, parts = c.list_partitions(self.l2)
        self.ok(status, "list_partitions after drop")
        self.check("tmp_part" not in [part.tag for part in parts], "drop_partition: tmp_part still listed")
        self.code(c.create_partition(self.l2, "p_a"), Status.UNEXPECTED_ERROR, "create_partition duplicate")
        self.code(c.create_partition(self.l2, "_default"), Status.UNEXPECTED_ERROR, "create_partition('_default')")
        self.code(c.drop_partition(self.l2, "_default"), Status.ILLEGAL_COLLECTION_NAME, "drop_partition('_default')")
        self.code(c.drop_partition(self.l2, "nope"), Status.UNEXPECTED_ERROR, "drop_partition(unknown)")
        self.code(c.create_partition(f"{self.prefix}_missing", "x"), Status.COLLECTION_NOT_EXISTS,
                  "create_partition on a missing collection")

    def empty_collection(self) -> None:
        self.section("reads of an empty collection")
        c = self.client
        status, count = c.count_entities(self.ip)
        self.ok(status, "count_entities(empty)")
        self.check(count == 0, f"count_entities(empty): expected 0, got {count!r}")
        result = self.search_ok("search(empty)", self.ip, TOP_K, rows(self.rng.random((2, DIM), dtype=np.float32)))
        self.check(len(result) == 0, f"search(empty): expected no result rows, got {len(result)}")
        status, _ = c.get_entity_by_id(self.ip, [1, 2])
        self.code(status, Status.UNEXPECTED_ERROR, "get_entity_by_id on an empty collection")
        status, stats = c.get_collection_stats(self.ip)
        self.ok(status, "get_collection_stats(empty)")
        self.check(stats.get("row_count") == 0 and [p["tag"] for p in stats["partitions"]] == ["_default"]
                   and stats["partitions"][0]["segments"] is None and stats["partitions"][0]["row_count"] == 0,
                   f"get_collection_stats(empty): unexpected {stats!r}")

    def inserts(self) -> None:
        self.section("insert (auto ids, partitions, user ids, binary) and flush")
        c = self.client
        rng = self.rng
        sizes = {"_default": 200, "p_a": 60, "p_b": 40, "q_c": 30}
        self.l2_data: dict[str, np.ndarray] = {}
        self.l2_ids: dict[str, np.ndarray] = {}
        for tag, n in sizes.items():
            data = rng.random((n, DIM), dtype=np.float32)
            if tag == "p_b":
                # A numpy array, which pymilvus' gRPC client also accepts (its REST client cannot encode one).
                records: Any = rows(data) if self.http else data
                status, ids = c.insert(self.l2, records, partition_tag=tag)
            elif tag == "_default":
                status, ids = c.insert(self.l2, rows(data))
            else:
                status, ids = c.insert(self.l2, rows(data), partition_tag=tag)
            self.ok(status, f"insert into {tag}")
            self.check(len(ids) == n and len(set(ids)) == n, f"insert into {tag}: {len(ids)} ids for {n} rows")
            self.l2_data[tag] = data
            self.l2_ids[tag] = np.asarray(ids, dtype=np.int64)
        all_ids = np.concatenate(list(self.l2_ids.values()))
        self.check(len(set(all_ids.tolist())) == all_ids.size, "insert: auto ids repeat across inserts")

        # Errors on insert.
        one = rows(rng.random((1, DIM), dtype=np.float32))
        self.code(c.insert(self.l2, one, ids=[1])[0], Status.ILLEGAL_VECTOR_ID,
                  "insert with ids into an auto-id collection")
        self.code(c.insert(self.l2, rows(rng.random((1, DIM + 1), dtype=np.float32)))[0],
                  Status.ILLEGAL_DIMENSION, "insert with the wrong dimension")
        self.code(c.insert(self.l2, one, partition_tag="nope")[0], Status.UNEXPECTED_ERROR,
                  "insert into an unknown partition")
        self.code(c.insert(f"{self.prefix}_missing", one)[0], Status.COLLECTION_NOT_EXISTS,
                  "insert into a missing collection")

        # Unflushed rows are invisible (automatic flushing is off, see above).
        status, count = c.count_entities(self.l2)
        self.ok(status, "count_entities before flush")
        self.check(count == 0, f"count_entities before flush: expected 0, got {count}")
        result = self.search_ok("search before flush", self.l2, TOP_K, one)
        self.check(len(result) == 0 or all(len(r) == 0 for r in id_array(result)),
                   f"search before flush: expected no hits, got {id_array(result)}")

        self.ok(c.flush([self.l2]), f"flush([{self.l2}])")
        status, count = c.count_entities(self.l2)
        self.ok(status, "count_entities after flush")
        self.check(count == all_ids.size, f"count_entities after flush: expected {all_ids.size}, got {count}")
        self.code(c.flush([f"{self.prefix}_missing"]), Status.COLLECTION_NOT_EXISTS, "flush of a missing collection")

        # User ids into a second collection.
        self.uid_data = rng.random((100, DIM), dtype=np.float32)
        self.uid_ids = np.arange(100, dtype=np.int64) * 7 + 10_000
        status, ids = c.insert(self.uid, rows(self.uid_data), ids=self.uid_ids.tolist())
        self.ok(status, "insert with user ids")
        self.check(ids == self.uid_ids.tolist(), "insert with user ids: ids not echoed in order")
        self.code(c.insert(self.uid, one)[0], Status.ILLEGAL_VECTOR_ID, "insert without ids into a user-id collection")

        # Inner product collection.
        self.ip_data = rng.standard_normal((120, DIM)).astype(np.float32)
        status, ids = c.insert(self.ip, rows(self.ip_data))
        self.ok(status, "insert into the IP collection")
        self.ip_ids = np.asarray(ids, dtype=np.int64)

        # Binary collections: the same codes in each, sent as bytes.
        codes = rng.integers(0, 256, size=(300, BIN_DIM // 8), dtype=np.uint8)
        codes[np.bitwise_count(codes).sum(axis=1) == 0, 0] = 1  # no all-zero code
        self.bin_data = codes
        self.bin_ids: dict[str, np.ndarray] = {}
        for metric, name in self.bins.items():
            status, ids = c.insert(name, bin_rows(codes))
            self.ok(status, f"insert binary vectors into {name}")
            self.check(len(ids) == codes.shape[0], f"insert into {name}: {len(ids)} ids")
            self.bin_ids[metric] = np.asarray(ids, dtype=np.int64)
        self.code(c.insert(self.bins["HAMMING"], [b"\x01" * 7])[0], Status.ILLEGAL_DIMENSION,
                  "insert binary vectors of the wrong length")

        self.ok(c.flush(), "flush() of all collections")
        expected = {self.uid: 100, self.ip: 120, **{name: codes.shape[0] for name in self.bins.values()}}
        for name, n in expected.items():
            status, count = c.count_entities(name)
            self.ok(status, f"count_entities({name})")
            self.check(count == n, f"count_entities({name}): expected {n}, got {count}")

    def stats_and_segments(self) -> None:
        self.section("get_collection_stats and list_id_in_segment")
        c = self.client
        status, stats = c.get_collection_stats(self.l2)
        self.ok(status, "get_collection_stats")
        total = sum(len(v) for v in self.l2_ids.values())
        self.check(stats.get("row_count") == total, f"stats row_count: expected {total}, got {stats.get('row_count')}")
        parts = stats["partitions"]
        self.check([p["tag"] for p in parts] == ["_default", *self.tags],
                   f"stats partitions: expected _default first then {self.tags}, got {[p['tag'] for p in parts]}")
        for part in parts:
            expected = len(self.l2_ids.get(part["tag"], ()))
            self.check(part["row_count"] == expected,
                       f"stats partition {part['tag']}: row_count {part['row_count']}, expected {expected}")
            if expected == 0:
                self.check(part["segments"] is None, f"stats partition {part['tag']}: segments should be null")
                continue
            segs = part["segments"]
            self.check(isinstance(segs, list) and len(segs) >= 1, f"stats partition {part['tag']}: no segments")
            for seg in segs:
                self.check(set(seg) == {"data_size", "index_name", "name", "row_count"}
                           and isinstance(seg["name"], str) and seg["data_size"] > 0,
                           f"stats segment of {part['tag']}: unexpected {seg!r}")
            self.check(sum(s["row_count"] for s in segs) == expected,
                       f"stats partition {part['tag']}: segment row counts do not add up")
        self.first_segment = parts[0]["segments"][0]["name"]
        by_tag = self.live_ids_via_segments(self.l2)
        for tag, ids in self.l2_ids.items():
            self.check(by_tag.get(tag) == set(ids.tolist()),
                       f"list_id_in_segment: ids of partition {tag} do not match the inserted ids")
        status, ids = c.list_id_in_segment(self.l2, "no_such_segment")
        self.code(status, Status.UNEXPECTED_ERROR, "list_id_in_segment of an unknown segment")

    def entities(self) -> None:
        self.section("get_entity_by_id")
        c = self.client
        d_ids, d_data = self.l2_ids["_default"], self.l2_data["_default"]
        a_ids, a_data = self.l2_ids["p_a"], self.l2_data["p_a"]
        missing = int(max(np.concatenate(list(self.l2_ids.values())))) + 12345
        wanted = [int(d_ids[3]), missing, int(a_ids[7]), int(d_ids[150])]
        status, vectors = c.get_entity_by_id(self.l2, wanted)
        self.ok(status, "get_entity_by_id")
        self.check(len(vectors) == 4, f"get_entity_by_id: expected 4 entries, got {len(vectors)}")
        for got, want, label in ((vectors[0], d_data[3], "default row"), (vectors[2], a_data[7], "p_a row"),
                                 (vectors[3], d_data[150], "default row 150")):
            self.check(isinstance(got, list) and np.array_equal(np.asarray(got, dtype=np.float32), want),
                       f"get_entity_by_id: {label} differs from the inserted vector")
        self.check(vectors[1] == [], f"get_entity_by_id: missing id should give [], got {vectors[1]!r}")

        status, vectors = c.get_entity_by_id(self.l2, [int(a_ids[0]), int(d_ids[0])], partition_tag="p_a")
        self.ok(status, "get_entity_by_id with partition_tag")
        self.check(len(vectors) == 2 and np.array_equal(np.asarray(vectors[0], dtype=np.float32), a_data[0])
                   and vectors[1] == [],
                   "get_entity_by_id(partition_tag='p_a'): expected the p_a row and [] for the default row")

        status, vectors = c.get_entity_by_id(self.uid, [int(self.uid_ids[5]), 3])
        self.ok(status, "get_entity_by_id with user ids")
        self.check(np.array_equal(np.asarray(vectors[0], dtype=np.float32), self.uid_data[5]) and vectors[1] == [],
                   "get_entity_by_id(user ids): wrong vectors")

        name = self.bins["HAMMING"]
        ids = self.bin_ids["HAMMING"]
        status, vectors = c.get_entity_by_id(name, [int(ids[0]), int(ids[299]), missing])
        self.ok(status, "get_entity_by_id on a binary collection")
        # The REST client turns every entry of a binary collection into bytes, the empty one of a missing id too.
        nothing = b"" if self.http else []
        self.check(vectors[:2] == bin_rows(self.bin_data[[0, 299]]) and vectors[2] == nothing,
                   f"get_entity_by_id(binary): expected the inserted bytes and [], got {vectors!r}")
        self.code(c.get_entity_by_id(f"{self.prefix}_missing", [1])[0], Status.COLLECTION_NOT_EXISTS,
                  "get_entity_by_id on a missing collection")

    def l2_rows(self, tags: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        return (np.concatenate([self.l2_data[t] for t in tags]), np.concatenate([self.l2_ids[t] for t in tags]))

    def float_searches(self) -> None:
        self.section("search: float L2 / IP, nq > 1, partition tags, errors")
        c = self.client
        rng = self.rng
        data, ids = self.l2_rows(["_default", "p_a", "p_b", "q_c"])
        self.queries = np.concatenate([rng.random((3, DIM), dtype=np.float32),
                                       self.l2_data["_default"][[10]], self.l2_data["p_a"][[4]],
                                       self.l2_data["q_c"][[2]]])
        q = rows(self.queries)
        result = self.search_ok("search L2", self.l2, TOP_K, q, params={})
        self.check_topk("search L2", result, float_oracle("L2", data, self.queries), ids, TOP_K)
        for qi, own in ((3, self.l2_ids["_default"][10]), (4, self.l2_ids["p_a"][4]), (5, self.l2_ids["q_c"][2])):
            self.check(id_array(result)[qi][0] == own and abs(distance_array(result)[qi][0]) < 1e-4,
                       f"search L2: a stored vector should find itself first (query {qi})")

        for tags, chosen in ((["p_.*"], ["p_a", "p_b"]), (["_default", "q_c"], ["_default", "q_c"]),
                             (["p_a"], ["p_a"])):
            data_t, ids_t = self.l2_rows(chosen)
            result = self.search_ok(f"search partition_tags={tags}", self.l2, TOP_K, q, partition_tags=tags)
            self.check_topk(f"search partition_tags={tags}", result, float_oracle("L2", data_t, self.queries),
                            ids_t, TOP_K)
        data_t, ids_t = self.l2_rows(["q_c"])
        result = self.search_ok("search top_k > rows", self.l2, 50, q, partition_tags=["q_c"])
        self.check_topk("search top_k > rows", result, float_oracle("L2", data_t, self.queries), ids_t, 50)

        ip_queries = rng.standard_normal((4, DIM)).astype(np.float32)
        result = self.search_ok("search IP", self.ip, TOP_K, rows(ip_queries))
        self.check_topk("search IP", result, float_oracle("IP", self.ip_data, ip_queries), self.ip_ids, TOP_K,
                        descending=True)
        # Milvus 1.1's search-time metric on FLAT (params "metric_type"): inner products of an L2 collection,
        # descending, and squared distances of an IP collection; a binary metric on floats is refused.
        result = self.search_ok("search L2 collection with metric_type IP", self.l2, TOP_K, q,
                                params={"metric_type": int(MetricType.IP)})
        self.check_topk("search L2 collection with metric_type IP", result, float_oracle("IP", data, self.queries),
                        ids, TOP_K, descending=True)
        result = self.search_ok("search IP collection with metric_type L2", self.ip, TOP_K, rows(ip_queries),
                                params={"metric_type": int(MetricType.L2)})
        self.check_topk("search IP collection with metric_type L2", result,
                        float_oracle("L2", self.ip_data, ip_queries), self.ip_ids, TOP_K)
        self.code(c.search(self.l2, TOP_K, q, params={"metric_type": int(MetricType.HAMMING)})[0],
                  Status.ILLEGAL_ARGUMENT, "search of an L2 collection with metric_type HAMMING")
        result = self.search_ok("search user ids", self.uid, 5, q[:2])
        self.check_topk("search user ids", result, float_oracle("L2", self.uid_data, self.queries[:2]),
                        self.uid_ids, 5)

        self.code(c.search(self.l2, 0, q)[0], Status.ILLEGAL_TOPK, "search with top_k 0")
        self.code(c.search(self.l2, 1_048_577, q)[0], Status.ILLEGAL_TOPK, "search with top_k 1048577")
        self.code(c.search(f"{self.prefix}_missing", TOP_K, q)[0], Status.COLLECTION_NOT_EXISTS,
                  "search of a missing collection")
        self.code(c.search(self.bad_name, TOP_K, q)[0], Status.ILLEGAL_COLLECTION_NAME, f"search of {self.bad_name!r}")
        self.code(c.search(self.l2, TOP_K, rows(rng.random((2, DIM - 1), dtype=np.float32)))[0],
                  Status.ILLEGAL_DIMENSION, "search with the wrong dimension")
        self.code(c.search(self.l2, TOP_K, q, partition_tags=["nomatch"])[0], Status.UNEXPECTED_ERROR,
                  "search with partition tags that match nothing")

    def binary_searches(self) -> None:
        self.section("search: binary HAMMING / JACCARD / TANIMOTO / SUBSTRUCTURE / SUPERSTRUCTURE")
        rng = self.rng
        codes = self.bin_data
        width = BIN_DIM // 8
        sub_of_3 = codes[3] & rng.integers(0, 256, size=width, dtype=np.uint8)
        if not np.bitwise_count(sub_of_3).sum():
            sub_of_3 = codes[3].copy()
        super_of_5 = codes[5] | rng.integers(0, 256, size=width, dtype=np.uint8)
        two_bits = np.zeros(width, dtype=np.uint8)
        two_bits[0], two_bits[4] = 0x01, 0x80
        queries = np.stack([
            *rng.integers(0, 256, size=(3, width), dtype=np.uint8),
            codes[17],
            sub_of_3,
            super_of_5,
            np.full(width, 0xFF, dtype=np.uint8),
            two_bits,
        ])
        q = bin_rows(queries)
        for metric, name in self.bins.items():
            oracle = binary_oracle(metric, codes, queries)
            result = self.search_ok(f"search {metric}", name, TOP_K, q)
            self.check_topk(f"search {metric}", result, oracle, self.bin_ids[metric], TOP_K)
        # The search-time metric on BIN_IDMAP: every binary collection searched under every other binary metric.
        for metric, name in self.bins.items():
            for other in BINARY_METRICS:
                if other == metric:
                    continue
                what = f"search {metric} collection with metric_type {other}"
                result = self.search_ok(what, name, TOP_K, q, params={"metric_type": int(getattr(MetricType, other))})
                self.check_topk(what, result, binary_oracle(other, codes, queries), self.bin_ids[metric], TOP_K)
        self.code(self.client.search(self.bins["JACCARD"], TOP_K, q, params={"metric_type": int(MetricType.IP)})[0],
                  Status.ILLEGAL_ARGUMENT, "search of a JACCARD collection with metric_type IP")
        # The structure metrics must really filter: sanity of the oracle's own expectations.
        sub = binary_oracle("SUBSTRUCTURE", codes, queries)
        sup = binary_oracle("SUPERSTRUCTURE", codes, queries)
        self.check(not np.isnan(sub[4, 3]) and not np.isnan(sup[5, 5]) and np.isnan(sub[6]).all()
                   and not np.isnan(sup[6]).any(), "binary oracle: structure queries are not what they should be")
        self.code(self.client.search(self.bins["HAMMING"], TOP_K, [b"\x00" * (width + 1)])[0],
                  Status.ILLEGAL_DIMENSION, "binary search with the wrong code length")

    def segment_searches(self) -> None:
        self.section("search_in_segment (numeric segment ids) and reload_segments")
        c = self.client
        probe = rows(self.queries[:1])
        # Segment ids are numbers counted from 1 in a fresh database; they are not reported by
        # any RPC, so find those of this collection by asking for each one in turn.
        found: list[int] = []
        for fid in range(1, 1001):
            status, _ = c.search_in_segment(self.l2, [fid], probe, 1)
            if status.OK():
                found.append(fid)
                if len(found) == 4:
                    break
        self.check(len(found) == 4, f"search_in_segment: expected 4 segment ids for 4 partitions, found {found}")
        self.l2_file_ids = found
        tag_of: dict[int, str] = {}
        for fid in found:
            status, result = c.search_in_segment(self.l2, [fid], probe, 1000)
            self.ok(status, f"search_in_segment([{fid}])")
            hit = set(id_array(result)[0])
            tags = [t for t, ids in self.l2_ids.items() if set(ids.tolist()) == hit]
            self.check(len(tags) == 1, f"search_in_segment([{fid}]): the rows are not those of one partition")
            tag_of[fid] = tags[0]
        self.check(sorted(tag_of.values()) == sorted(self.l2_ids),
                   f"search_in_segment: segments map to partitions {tag_of}")

        q = rows(self.queries)
        data, ids = self.l2_rows(["_default", "p_a", "p_b", "q_c"])
        status, result = c.search_in_segment(self.l2, found, q, TOP_K)
        self.ok(status, "search_in_segment(all segments)")
        self.check_topk("search_in_segment(all segments)", result, float_oracle("L2", data, self.queries), ids, TOP_K)
        fid_a = next(f for f, t in tag_of.items() if t == "p_a")
        status, result = c.search_in_segment(self.l2, [str(fid_a)], q, TOP_K, params={})
        self.ok(status, "search_in_segment(p_a segment)")
        data_a, ids_a = self.l2_rows(["p_a"])
        self.check_topk("search_in_segment(p_a segment)", result, float_oracle("L2", data_a, self.queries), ids_a,
                        TOP_K)
        self.failed(c.search_in_segment(self.l2, [987654], q, TOP_K)[0], "search_in_segment of an unknown id")
        self.failed(c.search_in_segment(self.l2, [fid_a, 987654], q, TOP_K)[0],
                    "search_in_segment with one unknown id among known ones")
        self.code(c.search_in_segment(self.l2, [fid_a], q, 0)[0], Status.ILLEGAL_TOPK, "search_in_segment top_k 0")
        if not self.http:  # pymilvus' REST client raises NotImplementedError itself
            self.ok(c.reload_segments(self.l2, found), "reload_segments")

    def deletes_and_compact(self) -> None:
        self.section("delete_entity_by_id (+partition_tag), flush, compact")
        c = self.client
        d_ids, a_ids, c_ids = self.l2_ids["_default"], self.l2_ids["p_a"], self.l2_ids["q_c"]
        gone_default = [int(i) for i in d_ids[:5]]
        gone_a = [int(i) for i in a_ids[:3]]
        gone_c = [int(i) for i in c_ids[:10]]  # a third of q_c: compaction rewrites that segment
        survivor = int(d_ids[5])  # deleted through the wrong partition: must survive
        unknown = int(max(np.concatenate(list(self.l2_ids.values())))) + 999
        self.ok(c.delete_entity_by_id(self.l2, [*gone_default, unknown]), "delete_entity_by_id")
        self.ok(c.delete_entity_by_id(self.l2, gone_a, partition_tag="p_a"), "delete_entity_by_id(partition_tag)")
        self.ok(c.delete_entity_by_id(self.l2, [survivor], partition_tag="p_a"),
                "delete_entity_by_id of an id of another partition")
        self.ok(c.delete_entity_by_id(self.l2, gone_c), "delete_entity_by_id(q_c rows)")
        self.ok(c.flush([self.l2]), "flush after delete")

        gone = set(gone_default + gone_a + gone_c)
        for tag in list(self.l2_ids):
            keep = np.array([int(i) not in gone for i in self.l2_ids[tag]])
            self.l2_ids[tag] = self.l2_ids[tag][keep]
            self.l2_data[tag] = self.l2_data[tag][keep]
        total = sum(len(v) for v in self.l2_ids.values())
        status, count = c.count_entities(self.l2)
        self.ok(status, "count_entities after delete")
        self.check(count == total, f"count_entities after delete: expected {total}, got {count}")
        status, vectors = c.get_entity_by_id(self.l2, [*gone_default[:2], gone_a[0], survivor])
        self.ok(status, "get_entity_by_id after delete")
        self.check(vectors[:3] == [[], [], []] and len(vectors[3]) == DIM,
                   "get_entity_by_id after delete: deleted ids must be [] and the survivor found")
        self.check_l2_state("after delete")

        status, before = c.get_collection_stats(self.l2)
        self.ok(status, "get_collection_stats before compact")
        self.ok(c.compact(self.l2), "compact")
        status, after = c.get_collection_stats(self.l2)
        self.ok(status, "get_collection_stats after compact")
        seg_names = {p["tag"]: {s["name"] for s in p["segments"] or []} for p in before["partitions"]}
        new_names = {p["tag"]: {s["name"] for s in p["segments"] or []} for p in after["partitions"]}
        self.check(not (seg_names["q_c"] & new_names["q_c"]),
                   "compact: the q_c segment (a third deleted) should have been rewritten")
        self.check([p["row_count"] for p in after["partitions"]]
                   == [len(self.l2_ids.get(p["tag"], ())) for p in after["partitions"]],
                   f"stats after compact: row counts {after!r}")
        self.check_l2_state("after compact")
        self.code(c.compact(f"{self.prefix}_missing"), Status.COLLECTION_NOT_EXISTS, "compact of a missing collection")

    def check_l2_state(self, when: str) -> None:
        by_tag = self.live_ids_via_segments(self.l2)
        for tag, ids in self.l2_ids.items():
            self.check(by_tag.get(tag) == set(ids.tolist()), f"list_id_in_segment {when}: wrong ids in {tag}")
        data, ids = self.l2_rows(["_default", "p_a", "p_b", "q_c"])
        result = self.search_ok(f"search {when}", self.l2, TOP_K, rows(self.queries))
        self.check_topk(f"search {when}", result, float_oracle("L2", data, self.queries), ids, TOP_K)

    def indexes(self) -> None:
        self.section("create_index / get_index_info / drop_index, search params")
        c = self.client
        q = rows(self.queries)
        data, ids = self.l2_rows(["_default", "p_a", "p_b", "q_c"])
        oracle = float_oracle("L2", data, self.queries)

        status, index = c.get_index_info(self.l2)
        self.ok(status, "get_index_info before create_index")
        self.check(index.index_type == IndexType.FLAT and index.params == {},
                   f"get_index_info of a new collection: expected FLAT {{}}, got {index}")
        self.ok(c.create_index(self.l2, IndexType.IVF_FLAT, {"nlist": 16}), "create_index IVF_FLAT")
        status, index = c.get_index_info(self.l2)
        self.ok(status, "get_index_info")
        self.check(index.index_type == IndexType.IVF_FLAT and index.params == {"nlist": 16}
                   and index.collection_name == self.l2,
                   f"get_index_info: expected IVF_FLAT {{'nlist': 16}}, got {index}")
        result = self.search_ok("search IVF_FLAT nprobe 8", self.l2, TOP_K, q, params={"nprobe": 8})
        # Below 4096 rows per segment Milvus 1.1 leaves segments raw, so results stay exact.
        self.check_topk("search IVF_FLAT nprobe 8", result, oracle, ids, TOP_K)
        self.code(c.search(self.l2, TOP_K, q)[0], Status.ILLEGAL_ARGUMENT, "search of an IVF collection without nprobe")
        self.code(c.search(self.l2, TOP_K, q, params={"nprobe": 0})[0], Status.ILLEGAL_ARGUMENT,
                  "search with nprobe 0")
        self.code(c.create_index(self.l2, IndexType.IVF_FLAT, {}), Status.ILLEGAL_ARGUMENT,
                  "create_index IVF_FLAT without nlist")
        self.code(c.create_index(self.l2, IndexType.IVF_FLAT, {"nlist": 70000}), Status.ILLEGAL_ARGUMENT,
                  "create_index IVF_FLAT with nlist 70000")
        self.code(c.create_index(self.bins["HAMMING"], IndexType.IVF_SQ8, {"nlist": 16}), Status.ILLEGAL_INDEX_TYPE,
                  "create_index IVF_SQ8 on a binary collection")
        self.code(c.create_index(f"{self.prefix}_missing", IndexType.IVF_FLAT, {"nlist": 16}),
                  Status.COLLECTION_NOT_EXISTS, "create_index on a missing collection")

        self.ok(c.drop_index(self.l2), "drop_index")
        status, index = c.get_index_info(self.l2)
        self.ok(status, "get_index_info after drop_index")
        self.check(index.index_type == IndexType.FLAT and index.params == {},
                   f"get_index_info after drop_index: expected FLAT {{}}, got {index}")
        result = self.search_ok("search after drop_index", self.l2, TOP_K, q, params={})
        self.check_topk("search after drop_index", result, oracle, ids, TOP_K)

        ip_queries = self.rng.standard_normal((3, DIM)).astype(np.float32)
        self.ok(c.create_index(self.ip, IndexType.HNSW, {"M": 16, "efConstruction": 64}), "create_index HNSW")
        status, index = c.get_index_info(self.ip)
        self.ok(status, "get_index_info HNSW")
        self.check(index.index_type == IndexType.HNSW and index.params == {"M": 16, "efConstruction": 64},
                   f"get_index_info HNSW: unexpected {index}")
        result = self.search_ok("search HNSW ef 64", self.ip, TOP_K, rows(ip_queries), params={"ef": 64})
        self.check_topk("search HNSW ef 64", result, float_oracle("IP", self.ip_data, ip_queries), self.ip_ids, TOP_K,
                        descending=True)
        self.code(c.search(self.ip, TOP_K, rows(ip_queries), params={"ef": TOP_K - 1})[0], Status.ILLEGAL_ARGUMENT,
                  "search HNSW with ef < top_k")

    def recall(self, what: str, result: Any, oracle: np.ndarray, row_ids: np.ndarray, k: int, floor: float,
               exact_distances: bool, descending: bool = False) -> float:
        """Check an approximate result and return its recall@k against the exact ``oracle`` (nq, n).

        Every query must get ``k`` distinct ids of known rows in distance order; with
        ``exact_distances`` (no quantisation) the distances must be those of the returned rows. A row
        counts as found when it is at least as close as the exact k-th best (ties count).
        """
        id_rows, dist_rows = id_array(result), distance_array(result)
        nq = oracle.shape[0]
        self.check(len(id_rows) == nq, f"{what}: expected {nq} result rows, got {len(id_rows)}")
        col_of = {int(r): c for c, r in enumerate(row_ids)}
        shares = []
        for qi in range(nq):
            ids = [int(x) for x in id_rows[qi]]
            dists = np.asarray(dist_rows[qi], dtype=np.float64)
            self.check(len(ids) == k and len(set(ids)) == k, f"{what} query {qi}: expected {k} distinct ids: {ids}")
            unknown = [i for i in ids if i not in col_of]
            self.check(not unknown, f"{what} query {qi}: unknown ids {unknown}")
            steps = np.diff(dists)
            self.check(bool(np.all(steps <= 1e-5)) if descending else bool(np.all(steps >= -1e-5)),
                       f"{what} query {qi}: distances out of order {dists.tolist()}")
            true = oracle[qi, [col_of[i] for i in ids]]
            if exact_distances:
                self.check(bool(np.allclose(dists, true, rtol=1e-3, atol=1e-3)),
                           f"{what} query {qi}: distances {dists.tolist()} are not those of the ids {true.tolist()}")
            score = -oracle[qi] if descending else oracle[qi]
            kth = float(np.partition(score, k - 1)[k - 1])
            mine = -true if descending else true
            shares.append(min(k, int((mine <= kth + 1e-6 * max(1.0, abs(kth))).sum())) / k)
        got = float(np.mean(shares))
        self.check(got >= floor, f"{what}: recall@{k} {got:.3f} below {floor}")
        return got

    def index_types(self) -> None:
        self.section("every index type: create_index / get_index_info / search params / drop_index")
        c = self.client
        rng = self.rng
        float_name, bin_name = f"{self.prefix}_types", f"{self.prefix}_types_bin"
        for name, dim, metric in ((float_name, DIM, MetricType.L2), (bin_name, TYPE_BIN_DIM, MetricType.JACCARD)):
            self.ok(c.create_collection({"collection_name": name, "dimension": dim, "metric_type": metric,
                                         "index_file_size": 1024}), f"create_collection({name})")
        centers = rng.normal(0.0, 2.0, (30, DIM))
        data = (centers[rng.integers(0, 30, TYPE_ROWS)] + rng.normal(0.0, 1.0, (TYPE_ROWS, DIM))).astype(np.float32)
        queries = (centers[rng.integers(0, 30, TYPE_QUERIES)]
                   + rng.normal(0.0, 1.0, (TYPE_QUERIES, DIM))).astype(np.float32)
        bin_centers = rng.integers(0, 2, (60, TYPE_BIN_DIM), dtype=np.uint8)

        def codes(n: int) -> np.ndarray:
            bits = bin_centers[rng.integers(0, 60, n)] ^ (rng.random((n, TYPE_BIN_DIM)) < 0.2).astype(np.uint8)
            return np.packbits(bits, axis=1)

        bin_data, bin_queries = codes(TYPE_ROWS), codes(TYPE_QUERIES)
        status, ids = c.insert(float_name, rows(data) if self.http else data)
        self.ok(status, f"insert {TYPE_ROWS} rows into {float_name}")
        float_ids = np.asarray(ids, dtype=np.int64)
        status, ids = c.insert(bin_name, bin_rows(bin_data))
        self.ok(status, f"insert {TYPE_ROWS} codes into {bin_name}")
        bin_ids = np.asarray(ids, dtype=np.int64)
        self.ok(c.flush([float_name, bin_name]), "flush the index-type collections")
        float_truth = float_oracle("L2", data, queries)
        bin_truth = binary_oracle("JACCARD", bin_data, bin_queries)
        q, bq = rows(queries), bin_rows(bin_queries)

        nsg = {"search_length": 45, "out_degree": 50, "candidate_pool_size": 300, "knng": 100}
        # (collection, type, build params, search params, recall floor, name in the stats, lossless)
        cases: list[tuple[str, Any, dict[str, int], dict[str, int], float, str, bool]] = [
            (float_name, IndexType.IVF_FLAT, {"nlist": 64}, {"nprobe": 8}, 0.95, "IVFFLAT", True),
            (float_name, IndexType.IVF_SQ8, {"nlist": 64}, {"nprobe": 8}, 0.9, "IVFSQ8", False),
            (float_name, IndexType.IVF_PQ, {"nlist": 32, "m": 8}, {"nprobe": 8}, 0.7, "PQ", False),
            (float_name, IndexType.HNSW, {"M": 16, "efConstruction": 100}, {"ef": 64}, 0.95, "HNSW", True),
            (float_name, IndexType.RNSG, nsg, {"search_length": 128}, 0.9, "NSG", True),
            (float_name, IndexType.ANNOY, {"n_trees": 8}, {"search_k": 2000}, 0.95, "ANNOY", True),
            (bin_name, IndexType.IVF_FLAT, {"nlist": 64}, {"nprobe": 8}, 0.9, "IVFFLAT", True),
        ]
        for name, kind, build, search, floor, index_name, lossless in cases:
            binary = name == bin_name
            what = f"{kind.name}{' (binary)' if binary else ''}"
            queries_of, truth, row_ids = (bq, bin_truth, bin_ids) if binary else (q, float_truth, float_ids)
            self.ok(c.create_index(name, kind, build), f"create_index {what} {build}")
            status, index = c.get_index_info(name)
            self.ok(status, f"get_index_info {what}")
            self.check(index.collection_name == name and index.index_type == kind and index.params == build,
                       f"get_index_info {what}: expected {kind!r} {build}, got {index}")
            status, stats = c.get_collection_stats(name)
            self.ok(status, f"get_collection_stats {what}")
            segs = [seg for part in stats["partitions"] for seg in part["segments"] or []]
            self.check([(seg["index_name"], seg["row_count"]) for seg in segs] == [(index_name, TYPE_ROWS)],
                       f"get_collection_stats {what}: expected one {index_name} segment, got {segs}")
            result = self.search_ok(f"search {what} {search}", name, TOP_K, queries_of, params=search)
            got = self.recall(f"search {what} {search}", result, truth, row_ids, TOP_K, floor, lossless)
            print(f"   recall@{TOP_K} {what} {search}: {got:.3f}", flush=True)
            (param,) = search
            self.code(c.search(name, TOP_K, queries_of, params={})[0], Status.ILLEGAL_ARGUMENT,
                      f"search {what} without {param}")
            if kind == IndexType.IVF_FLAT:
                # Every list probed is an exact search; one list of 64 is not: the index is in use.
                result = self.search_ok(f"search {what} nprobe 64", name, TOP_K, queries_of, params={"nprobe": 64})
                self.check_topk(f"search {what} nprobe 64", result, truth, row_ids, TOP_K)
                result = self.search_ok(f"search {what} nprobe 1", name, TOP_K, queries_of, params={"nprobe": 1})
                self.check(self.recall(f"search {what} nprobe 1", result, truth, row_ids, TOP_K, 0.0, True) < 1.0,
                           f"search {what} nprobe 1: exact results, so the index was not used")
            self.ok(c.drop_index(name), f"drop_index {what}")
            status, index = c.get_index_info(name)
            self.ok(status, f"get_index_info after drop_index {what}")
            self.check(index.index_type == IndexType.FLAT and index.params == {},
                       f"get_index_info after drop_index {what}: expected FLAT {{}}, got {index}")
            result = self.search_ok(f"search after drop_index {what}", name, TOP_K, queries_of)
            self.check_topk(f"search after drop_index {what}", result, truth, row_ids, TOP_K)
        for name in (float_name, bin_name):
            self.ok(c.drop_collection(name), f"drop_collection({name})")

    def cache_ops(self) -> None:
        self.section("load_collection / release_collection")
        c = self.client
        self.ok(c.load_collection(self.l2), "load_collection")
        self.ok(c.load_collection(self.l2, partition_tags=["p_a"]), "load_collection(partition_tags)")
        self.ok(c.release_collection(self.l2), "release_collection")
        self.ok(c.release_collection(self.l2, partition_tags=["p_a"]), "release_collection(partition_tags)")
        self.code(c.load_collection(f"{self.prefix}_missing"), Status.COLLECTION_NOT_EXISTS,
                  "load_collection of a missing collection")
        self.check_l2_state("after release")
        self.ok(c.load_collection(self.bins["JACCARD"]), "load_collection of a binary collection")

    def milvus_111_semantics(self) -> None:
        self.section("empty results, create_index flushes first, get_index_info params as given")
        c = self.client
        rng = self.rng
        # A collection whose every row is deleted: nothing is left to search, no result row (as Milvus 1.1, whose
        # result width counts no deleted row); one row left of three: one row, one hit.
        name = f"{self.prefix}_gone"
        self.ok(c.create_collection({"collection_name": name, "dimension": DIM, "index_file_size": 1,
                                     "metric_type": MetricType.L2}), "create_collection for deletes")
        data = rng.random((3, DIM), dtype=np.float32)
        status, ids = c.insert(name, rows(data))
        self.ok(status, "insert 3 rows")
        self.ok(c.flush([name]), "flush")
        self.ok(c.delete_entity_by_id(name, ids[:2]), "delete 2 of 3 rows")
        self.ok(c.flush([name]), "flush the deletes")
        result = self.search_ok("search after deleting 2 of 3 rows", name, TOP_K, rows(data[:1]))
        self.check(id_array(result) == [[ids[2]]],
                   f"search after deleting 2 of 3 rows: expected one row with id {ids[2]}, got {id_array(result)}")
        self.ok(c.delete_entity_by_id(name, ids[2:]), "delete the last row")
        self.ok(c.flush([name]), "flush the last delete")
        result = self.search_ok("search after deleting every row", name, TOP_K, rows(data[:1]))
        got = id_array(result)
        # gRPC: no row at all (row_num 0); the REST client only shows that no row has a hit.
        self.check(all(not row for row in got) if self.http else got == [],
                   f"search after deleting every row: expected no result row (row_num 0), got {got}")
        self.ok(c.drop_collection(name), "drop_collection")

        # create_index flushes every buffered row first, whatever the index type (automatic flushing is off).
        name = f"{self.prefix}_indexed"
        self.ok(c.create_collection({"collection_name": name, "dimension": DIM, "index_file_size": 1024,
                                     "metric_type": MetricType.L2}), "create_collection for create_index")
        data = rng.random((2000, DIM), dtype=np.float32)
        status, ids = c.insert(name, rows(data))
        self.ok(status, "insert 2000 rows")
        status, count = c.count_entities(name)
        self.ok(status, "count_entities of unflushed rows")
        self.check(count == 0, f"count_entities before create_index: expected 0 (unflushed), got {count}")
        self.ok(c.create_index(name, IndexType.FLAT, {"nlist": 1024}), "create_index FLAT with params")
        status, count = c.count_entities(name)
        self.ok(status, "count_entities after create_index")
        self.check(count == 2000, f"count_entities after create_index FLAT: expected 2000, got {count}")
        status, index = c.get_index_info(name)
        self.ok(status, "get_index_info FLAT")
        self.check(index.index_type == IndexType.FLAT and index.params == {"nlist": 1024},
                   f"get_index_info of FLAT created with {{'nlist': 1024}}: got {index}")
        queries = data[[0, 1999]]
        result = self.search_ok("search after create_index FLAT", name, TOP_K, rows(queries))
        self.check_topk("search after create_index FLAT", result, float_oracle("L2", data, queries),
                        np.asarray(ids), TOP_K)
        given = {"nlist": 16, "note": "kept as given"}
        self.ok(c.create_index(name, IndexType.IVF_FLAT, given), "create_index IVF_FLAT with an extra key")
        status, index = c.get_index_info(name)
        self.ok(status, "get_index_info IVF_FLAT")
        self.check(index.index_type == IndexType.IVF_FLAT and index.params == given,
                   f"get_index_info of IVF_FLAT: expected {given}, got {index}")
        self.ok(c.drop_collection(name), "drop_collection")

    def drops(self) -> None:
        self.section("drop_partition / drop_collection")
        c = self.client
        self.ok(c.drop_partition(self.l2, "p_b"), "drop_partition(p_b)")
        status, exists = c.has_partition(self.l2, "p_b")
        self.ok(status, "has_partition after drop")
        self.check(exists is False, "has_partition(p_b) after drop: expected False")
        status, parts = c.list_partitions(self.l2)
        self.ok(status, "list_partitions after drop")
        self.check([p.tag for p in parts] == ["_default", "p_a", "q_c", "zz_empty"],
                   f"list_partitions after drop: {[p.tag for p in parts]}")
        del self.l2_ids["p_b"], self.l2_data["p_b"]
        status, count = c.count_entities(self.l2)
        self.ok(status, "count_entities after drop_partition")
        total = sum(len(v) for v in self.l2_ids.values())
        self.check(count == total, f"count_entities after drop_partition: expected {total}, got {count}")
        self.code(c.search(self.l2, TOP_K, rows(self.queries), partition_tags=["p_b"])[0], Status.UNEXPECTED_ERROR,
                  "search of a dropped partition")
        data, ids = self.l2_rows(["_default", "p_a", "q_c"])
        result = self.search_ok("search after drop_partition", self.l2, TOP_K, rows(self.queries))
        self.check_topk("search after drop_partition", result, float_oracle("L2", data, self.queries), ids, TOP_K)

        names = [self.l2, self.ip, self.uid, *self.bins.values()]
        for name in names:
            self.ok(c.drop_collection(name), f"drop_collection({name})")
        for name in names:
            status, exists = c.has_collection(name)
            self.ok(status, f"has_collection({name}) after drop")
            self.check(exists is False, f"has_collection({name}) after drop: expected False")
        status, listed = c.list_collections()
        self.ok(status, "list_collections after drop")
        self.check(not set(names) & set(listed), f"list_collections after drop still lists {set(names) & set(listed)}")
        self.code(c.drop_collection(self.l2), Status.COLLECTION_NOT_EXISTS, "drop_collection of a dropped collection")
        self.code(c.search(self.l2, TOP_K, rows(self.queries))[0], Status.COLLECTION_NOT_EXISTS,
                  "search of a dropped collection")

    def restore_config(self) -> None:
        self.section("restore configuration")
        c = self.client
        self.ok(c.set_config("storage", "auto_flush_interval", self.flush_interval)[0], "restore auto_flush_interval")
        self.ok(c.set_config("cache", "cache_size", self.cache_size)[0], "restore cache_size")
        status, value = c.get_config("cache", "cache_size")
        self.ok(status, "get_config cache.cache_size after restore")
        self.check(value == self.cache_size, f"cache.cache_size after restore: {value!r} != {self.cache_size!r}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=19530)
    parser.add_argument("--handler", choices=["GRPC", "HTTP"], default="GRPC",
                        help="pymilvus' gRPC client or its REST (HTTP) client")
    parser.add_argument("--scheme", choices=["", "http", "https"], default="",
                        help="connect with an URI of this scheme (the REST client over https) instead of host and port")
    args = parser.parse_args(argv)
    # pymilvus logs every non-OK status at ERROR level; the scenario provokes many on purpose.
    logging.getLogger("milvus").setLevel(logging.CRITICAL)
    scenario = Scenario(args.host, args.port, args.handler, args.scheme)
    try:
        scenario.run()
    except CheckFailed as exc:
        print(f"pymilvus scenario FAILED after {scenario.passed} checks: {exc}", flush=True)
        return 1
    except Exception:
        traceback.print_exc(file=sys.stdout)
        print(f"pymilvus scenario ERROR after {scenario.passed} checks: unexpected exception", flush=True)
        return 2
    print(f"pymilvus scenario: {scenario.passed} checks passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
