"""A supervised process never outlives its supervisor.

Two mechanisms, set up by the supervisor (``mishards up``) when it starts a child:

- ``die_with_parent``: run in the child between fork and exec, it asks Linux to send SIGTERM to the child when
  the thread that started it exits (``prctl(PR_SET_PDEATHSIG)``); that thread is the supervisor's main thread.
- a pipe: the supervisor keeps the only write end, the child inherits the read end and names it in the
  environment (``MISHARDS_PARENT_FD``). :func:`start_from_env`, run by every entry point, watches it in a
  thread: reading returns end-of-file once the supervisor is gone, however it went (kill -9 included, and where
  PDEATHSIG does not apply: another thread started the child, or another OS). The child then drains as on
  SIGTERM, and exits at once if draining takes longer than ``GRACE_SECONDS``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, MutableMapping

log = logging.getLogger(__name__)

ENV = "MISHARDS_PARENT_FD"
GRACE_SECONDS = 30.0
PR_SET_PDEATHSIG = 1


def _prctl() -> Callable[..., int] | None:
    """libc's prctl, looked up before any fork (nothing is loaded between fork and exec)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        fn: Callable[..., int] = libc.prctl
        return fn
    except (OSError, AttributeError):
        return None


def die_with_parent() -> Callable[[], None]:
    """A ``preexec_fn`` for ``subprocess.Popen``: SIGTERM to the child when the calling thread exits (Linux);
    if the parent is already gone when it runs, the child stops at once."""
    prctl = _prctl()
    parent = os.getpid()

    def preexec() -> None:
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the request took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


def watch(fd: int, on_gone: Callable[[], None]) -> threading.Thread:
    """Call ``on_gone`` (in a daemon thread) once ``fd``, a pipe's read end, reads end-of-file."""

    def run() -> None:
        try:
            while os.read(fd, 4096):
                pass  # nothing is ever written; data would only be ignored
        except OSError as exc:
            log.warning("cannot watch the supervising process (fd %d): %s", fd, exc)
            return
        on_gone()

    thread = threading.Thread(target=run, name="parent-watch", daemon=True)
    thread.start()
    return thread


def stop_self(grace: float = GRACE_SECONDS) -> None:
    """Drain as on SIGTERM; exit at once if that takes longer than ``grace`` seconds."""
    log.warning("the supervising process is gone: stopping")
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(grace)
    log.error("still running %.0f s after the supervisor went away: exiting now", grace)
    os._exit(1)


def start_from_env(env: MutableMapping[str, str]) -> threading.Thread | None:
    """Watch the pipe named by ``MISHARDS_PARENT_FD`` when set (and unset it: children of this process do not
    inherit the pipe)."""
    raw = env.pop(ENV, "")
    if not raw.isdigit():
        return None
    return watch(int(raw), stop_self)
