"""Private, throw-away Prometheus and Alertmanager servers for tests.

Debian's ``prometheus`` (2.42) and ``prometheus-alertmanager`` (0.25), each in a temporary directory on a free
port of 127.0.0.1, stopped by PID. Prometheus discovers its targets from a file (``file_sd``) that the test
rewrites as processes come and go; Alertmanager keeps its alerts in memory and answers ``/api/v2/alerts``.

Usage::

    with AlertmanagerServer() as am, PrometheusServer(rules, alertmanager=am.address) as prom:
        prom.set_targets([Target("127.0.0.1:9100", {"component": "reader", "instance": "reader-1"})])
        am.alerts()  # the active alerts Alertmanager received
"""

from __future__ import annotations

import atexit
import json
import logging
import re
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support.waiting import free_port, log_tail, poll_for, require_binary, terminate_process

log = logging.getLogger(__name__)

_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get_json(url: str, timeout: float = 5.0) -> Any:
    with _DIRECT.open(url, timeout=timeout) as resp:
        return json.loads(resp.read())


def _answers(url: str) -> bool:
    try:
        with _DIRECT.open(url, timeout=1.0) as resp:
            return bool(resp.status == 200)
    except (OSError, urllib.error.URLError):
        return False


@dataclass(frozen=True)
class Target:
    address: str  # host:port serving /metrics
    labels: Mapping[str, str] = field(default_factory=dict)


class _Server:
    """One child process in a temporary directory, ready when ``ready_path`` answers 200."""

    binary = ""
    package = ""
    ready_path = "/-/ready"

    def __init__(self, startup_timeout: float = 30.0) -> None:
        self.startup_timeout = startup_timeout
        self.dir: Path | None = None
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def command(self, binary: str, workdir: Path) -> list[str]:
        raise NotImplementedError

    def start(self) -> Self:
        binary = require_binary(self.binary, self.package)
        self.dir = Path(tempfile.mkdtemp(prefix=f"mishards-{self.binary}-"))
        atexit.register(self.stop)
        self.port = free_port()
        out = self.dir / "server.log"
        with out.open("wb") as sink:
            self.proc = subprocess.Popen(self.command(binary, self.dir), stdin=subprocess.DEVNULL, stdout=sink,
                                         stderr=subprocess.STDOUT, cwd=self.dir)
        proc = self.proc

        def ready() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"{self.binary} exited with {proc.returncode}:\n{log_tail(out)}")
            return _answers(self.url + self.ready_path)

        try:
            poll_for(ready, self.startup_timeout, interval=0.05, what=f"{self.binary} on {self.address}")
        except BaseException:
            self.stop()
            raise
        log.info("%s ready on %s (pid %d)", self.binary, self.address, proc.pid)
        return self

    def log_tail(self) -> str:
        return log_tail(self.dir / "server.log") if self.dir is not None else ""

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            terminate_process(proc, 20.0, name=self.binary)
        folder, self.dir = self.dir, None
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        atexit.unregister(self.stop)

    def __enter__(self) -> Self:
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


class AlertmanagerServer(_Server):
    """Alertmanager with one receiver that sends nothing: the alerts it holds are read through its API."""

    binary = "prometheus-alertmanager"
    package = "prometheus-alertmanager"

    def command(self, binary: str, workdir: Path) -> list[str]:
        config = {"route": {"receiver": "nowhere", "group_wait": "1s", "group_interval": "1s"},
                  "receivers": [{"name": "nowhere"}]}
        (workdir / "alertmanager.yml").write_text(yaml.safe_dump(config))
        return [binary, f"--config.file={workdir / 'alertmanager.yml'}", f"--storage.path={workdir / 'data'}",
                f"--web.listen-address={self.address}", "--cluster.listen-address=", "--log.level=warn"]

    def alerts(self) -> list[dict[str, Any]]:
        """The alerts Alertmanager holds that are active (received, not resolved)."""
        found = get_json(f"{self.url}/api/v2/alerts?active=true&silenced=false&inhibited=false")
        return [a for a in found if a.get("status", {}).get("state") == "active"]


