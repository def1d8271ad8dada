"""The plumbing of :class:`mishards_client.aio.AsyncMilvus`: settings, the asyncio transport, calls and
their failures, connection management, server commands and configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from . import codec
from ._grpc import milvus_pb2 as pb
from .aio_transport import AsyncTransport
from .checks import check, resolve_address
from .exceptions import NotConnectError, ParamError
from .grpc_common import reply_status, status_of, status_of_failure
from .retry import IDEMPOTENT_METHODS, RetryPolicy
from .transport import CallFailed, Metadata, TransportSettings, read_pem
from .types import Status

__all__ = ["AsyncBase"]

PemSource = str | bytes | Path | None
A = TypeVar("A", bound="AsyncBase")


class AsyncBase:
    """An asyncio client of one Milvus 1.1 gRPC endpoint: ``AsyncMilvus(host, port)`` or
    ``AsyncMilvus(uri="tcp://host:port")``; keyword-only extras as :class:`mishards_client.Milvus`
    (``token``, ``tls``, ``tls_ca``, ``tls_cert``, ``tls_key``, ``timeout``, ``retries``, ``pool_size``,
    ``retry_inserts``)."""

    def __init__(self, host: str | None = None, port: int | str | None = None, handler: str = "GRPC",
                 pool: str = "SingletonThread", *, token: str | None = None, tls: bool = False,
                 tls_ca: PemSource = None, tls_cert: PemSource = None, tls_key: PemSource = None,
                 timeout: float | None = None, retries: int = 3, **kwargs: Any) -> None:
        if handler != "GRPC":
            raise ParamError(f"Unknown handler {handler!r}: AsyncMilvus speaks gRPC")
        if retries < 0:
            raise ParamError("retries must be >= 0")
        if (tls_cert is None) != (tls_key is None):
            raise ParamError("tls_cert and tls_key go together")
        pool_size = int(kwargs.get("pool_size", 2))
        if pool_size < 1:
            raise ParamError("pool_size must be at least 1")
        self._name_ = kwargs.get("name")
        self._address = resolve_address(host, port, kwargs.get("uri"), "GRPC")
        self._settings = TransportSettings(
            address=self._address, token=token, tls=tls or tls_ca is not None or tls_cert is not None,
            tls_ca=read_pem(tls_ca), tls_cert=read_pem(tls_cert), tls_key=read_pem(tls_key),
            tls_server_name=kwargs.get("tls_server_name"), timeout=timeout,
            retry=RetryPolicy(retries=retries, base=float(kwargs.get("retry_backoff", 0.1)),
                              cap=float(kwargs.get("retry_backoff_max", 2.0))),
            pool_size=pool_size)
        self._retry_inserts = bool(kwargs.get("retry_inserts", True))
        self._transport: AsyncTransport | None = AsyncTransport(self._settings)

    def __repr__(self) -> str:
        return f"<AsyncMilvus: address={self._address!r}, tls={self._settings.tls}>"

    async def __aenter__(self: A) -> A:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- plumbing -----------------------------------------------------------------------------------

    @property
    def name(self) -> Any:
        return self._name_

    @property
    def handler(self) -> str:
        return "GRPC"

    @property
    def address(self) -> str:
        return self._address

    async def _call(self, method: str, request: bytes, timeout: float | None, *, retryable: bool | None = None,
                    metadata: Metadata = ()) -> bytes:
        transport = self._transport
        if transport is None:
            raise NotConnectError("the client is closed")
        ok = method in IDEMPOTENT_METHODS if retryable is None else retryable
        return await transport.call(method, request, timeout=timeout, retryable=ok, metadata=metadata)

    async def _status_call(self, method: str, request: bytes, timeout: float | None,
                           ok_message: str = "Success") -> Status:
        try:
            reply = await self._call(method, request, timeout)
        except CallFailed as exc:
            return status_of_failure(exc)
        code, reason = codec.decode_status_only(reply)
        return status_of(code, reason, ok_message)

    async def _message(self, method: str, request: bytes, timeout: float | None, reply_type: Any) -> Any:
        """The reply parsed as ``reply_type``, or the ``Status`` of a failed call."""
        try:
            return reply_type.FromString(await self._call(method, request, timeout))
        except CallFailed as exc:
            return status_of_failure(exc)

    # --- connection -----------------------------------------------------------------------------------

    async def connect(self, host: str | None = None, port: int | str | None = None, uri: str | None = None,
                      timeout: float = 2) -> Status:
        """Check that the server answers (``Cmd("version")``) within ``timeout`` seconds."""
        status, _ = await self._cmd("version", timeout)
        if not status.OK():
            raise NotConnectError(f"Fail connecting to server on {self._address}: {status.message}")
        return Status(message="Connected")

    def connected(self) -> bool:
        return self._transport is not None

    async def disconnect(self) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the channels; further calls raise ``NotConnectError``."""
        transport, self._transport = self._transport, None
        if transport is not None:
            await transport.close()

    def client_version(self) -> str:
        from . import __version__

        return __version__

    async def server_status(self, timeout: float | None = 30) -> tuple[Status, str | None]:
        return await self._cmd("status", timeout)

    async def server_version(self, timeout: float | None = 30) -> tuple[Status, str | None]:
        return await self._cmd("version", timeout)

    async def _cmd(self, cmd: str, timeout: float | None = 30) -> tuple[Status, str | None]:
        check(cmd=cmd)
        reply = await self._message("Cmd", pb.Command(cmd=cmd).SerializeToString(), timeout, pb.StringReply)
        if isinstance(reply, Status):
            return reply, None
        if reply.status.error_code == 0:
            return Status(message="Success!"), reply.string_reply
        return reply_status(reply), None

    async def get_config(self, parent_key: str, child_key: str) -> tuple[Status, str | None]:
        return await self._cmd(f"get_config {parent_key}.{child_key}")

    async def set_config(self, parent_key: str, child_key: str, value: Any) -> tuple[Status, str | None]:
        return await self._cmd(f"set_config {parent_key}.{child_key} {value}")
