"""A fake Kubernetes API server for pods: list and watch over real HTTP, in the real wire format.

It stands in for the Kubernetes API, which cannot run here, so that the Kubernetes membership provider is
tested through the official client end to end (URL building, strict argument types, JSON decoding into
``V1Pod``, chunked watch streams, 410 handling). What it serves:

- ``GET /api/v1/namespaces/NS/pods?labelSelector=...``: a ``PodList`` whose ``metadata.resourceVersion`` is
  the current resourceVersion.
- the same with ``watch=true`` (or ``1``): a chunked stream of newline-delimited watch events
  ``{"type": "ADDED"|"MODIFIED"|"DELETED"|"ERROR", "object": {...}}`` for changes after ``resourceVersion``
  (all current pods as ADDED first when it is absent or "0"), ended after ``timeoutSeconds``. A change that
  makes a pod match or stop matching the selector is sent as ADDED or DELETED, as the API server does.
- label selectors made of ``k=v``, ``k==v``, ``k!=v``, ``k`` and ``!k`` terms joined by commas.

The test drives it: ``add_pod``/``modify_pod``/``delete_pod`` (``silent=True`` changes state without an event,
as if the event was compacted away: follow it with ``expire()``), ``expire()`` (open watches get the
``410 Expired`` ERROR event and watches from older resourceVersions are refused the same way),
``fail_next("watch"|"list", status)`` (an HTTP error response) and ``end_watches()`` (close open streams
as a server-side timeout does). ``requests`` records every request.
"""

from __future__ import annotations

import json
import logging
import re
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

from tests.support.k8s_objects import (
    GONE_STATUS,
    Request,
    StoredEvent,
    make_pod,
    parse_selector,
    selector_matches,
    status_object,
    translate_event,
)

__all__ = [  # the objects are built in tests.support.k8s_objects and importable from here too
    "GONE_STATUS",
    "FakeKubernetes",
    "Request",
    "make_pod",
    "parse_selector",
    "selector_matches",
    "status_object",
]

log = logging.getLogger(__name__)

_PODS_PATH = re.compile(r"^/api/v1/namespaces/([^/]+)/pods$")
_KEEP: Any = object()


@dataclass
class _Failure:
    status: int
    count: int


@dataclass
class _State:
    version: int = 0
    horizon: int = 0  # watches from a resourceVersion below this get 410 Gone
    pods: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    history: list[StoredEvent] = field(default_factory=list)
    gone_generation: int = 0
    end_generation: int = 0
    open_watches: int = 0
    closing: bool = False


