"""Milvus Lite through its own client, driven from ``benchmarks.lite_bench``: one worker process per run.

The worker (``benchmarks/lite_worker.py``) runs in the environment of :mod:`benchmarks.lite_env` with
``MilvusClient`` on a fresh database file; requests and replies are JSON lines. When the worker exits
the embedded server stops with it; :meth:`WorkerProcess.stop` waits for both by process id.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.lite_plan import (
    BATCH_NQ,
    ID_FIELD,
    LITE_LEVELS,
    LITE_SEARCH_LEVEL,
    VECTOR_FIELD,
    IndexPlan,
    PointFigures,
    Refusal,
    RunFigures,
    batches,
    lite_search_params,
)
from tests.support.waiting import log_tail

log = logging.getLogger(__name__)

WORKER = Path(__file__).resolve().parent / "lite_worker.py"
COLLECTION = "lite_bench"
REPLY_TIMEOUT_S = 1800.0
EXIT_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class SearchInputs:
    """Files and counts both sides search with (the driver writes the arrays once)."""

    base: Path
    queries: Path
    rows: int
    nq: int
    batch: int
    k: int
    warmup_single: int
    warmup_batched: int


class WorkerProcess:
    """A worker speaking JSON lines on stdin / stdout (``benchmarks/lite_worker.py`` protocol)."""

    def __init__(self, argv: Sequence[str], workdir: Path, env: Mapping[str, str], cwd: Path | None = None) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.name = Path(argv[-1]).name
        self._log = open(workdir / "worker.log", "wb")  # noqa: SIM115 - kept open for the child's lifetime
        self.proc = subprocess.Popen(list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
                                     cwd=cwd or workdir, env={**os.environ, **env}, text=True)
        self.server_pids: list[int] = []

    def call(self, op: str, timeout: float = REPLY_TIMEOUT_S, **fields: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"op": op, **fields}) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            raise TimeoutError(f"worker {self.name}: no reply to {op} within {timeout:.0f} s")
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.name} exited during {op}: {self.log_tail()}")
        reply: dict[str, Any] = json.loads(line)
        for proc in reply.get("server", []):
            if proc["pid"] not in self.server_pids:
                self.server_pids.append(int(proc["pid"]))
        return reply

    def log_tail(self) -> str:
        return log_tail(self.workdir / "worker.log", 20)

    def stop(self) -> None:
        """Ask the worker to close; then wait for it and its server, killing by pid what outlives the wait."""
        if self.proc.poll() is None:
            try:
                self.call("close", timeout=EXIT_TIMEOUT_S)
            except (OSError, TimeoutError, RuntimeError, ValueError) as exc:
                log.warning("worker %s did not close cleanly: %s", self.name, exc)
            try:
                self.proc.wait(timeout=EXIT_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=EXIT_TIMEOUT_S)
        for pid in self.server_pids:
            wait_gone(pid, EXIT_TIMEOUT_S)
        self._log.close()


def wait_gone(pid: int, timeout: float) -> None:
    """Wait until process ``pid`` (a child of the worker) has exited; SIGKILL it at the deadline."""
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    if Path(f"/proc/{pid}").exists():
        log.warning("Milvus Lite server %d still running; killing it", pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def checked(reply: dict[str, Any], what: str) -> dict[str, Any]:
    if not reply.get("ok"):
        raise RuntimeError(f"Milvus Lite {what}: {reply.get('error')}")
    return reply


def point_figures(reply: Mapping[str, Any], gt: np.ndarray, k: int) -> PointFigures:
    from benchmarks.datasets import recall_at

    lat_ms = np.asarray(reply["lat_s"]) * 1e3
    ids = np.asarray(reply["ids"], dtype=np.int64).reshape(-1, k)
    return PointFigures(float(np.percentile(lat_ms, 50)), float(np.percentile(lat_ms, 99)),
                        float(reply["serial_qps"]), float(reply["batched_qps"]), recall_at(ids, gt[: ids.shape[0]], k))


@dataclass
class LiteRun:
    figures: RunFigures | Refusal
    versions: dict[str, Any]
    level_p50_ms: dict[str, float]  # nq=1 p50 per consistency level, at the first search point
    server: list[dict[str, Any]]  # the embedded server process after the searches (threads, memory)
    index_described: dict[str, str]


def lite_versions(python: Path, workdir: Path, env: Mapping[str, str]) -> dict[str, Any]:
    """Start Milvus Lite on an empty database once: its versions and server process, for the header."""
    worker = WorkerProcess([str(python), str(WORKER)], workdir, env)
    try:
        return checked(worker.call("open", db=str(workdir / "lite.db")), "open")
    finally:
        worker.stop()


def run_lite(python: Path, workdir: Path, env: Mapping[str, str], plan: IndexPlan, data: SearchInputs,
             gt: np.ndarray, level_queries: int) -> LiteRun:
    """One fresh database: load with ``plan``'s index, rebuild it on the flushed rows, search every point."""
    worker = WorkerProcess([str(python), str(WORKER)], workdir, env)
    try:
        versions = checked(worker.call("open", db=str(workdir / "lite.db")), "open")
        index = plan.lite_index()
        first = lite_search_params(plan.points[0])
        loaded = worker.call("load", collection=COLLECTION, base=str(data.base), rows=data.rows,
                             spans=batches(data.rows, data.batch), index=index, level=LITE_LEVELS[0],
                             levels=list(LITE_LEVELS), search_params=first, id_field=ID_FIELD,
                             vector_field=VECTOR_FIELD)
        if checked(loaded, "load").get("refused"):
            return LiteRun(Refusal(str(loaded["refused"])), versions, {}, list(versions["server"]), {})
        if loaded["count"] != data.rows:
            raise RuntimeError(f"Milvus Lite counts {loaded['count']} rows, {data.rows} were inserted")
        built = checked(worker.call("build", collection=COLLECTION, index=index, vector_field=VECTOR_FIELD),
                        "build")
        common: dict[str, Any] = {"collection": COLLECTION, "queries": str(data.queries), "nq": data.nq, "k": data.k,
                  "vector_field": VECTOR_FIELD}
        points = {}
        for point in plan.points:
            reply = checked(worker.call("search", **common, level=LITE_SEARCH_LEVEL,
                                        search_params=lite_search_params(point), spans=batches(data.nq, BATCH_NQ),
                                        warmup_single=data.warmup_single, warmup_batched=data.warmup_batched),
                            "search")
            points[point.label] = point_figures(reply, gt, data.k)
        levels = checked(worker.call("levels", **{**common, "nq": min(level_queries, data.nq)},
                                     levels=list(LITE_LEVELS), search_params=first), "levels")
        level_p50 = {lv: float(np.percentile(np.asarray(v) * 1e3, 50)) for lv, v in levels["lat_s"].items()}
        figures = RunFigures(  # MilvusClient builds its request inside insert(): no separate acknowledged rate
            insert_rate=data.rows / float(loaded["insert_s"]), ack_rate=None,
            searchable_s=dict(loaded["searchable_s"]), flush_s=float(loaded["flush_s"]),
            build_s=float(built["build_s"]), load_s=float(built["load_s"]), points=points,
            insert_cpu_s=(float(loaded["client_cpu_s"]), float(loaded["server_cpu_s"])),
        )
        return LiteRun(figures, versions, level_p50, list(built.get("server", [])), dict(built["describe"]))
    finally:
        worker.stop()
