"""The import's pure decisions: the resume journal (parse, plan, mismatch), batch ids, the metric choice, the
address parser, the progress line and the summary."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from mishards_tools.connection import ToolError, parse_uri
from mishards_tools.dataset_types import Chunk, DatasetInfo
from mishards_tools.import_target import choose_metric
from mishards_tools.importer import ImportSummary, batch_ids, format_summary
from mishards_tools.journal import Journal, JournalError, JournalHeader, journal_path, mismatch, parse, pending
from mishards_tools.progress import Progress, format_duration, render

HEADER = JournalHeader("/d/x.npy", 1000, 5, "c", "", 10, 35, 0)


def test_parse_and_plan_after_a_kill(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j")
    journal.open(HEADER)
    for start in (0, 10, 20):
        journal.sent(start, min(start + 10, 35))
    journal.ack(10, 20)
    journal.close()
    with (tmp_path / "j").open("a") as fh:
        fh.write('{"ack":[0,')  # torn by a kill mid-write
    state = journal.read()
    assert state.header == HEADER and not state.done
    assert state.acked == {10} and state.unknown == {0, 20}
    assert pending(HEADER, state) == ([0, 20], [30])

    journal.open(None)  # resume appends after the torn line
    journal.ack(0, 10)
    journal.done()
    journal.close()
    state = journal.read()
    assert state.acked == {0, 10} and state.unknown == {20} and state.done


def test_damaged_line_before_the_end_is_an_error() -> None:
    with pytest.raises(JournalError, match="line 2 is damaged"):
        parse(['{"sent": [0, 10]}', "{oops", '{"ack": [0, 10]}'])
    assert parse([]).header is None


def test_mismatch_names_the_difference() -> None:
    assert mismatch(HEADER, HEADER) == ""
    assert mismatch(HEADER, replace(HEADER, batch=20)) == "batch was 10, now 20"
    assert mismatch(HEADER, replace(HEADER, size=999)).startswith("size was 1000")


def test_journal_path(tmp_path: Path) -> None:
    data = tmp_path / "sift.fvecs"
    assert journal_path(data, "c", "", None) == tmp_path / "sift.fvecs.c.import-journal"
    assert journal_path(data, "c", "p1", tmp_path / "s") == tmp_path / "s" / "sift.fvecs.c.p1.import-journal"


def test_batch_ids() -> None:
    chunk = Chunk(20, np.zeros((5, 2), np.float32))
    np.testing.assert_array_equal(batch_ids(chunk, 100), [120, 121, 122, 123, 124])
    own = Chunk(0, np.zeros((2, 2), np.float32), ids=np.array([7, 3], np.int64))
    np.testing.assert_array_equal(batch_ids(own, 100), [7, 3])


def test_choose_metric() -> None:
    info = DatasetInfo(Path("f"), "npy", 1, 4)
    assert choose_metric(None, info) == "L2"
    assert choose_metric("ip", info) == "IP"
    assert choose_metric(None, replace(info, metric="IP")) == "IP"
    assert choose_metric(None, replace(info, binary=True)) == "HAMMING"
    with pytest.raises(ToolError, match="metric JACCARD does not fit float vectors"):
        choose_metric("jaccard", info)


def test_parse_uri() -> None:
    assert parse_uri("127.0.0.1:19530") == ("127.0.0.1", 19530)
    assert parse_uri("tcp://db:1") == ("db", 1)
    assert parse_uri("[::1]:5") == ("::1", 5)
    for bad in ("nohost", "h:", "h:99999", ":5"):
        with pytest.raises(ToolError):
            parse_uri(bad)


def test_render_and_durations() -> None:
    line = render(500, 1000, 10.0)
    assert "50.0%" in line and "500/1,000 rows" in line and "50 rows/s" in line and "ETA 0:10" in line
    assert line.startswith("[############............]")
    resumed = render(600, 1000, 10.0, run_done=100, bar=False)
    assert "10 rows/s" in resumed and "ETA 0:40" in resumed and not resumed.startswith("[")
    assert format_duration(3725) == "1:02:05" and format_duration(float("inf")) == "--:--"


def test_progress_plain_lines_when_not_a_tty() -> None:
    now = [0.0]
    out = io.StringIO()
    bar = Progress(100, out, start_done=20, interval=1.0, clock=lambda: now[0])
    now[0] = 2.0
    bar.add(40)
    bar.add(10)  # within the interval: no line
    now[0] = 4.0
    bar.finish()
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and "60.0%" in lines[0] and "20 rows/s" in lines[0]
    assert "70.0%" in lines[1] and "\r" not in out.getvalue()


def test_summary_text() -> None:
    good = ImportSummary(100, 80, 20, 8, 1, 0, 2.0)
    text = format_summary(good)
    assert good.ok and text.startswith("import complete: 80 rows sent in 2.0 s (40 rows/s, the final flush included)")
    bad = ImportSummary(100, 10, 0, 1, 0, 2, 1.0, "rows 10..19: refused")
    assert not bad.ok and "import FAILED" in format_summary(bad) and "to resume" in format_summary(bad)