class FakeKubernetes:
    """The fake API server (see the module docstring). Use as a context manager, or start()/stop()."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._state = _State()
        self._failures: dict[str, list[_Failure]] = {"list": [], "watch": []}
        self.requests: list[Request] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def start(self) -> FakeKubernetes:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="fake-k8s", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._cond:
            self._state.closing = True
            self._cond.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeKubernetes:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- driving the state

    def add_pod(self, name: str, *, namespace: str = "default", silent: bool = False, **kwargs: Any) -> None:
        """Create a pod (``kwargs`` as ``make_pod``)."""
        with self._cond:
            if (namespace, name) in self._state.pods:
                raise ValueError(f"pod {namespace}/{name} exists")
            self._store(namespace, name, make_pod(name, namespace=namespace, **kwargs), "ADDED", silent)

    def modify_pod(
        self,
        name: str,
        *,
        namespace: str = "default",
        labels: dict[str, str] = _KEEP,
        ip: str | None = _KEEP,
        phase: str = _KEEP,
        ready: bool = _KEEP,
        annotations: dict[str, str] = _KEEP,
        silent: bool = False,
    ) -> None:
        """Change some fields of a pod; anything not given keeps its value."""
        with self._cond:
            old = self._state.pods[(namespace, name)]
            status = old["status"]
            was_ready = any(c["type"] == "Ready" and c["status"] == "True" for c in status["conditions"])
            new = make_pod(
                name,
                namespace=namespace,
                labels=old["metadata"]["labels"] if labels is _KEEP else labels,
                ip=status.get("podIP") if ip is _KEEP else ip,
                phase=status["phase"] if phase is _KEEP else phase,
                ready=was_ready if ready is _KEEP else ready,
            )
            kept = old["metadata"].get("annotations", {})
            new["metadata"]["annotations"] = kept if annotations is _KEEP else annotations
            self._store(namespace, name, new, "MODIFIED", silent)

    def delete_pod(self, name: str, *, namespace: str = "default", silent: bool = False) -> None:
        with self._cond:
            old = self._state.pods[(namespace, name)]
            self._store(namespace, name, json.loads(json.dumps(old)), "DELETED", silent)

    def expire(self) -> None:
        """Compact the history: open watches get the 410 ERROR event; older resourceVersions get it too."""
        with self._cond:
            self._state.horizon = self._state.version
            self._state.history.clear()
            self._state.gone_generation += 1
            self._cond.notify_all()

    def end_watches(self) -> None:
        """End every open watch stream cleanly, as its server-side timeout would."""
        with self._cond:
            self._state.end_generation += 1
            self._cond.notify_all()

    def fail_next(self, kind: str, status: int, count: int = 1) -> None:
        """Answer the next ``count`` list or watch requests with HTTP ``status`` and a Status body."""
        if kind not in self._failures:
            raise ValueError(f"kind must be 'list' or 'watch', got {kind!r}")
        with self._cond:
            self._failures[kind].append(_Failure(status, count))

    # -- observing

    @property
    def resource_version(self) -> int:
        with self._cond:
            return self._state.version

    def open_watches(self) -> int:
        with self._cond:
            return self._state.open_watches

    def count(self, *, watch: bool) -> int:
        """How many list (``watch=False``) or watch (``watch=True``) requests arrived so far."""
        with self._cond:
            return sum(1 for r in self.requests if r.watch == watch)

    # -- internals (called with self._cond held)

    def _store(self, namespace: str, name: str, obj: dict[str, Any], kind: str, silent: bool) -> None:
        state = self._state
        state.version += 1
        obj["metadata"]["resourceVersion"] = str(state.version)
        old = state.pods.get((namespace, name))
        if kind == "DELETED":
            del state.pods[(namespace, name)]
        else:
            state.pods[(namespace, name)] = obj
        if not silent:
            state.history.append(StoredEvent(state.version, namespace, kind, old, obj))
        self._cond.notify_all()

    def _take_failure(self, kind: str) -> int | None:
        with self._cond:
            queue = self._failures[kind]
            if not queue:
                return None
            queue[0].count -= 1
            status = queue[0].status
            if queue[0].count <= 0:
                queue.pop(0)
            return status

    def _record(self, request: Request) -> None:
        with self._cond:
            self.requests.append(request)

    def _list(self, namespace: str, terms: list[tuple[str, str, str]]) -> dict[str, Any]:
        with self._cond:
            items = [
                pod
                for (ns, _), pod in sorted(self._state.pods.items())
                if ns == namespace and selector_matches(terms, pod["metadata"]["labels"])
            ]
            return {
                "kind": "PodList",
                "apiVersion": "v1",
                "metadata": {"resourceVersion": str(self._state.version)},
                "items": json.loads(json.dumps(items)),
            }

    def _watch(
        self,
        namespace: str,
        terms: list[tuple[str, str, str]],
        since: str | None,
        timeout: float,
        alive: Callable[[], bool],
    ) -> Iterator[dict[str, Any]]:
        """Watch events for one stream, ending with the stream (timeout, end_watches, expire, stop)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            state = self._state
            state.open_watches += 1
            gone_generation, end_generation = state.gone_generation, state.end_generation
            initial: list[dict[str, Any]] = []
            if since in (None, "", "0"):
                cursor = state.version
                initial = [
                    {"type": "ADDED", "object": pod}
                    for (ns, _), pod in sorted(state.pods.items())
                    if ns == namespace and selector_matches(terms, pod["metadata"]["labels"])
                ]
            else:
                cursor = int(cast(str, since))
            too_old = cursor < state.horizon
        try:
            yield from json.loads(json.dumps(initial))
            if too_old:
                yield {"type": "ERROR", "object": GONE_STATUS}
                return
            while True:
                with self._cond:
                    pending = [e for e in state.history if e.version > cursor and e.namespace == namespace]
                    gone = state.gone_generation != gone_generation
                    ended = state.end_generation != end_generation or state.closing
                    if not pending and not gone and not ended:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0 or not alive():
                            return
                        self._cond.wait(min(remaining, 0.1))
                        continue
                for event in pending:
                    cursor = event.version
                    translated = translate_event(event, terms)
                    if translated is not None:
                        yield json.loads(json.dumps(translated))
                if gone:
                    yield {"type": "ERROR", "object": GONE_STATUS}
                    return
                if ended:
                    return
        finally:
            with self._cond:
                state.open_watches -= 1


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeKubernetes


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("fake-k8s: " + format, *args)

    @property
    def fake(self) -> FakeKubernetes:
        return cast(_Server, self.server).fake

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        match = _PODS_PATH.match(url.path)
        if match is None:
            self._send_json(404, status_object(404, "NotFound", f"the server could not find {url.path}"))
            return
        namespace = match.group(1)
        params = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        watch = params.get("watch", "").lower() in ("true", "1")
        self.fake._record(Request(namespace, watch, params))
        try:
            terms = parse_selector(params.get("labelSelector", ""))
        except ValueError as exc:
            self._send_json(400, status_object(400, "BadRequest", f"unable to parse requirement: {exc}"))
            return
        failure = self.fake._take_failure("watch" if watch else "list")
        if failure is not None:
            reason = {410: "Expired", 403: "Forbidden", 500: "InternalError"}.get(failure, "Failure")
            message = "too old resource version" if failure == 410 else "injected failure"
            self._send_json(failure, status_object(failure, reason, message))
            return
        if not watch:
            self._send_json(200, self.fake._list(namespace, terms))
            return
        since = params.get("resourceVersion")
        if since not in (None, "", "0") and not cast(str, since).isdigit():
            self._send_json(400, status_object(400, "BadRequest", f"invalid resource version {since!r}"))
            return
        try:
            timeout = float(params.get("timeoutSeconds", "1800"))
        except ValueError:
            timeout = 1800.0
        self._stream(self.fake._watch(namespace, terms, since, timeout, self._client_alive))

    def _client_alive(self) -> bool:
        """False once the client closed or cut its end of the connection (it sends nothing while watching)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return not readable or self.connection.recv(1, socket.MSG_PEEK) != b""
        except OSError:
            return False

    def _send_json(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, events: Iterator[dict[str, Any]]) -> None:
        # A keep-alive chunked response, as the API server sends: the connection outlives the stream.
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            self.wfile.flush()
            for event in events:
                line = json.dumps(event).encode() + b"\n"
                self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError as exc:  # the client went away (or cut the socket to stop watching)
            log.debug("fake-k8s: watch client gone: %s", exc)
            self.close_connection = True
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()
