"""Prometheus /metrics of a real node: counters and gauges move with real requests."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from milvus_wire import milvus_pb2
from tests.support.nodeproc import NodeProcess


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        return str(resp.read().decode())


def _value(text: str, name: str, labels: str = "") -> float:
    pattern = re.escape(name) + (r"\{" + labels + r"\}" if labels else r"(\{\})?") + r" ([0-9.e+-]+)"
    match = re.search("^" + pattern + "$", text, re.MULTILINE)
    assert match, f"{name}{{{labels}}} not in metrics"
    return float(match.groups()[-1])


def _rows(x: np.ndarray) -> list[Any]:
    return [milvus_pb2.RowRecord(float_data=v) for v in x.tolist()]


def test_metrics_follow_requests_cache_and_index_builds(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "n", ["--auto-flush-interval", "0", "--metrics-port", "-1"])
    with node:
        assert node.metrics_port > 0
        s = node.stub()
        before = _scrape(node.metrics_port)
        assert _value(before, "mishards_node_cache_bytes") == 0
        schema = milvus_pb2.CollectionSchema(collection_name="m", dimension=8, index_file_size=1024, metric_type=1)
        assert s.CreateCollection(schema).error_code == 0
        x = np.random.default_rng(0).standard_normal((5000, 8)).astype(np.float32)
        s.Insert(milvus_pb2.InsertParam(collection_name="m", row_record_array=_rows(x)))
        buffered = _scrape(node.metrics_port)
        assert _value(buffered, "mishards_node_buffered_rows") == 5000
        assert _value(buffered, "mishards_node_wal_fsync_seconds_count") >= 1
        assert _value(buffered, "mishards_node_flush_seconds_count") == 0
        s.Flush(milvus_pb2.FlushParam())
        query = milvus_pb2.SearchParam(collection_name="m", topk=2, query_record_array=_rows(x[:3]))
        for _ in range(3):
            assert s.Search(query).status.error_code == 0
        assert s.Search(milvus_pb2.SearchParam(collection_name="m", topk=0)).status.error_code == 10
        params = [milvus_pb2.KeyValuePair(key="params", value=json.dumps({"nlist": 8}))]
        index = milvus_pb2.IndexParam(collection_name="m", index_type=2, extra_params=params)
        assert s.CreateIndex(index).error_code == 0

        text = _scrape(node.metrics_port)
        assert _value(text, "mishards_node_request_seconds_count", 'code="0",method="Search"') == 3
        assert _value(text, "mishards_node_request_seconds_count", 'code="10",method="Search"') == 1
        assert _value(text, "mishards_node_request_seconds_count", 'code="0",method="Insert"') == 1
        assert _value(text, "mishards_node_cache_bytes") > 0
        assert _value(text, "mishards_node_cache_misses_total") >= 1
        assert _value(text, "mishards_node_cache_hits_total") >= 2
        assert _value(text, "mishards_node_rows") == 5000
        assert _value(text, "mishards_node_segments", 'state="INDEX"') == 1
        assert _value(text, "mishards_node_index_builds_total", 'result="ok"') == 1
        assert _value(text, "mishards_node_wal_fsyncs_total") >= 1
        assert _value(text, "mishards_node_catalog_revision") > 0
        assert _value(text, "mishards_node_buffered_rows") == 0
        assert _value(text, "mishards_node_flush_seconds_count") >= 1
        assert _value(text, "mishards_node_index_build_seconds_count") == 1
        assert _value(text, "mishards_node_index_build_seconds_sum") > 0
        assert _value(text, "mishards_node_inflight_requests") == 0
        assert _value(text, "mishards_node_writable") == 1
        assert _value(text, "mishards_node_catalog_refresh_lag_seconds") == 0  # the writer never lags
        assert "mishards_node_members" not in text  # not a cluster member
