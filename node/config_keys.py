"""Milvus 1.1's server config as ``get_config`` / ``set_config`` see it: every key a CPU build of 1.1.1 answers,
its default, what a ``set_config`` of it does and its check (:mod:`node.config_checks`); how the commands are
read; and which node settings kept values give at the next start. Pure.
"""

from __future__ import annotations

import enum
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from coordinator.sizes import parse_size
from node import config_checks as checks
from node import config_values as cv
from node.config_checks import Check, Facts, Refusal


class Effect(enum.Enum):
    """What an accepted ``set_config`` does."""

    LIVE = "live"  # applied at once, and kept for the next start
    RESTART = "restart"  # kept for the next start (Milvus 1.1 needs a restart for it too)
    KEPT = "kept"  # answered and kept; nothing in this node uses it
    NOOP = "noop"  # answered SUCCESS and changes nothing (1.1's db_config keys)
    FIXED = "fixed"  # not settable: "Config node invalid"
    REFUSED = "refused"  # settable in name only: every value is refused


@dataclass(frozen=True, slots=True)
class ConfigKey:
    name: str  # "parent.child"; the child may hold dots (network.bind.address)
    effect: Effect
    default: str  # what a node answers when its settings do not say (Milvus 1.1.1's shipped value)
    check: Check | None = None
    setting: str = ""  # the NodeSettings field it maps to ('' = none)


L, R, K, N, F = Effect.LIVE, Effect.RESTART, Effect.KEPT, Effect.NOOP, Effect.FIXED

KEYS: tuple[ConfigKey, ...] = (
    ConfigKey("cluster.enable", R, "false", checks.boolean("Invalid boolean: {value}"), "role"),
    ConfigKey("cluster.role", R, "rw", checks.role, "role"),
    ConfigKey("general.timezone", R, "UTC+8", checks.timezone),
    ConfigKey("general.meta_uri", R, "sqlite://:@:/", checks.meta_uri, "meta_uri"),
    ConfigKey("network.bind.address", R, "0.0.0.0", checks.ipv4(
        "Invalid server IP address: {value}. Possible reason: network.bind.address is invalid."), "host"),
    ConfigKey("network.bind.port", R, "19530", checks.port("network.bind.port", "server port"), "port"),
    ConfigKey("network.http.enable", F, "true"),
    ConfigKey("network.http.port", R, "19121", checks.port("network.http.port", "web server port")),
    ConfigKey("db_config.archive_disk_threshold", N, "0"),
    ConfigKey("db_config.archive_days_threshold", N, "0"),
    ConfigKey("storage.path", R, "/var/lib/milvus", checks.path("storage.path"), "storage_path"),
    ConfigKey("storage.auto_flush_interval", L, "1", checks.natural(
        "Invalid storage configuration auto_flush_interval: {value}. Possible reason: "
        "storage.auto_flush_interval is not a natural number."), "auto_flush_interval"),
    ConfigKey("storage.file_cleanup_timeout", F, "10", setting="file_cleanup_timeout"),
    ConfigKey("storage.s3_enabled", F, "false"),
    ConfigKey("storage.s3_address", F, "127.0.0.1"),
    ConfigKey("storage.s3_port", F, "80"),
    ConfigKey("storage.s3_access_key", F, ""),
    ConfigKey("storage.s3_secret_key", F, ""),
    ConfigKey("storage.s3_bucket", F, ""),
    ConfigKey("metric.enable", R, "false", checks.boolean(
        "Invalid metric config: {value}. Possible reason: metric.enable is not a boolean.")),
    ConfigKey("metric.address", R, "127.0.0.1", checks.ipv4(
        "Invalid metric ip: {value}. Possible reason: metric.ip is invalid.")),
    ConfigKey("metric.port", R, "9091", checks.port("metric.port", "metric port")),
    ConfigKey("metric.cluster_label", F, "milvus_cluster"),
    ConfigKey("metric.instance_label", F, ""),
    ConfigKey("cache.cache_size", L, "4GB", checks.cache_size, "cache_size"),
    ConfigKey("cache.cpu_cache_threshold", K, "0.7", checks.cache_threshold),
    ConfigKey("cache.insert_buffer_size", L, "1GB", checks.insert_buffer, "insert_buffer_size"),
    ConfigKey("cache.cache_insert_data", K, "false", checks.boolean(
        "Invalid cache insert data option: {value}. Possible reason: cache_config.cache_insert_data is not a "
        "boolean.")),
    ConfigKey("cache.preload_collection", K, "", checks.preload),
    ConfigKey("engine_config.use_blas_threshold", K, "1100", checks.natural(
        "Invalid use blas threshold: {value}. Possible reason: engine_config.use_blas_threshold is not a "
        "positive integer.")),
    ConfigKey("engine_config.omp_thread_num", L, "0", checks.omp_threads, "omp_threads"),
    ConfigKey("engine_config.simd_type", K, "auto", checks.simd),
    ConfigKey("engine_config.search_combine_nq", K, "64", checks.natural(
        "Invalid omp thread num: {value}. Possible reason: engine_config.omp_thread_num is not a positive "
        "integer.")),
    ConfigKey("engine_config.max_partition_num", K, "4096", checks.natural(
        "Invalid max partition number: {value}. Possible reason: engine_config.max_partition_num is not a "
        "positive integer.")),
    ConfigKey("tracing_config.json_config_path", Effect.REFUSED, "", checks.json_config_path),
    ConfigKey("wal.enable", R, "true", checks.boolean(
        "Invalid wal config: {value}. Possible reason: wal.enable is not a boolean.")),
    ConfigKey("wal.recovery_error_ignore", R, "false", checks.boolean(
        "Invalid wal config: {value}. Possible reason: wal.recovery_error_ignore is not a boolean.")),
    ConfigKey("wal.buffer_size", R, "256MB", checks.wal_buffer),
    ConfigKey("wal.path", R, "/var/lib/milvus/wal", checks.path("wal.path")),
    ConfigKey("logs.level", R, "debug", checks.log_level, "log_level"),
    ConfigKey("logs.trace.enable", R, "true", checks.boolean(
        "Invalid logs config: {value}. Possible reason: logs.trace.enable is not a boolean.")),
    ConfigKey("logs.path", R, "/var/lib/milvus/logs", checks.path("logs.path")),
    ConfigKey("logs.max_log_file_size", R, "1024MB", checks.log_file_size),
    ConfigKey("logs.log_rotate_num", R, "0", checks.log_rotate),
    ConfigKey("logs.log_to_stdout", R, "false", checks.boolean(
        "Invalid logs config: {value}. Possible reason: logs.log_to_stdout is not a boolean.")),
    ConfigKey("logs.log_to_file", R, "true", checks.boolean(
        "Invalid logs config: {value}. Possible reason: logs.log_to_file is not a boolean.")),
)
BY_NAME: dict[str, ConfigKey] = {key.name: key for key in KEYS}
# Effects whose accepted values are written for the next start (every accepted set_config in Milvus 1.1 is
# written to its config file).
KEPT_FOR_NEXT_START = frozenset({Effect.LIVE, Effect.RESTART, Effect.KEPT})


