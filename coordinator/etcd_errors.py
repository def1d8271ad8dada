"""The errors of the etcd client (``coordinator/etcd_client.py``): every failure is an :class:`EtcdError`."""

from __future__ import annotations


class EtcdError(RuntimeError):
    """An etcd request failed."""


class EtcdTimeout(EtcdError):
    """An etcd request did not complete within its timeout."""


class EtcdUnavailable(EtcdError):
    """No etcd endpoint could be reached."""
