"""Multi-process mode of a node or proxy (``--workers N``): what a worker is told, and the pure decisions.

With N > 1, ``python -m node`` / ``python -m mishards`` is a small parent (``coordinator/worker_pool.py``) that
starts N worker processes of the same command. Every worker listens on the shared gRPC port (``SO_REUSEPORT``:
the kernel spreads new connections over them) and, for a node, also on a port of its own, so that a proxy can
reach each worker deterministically. A worker learns its place from a :class:`WorkerSpec` given on its command
line (``--worker-spec JSON``, never written by hand).
"""

from __future__ import annotations

import hmac
import json
import math
import os
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from coordinator.limits import cpu_count

SPEC_FLAG = "--worker-spec"
# gRPC metadata of a call meant for the worker it reaches alone: a worker sending a call on to the others of its
# node (``node/worker_broadcast.py``) marks it so that they serve it without passing it on again.
LOCAL_HEADER = "mishards-worker-local"
# gRPC metadata of a call a worker sends on to another worker of its node: the node's worker secret, a random
# value the parent keeps in its private folder (``secret`` in ``run_dir``, mode 0600). The sending worker
# authorized the caller already; the receiving one trusts the call as a cluster peer's when it carries no token.
SECRET_HEADER = "mishards-worker-secret"
SECRET_FILE = "secret"
CGROUP_V2_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
CGROUP_V1_QUOTA = Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
CGROUP_V1_PERIOD = Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us")
WILDCARD_HOSTS = ("", "0.0.0.0", "::", "[::]")


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """One worker's place: its index (0 is the primary), the worker count, the shared port, its own port,
    the address of the primary's own port (reachable from this machine), every worker's advertised address
    (index order) and the parent's private folder (mode 0700, on this machine), where each worker also listens
    on a Unix socket of its own for the calls the others send on to it (no TLS needed there)."""

    index: int
    count: int
    shared_port: int
    own_port: int
    primary: str
    addresses: tuple[str, ...]
    run_dir: str = ""

    @property
    def is_primary(self) -> bool:
        return self.index == 0

    def secret_path(self) -> str:
        """Where the node's worker secret is kept ("" without a private folder)."""
        return f"{self.run_dir}/{SECRET_FILE}" if self.run_dir else ""

    def socket(self, index: int) -> str:
        """The gRPC target of worker ``index``'s private Unix socket ("" without a private folder)."""
        return f"unix:{self.run_dir}/worker-{index}.sock" if self.run_dir else ""

    def siblings(self) -> tuple[tuple[int, str], ...]:
        """Every other worker's index and where this worker reaches it: its private socket, else (no private
        folder) the primary's host (reachable from this machine) and that worker's own port."""
        host = self.primary.rpartition(":")[0]
        return tuple((i, self.socket(i) or f"{host}:{address.rpartition(':')[2]}")
                     for i, address in enumerate(self.addresses) if i != self.index)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> WorkerSpec:
        raw = json.loads(text)
        return cls(int(raw["index"]), int(raw["count"]), int(raw["shared_port"]), int(raw["own_port"]),
                   str(raw["primary"]), tuple(str(a) for a in raw["addresses"]), str(raw.get("run_dir", "")))


def take_spec(argv: Sequence[str]) -> tuple[WorkerSpec | None, list[str]]:
    """Split ``--worker-spec JSON`` (added by the parent) from the rest of a command line."""
    rest: list[str] = []
    spec: WorkerSpec | None = None
    items = list(argv)
    i = 0
    while i < len(items):
        if items[i] == SPEC_FLAG and i + 1 < len(items):
            spec = WorkerSpec.from_json(items[i + 1])
            i += 2
            continue
        if items[i].startswith(SPEC_FLAG + "="):
            spec = WorkerSpec.from_json(items[i].partition("=")[2])
        else:
            rest.append(items[i])
        i += 1
    return spec, rest


def parse_cpu_max(text: str) -> float | None:
    """CPUs a cgroup v2 ``cpu.max`` allows (``"max 100000"``: no limit -> None; ``"150000 100000"`` -> 1.5)."""
    parts = text.split()
    if len(parts) != 2 or parts[0] == "max":
        return None
    try:
        quota, period = int(parts[0]), int(parts[1])
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def parse_cfs(quota_text: str, period_text: str) -> float | None:
    """CPUs a cgroup v1 quota allows (quota -1: no limit -> None)."""
    try:
        quota, period = int(quota_text.strip()), int(period_text.strip())
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def worker_count(setting: int, cpus: int, quota: float | None) -> int:
    """Workers to run: the setting when positive; 0 = the CPUs this process may use, bounded by a cgroup
    quota (rounded up: a quota of 1.5 CPUs keeps two workers busy part of the time), at least 1."""
    if setting > 0:
        return setting
    usable = cpus if quota is None else min(cpus, math.ceil(quota))
    return max(1, usable)


