"""Process lifecycle shared by the node and the proxy: start, wait for SIGTERM / SIGINT, drain."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from types import FrameType
from typing import Any

import yaml

from coordinator import parent_watch

log = logging.getLogger(__name__)


def serve_until_signalled(start: Callable[[], object], stop: Callable[[], None]) -> None:
    """Run ``start``, block until SIGTERM or SIGINT, then run ``stop`` (which drains)."""
    done = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d received: draining", signum)
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    start()
    done.wait()
    stop()


def write_ready_file(path: str, address: str, **extra: object) -> None:
    """Announce a serving process: ``{"address", "pid", ...}`` written atomically (tests and supervisors poll it)."""
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps({"address": address, "pid": os.getpid(), **extra}))
    os.replace(tmp, target)


def coerce_setting(settings_cls: type, name: str, raw: Any) -> Any:
    """Convert a raw config / environment value to the type of a settings dataclass field."""
    kind = {f.name: f.type for f in fields(settings_cls)}[name]
    if kind == "int":
        return int(raw)
    if kind == "float":
        return float(raw)
    return str(raw)


def settings_sources(config_file: str | None, section: str, env: Mapping[str, str], env_prefix: str,
                     known: set[str]) -> list[tuple[str, Mapping[str, Any]]]:
    """The settings a YAML config file (its ``section``, or the whole file) and the environment
    (``<env_prefix><NAME>`` of the ``known`` names) give, as ``(source, values)`` in increasing precedence."""
    found: list[tuple[str, Mapping[str, Any]]] = []
    if config_file:
        with open(config_file, encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
        values = data.get(section, data) if isinstance(data, dict) else None
        if not isinstance(values, dict):
            raise ValueError(f"{config_file}: expected a mapping of settings")
        found.append((config_file, values))
    found.append(("environment", {key[len(env_prefix):].lower(): value for key, value in env.items()
                                  if key.startswith(env_prefix) and key[len(env_prefix):].lower() in known}))
    return found


def run_command(prog: str, argv: Sequence[str], parse_args: Callable[[Sequence[str]], argparse.Namespace],
                load: Callable[[str | None, Mapping[str, str], Mapping[str, Any]], Any],
                serve: Callable[[Any], None]) -> int:
    """An entry point: parse the command line, load the settings (exit 2 on a bad one), configure logging
    once, watch the supervising process when there is one, serve until signalled."""
    args = parse_args(argv)
    overrides = {k: v for k, v in vars(args).items() if k != "config" and v is not None}
    try:
        settings = load(args.config, os.environ, overrides)
    except (ValueError, OSError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parent_watch.start_from_env(os.environ)  # under a supervisor: stop when it is gone
    serve(settings)
    return 0
