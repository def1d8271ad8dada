"""The Milvus Lite side of ``benchmarks.lite_bench``, run by the interpreter of its own virtual environment.

    benchmarks/.venv-lite/bin/python benchmarks/lite_worker.py

It reads one JSON request per line on stdin and answers each with one JSON line on stdout
(``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}``); ``close`` ends it. Only the standard
library, numpy and pymilvus 2.x (with milvus-lite) are used: nothing of the project is imported here.
The embedded Milvus server is a child process that inherits this process's environment (so its
``OMP_NUM_THREADS``) and its stdout, which is therefore moved to stderr before the server starts.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TextIO

import numpy as np

PROBE_POLL_CAP_S = 60.0
LOOP_CAP_S = 300.0


def child_processes() -> list[dict[str, Any]]:
    """Processes whose parent is this one (the embedded server): pid, name, threads, resident MB."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(os.getpid()):
            found.append({"pid": int(status.parent.name), "name": fields.get("Name", "").strip(),
                          "threads": int(fields.get("Threads", "0").strip() or 0),
                          "rss_mb": int(fields.get("VmRSS", "0 kB").split()[0]) / 1024})
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds process ``pid`` has used so far (all its threads); 0.0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime: fields 14, 15


def servers_cpu() -> float:
    return sum(cpu_seconds(p["pid"]) for p in child_processes())


def protobuf_backend() -> str:
    try:
        api = importlib.import_module("google.protobuf.internal.api_implementation")
        return f"protobuf {importlib.metadata.version('protobuf')} ({api.Type()})"
    except (ImportError, AttributeError, importlib.metadata.PackageNotFoundError):
        return "protobuf ?"


def first_id(result: Any) -> int:
    hits = result[0] if result else []
    return int(hits[0]["id"]) if hits else -1


def timed_searches(run: Callable[[list[list[float]]], list[list[int]]], req: dict[str, Any]) -> dict[str, Any]:
    """Warm-up, then nq=1 one call at a time (latencies), then nq=100 calls (QPS and the ids found).

    ``run`` searches a list of vectors and returns each one's ids; ``req`` names the queries file, their
    count ``nq``, ``k``, the nq=100 ``spans`` and the warm-up counts.
    """
    queries = np.load(req["queries"])[: int(req["nq"])]
    k = int(req["k"])
    singles = [[q] for q in queries.tolist()]
    batched = [queries[a:b].tolist() for a, b in req["spans"]]
    for q in singles[: int(req["warmup_single"])]:
        run(q)
    for b in batched[: int(req["warmup_batched"])]:
        run(b)
    lat = []
    started = time.perf_counter()
    for q in singles:
        t0 = time.perf_counter()
        run(q)
        t1 = time.perf_counter()
        lat.append(t1 - t0)
        if t1 - started > LOOP_CAP_S:
            break
    serial_qps = len(lat) / (time.perf_counter() - started)
    ids: list[list[int]] = []
    started = time.perf_counter()
    for b in batched:
        ids += [found[:k] + [-1] * (k - len(found)) for found in run(b)]
    batched_qps = len(ids) / (time.perf_counter() - started)
    return {"lat_s": lat, "serial_qps": serial_qps, "batched_qps": batched_qps, "ids": ids}


class Dispatcher:
    """Answers a request by calling the method its ``op`` names, one of :attr:`OPS`."""

    OPS: tuple[str, ...] = ()

    def handle(self, req: dict[str, Any]) -> dict[str, Any]:
        op = req["op"]
        if op not in self.OPS:
            raise ValueError(f"unknown op {op!r}")
        method: Callable[[dict[str, Any]], dict[str, Any]] = getattr(self, op)
        return method(req)


