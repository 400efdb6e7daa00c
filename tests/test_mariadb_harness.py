"""The throwaway MariaDB server of learnprivacy.testing.mariadb, against real servers."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from learnprivacy.errors import ConfigurationError
from learnprivacy.testing.mariadb import (
    BIN_DIR_ENV,
    MariaDBUnavailable,
    TemporaryMariaDB,
    find_mariadb,
)
from tests import process_alive

pytestmark = pytest.mark.mariadb


def _require_programs() -> None:
    try:
        find_mariadb()
    except MariaDBUnavailable as exc:
        pytest.skip(str(exc))


def test_override_directory_without_programs_is_unavailable(tmp_path: Path) -> None:
    """A LEARNPRIVACY_MARIADB_BIN without the programs says so, naming the directory."""
    with pytest.raises(MariaDBUnavailable, match=str(tmp_path)):
        find_mariadb({BIN_DIR_ENV: str(tmp_path), "PATH": ""})
    with pytest.raises(MariaDBUnavailable):
        TemporaryMariaDB(bin_dir=tmp_path).start()


def test_programs_found_in_a_given_directory(tmp_path: Path) -> None:
    """Both names of each program are accepted (mysqld, mysql_install_db)."""
    for name in ("mysqld", "mysql_install_db"):
        (tmp_path / name).write_text("#!/bin/sh\n")
        (tmp_path / name).chmod(0o755)
    assert find_mariadb({BIN_DIR_ENV: str(tmp_path)}) == (
        tmp_path / "mysqld",
        tmp_path / "mysql_install_db",
    )


def test_bad_names_are_refused() -> None:
    """Database and option names must be plain identifiers (they reach SQL and argv)."""
    with pytest.raises(ConfigurationError):
        TemporaryMariaDB(database="x; DROP DATABASE mysql")
    with pytest.raises(ConfigurationError):
        TemporaryMariaDB(options={"--init-file": "/etc/passwd"})


def test_server_runs_unprivileged_and_leaves_nothing_behind() -> None:
    """A real server on loopback: utf8mb4 databases, not root, directory removed at stop."""
    _require_programs()
    server = TemporaryMariaDB().start()
    try:
        directory, pid = server.directory, server.pid
        assert pid is not None
        assert Path(f"/proc/{pid}").stat().st_uid != 0 or os.geteuid() != 0
        engine = sa.create_engine(server.create_database("harness"))
        with engine.connect() as connection:
            charset = connection.execute(sa.text("SELECT @@character_set_database")).scalar()
            host = connection.execute(sa.text("SELECT @@bind_address")).scalar()
        engine.dispose()
        assert (charset, host) == ("utf8mb4", "127.0.0.1")
        server.drop_database("harness")
    finally:
        server.stop()
    assert not directory.exists()
    assert not process_alive(pid)
    server.stop()  # idempotent
    with pytest.raises(ConfigurationError):
        _ = server.url


def test_killed_server_is_still_cleaned_up() -> None:
    """A server killed under the tests (SIGKILL) does not stop stop() from cleaning up."""
    _require_programs()
    server = TemporaryMariaDB().start()
    directory, pid = server.directory, server.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while process_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    server.stop()
    assert not directory.exists()
