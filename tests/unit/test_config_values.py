"""How Milvus 1.1's server config values are read: sizes, natural numbers, booleans, addresses, paths, URIs."""

from __future__ import annotations

import pytest

from node import config_values as cv


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1073741824", 1 << 30),
        ("4GB", 4 << 30),
        ("4gb", 4 << 30),
        ("4G", 4 << 30),
        ("4g", 4 << 30),
        ("512MB", 512 << 20),
        ("512m", 512 << 20),
        ("64KB", 64 << 10),
        ("64k", 64 << 10),
        ("10b", 10),
        ("10B", 10),
        ("10bb", 10),
        ("1.5GB", 3 << 29),
        ("1.5", 1),
        ("", 0),
        ("-1", -1),
        ("-2GB", -(2 << 30)),
        (" 4G", 4 << 30),
    ],
)
def test_parse_bytes(text: str, size: int) -> None:
    assert cv.parse_bytes(text) == size


@pytest.mark.parametrize("text", ["invalid", "lots", "4TB", "4X", "4XB"])
def test_parse_bytes_needs_a_known_unit(text: str) -> None:
    with pytest.raises(ValueError, match=r"should specify the units\.The postfix should be one of the `b` `k`"):
        cv.parse_bytes(text)


@pytest.mark.parametrize("text", ["g", "GB", "abcG", "1+2", "1e3", "1.5.GB", "1,5GB", "99999999999999999999G", "--1"])
def test_parse_bytes_unparsable(text: str) -> None:
    with pytest.raises(ValueError, match=r"Unknown error happened on parse bytes\."):
        cv.parse_bytes(text)


@pytest.mark.parametrize(("text", "natural"), [
    ("0", True), ("1", True), ("1000", True), (str(cv.INT64_MAX), True), (str(cv.INT64_MAX + 1), False),
    ("-1", False), ("1.5", False), ("1+2", False), ("invalid", False), ("", False), (" 1", False), ("\u0661", False),
])
def test_is_natural(text: str, natural: bool) -> None:
    assert cv.is_natural(text) is natural


@pytest.mark.parametrize(("text", "valid", "true"), [
    ("true", True, True), ("TRUE", True, True), ("on", True, True), ("yes", True, True), ("1", True, True),
    ("false", True, False), ("Off", True, False), ("no", True, False), ("0", True, False), ("", True, False),
    ("maybe", False, False), ("2", False, False),
])
def test_booleans(text: str, valid: bool, true: bool) -> None:
    assert cv.is_bool(text) is valid
    assert cv.as_bool(text) is true


@pytest.mark.parametrize(("text", "valid"), [
    ("0.7", True), ("0.5abc", True), (".5", True), ("1e-1", True), ("-0.5", True), ("abc", False), ("", False),
    ("nan", False), ("inf", False),
])
def test_is_float(text: str, valid: bool) -> None:
    assert cv.is_float(text) is valid


@pytest.mark.parametrize(("value", "problem"), [
    ("UTC+8", ""), ("UTC-5", ""), ("UTC+08:30", ""), ("UTC-5:30", ""), ("UTC+23", ""), ("UTC+0", ""),
    ("UTC", "prefix"), ("GMT+8", "prefix"), ("utc+8", "prefix"), ("UT", "prefix"),
    ("UTC+24", "offset"), ("UTC8", "offset"), ("UTC+8:60", "offset"), ("UTC+99", "offset"),
])
def test_timezone(value: str, problem: str) -> None:
    assert cv.timezone_problem(value) == problem


@pytest.mark.parametrize(("text", "valid"), [
    ("0.0.0.0", True), ("127.0.0.1", True), ("255.255.255.255", True), ("256.0.0.1", False), ("localhost", False),
    ("::1", False), ("1.2.3", False), ("", False),
])
def test_ipv4(text: str, valid: bool) -> None:
    assert cv.is_ipv4(text) is valid


@pytest.mark.parametrize(("text", "valid"), [
    ("1025", True), ("19530", True), ("65534", True), ("1024", False), ("65535", False), ("0", False),
    ("-1", False), ("port", False),
])
def test_port_in_range(text: str, valid: bool) -> None:
    assert cv.port_in_range(text) is valid


@pytest.mark.parametrize(("path", "valid"), [
    ("/var/lib/milvus", True), ("/a", True), ("/a/", True), ("/a-/b", True), ("/a_b-c/d1", True),
    ("/a//a", False), ("/a--/a", False), ("/-a/a", False), ("/a@#/a", False), ("aaa/sfs", False), ("/", False),
    ("", False), ("/tmp/é", False), ("/a b", False),
])
def test_storage_path(path: str, valid: bool) -> None:
    assert cv.is_storage_path(path) is valid


def test_storage_path_is_quick_on_long_refused_paths() -> None:
    assert cv.is_storage_path("/" + "a" * 100_000 + "!") is False


@pytest.mark.parametrize(("uri", "valid"), [
    ("sqlite://:@:/", True), ("mysql://root:123456@127.0.0.1:3306/milvus", True),
    ("MySQL://u:p@db:/milvus", True), ("mysql+pymysql://u:p@db:3306/m?charset=utf8mb4", True),
    ("postgres://u:p@h:5432/db", False), ("mysql://u:p@h:port/db", False), ("sqlite:///tmp/x.db", False),
    ("nonsense", False),
])
def test_meta_uri(uri: str, valid: bool) -> None:
    assert cv.is_meta_uri(uri) is valid


@pytest.mark.parametrize(("uri", "setting"), [
    ("sqlite://:@:/", ""),
    ("mysql://root:123456@127.0.0.1:3306/milvus", "mysql+pymysql://root:123456@127.0.0.1:3306/milvus?charset=utf8mb4"),
    ("mysql+pymysql://u:p@db:3306/m?charset=utf8mb4", "mysql+pymysql://u:p@db:3306/m?charset=utf8mb4"),
])
def test_catalog_uri_of(uri: str, setting: str) -> None:
    assert cv.catalog_uri_of(uri) == setting
