"""Membership URIs, the provider registry, the static provider, and the writer/readers helpers."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from coordinator import membership
from coordinator.membership import (
    Member,
    MembershipConfig,
    MembershipProvider,
    StaticMembership,
    create_provider,
    parse_membership_uri,
    readers,
    register_provider,
    registered_schemes,
    writer,
)
from coordinator.membership_uri import DEFAULT_ETCD_PREFIX, DEFAULT_K8S_PORT, DEFAULT_ROLE_LABEL

# --- static:// -------------------------------------------------------------------------------------------


def test_static_uri_members_sorted_by_node_id() -> None:
    config = parse_membership_uri("static://node-b:19531=ro,node-a:19530=rw, 10.0.0.7:19532=standalone")
    assert config.scheme == "static"
    assert config.members == (
        Member("10.0.0.7:19532", "10.0.0.7:19532", "standalone"),
        Member("node-a:19530", "node-a:19530", "rw"),
        Member("node-b:19531", "node-b:19531", "ro"),
    )
    assert all(m.state == "ready" for m in config.members)


def test_static_uri_ipv6_and_single_member() -> None:
    config = parse_membership_uri("static://[::1]:19530=ro")
    assert config.members == (Member("[::1]:19530", "[::1]:19530", "ro"),)


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("static://", "lists no members"),
        ("static://a:1=rw,", "empty member entry"),
        ("static://a:1=rw,,b:2=ro", "empty member entry"),
        ("static://a:1", "has no role"),
        ("static://a:1=writer", "unknown role 'writer'"),
        ("static://a=ro", "missing port"),
        ("static://a:0=ro", "expected 1-65535"),
        ("static://a:70000=ro", "expected 1-65535"),
        ("static://a:x=ro", "invalid port 'x'"),
        ("static://:19530=ro", "invalid host"),
        ("static://a b:1=ro", "invalid host"),
        ("static://[::1=ro", "unterminated"),
        ("static://a:1=ro,a:1=rw", "listed twice"),
        ("static://a:1=ro#x", "must not contain '#'"),
    ],
)
def test_static_uri_errors(uri: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_membership_uri(uri)


# --- k8s:// ----------------------------------------------------------------------------------------------


def test_k8s_uri_defaults() -> None:
    config = parse_membership_uri("k8s://mishards?selector=app=mishards,tier=node")
    assert config == MembershipConfig(
        scheme="k8s",
        uri="k8s://mishards?selector=app=mishards,tier=node",
        namespace="mishards",
        selector="app=mishards,tier=node",
        port=DEFAULT_K8S_PORT,
        role_label=DEFAULT_ROLE_LABEL,
    )
    assert DEFAULT_K8S_PORT == 19530 and DEFAULT_ROLE_LABEL == "mishards.io/role"


def test_k8s_uri_all_parameters_and_own_namespace() -> None:
    config = parse_membership_uri("k8s://prod-1?selector=app%3Dm&port=19600&role_label=example.com/node-role")
    assert (config.namespace, config.selector, config.port, config.role_label) == (
        "prod-1",
        "app=m",
        19600,
        "example.com/node-role",
    )
    assert parse_membership_uri("k8s://?selector=app=m").namespace == ""
    assert parse_membership_uri("k8s://?selector=app=m&role_label=role").role_label == "role"


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("k8s://ns", "needs a label selector"),
        ("k8s://ns?selector=", "needs a label selector"),
        ("k8s://Bad_NS?selector=a=b", "invalid Kubernetes namespace"),
        ("k8s://ns/sub?selector=a=b", "invalid Kubernetes namespace"),
        ("k8s://ns?selector=a=b&port=0", "expected 1-65535"),
        ("k8s://ns?selector=a=b&port=http", "invalid port"),
        ("k8s://ns?selector=a=b&role_label=bad label", "invalid role_label"),
        ("k8s://ns?selector=a=b&role_label=Bad_Prefix/role", "invalid role_label"),
        ("k8s://ns?selector=a=b&namespace=x", "unknown parameter 'namespace'"),
        ("k8s://ns?selector=a=b&selector=c=d", "given twice"),
        ("k8s://ns?selector", "malformed query"),
    ],
)
def test_k8s_uri_errors(uri: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_membership_uri(uri)


# --- etcd:// ---------------------------------------------------------------------------------------------


def test_etcd_uri() -> None:
    config = parse_membership_uri("etcd://etcd-0:2379,etcd-1:2380/mishards/prod/")
    assert config.scheme == "etcd"
    assert config.endpoints == (("etcd-0", 2379), ("etcd-1", 2380))
    assert config.prefix == "/mishards/prod"
    default = parse_membership_uri("etcd://127.0.0.1")
    assert default.endpoints == (("127.0.0.1", 2379),)
    assert default.prefix == DEFAULT_ETCD_PREFIX == "/mishards"


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("etcd:///prefix", "names no endpoint"),
        ("etcd://a:1,,b:2/p", "empty endpoint"),
        ("etcd://a:1,a:1/p", "listed twice"),
        ("etcd://a:99999/p", "expected 1-65535"),
        ("etcd://a:1/p?x=1", "unknown parameter .x."),
        ("etcd://a:1/p q", "invalid etcd key prefix"),
        ("etcd://a:1/p//q", "invalid etcd key prefix"),
    ],
)
def test_etcd_uri_errors(uri: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_membership_uri(uri)


# --- schemes and registry --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("", "empty membership URI"),
        ("   ", "empty membership URI"),
        ("node-a:19530=rw", "has no scheme"),
        ("consul://x", r"unknown membership scheme 'consul'.*\['etcd', 'k8s', 'static'\]"),
    ],
)
def test_scheme_errors(uri: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_membership_uri(uri)


def test_scheme_is_case_insensitive() -> None:
    assert parse_membership_uri("STATIC://a:1=ro").scheme == "static"


@pytest.fixture
def registry() -> Iterator[None]:
    saved = dict(membership._REGISTRY)
    yield
    membership._REGISTRY.clear()
    membership._REGISTRY.update(saved)


@pytest.mark.usefixtures("registry")
def test_unregistered_scheme_is_a_clear_error() -> None:
    membership._REGISTRY.pop("etcd", None)
    assert registered_schemes() == ("k8s", "static")
    with pytest.raises(
        ValueError, match=r"no membership provider is registered for scheme 'etcd'.*\['k8s', 'static'\]"
    ):
        create_provider("etcd://127.0.0.1:2379/mishards")


@pytest.mark.usefixtures("registry")
def test_register_provider_is_used_with_kwargs() -> None:
    seen: list[tuple[MembershipConfig, dict[str, object]]] = []

    def factory(config: MembershipConfig, **kwargs: object) -> MembershipProvider:
        seen.append((config, kwargs))
        return StaticMembership(parse_membership_uri("static://a:1=rw"))

    register_provider("etcd", factory)
    assert "etcd" in registered_schemes()
    provider = create_provider("etcd://e:2379/x", ttl=5)
    assert provider.members()[0].node_id == "a:1"
    assert seen[0][0].endpoints == (("e", 2379),) and seen[0][1] == {"ttl": 5}
    with pytest.raises(ValueError, match="unknown scheme 'zk'"):
        register_provider("zk", factory)


def test_create_static_and_k8s_providers_without_starting() -> None:
    assert isinstance(create_provider("static://a:1=rw"), StaticMembership)
    k8s = create_provider("k8s://ns?selector=app=m", host="http://127.0.0.1:1")
    assert type(k8s).__name__ == "KubernetesMembership"
    with pytest.raises(TypeError):
        create_provider("static://a:1=rw", host="x")


def test_membership_modules_do_not_import_kubernetes() -> None:
    code = (
        "import sys, coordinator.membership as m, coordinator.membership_k8s;"
        "m.create_provider('k8s://ns?selector=a=b');"
        "assert not [n for n in sys.modules if n.split('.')[0] == 'kubernetes'], 'kubernetes imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2], timeout=60)


# --- static provider -------------------------------------------------------------------------------------


def test_static_provider() -> None:
    provider: MembershipProvider = create_provider("static://b:2=ro,a:1=rw")
    calls: list[tuple[Member, ...]] = []
    provider.subscribe(calls.append)
    provider.start()
    provider.register(Member("c:3", "c:3", "ro"))  # no-op: static members come from config
    assert [m.node_id for m in provider.members()] == ["a:1", "b:2"]
    provider.unregister()
    provider.stop()
    provider.stop()
    assert [m.node_id for m in provider.members()] == ["a:1", "b:2"]
    assert calls == []


def test_static_provider_rejects_other_configs() -> None:
    with pytest.raises(ValueError, match="static://"):
        StaticMembership(parse_membership_uri("k8s://ns?selector=a=b"))


# --- helpers ---------------------------------------------------------------------------------------------


def m(node_id: str, role: str, state: str = "ready") -> Member:
    return Member(node_id, f"{node_id}:19530", role, state)


def test_writer() -> None:
    assert writer([]) is None
    assert writer([m("ro-1", "ro"), m("s", "standalone")]) is None
    assert writer([m("ro-1", "ro"), m("rw-1", "rw")]) == m("rw-1", "rw")
    # Several rw members: membership elects nobody, the first by node id is taken, whatever the order.
    assert writer([m("rw-b", "rw"), m("rw-a", "rw", "warming"), m("ro", "ro")]) == m("rw-a", "rw", "warming")


def test_readers() -> None:
    members = [m("ro-2", "ro"), m("rw", "rw"), m("ro-1", "ro"), m("ro-3", "ro", "warming"), m("s", "standalone")]
    assert readers(members) == (m("ro-1", "ro"), m("ro-2", "ro"))
    assert readers([]) == ()


def test_member_is_frozen_and_slotted() -> None:
    member = m("a", "ro")
    with pytest.raises(AttributeError):
        member.role = "rw"  # type: ignore[misc]
    assert not hasattr(member, "__dict__")
    assert Member("x", "x:1", "ro").state == "ready"
