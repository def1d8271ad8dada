"""The pure decisions of the multi-process mode (no network): how many workers, what a worker is told, which
calls a secondary serves or forwards, which channel a proxy's call takes, how worker metrics merge."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from coordinator.worker_metrics import merge_families
from coordinator.worker_pool import strip_flags
from coordinator.workers import (
    SECRET_HEADER,
    SPEC_FLAG,
    WorkerSpec,
    advertised_host,
    carries_secret,
    child_argv,
    own_ports,
    parse_cfs,
    parse_cpu_max,
    read_secret,
    specs,
    take_spec,
    worker_count,
    write_secret,
)
from milvus_wire import milvus_pb2
from mishards.settings import ProxySettings
from mishards.worker_channels import (
    RETRY_SECONDS,
    SERVICE,
    InFlight,
    SpreadChannel,
    WorkerDirectory,
    least_busy,
    parse_workers,
    spreads,
)
from node.settings import NodeSettings
from node.worker_broadcast import (
    SiblingAnswer,
    broadcasts,
    combined,
    marked_local,
    sibling_timeout,
    trusting_workers,
)
from node.worker_forward import DROPPED_HEADERS, call_timeout, forwarded_metadata, traced_call
from node.workers import served_locally, watch_only, worker_request_memory, workers_for


def test_worker_count_follows_the_setting_else_the_cpus_bounded_by_the_cgroup_quota() -> None:
    assert worker_count(3, cpus=16, quota=None) == 3
    assert worker_count(0, cpus=16, quota=None) == 16
    assert worker_count(0, cpus=16, quota=4.0) == 4
    assert worker_count(0, cpus=16, quota=1.5) == 2  # a fractional quota keeps the next worker partly busy
    assert worker_count(0, cpus=2, quota=8.0) == 2  # affinity bounds it too
    assert worker_count(0, cpus=1, quota=0.2) == 1


def test_the_workers_own_ports_are_free_ones_or_a_fixed_range_clear_of_the_other_ports() -> None:
    assert own_ports(0, 3) == [0, 0, 0]
    assert own_ports(19540, 3, (19530, 19121, 0, -1)) == [19540, 19541, 19542]
    assert own_ports(65534, 2) == [65534, 65535]
    with pytest.raises(ValueError, match="pass 65535"):
        own_ports(65535, 2)
    with pytest.raises(ValueError, match="holds port 19530"):
        own_ports(19529, 4, (19530,))

    def node(**values: Any) -> Any:
        return NodeSettings(**values)

    def proxy(**values: Any) -> Any:
        return ProxySettings(membership="static://127.0.0.1:19530=rw", **values)

    for settings in (node, proxy):
        assert settings(workers=2, worker_ports=19540).worker_ports == 19540
        assert settings(workers=0, worker_ports=65535).worker_ports == 65535  # the count is known only at start
        for bad in ({"worker_ports": -1}, {"worker_ports": 70000}, {"workers": 2, "worker_ports": 65535},
                    {"workers": 4, "worker_ports": 19528, "port": 19530},
                    {"workers": 2, "worker_ports": 9090, "metrics_port": 9091}):
            with pytest.raises(ValueError, match="worker_ports"):
                settings(**bad)
    with pytest.raises(ValueError, match="holds port 19121"):  # a standalone node's REST port by default
        NodeSettings(role="standalone", workers=2, worker_ports=19120)


def test_cgroup_quota_files_are_read_as_cpus() -> None:
    assert parse_cpu_max("max 100000\n") is None
    assert parse_cpu_max("150000 100000\n") == 1.5
    assert parse_cpu_max("garbage") is None
    assert parse_cfs("-1\n", "100000\n") is None
    assert parse_cfs("200000\n", "100000\n") == 2.0
    assert parse_cfs("x", "100000") is None


def test_a_writer_runs_as_one_process() -> None:
    with pytest.raises(ValueError, match="rw"):
        NodeSettings(role="rw", workers=2)
    assert workers_for(NodeSettings(role="rw", workers=0)) == 1
    assert workers_for(NodeSettings(role="ro", workers=3)) == 3
    with pytest.raises(ValueError, match="workers"):
        NodeSettings(workers=-1)


def test_the_admission_budget_is_the_nodes_shared_among_its_workers() -> None:
    assert worker_request_memory(NodeSettings(), 8 << 30, 2) == 1 << 30  # a quarter of 8 GB, halved
    assert worker_request_memory(NodeSettings(request_memory="4GB"), 8 << 30, 4) == 1 << 30
    assert worker_request_memory(NodeSettings(request_memory="256MB"), 8 << 30, 16) == 64 << 20


def test_each_worker_is_told_its_place_and_the_primary_is_reached_on_loopback() -> None:
    found = specs("0.0.0.0", "10.0.0.5:19530", 19530, [4001, 4002])
    assert [s.index for s in found] == [0, 1] and found[0].is_primary and not found[1].is_primary
    assert found[1].addresses == ("10.0.0.5:4001", "10.0.0.5:4002")
    assert found[1].primary == "127.0.0.1:4001"
    assert advertised_host("127.0.0.1", "") == "127.0.0.1"
    assert advertised_host("::", "") == "::1"
    assert specs("::1", "", 1, [2])[0].addresses == ("[::1]:2",)


def test_the_spec_travels_on_the_command_line_and_later_flags_win() -> None:
    spec = WorkerSpec(1, 2, 19530, 4002, "127.0.0.1:4001", ("h:4001", "h:4002"))
    argv = child_argv(["--role", "ro", "--port", "0"], spec, metrics=True, http_port=0)
    assert argv[:4] == ["--role", "ro", "--port", "0"]
    assert argv[argv.index("--workers") + 1] == "1" and argv[-4:-2] == ["--http-port", "0"]
    found, rest = take_spec(argv)
    assert found == spec and SPEC_FLAG not in rest
    assert rest[rest.index("--port", 4) + 1] == "19530"
    assert take_spec(["--x", f"{SPEC_FLAG}={spec.to_json()}"]) == (spec, ["--x"])
    assert strip_flags(["--ready-file", "r", "--port", "1", "--ready-file=q"], ["--ready-file"]) == ("--port", "1")


def test_a_standalone_secondary_serves_searches_and_forwards_everything_else() -> None:
    secondary = WorkerSpec(1, 2, 1, 2, "p", ("a", "b"))
    primary = WorkerSpec(0, 2, 1, 2, "p", ("a", "b"))
    for method in ("Search", "SearchByID", "SearchInFiles", "HybridSearch", "HybridSearchInSegments"):
        assert served_locally("standalone", secondary, method)
    for method in ("PreloadCollection", "ReleaseCollection", "PreloadHybridCollection", "ReloadSegments"):
        assert served_locally("standalone", secondary, method)  # and sent on to the other workers
    for method in ("Insert", "Flush", "CreateCollection", "HasCollection", "Cmd", "GetVectorsByID", "DeleteByID"):
        assert not served_locally("standalone", secondary, method)
        assert served_locally("standalone", primary, method)
        assert served_locally("standalone", None, method)
        assert served_locally("ro", secondary, method)  # a read node's every worker is a full read engine
    assert watch_only("ro", secondary) and not watch_only("ro", primary) and not watch_only("standalone", secondary)


def test_a_forward_passes_trace_context_auth_and_project_headers_and_drops_only_transport_ones() -> None:
    kept = [("traceparent", "00-" + "1" * 32 + "-" + "2" * 16 + "-01"), ("tracestate", "k=v"),
            ("authorization", "Bearer t0ken"), ("mishards-min-revision", "9"), ("mishards-request-key", "ab" * 16),
            ("x-custom", "1")]
    dropped = [(name, "x") for name in DROPPED_HEADERS] + [(":path", "/m"), ("grpc-timeout", "1S")]
    assert forwarded_metadata([*dropped, *kept]) == tuple(kept)
    assert traced_call(None, "/s/M", "p:1", tuple(kept)) == (None, tuple(kept))  # not tracing: unchanged


def test_broadcast_calls_and_the_deadline_the_other_workers_get() -> None:
    assert broadcasts("PreloadCollection", milvus_pb2.PreloadCollectionParam(collection_name="c"))
    assert broadcasts("ReleaseCollection", milvus_pb2.PreloadCollectionParam(collection_name="c"))
    assert broadcasts("PreloadHybridCollection", milvus_pb2.CollectionName(collection_name="c"))
    assert broadcasts("Cmd", milvus_pb2.Command(cmd="set_config cache.cache_size 1GB"))
    assert not broadcasts("Cmd", milvus_pb2.Command(cmd="get_config cache.cache_size"))
    assert not broadcasts("Search", milvus_pb2.SearchParam())
    assert marked_local([("a", "b"), ("mishards-worker-local", "1")]) and not marked_local([("a", "b")])
    assert not marked_local(None)
    assert sibling_timeout("PreloadCollection", None) is None  # a preload takes what the data needs
    assert sibling_timeout("PreloadCollection", 10.0) == 9.0  # a share of the caller's: a failure is reported
    assert sibling_timeout("Cmd", None) == 10.0 and sibling_timeout("Cmd", 100.0) == 10.0
    assert sibling_timeout("Cmd", 2.0) == 1.8
    assert sibling_timeout("ReleaseCollection", -1.0) == 0.001


def test_the_reply_is_the_receivers_unless_another_worker_failed() -> None:
    from milvus_wire import status_pb2

    own = status_pb2.Status(reason="")
    fine = SiblingAnswer(1, "unix:/w-1", status_pb2.Status().SerializeToString())
    bad = status_pb2.Status(error_code="ILLEGAL_ARGUMENT", reason="bad")
    refused = SiblingAnswer(2, "unix:/w-2", bad.SerializeToString())
    silent = SiblingAnswer(3, "unix:/w-3", None, "DEADLINE_EXCEEDED")
    assert combined("PreloadCollection", own, [fine], status_pb2.Status) is own
    assert combined("PreloadCollection", own, [fine, refused, silent], status_pb2.Status).reason == "bad"
    failed = combined("Cmd", milvus_pb2.StringReply(), [fine, silent], milvus_pb2.StringReply)
    assert failed.status.error_code == 1 and "worker 3" in failed.status.reason
    assert "DEADLINE_EXCEEDED" in failed.status.reason


def test_a_worker_reaches_the_others_on_their_private_sockets() -> None:
    spec = WorkerSpec(1, 3, 19530, 4002, "127.0.0.1:4001", ("h:4001", "h:4002", "h:4003"), "/run/x")
    assert spec.siblings() == ((0, "unix:/run/x/worker-0.sock"), (2, "unix:/run/x/worker-2.sock"))
    assert WorkerSpec.from_json(spec.to_json()) == spec
    bare = WorkerSpec(0, 2, 19530, 4001, "[::1]:4001", ("h:4001", "h:4002"))  # no private folder: own ports
    assert bare.siblings() == ((1, "[::1]:4002"),)


class _Context:
    def __init__(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self.metadata = metadata

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self.metadata


def test_a_call_another_worker_sent_on_is_trusted_by_the_node_secret_alone(tmp_path: Path) -> None:
    write_secret(tmp_path)
    spec = WorkerSpec(1, 2, 1, 2, "127.0.0.1:1", ("a:1", "a:2"), str(tmp_path))
    secret = read_secret(spec)
    assert len(secret) == 64 and (tmp_path / "secret").stat().st_mode & 0o077 == 0
    assert read_secret(None) == "" and read_secret(WorkerSpec(1, 2, 1, 2, "p", ("a", "b"))) == ""
    assert carries_secret([("x", "1"), (SECRET_HEADER, secret)], secret)
    assert not carries_secret([(SECRET_HEADER, "guess")], secret)
    assert not carries_secret([(SECRET_HEADER, "")], "") and not carries_secret(None, secret)
    check = trusting_workers(lambda _context: False, secret)
    assert check(_Context(((SECRET_HEADER, secret),)))
    assert not check(_Context(((SECRET_HEADER, "guess"),))) and not check(_Context(()))
    assert trusting_workers(lambda _context: True, secret)(_Context(()))  # a cluster peer stays one
    assert forwarded_metadata([(SECRET_HEADER, secret), ("a", "b")]) == (("a", "b"),)  # never passed further


def test_a_forwarded_call_keeps_the_callers_metadata_and_deadline() -> None:
    metadata = [("user-agent", "grpc-python"), ("mishards-min-revision", "7"), ("grpc-accept-encoding", "gzip"),
                (":authority", "x"), ("trace-bin", b"\x01")]
    assert forwarded_metadata(metadata) == (("mishards-min-revision", "7"), ("trace-bin", b"\x01"))
    assert forwarded_metadata(None) == ()
    assert call_timeout(None) is None
    assert call_timeout(1e12) is None
    assert call_timeout(2.5) == 2.5
    assert call_timeout(-1.0) == 0.001  # an expired deadline stays expired


def test_a_proxy_spreads_searches_over_the_workers_a_node_names() -> None:
    assert parse_workers(0, json.dumps({"workers": ["a:1", "a:2"]}), "a:0") == ("a:1", "a:2")
    # reached at the host the proxy uses for the node (a node advertising loopback is still reachable)
    assert parse_workers(0, json.dumps({"workers": ["127.0.0.1:1", "127.0.0.1:2"]}), "10.0.0.5:0") == (
        "10.0.0.5:1", "10.0.0.5:2")
    assert parse_workers(0, json.dumps({"workers": ["a:x"]}), "a:0") == ("a:0",)
    assert parse_workers(0, "Unknown command", "a:0") == ("a:0",)  # an older node
    assert parse_workers(0, json.dumps({"workers": []}), "a:0") == ("a:0",)
    assert parse_workers(1, "", "a:0") == ("a:0",)
    path = "/milvus.grpc.MilvusService/"
    assert spreads(path + "SearchInFiles", ("a:1", "a:2"))
    assert not spreads(path + "SearchInFiles", ("a:0",))
    assert not spreads(path + "Insert", ("a:1", "a:2"))


def test_the_least_busy_worker_is_chosen_and_equally_busy_ones_take_turns() -> None:
    assert [least_busy([0, 0, 0], turn) for turn in range(7)] == [0, 1, 2, 0, 1, 2, 0]
    assert least_busy([2, 0, 1], 0) == 1
    assert least_busy([2, 0, 1], 2) == 1  # the fewest wins whatever the turn
    assert least_busy([1, 3, 1], 1) == 2 and least_busy([1, 3, 1], 0) == 0  # ties: first at or after the turn
    assert least_busy([5], 9) == 0
    busy = InFlight()
    workers = ("a:1", "a:2")
    first, second = busy.pick(workers), busy.pick(workers)
    assert {first, second} == set(workers)
    busy.done(first)
    assert busy.pick(workers) == first and busy.pick(workers) in workers  # the idle one, then either
    busy.done(first)
    busy.done(first)
    assert busy.busy(first) == 0 and busy.busy(second) >= 1


def test_worker_pages_merge_into_one_family_per_metric_with_a_worker_label() -> None:
    page = ("# HELP x_total Calls\n# TYPE x_total counter\nx_total{method=\"Search\"} 3.0\n"
            "# HELP y Gauge\n# TYPE y gauge\ny 1.0\n")
    other = "# HELP x_total Calls\n# TYPE x_total counter\nx_total{method=\"Search\"} 4.0\n"
    merged = merge_families([("0", text_string_to_metric_families(page)),
                             ("1", text_string_to_metric_families(other))])
    by_name = {family.name: family for family in merged}
    assert set(by_name) == {"x", "y"}
    assert sorted((s.labels["worker"], s.value) for s in by_name["x"].samples) == [("0", 3.0), ("1", 4.0)]
    assert [s.labels for s in by_name["y"].samples] == [{"worker": "0"}]


class _Answered:
    """A finished call's future (what ``WorkerDirectory`` reads), or a failed one."""

    def __init__(self, reply: bytes | None) -> None:
        self.reply = reply

    def cancelled(self) -> bool:
        return False

    def exception(self) -> BaseException | None:
        return None if self.reply is not None else RuntimeError("unreachable")

    def result(self) -> bytes:
        assert self.reply is not None
        return self.reply

    def add_done_callback(self, fn: Any) -> None:
        fn(self)


