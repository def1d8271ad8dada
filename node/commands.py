"""``Cmd`` strings: version, status, mode, get_system_info, get_config / set_config over Milvus 1.1's server
config (the keys, their checks and effects are in :mod:`node.config_keys`), and user management (``user ...``,
:mod:`coordinator.auth.user_admin`).

A value ``set_config`` accepts is kept in the node's config-values file for its next start (as Milvus 1.1 writes
it to its config file); values of keys the node uses live (cache size, insert buffer, auto flush interval, OpenMP
threads) also take effect at once.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable

from coordinator import validation
from coordinator.auth import user_admin
from coordinator.auth.user_commands import is_user_command
from coordinator.errors import MilvusError
from coordinator.limits import cpu_count, memory_limit
from node import config_store, sysinfo
from node import config_values as cv
from node.config_keys import (
    BY_NAME,
    KEPT_FOR_NEXT_START,
    KEYS,
    Effect,
    Facts,
    Get,
    GetAll,
    Invalid,
    Set,
    as_json,
    node_invalid,
    parse_command,
    refusal_of,
    stored_form,
)
from node.engine import Engine

log = logging.getLogger(__name__)

UNKNOWN = "Unknown command"
# This node's own figures (cache, index builds, catalog revision, values waiting for a restart): not a Milvus 1.1
# command (1.1 answers it "Unknown command"), so that get_system_info stays exactly 1.1's.
STATS = "mishards_stats"
# This node's worker processes (``--workers``), as ``{"workers": [address, ...]}``: each worker's own address
# (the advertised host and its own port); a single-process node answers its own address. Every worker answers
# the same; a proxy spreads sub-requests over them.
WORKERS = "mishards_workers"


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _machine_cpus() -> int:
    return os.cpu_count() or 1


class Commands:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        s = engine.settings
        self._lock = threading.Lock()
        self.path = s.set_config_file or config_store.default_path(s.storage_path, s.role, s.port, s.node_id)
        try:
            kept = config_store.read(self.path)
        except (OSError, ValueError) as exc:
            log.warning("config values kept by set_config could not be read (%s); starting without them", exc)
            kept = {}
        # Everything the file holds (rewritten whole on each set_config); keys with a setting of their own are
        # answered from the settings, which took the kept values at start unless the environment or a flag won.
        self._kept = {key: value for key, value in kept.items() if key in BY_NAME}
        self._answers = {key: value for key, value in self._kept.items() if not BY_NAME[key].setting}
        self._waiting_restart: set[str] = set()
        self.workers: tuple[str, ...] = ()  # set by the server once it listens
        # Whether set_config writes the config-values file: one worker of a node (its primary) writes it; the
        # others take the same values from the call sent on to them (node/worker_broadcast.py).
        self.keeps_values = True
        self._current: dict[str, Callable[[], str]] = {
            "cluster.enable": lambda: _bool(s.role != "standalone"),
            "cluster.role": lambda: "rw" if s.role == "standalone" else s.role,
            "general.meta_uri": lambda: engine.catalog._safe_uri() if s.meta_uri else "sqlite://:@:/",
            "network.bind.address": lambda: s.host,
            "network.bind.port": lambda: str(engine.bound_port),
            "storage.path": lambda: s.storage_path,
            "storage.auto_flush_interval": lambda: _number(engine.auto_flush_interval),
            "storage.file_cleanup_timeout": lambda: _number(s.file_cleanup_timeout),
            "cache.cache_size": lambda: s.cache_size,
            "cache.insert_buffer_size": lambda: s.insert_buffer_size,
            "engine_config.omp_thread_num": lambda: str(engine.omp_threads.count),
            "wal.enable": lambda: _bool(engine.writable),
            "wal.path": lambda: str(s.storage / "wal"),
            "logs.level": lambda: s.log_level.lower(),
        }

    def run(self, cmd: str) -> str:
        """The reply to ``cmd``; raises MilvusError for the refusals Milvus 1.1 answers in-band."""
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
            return sysinfo.system_info()
        if cmd == STATS:
            return json.dumps(self.stats(), sort_keys=True)
        if cmd == WORKERS:
            return json.dumps({"workers": list(self.workers)})
        if cmd[:10] in ("get_config", "set_config"):
            return self.config(cmd)
        if is_user_command(cmd):  # user management: the writer writes the catalog (a read node refuses)
            self.engine.require_writable("user management")
            return user_admin.run(self.engine.catalog.engine, cmd)
        return UNKNOWN

    def stats(self) -> dict[str, object]:
        """Node state worth watching: cache use and hit rate, index builds, values waiting for a restart."""
        cache = self.engine.cache
        lookups = cache.hits + cache.misses
        builds = self.engine.builds
        return {
            "role": self.engine.settings.role,
            "cache_capacity_bytes": cache.capacity_bytes,
            "cache_used_bytes": cache.used_bytes,
            "cache_segments": len(cache),
            "cache_segment_ids": cache.segment_ids(),
            "cache_hits": cache.hits,
            "cache_misses": cache.misses,
            "cache_hit_rate": round(cache.hits / lookups, 4) if lookups else 0.0,
            "cache_evictions": cache.evictions,
            "index_builds_done": builds.built if builds else 0,
            "index_builds_failed": builds.failed if builds else 0,
            "catalog_revision": self.engine.snapshot().revision,
            "config_file": self.path,
            "restart_required": sorted(self._waiting_restart),
        }

    # -- get_config / set_config -------------------------------------------------------------------------------

    def config(self, cmd: str) -> str:
        command = parse_command(cmd)
        if isinstance(command, Invalid):
            raise MilvusError(command.reason)
        if isinstance(command, GetAll):
            return as_json(self.values())
        if isinstance(command, Get):
            if command.key not in BY_NAME:
                refusal = node_invalid(command.key)
                raise MilvusError(refusal.reason, refusal.code)
            return self.value(command.key)
        assert isinstance(command, Set)
        self.set(command.key, command.value)
        return ""

    def value(self, key: str) -> str:
        if key in self._answers:
            return self._answers[key]
        current = self._current.get(key)
        return current() if current is not None else BY_NAME[key].default

    def values(self) -> dict[str, str]:
        return {key.name: self.value(key.name) for key in KEYS}

    def facts(self) -> Facts:
        total = sysinfo.physical_memory()
        return Facts(total_memory=total, memory_limit=min(total, memory_limit()), cpus=_machine_cpus(),
                     cache_bytes=self.engine.cache.capacity_bytes,
                     insert_buffer_bytes=self.engine.insert_buffer_bytes,
                     collection_exists=lambda name: self.engine.snapshot().collection(name) is not None,
                     collection_name_ok=_collection_name_ok)

    def set(self, key: str, value: str) -> None:
        """Check, keep for the next start, and apply at once what applies live (nothing changes when refused)."""
        with self._lock:
            refusal = refusal_of(key, value, self.facts())
            if refusal is not None:
                raise MilvusError(refusal.reason, refusal.code)
            entry = BY_NAME[key]
            if entry.effect not in KEPT_FOR_NEXT_START:
                return  # db_config: accepted, changes nothing (as in Milvus 1.1)
            stored = stored_form(key, value)
            kept = {**self._kept, key: stored}
            try:
                if self.keeps_values:
                    config_store.write(self.path, kept)
            except OSError as exc:
                raise MilvusError(f"Cannot keep {key} in {self.path}: {exc}") from None
            self._kept = kept
            self._answers[key] = stored
            if entry.effect is Effect.LIVE:
                self._apply(key, value)
            elif entry.effect is Effect.RESTART:
                self._waiting_restart.add(key)
                log.info("set_config %s = %s: kept in %s, takes effect at the next start", key, value, self.path)

    def _apply(self, key: str, value: str) -> None:
        engine = self.engine
        if key == "storage.auto_flush_interval":
            engine.set_auto_flush_interval(float(min(int(value), int(threading.TIMEOUT_MAX))))
        elif key == "cache.cache_size":
            engine.cache.resize(cv.parse_bytes(value))
        elif key == "cache.insert_buffer_size":
            engine.insert_buffer_bytes = cv.parse_bytes(value)
        elif key == "engine_config.omp_thread_num":
            engine.omp_threads.count = int(value) or cpu_count()  # 0: every CPU (1.1 leaves OpenMP its default)
        log.info("set_config %s = %s: in effect", key, value)


def _collection_name_ok(name: str) -> bool:
    try:
        validation.collection_name(name)
    except MilvusError:
        return False
    return True
