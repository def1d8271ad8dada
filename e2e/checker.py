"""After quiescence: read back through the public API what the cluster stores and judge it against the
recorded operations (every acknowledged row present with its exact vector, acknowledged deletes absent, no
duplicates, the count within bounds, searches equal to a numpy oracle)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from e2e.analysis import DataVerdict, expectation, judge
from e2e.outcomes import Op
from e2e.workload import rows, vectors_for
from milvus_wire import milvus_pb2
from tests.support.waiting import poll_for

log = logging.getLogger(__name__)

CHUNK = 1000


@dataclass(frozen=True)
class DataReport:
    acked_inserted_rows: int
    unknown_inserted_rows: int
    refused_inserted_rows: int
    acked_deleted_ids: int
    unknown_deleted_ids: int
    count: int
    count_bounds: tuple[int, int]
    distinct_stored: int
    stored_listed: int
    duplicates: int
    listed_not_found: int
    verdict: DataVerdict
    search_mismatches: int
    search_checked: int

    def figures(self) -> dict[str, Any]:
        v = self.verdict
        return {
            "acked_rows": self.acked_inserted_rows, "unknown_rows": self.unknown_inserted_rows,
            "refused_rows": self.refused_inserted_rows, "acked_deletes": self.acked_deleted_ids,
            "unknown_deletes": self.unknown_deleted_ids, "count": self.count, "count_bounds": list(self.count_bounds),
            "lost": len(v.lost), "lost_sample": list(v.lost[:10]), "resurrected": len(v.resurrected),
            "resurrected_sample": list(v.resurrected[:10]),
            "applied_despite_refusal": len(v.applied_despite_refusal),
            "applied_despite_refusal_sample": list(v.applied_despite_refusal[:10]),
            "unknown_applied": v.unknown_applied, "phantoms": len(v.phantoms), "wrong_vectors": len(v.wrong_vectors),
            "duplicates": self.duplicates, "listed_not_found": self.listed_not_found,
            "listed_ids": self.stored_listed, "distinct_listed_ids": self.distinct_stored,
            "search_oracle_mismatches": self.search_mismatches, "search_oracle_checked": self.search_checked,
        }

    def problems(self) -> dict[str, str]:
        """What is wrong, by kind (``lost``, ``resurrected``, ``count_over``...), each with its figures."""
        v = self.verdict
        out: dict[str, str] = {}
        lo, hi = self.count_bounds
        for kind, n, text in (("lost", len(v.lost), "acknowledged rows lost"),
                              ("resurrected", len(v.resurrected), "acknowledged deletes undone"),
                              ("applied_despite_refusal", len(v.applied_despite_refusal),
                               "writes applied although the answer said they failed"),
                              ("phantoms", len(v.phantoms), "rows never sent"),
                              ("wrong_vectors", len(v.wrong_vectors), "rows with a wrong vector"),
                              ("duplicates", self.duplicates, "duplicate rows"),
                              ("listed_not_found", self.listed_not_found, "listed ids GetVectorsByID does not find"),
                              ("search_oracle", self.search_mismatches, "searches unlike the numpy oracle")):
            if n:
                out[kind] = f"{n} {text}"
        if self.count != self.stored_listed:
            out["count_vs_listed"] = f"CountCollection {self.count} != {self.stored_listed} ids listed by GetVectorIDs"
        if self.count < lo:
            out["count_under"] = f"count {self.count} < {lo} (acknowledged rows not deleted)"
        if self.count > hi:
            out["count_over"] = f"count {self.count} > {hi} (acknowledged or unknown-outcome rows not deleted)"
        return out


def flush(stub: Any, collection: str, timeout: float = 120.0) -> None:
    def ok() -> bool:
        try:
            return stub.Flush(milvus_pb2.FlushParam(collection_name_array=[collection]), timeout=30).error_code == 0
        except Exception:
            return False

    poll_for(ok, timeout, interval=0.5, what=f"Flush of {collection} to succeed")


def read_present(stub: Any, collection: str, ids: Sequence[int], dim: int) -> tuple[set[int], list[int]]:
    """Ids GetVectorsByID finds (chunks of 1000) and those whose vector differs from the one sent."""
    present: set[int] = set()
    wrong: list[int] = []
    for start in range(0, len(ids), CHUNK):
        chunk = list(ids[start:start + CHUNK])
        reply = stub.GetVectorsByID(milvus_pb2.VectorsIdentity(collection_name=collection, id_array=chunk),
                                    timeout=60)
        if reply.status.error_code != 0:
            if "empty" in reply.status.reason:
                continue
            raise AssertionError(f"GetVectorsByID failed: {reply.status.error_code} {reply.status.reason}")
        assert len(reply.vectors_data) == len(chunk), "GetVectorsByID answered a different number of rows"
        expected = vectors_for(np.array(chunk, dtype=np.int64), dim)
        for i, (vid, rec) in enumerate(zip(chunk, reply.vectors_data, strict=True)):
            if rec.float_data:
                present.add(vid)
                if not np.array_equal(np.asarray(rec.float_data, dtype=np.float32), expected[i]):
                    wrong.append(vid)
    return present, wrong


# GetVectorIDs of a segment that a background merge or compaction retired after ShowCollectionInfo listed it.
RETIRED_SEGMENT = frozenset({"Segment does not exist", "Segment does not belong to this collection"})


def read_segments(stub: Any, collection: str, timeout: float = 60.0) -> list[int]:
    """Every id listed by GetVectorIDs over the segments ShowCollectionInfo names (duplicates kept).

    The listing is read again from the start when a segment it names was retired meanwhile (merges and
    compactions run in the background), so the ids come from one consistent set of segments."""
    deadline = time.monotonic() + timeout
    while True:
        listed = _read_segments_once(stub, collection)
        if listed is not None:
            return listed
        assert time.monotonic() < deadline, f"segments of {collection} kept changing for {timeout:.0f} s"


def _read_segments_once(stub: Any, collection: str) -> list[int] | None:
    """The ids of the listed segments, or None when one of them was retired before it was read."""
    info = stub.ShowCollectionInfo(milvus_pb2.CollectionName(collection_name=collection), timeout=60)
    assert info.status.error_code == 0, info.status.reason
    listed: list[int] = []
    for partition in json.loads(info.json_info).get("partitions", []):
        for segment in partition.get("segments") or []:
            reply = stub.GetVectorIDs(milvus_pb2.GetVectorIDsParam(collection_name=collection,
                                                                   segment_name=segment["name"]), timeout=60)
            if reply.status.reason in RETIRED_SEGMENT:
                return None
            assert reply.status.error_code == 0, reply.status.reason
            listed.extend(reply.vector_id_array)
    return listed


def search_mismatches(stubs: Sequence[Any], collection: str, live: Sequence[int], dim: int, seed: int,
                      queries: int = 20, topk: int = 10) -> tuple[int, int]:
    """Search through every proxy and compare with exact L2 over the live rows (tolerant of ties: the returned
    distances must equal the oracle's k best, and each returned id must be live at that distance)."""
    if not live:
        return 0, 0
    ids = np.array(sorted(live), dtype=np.int64)
    base = vectors_for(ids, dim).astype(np.float64)
    position = {int(v): i for i, v in enumerate(ids)}
    rng = np.random.default_rng(seed)
    q = rng.uniform(-1, 1, (queries, dim)).astype(np.float32)
    q64 = q.astype(np.float64)
    dist = (q64 ** 2).sum(axis=1)[:, None] - 2.0 * (q64 @ base.T) + (base ** 2).sum(axis=1)[None, :]
    k = min(topk, len(ids))
    best = np.sort(dist, axis=1)[:, :k]
    bad = checked = 0
    for stub in stubs:
        for start in range(0, queries, 5):
            reply = stub.Search(milvus_pb2.SearchParam(collection_name=collection, topk=topk,
                                                       query_record_array=rows(q[start:start + 5])), timeout=60)
            assert reply.status.error_code == 0, reply.status.reason
            got_ids = np.array(reply.ids, dtype=np.int64).reshape(reply.row_num, -1)
            got_d = np.array(reply.distances, dtype=np.float64).reshape(reply.row_num, -1)
            for r in range(reply.row_num):
                row = start + r
                checked += 1
                ok = got_ids.shape[1] == k and np.allclose(got_d[r], best[row], rtol=1e-4, atol=1e-5)
                for vid, d in zip(got_ids[r], got_d[r], strict=True):
                    p = position.get(int(vid))
                    ok = ok and p is not None and bool(np.isclose(dist[row, p], d, rtol=1e-4, atol=1e-5))
                bad += not ok
    return bad, checked


def check_data(stubs: Sequence[Any], collection: str, dim: int, ops: Sequence[Op], seed: int = 0) -> DataReport:
    """Flush, then read everything back through the first proxy (searches through all of them)."""
    started = time.monotonic()
    stub = stubs[0]
    flush(stub, collection)
    exp = expectation(ops)
    sent = sorted(exp.acked_inserts | exp.unknown_inserts | exp.refused_inserts)
    present, wrong = read_present(stub, collection, sent, dim)
    listed = read_segments(stub, collection)
    stored = set(listed)
    count = stub.CountCollection(milvus_pb2.CollectionName(collection_name=collection), timeout=60)
    assert count.status.error_code == 0, count.status.reason
    verdict = judge(exp, present, wrong, stored)
    mismatches, checked = search_mismatches(stubs, collection, sorted(present), dim, seed)
    log.info("data checked in %.1fs", time.monotonic() - started)
    return DataReport(
        acked_inserted_rows=len(exp.acked_inserts), unknown_inserted_rows=len(exp.unknown_inserts),
        refused_inserted_rows=len(exp.refused_inserts), acked_deleted_ids=len(exp.acked_deletes),
        unknown_deleted_ids=len(exp.unknown_deletes), count=int(count.collection_row_count),
        count_bounds=exp.count_bounds, distinct_stored=len(stored), stored_listed=len(listed),
        duplicates=len(listed) - len(stored), listed_not_found=len(stored - present), verdict=verdict,
        search_mismatches=mismatches, search_checked=checked,
    )
