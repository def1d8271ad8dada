"""Endpoints of the server itself: state, devices, configuration, commands and tasks.

Configuration and commands go through ``Cmd`` (``get_config`` / ``set_config`` and the other words), so the
REST API reads and changes exactly what a gRPC client does.
"""

from __future__ import annotations

import os
import re
from typing import Any

import orjson

from coordinator.rest import bodies
from coordinator.rest.backend import Backend, call
from coordinator.rest.codes import CallFailed, RestError, WebCode
from coordinator.rest.replies import OK_SORTED, Reply, Request, dumps, json_reply, ok_dto
from coordinator.tracing import COLLECTION
from milvus_wire import milvus_pb2

DEFAULT_BLAS_THRESHOLD = 1100
ADVANCED_KEYS = ("cpu_cache_capacity", "cache_insert_data", "use_blas_threshold")


def cmd(backend: Backend, text: str) -> str:
    return str(call(backend, "Cmd", milvus_pb2.Command(cmd=text)).string_reply)


def _optional_config(backend: Backend, key: str) -> str | None:
    """A config value, or None when the server has no such setting."""
    try:
        return cmd(backend, f"get_config {key}")
    except CallFailed:
        return None


def root(backend: Backend, req: Request) -> Reply:
    return Reply(200, b"Welcome to milvus", "text/plain; charset=utf-8")


def state(backend: Backend, req: Request) -> Reply:
    return Reply(200, b'{"message":"Success","code":0}')


def devices(backend: Backend, req: Request) -> Reply:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return json_reply({"cpu": {"memory": memory >> 30}, "gpus": {}})


def _leading_int(text: str) -> int:
    found = re.match(r"\s*(\d+)", text)
    return int(found.group(1)) if found else 0


def get_advanced(backend: Backend, req: Request) -> Reply:
    cache = _leading_int(cmd(backend, "get_config cache.cache_size"))
    insert_data = _optional_config(backend, "cache.cache_insert_data")
    blas = _optional_config(backend, "engine_config.use_blas_threshold")
    return json_reply({"cpu_cache_capacity": cache,
                       "cache_insert_data": (insert_data or "").lower() in ("1", "true"),
                       "use_blas_threshold": _leading_int(blas) if blas is not None else DEFAULT_BLAS_THRESHOLD})


def set_advanced(backend: Backend, req: Request) -> Reply:
    doc = bodies.parse_object(req.body)
    bodies.strict_keys(doc, ADVANCED_KEYS)
    for key in ADVANCED_KEYS:
        if key in doc and doc[key] is None:
            raise RestError(WebCode.BODY_FIELD_LOSS, f"Field '{key}' miss.")
    capacity = bodies.integer(doc, "cpu_cache_capacity", "Field 'cpu_cache_capacity' miss.", 4)
    insert_data = doc.get("cache_insert_data", False)
    if not isinstance(insert_data, bool):
        raise bodies.type_error("cache_insert_data", "a boolean", insert_data)
    blas = bodies.integer(doc, "use_blas_threshold", "Field 'use_blas_threshold' miss.", DEFAULT_BLAS_THRESHOLD)
    # The capacity is in GB, as GET /config/advanced reads it from cache.cache_size ("4GB" -> 4).
    cmd(backend, f"set_config cache.cache_size {capacity}GB")
    # Settings a server may not have (Mishards keeps no insert-data cache and no BLAS threshold) are skipped.
    if _optional_config(backend, "cache.cache_insert_data") is not None:
        cmd(backend, f"set_config cache.cache_insert_data {'true' if insert_data else 'false'}")
    if _optional_config(backend, "engine_config.use_blas_threshold") is not None:
        cmd(backend, f"set_config engine_config.use_blas_threshold {blas}")
    return ok_dto(200)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _section(value: Any) -> dict[str, Any] | None:
    """A section's entries: an object, or an object written as JSON text."""
    if isinstance(value, str) and value.startswith("{"):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            return None
    return value if isinstance(value, dict) else None


