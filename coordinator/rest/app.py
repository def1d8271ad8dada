"""The ASGI application of the REST API: routing, bodies, CORS, errors, metrics and traces.

Requests are matched by Milvus 1.1's rules (:mod:`coordinator.rest.routes`); their bodies are read up to the
process's message-size limit (a larger ``Content-Length`` is refused before a byte is read) and admitted
against a budget of body bytes in flight; the endpoint then runs in a bounded thread pool, never on the event
loop, because the calls it makes block (the servicer or the forwarder, as for gRPC). Every error is Milvus
1.1's ``{"message", "code"}`` object, also for paths that do not exist (404) and for failures of the server
itself (500).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any

from coordinator.rest import api_collections, api_hybrid, api_system, api_vectors, openapi
from coordinator.rest.backend import Aborted, Backend, Caller, serving
from coordinator.rest.codes import CallFailed, RestError, WebCode, http_status, web_code
from coordinator.rest.paging import parse_query
from coordinator.rest.replies import CORS_HEADERS, Reply, Request, status_body
from coordinator.rest.routes import Match, known_path, match

if TYPE_CHECKING:
    from coordinator.rest.metrics import RestMetrics
    from coordinator.tracing import Tracing

log = logging.getLogger(__name__)

Endpoint = Callable[[Backend, Request], Reply]
ENDPOINTS: dict[str, Endpoint] = {
    "root": api_system.root, "state": api_system.state, "devices": api_system.devices,
    "get_advanced": api_system.get_advanced, "set_advanced": api_system.set_advanced,
    "system_info": api_system.system_info, "system_op": api_system.system_op,
    "create_collection": api_collections.create_collection, "list_collections": api_collections.list_collections,
    "get_collection": api_collections.get_collection, "drop_collection": api_collections.drop_collection,
    "create_index": api_collections.create_index, "get_index": api_collections.get_index,
    "drop_index": api_collections.drop_index, "create_partition": api_collections.create_partition,
    "list_partitions": api_collections.list_partitions, "drop_partition": api_collections.drop_partition,
    "list_segments": api_collections.list_segments, "segment_data": api_collections.segment_data,
    "get_vectors": api_vectors.get_vectors, "insert": api_vectors.insert,
    "search_or_delete": api_vectors.search_or_delete,
    "openapi": openapi.document_endpoint, "docs": openapi.docs_endpoint,
    **api_hybrid.ENDPOINTS,
}
NO_MAPPING = "Current url has no mapping"
BUSY_WAIT_SECONDS = 30.0


class BodyTooLarge(Exception):
    pass


class BodyBudget:
    """Bytes of request bodies in flight: a body waits until it fits (one alone always fits), so that parsing
    many large bodies at once cannot exhaust the process's memory."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._changed: asyncio.Condition | None = None

    def _condition(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    async def acquire(self, size: int, timeout: float) -> bool:
        changed = self._condition()
        async with changed:
            try:
                await asyncio.wait_for(changed.wait_for(lambda: self.used == 0 or self.used + size <= self.limit),
                                       timeout)
            except TimeoutError:
                return False
            self.used += size
            return True

    async def release(self, size: int) -> None:
        changed = self._condition()
        async with changed:
            self.used -= size
            changed.notify_all()


def client_address(scope: Mapping[str, Any]) -> str:
    """The HTTP client's address as gRPC names a peer (``ipv4:HOST:PORT``), for audit lines."""
    client = scope.get("client")
    if not client:
        return "rest"
    host, port = client[0], client[1]
    return f"ipv6:[{host}]:{port}" if ":" in str(host) else f"ipv4:{host}:{port}"


def error_reply(code: int, message: str, status: int) -> Reply:
    return Reply(status, status_body(code, message))


def run_endpoint(backend: Backend, found: Match, query: Mapping[str, str], body: bytes) -> Reply:
    """One request, start to end, as Milvus 1.1 answers it (blocking: runs in the request pool)."""
    route = found.route
    request = Request(route, found.params, query, body)
    try:
        return ENDPOINTS[route.name](backend, request)
    except RestError as exc:
        return error_reply(exc.code, exc.message, exc.http_status)
    except CallFailed as exc:
        code = web_code(exc.code)
        return error_reply(code, exc.reason, http_status(code, route.success, route.not_found))
    except Aborted as exc:
        return error_reply(1, exc.details or str(exc.code), 400)
    except Exception as exc:  # never a text page: the client gets a status object
        log.exception("REST %s failed", route.label)
        return error_reply(1, f"Internal error: {exc}", 500)


class RestApp:
    """The ASGI callable. ``executor`` runs the endpoints; ``max_body`` bounds one body and the bodies in
    flight together."""

    def __init__(self, backend: Backend, executor: Executor, max_body: int, metrics: RestMetrics | None = None,
                 tracing: Tracing | None = None) -> None:
        self.backend = backend
        self.executor = executor
        self.max_body = max_body
        self.budget = BodyBudget(max_body)
        self.metrics = metrics
        self.tracing = tracing

    async def __call__(self, scope: dict[str, Any], receive: Callable[[], Awaitable[dict[str, Any]]],
                       send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        label, reply = await self._serve(scope, receive)
        await self._send(send, reply)
        if self.metrics is not None:
            self.metrics.observe(label, reply.status, time.perf_counter() - started)

    async def _serve(self, scope: dict[str, Any],
                     receive: Callable[[], Awaitable[dict[str, Any]]]) -> tuple[str, Reply]:
        method = scope["method"]
        raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1").partition("?")[0]
        if method == "OPTIONS":
            return "OPTIONS", Reply(204) if known_path(raw_path) else error_reply(WebCode.UNKNOWN_PATH, NO_MAPPING, 404)
        found = match(method, raw_path)
        if found is None:
            return "unmatched", error_reply(WebCode.UNKNOWN_PATH, NO_MAPPING, 404)
        label = found.route.label
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}
        declared = headers.get("content-length", "")
        size = int(declared) if declared.isdigit() else 0
        if size > self.max_body:
            return label, self._too_large(size)
        if not await self.budget.acquire(size, BUSY_WAIT_SECONDS):
            return label, error_reply(1, "Server busy: too many large request bodies in flight; retry later", 503)
        try:
            try:
                body = await self._read_body(receive)
            except BodyTooLarge:
                return label, self._too_large(None)
            query = parse_query(scope.get("query_string", b""))
            loop = asyncio.get_running_loop()
            reply = await loop.run_in_executor(self.executor, self._run, found, query, body, headers,
                                               client_address(scope))
            return label, reply
        finally:
            await self.budget.release(size)

    def _too_large(self, size: int | None) -> Reply:
        what = f"of {size} bytes " if size is not None else ""
        return error_reply(WebCode.ILLEGAL_BODY,
                           f"The request body {what}exceeds the limit of {self.max_body} bytes", 413)

    async def _read_body(self, receive: Callable[[], Awaitable[dict[str, Any]]]) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return b""
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > self.max_body:
                raise BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    def _run(self, found: Match, query: Mapping[str, str], body: bytes, headers: Mapping[str, str],
             peer: str = "rest") -> Reply:
        with serving(Caller(headers.get("authorization"), peer)):
            return self._traced(found, query, body, headers)

    def _traced(self, found: Match, query: Mapping[str, str], body: bytes, headers: Mapping[str, str]) -> Reply:
        if self.tracing is None:
            return run_endpoint(self.backend, found, query, body)
        with self.tracing.http_server(found.route.label, headers) as span:
            reply = run_endpoint(self.backend, found, query, body)
            self.tracing.end_http(span, reply.status, reply.attributes)
            return reply

    @staticmethod
    async def _send(send: Callable[[dict[str, Any]], Awaitable[None]], reply: Reply) -> None:
        headers = list(CORS_HEADERS)
        body = reply.body if reply.status != 204 else b""
        if body:
            headers.append((b"content-type", reply.content_type.encode()))
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
