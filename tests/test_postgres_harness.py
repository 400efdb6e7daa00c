"""The throwaway PostgreSQL server of learnprivacy.testing.postgres, against real servers."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy

from learnprivacy.errors import ConfigurationError
from learnprivacy.testing._postgres_host import BIN_DIR_ENV, find_postgres_bin
from learnprivacy.testing.postgres import PostgresStartError, PostgresUnavailable, TemporaryPostgres
from tests import process_alive, serve_or_skip

IS_ROOT = os.geteuid() == 0


def _require_binaries() -> None:
    try:
        find_postgres_bin()
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def server() -> Iterator[TemporaryPostgres]:
    """One server for the read-only checks of this module."""
    yield from serve_or_skip(TemporaryPostgres(), PostgresUnavailable)


@pytest.fixture
def reachable_dir() -> Iterator[Path]:
    """A base directory the unprivileged server account can reach (pytest's tmp_path is 0700)."""
    directory = Path(tempfile.mkdtemp(prefix="lp-pg-test-"))
    directory.chmod(0o711)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def _server_account_uid() -> int:
    if not IS_ROOT:
        return os.geteuid()
    import pwd

    return pwd.getpwnam("postgres").pw_uid


def _postmaster_pid(server: TemporaryPostgres) -> int:
    return int((server.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])


def _make_bin_dir(
    directory: Path, names: tuple[str, ...] = ("initdb", "pg_ctl", "postgres")
) -> Path:
    directory.mkdir(parents=True)
    for name in names:
        program = directory / name
        program.write_text("#!/bin/sh\n")
        program.chmod(0o755)
    return directory


# -- finding the binaries (no server needed) ------------------------------------------------


def test_env_override_must_hold_the_binaries(tmp_path: Path) -> None:
    """LEARNPRIVACY_PG_BIN naming a directory without the programs is an error naming it."""
    with pytest.raises(PostgresUnavailable, match=BIN_DIR_ENV) as caught:
        find_postgres_bin({BIN_DIR_ENV: str(tmp_path), "PATH": ""})
    assert "initdb" in str(caught.value)


def test_env_override_wins_over_path(tmp_path: Path) -> None:
    """A complete LEARNPRIVACY_PG_BIN directory is used even when PATH has other binaries."""
    chosen = _make_bin_dir(tmp_path / "chosen")
    other = _make_bin_dir(tmp_path / "other")
    assert find_postgres_bin({BIN_DIR_ENV: str(chosen), "PATH": str(other)}) == chosen


def test_fallback_directories_newest_version_first(tmp_path: Path) -> None:
    """Without PATH hits, the highest complete version wins, compared as numbers."""
    for version in ("9.6", "10", "15"):
        _make_bin_dir(tmp_path / version / "bin")
    _make_bin_dir(tmp_path / "16" / "bin", names=("initdb",))  # Incomplete: skipped.
    found = find_postgres_bin(
        {"PATH": str(tmp_path / "empty")}, fallback_globs=[f"{tmp_path}/*/bin"]
    )
    assert found == tmp_path / "15" / "bin"


def test_path_link_resolves_to_the_install_directory(tmp_path: Path) -> None:
    """initdb on PATH as a link (like /usr/local/bin) resolves to the full install directory."""
    install = _make_bin_dir(tmp_path / "install", ("initdb", "pg_ctl", "postgres", "createdb"))
    links = tmp_path / "links"
    links.mkdir()
    for name in ("initdb", "pg_ctl", "postgres"):
        (links / name).symlink_to(install / name)
    assert find_postgres_bin({"PATH": str(links)}, fallback_globs=[]) == install


def test_nothing_found_says_how_to_fix_it(tmp_path: Path) -> None:
    """With no binaries anywhere the error says where it looked and how to install them."""
    with pytest.raises(PostgresUnavailable) as caught:
        find_postgres_bin({"PATH": str(tmp_path)}, fallback_globs=[f"{tmp_path}/*/bin"])
    message = str(caught.value)
    assert "apt-get install postgresql" in message
    assert BIN_DIR_ENV in message


def test_bad_arguments_are_rejected_before_anything_runs() -> None:
    """Names that would need SQL quoting and unknown stop modes are configuration errors."""
    with pytest.raises(ConfigurationError, match="database"):
        TemporaryPostgres(database='x"; DROP')
    with pytest.raises(ConfigurationError, match="stop_mode"):
        TemporaryPostgres(stop_mode="now")
    with pytest.raises(ConfigurationError, match="not running"):
        _ = TemporaryPostgres().url


# -- a running server -----------------------------------------------------------------------


@pytest.mark.postgres
def test_dsn_and_url_reach_the_database(server: TemporaryPostgres) -> None:
    """psycopg (dsn) and SQLAlchemy (url) both reach the created database and can write."""
    assert server.url == f"postgresql+psycopg://postgres@127.0.0.1:{server.port}/learnprivacy_test"
    with psycopg.connect(server.dsn) as connection:
        connection.execute("CREATE TABLE harness_check (id int PRIMARY KEY, label text)")
        connection.execute("INSERT INTO harness_check VALUES (1, 'one'), (2, 'two')")
    engine = sqlalchemy.create_engine(server.url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sqlalchemy.text("SELECT label FROM harness_check ORDER BY id")
            )
            assert [row.label for row in rows] == ["one", "two"]
            database = connection.execute(sqlalchemy.text("SELECT current_database()")).scalar()
            assert database == "learnprivacy_test"
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_create_database_gives_an_isolated_database(server: TemporaryPostgres) -> None:
    """A second database is empty, separate from the first, and can be dropped again."""
    with psycopg.connect(server.dsn) as connection:
        connection.execute("CREATE TABLE only_in_first (id int)")
    url = server.create_database("second_db")
    assert url == server.url_for("second_db")
    with psycopg.connect(server.dsn_for("second_db")) as connection:
        tables = connection.execute(
            "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_first'"
        ).fetchone()
        assert tables == (0,)
        connection.execute("CREATE TABLE only_in_second (id int)")
    unique_url = server.create_database()
    assert unique_url.rsplit("/", 1)[1].startswith("test_")
    with psycopg.connect(server.dsn_for("second_db")):
        # An open connection does not prevent the drop.
        server.drop_database("second_db")
    with psycopg.connect(server.dsn_for("postgres")) as connection:
        names = {row[0] for row in connection.execute("SELECT datname FROM pg_database")}
    assert "second_db" not in names
    assert unique_url.rsplit("/", 1)[1] in names
    with pytest.raises(ConfigurationError):
        server.create_database("bad name")


@pytest.mark.postgres
def test_server_is_private_and_fast(server: TemporaryPostgres) -> None:
    """Loopback and a private socket only, trust limited to them, durability off."""
    with psycopg.connect(server.dsn) as connection:

        def setting(name: str) -> str:
            row = connection.execute("SELECT current_setting(%s)", (name,)).fetchone()
            assert row is not None
            return str(row[0])

        assert setting("listen_addresses") == "127.0.0.1"
        assert setting("unix_socket_directories") == str(server.directory)
        assert setting("fsync") == "off"
        assert Path(setting("data_directory")) == server.data_dir
        rules = connection.execute(
            "SELECT type, address, auth_method FROM pg_hba_file_rules ORDER BY line_number"
        ).fetchall()
    assert rules == [("local", None, "trust"), ("host", "127.0.0.1", "trust")]


@pytest.mark.postgres
def test_server_runs_unprivileged(server: TemporaryPostgres) -> None:
    """As root the server runs as the 'postgres' account; otherwise as the current user."""
    expected_uid = _server_account_uid()
    assert expected_uid != 0
    assert os.stat(f"/proc/{_postmaster_pid(server)}").st_uid == expected_uid
    assert server.directory.stat().st_uid == expected_uid
    assert stat.S_IMODE(server.data_dir.stat().st_mode) == 0o700


@pytest.mark.postgres
def test_forked_child_cannot_stop_the_parents_server(server: TemporaryPostgres) -> None:
    """A forked worker inherits the server object, but its stop() leaves the server running."""
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child process
        server.stop()
        os._exit(0)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert server.running
    assert server.directory.exists()
    with psycopg.connect(server.dsn) as connection:
        assert connection.execute("SELECT 1").fetchone() == (1,)


@pytest.mark.postgres
def test_stop_cleans_up_even_when_the_body_raises(server: TemporaryPostgres) -> None:
    """Leaving the block by an exception stops the server and deletes its directory."""
    _require_binaries()
    scratch = TemporaryPostgres(database="scratch")
    # The whole block is under test: it must clean up when its body raises.
    with pytest.raises(RuntimeError, match="body failed"), scratch:  # noqa: PT012
        assert scratch.port != server.port
        dsn, directory, pid = scratch.dsn, scratch.directory, _postmaster_pid(scratch)
        with psycopg.connect(dsn) as connection:
            connection.execute("SELECT 1")
        raise RuntimeError("body failed")
    assert not scratch.running
    assert not directory.exists()
    assert not process_alive(pid)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(dsn, connect_timeout=2)
    scratch.stop()  # A second stop is harmless.
    with pytest.raises(ConfigurationError):
        _ = scratch.url


@pytest.mark.postgres
def test_failed_start_raises_with_log_tail_and_cleans_up(reachable_dir: Path) -> None:
    """A server that cannot start raises PostgresStartError quoting its log, leaving nothing."""
    _require_binaries()
    broken = TemporaryPostgres(base_dir=reachable_dir, settings={"shared_buffers": "lots"})
    with pytest.raises(PostgresStartError, match="shared_buffers"):
        broken.start()
    assert not broken.running
    assert list(reachable_dir.iterdir()) == []


@pytest.mark.skipif(not IS_ROOT, reason="only root has to hand the server to another account")
def test_root_without_server_account_is_unavailable() -> None:
    """As root, a missing unprivileged account is a reason to skip, named in the message."""
    _require_binaries()
    with pytest.raises(PostgresUnavailable, match="no_such_account_xyz"):
        TemporaryPostgres(os_user="no_such_account_xyz").start()


@pytest.mark.skipif(not IS_ROOT, reason="only root has to hand the server to another account")
def test_root_refuses_a_directory_the_server_account_cannot_reach(tmp_path: Path) -> None:
    """As root, a base directory the 'postgres' account cannot traverse is reported clearly."""
    _require_binaries()
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    with pytest.raises(PostgresUnavailable, match="search permission"):
        TemporaryPostgres(base_dir=private).start()
    assert list(private.iterdir()) == []
