"""What a request may cost, decided from its fields before any work (pure), and how much memory this machine
gives a process (read once at start).

A node admits heavy requests (searches, inserts) against a memory budget: each one is charged an estimate
computed here from nq, the result width, the segments searched and the node's search threads, following
what the node's search path really allocates (``node/reader.py``, ``coordinator/wire.py``):

- building the result: the accumulator (12 bytes a result: an int64 id and a float32 distance), one
  partial result per search thread, and bounded blocks of temporaries (index calls, folds, merges);
- encoding the reply: the result, the reply buffer and the reply bytes (up to 14 bytes a result each).

The peak is the larger of the two phases, plus the decoded query vectors.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from coordinator.errors import ErrorCode, MilvusError
from coordinator.model import RESULT_SLOT_BYTES
from coordinator.topk import MERGE_BLOCK_BYTES, MERGE_BYTES_PER_CELL

# Bounds of the search path's temporaries (node/reader.py works within them; merges: coordinator/topk.py).
SEARCH_BLOCK_BYTES = 64 * 1024 * 1024  # one index call of a wide search
# faiss' output and working set (about three times the output: 36 bytes a result) and the offset-to-id
# mapping (9 bytes a result), rounded up
SEARCH_BYTES_PER_RESULT = 48
FOLD_BYTES = 64 * 1024 * 1024  # finished segment results of one search kept before they are folded
ENCODED_SLOT_BYTES = 14  # an id's varint (up to 10 bytes) and a float32 distance
QUERY_OBJECT_BYTES = 112  # a vector looked up by SearchByID is a numpy array of its own
IDS_REPLY_BYTES_PER_ROW = 40  # GetVectorIDs: the ids, the live ones, their varints in a buffer and in bytes
INSERT_COPIES = 4  # an insert's vectors: decoded, encoded in the log record, buffered, and the request itself
ID_BYTES = 8
# Ids of one DeleteByID: Milvus 1.1 has no limit; the same 256 MB as an insert's vectors (33,554,432 ids).
MAX_DELETE_IDS = 256 * 1024 * 1024 // ID_BYTES

# A search estimated at this much or more is heavy: it takes one of the node's ``max_searches`` slots (light
# searches are admitted by memory alone, so ordinary traffic never waits for a slot).
HEAVY_SEARCH_BYTES = 64 * 1024 * 1024

BUSY = "Server busy"


class OverBudget(MilvusError):
    """The request can never fit the node's memory budget: refused at once (not worth retrying as is)."""

    code = ErrorCode.OUT_OF_MEMORY


class Busy(MilvusError):
    """The request fits, but not now: the node's queue of heavy requests is full or the wait ran out. Retry."""

    code = ErrorCode.UNEXPECTED_ERROR


@dataclass(frozen=True, slots=True)
class SearchShape:
    """What decides a search's memory: queries, the result width (``min(topk, live rows)``), the segments
    searched, the node's search threads and the bytes of the query vectors once decoded."""

    nq: int
    width: int
    segments: int
    threads: int
    query_bytes: int = 0


def search_cost(shape: SearchShape) -> int:
    """Bytes a search holds at its peak on a node (an upper estimate)."""
    slots = max(0, shape.nq) * max(0, shape.width)
    if slots == 0 or shape.segments <= 0:
        return shape.query_bytes
    window = max(1, min(shape.threads, shape.segments))
    per_call = min(SEARCH_BLOCK_BYTES, slots * SEARCH_BYTES_PER_RESULT)
    build = slots * RESULT_SLOT_BYTES * window + window * per_call
    if shape.segments > 1:  # an accumulator, finished parts waiting to be folded, a merge block
        pending = min(FOLD_BYTES, (shape.segments - window) * slots * RESULT_SLOT_BYTES)
        merging = min(MERGE_BLOCK_BYTES, slots * (window + 1) * MERGE_BYTES_PER_CELL)
        build += slots * RESULT_SLOT_BYTES + pending + merging
    encode = slots * (RESULT_SLOT_BYTES + 2 * ENCODED_SLOT_BYTES)
    return max(build, encode) + shape.query_bytes


def insert_cost(rows: int, row_bytes: int, with_ids: bool) -> int:
    """Bytes an insert holds at its peak on the writer (an upper estimate)."""
    per_row = row_bytes * INSERT_COPIES + (ID_BYTES * 2 if with_ids else ID_BYTES)
    return max(0, rows) * per_row


def mb(value: int) -> str:
    return f"{value / (1 << 20):,.0f} MB"


def over_budget(what: str, cost: int, budget: int) -> OverBudget:
    return OverBudget(
        f"{what} needs about {mb(cost)} of memory, which exceeds the node's request memory budget of {mb(budget)}; "
        "lower nq or topk (or send fewer vectors), or raise the node's request_memory setting"
    )


def busy(what: str, reason: str) -> Busy:
    return Busy(f"{BUSY}: {what} not started ({reason}); retry later")


def delete_ids(count: int) -> None:
    """DeleteByID's id count, bounded before the ids are read (see :data:`MAX_DELETE_IDS`)."""
    if count > MAX_DELETE_IDS:
        raise MilvusError(f"The number of ids deleted each time cannot exceed {MAX_DELETE_IDS}",
                          ErrorCode.ILLEGAL_ARGUMENT)


# -- this machine ----------------------------------------------------------------------------------------

_UNLIMITED = 1 << 60


def parse_meminfo_total(text: str) -> int | None:
    """``MemTotal`` of /proc/meminfo, in bytes."""
    for line in text.splitlines():
        if line.startswith("MemTotal:"):
            parts = line.split()
            return int(parts[1]) * 1024 if len(parts) >= 2 and parts[1].isdigit() else None
    return None


def parse_cgroup_limit(text: str) -> int | None:
    """A cgroup memory limit file (v2 ``memory.max``: a number or ``max``; v1 ``memory.limit_in_bytes``)."""
    raw = text.strip()
    if not raw.isdigit():
        return None  # "max": no limit
    value = int(raw)
    return value if 0 < value < _UNLIMITED else None


def cgroup_limit_files(proc_cgroup: str, root: Path = Path("/sys/fs/cgroup")) -> list[Path]:
    """The memory limit files that may apply to this process, from /proc/self/cgroup: its own cgroup and its
    ancestors (v2 and v1), and the mount roots (a container sees its own cgroup there)."""
    found: list[Path] = []
    for line in proc_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":
            base, name = root, "memory.max"
        elif "memory" in controllers.split(","):
            base, name = root / "memory", "memory.limit_in_bytes"
        else:
            continue
        rel = Path(path.lstrip("/"))
        for level in [rel, *rel.parents]:
            found.append(base / level / name)
    found += [root / "memory.max", root / "memory" / "memory.limit_in_bytes"]
    return list(dict.fromkeys(found))


def memory_limit() -> int:
    """The memory this process may use: the smaller of the machine's memory and its cgroup limits (bytes)."""
    candidates: list[int] = []
    try:
        total = parse_meminfo_total(Path("/proc/meminfo").read_text())
        if total:
            candidates.append(total)
    except OSError:
        pass
    try:
        files = cgroup_limit_files(Path("/proc/self/cgroup").read_text())
    except OSError:
        files = []
    for path in files:
        try:
            limit = parse_cgroup_limit(path.read_text())
        except OSError:
            continue
        if limit:
            candidates.append(limit)
    if not candidates:
        pages = os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else 0
        candidates.append(int(pages) * int(os.sysconf("SC_PAGE_SIZE")) if pages > 0 else 4 << 30)
    return min(candidates)


def cpu_count() -> int:
    """CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)
