"""Milvus 1.1's config surface over Cmd against a real node: get_config / set_config of every key, live effects,
values kept across a restart, refusals with 1.1's codes and reasons, and get_system_info."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from coordinator.limits import parse_meminfo_total
from node.config_keys import KEYS, Effect
from node.sysinfo import parse_vmrss
from tests.support.nodeproc import NodeProcess
from tests.support.requests import (
    L2,
    SUCCESS,
    assert_status,
    cmd,
    count,
    create,
    insert_ok,
    ok,
    unique_name,
)
from tests.support.waiting import poll_for

UNEXPECTED_ERROR = 1
COLLECTION_NOT_EXISTS = 4
ILLEGAL_ARGUMENT = 5
DIM = 8

# A valid value of every key set_config accepts (a key added to the table needs one here).
SETTABLE = {
    "cache.cache_size": "300MB",
    "cache.insert_buffer_size": "64m",
    "storage.auto_flush_interval": "2",
    "engine_config.omp_thread_num": "1",
    "cluster.enable": "false",
    "cluster.role": "rw",
    "general.timezone": "UTC+9",
    "general.meta_uri": "sqlite://:@:/",
    "network.bind.address": "0.0.0.0",
    "network.bind.port": "19600",
    "network.http.port": "19122",
    "storage.path": "/var/lib/other",
    "metric.enable": "true",
    "metric.address": "10.0.0.1",
    "metric.port": "9092",
    "wal.enable": "true",
    "wal.recovery_error_ignore": "true",
    "wal.buffer_size": "128MB",
    "wal.path": "/var/lib/other/wal",
    "logs.level": "info",
    "logs.trace.enable": "false",
    "logs.path": "/var/log/milvus",
    "logs.max_log_file_size": "512MB",
    "logs.log_rotate_num": "3",
    "logs.log_to_stdout": "true",
    "logs.log_to_file": "false",
    "cache.cpu_cache_threshold": "0.8",
    "cache.cache_insert_data": "true",
    "cache.preload_collection": "*",
    "engine_config.use_blas_threshold": "500",
    "engine_config.simd_type": "avx2",
    "engine_config.search_combine_nq": "32",
    "engine_config.max_partition_num": "100",
}


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    with NodeProcess(tmp_path_factory.mktemp("config"), ["--auto-flush-interval", "1"]) as proc:
        yield proc


@pytest.fixture
def api(node: NodeProcess) -> Any:
    return node.stub()


def get(api: Any, key: str) -> str:
    return str(ok(cmd(api, f"get_config {key}")).string_reply)


def set_ok(api: Any, key: str, value: str) -> None:
    assert assert_status(cmd(api, f"set_config {key} {value}"), SUCCESS).string_reply == ""


def stats(api: Any) -> dict[str, Any]:
    return dict(json.loads(ok(cmd(api, "mishards_stats")).string_reply))


def new_collection(api: Any) -> str:
    name = unique_name("cfg")
    ok(create(api, name, DIM, L2))
    return name


def test_the_table_of_settable_keys_is_covered() -> None:
    settable = {k.name for k in KEYS if k.effect in (Effect.LIVE, Effect.RESTART, Effect.KEPT)}
    assert settable == set(SETTABLE)


@pytest.mark.parametrize("key", sorted(SETTABLE))
def test_each_settable_key_is_set_and_read_back(api: Any, key: str) -> None:
    set_ok(api, key, SETTABLE[key])
    expected = "'*'" if SETTABLE[key] == "*" else SETTABLE[key]  # 1.1 keeps preload_collection's * quoted
    assert get(api, key) == expected
    whole = json.loads(ok(cmd(api, "get_config *")).string_reply)
    parent, child = key.split(".", 1)
    assert whole[parent][child] == expected


def test_get_config_star_answers_every_key_as_strings(api: Any) -> None:
    whole = json.loads(ok(cmd(api, "get_config *")).string_reply)
    flat = {f"{parent}.{child}": value for parent, children in whole.items() for child, value in children.items()}
    assert set(flat) == {k.name for k in KEYS}
    assert all(isinstance(v, str) for v in flat.values())
    for key in ("network.bind.port", "storage.file_cleanup_timeout", "db_config.archive_days_threshold"):
        assert flat[key] == get(api, key)
    assert "gpu" not in whole  # a CPU build answers no gpu.* key


@pytest.mark.parametrize("key", ["db_config.archive_disk_threshold", "db_config.archive_days_threshold"])
def test_db_config_keys_are_accepted_and_change_nothing(api: Any, key: str) -> None:
    set_ok(api, key, "7")
    assert get(api, key) == "0"


@pytest.mark.parametrize(("text", "code", "reason"), [
    ("set_config storage.auto_flush_interval -1", ILLEGAL_ARGUMENT, "Invalid storage configuration "
     "auto_flush_interval: -1. Possible reason: storage.auto_flush_interval is not a natural number."),
    ("set_config storage.auto_flush_interval 1.5", ILLEGAL_ARGUMENT, "auto_flush_interval: 1.5. Possible"),
    ("set_config storage.auto_flush_interval 1+2", ILLEGAL_ARGUMENT, "auto_flush_interval: 1+2. Possible"),
    ("set_config storage.auto_flush_interval invalid", ILLEGAL_ARGUMENT, "auto_flush_interval: invalid. Possible"),
    ("set_config cache.cache_size invalid", ILLEGAL_ARGUMENT, "The specified value for memory (invalid) should "
     "specify the units.The postfix should be one of the `b` `k` `m` `g` characters"),
    ("set_config cache.cache_size -1", ILLEGAL_ARGUMENT, "Invalid cpu cache capacity: -1. Possible reason: "
     "cache.cache_size is not a positive integer."),
    ("set_config cache.cache_size 4TB", ILLEGAL_ARGUMENT, "should specify the units."),
    ("set_config cache.cache_size 1+2", ILLEGAL_ARGUMENT, "Unknown error happened on parse bytes."),
    ("set_config cache.cache_size 100000GB", ILLEGAL_ARGUMENT, "Possible reason: cache.cache_size exceeds system"),
    ("set_config cache.insert_buffer_size 0", ILLEGAL_ARGUMENT, "cache.insert_buffer_size is not a positive"),
    ("set_config cache.cpu_cache_threshold 1.5", ILLEGAL_ARGUMENT, "Invalid cpu cache threshold: 1.5."),
    ("set_config cache.cache_insert_data maybe", ILLEGAL_ARGUMENT, "Invalid cache insert data option: maybe."),
    ("set_config cache.preload_collection no_such_collection", COLLECTION_NOT_EXISTS,
     "Collection no_such_collection not exist"),
    ("set_config engine_config.omp_thread_num 100000", ILLEGAL_ARGUMENT, "exceeds system cpu cores."),
    ("set_config engine_config.simd_type avx", ILLEGAL_ARGUMENT, "simd_type is not one of avx512, avx2, sse"),
    ("set_config cluster.role master", ILLEGAL_ARGUMENT, "cluster.role is not one of rw and ro."),
    ("set_config general.timezone GMT", ILLEGAL_ARGUMENT, "Invalid general.timezone: GMT"),
    ("set_config general.timezone UTC+25", UNEXPECTED_ERROR, "Invalid general.timezone: UTC+25"),
    ("set_config general.meta_uri nonsense", ILLEGAL_ARGUMENT, "Invalid meta uri: nonsense."),
    ("set_config network.bind.port 80", ILLEGAL_ARGUMENT, "network.bind.port is not in range (1024, 65535)."),
    ("set_config network.bind.address localhost", ILLEGAL_ARGUMENT, "Invalid server IP address: localhost."),
    ("set_config storage.path relative", ILLEGAL_ARGUMENT, "Invalid file path"),
    ("set_config wal.enable 2", ILLEGAL_ARGUMENT, "wal.enable is not a boolean."),
    ("set_config logs.level verbose", ILLEGAL_ARGUMENT, "Log level must be one of debug, info, warning, error"),
    ("set_config tracing_config.json_config_path /x", ILLEGAL_ARGUMENT, "is not supported to configure."),
])
def test_invalid_values_are_refused_and_change_nothing(api: Any, text: str, code: int, reason: str) -> None:
    key = text.split(" ")[1]
    before = get(api, key)
    reply = cmd(api, text)
    assert reply.status.error_code == code
    assert reason in reply.status.reason
    assert get(api, key) == before


@pytest.mark.parametrize(("text", "reason"), [
    ("get_config nope.nope", "Config node invalid: nope.nope"),
    ("set_config nope.nope 1", "Config node invalid: nope.nope"),
    ("get_config cache.nope", "Config node invalid: cache.nope"),
    ("set_config cache.nope 1", "Config node invalid: cache.nope"),
    ("get_config gpu.enable", "Config node invalid: gpu.enable"),
    ("set_config gpu.cache_size 1GB", "Config node invalid: gpu.cache_size"),
    ("get_config engine.omp_thread_num", "Config node invalid: engine.omp_thread_num"),
    ("set_config network.http.enable false", "Config node invalid: network.http.enable"),
    ("set_config storage.file_cleanup_timeout 5", "Config node invalid: storage.file_cleanup_timeout"),
    ("get_config cache", "Invalid command: get_config cache"),
    ("get_config cache.cache_size extra", "Invalid command: get_config cache.cache_size extra"),
    ("set_config cache.cache_size  1GB", "Invalid command: set_config cache.cache_size  1GB"),
    ("get_configx cache.cache_size", "Invalid command: get_configx cache.cache_size"),
])
def test_unknown_keys_and_malformed_commands_are_refused(api: Any, text: str, reason: str) -> None:
    assert_status(cmd(api, text), UNEXPECTED_ERROR, reason)


def test_get_system_info_is_milvus_1_1s(api: Any, node: NodeProcess) -> None:
    reply = ok(cmd(api, "get_system_info")).string_reply
    info = json.loads(reply)
    assert sorted(info) == ["memory_total", "memory_used"]
    assert reply == json.dumps(info, sort_keys=True, separators=(",", ":"))  # compact, values as strings
    assert all(isinstance(v, str) and v.isdigit() for v in info.values())
    total = parse_meminfo_total(Path("/proc/meminfo").read_text())
    assert int(info["memory_total"]) == total
    assert node.proc is not None
    rss = parse_vmrss(Path(f"/proc/{node.proc.pid}/status").read_text())
    assert 10 << 20 < int(info["memory_used"]) < total
    assert rss / 2 < int(info["memory_used"]) < rss * 2  # the node process's resident memory


def test_live_values_take_effect_at_once(api: Any) -> None:
    set_ok(api, "cache.cache_size", "123MB")
    assert stats(api)["cache_capacity_bytes"] == 123 << 20
    set_ok(api, "engine_config.omp_thread_num", "0")  # every CPU
    assert get(api, "engine_config.omp_thread_num") == "0"
    # A tiny insert buffer flushes at once, even with timed flushes a long way off.
    set_ok(api, "storage.auto_flush_interval", "1000")
    name = new_collection(api)
    try:
        set_ok(api, "cache.insert_buffer_size", "1024")
        insert_ok(api, name, np.ones((64, DIM), np.float32))
        # The node looks at the buffer as the next write arrives (its rows reach the buffer after the log).
        insert_ok(api, name, np.ones((1, DIM), np.float32))
        poll_for(lambda: count(api, name) >= 64, timeout=10, what="a flush of the full insert buffer")
    finally:
        set_ok(api, "cache.insert_buffer_size", "64MB")
        set_ok(api, "storage.auto_flush_interval", "1")


def test_a_shorter_auto_flush_interval_takes_effect_at_once(tmp_path: Path) -> None:
    # The node waits out a 1000 s period from its start: a new period must not wait for it to end.
    with NodeProcess(tmp_path / "n", ["--auto-flush-interval", "1000"]) as proc:
        api = proc.stub()
        set_ok(api, "storage.auto_flush_interval", "1000")
        name = new_collection(api)
        insert_ok(api, name, np.ones((5, DIM), np.float32))
        assert count(api, name) == 0
        set_ok(api, "storage.auto_flush_interval", "1")
        poll_for(lambda: count(api, name) == 5, timeout=10, what="rows flushed after the interval went to 1 s")
        insert_ok(api, name, np.ones((3, DIM), np.float32))
        poll_for(lambda: count(api, name) == 8, timeout=10, what="the next timed flush")


def test_values_are_kept_across_a_restart(fresh_node: NodeProcess) -> None:
    api = fresh_node.stub()
    kept = {"general.timezone": "UTC+9", "logs.level": "warning", "cache.cache_size": "300MB",
            "cache.preload_collection": "*", "wal.buffer_size": "128MB", "engine_config.use_blas_threshold": "500",
            "metric.enable": "true"}
    for key, value in kept.items():
        set_ok(api, key, value)
    set_ok(api, "storage.auto_flush_interval", "5")  # the node's --auto-flush-interval 1 wins at the next start
    # A value that needs a restart is answered at once (as 1.1 does) and listed as waiting for one.
    assert get(api, "logs.level") == "warning"
    assert stats(api)["restart_required"] == ["general.timezone", "logs.level", "metric.enable", "wal.buffer_size"]
    assert os.path.exists(stats(api)["config_file"])

    fresh_node.stop()
    api = fresh_node.start().stub()
    for key, value in kept.items():
        assert get(api, key) == ("'*'" if value == "*" else value), key
    assert stats(api)["cache_capacity_bytes"] == 300 << 20  # in effect, not only answered
    assert stats(api)["restart_required"] == []
    assert get(api, "storage.auto_flush_interval") == "1"  # a command-line flag beats a kept value
