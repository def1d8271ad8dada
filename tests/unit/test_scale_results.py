"""The scale benchmark's pure parts: /proc memory fields, tie-tolerant recall, result files, the table, and the
capacity plan's arithmetic."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest

from benchmarks.capacity_plan import GIB, MIB, Target, growth, operating_point, plan, segment_rows, summary_table
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


def test_segment_rows_follow_index_file_size() -> None:
    assert segment_rows(128, 1024) == 2_097_152  # 1 GiB of 512-byte rows
    assert segment_rows(768, 1024) == 349_525
    assert segment_rows(256, 1024, binary=True) == 33_554_432


def test_growth_rules() -> None:
    ivf = growth("IVF_SQ8", 1_000_000, 4_000_000)
    assert ivf.build_per_row == ivf.search == 2.0  # nlist = 4 sqrt(rows)
    hnsw = growth("HNSW", 1_000_000, 1_000_000)
    assert hnsw.search == 1.0
    flat = growth("FLAT", 1_000_000, 3_000_000)
    assert (flat.build_per_row, flat.search) == (0.0, 3.0)


def test_operating_point_is_the_fastest_with_enough_recall() -> None:
    a = PointFigures("a", 0.80, 1, 2, 900, 9000)
    b = PointFigures("b", 0.93, 1, 2, 800, 5000)
    c = PointFigures("c", 0.99, 1, 2, 500, 2000)
    assert operating_point([a, b, c]) == b
    assert operating_point([a]) == a


def test_plan_arithmetic() -> None:
    m = 1_000_000
    base = Memory(400 * MIB, 100 * MIB, 300 * MIB, 0, 0, 0, 400 * MIB)
    searched = Memory(400 * MIB + 700 * m, 100 * MIB + 100 * m, 300 * MIB + 600 * m, 0, 0, 0, 0)
    builder = Memory(0, 0, 0, 0, 0, 0, 400 * MIB + 2000 * m)
    kind = KindFigures("float", "IVF_SQ8", m, 128, 512 * m, 1, {"nlist": 4000}, 100.0, None, 200 * m, 1.0,
                       base, searched, searched, (PointFigures("nprobe=16", 0.95, 1.0, 2.0, 1000.0, 4000.0),),
                       {}, builder)
    t = Target(rows=10 * m, replication=2, reader_memory_gib=16, reader_cores=4, headroom=0.25, builds_at_once=1)
    writer = Memory(0, 0, 0, 0, 0, 0, 300 * MIB + 3 * m * 520)  # peak: 3 bytes per byte of rows + ids
    ins = InsertFigures("float", m, 128, 10_000, 10.0, 20.0, 1.0, 1.0, 1, {"wal": 520 * m}, writer,
                        {"writer_start": 300 * MIB})
    p = plan(kind, ins, t)
    assert (p.segment_rows, p.segments) == (2_097_152, 5)
    assert (p.private_b, p.mapped_b) == (100, 600)  # mapped: max(600 measured, 200 index + 8 ids)
    usable = 16 * GIB * 0.75 - 400 * MIB
    assert p.readers == max(2, math.ceil(2 * 10 * m * 700 / usable)) == 2
    assert p.reader_gib == pytest.approx((10 * m * 700 + 400 * MIB) / GIB)
    g = math.sqrt(2.097152)
    assert p.build_hours == pytest.approx(100.0 * 2.097152 * g * 5 / 3600)
    assert p.qps_batched == pytest.approx(2 * 4 / (g / 4000 * 5))
    assert p.qps_single == pytest.approx(2 * 4 / (g / 1000 * 5))
    assert summary_table([p])[2].startswith("| IVF_SQ8 | nprobe=16 (0.950) | 100 + 600 | 2 |")
    assert p.writer_gib == pytest.approx((400 * MIB + 2 * GIB * 3 + 2000 * 2_097_152) / 0.75 / GIB)
    raw, index, wal, merges = 10 * m * 520, 10 * m * 200, 520 * 2_097_152, 2 * 1024 * MIB
    assert p.storage_gib == pytest.approx((raw + index + wal + merges) * 1.3 / GIB)
