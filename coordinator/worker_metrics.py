"""One ``/metrics`` endpoint for every worker of a multi-process node or proxy.

Each worker serves its own registry on a free port; the parent serves ``--metrics-port`` and, on each scrape,
reads every worker's page, adds a ``worker`` label (the worker's index) to each sample and merges the families
(``merge_families`` is pure). The parent's own figures are added: ``mishards_worker_up`` and
``mishards_worker_restarts_total``, per worker.
"""

from __future__ import annotations

import logging
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

SCRAPE_TIMEOUT = 2.0
WORKER_LABEL = "worker"


@dataclass(frozen=True, slots=True)
class WorkerState:
    """What the parent knows of one worker when scraped."""

    index: int
    metrics_port: int  # 0: not serving (starting, restarting)
    restarts: int


def merge_families(pages: Iterable[tuple[str, Iterable[Metric]]]) -> list[Metric]:
    """The families of several workers' pages as one list: same-named families merged, each sample labelled
    with its worker (``pages`` gives the worker's label value and its parsed families)."""
    merged: dict[str, Metric] = {}
    for worker, families in pages:
        for family in families:
            into = merged.get(family.name)
            if into is None:
                into = Metric(family.name, family.documentation, family.type, family.unit)
                merged[family.name] = into
            for sample in family.samples:
                into.samples.append(sample._replace(labels={**sample.labels, WORKER_LABEL: worker}))
    return list(merged.values())


def scrape_page(host: str, port: int) -> list[Metric]:
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=SCRAPE_TIMEOUT) as resp:
        return list(text_string_to_metric_families(resp.read().decode()))


class WorkersCollector(Collector):
    """Every worker's samples, read when scraped (a worker that does not answer is left out of that scrape)."""

    def __init__(self, host: str, workers: Callable[[], Sequence[WorkerState]]) -> None:
        self.host = host
        self.workers = workers

    def collect(self) -> Iterator[Any]:
        states = list(self.workers())
        pages: list[tuple[str, list[Metric]]] = []
        up = GaugeMetricFamily("mishards_worker_up", "1 when the worker serves its metrics", labels=[WORKER_LABEL])
        restarts = CounterMetricFamily("mishards_worker_restarts", "Times the worker was restarted",
                                       labels=[WORKER_LABEL])
        for state in states:
            label = str(state.index)
            served = False
            if state.metrics_port:
                try:
                    pages.append((label, scrape_page(self.host, state.metrics_port)))
                    served = True
                except (OSError, ValueError) as exc:
                    log.debug("worker %d metrics unavailable: %s", state.index, exc)
            up.add_metric([label], 1 if served else 0)
            restarts.add_metric([label], state.restarts)
        yield from merge_families(pages)
        yield up
        yield restarts


def workers_registry(host: str, workers: Callable[[], Sequence[WorkerState]]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(WorkersCollector(host, workers))
    return registry
