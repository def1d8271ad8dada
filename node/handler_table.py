"""Which behavior serves each MilvusService method in this process (one table for gRPC and REST).

A single-process node serves every method with its servicer. With ``--workers N`` (``node/workers.py``), the
broadcast calls go through a :class:`~node.worker_broadcast.Broadcaster` (served here, then by every other
worker), and a standalone node's secondary serves the searches itself, each on a snapshot caught up with the
catalog, and forwards every other call to the primary (``node/worker_forward.py``). A multi-process node's
primary records the cache calls it served, for a restarted worker to replay (``node/worker_preloads.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import grpc

from coordinator.tls import forward_socket
from coordinator.tracing import Tracing
from coordinator.workers import WorkerSpec, read_secret
from milvus_wire import milvus_pb2
from node.handlers import SERVICE, MethodHandlers, method_handlers
from node.worker_preloads import record_for, recording
from node.workers import forwards, served_locally

if TYPE_CHECKING:
    from node.engine import Engine
    from node.worker_broadcast import Broadcaster


@dataclass(slots=True)
class HandlerTable:
    """The method handlers and the channels they hold (closed by :meth:`close`)."""

    handlers: MethodHandlers
    broadcaster: Broadcaster | None = None
    primary: grpc.Channel | None = None  # a forwarding worker's channel to its primary
    channels: dict[str, grpc.Channel] = field(default_factory=dict)  # to the other workers' private sockets

    def close(self) -> None:
        if self.primary is not None:
            self.primary.close()
        for channel in self.channels.values():
            channel.close()


def broadcaster_for(spec: WorkerSpec | None, tracing: Tracing | None) -> tuple[Broadcaster | None,
                                                                                dict[str, grpc.Channel]]:
    """What sends the broadcast calls on to the other workers (None: a single-process node), and its channels."""
    if spec is None or spec.count < 2:
        return None, {}
    from node.worker_broadcast import Broadcaster
    from node.worker_forward import worker_channel

    siblings = spec.siblings()
    channels = {target: worker_channel(target) for _, target in siblings}
    return Broadcaster(siblings, channels.__getitem__, tracing, read_secret(spec)), channels


def handler_table(service: Any, engine: Engine, role: str, spec: WorkerSpec | None, tracing: Tracing | None,
                  node: Callable[[], str], storage_path: str, tls: bool) -> HandlerTable:
    """The node's MilvusService handlers. ``tls``: the node's ports use TLS, so that a secondary forwards to the
    primary over its private socket (a worker holds no client certificate of the edge, and the cluster
    certificates may not name 127.0.0.1)."""
    broadcaster, channels = broadcaster_for(spec, tracing)
    if spec is None or not forwards(role, spec):
        record = record_for(spec) if spec is not None and spec.is_primary else None

        def local(method: str, behavior: Any) -> Any:  # the primary records the cache calls it served
            return behavior if record is None else recording(record, method, behavior)

        return HandlerTable(method_handlers(service, tracing, node, local=local, broadcaster=broadcaster),
                            broadcaster, channels=channels)
    from node.worker_broadcast import cmd_here_or_forward
    from node.worker_forward import PRIMARY_CHANNEL_OPTIONS, caught_up, forwarder

    target = forward_socket(storage_path, spec.shared_port) if tls else spec.primary
    primary = grpc.insecure_channel(target, options=PRIMARY_CHANNEL_OPTIONS)

    def routed(method: str) -> grpc.RpcMethodHandler | None:
        if served_locally(role, spec, method):
            return None
        forward = forwarder(primary, f"/{SERVICE}/{method}", tracing, spec.primary)
        if method == "Cmd" and broadcaster is not None:  # set_config here (and on every worker)
            here = broadcaster.wrap(method, caught_up(engine, service.Cmd), milvus_pb2.StringReply)
            return cmd_here_or_forward(here, forward)
        return grpc.unary_unary_rpc_method_handler(forward)

    handlers = method_handlers(service, tracing, node, routed, lambda _m, behavior: caught_up(engine, behavior),
                               broadcaster)
    return HandlerTable(handlers, broadcaster, primary, channels)
