"""Milvus 1.1's server config table: commands, checks (reasons and codes), what is kept for the next start, and the
proxy's combination of the nodes' answers."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from coordinator.errors import ErrorCode
from milvus_wire import milvus_pb2
from mishards.config_cmd import NodeAnswer, combined, is_set_config, string_reply
from node import config_keys as ck
from node import config_store, sysinfo

GB = 1 << 30
FACTS = ck.Facts(total_memory=16 * GB, memory_limit=16 * GB, cpus=4, cache_bytes=4 * GB, insert_buffer_bytes=GB,
                 collection_exists=lambda name: name in ("a", "b"), collection_name_ok=lambda name: name.isidentifier())
OK, ILLEGAL, UNEXPECTED = ErrorCode.SUCCESS, ErrorCode.ILLEGAL_ARGUMENT, ErrorCode.UNEXPECTED_ERROR


@pytest.mark.parametrize(("cmd", "parsed"), [
    ("get_config *", ck.GetAll()),
    ("get_config cache.cache_size", ck.Get("cache.cache_size")),
    ("get_config network.bind.address", ck.Get("network.bind.address")),
    ("get_config a.", ck.Get("a.")),
    ("set_config cache.cache_size 2GB", ck.Set("cache.cache_size", "2GB")),
    ("set_config storage.path ", ck.Set("storage.path", "")),
    ("get_config", ck.Invalid("Invalid command: get_config")),
    ("get_config cache", ck.Invalid("Invalid command: get_config cache")),
    ("get_config a.b c", ck.Invalid("Invalid command: get_config a.b c")),
    ("get_config  a.b", ck.Invalid("Invalid command: get_config  a.b")),
    ("get_config a.b ", ck.Invalid("Invalid command: get_config a.b ")),
    ("set_config a.b", ck.Invalid("Invalid command: set_config a.b")),
    ("set_config a 1", ck.Invalid("Invalid command: set_config a 1")),
    ("set_config a.b 1 2", ck.Invalid("Invalid command: set_config a.b 1 2")),
    ("get_configs a.b", ck.Invalid("Invalid command: get_configs a.b")),
])
def test_parse_command(cmd: str, parsed: ck.ConfigCommand) -> None:
    assert ck.parse_command(cmd) == parsed


def test_every_key_has_a_parent_and_a_child_and_one_entry() -> None:
    names = [key.name for key in ck.KEYS]
    assert len(names) == len(set(names))
    assert all("." in name and name.split(".", 1)[1] for name in names)
    assert not any(name.startswith(("gpu.", "fpga.", "engine.")) for name in names)  # a CPU build's keys only


def test_every_settable_default_passes_its_own_check() -> None:
    facts = ck.Facts(total_memory=1 << 50, memory_limit=1 << 50, cpus=1 << 10, cache_bytes=0, insert_buffer_bytes=0,
                     collection_exists=lambda _n: True, collection_name_ok=lambda _n: True)
    for key in ck.KEYS:
        if key.effect not in (ck.Effect.FIXED, ck.Effect.REFUSED) and key.name != "cache.preload_collection":
            assert ck.refusal_of(key.name, key.default, facts) is None, key.name


@pytest.mark.parametrize(("key", "value", "code", "reason"), [
    ("nope.nope", "1", UNEXPECTED, "Config node invalid: nope.nope"),
    ("gpu.enable", "true", UNEXPECTED, "Config node invalid: gpu.enable"),
    ("engine.omp_thread_num", "1", UNEXPECTED, "Config node invalid: engine.omp_thread_num"),
    ("cache.nope", "1", UNEXPECTED, "Config node invalid: cache.nope"),
    ("network.http.enable", "false", UNEXPECTED, "Config node invalid: network.http.enable"),
    ("storage.file_cleanup_timeout", "5", UNEXPECTED, "Config node invalid: storage.file_cleanup_timeout"),
    ("storage.s3_enabled", "true", UNEXPECTED, "Config node invalid: storage.s3_enabled"),
    ("storage.auto_flush_interval", "-1", ILLEGAL, "Invalid storage configuration auto_flush_interval: -1. "
     "Possible reason: storage.auto_flush_interval is not a natural number."),
    ("storage.auto_flush_interval", "1.5", ILLEGAL, "auto_flush_interval: 1.5."),
    ("storage.auto_flush_interval", "1+2", ILLEGAL, "auto_flush_interval: 1+2."),
    ("storage.auto_flush_interval", "invalid", ILLEGAL, "auto_flush_interval: invalid."),
    ("cache.cache_size", "-1", ILLEGAL, "Invalid cpu cache capacity: -1. Possible reason: cache.cache_size is not "
     "a positive integer."),
    ("cache.cache_size", "0", ILLEGAL, "cache.cache_size is not a positive integer."),
    ("cache.cache_size", "invalid", ILLEGAL, "The specified value for memory (invalid) should specify the units."),
    ("cache.cache_size", "16GB", ILLEGAL, "Invalid cpu cache size: 16GB. Possible reason: cache.cache_size exceeds "
     "system memory."),
    ("cache.cache_size", "15GB", ILLEGAL, "sum of cache.cache_size and cache.insert_buffer_size exceeds system "
     "memory."),
    ("cache.insert_buffer_size", "12GB", ILLEGAL, "Invalid insert buffer size: 12GB. Possible reason: sum of "
     "cache.cache_size and cache.insert_buffer_size exceeds system memory."),
    ("cache.insert_buffer_size", "-5", ILLEGAL, "cache.insert_buffer_size is not a positive integer."),
    ("cache.cpu_cache_threshold", "1.0", ILLEGAL, "Invalid cpu cache threshold: 1.0."),
    ("cache.cpu_cache_threshold", "x", ILLEGAL, "Invalid cpu cache threshold: x."),
    ("cache.cache_insert_data", "maybe", ILLEGAL, "Invalid cache insert data option: maybe."),
    ("cache.preload_collection", "a,c", ErrorCode.COLLECTION_NOT_EXISTS, "Collection c not exist"),
    ("cache.preload_collection", "a,a", ILLEGAL, "cache.preload_collection contains duplicate collection."),
    ("cache.preload_collection", "a-b", ILLEGAL, "Invalid collection name: a-b"),
    ("engine_config.omp_thread_num", "5", ILLEGAL, "engine_config.omp_thread_num exceeds system cpu cores."),
    ("engine_config.omp_thread_num", "-1", ILLEGAL, "engine_config.omp_thread_num is not a positive integer."),
    ("engine_config.use_blas_threshold", "1.5", ILLEGAL, "Invalid use blas threshold: 1.5."),
    ("engine_config.simd_type", "avx", ILLEGAL, "engine_config.simd_type is not one of avx512, avx2, sse and auto."),
    ("engine_config.max_partition_num", "many", ILLEGAL, "Invalid max partition number: many."),
    ("cluster.role", "master", ILLEGAL, "cluster.role is not one of rw and ro."),
    ("cluster.enable", "maybe", ILLEGAL, "Invalid boolean: maybe"),
    ("general.timezone", "GMT+8", ILLEGAL, "Invalid general.timezone: GMT+8"),
    ("general.timezone", "UTC+25", UNEXPECTED, "Invalid general.timezone: UTC+25"),
    ("general.meta_uri", "postgres://u:p@h:1/d", ILLEGAL, "Invalid meta uri: postgres://u:p@h:1/d. Possible "
     "reason: general.meta_uri is invalid."),
    ("network.bind.address", "host", ILLEGAL, "Invalid server IP address: host."),
    ("network.bind.port", "80", ILLEGAL, "Invalid server port: 80. Possible reason: network.bind.port is not in "
     "range (1024, 65535)."),
    ("network.bind.port", "x", ILLEGAL, "Invalid server port: x. Possible reason: network.bind.port is not a "
     "number."),
    ("network.http.port", "65535", ILLEGAL, "Invalid web server port: 65535."),
    ("storage.path", "", ILLEGAL, "storage.path is empty."),
    ("storage.path", "relative/path", ILLEGAL, "Invalid file path"),
    ("wal.path", "/a//b", ILLEGAL, "Invalid file path"),
    ("wal.enable", "2", ILLEGAL, "Invalid wal config: 2. Possible reason: wal.enable is not a boolean."),
    ("wal.buffer_size", "-1", ILLEGAL, "Invalid wal buffer size: -1."),
    ("metric.port", "1", ILLEGAL, "Invalid metric port: 1."),
    ("metric.address", "x", ILLEGAL, "Invalid metric ip: x."),
    ("logs.level", "verbose", ILLEGAL, "Log level must be one of debug, info, warning, error and fatal."),
    ("logs.level", "", ILLEGAL, "logs.level is empty!"),
    ("logs.max_log_file_size", "1MB", ILLEGAL, "logs.max_log_file_size is not in range [536870912, 4294967296]."),
    ("logs.log_rotate_num", "1025", ILLEGAL, "logs.log_rotate_num is not in range [0, 1024]."),
    ("tracing_config.json_config_path", "/x.json", ILLEGAL, "tracing_config.json_config_path is not supported"),
])
def test_refusals(key: str, value: str, code: ErrorCode, reason: str) -> None:
    refusal = ck.refusal_of(key, value, FACTS)
    assert refusal is not None
    assert refusal.code == code
    assert reason in refusal.reason


def test_cgroup_limit_refuses_a_cache_above_it() -> None:
    facts = ck.Facts(16 * GB, 2 * GB, 4, GB, GB, lambda _n: True, lambda _n: True)
    refusal = ck.refusal_of("cache.cache_size", "3GB", facts)
    assert refusal is not None and "exceeds system cgroup memory" in refusal.reason


@pytest.mark.parametrize(("key", "value"), [
    ("cache.cache_size", "2GB"), ("cache.cache_size", "512m"), ("cache.insert_buffer_size", "1g"),
    ("storage.auto_flush_interval", "0"), ("storage.auto_flush_interval", "1000"), ("cache.preload_collection", "*"),
    ("cache.preload_collection", "a,b"), ("engine_config.omp_thread_num", "0"), ("engine_config.omp_thread_num", "4"),
    ("general.timezone", "UTC-5:30"), ("network.bind.port", "19531"), ("cluster.enable", "on"),
    ("db_config.archive_disk_threshold", "anything"), ("logs.max_log_file_size", "1GB"), ("storage.path", "/data/x"),
])
def test_accepted(key: str, value: str) -> None:
    assert ck.refusal_of(key, value, FACTS) is None


def test_stored_form_and_json() -> None:
    assert ck.stored_form("cache.preload_collection", "*") == "'*'"
    assert ck.stored_form("cache.preload_collection", "a") == "a"
    text = ck.as_json({"network.bind.port": "1", "cache.cache_size": "4GB", "cache.a": "é"})
    assert text == '{"cache":{"a":"é","cache_size":"4GB"},"network":{"bind.port":"1"}}'


@pytest.mark.parametrize(("kept", "role", "changes"), [
    ({}, "standalone", {}),
    ({"cache.cache_size": "2GB", "cache.insert_buffer_size": "2g"}, "rw",
     {"cache_size": "2GB", "insert_buffer_size": str(2 * GB)}),
    ({"storage.auto_flush_interval": "5", "engine_config.omp_thread_num": "0"}, "standalone",
     {"auto_flush_interval": 5.0, "omp_threads": 3}),
    ({"network.bind.port": "19531", "network.bind.address": "0.0.0.0", "storage.path": "/d"}, "rw",
     {"port": 19531, "host": "0.0.0.0", "storage_path": "/d"}),
    ({"general.meta_uri": "mysql://u:p@db:3306/m"}, "rw", {"meta_uri": "mysql+pymysql://u:p@db:3306/m?charset=utf8mb4"}),
    ({"general.meta_uri": "sqlite://:@:/"}, "rw", {"meta_uri": ""}),
    ({"logs.level": "fatal", "general.timezone": "UTC+1", "wal.enable": "false"}, "rw", {"log_level": "FATAL"}),
    ({"cluster.enable": "false"}, "rw", {"role": "standalone"}),
    ({"cluster.enable": "true"}, "standalone", {"role": "rw"}),
    ({"cluster.enable": "true", "cluster.role": "ro"}, "standalone", {"role": "ro"}),
    ({"cluster.role": "ro"}, "rw", {"role": "ro"}),
    ({"cluster.role": "ro"}, "standalone", {"role": "standalone"}),  # cluster off: the role is not used
    ({"not.a.key": "1"}, "rw", {}),
])
def test_settings_changes(kept: dict[str, str], role: str, changes: dict[str, object]) -> None:
    assert ck.settings_changes(kept, role, cpus=3) == changes


def test_a_huge_auto_flush_interval_is_capped_at_what_a_timer_can_wait() -> None:
    got = ck.settings_changes({"storage.auto_flush_interval": str(1 << 62)}, "standalone", cpus=1)
    assert got["auto_flush_interval"] == float(int(threading.TIMEOUT_MAX))


def test_store_round_trip(tmp_path: Path) -> None:
    path = str(tmp_path / "n" / "node-config" / "rw-19531.yaml")
    assert config_store.read(path) == {}
    values = {"cache.cache_size": "2GB", "cache.preload_collection": "'*'", "general.timezone": "UTC+8",
              "storage.auto_flush_interval": "0", "logs.path": ""}
    config_store.write(path, values)
    assert config_store.read(path) == values
    assert [p.name for p in (tmp_path / "n" / "node-config").iterdir()] == ["rw-19531.yaml"]  # no temporary left


@pytest.mark.parametrize(("text", "message"), [("- a\n", "expected a mapping"), ("a: [\n", "not YAML")])
def test_store_refuses_a_file_that_is_not_a_mapping(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        config_store.read(str(path))


@pytest.mark.parametrize(("role", "port", "node_id", "name"), [
    ("standalone", 19530, "", "standalone"), ("rw", 19531, "", "rw-19531"), ("ro", 0, "reader-a", "reader-a"),
    ("ro", 1, "../../etc/x", "_.._etc_x"),
])
def test_store_identity(role: str, port: int, node_id: str, name: str) -> None:
    assert config_store.identity(role, port, node_id) == name
    assert config_store.default_path("/s", role, port, node_id) == f"/s/node-config/{name}.yaml"


def test_system_info_format() -> None:
    assert sysinfo.parse_vmrss("Name:\tpython\nVmRSS:\t  1234 kB\nVmSwap: 0 kB\n") == 1234 * 1024
    assert sysinfo.parse_vmrss("Name: x\n") == 0
    assert sysinfo.as_json(10, 2) == '{"memory_total":"10","memory_used":"2"}'
    info = json.loads(sysinfo.system_info())
    assert sorted(info) == ["memory_total", "memory_used"]
    assert int(info["memory_total"]) > int(info["memory_used"]) > 0


def test_proxy_combines_the_nodes_answers() -> None:
    good = string_reply(OK, "")
    refused = string_reply(ILLEGAL, "Invalid cpu cache size: x")
    other = string_reply(UNEXPECTED, "Config node invalid: a.b")
    assert combined(good, [NodeAnswer("r1", good), NodeAnswer("r2", good)]) == good
    assert combined(good, []) == good
    assert combined(good, [NodeAnswer("r1", good), NodeAnswer("r2", refused), NodeAnswer("r3", other)]) == refused
    lost = milvus_pb2.StringReply.FromString(combined(good, [NodeAnswer("r1", None, "UNAVAILABLE")]))
    assert lost.status.error_code == UNEXPECTED and "r1 (UNAVAILABLE)" in lost.status.reason
    assert is_set_config("set_config a.b 1") and is_set_config("set_configs") and not is_set_config("get_config a.b")