class PrometheusServer(_Server):
    """Prometheus scraping the targets of :meth:`set_targets` and evaluating ``rules`` (a rules file's content),
    sending alerts to ``alertmanager`` (host:port) when given."""

    binary = "prometheus"
    package = "prometheus"

    def __init__(self, rules: Mapping[str, Any] | None = None, alertmanager: str = "", scrape_interval: str = "1s",
                 evaluation_interval: str = "1s", startup_timeout: float = 30.0) -> None:
        super().__init__(startup_timeout)
        self.rules = rules
        self.alertmanager = alertmanager
        self.scrape_interval = scrape_interval
        self.evaluation_interval = evaluation_interval

    def command(self, binary: str, workdir: Path) -> list[str]:
        (workdir / "targets.json").write_text("[]")
        config: dict[str, Any] = {
            "global": {"scrape_interval": self.scrape_interval, "scrape_timeout": self.scrape_interval,
                       "evaluation_interval": self.evaluation_interval},
            "scrape_configs": [{"job_name": "mishards",
                                "file_sd_configs": [{"files": [str(workdir / "targets.json")],
                                                     "refresh_interval": "1s"}]}],
        }
        if self.rules is not None:
            (workdir / "rules.yml").write_text(yaml.safe_dump(dict(self.rules), sort_keys=False))
            config["rule_files"] = [str(workdir / "rules.yml")]
        if self.alertmanager:
            config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [self.alertmanager]}]}]}
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
        return [binary, f"--config.file={workdir / 'prometheus.yml'}", f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address={self.address}", "--log.level=warn"]

    def set_targets(self, targets: Sequence[Target]) -> None:
        """Replace the scraped targets (written atomically; Prometheus watches the file)."""
        assert self.dir is not None, "Prometheus is not running"
        groups = [{"targets": [t.address], "labels": dict(t.labels)} for t in targets]
        tmp = self.dir / "targets.json.tmp"
        tmp.write_text(json.dumps(groups))
        tmp.replace(self.dir / "targets.json")

    def targets(self) -> list[dict[str, Any]]:
        """The active targets with their labels and health ("up", "down", "unknown")."""
        return list(get_json(f"{self.url}/api/v1/targets?state=active")["data"]["activeTargets"])

    def rule_states(self) -> list[dict[str, Any]]:
        """The rule groups with each rule's state, health, last error and last evaluation time."""
        return list(get_json(f"{self.url}/api/v1/rules")["data"]["groups"])

    def now(self) -> float:
        """Prometheus's clock (seconds since the epoch)."""
        return float(get_json(f"{self.url}/api/v1/query?query=time()")["data"]["result"][0])

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's result vector."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        return list(get_json(url)["data"]["result"])


SAMPLE_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "summary": ("_count", "_sum")}
_SELECTOR = re.compile(r"\{[^{}]*\}")
_NAME = re.compile(r"\b(mishards_[a-z0-9_]+|up)\b")


def served_names(ports: Iterable[int], host: str = "127.0.0.1") -> set[str]:
    """Every sample name the processes on ``ports`` serve at /metrics, including those of families declared
    but without samples yet (a labelled counter nothing has counted): ``x_total`` of counter ``x``, ``x_bucket``,
    ``x_count`` and ``x_sum`` of histogram ``x``."""
    names: set[str] = set()
    for port in ports:
        with _DIRECT.open(f"http://{host}:{port}/metrics", timeout=10) as resp:
            text = resp.read().decode()
        for family in text_string_to_metric_families(text):
            names.add(family.name)
            names.update(family.name + suffix for suffix in SAMPLE_SUFFIXES.get(family.type, ()))
            names.update(sample.name for sample in family.samples)
    return names


def queried_names(exprs: Iterable[str]) -> set[str]:
    """The metric names PromQL expressions select (``mishards_*`` and ``up``; label matchers left out)."""
    return {name for expr in exprs for name in _NAME.findall(_SELECTOR.sub("", expr))}


def instant(rfc3339: str) -> float:
    """Seconds since the epoch of a timestamp as Prometheus's API writes it (nanosecond fractions, ``Z``)."""
    head, _, fraction = rfc3339.rstrip("Z").partition(".")
    whole = datetime.fromisoformat(head + "+00:00").timestamp()
    return whole + (float("0." + fraction) if fraction else 0.0)
