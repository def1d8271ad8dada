"""The routing table of Milvus 1.1's web server, and path matching by its rules.

Paths are matched segment by segment on the raw (still percent-encoded) path, each segment decoded after the
split, so that an encoded ``/`` inside a collection name stays inside that name. One trailing ``/`` is
tolerated; a variable in the middle may be empty (``/collections//indexes`` names the collection ``""``, which
then fails name validation), the last one may not. An unknown path and a known path with another method are
both "no mapping" (Milvus 1.1 never answers 405).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote


@dataclass(frozen=True, slots=True)
class Route:
    """One endpoint: ``name`` is its handler, ``success`` its HTTP status on success, ``not_found`` whether a
    missing collection answers 404 (else 400)."""

    name: str
    method: str
    pattern: str
    success: int = 200
    not_found: bool = False

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(self.pattern.strip("/").split("/")) if self.pattern != "/" else ()

    @property
    def label(self) -> str:
        """How metrics and traces name the route: ``GET /collections/{collection_name}``."""
        return f"{self.method} {self.pattern}"


C = "/collections/{collection_name}"
H = "/hybrid/collections"

ROUTES: tuple[Route, ...] = (
    Route("root", "GET", "/"),
    Route("state", "GET", "/state"),
    Route("devices", "GET", "/devices"),
    Route("get_advanced", "GET", "/config/advanced"),
    Route("set_advanced", "PUT", "/config/advanced"),
    Route("create_collection", "POST", "/collections", success=201),
    Route("list_collections", "GET", "/collections"),
    Route("get_collection", "GET", C, not_found=True),
    Route("drop_collection", "DELETE", C, success=204, not_found=True),
    Route("create_index", "POST", C + "/indexes", success=201, not_found=True),
    Route("get_index", "GET", C + "/indexes", not_found=True),
    Route("drop_index", "DELETE", C + "/indexes", success=204, not_found=True),
    Route("create_partition", "POST", C + "/partitions", success=201, not_found=True),
    Route("list_partitions", "GET", C + "/partitions", not_found=True),
    Route("drop_partition", "DELETE", C + "/partitions", success=204, not_found=True),
    Route("list_segments", "GET", C + "/segments", not_found=True),
    Route("segment_data", "GET", C + "/segments/{segment_name}/{info}", not_found=True),
    Route("get_vectors", "GET", C + "/vectors", not_found=True),
    Route("insert", "POST", C + "/vectors", success=201, not_found=True),
    Route("search_or_delete", "PUT", C + "/vectors", not_found=True),
    Route("system_info", "GET", "/system/{info}"),
    Route("system_op", "PUT", "/system/{op}"),
    # Beyond Milvus 1.1: hybrid collections (scalar fields, entities as JSON rows, searches filtered by the DSL).
    Route("hybrid_create", "POST", H, success=201),
    Route("hybrid_list", "GET", H),
    Route("hybrid_describe", "GET", H + "/{collection_name}", not_found=True),
    Route("hybrid_drop", "DELETE", H + "/{collection_name}", success=204, not_found=True),
    Route("hybrid_insert", "POST", H + "/{collection_name}/entities", success=201, not_found=True),
    Route("hybrid_get", "GET", H + "/{collection_name}/entities", not_found=True),
    Route("hybrid_delete", "DELETE", H + "/{collection_name}/entities", not_found=True),
    Route("hybrid_search", "POST", H + "/{collection_name}/search", not_found=True),
    # Beyond Milvus 1.1: the API's own description.
    Route("openapi", "GET", "/openapi.json"),
    Route("docs", "GET", "/docs"),
)


@dataclass(frozen=True, slots=True)
class Match:
    route: Route
    params: dict[str, str]


def split_path(raw_path: str) -> list[str] | None:
    """The decoded segments of a raw request path (one trailing ``/`` dropped), or None if it is not absolute."""
    if not raw_path.startswith("/"):
        return None
    body = raw_path[1:]
    if body.endswith("/"):
        body = body[:-1]
    if not body:
        return []
    return [unquote(part, errors="replace") for part in body.split("/")]


def _bind(parts: tuple[str, ...], segments: list[str]) -> dict[str, str] | None:
    if len(parts) != len(segments):
        return None
    params: dict[str, str] = {}
    for i, (part, seg) in enumerate(zip(parts, segments, strict=True)):
        if part.startswith("{"):
            if not seg and i == len(parts) - 1:
                return None  # a final variable must not be empty
            params[part[1:-1]] = seg
        elif part != seg:
            return None
    return params


def match(method: str, raw_path: str, routes: tuple[Route, ...] = ROUTES) -> Match | None:
    """The first route (in table order, as Milvus 1.1's router) of ``method`` whose pattern fits the path."""
    segments = split_path(raw_path)
    if segments is None:
        return None
    for route in routes:
        if route.method != method:
            continue
        params = _bind(route.parts, segments)
        if params is not None:
            return Match(route, params)
    return None


def known_path(raw_path: str, routes: tuple[Route, ...] = ROUTES) -> bool:
    """Whether any route, of any method, fits the path (``OPTIONS`` answers there)."""
    segments = split_path(raw_path)
    return segments is not None and any(_bind(r.parts, segments) is not None for r in routes)