def config_sections(config: dict[str, Any]) -> dict[str, dict[str, str]]:
    """What ``get_config *`` answers as Milvus 1.1's config map ``{section: {key: "value"}}``: sections given as
    objects (or JSON text) are taken as they are; a flat ``section.key`` name splits at its first dot (the key
    may hold more dots, e.g. ``network`` / ``bind.address``). Values are strings."""
    out: dict[str, dict[str, str]] = {}
    for name, value in config.items():
        entries = _section(value)
        if entries is not None:
            out.setdefault(str(name), {}).update({str(k): _text(v) for k, v in entries.items()})
            continue
        section, _, key = str(name).partition(".")
        out.setdefault(section, {})[key] = _text(value)
    return out


def system_info(backend: Backend, req: Request) -> Reply:
    info = req.params["info"]
    if info == "config":
        flat = orjson.loads(cmd(backend, "get_config *") or "{}")
        return Reply(200, dumps({**config_sections(flat), "restart_required": False}))
    if info.startswith("set_config"):
        raise RestError(1, f"Invalid command: {info} (use PUT /system/config)")
    reply = cmd(backend, "get_system_info" if info == "info" else info)
    return Reply(200, dumps({"code": 0, "message": "OK", "reply": reply}))


def _scalar_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()  # numbers and booleans as JSON prints them


def _set_config(backend: Backend, doc: Any) -> Reply:
    if not isinstance(doc, dict):
        raise RestError(WebCode.ILLEGAL_BODY, "Payload must be a map")
    done = []
    for section, values in doc.items():
        if not isinstance(values, dict):
            raise RestError(WebCode.ILLEGAL_BODY, f"Config section '{section}' must be a map")
        for key, value in values.items():
            if value is None or isinstance(value, dict | list):
                raise RestError(WebCode.ILLEGAL_BODY, f"Config '{section}.{key}' must be a string, number or bool")
            text = f"set_config {section}.{key} {_scalar_text(value)}"
            cmd(backend, text)
            done.append(f"{text} successfully;")
    return Reply(200, dumps({"code": 0, "message": "".join(done), "restart_required": False}))


TASKS = ("load", "flush", "compact", "release")


def _task(backend: Backend, doc: Any) -> Reply:
    if not isinstance(doc, dict):
        raise RestError(WebCode.ILLEGAL_BODY, "Payload must be a map")
    task = next((t for t in TASKS if t in doc), None)
    if task is None:
        raise RestError(WebCode.ILLEGAL_BODY, "Unknown task: the body holds none of load, flush, compact, release")
    spec = doc[task]
    if not isinstance(spec, dict):
        raise bodies.type_error(task, "an object", spec)
    if task == "flush":
        names = spec.get("collection_names")
        if not isinstance(names, list):
            raise RestError(WebCode.BODY_FIELD_LOSS, 'Field "flush" must contains collection_names')
        call(backend, "Flush", milvus_pb2.FlushParam(collection_name_array=bodies.strings(names, "collection_names")))
        return Reply(200, OK_SORTED)
    name = spec.get("collection_name")
    if name is None:
        raise RestError(WebCode.BODY_FIELD_LOSS, f'Field "{task}" must contains collection_name')
    if not isinstance(name, str):
        if task == "compact":
            raise RestError(WebCode.BODY_FIELD_LOSS, 'Field "compact" must contains collection_name (a string)')
        raise bodies.type_error("collection_name", "a string", name)
    if task == "compact":
        call(backend, "Compact", milvus_pb2.CollectionName(collection_name=name))
    else:
        tags = bodies.strings(spec.get("partition_tags"), "partition_tags")
        call(backend, "PreloadCollection" if task == "load" else "ReleaseCollection",
             milvus_pb2.PreloadCollectionParam(collection_name=name, partition_tag_array=tags))
    return Reply(200, OK_SORTED, attributes={COLLECTION: name})


def system_op(backend: Backend, req: Request) -> Reply:
    if not req.body.strip():
        raise RestError(WebCode.BODY_FIELD_LOSS, "Payload is empty.")
    doc = bodies.parse_json(req.body)
    op = req.params["op"]
    if op == "task":
        return _task(backend, doc)
    if op == "config":
        return _set_config(backend, doc)
    raise RestError(WebCode.UNKNOWN_PATH, f"Unknown path: /system/{op}")
