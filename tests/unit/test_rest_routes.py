"""Routing and query parameters of the REST API: Milvus 1.1's path rules, pagination and status selection."""

from __future__ import annotations

import pytest

from coordinator.rest.codes import RestError, http_status, web_code
from coordinator.rest.paging import DEFAULT_PAGE_SIZE, Page, parse_page, parse_query
from coordinator.rest.routes import ROUTES, known_path, match, split_path


def _name(method: str, path: str) -> str | None:
    found = match(method, path)
    return found.route.name if found else None


def test_every_milvus_11_cpu_route_is_served_with_its_success_status() -> None:
    table = {(r.method, r.pattern): r.success for r in ROUTES}
    expected = {
        ("GET", "/"): 200, ("GET", "/state"): 200, ("GET", "/devices"): 200, ("GET", "/config/advanced"): 200,
        ("PUT", "/config/advanced"): 200, ("POST", "/collections"): 201, ("GET", "/collections"): 200,
        ("GET", "/collections/{collection_name}"): 200, ("DELETE", "/collections/{collection_name}"): 204,
        ("POST", "/collections/{collection_name}/indexes"): 201, ("GET", "/collections/{collection_name}/indexes"): 200,
        ("DELETE", "/collections/{collection_name}/indexes"): 204,
        ("POST", "/collections/{collection_name}/partitions"): 201,
        ("GET", "/collections/{collection_name}/partitions"): 200,
        ("DELETE", "/collections/{collection_name}/partitions"): 204,
        ("GET", "/collections/{collection_name}/segments"): 200,
        ("GET", "/collections/{collection_name}/segments/{segment_name}/{info}"): 200,
        ("GET", "/collections/{collection_name}/vectors"): 200, ("POST", "/collections/{collection_name}/vectors"): 201,
        ("PUT", "/collections/{collection_name}/vectors"): 200, ("GET", "/system/{info}"): 200,
        ("PUT", "/system/{op}"): 200,
    }
    for key, status in expected.items():
        assert table.get(key) == status, key


def test_paths_match_by_milvus_11_rules() -> None:
    assert _name("GET", "/collections/") == "list_collections"  # one trailing slash is tolerated
    assert _name("DELETE", "/collections/") is None  # a final variable may not be empty
    found = match("GET", "/collections//indexes")  # a middle one may: the name "" then fails validation
    assert found is not None and found.params == {"collection_name": ""}
    found = match("GET", "/collections/a%2Fb/indexes")  # an encoded slash stays inside the name
    assert found is not None and found.params == {"collection_name": "a/b"}
    found = match("GET", "/collections/a%20b")
    assert found is not None and found.params == {"collection_name": "a b"}
    assert _name("PATCH", "/state") is None and _name("POST", "/state") is None  # wrong method: no mapping
    assert _name("GET", "/collections/c/segments/7/ids") == "segment_data"
    assert _name("GET", "/nope") is None and _name("GET", "state") is None
    assert known_path("/collections/c/vectors") and known_path("/") and not known_path("/nope/x")
    assert split_path("/a//b/") == ["a", "", "b"]


def test_pagination_defaults_bounds_and_booleans() -> None:
    assert parse_page({}) == Page(0, DEFAULT_PAGE_SIZE, False)
    assert parse_page({"offset": "", "page_size": ""}) == Page(0, 10, False)
    assert parse_page({"offset": "3", "page_size": "0"}).of(list(range(10))) == []
    assert parse_page({"offset": "8", "page_size": "5"}).of(list(range(10))) == [8, 9]
    assert parse_page({"offset": "20"}).of(list(range(10))) == []
    assert parse_page({"all_required": "True", "page_size": "1"}).of([1, 2, 3]) == [1, 2, 3]
    assert parse_page({"all_required": "yes"}).everything is False
    for bad in ({"offset": "-1"}, {"page_size": "1.5"}, {"page_size": "x"}, {"offset": str(1 << 63)}):
        with pytest.raises(RestError) as err:
            parse_page(bad)
        assert err.value.code == 37
    with pytest.raises(RestError) as err:
        parse_page({"all_required": "maybe"})
    assert err.value.code == 37
    assert parse_page({"all_required": "maybe"}, strict_all=False).everything is False
    assert parse_query(b"ids=1,2&partition_tag=a%20b&ids=9") == {"ids": "1,2", "partition_tag": "a b"}


def test_codes_pick_the_http_status() -> None:
    assert web_code(9) == 9 and web_code(36) == 36 and web_code(37) == 1 and web_code(30001) == 1
    assert http_status(0, 201, True) == 201
    assert http_status(4, 200, True) == 404 and http_status(4, 200, False) == 400
    assert http_status(9, 204, True) == 400
