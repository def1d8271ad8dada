"""Searches through the proxy survive read nodes that pause, hang or die while serving them.

Real processes: a writer, two read nodes holding every segment (replication 2) and a proxy. A reader is
paused with SIGSTOP (a GC or VM freeze); searches keep answering exactly, each well within the pause, and
the reader serves again once resumed. A request during which both readers died (kill -9 while paused
mid-request) or timed out is refused afterwards instead of being replayed on the restarted readers.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from coordinator.errors import ErrorCode
from milvus_wire import milvus_pb2
from tests.support.cluster import LocalCluster
from tests.support.nodeproc import NodeProcess
from tests.support.requests import L2, assert_search_exact, create, decode_topk, flush, insert_ok, ok, search_param
from tests.support.scrape import scrape, value
from tests.support.waiting import poll_for

DIM = 16
BATCH = 9_000  # with index_file_size 1 (MB) two batches never merge: one segment per flushed batch
SEGMENTS = 4
K = 10
PAUSE = 6.0  # seconds a reader stays paused
METRICS = ["--metrics-port", "-1"]
QOD_REASON = "The request failed on 2 read nodes"

def _load(cluster: LocalCluster, name: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A flushed L2 collection of SEGMENTS segments that every reader sees; returns (rows, ids)."""
    s = cluster.stub()
    ok(create(s, name, DIM, L2, ifs=1))
    parts, ids = [], []
    for _ in range(SEGMENTS):
        x = rng.standard_normal((BATCH, DIM)).astype(np.float32)
        ids.append(insert_ok(s, name, x))
        parts.append(x)
        ok(flush(s, name))
    base, all_ids = np.concatenate(parts), np.concatenate(ids)
    for r in cluster.readers:
        poll_for(lambda r=r: _count(r.stub(), name) == len(base), 30,  # type: ignore[misc]
                 what="the readers to see the rows")
    return base, all_ids


def _count(stub: Any, name: str) -> int:
    return int(stub.CountCollection(milvus_pb2.CollectionName(collection_name=name), timeout=10).collection_row_count)


def _search(stub: Any, name: str, q: np.ndarray, timeout: float) -> tuple[Any, np.ndarray, np.ndarray]:
    return decode_topk(stub.Search(search_param(name, q, K), timeout=timeout))


def _signal(node: NodeProcess, sig: signal.Signals) -> None:
    assert node.proc is not None
    if node.proc.poll() is None:
        os.kill(node.proc.pid, sig)


def _searches_answered(node: NodeProcess) -> float:
    return value(scrape(node.metrics_port), "mishards_node_request_seconds_count", method="SearchInFiles",
                  code="0")


def test_a_paused_reader_neither_stalls_nor_fails_searches(tmp_path: Path) -> None:
    with LocalCluster(tmp_path, readers=2, replication=2, node_args=METRICS, proxy_args=METRICS) as cluster:
        rng = np.random.default_rng(7)
        base, ids = _load(cluster, "paused", rng)
        s = cluster.stub()
        queries = rng.standard_normal((64, 2, DIM)).astype(np.float32)
        for q in queries[:30]:  # warm-up: the proxy learns what a normal sub-request takes
            status, got, dist = _search(s, "paused", q, 30)
            ok(status)
            assert_search_exact(got, dist, base, ids, q, K, L2)

        slow = cluster.readers[0]
        started = time.monotonic()
        _signal(slow, signal.SIGSTOP)
        resume = threading.Timer(PAUSE, _signal, (slow, signal.SIGCONT))  # the pause ends even if the test fails
        resume.start()
        durations: list[float] = []
        try:
            i = 0
            while time.monotonic() - started < PAUSE - 1.0:
                q = queries[i % len(queries)]
                i += 1
                t0 = time.monotonic()
                # A search stalled by the pause fails here (client deadline), instead of merely being slow.
                status, got, dist = _search(s, "paused", q, PAUSE / 2)
                durations.append(time.monotonic() - t0)
                ok(status)
                assert_search_exact(got, dist, base, ids, q, K, L2)
        finally:
            resume.cancel()
            _signal(slow, signal.SIGCONT)
        assert len(durations) >= 5
        assert max(durations) < PAUSE / 2, f"a search took {max(durations):.2f} s during a {PAUSE} s pause"

        metrics = scrape(cluster.proxy.metrics_port)
        assert value(metrics, "mishards_proxy_hedges_sent_total", node=slow.address) >= 1
        assert value(metrics, "mishards_proxy_hedges_won_total", node=slow.address) >= 1
        assert value(metrics, "mishards_proxy_node_suspicions_total", node=slow.address) >= 1

        # Resumed, the reader is no longer suspected and gets searches again.
        poll_for(lambda: value(scrape(cluster.proxy.metrics_port), "mishards_proxy_suspected_nodes") == 0, 30,
                 what="the paused reader's suspicion to end")
        before = _searches_answered(slow)
        for q in queries[:10]:
            status, got, dist = _search(s, "paused", q, 30)
            ok(status)
            assert_search_exact(got, dist, base, ids, q, K, L2)
        assert _searches_answered(slow) > before


