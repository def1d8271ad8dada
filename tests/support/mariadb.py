"""A private, throw-away MariaDB server for tests.

The server is built from Debian's ``mariadb-server`` binaries in a fresh temporary directory, listens
only on 127.0.0.1 on a free port plus a private unix socket, and never touches a system MariaDB
(``--no-defaults`` everywhere, so /etc/mysql is not read).

Usage::

    with MariaDBServer() as db:
        engine = sqlalchemy.create_engine(db.uri)
        other_uri = db.fresh_database("case_42")
"""

from __future__ import annotations

import atexit
import logging
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import pymysql

from tests.support.waiting import free_port, log_tail, poll_for, require_binary, terminate_process

log = logging.getLogger(__name__)

APP_USER = "milvus"
APP_PASSWORD = "milvus"
APP_DATABASE = "milvus"
_APP_HOST = "127.0.0.1"

_DB_NAME_RE = re.compile(r"^[A-Za-z0-9_]{1,64}$")
_BIND_ERROR_MARKERS = ("Address already in use", "Bind on TCP/IP port")
# sun_path is 108 bytes on Linux; keep some margin.
_MAX_SOCKET_PATH = 100


class _ServerExited(Exception):
    def __init__(self, returncode: int) -> None:
        super().__init__(f"mariadbd exited with code {returncode}")
        self.returncode = returncode


