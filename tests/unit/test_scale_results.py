"""The scale benchmark's pure parts: /proc memory fields, tie-tolerant recall, result files and the table."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from benchmarks.scale_results import (
    InsertFigures,
    KindFigures,
    Memory,
    PointFigures,
    parse_kb_fields,
    read_memory,
    read_results,
    recall_by_distance,
    result_path,
    table_lines,
    write_result,
)

STATUS = """Name:\tpython
Umask:\t0022
State:\tS (sleeping)
VmPeak:\t 2000000 kB
VmHWM:\t  900000 kB
VmRSS:\t  800000 kB
RssAnon:\t  300000 kB
RssFile:\t  499000 kB
RssShmem:\t    1000 kB
Threads:\t12
voluntary_ctxt_switches:\t17
"""

ROLLUP = """55f79a221000-7ffe11529000 ---p 00000000 00:00 0                          [rollup]
Rss:              800000 kB
Pss:              700000 kB
Pss_Anon:         300000 kB
Pss_File:         399000 kB
Pss_Shmem:          1000 kB
Anonymous:        300000 kB
"""


def test_kb_fields_are_bytes_and_other_lines_are_skipped() -> None:
    fields = parse_kb_fields(STATUS)
    assert fields["VmRSS"] == 800000 * 1024
    assert fields["RssFile"] == 499000 * 1024
    assert "Threads" not in fields and "Name" not in fields and "voluntary_ctxt_switches" not in fields
    assert parse_kb_fields("Rss: 12 MB\nPss: x kB\n: 3 kB\n") == {"": 3 * 1024}


def test_memory_takes_status_and_rollup_fields() -> None:
    mem = Memory.parse(STATUS, ROLLUP)
    kib = 1024
    assert (mem.rss, mem.anon, mem.file, mem.hwm) == (800000 * kib, 300000 * kib, 499000 * kib, 900000 * kib)
    assert (mem.pss, mem.pss_anon, mem.pss_file) == (700000 * kib, 300000 * kib, 399000 * kib)


def test_memory_without_rollup_falls_back_to_the_status_split() -> None:
    mem = Memory.parse(STATUS, "")
    assert mem.pss == mem.rss and mem.pss_anon == mem.anon and mem.pss_file == mem.file


def test_growth_subtracts_every_field_but_the_peak() -> None:
    base = Memory(100, 40, 60, 90, 40, 50, 100)
    now = Memory(1000, 300, 700, 900, 300, 600, 1200)
    assert now.minus(base) == Memory(900, 260, 640, 810, 260, 550, 1200)


def test_this_process_memory_adds_up() -> None:
    mem = read_memory(os.getpid())
    assert mem.rss > 0 and mem.anon > 0
    assert abs(mem.anon + mem.file - mem.rss) <= mem.rss // 10  # RssShmem is the rest
    assert mem.hwm >= mem.rss
    grown = np.ones(64 << 20, dtype=np.uint8)  # 64 MiB touched: private memory
    after = read_memory(os.getpid())
    assert after.anon - mem.anon >= 48 << 20
    del grown


def test_recall_by_distance_counts_ties_at_the_kth_distance_as_hits() -> None:
    truth = np.array([[1, 2, 2, 2], [0, 1, 2, 3]], dtype=np.float32)
    found = np.array([[1, 2, 2, 3], [0, 1, 2, 3]], dtype=np.float32)
    assert recall_by_distance(found, truth, 3) == 1.0  # another row at distance 2 is as good
    assert recall_by_distance(found, truth, 4) == (3 / 4 + 1) / 2
    far = np.array([[5, 5, 5, 5], [0, 9, 9, 9]], dtype=np.float32)
    assert recall_by_distance(far, truth, 2) == (0 + 1 / 2) / 2


def test_results_round_trip_and_tabulate(tmp_path: Path) -> None:
    mem = Memory(10**9, 4 * 10**8, 6 * 10**8, 10**9, 4 * 10**8, 6 * 10**8, 2 * 10**9)
    base = Memory(10**8, 10**8, 0, 10**8, 10**8, 0, 10**8)
    kind = KindFigures("float", "IVF_FLAT", 1000, 128, 512000, 1, {"nlist": 126}, 3.5, 3.1, 520000, 0.4,
                       base, mem, mem, (PointFigures("nprobe=4", 0.71, 0.8, 1.9, 1100.0, 9000.0),
                                        PointFigures("nprobe=16", 0.93, 1.1, 2.5, 800.0, 4000.0)),
                       {"load_average": 1.5})
    ins = InsertFigures("float", 1000, 128, 100, 0.01, 0.02, 0.1, 0.2, 1, {"vectors": 512128}, mem)
    write_result(result_path(tmp_path, "float", 1000, "IVF_FLAT"), kind)
    write_result(result_path(tmp_path, "float", 1000, "insert"), ins)
    write_result(result_path(tmp_path, "float", 2000, "insert"), ins)  # another size: not read
    inserts, kinds = read_results(tmp_path, 1000)
    assert inserts == [ins] and kinds == [kind]
    assert ins.vectors_per_s == 100_000
    assert kind.loaded.rss == 9 * 10**8
    lines = table_lines(inserts, kinds, ["FLAT", "IVF_FLAT"])
    assert "100,000 vectors/s" in lines[0]
    row = lines[2].split()
    # index, segments, build s, index MB, anon MB, file MB, RSS/raw, point, recall, p50, p99, QPS1, QPS100
    assert row[:8] == ["IVF_FLAT", "1", "3.5", "1", "300", "600", "1757.81", "|"]
    assert row[8:] == ["nprobe=4", "0.710", "0.80", "1.90", "1,100", "9,000"]
    assert lines[3].split()[1:3] == ["nprobe=16", "0.930"]
