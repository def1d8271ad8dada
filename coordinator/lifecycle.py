"""Process lifecycle shared by the node and the proxy: start, wait for SIGTERM / SIGINT, drain."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType

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
