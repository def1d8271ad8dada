"""The Grafana dashboards of a Mishards cluster, built with grafana-foundation-sdk (a development dependency):
``python -m deploy.grafana.dashboards [--check]`` writes (or checks) ``helm/mishards/dashboards/*.json``, which
the chart ships as ConfigMaps (``monitoring.dashboards.enabled``) and compose's Grafana provisions.

Every query names metrics the processes export (``tests/test_alerts_e2e.py`` checks them against real scrapes)
and aggregates over the ``worker`` label a multi-process node or proxy adds.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef, GridPos

from deploy.generated import ROOT, write_or_check

OUT = ROOT / "helm" / "mishards" / "dashboards"  # inside the chart (its ConfigMaps); compose mounts it too
COMMAND = "python -m deploy.grafana.dashboards"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
RATE = "[$__rate_interval]"
SEARCHES = 'method=~"Search|SearchByID|HybridSearch"'
WIDTH = 12
HEIGHT = 8


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str


@dataclass(frozen=True)
class PanelSpec:
    title: str
    unit: str
    queries: tuple[Query, ...]
    description: str = ""
    kind: str = "timeseries"  # or "stat"


def q(expr: str, legend: str) -> Query:
    return Query(expr, legend)


def quantiles(metric: str, selector: str = "", by: str = "", qs: Sequence[float] = (0.5, 0.9, 0.99)) -> tuple[
        Query, ...]:
    """Latency quantiles of a histogram, one series per quantile (and per ``by`` label)."""
    group = f"{by}, le" if by else "le"
    prefix = "{{" + by + "}} " if by else ""
    return tuple(q(f"histogram_quantile({x}, sum by ({group}) (rate({metric}_bucket{{{selector}}}{RATE})))",
                   f"{prefix}p{round(x * 100):d}") for x in qs)


OVERVIEW = (
    PanelSpec("Requests per second by method", "reqps", (
        q(f"sum by (method) (rate(mishards_proxy_request_seconds_count{RATE}))", "{{method}}"),),
        "Milvus RPCs answered by the proxies."),
    PanelSpec("Search latency", "s", quantiles("mishards_proxy_request_seconds", SEARCHES),
              "Search, SearchByID and HybridSearch at the proxies, quantiles over all proxies."),
    PanelSpec("Errors by method and code", "reqps", (
        q(f'sum by (method, code) (rate(mishards_proxy_request_seconds_count{{code!="0"}}{RATE}))',
          "{{method}} {{code}}"),), "Replies with a Milvus error code (grpc_error: a gRPC status)."),
    PanelSpec("Requests in flight", "short", (
        q("sum by (instance) (mishards_proxy_inflight_requests)", "proxy {{instance}}"),
        q("sum by (instance) (mishards_node_inflight_requests)", "node {{instance}}"))),
    PanelSpec("Members by role and state", "short", (
        q("max by (role, state) (mishards_proxy_members)", "{{role}} {{state}}"),),
        "Cluster members as the proxies see them (max over proxies)."),
    PanelSpec("Writer", "short", (
        q("max by (instance) (mishards_node_writable)", "writable {{instance}}"),
        q("min(mishards_proxy_writer_known)", "a writer is known (every proxy)")),
        "1 on the node holding the writer epoch."),
    PanelSpec("Segment replicas", "short", (
        q("max by (collection) (mishards_proxy_segments_under_replicated)", "under-replicated {{collection}}"),
        q("max by (collection) (mishards_proxy_segments_unavailable)", "no live replica {{collection}}"),
        q("max(mishards_proxy_replication_factor)", "replication factor"),
        q("min(mishards_proxy_live_readers)", "live read nodes")),
        "Searchable segments short of live replicas, per collection."),
    PanelSpec("Read nodes warming", "s", (
        q("max by (instance) (mishards_node_warming_seconds)", "{{instance}}"),),
        "Seconds a read node has been loading its share (0 once ready)."),
)

SEARCH = (
    PanelSpec("Fan-out width", "short", quantiles("mishards_proxy_fanout_nodes", qs=(0.5, 0.99)),
              "Read nodes one search is sent to."),
    PanelSpec("Sub-request latency p99 by node", "s",
              quantiles("mishards_proxy_subrequest_seconds", "", "node", (0.99,)),
              "Calls the proxies make to each read node for a search."),
    PanelSpec("Failovers, suspicions and timeouts by node", "ops", (
        q(f"sum by (node) (rate(mishards_proxy_failovers_total{RATE}))", "failover {{node}}"),
        q(f"sum by (node) (rate(mishards_proxy_node_suspicions_total{RATE}))", "suspected {{node}}"),
        q(f"sum by (node) (rate(mishards_proxy_subrequest_timeouts_total{RATE}))", "timeout {{node}}"))),
    PanelSpec("Hedges by slow node", "ops", (
        q(f"sum by (node) (rate(mishards_proxy_hedges_sent_total{RATE}))", "sent {{node}}"),
        q(f"sum by (node) (rate(mishards_proxy_hedges_won_total{RATE}))", "won {{node}}"))),
    PanelSpec("Merge time", "s", quantiles("mishards_proxy_merge_seconds", qs=(0.5, 0.99)),
              "Merging the nodes' partial top-k of one search."),
    PanelSpec("Node search latency p99", "s",
              quantiles("mishards_node_request_seconds", 'method=~"SearchInFiles|Search|SearchByID"', "instance",
                        (0.99,)), "Searches as each node serves them."),
    PanelSpec("Searches running and queued on nodes", "short", (
        q("sum by (instance) (mishards_node_searches_running)", "running {{instance}}"),
        q("sum by (instance) (mishards_node_admission_queue_depth)", "queued {{instance}}"))),
    PanelSpec("Query-of-death refusals", "ops", (
        q(f"sum(rate(mishards_proxy_query_of_death_refusals_total{RATE}))", "refused"),)),
)

WRITES = (
    PanelSpec("Insert requests per second", "reqps", (
        q(f'sum by (method) (rate(mishards_proxy_request_seconds_count{{method=~"Insert|InsertEntity"}}{RATE}))',
          "{{method}}"),)),
    PanelSpec("WAL fsync latency", "s", quantiles("mishards_node_wal_fsync_seconds", "", "instance", (0.5, 0.99)),
              "One fsync per group commit; every acknowledged write waits for one."),
    PanelSpec("WAL fsyncs and flushes per second", "ops", (
        q(f"sum by (instance) (rate(mishards_node_wal_fsync_seconds_count{RATE}))", "fsyncs {{instance}}"),
        q(f"sum by (instance) (rate(mishards_node_flush_seconds_count{RATE}))", "flushes {{instance}}"))),
    PanelSpec("Flush duration", "s", quantiles("mishards_node_flush_seconds", qs=(0.5, 0.99))),
    PanelSpec("Buffered rows", "short", (
        q("max by (instance) (mishards_node_buffered_rows)", "{{instance}}"),),
        "Inserted rows not yet flushed (searchable after the next flush)."),
    PanelSpec("Buffered bytes", "bytes", (q("max by (instance) (mishards_node_buffered_bytes)", "{{instance}}"),)),
    PanelSpec("Index builds", "ops", (
        q(f"sum by (result) (rate(mishards_node_index_builds_total{RATE}))", "{{result}}"),)),
    PanelSpec("Index build duration", "s", quantiles("mishards_node_index_build_seconds", qs=(0.5, 0.99))),
    PanelSpec("Write retries and give-ups", "ops", (
        q(f"sum by (method, ending) (rate(mishards_proxy_write_retries_total{RATE}))", "retry {{method}} {{ending}}"),
        q(f"sum by (method, outcome) (rate(mishards_proxy_writes_given_up_total{RATE}))",
          "given up {{method}} {{outcome}}"))),
)

STORAGE = (
    PanelSpec("Segment cache fill", "percentunit", (
        q("sum by (instance) (mishards_node_cache_bytes) / sum by (instance) (mishards_node_cache_capacity_bytes > 0)",
          "{{instance}}"),)),
    PanelSpec("Segment cache hit ratio", "percentunit", (
        q(f"sum by (instance) (rate(mishards_node_cache_hits_total{RATE})) / (sum by (instance) "
          f"(rate(mishards_node_cache_hits_total{RATE})) + sum by (instance) (rate(mishards_node_cache_misses_total"
          f"{RATE})))", "{{instance}}"),)),
    PanelSpec("Cache evictions per second", "ops", (
        q(f"sum by (instance) (rate(mishards_node_cache_evictions_total{RATE}))", "{{instance}}"),)),
    PanelSpec("Segments in cache", "short", (q("sum by (instance) (mishards_node_cache_segments)", "{{instance}}"),)),
    PanelSpec("Storage free", "percentunit", (
        q("min by (instance) (mishards_node_storage_free_bytes / mishards_node_storage_size_bytes)",
          "{{instance}}"),), "Free share of the file system holding each node's storage path."),
    PanelSpec("Segments by state and rows", "short", (
        q("max by (state) (mishards_node_segments)", "{{state}}"),
        q("max(mishards_node_rows)", "rows"))),
    PanelSpec("Catalog refresh lag", "s", (
        q("max by (instance) (mishards_node_catalog_refresh_lag_seconds)", "node {{instance}}"),
        q("max by (instance) (mishards_proxy_catalog_refresh_lag_seconds)", "proxy {{instance}}"))),
    PanelSpec("Request memory in use", "bytes", (
        q("sum by (instance) (mishards_node_request_memory_in_use_bytes)", "in use {{instance}}"),
        q("sum by (instance) (mishards_node_request_memory_budget_bytes)", "budget {{instance}}"))),
)

DASHBOARDS: dict[str, tuple[str, tuple[PanelSpec, ...]]] = {
    "mishards-overview": ("Mishards / Cluster overview", OVERVIEW),
    "mishards-search": ("Mishards / Search fan-out", SEARCH),
    "mishards-writes": ("Mishards / Writes", WRITES),
    "mishards-storage": ("Mishards / Caches and storage", STORAGE),
}


def panel(spec: PanelSpec, index: int) -> Any:
    builder = stat.Panel() if spec.kind == "stat" else timeseries.Panel()
    builder = (builder.id(index + 1).title(spec.title).unit(spec.unit).datasource(DATASOURCE)
               .grid_pos(GridPos(h=HEIGHT, w=WIDTH, x=(index % 2) * WIDTH, y=(index // 2) * HEIGHT)))
    if spec.description:
        builder = builder.description(spec.description)
    for n, query in enumerate(spec.queries):
        builder = builder.with_target(prometheus.Dataquery().expr(query.expr).legend_format(query.legend)
                                      .ref_id(chr(ord("A") + n)).datasource(DATASOURCE))
    return builder


def build(uid: str) -> dict[str, Any]:
    title, panels = DASHBOARDS[uid]
    board = (dashboard.Dashboard(title).uid(uid).tags(["mishards"]).refresh("30s").time("now-1h", "now")
             .with_variable(dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus")))
    for i, spec in enumerate(panels):
        board = board.with_panel(panel(spec, i))
    encoded: dict[str, Any] = json.loads(JSONEncoder(sort_keys=True).encode(board.build()))
    return encoded


def rendered() -> dict[Path, str]:
    return {OUT / f"{uid}.json": json.dumps(build(uid), indent=2, sort_keys=True) + "\n" for uid in DASHBOARDS}


def dashboard_queries() -> list[str]:
    """Every query expression of every dashboard."""
    return [query.expr for _, panels in DASHBOARDS.values() for spec in panels for query in spec.queries]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=COMMAND, description="Write the Grafana dashboards' JSON.")
    p.add_argument("--check", action="store_true", help="fail if a written file is not up to date")
    return write_or_check(rendered(), p.parse_args(argv).check, COMMAND)


if __name__ == "__main__":
    sys.exit(main())
