"""``Cmd("get_system_info")``: Milvus 1.1's JSON about the machine and the process.

A CPU build of Milvus 1.1 answers ``{"memory_total":"<bytes>","memory_used":"<bytes>"}``: the machine's
physical memory and the server process's resident memory (VmRSS), both in bytes and as strings, in compact
JSON with sorted keys (GPU builds add ``gpu<i>_memory_total`` / ``gpu<i>_memory_used``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from coordinator.limits import parse_meminfo_total


def parse_vmrss(status_text: str) -> int:
    """The ``VmRSS`` of a /proc/<pid>/status text, in bytes (0 when absent)."""
    for line in status_text.splitlines():
        if line.startswith("VmRSS:"):
            parts = line.split()
            return int(parts[1]) * 1024 if len(parts) >= 2 and parts[1].isdigit() else 0
    return 0


def physical_memory() -> int:
    try:
        total = parse_meminfo_total(Path("/proc/meminfo").read_text())
    except OSError:
        total = None
    if total:
        return total
    return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))


def process_memory() -> int:
    try:
        return parse_vmrss(Path("/proc/self/status").read_text())
    except OSError:
        return 0


def as_json(memory_total: int, memory_used: int) -> str:
    return json.dumps({"memory_total": str(memory_total), "memory_used": str(memory_used)}, sort_keys=True,
                      separators=(",", ":"))


def system_info() -> str:
    return as_json(physical_memory(), process_memory())
