"""The checks of Milvus 1.1's ``set_config`` values: what each key accepts, and the reason and code of a refusal,
worded as 1.1 words them. Pure: a check takes the facts it compares with (:class:`Facts`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from coordinator.errors import ErrorCode
from node import config_values as cv

ILLEGAL = ErrorCode.ILLEGAL_ARGUMENT
UNEXPECTED = ErrorCode.UNEXPECTED_ERROR


@dataclass(frozen=True, slots=True)
class Refusal:
    code: ErrorCode
    reason: str


@dataclass(frozen=True, slots=True)
class Facts:
    """What some checks compare a value with."""

    total_memory: int  # the machine's memory (bytes)
    memory_limit: int  # the smaller of the machine's memory and the process's cgroup limit
    cpus: int
    cache_bytes: int  # the current cache.cache_size
    insert_buffer_bytes: int  # the current cache.insert_buffer_size
    collection_exists: Callable[[str], bool]
    collection_name_ok: Callable[[str], bool]


Check = Callable[[str, Facts], Refusal | None]


def accept(_value: str, _facts: Facts) -> Refusal | None:
    return None


def _bad(reason: str, code: ErrorCode = ILLEGAL) -> Refusal:
    return Refusal(code, reason)


def boolean(message: str) -> Check:
    def check(value: str, _facts: Facts) -> Refusal | None:
        return None if cv.is_bool(value) else _bad(message.format(value=value))
    return check


def natural(message: str) -> Check:
    def check(value: str, _facts: Facts) -> Refusal | None:
        return None if cv.is_natural(value) else _bad(message.format(value=value))
    return check


def port(name: str, what: str) -> Check:
    def check(value: str, _facts: Facts) -> Refusal | None:
        if not cv.is_natural(value):
            return _bad(f"Invalid {what}: {value}. Possible reason: {name} is not a number.")
        if not cv.port_in_range(value):
            return _bad(f"Invalid {what}: {value}. Possible reason: {name} is not in range (1024, 65535).")
        return None
    return check


def role(value: str, _facts: Facts) -> Refusal | None:
    return None if value in ("rw", "ro") else _bad("cluster.role is not one of rw and ro.")


def timezone(value: str, _facts: Facts) -> Refusal | None:
    problem = cv.timezone_problem(value)
    if not problem:
        return None
    return _bad(f"Invalid general.timezone: {value}", ILLEGAL if problem == "prefix" else UNEXPECTED)


def meta_uri(value: str, _facts: Facts) -> Refusal | None:
    if cv.is_meta_uri(value):
        return None
    return _bad(f"Invalid meta uri: {value}. Possible reason: general.meta_uri is invalid. The correct format "
                "should be like sqlite://:@:/ or mysql://root:123456@127.0.0.1:3306/milvus.")


def ipv4(message: str) -> Check:
    def check(value: str, _facts: Facts) -> Refusal | None:
        return None if cv.is_ipv4(value) else _bad(message.format(value=value))
    return check


def path(name: str) -> Check:
    def check(value: str, _facts: Facts) -> Refusal | None:
        if not value:
            return _bad(f"{name} is empty." if name == "storage.path" else f"{name} is empty!")
        return None if cv.is_storage_path(value) else _bad("Invalid file path")
    return check


def _bytes(value: str) -> tuple[int, Refusal | None]:
    try:
        return cv.parse_bytes(value), None
    except ValueError as exc:
        return 0, _bad(str(exc))


def cache_size(value: str, facts: Facts) -> Refusal | None:
    size, refusal = _bytes(value)
    if refusal is not None:
        return refusal
    if size <= 0:
        return _bad(f"Invalid cpu cache capacity: {value}. Possible reason: cache.cache_size is not a positive "
                    "integer.")
    if facts.memory_limit < facts.total_memory and size >= facts.memory_limit:
        return _bad(f"Invalid cpu cache size: {value}. Possible reason: cache.cache_size exceeds system cgroup "
                    "memory.")
    if size >= facts.total_memory:
        return _bad(f"Invalid cpu cache size: {value}. Possible reason: cache.cache_size exceeds system memory.")
    if size + facts.insert_buffer_bytes >= facts.total_memory:
        return _bad(f"Invalid cpu cache size: {value}. Possible reason: sum of cache.cache_size and "
                    "cache.insert_buffer_size exceeds system memory.")
    return None


def insert_buffer(value: str, facts: Facts) -> Refusal | None:
    size, refusal = _bytes(value)
    if refusal is not None:
        return refusal
    if size <= 0:
        return _bad(f"Invalid insert buffer size: {value}. Possible reason: cache.insert_buffer_size is not a "
                    "positive integer.")
    if size + facts.cache_bytes >= facts.total_memory:
        return _bad(f"Invalid insert buffer size: {value}. Possible reason: sum of cache.cache_size and "
                    "cache.insert_buffer_size exceeds system memory.")
    return None


def cache_threshold(value: str, _facts: Facts) -> Refusal | None:
    if cv.is_float(value) and 0.0 < cv.float_prefix(value) < 1.0:
        return None
    return _bad(f"Invalid cpu cache threshold: {value}. Possible reason: cache_config.cpu_cache_threshold is not "
                "in range (0.0, 1.0].")


def preload(value: str, facts: Facts) -> Refusal | None:
    if value in ("", "*"):
        return None
    names = value.split(",")
    for name in names:
        if not facts.collection_name_ok(name):
            return _bad(f"Invalid collection name: {name}")
        if not facts.collection_exists(name):
            return _bad(f"Collection {name} not exist", ErrorCode.COLLECTION_NOT_EXISTS)
    if len(set(names)) != len(names):
        return _bad("Invalid preload tables. Possible reason: cache.preload_collection contains duplicate "
                    "collection.")
    return None


def omp_threads(value: str, facts: Facts) -> Refusal | None:
    if not cv.is_natural(value):
        return _bad(f"Invalid omp thread num: {value}. Possible reason: engine_config.omp_thread_num is not a "
                    "positive integer.")
    if int(value) > facts.cpus:
        return _bad(f"Invalid omp thread num: {value}. Possible reason: engine_config.omp_thread_num exceeds "
                    "system cpu cores.")
    return None


def simd(value: str, _facts: Facts) -> Refusal | None:
    if value in ("avx512", "avx2", "sse", "auto"):
        return None
    return _bad("engine_config.simd_type is not one of avx512, avx2, sse and auto.")


def wal_buffer(value: str, _facts: Facts) -> Refusal | None:
    size, refusal = _bytes(value)
    if refusal is None and size >= 0:
        return None
    return _bad(f"Invalid wal buffer size: {value}. Possible reason: wal.buffer_size is not a positive integer.")


def json_config_path(value: str, _facts: Facts) -> Refusal | None:
    return _bad(f"Invalid wal config: {value}. Possible reason: tracing_config.json_config_path is not "
                "supported to configure.")


def log_level(value: str, _facts: Facts) -> Refusal | None:
    if not value:
        return _bad("logs.level is empty!")
    return None if cv.is_log_level(value) else _bad("Log level must be one of debug, info, warning, error and "
                                                      "fatal.")


def log_file_size(value: str, _facts: Facts) -> Refusal | None:
    size, refusal = _bytes(value)
    if refusal is not None:
        return _bad(f"Invalid max_log_file_size: {value}. Possible reason: logs.max_log_file_size is not a "
                    "positive integer.")
    if not 536870912 <= size <= 4294967296:
        return _bad(f"Invalid max_log_file_size: {value}. Possible reason: logs.max_log_file_size is not in range "
                    "[536870912, 4294967296].")
    return None


def log_rotate(value: str, _facts: Facts) -> Refusal | None:
    if not cv.is_natural(value):
        return _bad(f"Invalid log_rotate_num: {value}. Possible reason: logs.log_rotate_num is not a positive "
                    "integer.")
    if int(value) > 1024:
        return _bad(f"Invalid log_rotate_num: {value}. Possible reason: logs.log_rotate_num is not in range "
                    "[0, 1024].")
    return None