def _deadly_request_test(tmp_path: Path, proxy_args: list[str], kill: bool) -> None:
    """Both readers paused while serving one search; then killed (``kill``) or left to time out. The search
    is answered in-band, and the same request is refused after the readers are back, while others pass."""
    with LocalCluster(tmp_path, readers=2, replication=2, node_args=METRICS,
                      proxy_args=[*METRICS, *proxy_args]) as cluster:
        rng = np.random.default_rng(11)
        base, ids = _load(cluster, "deadly", rng)
        s = cluster.stub()
        deadly = rng.standard_normal((3, DIM)).astype(np.float32)
        other = rng.standard_normal((3, DIM)).astype(np.float32)
        ok(_search(s, "deadly", other, 30)[0])
        width = value(scrape(cluster.proxy.metrics_port), "mishards_proxy_fanout_nodes_count")

        for r in cluster.readers:
            _signal(r, signal.SIGSTOP)
        answer: list[Any] = []
        try:
            worker = threading.Thread(target=lambda: answer.append(_search(s, "deadly", deadly, 60)[0]))
            worker.start()
            # The sub-requests are on their way once the fan-out's width is observed.
            poll_for(lambda: value(scrape(cluster.proxy.metrics_port), "mishards_proxy_fanout_nodes_count")
                     > width, 30, what="the search to reach the readers")
            if kill:
                for r in cluster.readers:
                    r.kill()  # SIGKILL ends a stopped process too: it dies holding the request
            worker.join(timeout=60)
            assert not worker.is_alive()
        finally:
            for r in cluster.readers:
                _signal(r, signal.SIGCONT)
        assert answer and answer[0].error_code == ErrorCode.UNEXPECTED_ERROR, answer
        assert answer[0].reason.startswith(QOD_REASON), answer[0].reason
        timeouts = value(scrape(cluster.proxy.metrics_port), "mishards_proxy_subrequest_timeouts_total")
        assert timeouts == 0 if kill else timeouts >= 2  # the readers died (connection lost), or both timed out

        if kill:
            for r in cluster.readers:
                r.start()

        def other_passes() -> bool:
            status, got, dist = _search(s, "deadly", other, 30)
            if status.error_code:
                return False
            assert_search_exact(got, dist, base, ids, other, K, L2)
            return True

        poll_for(other_passes, 60, interval=0.2, what="searches to pass again")
        answered = [_searches_answered(r) for r in cluster.readers]
        t0 = time.monotonic()
        status = _search(s, "deadly", deadly, 30)[0]
        assert time.monotonic() - t0 < 5
        assert status.error_code == ErrorCode.UNEXPECTED_ERROR and status.reason.startswith(QOD_REASON), status
        assert [_searches_answered(r) for r in cluster.readers] == answered  # not sent to any reader
        assert value(scrape(cluster.proxy.metrics_port), "mishards_proxy_query_of_death_refusals_total") >= 2
        other_passes()


def test_a_request_during_which_two_readers_died_is_refused_not_replayed(tmp_path: Path) -> None:
    _deadly_request_test(tmp_path, ["--subrequest-timeout", "60"], kill=True)


def test_a_request_that_two_readers_timed_out_on_is_refused_not_replayed(tmp_path: Path) -> None:
    _deadly_request_test(tmp_path, ["--subrequest-timeout", "1"], kill=False)
