"""A throwaway PostgreSQL server for test suites.

:class:`TemporaryPostgres` runs ``initdb`` into a fresh temporary directory, starts the
server with ``pg_ctl`` on a free loopback port, waits until it accepts connections and
creates a database. At exit it stops the server and deletes the directory, even when the
body raised:

```python
from learnprivacy.testing.postgres import TemporaryPostgres

with TemporaryPostgres() as server:
    store = Store(server.url, keyring=keyring)   # postgresql+psycopg://...
    other_url = server.create_database("isolated")
```

The server binaries are looked up in the directory named by ``LEARNPRIVACY_PG_BIN``, then
on ``PATH``, then in ``/usr/lib/postgresql/*/bin`` and ``/usr/pgsql-*/bin`` (newest version
first). When none is found, :class:`PostgresUnavailable` says why, so a fixture can skip.

PostgreSQL refuses to run as root. When the process runs as root, ``initdb`` and
``pg_ctl`` run as the unprivileged ``postgres`` user (``os_user=`` picks another) and the
temporary directory is handed over to that user.

The server trusts every connection, so it only listens on 127.0.0.1 and on a Unix socket
inside its own directory. It runs with ``fsync=off``: it is for tests, never for data.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import LiteralString

from learnprivacy.errors import ConfigurationError
from learnprivacy.testing._postgres_host import (
    PostgresStartError,
    PostgresUnavailable,
    Runner,
    find_postgres_bin,
    free_loopback_port,
    make_directory,
    missing_binaries,
    read_from,
    shutdown,
    tail,
    unprivileged_account,
)
from learnprivacy.testing._server import LoopbackDatabaseServer

__all__ = [
    "PostgresStartError",
    "PostgresUnavailable",
    "TemporaryPostgres",
]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_SETTING_NAME = re.compile(r"[a-z_][a-z0-9_.]*")
# A Unix socket path must fit in sun_path (108 bytes on Linux, 104 on macOS).
_MAX_SOCKET_DIR = 90
_PORT_ATTEMPTS = 5
_DEFAULT_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    # Durability is pointless for a server deleted at the end of the run, and costly.
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "shared_buffers": "32MB",
    "max_connections": "200",
}


class TemporaryPostgres(LoopbackDatabaseServer):
    """A throwaway PostgreSQL server in a temporary directory, on a free loopback port.

    Use it as a context manager, or call :meth:`start` and :meth:`stop` (for a pytest
    session fixture). :meth:`stop` is idempotent and also runs at interpreter exit.

    Args:
        database: name of the database created at start; :attr:`url` points at it.
        user: name of the database superuser (trust authentication, no password).
        bin_dir: directory of the server binaries; default :func:`find_postgres_bin`.
        base_dir: where to create the temporary directory; default the system one.
        os_user: the unprivileged account to run the server as when running as root.
        settings: extra ``postgresql.conf`` settings, e.g. ``{"work_mem": "8MB"}``.
        start_timeout: seconds to wait for the server to accept connections.
        stop_mode: ``pg_ctl stop`` mode: ``"fast"`` (default) or ``"immediate"``.

    Raises:
        PostgresUnavailable: (from :meth:`start`) no binaries, or no unprivileged user.
        PostgresStartError: (from :meth:`start`) the server failed; the server log follows.
    """

    def __init__(
        self,
        *,
        database: str = "learnprivacy_test",
        user: str = "postgres",
        bin_dir: str | Path | None = None,
        base_dir: str | Path | None = None,
        os_user: str = "postgres",
        settings: Mapping[str, str] | None = None,
        start_timeout: float = 60.0,
        stop_mode: str = "fast",
    ) -> None:
        for label, value in (("database", database), ("user", user)):
            if not _IDENTIFIER.fullmatch(value):
                raise ConfigurationError(f"TemporaryPostgres {label} must be a plain identifier")
        if stop_mode not in ("immediate", "fast", "smart"):
            raise ConfigurationError("TemporaryPostgres stop_mode must be immediate/fast/smart")
        for name in settings or {}:
            if not _SETTING_NAME.fullmatch(name):
                raise ConfigurationError("TemporaryPostgres settings need plain parameter names")
        self.database = database
        self.user = user
        self._bin_dir = None if bin_dir is None else Path(bin_dir)
        self._base_dir = None if base_dir is None else Path(base_dir)
        self._os_user = os_user
        self._settings = {**_DEFAULT_SETTINGS, **(settings or {})}
        self._start_timeout = start_timeout
        self._stop_mode = stop_mode
        self._directory: Path | None = None
        self._port: int | None = None
        self._runner: Runner | None = None

    def __repr__(self) -> str:
        state = f"port={self._port}" if self.running else "stopped"
        return f"<TemporaryPostgres {self.database} {state}>"

    # -- lifecycle ---------------------------------------------------------------------

    start_error = PostgresStartError

    def _launch(self) -> None:
        """Create the cluster, start the server, wait until ready, create the database."""
        bin_dir = self._bin_dir or find_postgres_bin()
        missing = missing_binaries(bin_dir)
        if missing:
            raise PostgresUnavailable(f"{', '.join(missing)} is missing in {bin_dir}")
        uid, gid, groups = unprivileged_account(self._os_user)
        directory = make_directory(self._base_dir, uid, gid, groups)
        env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
        # English messages, so the log tail is readable and "could not bind" is detectable.
        env.update(LC_ALL="C", LANG="C")
        runner = Runner(uid=uid, gid=gid, cwd=directory, env=env)
        self._directory, self._runner, self._bin_dir = directory, runner, bin_dir
        self._clean_up_with(
            shutdown, runner, bin_dir / "pg_ctl", directory, self._stop_mode, os.getpid()
        )
        self._initdb(bin_dir, directory, runner)
        self._port = self._start_server(bin_dir, directory, runner)
        self._wait_until_ready()
        if self.database != "postgres":
            self.create_database(self.database)

    def _initdb(self, bin_dir: Path, directory: Path, runner: Runner) -> None:
        data_dir = directory / "data"
        result = runner.run(
            [
                *(bin_dir / "initdb", "-D", data_dir, "-U", self.user),
                *("-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync"),
            ],
            timeout=self._start_timeout + 60,
        )
        if result.returncode != 0:
            raise PostgresStartError(
                f"initdb failed (exit {result.returncode}) in {bin_dir}:\n{result.stderr[-4000:]}"
            )
        # Trust only the private socket and loopback; the server listens nowhere else.
        (data_dir / "pg_hba.conf").write_text(
            "# Throwaway test server: trust the private socket and loopback only.\n"
            "local all all trust\nhost all all 127.0.0.1/32 trust\n"
        )
        settings = dict(self._settings)
        socket_dir = str(directory) if len(str(directory)) <= _MAX_SOCKET_DIR else ""
        settings.setdefault("unix_socket_directories", socket_dir)
        with (data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\n# Settings of learnprivacy.testing.postgres\n")
            for name, value in settings.items():
                conf.write(f"{name} = '{value.replace(chr(39), chr(39) * 2)}'\n")

    def _start_server(self, bin_dir: Path, directory: Path, runner: Runner) -> int:
        log_path = directory / "server.log"
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            offset = log_path.stat().st_size if log_path.exists() else 0
            port = free_loopback_port()
            result = runner.run(
                [
                    *(bin_dir / "pg_ctl", "start", "-D", directory / "data", "-l", log_path),
                    *("-o", f"-p {port}", "-w", "-t", str(int(self._start_timeout)), "-s"),
                ],
                timeout=self._start_timeout + 30,
            )
            if result.returncode == 0:
                return port
            log = read_from(log_path, offset)
            # Another process may grab the port between our probe and the server's bind.
            port_taken = "could not bind" in log or "could not create any TCP/IP" in log
            if port_taken and attempt < _PORT_ATTEMPTS:
                continue
            raise PostgresStartError(
                f"PostgreSQL did not start with {bin_dir}/pg_ctl (exit {result.returncode}): "
                f"{result.stderr.strip()}\n--- tail of {log_path} ---\n{tail(log)}"
            )
        raise AssertionError("unreachable")  # pragma: no cover

    def _wait_until_ready(self) -> None:
        # pg_ctl -w already waited for the "ready" state; this also proves that the TCP
        # listener and authentication work before a test relies on them.
        self._poll(
            lambda: _probe(self.dsn_for("postgres"), self.port),
            failing="PostgreSQL did not accept connections",
            longest=0.5,
        )

    # -- connection details ---------------------------------------------------------------

    @property
    def url(self) -> str:
        """SQLAlchemy URL of :attr:`database`: ``postgresql+psycopg://USER@127.0.0.1:PORT/DB``."""
        return self.url_for(self.database)

    @property
    def dsn(self) -> str:
        """libpq connection string of :attr:`database`, for ``psycopg.connect``."""
        return self.dsn_for(self.database)

    def url_for(self, database: str) -> str:
        """SQLAlchemy URL of another database of this server."""
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{database}"

    def dsn_for(self, database: str) -> str:
        """libpq connection string of another database of this server."""
        return f"host={self.host} port={self.port} user={self.user} dbname={database}"

    @property
    def data_dir(self) -> Path:
        """The cluster's data directory (``PGDATA``)."""
        return self.directory / "data"

    @property
    def bin_dir(self) -> Path | None:
        """Directory of the binaries used (known once started)."""
        return self._bin_dir

    # -- databases ----------------------------------------------------------------------------

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database and return its SQLAlchemy URL.

        Without ``name`` a unique one (``test_<hex>``) is chosen. Names must be plain
        identifiers. Needs psycopg, or the ``createdb`` program next to the server.
        """
        name = name or f"test_{os.urandom(6).hex()}"
        self._admin_command(name, "CREATE DATABASE {}", "createdb")
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, closing its open connections first."""
        self._admin_command(name, "DROP DATABASE IF EXISTS {} WITH (FORCE)", "dropdb")

    def _admin_command(self, name: str, statement: LiteralString, program: str) -> None:
        if not _IDENTIFIER.fullmatch(name):
            raise ConfigurationError("database names must be plain identifiers")
        try:
            import psycopg  # Optional dependency.
            from psycopg import sql
        except ImportError:
            self._run_client(program, name)
            return
        with psycopg.connect(self.dsn_for("postgres"), autocommit=True) as connection:
            connection.execute(sql.SQL(statement).format(sql.Identifier(name)))

    def _run_client(self, program: str, name: str) -> None:
        """Run ``createdb``/``dropdb``, found next to the server binaries."""
        if self._bin_dir is None or self._runner is None:
            raise self._not_running()
        pg_ctl = self._bin_dir / "pg_ctl"
        found = [d / program for d in (self._bin_dir, Path(os.path.realpath(pg_ctl)).parent)]
        executable = next((path for path in found if path.is_file()), None)
        if executable is None:
            raise PostgresUnavailable(f"{program} needs psycopg installed or {found[0]}")
        force = ["--force"] if program == "dropdb" else []
        result = self._runner.run(
            [executable, "-h", self.host, "-p", str(self.port), "-U", self.user, *force, name],
            timeout=60,
        )
        if result.returncode != 0:
            raise PostgresStartError(f"{program} failed: {result.stderr.strip()}")


def _probe(dsn: str, port: int) -> None:
    """Connect once (with psycopg when installed, else plain TCP); OSError if refused."""
    try:
        import psycopg  # Optional dependency.
    except ImportError:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return
    try:
        psycopg.connect(dsn, connect_timeout=2).close()
    except psycopg.OperationalError as exc:
        raise ConnectionError(str(exc)) from exc
