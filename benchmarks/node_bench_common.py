"""Small helpers shared by the node benchmarks (``benchmarks.node_bench`` and the others that import them from
there): statistics, status checks, the machine's description, and the client-side requests."""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from milvus_wire import milvus_pb2


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def percentiles(latencies_s: np.ndarray) -> tuple[float, float, float]:
    """p50 / p95 / p99 in milliseconds."""
    p50, p95, p99 = np.percentile(latencies_s * 1e3, [50, 95, 99])
    return float(p50), float(p95), float(p99)


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - started


def check_status(status: Any, what: str) -> None:
    if status.error_code != 0:
        raise RuntimeError(f"{what} failed: error_code {status.error_code}: {status.reason}")


def fmt_rate(value: float) -> str:
    return f"{value:,.0f}"


def lscpu() -> dict[str, str]:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    info: dict[str, str] = {}
    for line in out.splitlines():
        key, _, value = line.partition(":")
        if value.strip():
            info[key.strip()] = value.strip()
    return info


def machine_line() -> str:
    """The header's machine line: CPU model, CPUs and cores, OS and the load average at start."""
    cpu = lscpu()
    model = cpu.get("Model name", platform.processor() or "unknown")
    try:
        cores = int(cpu["Core(s) per socket"]) * int(cpu.get("Socket(s)", "1"))
        core_text = f"{cores} cores, {cpu.get('Thread(s) per core', '?')} thread(s) per core"
    except (KeyError, ValueError):
        core_text = "cores unknown"
    cpus = cpu.get("CPU(s)", str(os.cpu_count()))
    return (f"machine : {model}, {cpus} CPUs ({core_text}), {platform.system()} {platform.release()} "
            f"{platform.machine()}; load average {os.getloadavg()[0]:.2f} at start")


def filesystem(path: Path) -> str:
    """The type of the file system holding ``path`` (longest mount point prefix in /proc/mounts)."""
    best, kind = "", "unknown"
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return kind
    target = str(path.resolve())
    for line in mounts:
        parts = line.split()
        if len(parts) < 3:
            continue
        point = parts[1]
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) > len(best):
            best, kind = point, parts[2]
    return kind


def protobuf_text() -> str:
    try:
        version = importlib.metadata.version("protobuf")
        backend = importlib.import_module("google.protobuf.internal.api_implementation").Type()
    except (ImportError, AttributeError):
        return "protobuf ?"
    return f"protobuf {version} ({backend})"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"



def row_records(vectors: np.ndarray) -> list[Any]:
    """RowRecords the way a Milvus 1.x client builds them (``float_data`` from Python lists)."""
    return [milvus_pb2.RowRecord(float_data=row) for row in vectors.tolist()]



def batches(rows: int, size: int) -> list[tuple[int, int]]:
    return [(start, min(rows, start + size)) for start in range(0, rows, size)]

