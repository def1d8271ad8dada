"""The alert rules of a Mishards cluster: one definition, rendered as a Prometheus rules file
(``deploy/alerts/mishards.rules.yml``, loaded by compose's Prometheus) and as the chart's ``PrometheusRule``.

Expressions aggregate with ``max by`` / ``sum by`` over the labels that locate a process (``LOCATION``), so a
process that serves several workers' samples under one target (a ``worker`` label) still counts once.
Thresholds and ``for`` durations are named parameters (``THRESHOLDS``): the rules file gets the defaults, the
chart reads them from ``monitoring.thresholds`` in its values.
"""

from __future__ import annotations

from dataclasses import dataclass
from string import Template

# The labels that locate a node or proxy, in compose (job, component, instance) and under the Prometheus
# Operator (namespace, pod too). Grouping by a label a series lacks is harmless.
LOCATION = "namespace, job, component, instance, pod"
GROUP = "mishards"

# Milvus status codes that say the server failed (not the request): UNEXPECTED_ERROR, CONNECT_FAILED,
# PERMISSION_DENIED (a write reached a node that is not the writer), FILE_NOT_FOUND, META_FAILED, CACHE_FAILED,
# the folder / file errors, BUILD_INDEX_ERROR, OUT_OF_MEMORY, and calls that ended with a gRPC status.
SERVER_ERROR_CODES = "1|2|3|1[4-9]|2[014]|grpc_error"
SEARCH_METHODS = "Search|SearchByID|SearchInFiles|HybridSearch"
WRITE_METHODS = ("Insert|DeleteByID|Flush|Compact|CreateIndex|DropIndex|CreateCollection|DropCollection|"
                 "CreatePartition|DropPartition|CreateHybridCollection|InsertEntity|DeleteEntityByID")

# name -> default; the chart's values.yaml carries the same names under monitoring.thresholds.
THRESHOLDS: dict[str, str] = {
    "nodeDownFor": "1m",
    "proxyDownFor": "1m",
    "noWriterFor": "30s",
    "standbyMissingFor": "10m",
    "underReplicatedFor": "5m",
    "unavailableFor": "1m",
    "warmingSeconds": "600",
    "warmingFor": "1m",
    "searchErrorRatio": "0.05",
    "writeErrorRatio": "0.05",
    "errorRatioFor": "5m",
    "searchP99Seconds": "1",
    "searchLatencyFor": "10m",
    "catalogLagSeconds": "30",
    "catalogLagFor": "2m",
    "walFsyncP99Seconds": "0.1",
    "walFsyncFor": "10m",
    "flushStallWindow": "10m",
    "flushStallFor": "5m",
    "cacheFullRatio": "0.95",
    "cacheFullFor": "30m",
    "cacheEvictionsPerSecond": "1",
    "cacheEvictionsFor": "15m",
    "storageFreeRatio": "0.1",
    "storageFreeFor": "5m",
}


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str  # $name: a THRESHOLDS entry; $L: LOCATION
    duration: str  # a THRESHOLDS entry naming the ``for``
    severity: str
    summary: str
    description: str  # Prometheus template text ({{ $labels.x }}, {{ $value }})
    chart_when: str = ""  # the chart renders the rule only when this value is true (e.g. ".Values.writer.standby")


WHERE = ("{{ $labels.component }} {{ $labels.instance }} (job {{ $labels.job }}"
         "{{ with $labels.pod }}, pod {{ . }}{{ end }})")

