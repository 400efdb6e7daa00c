"""A throwaway MariaDB (or MySQL) server for test suites.

:class:`TemporaryMariaDB` runs ``mariadb-install-db`` into a fresh temporary directory,
starts ``mariadbd`` on a free loopback port, waits until it accepts connections and creates
a database (``utf8mb4``, as Moodle requires). At exit it stops the server and deletes the
directory, even when the body raised:

```python
from learnprivacy.testing.mariadb import TemporaryMariaDB

with TemporaryMariaDB() as server:
    engine = sqlalchemy.create_engine(server.url)     # mysql+pymysql://root@127.0.0.1:PORT/...
    other_url = server.create_database()
```

The programs are looked up in the directory named by ``LEARNPRIVACY_MARIADB_BIN``, then on
``PATH``, then in ``/usr/sbin``, ``/usr/bin``, ``/usr/libexec`` and ``/usr/local/mysql/bin``:
the server is ``mariadbd`` (or ``mysqld``), the installer ``mariadb-install-db`` (or
``mysql_install_db``). When one is missing, :class:`MariaDBUnavailable` says which and where
it looked, so a fixture can skip. The connection helpers need ``pymysql``
(``pip install 'learnprivacy[moodle]'``).

MariaDB refuses to run as root: when the process runs as root, the programs run as the
unprivileged ``mysql`` user (``os_user=`` picks another) and the directory is handed over.

The ``root`` account has no password, so the server only listens on 127.0.0.1 and on a
Unix socket inside its own directory. It runs without binary log, doublewrite or flush at
commit: it is for tests, never for data.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from learnprivacy.errors import ConfigurationError, LearnPrivacyError
from learnprivacy.testing._postgres_host import (
    Runner,
    free_loopback_port,
    make_directory,
    read_from,
    tail,
    unprivileged_account,
)
from learnprivacy.testing._server import LoopbackDatabaseServer

__all__ = [
    "MariaDBStartError",
    "MariaDBUnavailable",
    "TemporaryMariaDB",
]

BIN_DIR_ENV = "LEARNPRIVACY_MARIADB_BIN"
"""Environment variable naming a directory holding the server and its installer."""

_SERVERS = ("mariadbd", "mysqld")
_INSTALLERS = ("mariadb-install-db", "mysql_install_db")
_FALLBACK_DIRS = ("/usr/sbin", "/usr/bin", "/usr/libexec", "/usr/local/mysql/bin")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_OPTION = re.compile(r"[a-z][a-z0-9_-]*")
_PORT_ATTEMPTS = 5
_DEFAULT_OPTIONS = {
    # Durability and replication are pointless for a server deleted at the end of the run.
    "innodb-flush-log-at-trx-commit": "0",
    "innodb-doublewrite": "0",
    "innodb-buffer-pool-size": "64M",
    "sync-binlog": "0",
    "character-set-server": "utf8mb4",
    "collation-server": "utf8mb4_unicode_ci",
    "max-connections": "200",
}
# Lines of the server log that mean another process took our port first.
_PORT_TAKEN = ("Address already in use", "Can't start server: Bind on TCP/IP port")


class MariaDBUnavailable(ConfigurationError):
    """No MariaDB server can run here (programs or unprivileged user missing).

    The message says why; a test fixture can ``pytest.skip(str(exc))``.
    """


class MariaDBStartError(LearnPrivacyError, RuntimeError):
    """The programs exist but the server did not start: a real failure, not a reason to skip.

    The message ends with the tail of the server log.
    """


def find_mariadb(environ: Mapping[str, str] | None = None) -> tuple[Path, Path]:
    """Return the paths of the server (``mariadbd``/``mysqld``) and of its installer.

    Looks in ``$LEARNPRIVACY_MARIADB_BIN`` (which, when set, must be right), then on
    ``PATH``, then in the usual system directories.

    Raises:
        MariaDBUnavailable: a program was not found; the message says where it looked.
    """
    env = os.environ if environ is None else environ
    override = env.get(BIN_DIR_ENV)
    if override:
        server = _first_program(_SERVERS, [Path(override)])
        installer = _first_program(_INSTALLERS, [Path(override)])
        if server is None or installer is None:
            raise MariaDBUnavailable(
                f"{BIN_DIR_ENV} is set to {override} but "
                f"{'/'.join(_SERVERS if server is None else _INSTALLERS)} is missing there"
            )
        return server, installer
    path_dirs = [Path(d) for d in env.get("PATH", os.defpath).split(os.pathsep) if d]
    directories = [*path_dirs, *(Path(d) for d in _FALLBACK_DIRS)]
    server = _first_program(_SERVERS, directories)
    installer = _first_program(_INSTALLERS, [*directories, *([server.parent] if server else [])])
    if server is None or installer is None:
        missing = "/".join(_SERVERS) if server is None else "/".join(_INSTALLERS)
        raise MariaDBUnavailable(
            f"no MariaDB {missing} found on PATH nor in {', '.join(_FALLBACK_DIRS)}; install "
            f"MariaDB (Debian: apt-get install mariadb-server) or set {BIN_DIR_ENV}"
        )
    return server, installer


def _first_program(names: tuple[str, ...], directories: list[Path]) -> Path | None:
    for directory in directories:
        for name in names:
            candidate = directory / name
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return candidate
    return None


class TemporaryMariaDB(LoopbackDatabaseServer):
    """A throwaway MariaDB server in a temporary directory, on a free loopback port.

    Use it as a context manager, or call :meth:`start` and :meth:`stop` (for a pytest
    session fixture). :meth:`stop` is idempotent and also runs at interpreter exit.

    Args:
        database: name of the database created at start; :attr:`url` points at it.
        bin_dir: a directory holding the server and its installer; default
            :func:`find_mariadb`.
        base_dir: where to create the temporary directory; default the system one.
        os_user: the unprivileged account to run the server as when running as root.
        options: extra server options, e.g. ``{"sql-mode": "ANSI"}``.
        start_timeout: seconds to wait for the installer and for the server to be ready.

    Raises:
        MariaDBUnavailable: (from :meth:`start`) no programs, or no unprivileged user.
        MariaDBStartError: (from :meth:`start`) the server failed; its log follows.
    """

    def __init__(
        self,
        *,
        database: str = "learnprivacy_test",
        bin_dir: str | Path | None = None,
        base_dir: str | Path | None = None,
        os_user: str = "mysql",
        options: Mapping[str, str] | None = None,
        start_timeout: float = 90.0,
    ) -> None:
        if not _IDENTIFIER.fullmatch(database):
            raise ConfigurationError("TemporaryMariaDB database must be a plain identifier")
        for name in options or {}:
            if not _OPTION.fullmatch(name):
                raise ConfigurationError("TemporaryMariaDB options need plain option names")
        self.database = database
        self.user = "root"
        self._bin_dir = None if bin_dir is None else Path(bin_dir)
        self._base_dir = None if base_dir is None else Path(base_dir)
        self._os_user = os_user
        self._options = {**_DEFAULT_OPTIONS, **(options or {})}
        self._start_timeout = start_timeout
        self._directory: Path | None = None
        self._port: int | None = None
        self._server: Path | None = None
        self._process = _ServerProcess(os.getpid())

    def __repr__(self) -> str:
        state = f"port={self._port}" if self.running else "stopped"
        return f"<TemporaryMariaDB {self.database} {state}>"

    # -- lifecycle ---------------------------------------------------------------------

    start_error = MariaDBStartError

    def _launch(self) -> None:
        """Install a data directory, start the server, wait until ready, create the database."""
        environ = dict(os.environ)
        if self._bin_dir is not None:
            environ[BIN_DIR_ENV] = str(self._bin_dir)
        server, installer = find_mariadb(environ)
        uid, gid, groups = unprivileged_account(
            self._os_user, server="MariaDB", unavailable=MariaDBUnavailable
        )
        directory = make_directory(
            self._base_dir, uid, gid, groups, prefix="lp-my-", unavailable=MariaDBUnavailable
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MYSQL", "MARIADB"))}
        env.update(LC_ALL="C", LANG="C")
        runner = Runner(uid=uid, gid=gid, cwd=directory, env=env)
        self._directory, self._server = directory, server
        self._process = _ServerProcess(os.getpid())
        self._clean_up_with(_shutdown, self._process, directory)
        self._install(installer, directory, runner)
        self._port = self._start_server(server, directory, runner)
        self.create_database(self.database)

    def _install(self, installer: Path, directory: Path, runner: Runner) -> None:
        result = runner.run(
            [
                installer,
                "--no-defaults",
                f"--datadir={directory / 'data'}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--skip-name-resolve",
            ],
            timeout=self._start_timeout + 60,
        )
        if result.returncode != 0:
            raise MariaDBStartError(
                f"{installer.name} failed (exit {result.returncode}):\n"
                f"{(result.stderr or result.stdout)[-4000:]}"
            )
        # The installer creates root@localhost only; the tests connect over 127.0.0.1, which
        # --skip-name-resolve does not call localhost. The server runs this file at start.
        init = directory / "init.sql"
        init.write_text(
            "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';\n"
            "GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;\n"
        )
        init.chmod(0o644)

    def _start_server(self, server: Path, directory: Path, runner: Runner) -> int:
        log_path = directory / "server.log"
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            offset = log_path.stat().st_size if log_path.exists() else 0
            port = free_loopback_port()
            args: list[str | Path] = [
                server,
                "--no-defaults",
                f"--datadir={directory / 'data'}",
                f"--port={port}",
                "--bind-address=127.0.0.1",
                f"--socket={directory / 'mysqld.sock'}",
                f"--pid-file={directory / 'mysqld.pid'}",
                f"--init-file={directory / 'init.sql'}",
                f"--tmpdir={directory}",
                "--skip-name-resolve",
                "--skip-log-bin",
                *(f"--{name}={value}" for name, value in self._options.items()),
            ]
            self._process.popen = runner.spawn(args, log_path)
            if self._wait_until_ready(port, log_path, offset):
                return port
            log = read_from(log_path, offset)
            self._process.stop()
            if any(marker in log for marker in _PORT_TAKEN) and attempt < _PORT_ATTEMPTS:
                continue
            raise MariaDBStartError(
                f"MariaDB did not start with {server}\n--- tail of {log_path} ---\n{tail(log)}"
            )
        raise AssertionError("unreachable")  # pragma: no cover

    def _wait_until_ready(self, port: int, log_path: Path, offset: int) -> bool:
        """True once the server accepts connections; False if it exited or timed out."""
        deadline = time.monotonic() + self._start_timeout
        delay = 0.05
        while time.monotonic() < deadline:
            if not self._process.alive:
                return False
            if "ready for connections" in read_from(log_path, offset):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=2).close()
                except OSError:
                    pass
                else:
                    return True
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
        return False

    # -- connection details ---------------------------------------------------------------

    @property
    def url(self) -> str:
        """SQLAlchemy URL of :attr:`database`: ``mysql+pymysql://root@127.0.0.1:PORT/DB``."""
        return self.url_for(self.database)

    def url_for(self, database: str) -> str:
        """SQLAlchemy URL of another database of this server (``utf8mb4`` connections)."""
        return f"mysql+pymysql://{self.user}@{self.host}:{self.port}/{database}?charset=utf8mb4"

    @property
    def server_program(self) -> Path | None:
        """The server program used (known once started)."""
        return self._server

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        popen = self._process.popen
        return None if popen is None or not self.running else popen.pid

    # -- databases ----------------------------------------------------------------------------

    def create_database(self, name: str | None = None) -> str:
        """Create an empty ``utf8mb4`` database and return its SQLAlchemy URL.

        Without ``name`` a unique one (``test_<hex>``) is chosen. Names must be plain
        identifiers. Needs pymysql.
        """
        name = name or f"test_{os.urandom(6).hex()}"
        self._admin(name, "CREATE DATABASE `{}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop a database (and its tables)."""
        self._admin(name, "DROP DATABASE IF EXISTS `{}`")

    def _admin(self, name: str, statement: str) -> None:
        if not _IDENTIFIER.fullmatch(name):
            raise ConfigurationError("database names must be plain identifiers")
        if self._port is None:
            raise self._not_running()
        try:
            import pymysql  # Optional dependency (the ``moodle`` extra).
        except ImportError:
            raise MariaDBUnavailable(
                "TemporaryMariaDB needs pymysql: pip install 'learnprivacy[moodle]'"
            ) from None
        connection = pymysql.connect(host=self.host, port=self._port, user=self.user)
        try:
            with connection.cursor() as cursor:
                cursor.execute(statement.format(name))
        finally:
            connection.close()


class _ServerProcess:
    """The server process, held apart from the harness so that its finaliser can stop it."""

    def __init__(self, owner_pid: int) -> None:
        self.owner_pid = owner_pid
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self) -> None:
        """SIGTERM (a clean shutdown), then SIGKILL if it has not exited within 30 s."""
        popen = self.popen
        if popen is None or popen.poll() is not None:
            return
        popen.send_signal(signal.SIGTERM)
        try:
            popen.wait(timeout=30)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait(timeout=10)


def _shutdown(process: _ServerProcess, directory: Path) -> None:
    """Stop the server if it runs, then delete its directory. Safe to call at exit."""
    if os.getpid() != process.owner_pid:
        # A forked child (a worker process of a test) inherits the exit hook; only the
        # process that started the server may stop it.
        return
    try:
        process.stop()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