class _Pending:
    """A search call in flight on worker ``worker`` until :meth:`finish`."""

    def __init__(self, name: str) -> None:
        self.worker = {"w0": "n:7", "w1": "n:8"}.get(name, name)
        self.callbacks: list[Any] = []

    def add_done_callback(self, fn: Any) -> None:
        self.callbacks.append(fn)

    def cancelled(self) -> bool:
        return False

    def exception(self) -> BaseException | None:
        return None

    def finish(self) -> None:
        for fn in self.callbacks:
            fn(self)


class _Channel:
    """Records the methods asked of it; ``Cmd`` answers ``workers`` (None: the call fails)."""

    def __init__(self, name: str, workers: list[str] | None = None) -> None:
        self.name = name
        self.workers = workers
        self.asked: list[str] = []

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        self.asked.append(method)
        channel = self

        class Call:
            def future(self, request: bytes, timeout: float | None = None) -> _Answered | _Pending:
                if method != SERVICE + "Cmd":
                    return _Pending(channel.name)
                if channel.workers is None:
                    return _Answered(None)
                reply = milvus_pb2.StringReply(string_reply=json.dumps({"workers": channel.workers}))
                return _Answered(reply.SerializeToString())

            def __call__(self, request: bytes, **kwargs: Any) -> str:
                return channel.name

        return Call()


