"""The node process: gRPC server lifecycle (start, ready file, graceful drain on SIGTERM)."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import FrameType

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from milvus_wire import milvus_pb2_grpc
from node.engine import Engine
from node.service import MilvusService
from node.settings import NodeSettings

log = logging.getLogger(__name__)

GRPC_OPTIONS = [
    ("grpc.max_receive_message_length", -1),
    ("grpc.max_send_message_length", -1),
    # pymilvus pings every 55 s during long calls; accept client pings without data in flight.
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.so_reuseport", 0),
]


def write_ready_file(path: str, address: str) -> None:
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps({"address": address, "pid": os.getpid()}))
    os.replace(tmp, target)


class NodeServer:
    def __init__(self, settings: NodeSettings) -> None:
        self.settings = settings
        self.engine = Engine(settings)
        self.search_pool = ThreadPoolExecutor(max_workers=settings.search_threads, thread_name_prefix="search")
        self.server = grpc.server(
            ThreadPoolExecutor(max_workers=settings.grpc_workers, thread_name_prefix="grpc"),
            options=GRPC_OPTIONS,
        )
        self.health = health.HealthServicer()
        self.port = 0
        self._stopped = threading.Event()

    def start(self) -> str:
        self.engine.open()
        milvus_pb2_grpc.add_MilvusServiceServicer_to_server(MilvusService(self.engine, self.search_pool), self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.port = self.server.add_insecure_port(f"{self.settings.host}:{self.settings.port}")
        if self.port == 0:
            raise OSError(f"cannot listen on {self.settings.host}:{self.settings.port}")
        self.server.start()
        self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        self.health.set("milvus.grpc.MilvusService", health_pb2.HealthCheckResponse.SERVING)
        address = f"{self.settings.host}:{self.port}"
        log.info("node (%s) serving MilvusService on %s, storage %s", self.settings.role, address,
                 self.settings.storage_path)
        if self.settings.ready_file:
            write_ready_file(self.settings.ready_file, address)
        return address

    def stop(self, grace: float = 5.0) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.health.enter_graceful_shutdown()
        self.server.stop(grace).wait()
        self.search_pool.shutdown(wait=True)
        self.engine.close()
        log.info("node stopped")

    def serve_forever(self) -> None:
        done = threading.Event()

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            log.info("signal %d received: draining", signum)
            done.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        self.start()
        done.wait()
        self.stop()
