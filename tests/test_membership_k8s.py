"""Kubernetes membership through the official client, against a fake API server speaking list/watch.

The Kubernetes API cannot run here; ``tests.support.fake_k8s`` serves the same wire format over HTTP.
Every wait is a poll with a deadline.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from coordinator import k8s_pods
from coordinator.backoff import Backoff
from coordinator.k8s_pods import pod_member
from coordinator.membership import Member, create_provider, parse_membership_uri
from coordinator.membership_k8s import KubernetesMembership
from tests.support.fake_k8s import FakeKubernetes
from tests.support.waiting import free_port, poll_for

SELECTOR = "app=mishards"
WAIT = 5.0


def labels(role: str | None, app: str = "mishards", **extra: str) -> dict[str, str]:
    out = {"app": app, **extra}
    if role is not None:
        out["mishards.io/role"] = role
    return out


def member(name: str, ip: str, role: str, port: int = 19530) -> Member:
    return Member(node_id=name, address=f"{ip}:{port}", role=role)


class Recorder:
    """A subscriber that keeps every view it is given, and checks it runs on the provider's thread."""

    def __init__(self) -> None:
        self.views: list[tuple[Member, ...]] = []
        self.threads: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, view: tuple[Member, ...]) -> None:
        with self._lock:
            self.views.append(view)
            self.threads.add(threading.current_thread().name)

    def snapshot(self) -> list[tuple[Member, ...]]:
        with self._lock:
            return list(self.views)


Start = Callable[..., tuple[KubernetesMembership, Recorder]]


@pytest.fixture
def fake() -> Iterator[FakeKubernetes]:
    with FakeKubernetes() as server:
        yield server


@pytest.fixture
def start(fake: FakeKubernetes) -> Iterator[Start]:
    started: list[KubernetesMembership] = []

    def _start(uri: str = f"k8s://default?selector={SELECTOR}", **kwargs: Any) -> tuple[KubernetesMembership, Recorder]:
        options: dict[str, Any] = {"host": fake.url, "watch_timeout": 10, "backoff_initial": 0.02, "backoff_max": 0.2}
        options.update(kwargs)
        provider = create_provider(uri, **options)
        assert isinstance(provider, KubernetesMembership)
        recorder = Recorder()
        provider.subscribe(recorder)
        started.append(provider)
        provider.start()
        return provider, recorder

    yield _start
    for provider in started:
        provider.stop()


def wait_members(provider: KubernetesMembership, expected: tuple[Member, ...], what: str = "") -> None:
    poll_for(lambda: provider.members() == expected, WAIT, what=what or f"members {expected}")


def test_initial_list_keeps_only_running_ready_pods_with_ip_and_role(fake: FakeKubernetes, start: Start) -> None:
    fake.add_pod("ro-0", labels=labels("ro"), ip="10.0.0.10")
    fake.add_pod("rw-0", labels=labels("rw"), ip="10.0.0.11")
    fake.add_pod("sa-0", labels=labels("standalone"), ip="10.0.0.12")
    fake.add_pod("pending-0", labels=labels("ro"), ip=None, phase="Pending", ready=False)
    fake.add_pod("unready-0", labels=labels("ro"), ip="10.0.0.13", ready=False)
    fake.add_pod("noip-0", labels=labels("ro"), ip=None)
    fake.add_pod("done-0", labels=labels("ro"), ip="10.0.0.14", phase="Succeeded")
    fake.add_pod("norole-0", labels=labels(None), ip="10.0.0.15")
    fake.add_pod("badrole-0", labels=labels("leader"), ip="10.0.0.16")
    fake.add_pod("other-app", labels=labels("ro", app="other"), ip="10.0.0.17")
    fake.add_pod("ro-0", namespace="elsewhere", labels=labels("ro"), ip="10.9.0.1")

    provider, recorder = start()

    # start() returns once the first list is applied: no polling needed here.
    expected = (
        member("ro-0", "10.0.0.10", "ro"),
        member("rw-0", "10.0.0.11", "rw"),
        member("sa-0", "10.0.0.12", "standalone"),
    )
    assert provider.members() == expected
    assert recorder.snapshot() == [expected]
    assert recorder.threads == {"k8s-membership-default"}
    first = fake.requests[0]
    assert (first.namespace, first.watch, first.params["labelSelector"]) == ("default", False, SELECTOR)
    poll_for(lambda: fake.count(watch=True) >= 1, WAIT, what="the watch request")
    watch = next(r for r in fake.requests if r.watch)
    assert watch.params["resourceVersion"] == str(fake.resource_version)
    assert watch.params["timeoutSeconds"] == "10"


def test_port_role_label_and_namespace_from_uri(fake: FakeKubernetes, start: Start) -> None:
    fake.add_pod("a", namespace="prod", labels={"app": "mishards", "example.com/role": "ro"}, ip="10.1.0.1")
    fake.add_pod("b", namespace="prod", labels=labels("ro"), ip="10.1.0.2")  # the default label is not used
    fake.add_pod("c", namespace="prod", labels={"app": "mishards", "tier": "x", "example.com/role": "rw"}, ip="fd00::7")
    provider, _ = start(f"k8s://prod?selector={SELECTOR}&port=19600&role_label=example.com/role")
    assert provider.members() == (
        member("a", "10.1.0.1", "ro", port=19600),
        Member("c", "[fd00::7]:19600", "rw"),
    )


