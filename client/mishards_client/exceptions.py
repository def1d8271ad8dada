"""Exceptions of the client: the class names and hierarchy of pymilvus 1.1."""

from __future__ import annotations

__all__ = [
    "ConnectError",
    "ConnectionPoolError",
    "DeprecatedError",
    "FutureTimeoutError",
    "NotConnectError",
    "ParamError",
    "RepeatingConnectError",
    "VersionError",
]


class ParamError(ValueError):
    """An argument failed a client-side check; nothing was sent."""


class ConnectError(ValueError):
    """The server could not be reached."""


class NotConnectError(ConnectError):
    """The client is closed or was never connected."""


class RepeatingConnectError(ConnectError):
    """A second connect on a connected client."""


class ConnectionPoolError(ConnectError):
    """No connection became free in time."""


class FutureTimeoutError(TimeoutError):
    """A future's result did not arrive in time."""


class DeprecatedError(AttributeError):
    """The method is deprecated."""


class VersionError(AttributeError):
    """Client and server versions do not match."""