class MariaDBServer:
    """A MariaDB server in a temporary directory, started on a free 127.0.0.1 port.

    ``start()`` (or entering the context manager) initialises the data directory, starts
    ``mariadbd``, waits until it answers and creates database ``milvus`` with user
    ``milvus``@``127.0.0.1`` (password ``milvus``) owning it. ``stop()`` terminates the server and
    removes the directory. ``port`` and ``pid`` stay readable after ``stop()``.
    """

    def __init__(
        self,
        *,
        startup_timeout: float = 60.0,
        stop_timeout: float = 20.0,
        port_attempts: int = 5,
        extra_args: Sequence[str] = (),
    ) -> None:
        self._startup_timeout = startup_timeout
        self._stop_timeout = stop_timeout
        self._port_attempts = port_attempts
        self._extra_args = list(extra_args)
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmpdir: Path | None = None
        self._port: int | None = None
        self._pid: int | None = None
        self._error_log: Path | None = None

    # -- properties -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("MariaDBServer has not been started")
        return self._port

    @property
    def pid(self) -> int:
        if self._pid is None:
            raise RuntimeError("MariaDBServer has not been started")
        return self._pid

    @property
    def uri(self) -> str:
        """SQLAlchemy URI of the ``milvus`` database as user ``milvus``."""
        return self.database_uri(APP_DATABASE)

    @property
    def base_dir(self) -> Path:
        if self._tmpdir is None:
            raise RuntimeError("MariaDBServer is not running")
        return self._tmpdir

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def socket_path(self) -> Path:
        return self.base_dir / "mysqld.sock"

    @property
    def error_log(self) -> Path | None:
        return self._error_log

    def database_uri(self, name: str) -> str:
        """SQLAlchemy URI of database ``name`` as user ``milvus`` over TCP."""
        return f"mysql+pymysql://{APP_USER}:{APP_PASSWORD}@{_APP_HOST}:{self.port}/{name}?charset=utf8mb4"

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> Self:
        if self._proc is not None:
            raise RuntimeError("MariaDBServer is already running")
        install_db = require_binary("mariadb-install-db", "mariadb-server")
        mariadbd = require_binary("mariadbd", "mariadb-server")
        self._tmpdir = _make_tmpdir()
        atexit.register(self.stop)
        started = time.monotonic()
        try:
            self._install(install_db)
            self._launch(mariadbd)
            self._create_app_database()
        except BaseException:
            self.stop()
            raise
        log.info(
            "MariaDB ready on 127.0.0.1:%d (pid %d) after %.1fs",
            self.port,
            self.pid,
            time.monotonic() - started,
        )
        return self

    def stop(self) -> None:
        """Terminate the server (SIGTERM, then SIGKILL after the stop timeout) and remove its files."""
        proc, self._proc = self._proc, None
        if proc is not None:
            terminate_process(proc, self._stop_timeout, name="mariadbd")
            log.info("MariaDB (pid %d) stopped", proc.pid)
        tmpdir, self._tmpdir = self._tmpdir, None
        if tmpdir is not None:
            shutil.rmtree(tmpdir, ignore_errors=True)
        atexit.unregister(self.stop)

    def __enter__(self) -> Self:
        if self._proc is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- use --------------------------------------------------------------------------------

    def connect_root(self, database: str | None = None) -> Any:
        """Open an autocommit pymysql connection as root over the private unix socket."""
        return pymysql.connect(
            unix_socket=str(self.socket_path),
            user="root",
            password="",
            database=database,
            autocommit=True,
            connect_timeout=5,
        )

    def fresh_database(self, name: str) -> str:
        """(Re)create database ``name`` empty, grant it to user ``milvus`` and return its URI.

        An existing database of that name is dropped first, so the result is always empty.
        """
        if not _DB_NAME_RE.match(name):
            raise ValueError(f"invalid database name {name!r} (use letters, digits and '_', max 64)")
        conn = self.connect_root()
        try:
            with conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
                cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci")
                cur.execute(f"GRANT ALL PRIVILEGES ON `{name}`.* TO %s@%s", (APP_USER, _APP_HOST))
        finally:
            conn.close()
        return self.database_uri(name)

    # -- internals --------------------------------------------------------------------------

    def _install(self, install_db: str) -> None:
        self.data_dir.mkdir()
        install_log = self.base_dir / "install.log"
        cmd = [
            install_db,
            "--no-defaults",
            "--user=root",
            f"--datadir={self.data_dir}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            "--skip-name-resolve",
        ]
        with install_log.open("wb") as out:
            try:
                result = subprocess.run(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=self._startup_timeout,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                raise RuntimeError(
                    f"mariadb-install-db did not finish within {self._startup_timeout:.0f}s; "
                    f"tail of {install_log}:\n{log_tail(install_log)}"
                ) from None
        if result.returncode != 0:
            raise RuntimeError(
                f"mariadb-install-db failed with exit code {result.returncode}; "
                f"tail of {install_log}:\n{log_tail(install_log)}"
            )

    def _launch(self, mariadbd: str) -> None:
        deadline = time.monotonic() + self._startup_timeout
        for attempt in range(1, self._port_attempts + 1):
            port = free_port()
            error_log = self.base_dir / f"error-{attempt}.log"
            pid_file = self.base_dir / "mysqld.pid"
            pid_file.unlink(missing_ok=True)
            cmd = [
                mariadbd,
                "--no-defaults",
                "--user=root",
                f"--datadir={self.data_dir}",
                f"--socket={self.socket_path}",
                f"--pid-file={pid_file}",
                "--bind-address=127.0.0.1",
                f"--port={port}",
                "--skip-name-resolve",
                f"--log-error={error_log}",
                "--innodb-buffer-pool-size=64M",
                "--skip-log-bin",
                # --no-defaults would otherwise leave the server at latin1 (Debian's config uses utf8mb4).
                "--character-set-server=utf8mb4",
                "--collation-server=utf8mb4_general_ci",
                *self._extra_args,
            ]
            log.debug("starting mariadbd on port %d (attempt %d)", port, attempt)
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self._proc, self._pid, self._port, self._error_log = proc, proc.pid, port, error_log
            try:
                conn = poll_for(
                    self._try_root_connect,
                    timeout=max(deadline - time.monotonic(), 0.0),
                    interval=0.05,
                    what=f"mariadbd on port {port} to accept connections",
                )
            except _ServerExited as exc:
                self._proc = None
                tail = log_tail(error_log)
                if attempt < self._port_attempts and any(m in tail for m in _BIND_ERROR_MARKERS):
                    log.info("port %d was taken, retrying MariaDB on another port", port)
                    continue
                raise RuntimeError(
                    f"mariadbd exited during startup with code {exc.returncode}; tail of {error_log}:\n{tail}"
                ) from None
            except TimeoutError:
                raise RuntimeError(
                    f"mariadbd did not accept connections within {self._startup_timeout:.0f}s; "
                    f"tail of {error_log}:\n{log_tail(error_log)}"
                ) from None
            conn.close()
            return
        raise RuntimeError(f"mariadbd could not bind a free port in {self._port_attempts} attempts")

    def _try_root_connect(self) -> Any:
        assert self._proc is not None
        returncode = self._proc.poll()
        if returncode is not None:
            raise _ServerExited(returncode)
        if not self.socket_path.exists():
            return None
        try:
            return self.connect_root()
        except pymysql.err.OperationalError:
            return None

    def _create_app_database(self) -> None:
        conn = self.connect_root()
        try:
            with conn.cursor() as cur:
                cur.execute(
                    f"CREATE DATABASE IF NOT EXISTS `{APP_DATABASE}` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"
                )
                cur.execute("CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY %s", (APP_USER, _APP_HOST, APP_PASSWORD))
                cur.execute(f"GRANT ALL PRIVILEGES ON `{APP_DATABASE}`.* TO %s@%s", (APP_USER, _APP_HOST))
        finally:
            conn.close()


def _make_tmpdir() -> Path:
    tmpdir = Path(tempfile.mkdtemp(prefix="mishards-mariadb-"))
    if len(str(tmpdir / "mysqld.sock")) > _MAX_SOCKET_PATH:
        # The unix socket path would be too long; fall back to /tmp.
        shutil.rmtree(tmpdir, ignore_errors=True)
        tmpdir = Path(tempfile.mkdtemp(prefix="mishards-mariadb-", dir="/tmp"))
    return tmpdir