class Worker(Dispatcher):
    OPS = ("open", "load", "build", "search", "levels", "close")

    def __init__(self) -> None:
        self.client: Any = None
        self.pymilvus: Any = None

    def open(self, req: dict[str, Any]) -> dict[str, Any]:
        self.pymilvus = importlib.import_module("pymilvus")
        started = time.perf_counter()
        self.client = self.pymilvus.MilvusClient(req["db"])
        return {"open_s": time.perf_counter() - started, "pymilvus": self.pymilvus.__version__,
                "milvus_lite": importlib.metadata.version("milvus-lite"), "protobuf": protobuf_backend(),
                "numpy": np.__version__, "python": sys.version.split()[0], "server": child_processes()}

    def load(self, req: dict[str, Any]) -> dict[str, Any]:
        """Create the collection with its index (Milvus 2.x loads it then), insert, time visibility, flush."""
        pm, c, name = self.pymilvus, self.client, req["collection"]
        base = np.load(req["base"], mmap_mode="r")
        rows = int(req["rows"])
        schema = pm.MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field(req["id_field"], pm.DataType.INT64, is_primary=True)
        schema.add_field(req["vector_field"], pm.DataType.FLOAT_VECTOR, dim=int(base.shape[1]))
        index = c.prepare_index_params()
        index.add_index(**req["index"])
        try:
            c.create_collection(name, schema=schema, index_params=index, consistency_level=req["level"])
        except pm.MilvusException as exc:  # e.g. an index kind this build does not offer
            return {"refused": str(exc)}
        # The rows as a 2.x client holds them (one dict per row, plain lists), made before the clock starts.
        made = time.perf_counter()
        data = [[{req["id_field"]: i, req["vector_field"]: v} for i, v in zip(range(a, b), base[a:b].tolist(),
                                                                              strict=True)]
                for a, b in req["spans"]]
        prepare_s = time.perf_counter() - made
        calls = []
        client_cpu, server_cpu = time.process_time(), servers_cpu()
        started = time.perf_counter()
        for part in data:
            t0 = time.perf_counter()
            reply = c.insert(name, part)
            calls.append(time.perf_counter() - t0)
            if int(reply["insert_count"]) != len(part):
                raise RuntimeError(f"insert acknowledged {reply['insert_count']} of {len(part)} rows")
        acked = time.perf_counter()
        client_cpu, server_cpu = time.process_time() - client_cpu, servers_cpu() - server_cpu
        searchable = self.poll_levels(name, base[rows - 1].tolist(), rows - 1, req["levels"], req["search_params"],
                                      req["vector_field"], acked)
        flush_s = time.perf_counter()
        c.flush(name)
        flush_s = time.perf_counter() - flush_s
        counted = c.query(name, filter="", output_fields=["count(*)"], consistency_level="Strong")
        return {"insert_s": acked - started, "calls_s": calls, "prepare_s": prepare_s, "searchable_s": searchable,
                "flush_s": flush_s, "count": int(counted[0]["count(*)"]), "server": child_processes(),
                "client_cpu_s": client_cpu, "server_cpu_s": server_cpu}

    def poll_levels(self, name: str, probe: list[float], want: int, levels: list[str], params: dict[str, Any],
                    field: str, since: float) -> dict[str, float | None]:
        """Seconds from ``since`` until a search at each level finds the last row; the levels take turns."""
        seen: dict[str, float | None] = {lv: None for lv in levels}
        while any(v is None for v in seen.values()) and time.perf_counter() - since < PROBE_POLL_CAP_S:
            for lv in [lv for lv, v in seen.items() if v is None]:
                res = self.client.search(name, [probe], limit=1, search_params=params, anns_field=field,
                                         consistency_level=lv)
                if first_id(res) == want:
                    seen[lv] = time.perf_counter() - since
        return seen

    def build(self, req: dict[str, Any]) -> dict[str, Any]:
        """The index again on the flushed rows: release, drop, create (waiting until built), load."""
        c, name, field = self.client, req["collection"], req["vector_field"]
        c.release_collection(name)
        c.drop_index(name, field)
        index = c.prepare_index_params()
        index.add_index(**req["index"])
        t0 = time.perf_counter()
        c.create_index(name, index, sync=True)
        t1 = time.perf_counter()
        c.load_collection(name)
        t2 = time.perf_counter()
        return {"build_s": t1 - t0, "load_s": t2 - t1, "describe": {k: str(v) for k, v in
                                                                     c.describe_index(name, field).items()},
                "server": child_processes()}

    def search(self, req: dict[str, Any]) -> dict[str, Any]:
        c, name, level, params, field = self.client, req["collection"], req["level"], req["search_params"], \
            req["vector_field"]

        def run(vectors: list[list[float]]) -> list[list[int]]:
            found = c.search(name, vectors, limit=int(req["k"]), search_params=params, anns_field=field,
                             consistency_level=level)
            return [[int(h["id"]) for h in hits] for hits in found]

        return timed_searches(run, req)

    def levels(self, req: dict[str, Any]) -> dict[str, Any]:
        """nq=1 latency at each consistency level, the levels taking turns query by query."""
        c, name, field = self.client, req["collection"], req["vector_field"]
        queries = np.load(req["queries"])[: int(req["nq"])].tolist()
        lat: dict[str, list[float]] = {lv: [] for lv in req["levels"]}
        for q in queries:
            for lv in req["levels"]:
                t0 = time.perf_counter()
                c.search(name, [q], limit=int(req["k"]), search_params=req["search_params"], anns_field=field,
                         consistency_level=lv)
                lat[lv].append(time.perf_counter() - t0)
        return {"lat_s": lat}

    def close(self, req: dict[str, Any] | None = None) -> dict[str, Any]:
        if self.client is not None:
            self.client.close()
            self.client = None
        return {}


class Handler(Protocol):
    def handle(self, req: dict[str, Any]) -> dict[str, Any]: ...

    def close(self, req: dict[str, Any] | None = None) -> dict[str, Any]: ...


def serve(requests: TextIO, replies: TextIO, worker: Handler) -> None:
    """Answer JSON requests line by line until ``close`` (or the end of input)."""
    for line in requests:
        if not line.strip():
            continue
        req = json.loads(line)
        try:
            reply = {"ok": True, **worker.handle(req)}
        except Exception as exc:  # every failure goes back to the driver as a message
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        replies.write(json.dumps(reply) + "\n")
        replies.flush()
        if req.get("op") == "close":
            return
    worker.close()


def serve_stdio(worker: Handler) -> int:
    """Serve on stdin / stdout; anything else written to stdout (a child's, a library's) goes to stderr."""
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    serve(sys.stdin, replies, worker)
    return 0


def main() -> int:
    return serve_stdio(Worker())


if __name__ == "__main__":
    sys.exit(main())