def cgroup_cpu_quota() -> float | None:
    """The CPU quota of this process's cgroup (v2, else v1), None when unlimited or unknown."""
    try:
        return parse_cpu_max(CGROUP_V2_CPU_MAX.read_text())
    except OSError:
        pass
    try:
        return parse_cfs(CGROUP_V1_QUOTA.read_text(), CGROUP_V1_PERIOD.read_text())
    except OSError:
        return None


def usable_workers(setting: int) -> int:
    """:func:`worker_count` for this process (affinity and cgroup quota read here)."""
    return worker_count(setting, cpu_count(), cgroup_cpu_quota() if setting <= 0 else None)


def join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


def local_host(host: str) -> str:
    """Where a process on this machine reaches a server listening on ``host`` (a wildcard: loopback)."""
    if host in WILDCARD_HOSTS:
        return "::1" if host in ("::", "[::]") else "127.0.0.1"
    return host


def advertised_host(host: str, advertise: str) -> str:
    """The host others use to reach this process: the advertised address's host, else the listening host
    (a wildcard: loopback)."""
    if advertise:
        found = advertise.rpartition(":")[0].strip("[]")
        if found:
            return found
    return local_host(host)


def worker_addresses(host: str, advertise: str, own_ports: Sequence[int]) -> tuple[str, ...]:
    """Every worker's advertised address: the advertised host and that worker's own port."""
    where = advertised_host(host, advertise)
    return tuple(join_host_port(where, port) for port in own_ports)


def own_ports(first: int, count: int, taken: Iterable[int] = ()) -> list[int]:
    """The workers' own ports (setting ``worker_ports``): ``first`` .. ``first + count - 1``, or 0 for each (a free
    port picked at start) when ``first`` is 0. A fixed range lets a firewall or NetworkPolicy open just those
    ports. Refused: a range past 65535, or one holding a port in ``taken`` (the shared gRPC, REST, metrics or health
    port: bound with ``SO_REUSEPORT``, a worker's own socket would take that port's connections)."""
    if first == 0:
        return [0] * count
    last = first + count - 1
    if first < 1 or last > 65535:
        raise ValueError(f"worker_ports {first}: {count} worker ports from {first} pass 65535")
    clash = sorted({port for port in taken if first <= port <= last})
    if clash:
        raise ValueError(f"worker_ports {first}..{last} holds port {clash[0]}, which this process serves otherwise")
    return list(range(first, last + 1))


def specs(host: str, advertise: str, shared_port: int, own_ports: Sequence[int], run_dir: str = "") -> list[WorkerSpec]:
    """The spec of each of ``len(own_ports)`` workers."""
    addresses = worker_addresses(host, advertise, own_ports)
    primary = join_host_port(local_host(host), own_ports[0])
    return [WorkerSpec(i, len(own_ports), shared_port, port, primary, addresses, run_dir)
            for i, port in enumerate(own_ports)]


def child_argv(argv: Sequence[str], spec: WorkerSpec, metrics: bool, http_port: int) -> list[str]:
    """A worker's command line: the parent's, then what the parent decided (argparse keeps the last value):
    one process, the shared port, metrics on a free port of its own (the parent aggregates them), the REST
    port given, and the spec. ``--ready-file`` is added by the supervisor."""
    return [*argv, "--workers", "1", "--port", str(spec.shared_port), "--metrics-port", "-1" if metrics else "0",
            "--http-port", str(http_port), SPEC_FLAG, spec.to_json()]



def write_secret(run_dir: Path) -> None:
    """A new worker secret in the parent's private folder, readable by its owner alone."""
    fd = os.open(run_dir / SECRET_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32))


def read_secret(spec: WorkerSpec | None) -> str:
    """The node's worker secret ("" for a single process, or when it cannot be read)."""
    path = spec.secret_path() if spec is not None else ""
    if not path:
        return ""
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def carries_secret(metadata: Sequence[Sequence[object]] | None, secret: str) -> bool:
    """Whether a call's metadata carries the node's worker secret (compared in constant time)."""
    if not secret:
        return False
    return any(m[0] == SECRET_HEADER and hmac.compare_digest(str(m[1]).encode(), secret.encode())
               for m in metadata or ())
