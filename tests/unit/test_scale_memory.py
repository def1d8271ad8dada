"""The memory benchmark's pure parts (smaps_rollup fields, peaks, a node's sum, the cost of a second worker,
result files) and how the capacity plan uses them."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest

from benchmarks.capacity_plan import (
    GIB,
    MIB,
    Measured,
    Target,
    measured_memory,
    plan,
    summary_table,
    with_process_costs,
)
from benchmarks.scale_memory_values import (
    BuildMemory,
    ReaderMemory,
    Rollup,
    build_lines,
    extra_worker_per_vector,
    peaks,
    read_all,
    read_rollup,
    reader_lines,
    total,
    write,
)
from benchmarks.scale_results import InsertFigures, KindFigures, Memory, PointFigures

KIB = 1024
STATUS = "VmHWM:\t  900 kB\nVmRSS:\t  800 kB\nRssAnon:\t  300 kB\nRssFile:\t  499 kB\n"
ROLLUP = ("Rss: 800 kB\nPss: 600 kB\nPss_Anon: 300 kB\nPss_File: 299 kB\nShared_Clean: 400 kB\n"
          "Shared_Dirty: 10 kB\nPrivate_Clean: 90 kB\nPrivate_Dirty: 300 kB\n")


def test_rollup_reads_private_and_shared_pages() -> None:
    r = Rollup.parse(STATUS, ROLLUP)
    assert (r.rss, r.anon, r.file, r.hwm) == (800 * KIB, 300 * KIB, 499 * KIB, 900 * KIB)
    assert (r.pss, r.pss_anon, r.pss_file) == (600 * KIB, 300 * KIB, 299 * KIB)
    assert (r.uss, r.shared) == (390 * KIB, 410 * KIB)


def test_growth_peaks_and_sums_are_field_by_field() -> None:
    a, b = Rollup(rss=10, anon=5, pss=8, hwm=12), Rollup(rss=7, anon=6, pss=9, hwm=20)
    assert peaks([a, b]) == Rollup(rss=10, anon=6, pss=9, hwm=20)
    assert peaks([]) == Rollup()
    assert total([a, b]) == Rollup(rss=17, anon=11, pss=17, hwm=32)
    assert b.minus(a) == Rollup(rss=-3, anon=1, pss=1, hwm=10)  # the peak over the base's resident set


def test_this_process_rollup_adds_up() -> None:
    r = read_rollup(os.getpid())
    assert r.rss > 0 and 0 < r.pss <= r.rss and r.uss <= r.rss
    grown = np.ones(64 << 20, dtype=np.uint8)
    after = read_rollup(os.getpid())
    assert after.uss - r.uss >= 48 << 20 and after.pss_anon - r.pss_anon >= 48 << 20
    del grown


def reader(kind: str, workers: int, grown_pss: int, rows: int = 1000) -> ReaderMemory:
    fresh = Rollup(rss=100, pss=60)
    after = Rollup(rss=100 + grown_pss, pss=60 + grown_pss // workers)
    return ReaderMemory(kind, rows, 128, workers, Rollup(pss=50) if workers > 1 else None,
                        (fresh,) * workers, (after,) * workers, {"nprobe=4": 0.7}, {"load_average": 1.0})


def build(kind: str, rows: int, peak_rss: int, hwm: int) -> BuildMemory:
    before = Rollup(rss=100, pss=90)
    return BuildMemory(kind, rows, 128, {"nlist": 4}, 3.0, 500, 60, 0.05, before, Rollup(rss=100 + peak_rss),
                       Rollup(rss=150, hwm=100 + hwm), {"load_average": 1.0})


def test_second_worker_cost_and_build_peak() -> None:
    one, two = reader("IVF_FLAT", 1, 5000), reader("IVF_FLAT", 2, 6000)
    assert extra_worker_per_vector(one, two) == ((6000 - 5000) / 1000, 60)
    assert two.node.pss == 50 + 2 * (60 + 3000)
    assert build("IVF_FLAT", 1000, 2000, 1500).peak_per_row == 2.0  # the sampled peak is larger
    assert build("IVF_FLAT", 1000, 1000, 1500).peak_per_row == 1.5  # VmHWM caught a peak between samples


def test_results_round_trip_and_lines(tmp_path: Path) -> None:
    values = [reader("FLAT", 1, 5000), reader("FLAT", 2, 10_000)]
    built = build("IVF_FLAT", 1000, 2000, 1500)
    for v in values:
        write(tmp_path, v)
    write(tmp_path, built)
    builds, readers = read_all(tmp_path)
    assert builds == [built] and sorted(readers, key=lambda r: r.workers) == values
    assert "IVF_FLAT 1,000" in build_lines(builds)[1]
    assert any("FLAT: a second worker adds 5 B/vector" in line for line in reader_lines(readers))


def test_measured_memory_prefers_the_plan_rows() -> None:
    builds = [build("HNSW", 250, 1000, 0), build("IVF_FLAT", 1000, 2000, 0), build("IVF_FLAT", 500, 9000, 0)]
    readers = [reader("FLAT", 1, 5000), reader("FLAT", 2, 10_000), reader("IVF_FLAT", 2, 10_000),
               reader("FLAT", 1, 1000, rows=4000), reader("FLAT", 2, 9000, rows=4000),  # more rows, not the plan's
               reader("HNSW", 1, 1000, rows=500), reader("HNSW", 2, 1500, rows=500)]  # only at other rows
    got = measured_memory(builds, readers, 1000)
    assert got["IVF_FLAT"] == Measured(2.0, 1000)  # no one-worker node: no worker figure
    assert got["HNSW"] == Measured(4.0, 250, 1.0, 60, 50, 500)
    assert got["FLAT"] == Measured(None, 0, 5.0, 60, 50, 1000)
    filled = with_process_costs(got, ["FLAT", "IVF_FLAT", "ANNOY"])
    assert filled["FLAT"] == got["FLAT"]
    assert filled["IVF_FLAT"] == Measured(2.0, 1000, None, 60, 50)  # a process' own memory, per vector inferred
    assert filled["ANNOY"] == Measured(None, 0, None, 60, 50)


def test_plan_counts_every_worker_and_the_measured_build() -> None:
    m = 1_000_000
    base = Memory(100 * MIB, 100 * MIB, 0, 0, 0, 0, 100 * MIB)
    searched = Memory(100 * MIB + 600 * m, 100 * MIB + 100 * m, 500 * m, 0, 0, 0, 0)
    kind = KindFigures("float", "IVF_FLAT", m, 128, 512 * m, 1, {"nlist": 4000}, 100.0, None, 500 * m, 1.0,
                       base, searched, searched, (PointFigures("nprobe=16", 0.95, 1.0, 2.0, 1000.0, 4000.0),),
                       {}, Memory(0, 0, 0, 0, 0, 0, 100 * MIB + 3000 * m))
    ins = InsertFigures("float", m, 128, 10_000, 10.0, 20.0, 1.0, 1.0, 1, {"wal": 0},
                        Memory(0, 0, 0, 0, 0, 0, 100 * MIB), {"writer_start": 100 * MIB})
    t = Target(rows=10 * m, reader_memory_gib=16, workers=4, builds_at_once=1)
    inferred = plan(kind, ins, t)
    measured = plan(kind, ins, t, Measured(1200.0, m, 20.0, 50 * MIB, 40 * MIB))
    assert (inferred.worker_b, inferred.worker_source) == (100, "inferred")  # the private part again
    assert (measured.worker_b, measured.worker_source) == (20, "measured")
    fixed = 100 * MIB + 3 * 50 * MIB + 40 * MIB
    share = 2 * 10 * m * (100 + 508 + 3 * 20)  # private + max(mapped 500, index 500 + ids 8) + 3 workers
    assert measured.readers == max(2, math.ceil(share / (16 * GIB * 0.75 - fixed)))
    assert measured.reader_gib == pytest.approx((share / measured.readers + fixed) / GIB)
    assert inferred.reader_gib > measured.reader_gib
    assert measured.writer_gib == pytest.approx((100 * MIB + 1200 * 2_097_152) / 0.75 / GIB)
    assert inferred.writer_gib == pytest.approx((100 * MIB + 3000 * 2_097_152) / 0.75 / GIB)  # VmHWM
    elsewhere = plan(kind, ins, t, Measured(1200.0, m // 4))  # sampled at other rows: VmHWM at these wins
    assert elsewhere.writer_gib == inferred.writer_gib
    assert summary_table([measured])[2].endswith("| 20 (measured) |")
