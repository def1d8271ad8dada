"""Kubernetes membership: the Ready pods that match a label selector in one namespace.

A pod is a member while it is Running, its ``Ready`` condition is True, it has a pod IP, it is not being
deleted, and its role label (``mishards.io/role`` by default) is ``rw``, ``ro`` or ``standalone``. Its node id
is the pod name and its address ``podIP:port``. Only Ready pods are members, so a node that is still warming
its cache keeps its readiness probe failing and gets no traffic; every member is therefore ``ready``.

The provider lists the pods once, then watches from the list's resourceVersion in a daemon thread, with a
bounded server-side timeout per watch (the next watch resumes from the last resourceVersion seen). A watch
that expires (410 Gone, as an HTTP status or as an ERROR event) is answered by a fresh list, which replaces
the whole view; any other failure waits a capped, jittered backoff and re-lists. While the API server is
unreachable the last known view is kept. Subscribers are called only when the member set changes.

The official ``kubernetes`` client is imported when the provider starts, never when this module is imported
(it costs about a second). RBAC needed: get/list/watch on pods in the namespace.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from coordinator.backoff import Backoff
from coordinator.k8s_pods import describe_error, is_gone, own_namespace, pod_is_ready, pod_member, pod_role
from coordinator.members import ROLES, Member, MembershipCallback, sorted_members
from coordinator.membership import CallbackList
from coordinator.membership_uri import MembershipConfig

log = logging.getLogger(__name__)

_SHORT_WATCH = 1.0  # seconds; a watch ending sooner without any event counts as a failure to back off from


# ----------------------------------------------------------------------------------------------- provider


class KubernetesMembership:
    """Members from the Kubernetes API (see the module docstring).

    Args:
        config: a parsed ``k8s://`` URI.
        api_client: a ready ``kubernetes.client.ApiClient`` to use (tests, or callers with their own config).
        host: API server URL to talk to without credentials, e.g. ``http://127.0.0.1:8001`` (kubectl proxy,
            tests); ignored when ``api_client`` is given.
        kubeconfig, context: kubeconfig file and context to use instead of the in-cluster service account.
            Without them the in-cluster config is tried first, then the default kubeconfig.
        watch_timeout: server-side timeout of one watch request, in whole seconds.
        request_timeout: client-side timeout of a list request and of connecting, in seconds.
        sync_timeout: how long ``start`` waits for the first list before returning anyway.
        backoff_initial, backoff_max: backoff between retries after errors, in seconds.
    """

    def __init__(
        self,
        config: MembershipConfig,
        *,
        api_client: Any = None,
        host: str | None = None,
        kubeconfig: str | None = None,
        context: str | None = None,
        watch_timeout: int = 60,
        request_timeout: float = 10.0,
        sync_timeout: float = 10.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        if config.scheme != "k8s":
            raise ValueError(f"KubernetesMembership needs a k8s:// config, got {config.scheme}://")
        if isinstance(watch_timeout, bool) or not isinstance(watch_timeout, int) or watch_timeout < 1:
            raise ValueError(f"watch_timeout must be a whole number of seconds >= 1, got {watch_timeout!r}")
        if request_timeout <= 0 or sync_timeout < 0:
            raise ValueError("request_timeout must be > 0 and sync_timeout >= 0")
        self._config = config
        self._api_client = api_client
        self._host = host
        self._kubeconfig = kubeconfig
        self._context = context
        self._watch_timeout = watch_timeout
        self._request_timeout = float(request_timeout)
        self._sync_timeout = float(sync_timeout)
        self._backoff = Backoff(backoff_initial, backoff_max)

        self._namespace = config.namespace
        self._lock = threading.Lock()
        self._view: dict[str, Member] = {}
        self._members: tuple[Member, ...] = ()
        self._callbacks = CallbackList()
        self._bad_role_warned: set[str] = set()
        self._stopping = threading.Event()
        self._synced = threading.Event()
        self._thread: threading.Thread | None = None
        self._watch: Any = None
        self._progress = False
        self._api: Any = None
        self._owned_client: Any = None

    # -- MembershipProvider

    def start(self) -> None:
        """Connect, start the list/watch thread and wait up to ``sync_timeout`` for the first list.

        Raises:
            RuntimeError: when no Kubernetes client configuration can be found.
            ValueError: when the namespace is not given and this process does not run in a pod.
        """
        if self._thread is not None:
            return
        if not self._namespace:
            self._namespace = own_namespace()
        self._api = self._connect()
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name=f"k8s-membership-{self._namespace}", daemon=True)
        self._thread.start()
        if not self._synced.wait(self._sync_timeout):
            log.warning(
                "no pod list from the Kubernetes API within %.1fs (namespace %s); still trying in the background",
                self._sync_timeout,
                self._namespace,
            )

    def stop(self, timeout: float = 5.0) -> None:
        """Stop watching; returns within about ``timeout`` seconds (an open watch is cut at once)."""
        thread = self._thread
        if thread is None:
            return
        self._stopping.set()
        if thread is threading.current_thread():  # called from a subscriber: the loop ends when it returns
            return
        deadline = time.monotonic() + timeout
        while thread.is_alive() and time.monotonic() < deadline:
            watch = self._watch
            if watch is not None:
                watch.stop()  # shuts the socket down, so a watch blocked in a read returns now
            thread.join(0.05)
        self._thread = None
        if thread.is_alive():
            log.warning("Kubernetes membership thread still blocked in an API call after %.1fs; leaving it", timeout)
            return
        if self._owned_client is not None:
            self._owned_client.close()
            self._owned_client = None

    def members(self) -> tuple[Member, ...]:
        return self._members

    def subscribe(self, callback: MembershipCallback) -> None:
        self._callbacks.add(callback)

    def register(self, member: Member) -> None:
        """No-op: Kubernetes members are learnt from the API (a pod's readiness is its registration)."""

    def unregister(self) -> None:
        """No-op, as ``register``."""

    # -- extras

    @property
    def namespace(self) -> str:
        return self._namespace

    def wait_synced(self, timeout: float) -> bool:
        """Wait until the first pod list has been applied; False if that did not happen within ``timeout``."""
        return self._synced.wait(timeout)

    # -- client set-up (the only place the kubernetes package is imported)

    def _connect(self) -> Any:
        from kubernetes import client
        from kubernetes import config as kube_config

        if self._api_client is not None:
            return client.CoreV1Api(self._api_client)
        if self._host is not None:
            api_client = client.ApiClient(client.Configuration(host=self._host))
        else:
            configuration = client.Configuration()
            try:
                if self._kubeconfig is not None or self._context is not None:
                    raise kube_config.ConfigException("a kubeconfig was given")
                kube_config.load_incluster_config(client_configuration=configuration)
                source = "in-cluster service account"
            except kube_config.ConfigException as not_in_cluster:
                try:
                    kube_config.load_kube_config(
                        config_file=self._kubeconfig,
                        context=self._context,
                        client_configuration=configuration,
                        persist_config=False,
                    )
                except (kube_config.ConfigException, OSError) as exc:
                    raise RuntimeError(
                        f"cannot configure the Kubernetes client: in-cluster config unavailable ({not_in_cluster}) "
                        f"and no usable kubeconfig ({exc})"
                    ) from exc
                source = f"kubeconfig {self._kubeconfig or '(default)'}"
            log.info("Kubernetes membership: API %s from %s", configuration.host, source)
            api_client = client.ApiClient(configuration)
        self._owned_client = api_client
        return client.CoreV1Api(api_client)

    # -- the list/watch loop (provider thread)

    def _run(self) -> None:
        resource_version: str | None = None
        gone_in_a_row = 0
        while not self._stopping.is_set():
            self._progress = False
            began = time.monotonic()
            try:
                if resource_version is None:
                    resource_version = self._relist()
                resource_version = self._watch_once(resource_version)
            except Exception as exc:
                if self._stopping.is_set():
                    break
                resource_version = None
                if self._progress:
                    self._backoff.reset()
                    gone_in_a_row = 0
                if is_gone(exc):
                    gone_in_a_row += 1
                    if gone_in_a_row == 1:
                        log.info("pod watch in %s expired (410 Gone); re-listing", self._namespace)
                        continue
                delay = self._backoff.next()
                log.warning(
                    "pod list/watch in %s failed (%s); re-listing in %.2fs", self._namespace, describe_error(exc), delay
                )
                self._stopping.wait(delay)
                continue
            gone_in_a_row = 0
            if self._progress or time.monotonic() - began >= _SHORT_WATCH:
                self._backoff.reset()
            else:  # a watch the server ended at once with nothing in it: do not hammer the API server
                self._stopping.wait(self._backoff.next())
        log.debug("Kubernetes membership for %s stopped", self._namespace)

    def _relist(self) -> str:
        pods = self._api.list_namespaced_pod(
            self._namespace, label_selector=self._config.selector, _request_timeout=self._request_timeout
        )
        view: dict[str, Member] = {}
        for pod in pods.items or ():
            member = self._member(pod)
            if member is not None:
                view[member.node_id] = member
        self._replace(view)
        self._synced.set()
        resource_version = pods.metadata.resource_version if pods.metadata is not None else None
        if not resource_version:
            raise RuntimeError("the pod list carries no metadata.resourceVersion to watch from")
        log.debug("listed %d pods in %s at version %s", len(pods.items or ()), self._namespace, resource_version)
        return str(resource_version)

    def _watch_once(self, resource_version: str) -> str:
        """One bounded watch from ``resource_version``; returns the last resourceVersion seen."""
        from kubernetes import watch

        self._watch = watch.Watch()
        stream: Any = None
        try:
            if self._stopping.is_set():
                return resource_version
            stream = self._watch.stream(
                self._api.list_namespaced_pod,
                self._namespace,
                label_selector=self._config.selector,
                resource_version=resource_version,
                timeout_seconds=self._watch_timeout,
                allow_watch_bookmarks=True,
                _request_timeout=(self._request_timeout, self._watch_timeout + self._request_timeout),
            )
            for event in stream:
                if self._stopping.is_set():
                    break
                resource_version = self._handle(event) or resource_version
                self._progress = True
        finally:
            self._watch = None
            if stream is not None:
                stream.close()  # releases the connection when the loop broke out early
        return resource_version

    def _handle(self, event: dict[str, Any]) -> str | None:
        """Apply one watch event; returns its resourceVersion (None if it has none)."""
        kind = event.get("type")
        if kind == "BOOKMARK":
            raw = event.get("raw_object") or {}
            version = (raw.get("metadata") or {}).get("resourceVersion")
            return str(version) if version else None
        metadata = getattr(event.get("object"), "metadata", None)
        if metadata is None or not metadata.name:
            log.debug("ignoring a %s watch event without a pod name", kind)
            return None
        if kind == "DELETED":
            self._update(metadata.name, None)
        elif kind in ("ADDED", "MODIFIED"):
            self._update(metadata.name, self._member(event["object"]))
        else:
            log.debug("ignoring watch event of type %r", kind)
        version = metadata.resource_version
        return str(version) if version else None

    def _member(self, pod: Any) -> Member | None:
        member = pod_member(pod, self._config.port, self._config.role_label)
        name = pod.metadata.name if pod.metadata is not None else None
        bad_role = member is None and pod_is_ready(pod) and pod_role(pod, self._config.role_label) is None
        if bad_role and name and name not in self._bad_role_warned:
            self._bad_role_warned.add(name)
            role = (pod.metadata.labels or {}).get(self._config.role_label)
            log.warning(
                "pod %s matches %r but its label %s=%r is not one of %s; not a member",
                name,
                self._config.selector,
                self._config.role_label,
                role,
                ROLES,
            )
        return member

    # -- the view

    def _update(self, name: str, member: Member | None) -> None:
        with self._lock:
            if self._view.get(name) == member:
                return
            if member is None:
                del self._view[name]
            else:
                self._view[name] = member
            view = sorted_members(self._view.values())
            self._members = view
        self._changed(view)

    def _replace(self, members: dict[str, Member]) -> None:
        with self._lock:
            view = sorted_members(members.values())
            self._view = dict(members)
            if view == self._members:
                return
            self._members = view
        self._changed(view)

    def _changed(self, view: tuple[Member, ...]) -> None:
        log.info("members in %s: %s", self._namespace, ", ".join(f"{m.node_id}={m.role}@{m.address}" for m in view))
        self._callbacks.notify(view)
