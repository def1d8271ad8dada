"""Where a node keeps the values ``set_config`` accepted, for its next start.

Milvus 1.1 writes every accepted ``set_config`` into its config file. A node here keeps them in a small YAML
file of its own (``{"cache.cache_size": "2GB", ...}``), by default in its storage folder under a name of its
own, since read nodes of a cluster share the storage folder. The settings loader reads it at start, above the
config file and below the environment and the command line.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

import yaml

log = logging.getLogger(__name__)

FOLDER = "node-config"
HEADER = "# Values accepted by Cmd set_config, read at the next start (a file of mishards node; edit with care).\n"


def identity(role: str, port: int, node_id: str) -> str:
    """A node's name for its file: its node id, else ``standalone``, else its role and port."""
    name = node_id or ("standalone" if role == "standalone" else f"{role}-{port}")
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name).lstrip(".") or "node"


def default_path(storage_path: str, role: str, port: int, node_id: str) -> str:
    return str(Path(storage_path) / FOLDER / f"{identity(role, port, node_id)}.yaml")


def read(path: str) -> dict[str, str]:
    """The kept values ({} when there are none). Raises ValueError for a file that is not such a mapping."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not YAML ({exc})") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise ValueError(f"{path}: expected a mapping of server config keys to values")
    return {key: "" if value is None else str(value) for key, value in data.items()}


def write(path: str, values: Mapping[str, str]) -> None:
    """Replace the file atomically (written to a temporary name, fsynced, renamed)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    body = yaml.safe_dump({key: str(value) for key, value in sorted(values.items())}, default_flow_style=False,
                          allow_unicode=True)
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(HEADER + body)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, target)
    try:
        fd = os.open(target.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