ALERTS: tuple[Alert, ...] = (
    Alert("MishardsNodeDown", 'max by ($L) (up{component=~"writer|reader"}) == 0', "nodeDownFor", "critical",
          "A Mishards node does not answer scrapes",
          f"Node {WHERE} has not answered a scrape of /metrics for $nodeDownFor: the process is down, hung or "
          "unreachable. Its segments are served by their other replicas; a writer's writes stop until a standby "
          "takes over."),
    Alert("MishardsProxyDown", 'max by ($L) (up{component="proxy"}) == 0', "proxyDownFor", "critical",
          "A Mishards proxy does not answer scrapes",
          f"{WHERE} has not answered a scrape of /metrics for $proxyDownFor; clients connected to it "
          "get no answers."),
    Alert("MishardsNoWriter",
          "max by (namespace) (mishards_node_writable) == 0 or max by ($L) (mishards_proxy_writer_known) == 0",
          "noWriterFor", "critical", "No Mishards node holds the writer role",
          "{{ with $labels.instance }}Proxy {{ . }} knows no writer{{ else }}No node of the cluster"
          "{{ with $labels.namespace }} in namespace {{ . }}{{ end }} holds the writer epoch{{ end }}: inserts, "
          "deletes, flushes and index builds fail while searches go on."),
    Alert("MishardsStandbyWriterMissing",
          '(max by ($L) (sum without (state) (mishards_proxy_members{role="rw"}))\n'
          " or max by ($L) (mishards_proxy_writer_known) * 0) < 2",
          "standbyMissingFor", "warning", "No standby writer",
          "Proxy {{ $labels.instance }} sees {{ $value }} rw member(s): there is no standby to take over "
          "if the writer fails.", chart_when=".Values.writer.standby"),
    Alert("MishardsSegmentsUnderReplicated",
          "max by ($L, collection) (mishards_proxy_segments_under_replicated) > 0", "underReplicatedFor",
          "warning", "Segments have fewer live replicas than the replication factor",
          "{{ $value }} segment(s) of collection {{ $labels.collection }} have fewer live read-node replicas "
          "than the replication factor, as proxy {{ $labels.instance }} sees them: a read node is down, "
          "unreachable or still warming."),
    Alert("MishardsSegmentsUnavailable",
          "max by ($L, collection) (mishards_proxy_segments_unavailable) > 0", "unavailableFor", "critical",
          "Segments have no live replica",
          "{{ $value }} segment(s) of collection {{ $labels.collection }} have no live read-node replica, as "
          "proxy {{ $labels.instance }} sees them: searches of the collection fail or wait for a node."),
    Alert("MishardsReaderWarmingTooLong", "max by ($L) (mishards_node_warming_seconds) > $warmingSeconds",
          "warmingFor", "warning", "A read node is still warming",
          f"Node {WHERE} has been loading its share of segments for {{{{ $value | humanizeDuration }}}} "
          "and gets no search traffic until it is ready."),
    Alert("MishardsSearchErrors",
          f'sum by ($L) (rate(mishards_proxy_request_seconds_count{{method=~"{SEARCH_METHODS}",'
          f'code=~"{SERVER_ERROR_CODES}"}}[5m]))\n'
          f'/ sum by ($L) (rate(mishards_proxy_request_seconds_count{{method=~"{SEARCH_METHODS}"}}[5m]))\n'
          "> $searchErrorRatio", "errorRatioFor", "warning", "Searches fail",
          "{{ $value | humanizePercentage }} of the searches through proxy {{ $labels.instance }} end with a "
          "server error (over 5 minutes)."),
    Alert("MishardsWriteErrors",
          f'sum by ($L) (rate(mishards_proxy_request_seconds_count{{method=~"{WRITE_METHODS}",'
          f'code=~"{SERVER_ERROR_CODES}"}}[5m]))\n'
          f'/ sum by ($L) (rate(mishards_proxy_request_seconds_count{{method=~"{WRITE_METHODS}"}}[5m]))\n'
          "> $writeErrorRatio", "errorRatioFor", "warning", "Writes fail",
          "{{ $value | humanizePercentage }} of the writes through proxy {{ $labels.instance }} end with a "
          "server error (over 5 minutes)."),
    Alert("MishardsSearchLatencyHigh",
          "histogram_quantile(0.99, sum by ($L, le) (rate(mishards_proxy_request_seconds_bucket"
          f'{{method=~"{SEARCH_METHODS}"}}[5m])))\n> $searchP99Seconds',
          "searchLatencyFor", "warning", "Search p99 latency is high",
          "The 99th percentile of search latency at proxy {{ $labels.instance }} is "
          "{{ $value | humanizeDuration }} (over 5 minutes)."),
    Alert("MishardsCatalogLag",
          "max by ($L) (mishards_node_catalog_refresh_lag_seconds) > $catalogLagSeconds "
          "or max by ($L) (mishards_proxy_catalog_refresh_lag_seconds) > $catalogLagSeconds",
          "catalogLagFor", "warning", "A process has not checked the catalog revision for a while",
          f"{WHERE} last checked the catalog revision {{{{ $value | humanizeDuration }}}} ago: it cannot "
          "read the catalog, and it routes or searches an old view of the segments."),
    Alert("MishardsWalFsyncSlow",
          "histogram_quantile(0.99, sum by ($L, le) (rate(mishards_node_wal_fsync_seconds_bucket[5m])))\n"
          "> $walFsyncP99Seconds", "walFsyncFor", "warning", "WAL fsyncs are slow",
          f"The 99th percentile of write-ahead log fsyncs on {WHERE} is {{{{ $value | humanizeDuration }}}}: "
          "every acknowledged write waits for one."),
    Alert("MishardsBufferedRowsNotFlushing",
          "max by ($L) (mishards_node_buffered_rows) > 0\n"
          "and max by ($L) (delta(mishards_node_buffered_rows[$flushStallWindow])) > 0\n"
          "and sum by ($L) (increase(mishards_node_flush_seconds_count[$flushStallWindow])) == 0",
          "flushStallFor", "warning", "Buffered rows grow without flushes",
          f"{WHERE} holds {{{{ $value }}}} unflushed rows, more than it held $flushStallWindow ago, and has committed "
          "no flush since: inserted rows stay out of searches and the write-ahead log grows."),
    Alert("MishardsCacheNearlyFull",
          "sum by ($L) (mishards_node_cache_bytes) / sum by ($L) (mishards_node_cache_capacity_bytes > 0)\n"
          "> $cacheFullRatio", "cacheFullFor", "info", "The segment cache is nearly full",
          f"The segment cache of {WHERE} is {{{{ $value | humanizePercentage }}}} full."),
    Alert("MishardsCacheEvictingHard",
          "sum by ($L) (rate(mishards_node_cache_evictions_total[5m])) > $cacheEvictionsPerSecond",
          "cacheEvictionsFor", "warning", "The segment cache evicts hard",
          f"The segment cache of {WHERE} evicts {{{{ $value | humanize }}}} segments per second: its share "
          "does not fit, and searches load segments from storage."),
    Alert("MishardsStorageNearlyFull",
          "min by ($L) (mishards_node_storage_free_bytes / mishards_node_storage_size_bytes) < $storageFreeRatio",
          "storageFreeFor", "warning", "The storage file system is nearly full",
          f"Only {{{{ $value | humanizePercentage }}}} of the file system holding the storage path of {WHERE} "
          "is free: flushes, index builds and the write-ahead log fail when it is full."),
)


def expr_of(alert: Alert, values: dict[str, str]) -> str:
    return Template(alert.expr).substitute({**values, "L": LOCATION})


def description_of(alert: Alert, values: dict[str, str]) -> str:
    return Template(alert.description.replace("$labels", "$$labels").replace("$value", "$$value")).substitute(values)
