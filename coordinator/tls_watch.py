"""Files followed on disk (:class:`PemFiles`) and the REST server's reloading ``ssl.SSLContext``
(:class:`ReloadingSSLContext`), for ``coordinator/tls.py``."""

from __future__ import annotations

import logging
import os
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from coordinator.tls import ServerTls

log = logging.getLogger(__name__)

CHECK_SECONDS = 1.0  # the REST context and a dialer look at their files at most this often


# -- files read again when they change ----------------------------------------------------------------------


def _signature(path: str) -> tuple[int, int, int]:
    st = os.stat(path)
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class PemFiles:
    """A set of files whose contents are read again when one of them changes (mtime, size or inode: a file
    replaced by rename, as Kubernetes updates a mounted Secret, counts). ``generation`` grows with each change
    of content. A set that cannot be read, or that ``valid`` refuses (a certificate written before its key),
    keeps the last good contents until the files are complete again."""

    def __init__(self, paths: Sequence[str], valid: Callable[[Sequence[str]], None] | None = None,
                 check_seconds: float = 0.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.paths = tuple(paths)
        self.valid = valid
        self.check_seconds = check_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._signatures = tuple(_signature(p) for p in self.paths)
        self._contents = self._read()
        self._checked = clock()
        self._refused: tuple[tuple[int, int, int], ...] | None = None
        self.generation = 0

    def _read(self) -> tuple[bytes, ...]:
        contents = []
        for path in self.paths:
            with open(path, "rb") as fh:
                contents.append(fh.read())
        return tuple(contents)

    @property
    def contents(self) -> tuple[bytes, ...]:
        return self._contents

    def poll(self) -> bool:
        """Look at the files (at most every ``check_seconds``); True when their contents changed."""
        now = self.clock()
        if self.check_seconds and now - self._checked < self.check_seconds:
            return False
        with self._lock:
            self._checked = now
            try:
                signatures = tuple(_signature(p) for p in self.paths)
            except OSError as exc:
                log.warning("TLS files %s: %s (the previous ones stay in use)", ", ".join(self.paths), exc)
                return False
            if signatures == self._signatures or signatures == self._refused:
                return False
            try:
                if self.valid is not None:
                    self.valid(self.paths)
                contents = self._read()
            except (OSError, ValueError, ssl.SSLError) as exc:
                self._refused = signatures
                log.warning("TLS files %s changed but cannot be used yet: %s (the previous ones stay in use)",
                            ", ".join(self.paths), exc)
                return False
            self._signatures, self._refused = signatures, None
            if contents == self._contents:
                return False
            self._contents = contents
            self.generation += 1
            log.info("TLS files %s changed: new connections use them", ", ".join(self.paths))
            return True


def pair_valid(paths: Sequence[str]) -> None:
    """The first two files are a certificate chain and its key; a third (if any) holds CA certificates."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(paths[0], paths[1])
    if len(paths) > 2:
        context.load_verify_locations(cafile=paths[2])


# -- REST (uvicorn) ------------------------------------------------------------------------------------------


class ReloadingSSLContext:
    """The REST server's TLS: ``context`` goes to the listening socket; at each handshake (its SNI callback,
    which OpenSSL calls with or without a server name) it hands the connection to a context built from the
    files' current contents, loaded again when they changed (looked at most every ``check_seconds``)."""

    def __init__(self, tls: ServerTls, check_seconds: float = CHECK_SECONDS) -> None:
        self.tls = tls
        self._files = PemFiles([p for p in (tls.cert, tls.key, tls.client_ca) if p], pair_valid, check_seconds)
        self.current = self._build()
        self.context = self._build()
        self.context.sni_callback = self._handshake

    def _build(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.set_alpn_protocols(["http/1.1"])
        context.load_cert_chain(self.tls.cert, self.tls.key)
        if self.tls.client_ca:
            context.load_verify_locations(cafile=self.tls.client_ca)
            context.verify_mode = ssl.CERT_REQUIRED if self.tls.require_client else ssl.CERT_OPTIONAL
        return context

    def refresh(self) -> ssl.SSLContext:
        """The context of the files' current contents (built again if they changed)."""
        if self._files.poll():
            try:
                self.current = self._build()
            except (OSError, ssl.SSLError) as exc:
                log.warning("cannot load the new REST TLS files: %s", exc)
        return self.current

    def _handshake(self, connection: ssl.SSLObject, _server_name: str | None, _context: ssl.SSLContext) -> None:
        try:
            connection.context = self.refresh()
        except Exception:  # never fail a handshake over a reload: the context in place stays
            log.exception("reading the REST TLS files again failed")
