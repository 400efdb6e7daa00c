"""Host-side helpers of :mod:`learnprivacy.testing.postgres` and ``.mariadb``.

Finding the server binaries, choosing the account and directory the server runs with,
running its programs, and tearing it down. Public names are re-exported by
:mod:`learnprivacy.testing.postgres`.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from learnprivacy.errors import ConfigurationError, LearnPrivacyError

__all__ = [
    "BIN_DIR_ENV",
    "PostgresStartError",
    "PostgresUnavailable",
    "Runner",
    "find_postgres_bin",
    "free_loopback_port",
    "make_directory",
    "missing_binaries",
    "read_from",
    "shutdown",
    "tail",
    "unprivileged_account",
]

BIN_DIR_ENV = "LEARNPRIVACY_PG_BIN"
"""Environment variable naming the directory that holds ``initdb``, ``pg_ctl``, ``postgres``."""

_FALLBACK_GLOBS = ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin")
_REQUIRED = ("initdb", "pg_ctl", "postgres")


class PostgresUnavailable(ConfigurationError):
    """No PostgreSQL server can run here (binaries or unprivileged user missing).

    The message says why; a test fixture can ``pytest.skip(str(exc))``.
    """


class PostgresStartError(LearnPrivacyError, RuntimeError):
    """The PostgreSQL binaries exist but the server did not start or stop.

    This is a real failure, not a reason to skip: the message ends with the tail of the
    server log.
    """


def find_postgres_bin(
    environ: Mapping[str, str] | None = None,
    *,
    fallback_globs: Sequence[str] = _FALLBACK_GLOBS,
) -> Path:
    """Return the directory holding ``initdb``, ``pg_ctl`` and ``postgres``.

    Looks at ``$LEARNPRIVACY_PG_BIN`` (which, when set, must be right), then ``PATH``
    (the directory of ``initdb`` and, if it is a link, of its target), then
    ``fallback_globs`` sorted by version number, newest first.

    Raises:
        PostgresUnavailable: nothing suitable was found; the message says where it looked.
    """
    env = os.environ if environ is None else environ
    override = env.get(BIN_DIR_ENV)
    if override:
        missing = missing_binaries(Path(override))
        if missing:
            raise PostgresUnavailable(
                f"{BIN_DIR_ENV} is set to {override} but {', '.join(missing)} is missing there"
            )
        return Path(override)
    initdb = shutil.which("initdb", path=env.get("PATH", os.defpath))
    if initdb is not None:
        # The link target's directory first: it also holds createdb, psql and friends.
        for directory in (Path(os.path.realpath(initdb)).parent, Path(initdb).parent):
            if not missing_binaries(directory):
                return directory
    candidates = {Path(match) for pattern in fallback_globs for match in glob.glob(pattern)}
    for directory in sorted(candidates, key=_version_key, reverse=True):
        if not missing_binaries(directory):
            return directory
    raise PostgresUnavailable(
        "no PostgreSQL server binaries (initdb, pg_ctl, postgres) found on PATH nor in "
        f"{', '.join(fallback_globs)}; install PostgreSQL (Debian: apt-get install "
        f"postgresql) or set {BIN_DIR_ENV} to their directory"
    )


def missing_binaries(directory: Path) -> list[str]:
    return [
        name
        for name in _REQUIRED
        if not ((directory / name).is_file() and os.access(directory / name, os.X_OK))
    ]


def _version_key(directory: Path) -> tuple[int, ...]:
    # Compare "9.6" < "10" < "15" as numbers, not as text.
    found = re.findall(r"\d+(?:\.\d+)*", str(directory))
    return tuple(int(part) for part in found[-1].split(".")) if found else ()


@dataclass(frozen=True)
class Runner:
    """Runs the server programs, as the unprivileged user when we are root."""

    uid: int | None
    gid: int | None
    cwd: Path
    env: Mapping[str, str]

    def _options(self) -> dict[str, Any]:
        """Where and as whom every program runs: the directory and environment, no
        terminal input, the unprivileged account, and a session of its own (so a Ctrl-C
        in the terminal does not stop the server under the tests; stop() does that)."""
        return {
            "cwd": self.cwd,
            "env": dict(self.env),
            "stdin": subprocess.DEVNULL,
            "user": self.uid,
            "group": self.gid,
            "extra_groups": None if self.uid is None else [],
            "start_new_session": True,
        }

    def run(self, args: Sequence[str | Path], timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - fixed programs from the PostgreSQL bin directory
            [str(arg) for arg in args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            **self._options(),
        )

    def spawn(self, args: Sequence[str | Path], output: Path) -> subprocess.Popen[bytes]:
        """Start a server that stays in the foreground, its output appended to ``output``."""
        with output.open("ab") as sink:
            return subprocess.Popen(  # noqa: S603 - fixed server program found by the harness
                [str(arg) for arg in args],
                stdout=sink,
                stderr=subprocess.STDOUT,
                text=False,
                **self._options(),
            )


def unprivileged_account(
    name: str,
    *,
    server: str = "PostgreSQL",
    unavailable: type[ConfigurationError] = PostgresUnavailable,
) -> tuple[int | None, int | None, list[int]]:
    """The uid, gid and groups to run the server as: ourselves, or ``name`` when root.

    ``server`` names the server in the error, ``unavailable`` is the error raised (each
    harness has its own, so a fixture can skip on exactly that one).
    """
    if os.geteuid() != 0:
        return None, None, []
    import pwd  # POSIX only, and only needed as root.

    try:
        account = pwd.getpwnam(name)
    except KeyError:
        raise unavailable(
            f"running as root, which {server} refuses, and there is no user {name!r} to run "
            f"it as (create one: useradd --system {name})"
        ) from None
    if account.pw_uid == 0:
        raise unavailable(f"user {name!r} is root; {server} needs an unprivileged one")
    return account.pw_uid, account.pw_gid, os.getgrouplist(name, account.pw_gid)


def make_directory(
    base: Path | None,
    uid: int | None,
    gid: int | None,
    groups: list[int],
    *,
    prefix: str = "lp-pg-",
    unavailable: type[ConfigurationError] = PostgresUnavailable,
) -> Path:
    """A fresh private directory, owned by the account that will run the server."""
    bases = [base] if base is not None else [Path(tempfile.gettempdir()), Path("/tmp")]  # noqa: S108
    for candidate in bases:
        if uid is None or _traversable(candidate.resolve(), uid, groups):
            directory = Path(tempfile.mkdtemp(prefix=prefix, dir=candidate))
            if uid is not None and gid is not None:
                os.chown(directory, uid, gid)
            return directory
    raise unavailable(
        f"the unprivileged server user cannot reach {bases[0]}: every parent directory "
        "needs search permission for it (set TMPDIR, or pass base_dir=)"
    )


def _traversable(path: Path, uid: int, groups: list[int]) -> bool:
    for directory in (path, *path.parents):
        info = directory.stat()
        if info.st_uid == uid:
            bit = stat.S_IXUSR
        elif info.st_gid in groups:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not info.st_mode & bit:
            return False
    return True


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def read_from(path: Path, offset: int) -> str:
    try:
        with path.open("rb") as log:
            log.seek(offset)
            return log.read().decode("utf-8", "replace")
    except OSError:
        return ""


def tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def shutdown(runner: Runner, pg_ctl: Path, directory: Path, mode: str, owner_pid: int) -> None:
    """Stop the server if it runs, then delete its directory. Safe to call at exit."""
    if os.getpid() != owner_pid:
        # A forked child (a worker process of a test) inherits the exit hook; only the
        # process that started the server may stop it.
        return
    data_dir = directory / "data"
    try:
        if (data_dir / "postmaster.pid").exists():
            try:
                result = runner.run(
                    [pg_ctl, "stop", "-D", data_dir, "-m", mode, "-w", "-t", "30", "-s"],
                    timeout=60,
                )
                stopped = result.returncode == 0
            except subprocess.TimeoutExpired:
                stopped = False
            if not stopped:
                _kill_postmaster(data_dir)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _kill_postmaster(data_dir: Path) -> None:
    # Last resort: the backends notice their postmaster died and exit on their own.
    try:
        pid = int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError):
        pass