def test_own_namespace_from_the_service_account(
    fake: FakeKubernetes, start: Start, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    namespace_file = tmp_path / "namespace"
    namespace_file.write_text("team-a\n")
    monkeypatch.setattr(k8s_pods, "SERVICE_ACCOUNT_NAMESPACE", namespace_file)
    fake.add_pod("ro-0", namespace="team-a", labels=labels("ro"), ip="10.2.0.1")
    provider, _ = start(f"k8s://?selector={SELECTOR}")
    assert provider.namespace == "team-a"
    assert provider.members() == (member("ro-0", "10.2.0.1", "ro"),)

    monkeypatch.setattr(k8s_pods, "SERVICE_ACCOUNT_NAMESPACE", tmp_path / "missing")
    with pytest.raises(ValueError, match="name the namespace"):
        create_provider(f"k8s://?selector={SELECTOR}", host=fake.url).start()


def test_watch_events_update_members_and_notify_only_on_changes(fake: FakeKubernetes, start: Start) -> None:
    fake.add_pod("ro-0", labels=labels("ro"), ip="10.0.0.10")
    provider, recorder = start()
    v0 = (member("ro-0", "10.0.0.10", "ro"),)
    assert provider.members() == v0

    fake.add_pod("ro-1", labels=labels("ro"), ip=None, phase="Pending", ready=False)  # no change
    fake.modify_pod("ro-1", phase="Running", ip="10.0.0.21")  # running, not ready yet: no change
    fake.modify_pod("ro-1", ready=True)
    v1 = (*v0, member("ro-1", "10.0.0.21", "ro"))
    wait_members(provider, v1, "ro-1 to join once ready")

    fake.modify_pod("ro-0", annotations={"note": "irrelevant"})  # no change
    fake.modify_pod("ro-0", ready=False)
    v2 = (member("ro-1", "10.0.0.21", "ro"),)
    wait_members(provider, v2, "ro-0 to leave when not ready")

    fake.add_pod("rw-0", labels=labels("rw"), ip="10.0.0.30")
    v3 = (*v2, member("rw-0", "10.0.0.30", "rw"))
    wait_members(provider, v3, "rw-0 to join")

    fake.modify_pod("rw-0", labels=labels("rw", app="other"))  # leaves the selector: the API sends DELETED
    wait_members(provider, v2, "rw-0 to leave the selector")

    fake.modify_pod("ro-1", labels=labels("rw"))  # role change
    v5 = (member("ro-1", "10.0.0.21", "rw"),)
    wait_members(provider, v5, "ro-1 to become rw")

    fake.modify_pod("ro-1", ip="10.0.0.22")  # address change
    v6 = (member("ro-1", "10.0.0.22", "rw"),)
    wait_members(provider, v6, "the new address")

    fake.delete_pod("ro-0")  # not a member: no change
    fake.delete_pod("ro-1")
    wait_members(provider, (), "ro-1 to be deleted")

    fake.add_pod("ro-9", labels=labels("ro"), ip="10.0.0.99")
    v8 = (member("ro-9", "10.0.0.99", "ro"),)
    wait_members(provider, v8, "ro-9 to join")

    # Every event above was handled in order, so the no-change events provably caused no callback.
    assert recorder.snapshot() == [v0, v1, v2, v3, v2, v5, v6, (), v8]
    assert fake.count(watch=False) == 1, "no re-list without an error"


def test_410_error_event_relists_and_converges(fake: FakeKubernetes, start: Start) -> None:
    fake.add_pod("ro-0", labels=labels("ro"), ip="10.0.0.10")
    fake.add_pod("ro-1", labels=labels("ro"), ip="10.0.0.11")
    listed_at = fake.resource_version
    provider, recorder = start()
    poll_for(lambda: fake.open_watches() == 1, WAIT, what="an open watch")

    # Changes whose events were compacted away; the open watch then gets ERROR 410 Expired.
    fake.delete_pod("ro-1", silent=True)
    fake.modify_pod("ro-0", ready=False, silent=True)
    fake.add_pod("ro-2", labels=labels("ro"), ip="10.0.0.12", silent=True)
    version_at_expiry = fake.resource_version
    fake.expire()

    converged = (member("ro-2", "10.0.0.12", "ro"),)
    wait_members(provider, converged, "the view after the re-list")
    assert fake.count(watch=False) == 2
    assert recorder.snapshot() == [(member("ro-0", "10.0.0.10", "ro"), member("ro-1", "10.0.0.11", "ro")), converged]

    # The new watch starts from the re-list's resourceVersion and sees later events.
    fake.add_pod("ro-3", labels=labels("ro"), ip="10.0.0.13")
    wait_members(provider, (*converged, member("ro-3", "10.0.0.13", "ro")), "ro-3 after the re-list")
    kinds = [("watch" if r.watch else "list", r.params.get("resourceVersion")) for r in fake.requests]
    assert kinds == [("list", None), ("watch", str(listed_at)), ("list", None), ("watch", str(version_at_expiry))]


def test_410_http_response_to_a_watch_relists(fake: FakeKubernetes, start: Start) -> None:
    fake.add_pod("ro-0", labels=labels("ro"), ip="10.0.0.10")
    provider, recorder = start()
    poll_for(lambda: fake.open_watches() == 1, WAIT, what="an open watch")
    fake.fail_next("watch", 410)
    fake.add_pod("ro-1", labels=labels("ro"), ip="10.0.0.11", silent=True)
    fake.end_watches()  # the watch ends as on its timeout; resuming it is answered 410 Gone

    v0 = (member("ro-0", "10.0.0.10", "ro"),)
    v1 = (*v0, member("ro-1", "10.0.0.11", "ro"))
    wait_members(provider, v1)
    assert fake.count(watch=False) == 2
    assert recorder.snapshot() == [v0, v1]
    poll_for(lambda: fake.open_watches() == 1, WAIT, what="the watch to resume")


def test_other_errors_back_off_and_relist(fake: FakeKubernetes, start: Start) -> None:
    fake.add_pod("ro-0", labels=labels("ro"), ip="10.0.0.10")
    provider, recorder = start()
    poll_for(lambda: fake.open_watches() == 1, WAIT, what="an open watch")
    fake.fail_next("watch", 500, count=2)
    fake.fail_next("list", 503)
    fake.modify_pod("ro-0", ready=False, silent=True)
    fake.end_watches()

    wait_members(provider, (), "the view after errors")
    # watch 500 -> list 503 -> list ok -> watch 500 -> list ok -> watch ok
    poll_for(lambda: fake.count(watch=False) == 4 and fake.open_watches() == 1, WAIT, what="recovery")
    assert recorder.snapshot() == [(member("ro-0", "10.0.0.10", "ro"),), ()]
    fake.add_pod("ro-1", labels=labels("ro"), ip="10.0.0.11")
    wait_members(provider, (member("ro-1", "10.0.0.11", "ro"),), "events after recovery")


def test_stop_is_prompt_with_a_long_watch_open(fake: FakeKubernetes, start: Start) -> None:
    fake.add_pod("ro-0", labels=labels("ro"), ip="10.0.0.10")
    provider, _ = start(watch_timeout=120)
    poll_for(lambda: fake.open_watches() == 1, WAIT, what="an open watch")
    began = time.monotonic()
    provider.stop()
    assert time.monotonic() - began < 2.0
    assert not [t for t in threading.enumerate() if t.name == "k8s-membership-default"]
    poll_for(lambda: fake.open_watches() == 0, WAIT, what="the server to see the watch closed")
    provider.stop()  # idempotent


def test_unreachable_api_server(start: Start) -> None:
    provider, recorder = start(host=f"http://127.0.0.1:{free_port()}", sync_timeout=0.3)
    assert provider.members() == ()
    assert not provider.wait_synced(0)
    began = time.monotonic()
    provider.stop()
    assert time.monotonic() - began < 3.0
    assert recorder.snapshot() == []


def test_no_client_configuration_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    provider = KubernetesMembership(parse_membership_uri("k8s://ns?selector=a=b"), kubeconfig=str(tmp_path / "none"))
    with pytest.raises(RuntimeError, match="cannot configure the Kubernetes client"):
        provider.start()


def test_pod_member_pure() -> None:
    from kubernetes.client import V1ObjectMeta, V1Pod, V1PodCondition, V1PodStatus

    def pod(**meta: Any) -> V1Pod:
        return V1Pod(
            metadata=V1ObjectMeta(name="p", labels={"mishards.io/role": "ro"}, **meta),
            status=V1PodStatus(
                phase="Running", pod_ip="10.0.0.1", conditions=[V1PodCondition(type="Ready", status="True")]
            ),
        )

    assert pod_member(pod(), 19530, "mishards.io/role") == member("p", "10.0.0.1", "ro")
    terminating = pod(deletion_timestamp="2024-01-01T00:00:00Z")
    assert pod_member(terminating, 19530, "mishards.io/role") is None
    no_conditions = V1Pod(metadata=V1ObjectMeta(name="p"), status=V1PodStatus(phase="Running", pod_ip="10.0.0.1"))
    assert pod_member(no_conditions, 19530, "mishards.io/role") is None
    assert pod_member(V1Pod(metadata=V1ObjectMeta(name="p")), 19530, "mishards.io/role") is None


def test_backoff_is_capped_and_jittered() -> None:
    import random

    backoff = Backoff(0.1, 1.0, random.Random(7))
    delays = [backoff.next() for _ in range(8)]
    assert 0.05 <= delays[0] <= 0.1
    assert all(0.5 <= d <= 1.0 for d in delays[4:])
    backoff.reset()
    assert backoff.next() <= 0.1
    with pytest.raises(ValueError):
        Backoff(0, 1)