def test_the_directory_asks_once_again_after_a_failure_and_after_forget() -> None:
    now = [0.0]
    main = _Channel("main", None)
    directory = WorkerDirectory(lambda _address: main, clock=lambda: now[0])
    assert directory.workers("n:1") == () and main.asked == [SERVICE + "Cmd"]
    assert directory.workers("n:1") == () and len(main.asked) == 1  # not asked again at once
    now[0] += RETRY_SECONDS
    main.workers = ["n:7", "n:8"]
    assert directory.workers("n:1") == () and len(main.asked) == 2  # asked again; the answer is now known
    assert directory.workers("n:1") == ("n:7", "n:8")
    directory.forget("n:1")
    assert directory.workers("n:1") == () and len(main.asked) == 3


def test_a_spread_channel_sends_searches_round_robin_to_workers_and_the_rest_to_the_node() -> None:
    channels = {"n:1": _Channel("main", ["n:7", "n:8"]), "n:7": _Channel("w0"), "n:8": _Channel("w1")}
    directory = WorkerDirectory(lambda a: channels[a])
    spread = SpreadChannel("n:1", channels["n:1"], directory, lambda a: channels[a])
    search = SERVICE + "SearchInFiles"
    assert spread.unary_unary(search)(b"") == "main"  # workers not known yet: the node's address
    assert [spread.unary_unary(search)(b"") for _ in range(4)] == ["w0", "w1", "w0", "w1"]
    assert spread.unary_unary(SERVICE + "Insert")(b"") == "main"
    # Calls still in flight steer the next ones to the idle worker; a finished call no longer counts.
    held = [spread.unary_unary(search).future(b"") for _ in range(2)]
    assert {spread.in_flight.busy("n:7"), spread.in_flight.busy("n:8")} == {1}
    held[0].finish()
    idle = "w0" if held[0].worker == "n:7" else "w1"
    assert [spread.unary_unary(search)(b"") for _ in range(3)] == [idle] * 3
    held[1].finish()
    assert spread.in_flight.busy("n:7") == spread.in_flight.busy("n:8") == 0
