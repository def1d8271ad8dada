"""Process lifecycle shared by the node and the proxy: start, wait for SIGTERM / SIGINT, drain."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from types import FrameType
from typing import Any

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
