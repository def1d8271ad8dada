"""``Milvus``: the pymilvus 1.1 client API over the Milvus 1.1 gRPC protocol, with numpy in and out.

``Milvus`` holds the connection (settings, the gRPC transport, closing and release), the calls its method mixins
make, server commands and maintenance; the methods live by theme in ``collection_methods.py`` (collections,
partitions, indexes), ``entity_methods.py`` (vectors and search) and ``hybrid_methods.py`` (hybrid collections).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from . import codec
from ._grpc import milvus_pb2 as pb
from .checks import check, resolve_address
from .collection_methods import CollectionMethods
from .entity_methods import EntityMethods
from .exceptions import NotConnectError, ParamError
from .futures import CallFuture
from .grpc_common import name_bytes, status_of, status_of_failure
from .hybrid_methods import HybridMethods
from .retry import IDEMPOTENT_METHODS, RetryPolicy
from .transport import CallFailed, Transport, TransportSettings, read_pem
from .types import Status

__all__ = ["Milvus", "status_of_failure"]

LOGGER = logging.getLogger(__name__)
_POOLS = ("SingletonThread", "QueuePool", "Singleton")
T = TypeVar("T")
PemSource = str | bytes | Path | None


class Milvus(CollectionMethods, EntityMethods, HybridMethods):
    """A client of one Milvus 1.1 endpoint (a Mishards node or proxy, or Milvus 1.1 itself).

    ``Milvus(host, port)`` or ``Milvus(uri="tcp://host:port")``. Thread-safe: share one instance. Keyword-only
    extras: ``token`` (sent as ``authorization: Bearer <token>``), ``tls``/``tls_ca``/``tls_cert``/``tls_key``
    (PEM bytes or file paths), ``timeout`` (default deadline of calls given no ``timeout``), ``retries``
    (further attempts after UNAVAILABLE), ``pool_size`` (gRPC channels, default 2), ``retry_inserts`` (default
    True: inserts are retried too, which Mishards recognises as repeats by content or request key; set False
    against a server that does not, such as Milvus 1.1 itself).
    ``handler="HTTP"`` gives the same API over the REST API instead (:class:`mishards_client.rest.RestMilvus`).
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Milvus:
        handler = kwargs.get("handler", args[2] if len(args) > 2 else "GRPC")
        if cls is Milvus and handler == "HTTP":  # pymilvus' way of choosing its HTTP handler
            from .rest import RestMilvus

            return RestMilvus(*args, **kwargs)  # type: ignore[return-value]
        return super().__new__(cls)

    def __init__(self, host: str | None = None, port: int | str | None = None, handler: str = "GRPC",
                 pool: str = "SingletonThread", *, token: str | None = None, tls: bool = False,
                 tls_ca: PemSource = None, tls_cert: PemSource = None, tls_key: PemSource = None,
                 timeout: float | None = None, retries: int = 3, **kwargs: Any) -> None:
        if pool not in _POOLS:
            raise ParamError(f"Unknown pool value: {pool}")
        if handler != "GRPC":
            raise ParamError(f"Unknown handler {handler!r}: this class speaks gRPC; for REST use "
                             "mishards_client.rest")
        if retries < 0:
            raise ParamError("retries must be >= 0")
        if (tls_cert is None) != (tls_key is None):
            raise ParamError("tls_cert and tls_key go together")
        self._name = kwargs.get("name")
        self._handler = handler
        self._address = resolve_address(host, port, kwargs.get("uri"), handler)
        pool_size = int(kwargs.get("pool_size", 2))
        if pool_size < 1:
            raise ParamError("pool_size must be at least 1")
        self._settings = TransportSettings(
            address=self._address, token=token, tls=tls or tls_ca is not None or tls_cert is not None,
            tls_ca=read_pem(tls_ca), tls_cert=read_pem(tls_cert), tls_key=read_pem(tls_key),
            tls_server_name=kwargs.get("tls_server_name"), timeout=timeout,
            retry=RetryPolicy(retries=retries, base=float(kwargs.get("retry_backoff", 0.1)),
                              cap=float(kwargs.get("retry_backoff_max", 2.0))),
            pool_size=pool_size)
        self._transport: Transport | None = Transport(self._settings)
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._schemas = {}
        self._retry_inserts = bool(kwargs.get("retry_inserts", True))
        self._schemas_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<Milvus: address={self._address!r}, tls={self._settings.tls}>"

    def __enter__(self) -> Milvus:
        return self

    def __exit__(self, *exc: object) -> None:
        """Release the connections (as pymilvus returns its connection to the pool); the client stays usable and
        reconnects on its next call. ``close()`` ends it for good."""
        with self._lock:
            transport = self._transport
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)
        if transport is not None:
            transport.release()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # at interpreter shutdown
            self.close()

    # --- plumbing -----------------------------------------------------------------------------------

    @property
    def name(self) -> Any:
        return self._name

    @property
    def handler(self) -> str:
        return self._handler

    @property
    def address(self) -> str:
        return self._address

    def _call(self, method: str, request: bytes, timeout: float | None, *, retryable: bool | None = None,
              metadata: Sequence[tuple[str, str]] = ()) -> bytes:
        transport = self._transport
        if transport is None:
            raise NotConnectError("the client is closed")
        ok = method in IDEMPOTENT_METHODS if retryable is None else retryable
        return transport.call(method, request, timeout=timeout, retryable=ok, metadata=metadata)

    def _maybe_async(self, kwargs: dict[str, Any], fn: Callable[[], T]) -> T | CallFuture:
        if kwargs.get("_async", False) is not True:
            return fn()
        with self._lock:
            if self._transport is None:
                raise NotConnectError("the client is closed")
            if self._executor is None:
                self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=4,
                                                                       thread_name_prefix="mishards-client")
            executor = self._executor
        return CallFuture(executor.submit(fn), kwargs.get("_callback"))

    def _status_call(self, method: str, request: bytes, timeout: float | None, ok_message: str = "Success",
                     **call_kwargs: Any) -> Status:
        try:
            reply = self._call(method, request, timeout, **call_kwargs)
        except CallFailed as exc:
            return status_of_failure(exc)
        code, reason = codec.decode_status_only(reply)
        return status_of(code, reason, ok_message)

    # --- connection -----------------------------------------------------------------------------------

    def connect(self, host: str | None = None, port: int | str | None = None, uri: str | None = None,
                timeout: float = 2) -> Status:
        """Check that the server answers (``Cmd("version")``) within ``timeout`` seconds."""
        status, _ = self._cmd("version", timeout)
        if not status.OK():
            raise NotConnectError(f"Fail connecting to server on {self._address}: {status.message}")
        return Status(message="Connected")

    def connected(self) -> bool:
        return self._transport is not None

    def disconnect(self) -> None:
        self.close()

    def close(self) -> None:
        """Close the channels; further calls raise ``NotConnectError``."""
        with self._lock:
            transport, self._transport = getattr(self, "_transport", None), None
            executor, self._executor = getattr(self, "_executor", None), None
        if executor is not None:
            executor.shutdown(wait=False)
        if transport is not None:
            transport.close()

    def client_version(self) -> str:
        from . import __version__

        return __version__

    def server_status(self, timeout: float | None = 30) -> tuple[Status, str | None]:
        return self._cmd("status", timeout)

    def server_version(self, timeout: float | None = 30) -> tuple[Status, str | None]:
        return self._cmd("version", timeout)

    def _cmd(self, cmd: str, timeout: float | None = 30) -> tuple[Status, str | None]:
        check(cmd=cmd)
        try:
            reply = pb.StringReply.FromString(self._call("Cmd", pb.Command(cmd=cmd).SerializeToString(), timeout))
        except CallFailed as exc:
            return status_of_failure(exc), None
        if reply.status.error_code == 0:
            return Status(message="Success!"), reply.string_reply
        return Status(reply.status.error_code, reply.status.reason), None

    def get_config(self, parent_key: str, child_key: str) -> tuple[Status, str | None]:
        return self._cmd(f"get_config {parent_key}.{child_key}")

    def set_config(self, parent_key: str, child_key: str, value: Any) -> tuple[Status, str | None]:
        return self._cmd(f"set_config {parent_key}.{child_key} {value}")

    # --- maintenance ----------------------------------------------------------------------------------

    def flush(self, collection_name_array: list[str] | None = None, timeout: float | None = None,
              **kwargs: Any) -> Any:
        if collection_name_array in (None, []):
            names: list[str] = []
        else:
            if not isinstance(collection_name_array, list):
                raise ParamError("Collection name array must be type of list")
            for name in collection_name_array:
                check(collection_name=name)
            names = collection_name_array
        body = pb.FlushParam(collection_name_array=names).SerializeToString()
        return self._maybe_async(kwargs, lambda: self._status_call("Flush", body, timeout))

    def compact(self, collection_name: str, timeout: float | None = None, **kwargs: Any) -> Any:
        check(collection_name=collection_name)
        body = name_bytes(collection_name)
        return self._maybe_async(kwargs, lambda: self._status_call("Compact", body, timeout))

