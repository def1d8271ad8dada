"""``Cmd`` strings: version, status, mode, and get_config / set_config over the node's real settings.

Config names follow Milvus 1.1's server config (``cache.cache_size`` answers ``4GB``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass

from coordinator.errors import UnexpectedError
from node.engine import Engine
from node.settings import parse_size

UNKNOWN = "Unknown command"


@dataclass(frozen=True, slots=True)
class ConfigEntry:
    get: Callable[[], str]
    set: Callable[[str], None] | None = None  # None: fixed while the server runs


def _bool(value: bool) -> str:
    return "true" if value else "false"


class Commands:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        s = engine.settings
        self._cache_size = s.cache_size
        self._insert_buffer_size = s.insert_buffer_size
        self.entries: dict[str, ConfigEntry] = {
            "cluster.enable": ConfigEntry(lambda: _bool(s.role != "standalone")),
            "cluster.role": ConfigEntry(lambda: "rw" if s.role == "standalone" else s.role),
            "general.meta_uri": ConfigEntry(lambda: engine.catalog._safe_uri()),
            "network.bind.address": ConfigEntry(lambda: s.host),
            "network.bind.port": ConfigEntry(lambda: str(engine.bound_port)),
            "storage.path": ConfigEntry(lambda: s.storage_path),
            "storage.auto_flush_interval": ConfigEntry(
                lambda: _number(engine.auto_flush_interval), self._set_flush_interval
            ),
            "wal.enable": ConfigEntry(lambda: _bool(engine.writable)),
            "wal.path": ConfigEntry(lambda: str(s.storage / "wal")),
            "cache.cache_size": ConfigEntry(lambda: self._cache_size, self._set_cache_size),
            "cache.insert_buffer_size": ConfigEntry(lambda: self._insert_buffer_size, self._set_insert_buffer),
            "engine.omp_thread_num": ConfigEntry(lambda: str(engine.omp_threads.count), self._set_omp_threads),
        }

    def run(self, cmd: str) -> str:
        if cmd == "version":
            return self.engine.settings.version
        if cmd == "status":
            return "OK"
        if cmd == "mode":
            return "CPU"
        if cmd == "build_commit_id":
            return "mishards"
        if cmd == "tasktable":
            return ""
        if cmd == "requests":
            return json.dumps({"requests": []})
        if cmd == "get_system_info":
            return json.dumps(self.system_info(), sort_keys=True)
        if cmd[:10] == "get_config":
            return self._get(cmd)
        if cmd[:10] == "set_config":
            self._set(cmd)
            return ""
        return UNKNOWN

    def system_info(self) -> dict[str, object]:
        """Node state worth watching: cache use and hit rate, index builds, buffered rows."""
        cache = self.engine.cache
        lookups = cache.hits + cache.misses
        builds = self.engine.builds
        return {
            "mode": "CPU",
            "role": self.engine.settings.role,
            "cache_capacity_bytes": cache.capacity_bytes,
            "cache_used_bytes": cache.used_bytes,
            "cache_segments": len(cache),
            "cache_hits": cache.hits,
            "cache_misses": cache.misses,
            "cache_hit_rate": round(cache.hits / lookups, 4) if lookups else 0.0,
            "cache_evictions": cache.evictions,
            "index_builds_done": builds.built if builds else 0,
            "index_builds_failed": builds.failed if builds else 0,
            "catalog_revision": self.engine.snapshot().revision,
        }

    def _entry(self, key: str) -> ConfigEntry:
        entry = self.entries.get(key)
        if entry is None:
            raise UnexpectedError(f"Config node invalid: {key}")
        return entry

    def _get(self, cmd: str) -> str:
        tokens = cmd.split()
        if len(tokens) != 2:
            raise UnexpectedError(f"Invalid command: {cmd}")
        if tokens[1] == "*":
            return json.dumps({key: entry.get() for key, entry in sorted(self.entries.items())})
        return self._entry(tokens[1]).get()

    def _set(self, cmd: str) -> None:
        tokens = cmd.split()
        if len(tokens) != 3:
            raise UnexpectedError(f"Invalid command: {cmd}")
        entry = self._entry(tokens[1])
        if entry.set is None:
            raise UnexpectedError(f"Config {tokens[1]} cannot be changed while the server runs")
        try:
            entry.set(tokens[2])
        except ValueError as exc:
            raise UnexpectedError(f"Invalid value {tokens[2]!r} for {tokens[1]}: {exc}") from None

    # -- setters -------------------------------------------------------------------------------

    def _set_flush_interval(self, raw: str) -> None:
        value = float(raw)
        # Also refuses NaN and values an Event.wait() cannot take (they would kill the maintenance thread).
        if not 0 <= value <= threading.TIMEOUT_MAX:
            raise ValueError(f"must be a number of seconds from 0 to {threading.TIMEOUT_MAX:.0f}")
        self.engine.auto_flush_interval = value

    def _set_cache_size(self, raw: str) -> None:
        self.engine.cache.capacity_bytes = parse_size(raw)
        self._cache_size = raw

    def _set_insert_buffer(self, raw: str) -> None:
        self.engine.insert_buffer_bytes = parse_size(raw)
        self._insert_buffer_size = raw

    def _set_omp_threads(self, raw: str) -> None:
        value = int(raw)
        if value < 1:
            raise ValueError("must be >= 1")
        self.engine.omp_threads.count = value


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
