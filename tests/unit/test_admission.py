"""Admission of heavy requests: the cost estimates (pure), the machine's memory limit (parsing), and the
budget / search-slot / FIFO-queue decisions of ``node.admission.Admission`` with real threads."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from coordinator import limits
from coordinator.errors import ErrorCode, MilvusError
from coordinator.limits import Busy, OverBudget, SearchShape, search_cost
from coordinator.model import IndexType, Segment, SegmentState
from node.admission import Admission
from node.settings import NodeSettings
from tests.support.waiting import poll_for

MB = 1 << 20


# -- estimates -------------------------------------------------------------------------------------------


def test_search_cost_grows_with_every_dimension_of_the_search() -> None:
    base = SearchShape(nq=1000, width=1000, segments=4, threads=2, query_bytes=0)
    cost = search_cost(base)
    for bigger in (SearchShape(2000, 1000, 4, 2), SearchShape(1000, 2000, 4, 2), SearchShape(1000, 1000, 4, 4),
                   SearchShape(1000, 1000, 4, 2, query_bytes=5)):
        assert search_cost(bigger) > cost, bigger


def test_search_cost_of_one_segment_is_the_encoding_peak() -> None:
    """One segment: the result (12 bytes a result) and the reply twice (14 bytes each) is the peak."""
    slots = 2000 * 16384
    assert search_cost(SearchShape(2000, 16384, 1, 2)) == slots * 40
    assert search_cost(SearchShape(2000, 16384, 1, 2, query_bytes=7)) == slots * 40 + 7


def test_search_cost_counts_one_partial_result_per_thread_not_per_segment() -> None:
    slots = 2000 * 16384
    many = search_cost(SearchShape(2000, 16384, segments=100, threads=2))
    # the accumulator, two partial results, their bounded temporaries, a bounded backlog and merge block
    assert many <= slots * 12 * 3 + 2 * limits.SEARCH_BLOCK_BYTES + limits.FOLD_BYTES + limits.MERGE_BLOCK_BYTES
    assert many == search_cost(SearchShape(2000, 16384, segments=1000, threads=2))


def test_empty_searches_cost_their_queries_only() -> None:
    assert search_cost(SearchShape(0, 10, 3, 2, query_bytes=9)) == 9
    assert search_cost(SearchShape(10, 0, 3, 2)) == 0
    assert search_cost(SearchShape(10, 10, 0, 2)) == 0


def test_the_huge_search_of_the_report_costs_gigabytes() -> None:
    assert search_cost(SearchShape(12_000, 16_384, 2, 2)) > 7 * 1024 * MB


def test_insert_cost() -> None:
    assert limits.insert_cost(1000, 512, with_ids=False) == 1000 * (512 * limits.INSERT_COPIES + 8)
    assert limits.insert_cost(1000, 512, with_ids=True) == 1000 * (512 * limits.INSERT_COPIES + 16)


def test_delete_ids_bound() -> None:
    limits.delete_ids(limits.MAX_DELETE_IDS)
    with pytest.raises(MilvusError) as info:
        limits.delete_ids(limits.MAX_DELETE_IDS + 1)
    assert info.value.code == ErrorCode.ILLEGAL_ARGUMENT
    assert info.value.reason == "The number of ids deleted each time cannot exceed 33554432"


# -- this machine ----------------------------------------------------------------------------------------


def test_meminfo_and_cgroup_limits_parse() -> None:
    assert limits.parse_meminfo_total("MemFree: 1 kB\nMemTotal:       24683664 kB\n") == 24683664 * 1024
    assert limits.parse_meminfo_total("nothing") is None
    assert limits.parse_cgroup_limit("max\n") is None
    assert limits.parse_cgroup_limit("9223372036854771712\n") is None  # cgroup v1 "unlimited"
    assert limits.parse_cgroup_limit("2147483648\n") == 2 << 30


def test_cgroup_limit_files_cover_v1_v2_and_ancestors(tmp_path: Path) -> None:
    text = "4:memory:/pod/abc\n2:cpu:/x\n0::/kubepods/pod1/c1\n"
    files = limits.cgroup_limit_files(text, tmp_path)
    assert tmp_path / "kubepods/pod1/c1/memory.max" in files
    assert tmp_path / "kubepods/memory.max" in files
    assert tmp_path / "memory/pod/abc/memory.limit_in_bytes" in files
    assert tmp_path / "memory/memory.limit_in_bytes" in files
    assert not any("cpu" in str(f) for f in files)


def test_memory_limit_of_this_process_is_sane() -> None:
    assert 64 * MB < limits.memory_limit() < 1 << 50
    assert limits.cpu_count() >= 1


def test_admission_settings() -> None:
    auto = NodeSettings()
    assert auto.request_memory_bytes(16 << 30) == 4 << 30
    assert auto.request_memory_bytes(512 * MB) == 256 * MB  # at least 256 MB
    assert NodeSettings(request_memory="1GB").request_memory_bytes(16 << 30) == 1 << 30
    assert auto.max_searches_for(1) == 2 and auto.max_searches_for(8) == 8
    assert NodeSettings(max_searches=3).max_searches_for(8) == 3
    assert NodeSettings(grpc_workers=32).max_queued == 16 and NodeSettings(grpc_workers=1).max_queued == 1
    assert NodeSettings().grpc_max_message_bytes == 512 * MB
    for bad in ({"request_memory": "0"}, {"max_searches": -1}, {"queue_timeout": -1.0},
                {"grpc_max_message_size": "1MB"}, {"grpc_max_message_size": "3GB"}):
        with pytest.raises(ValueError):
            NodeSettings(**bad)


# -- the controller --------------------------------------------------------------------------------------


class Holder:
    """A thread that enters admission with ``cost`` and holds it until released."""

    def __init__(self, admission: Admission, cost: int, search: bool = True) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(admission, cost, search), daemon=True)
        self.thread.start()

    def _run(self, admission: Admission, cost: int, search: bool) -> None:
        try:
            with admission.admit("work", cost, search):
                self.started.set()
                self.release.wait(30)
        except BaseException as exc:  # reported to the test
            self.error = exc

    def finish(self) -> None:
        self.release.set()
        self.thread.join(30)


@pytest.fixture
def holders() -> Iterator[list[Holder]]:
    made: list[Holder] = []
    yield made
    for h in made:
        h.finish()


def test_a_request_over_the_whole_budget_is_refused_at_once() -> None:
    admission = Admission(100 * MB, 4, 4, timeout=30)
    with pytest.raises(OverBudget) as info, admission.admit("A search of nq 9 topk 9 over 1 segments", 150 * MB):
        pass
    assert info.value.code == ErrorCode.OUT_OF_MEMORY
    assert info.value.reason == (
        "A search of nq 9 topk 9 over 1 segments needs about 150 MB of memory, which exceeds the node's request "
        "memory budget of 100 MB; lower nq or topk (or send fewer vectors), or raise the node's request_memory "
        "setting")
    assert admission.stats().refused_over_budget == 1 and admission.stats().in_use_bytes == 0


def test_costs_are_held_while_running_and_released_after() -> None:
    admission = Admission(100, 4, 4, timeout=30)
    with admission.admit("a", 60), admission.admit("b", 40, search=False):
        stats = admission.stats()
        assert (stats.in_use_bytes, stats.running_searches, stats.admitted) == (100, 1, 2)
    assert admission.stats().in_use_bytes == 0 and admission.stats().running_searches == 0


def test_waiting_requests_start_in_arrival_order(holders: list[Holder]) -> None:
    admission = Admission(100, 8, 8, timeout=30)
    first = Holder(admission, 80)
    holders.append(first)
    assert first.started.wait(10)
    big = Holder(admission, 50)  # does not fit now: waits
    holders.append(big)
    poll_for(lambda: admission.stats().queued == 1, 10, what="the first waiter")
    small = Holder(admission, 10)  # would fit, but arrives after ``big``: waits behind it
    holders.append(small)
    poll_for(lambda: admission.stats().queued == 2, 10, what="the second waiter")
    assert not small.started.is_set() and not big.started.is_set()
    first.finish()
    assert big.started.wait(10) and small.started.wait(10)
    assert admission.stats().in_use_bytes == 60 and admission.stats().queued == 0


def test_a_request_that_waits_too_long_is_refused_as_busy(holders: list[Holder]) -> None:
    admission = Admission(100, 8, 8, timeout=0)
    hog = Holder(admission, 100)
    holders.append(hog)
    assert hog.started.wait(10)
    with pytest.raises(Busy) as info, admission.admit("A search of nq 1 topk 1 over 1 segments", 1):
        pass
    assert info.value.code == ErrorCode.UNEXPECTED_ERROR
    assert info.value.reason == ("Server busy: A search of nq 1 topk 1 over 1 segments not started (waited 0 s for "
                                 "memory or a search slot); retry later")
    assert admission.stats().refused_busy == 1 and admission.stats().queued == 0


def test_a_full_queue_refuses_at_once(holders: list[Holder]) -> None:
    admission = Admission(100, 8, max_queued=1, timeout=30)
    hog = Holder(admission, 100)
    holders.append(hog)
    assert hog.started.wait(10)
    waiter = Holder(admission, 10)
    holders.append(waiter)
    poll_for(lambda: admission.stats().queued == 1, 10, what="the waiter")
    with pytest.raises(Busy, match="the queue is full: 1 requests waiting"), admission.admit("x", 1):
        pass
    hog.finish()
    assert waiter.started.wait(10)


def test_searches_beyond_the_cap_wait_while_other_work_fits(holders: list[Holder]) -> None:
    admission = Admission(1000, max_searches=1, max_queued=4, timeout=30)
    running = Holder(admission, 1)
    holders.append(running)
    assert running.started.wait(10)
    insert = Holder(admission, 1, search=False)  # not a search: the cap does not apply
    holders.append(insert)
    assert insert.started.wait(10)
    second = Holder(admission, 1)
    holders.append(second)
    poll_for(lambda: admission.stats().queued == 1, 10, what="the second search to queue")
    assert not second.started.is_set()
    running.finish()
    assert second.started.wait(10)
    assert admission.stats().running_searches == 1


def test_a_failing_request_releases_what_it_held() -> None:
    admission = Admission(100, 1, 1, timeout=0)
    with pytest.raises(RuntimeError), admission.admit("x", 100):
        raise RuntimeError("boom")
    with admission.admit("y", 100):
        assert admission.stats().running_searches == 1


def test_admission_arguments_are_checked() -> None:
    with pytest.raises(ValueError):
        Admission(0, 1, 1, 1)
    with pytest.raises(ValueError):
        Admission(1, 0, 1, 1)


def _segment(rows: int) -> Segment:
    return Segment(id=1, name="s", collection_id=1, partition_id=1, state=SegmentState.RAW, row_count=rows,
                   deleted_count=0, data_size=0, index_type=IndexType.FLAT, delete_version=0, created_us=0)


def test_only_heavy_searches_take_a_search_slot(holders: list[Holder]) -> None:
    """With the one slot taken, a light search (under 64 MB) still starts at once; a heavy one waits."""
    admission = Admission(4 << 30, max_searches=1, max_queued=4, timeout=0)
    heavy = Holder(admission, 1)
    holders.append(heavy)
    assert heavy.started.wait(10)
    with admission.search(nq=10, topk=10, segs=[_segment(1000)], threads=2, query_bytes=320) as waited:
        assert not waited and admission.stats().running_searches == 1
    assert search_cost(SearchShape(2000, 16384, 1, 2)) >= limits.HEAVY_SEARCH_BYTES
    with pytest.raises(Busy), admission.search(nq=2000, topk=16384, segs=[_segment(20000)], threads=2,
                                               query_bytes=0):
        pass