# -- commands --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GetAll:
    pass


@dataclass(frozen=True, slots=True)
class Get:
    key: str


@dataclass(frozen=True, slots=True)
class Set:
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class Invalid:
    reason: str


ConfigCommand = GetAll | Get | Set | Invalid


def _key_of(token: str) -> str | None:
    """``parent.child`` (the child may hold further dots); None when there is no dot."""
    return token if "." in token else None


def parse_command(cmd: str) -> ConfigCommand:
    """A ``get_config`` / ``set_config`` command, split on single spaces as Milvus 1.1 does (so two spaces or a
    trailing space make another, empty, token)."""
    tokens = cmd.split(" ")
    invalid = Invalid(f"Invalid command: {cmd}")
    if tokens[0] == "get_config":
        if len(tokens) != 2:
            return invalid
        if tokens[1] == "*":
            return GetAll()
        key = _key_of(tokens[1])
        return invalid if key is None else Get(key)
    if tokens[0] == "set_config":
        if len(tokens) != 3:
            return invalid
        key = _key_of(tokens[1])
        return invalid if key is None else Set(key, tokens[2])
    return invalid


def node_invalid(key: str) -> Refusal:
    return Refusal(checks.UNEXPECTED, f"Config node invalid: {key}")


def refusal_of(key: str, value: str, facts: Facts) -> Refusal | None:
    """Why ``set_config key value`` is refused (None: accepted)."""
    entry = BY_NAME.get(key)
    if entry is None or entry.effect is Effect.FIXED:
        return node_invalid(key)
    return (entry.check or checks.accept)(value, facts)


def stored_form(key: str, value: str) -> str:
    """How an accepted value is kept and answered (1.1 keeps ``*`` of preload_collection quoted)."""
    return "'*'" if key == "cache.preload_collection" and value == "*" else value


def as_json(values: Mapping[str, str]) -> str:
    """``get_config *``: the whole map as compact JSON, grouped by parent key, keys sorted."""
    nested: dict[str, dict[str, str]] = {}
    for name, value in values.items():
        parent, child = name.split(".", 1)
        nested.setdefault(parent, {})[child] = value
    return json.dumps(nested, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# -- the next start ---------------------------------------------------------------------------------------------


def settings_changes(kept: Mapping[str, str], role: str, cpus: int) -> dict[str, Any]:
    """The NodeSettings fields that values kept by ``set_config`` give at the next start (``role`` is the role
    the node starts with before them). Keys without a setting are left out; so is anything unknown."""
    changes: dict[str, Any] = {}
    enable = kept.get("cluster.enable")
    wanted_role = kept.get("cluster.role")
    if enable is not None or wanted_role is not None:
        clustered = cv.as_bool(enable) if enable is not None else role != "standalone"
        if not clustered:
            changes["role"] = "standalone"
        elif wanted_role in ("rw", "ro"):
            changes["role"] = wanted_role
        elif role == "standalone":
            changes["role"] = "rw"
    for name, value in kept.items():
        entry = BY_NAME.get(name)
        if entry is None or not entry.setting or entry.setting == "role":
            continue
        changes[entry.setting] = _setting_value(entry.setting, value, cpus)
    return changes


def _setting_value(setting: str, value: str, cpus: int) -> Any:
    if setting == "meta_uri":
        return cv.catalog_uri_of(value)
    if setting == "port":
        return int(value)
    if setting == "auto_flush_interval":
        return float(min(int(value), int(threading.TIMEOUT_MAX)))
    if setting in ("cache_size", "insert_buffer_size"):
        nbytes = cv.parse_bytes(value)
        try:
            same = parse_size(value) == nbytes
        except ValueError:
            same = False
        return value if same else str(nbytes)  # the node's own size syntax lacks some of 1.1's forms ("2g")
    if setting == "omp_threads":
        return int(value) or cpus  # 0: every CPU (Milvus 1.1 leaves OpenMP its default)
    if setting == "log_level":
        return value.upper()
    return value
