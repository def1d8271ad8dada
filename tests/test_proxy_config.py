"""Cmd get_config / set_config through the proxy: a set_config reaches the writer and every read node (each asked
directly afterwards), a refusal changes nothing, get_config answers the writer's value, and a read node that
cannot be reached makes the set_config fail."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.cluster import LocalCluster
from tests.support.requests import SUCCESS, assert_status, cmd, ok

UNEXPECTED_ERROR = 1
ILLEGAL_ARGUMENT = 5


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with LocalCluster(tmp_path_factory.mktemp("cfg"), readers=2) as c:
        yield c


def get(stub: Any, key: str) -> str:
    return str(ok(cmd(stub, f"get_config {key}")).string_reply)


def values_on_each_node(cluster: LocalCluster, key: str) -> list[str]:
    return [get(node.stub(), key) for node in cluster.nodes]


@pytest.mark.parametrize(("key", "value"), [
    ("cache.cache_size", "300MB"),  # live
    ("storage.auto_flush_interval", "3"),  # live
    ("general.timezone", "UTC+3"),  # kept for the next start
    ("engine_config.use_blas_threshold", "700"),  # answered and kept
])
def test_set_config_reaches_every_node(cluster: LocalCluster, key: str, value: str) -> None:
    assert assert_status(cmd(cluster.stub(), f"set_config {key} {value}"), SUCCESS).string_reply == ""
    assert values_on_each_node(cluster, key) == [value] * 3
    assert get(cluster.stub(), key) == value


def test_a_refused_value_reaches_no_node(cluster: LocalCluster) -> None:
    before = values_on_each_node(cluster, "cache.insert_buffer_size")
    reply = cmd(cluster.stub(), "set_config cache.insert_buffer_size -1")
    assert_status(reply, ILLEGAL_ARGUMENT, "Invalid insert buffer size: -1. Possible reason: "
                  "cache.insert_buffer_size is not a positive integer.")
    assert values_on_each_node(cluster, "cache.insert_buffer_size") == before
    assert_status(cmd(cluster.stub(), "set_config gpu.enable true"), UNEXPECTED_ERROR,
                  "Config node invalid: gpu.enable")


def test_get_config_answers_the_writers_value(cluster: LocalCluster) -> None:
    ok(cmd(cluster.writer.stub(), "set_config logs.log_rotate_num 7"))
    for reader in cluster.readers:
        ok(cmd(reader.stub(), "set_config logs.log_rotate_num 9"))
    assert get(cluster.stub(), "logs.log_rotate_num") == "7"
    assert get(cluster.readers[0].stub(), "logs.log_rotate_num") == "9"


def test_an_unreachable_read_node_fails_the_set_config(cluster: LocalCluster, tmp_path: Path) -> None:
    down = cluster.readers[1]
    down.stop()
    try:
        reply = cmd(cluster.stub(), "set_config cache.cpu_cache_threshold 0.6")
        assert reply.status.error_code == UNEXPECTED_ERROR
        assert "did not reach read node" in reply.status.reason
        assert get(cluster.writer.stub(), "cache.cpu_cache_threshold") == "0.6"
        assert get(cluster.readers[0].stub(), "cache.cpu_cache_threshold") == "0.6"
    finally:
        down.start()
    assert get(down.stub(), "cache.cpu_cache_threshold") == "0.7"  # it never took the value
