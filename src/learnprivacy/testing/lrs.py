"""A throwaway Ralph Learning Record Store for test suites.

:class:`TemporaryRalphLRS` starts a real `Ralph <https://openfun.github.io/ralph/>`_ LRS
(``ralph-malph[lrs]``) in a subprocess, listening on ``127.0.0.1`` only, with the
filesystem backend storing statements in a fresh temporary directory and a generated
HTTP Basic user. It waits until the server answers an authenticated request, and at exit
stops the process and deletes the directory, even when the body raised::

    import httpx
    from learnprivacy.testing.lrs import TemporaryRalphLRS

    with TemporaryRalphLRS() as lrs:
        response = httpx.post(
            lrs.endpoint,                      # http://127.0.0.1:PORT/xAPI/statements
            json=[statement],
            auth=lrs.auth,                     # (username, password)
            headers={"X-Experience-API-Version": "1.0.3"},
        )

Every setting reaches Ralph through ``RALPH_*`` environment variables pointing into the
temporary directory (auth file, application directory, statements); the variables of the
calling process that start with ``RALPH_`` are not passed on, and the server runs with the
temporary directory as working directory, so it reads no ``.env`` file and writes nothing
to the project or the home directory. It needs no network beyond loopback.

When Ralph's LRS cannot run in this Python environment, :meth:`TemporaryRalphLRS.start`
raises :class:`LRSUnavailable` saying why, so a fixture can skip.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from learnprivacy.errors import ConfigurationError, LearnPrivacyError
from learnprivacy.testing._server import ThrowawayServer

__all__ = ["LRSStartError", "LRSUnavailable", "TemporaryRalphLRS"]

# The modules Ralph's LRS server needs: ralph itself, the ASGI server that runs it, its
# web framework and the password hashing used by its Basic authentication.
_REQUIRED_MODULES = ("ralph", "uvicorn", "fastapi", "bcrypt")
_STATEMENTS_PATH = "/xAPI/statements"
_STATEMENTS_FILE = "statements.jsonl"
# Where the generated user "comes from" in the authority Ralph adds to stored statements.
_AUTHORITY_HOME_PAGE = "http://127.0.0.1/learnprivacy-test"
# The credential lives as long as one test run on a loopback server, so the lowest bcrypt
# cost keeps the first authenticated request fast without weakening anything that matters.
_BCRYPT_ROUNDS = 4
# Runs uvicorn (whose command line follows) after one adjustment to Ralph's filesystem LRS
# backend. Its statement endpoints write without naming an operation type, and the
# backend's default ("create") refuses to touch an existing file, so every POST after the
# first one failed with a 500. Appending to the JSON Lines file is what a store needs; the
# duplicate and conflict checks happen in Ralph's API before any write, so they still hold.
# A Ralph whose backend already appends is left as it is.
#
# The second adjustment applies xAPI's voiding rule (Data 2.3.2, Communication 2.1.4),
# which none of Ralph's backends implements, to the queries of the filesystem backend:
# a statement that a stored voiding statement targets is left out of every query
# (agent, verb, ``statementId``...) and returned only to ``voidedStatementId``, which
# Ralph otherwise ignores. Writes and Ralph's duplicate checks are untouched, so a voided
# id still cannot be reused. This is the conformant LRS that erasure is tested against.
_SERVER_BOOTSTRAP = """\
import sys
from ralph.backends.data.base import BaseOperationType
from ralph.backends.lrs.base import StatementQueryResult
from ralph.backends.lrs.fs import FSLRSBackend
if FSLRSBackend.default_operation_type in (BaseOperationType.CREATE, BaseOperationType.INDEX):
    FSLRSBackend.default_operation_type = BaseOperationType.APPEND

VOIDED = "http://adlnet.gov/expapi/verbs/voided"
ralph_query = FSLRSBackend.query_statements

def voided_ids(backend, target):
    found = set()
    for s in backend.read(query=backend.settings.DEFAULT_LRS_FILE, target=target):
        ref = s.get("object") or {}
        if (s.get("verb") or {}).get("id") == VOIDED and ref.get("objectType") == "StatementRef":
            found.add(ref.get("id"))
    return found

def query_statements(self, params, target=None):
    voided = voided_ids(self, target)
    wanted = getattr(params, "voided_statement_id", None)
    if wanted is None and isinstance(getattr(params, "__pydantic_extra__", None), dict):
        wanted = params.__pydantic_extra__.get("voidedStatementId")
    if wanted:
        hits = [] if wanted not in voided else [
            s for s in self.read(query=self.settings.DEFAULT_LRS_FILE, target=target)
            if s.get("id") == wanted
        ]
        return StatementQueryResult(statements=hits, pit_id=None, search_after=None)
    if not voided:
        return ralph_query(self, params, target)
    read = self.read
    def visible(*args, **kwargs):
        for s in read(*args, **kwargs):
            if s.get("id") not in voided:
                yield s
    self.read = visible
    try:
        return ralph_query(self, params, target)
    finally:
        del self.read

FSLRSBackend.query_statements = query_statements
from uvicorn.main import main
sys.exit(main())
"""


class LRSUnavailable(ConfigurationError):
    """Ralph's LRS cannot run in this Python environment (a package is missing).

    The message names what is missing and how to install it; a test fixture can
    ``pytest.skip(str(exc))``.
    """


class LRSStartError(LearnPrivacyError, RuntimeError):
    """Ralph is installed but its server did not start or did not answer.

    This is a real failure, not a reason to skip: the message ends with the tail of the
    server log.
    """


@dataclass(frozen=True)
class _Server:
    """What exists while a server runs: its process, port and directory."""

    process: subprocess.Popen[bytes]
    port: int
    directory: Path


class TemporaryRalphLRS(ThrowawayServer):
    """A real Ralph LRS on a free loopback port, storing into a temporary directory.

    Use it as a context manager, or call :meth:`start` and :meth:`stop` (for a pytest
    session fixture). :meth:`stop` is idempotent and also runs at interpreter exit.

    The server is ``uvicorn ralph.api:app`` run by the current interpreter
    (``sys.executable``), with the filesystem backend (``RALPH_RUNSERVER_BACKEND=fs``)
    and Basic authentication only. The generated user has every scope (``all``); Ralph
    records it as the ``authority`` of the statements it stores (see :attr:`authority`).

    Args:
        start_timeout: seconds to wait for the server to answer once started.
        stop_timeout: seconds to wait for the server to exit after SIGTERM before it is
            killed.
        base_dir: where to create the temporary directory; default the system one.

    Raises:
        LRSUnavailable: (from :meth:`start`) ralph-malph or its ``lrs`` extra is missing.
        LRSStartError: (from :meth:`start`) the server exited or did not answer in time.
    """

    def __init__(
        self,
        *,
        start_timeout: float = 60.0,
        stop_timeout: float = 10.0,
        base_dir: str | Path | None = None,
    ) -> None:
        if start_timeout <= 0 or stop_timeout <= 0:
            raise ConfigurationError("TemporaryRalphLRS timeouts must be positive")
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._base_dir = None if base_dir is None else Path(base_dir)
        self._server: _Server | None = None
        self._directory: Path | None = None
        self._username = ""
        self._password = ""
        self.startup_seconds: float | None = None
        """Seconds from launching the server to its first authenticated answer."""

    def __repr__(self) -> str:
        # Never the password: the repr ends up in test reports and logs.
        server = self._server
        state = f"port={server.port}" if server is not None and self.running else "stopped"
        return f"<TemporaryRalphLRS {state}>"

    # -- lifecycle ------------------------------------------------------------------------

    start_error = LRSStartError

    def _launch(self) -> None:
        """Write the configuration, start the server and wait until it answers.

        ``LRSUnavailable`` when a package Ralph's LRS needs is not installed;
        ``LRSStartError`` when the server exited, or did not answer within
        ``start_timeout``.
        """
        _check_installed()
        directory = Path(tempfile.mkdtemp(prefix="lp-lrs-", dir=self._base_dir))
        self._directory = directory
        self._username = f"lrs-{secrets.token_hex(4)}"
        self._password = secrets.token_urlsafe(24)
        processes: list[subprocess.Popen[bytes]] = []
        self._clean_up_with(_shutdown, processes, directory, self._stop_timeout)
        _write_auth_file(directory / "auth.json", self._username, self._password)
        began = time.monotonic()
        process, port = _launch(directory)
        processes.append(process)
        server = _Server(process=process, port=port, directory=directory)
        self._wait_until_ready(server)
        self.startup_seconds = time.monotonic() - began
        self._server = server

    def _up(self) -> bool:
        # The process may have died since: then the server is not running.
        return self._server is not None and self._server.process.poll() is None

    def _forget(self) -> None:
        self._server = None

    def _wait_until_ready(self, server: _Server) -> None:
        # Asking /whoami with the generated credentials proves at once that the server
        # listens, that its backend loaded and that it reads our auth file.
        # An empty ProxyHandler: a proxy set in the environment must not receive requests
        # meant for the loopback server, nor its credentials.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        token = base64.b64encode(f"{self._username}:{self._password}".encode()).decode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{server.port}/whoami",
            headers={"Authorization": f"Basic {token}", "X-Experience-API-Version": "1.0.3"},
        )

        def answers() -> None:
            if server.process.poll() is not None:
                raise LRSStartError(
                    f"Ralph LRS exited with code {server.process.returncode} while starting"
                    f"\n--- server log tail ---\n{self._log_tail()}"
                )
            try:
                with opener.open(request, timeout=5) as response:
                    response.read()
            except urllib.error.HTTPError as exc:
                raise LRSStartError(
                    f"Ralph LRS answered {exc.code} to the generated credentials on /whoami"
                    f"\n--- server log tail ---\n{self._log_tail()}"
                ) from None

        self._poll(answers, failing="Ralph LRS did not answer", longest=0.25)

    def _log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except (OSError, ConfigurationError):
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"

    def _live(self) -> _Server:
        """The running server, or a :class:`ConfigurationError` saying why there is none."""
        server = self._server
        if server is None or self._finalizer is None or not self._finalizer.alive:
            raise ConfigurationError("TemporaryRalphLRS is not running: call start() first")
        code = server.process.poll()
        if code is not None:
            raise ConfigurationError(
                f"TemporaryRalphLRS: the server exited with code {code}; see {self.log_path}"
            )
        return server

    # -- connection details ---------------------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port the server listens on, on ``127.0.0.1``."""
        return self._live().port

    @property
    def base_url(self) -> str:
        """Root URL of the server: ``http://127.0.0.1:PORT`` (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def endpoint(self) -> str:
        """The xAPI Statements resource: ``http://127.0.0.1:PORT/xAPI/statements``.

        POST a statement or a list of statements there, GET ``?statementId=...``. Ralph
        serves the same resource with a trailing slash too.
        """
        return f"{self.base_url}{_STATEMENTS_PATH}"

    @property
    def auth(self) -> tuple[str, str]:
        """``(username, password)`` of the generated Basic user, as httpx and requests take it."""
        self._live()
        return (self._username, self._password)

    @property
    def authority(self) -> dict[str, object]:
        """The xAPI agent Ralph writes as ``authority`` into the statements it stores."""
        self._live()
        return {
            "objectType": "Agent",
            "account": {"homePage": _AUTHORITY_HOME_PAGE, "name": self._username},
        }

    @property
    def pid(self) -> int:
        """Process id of the server."""
        return self._live().process.pid

    @property
    def directory(self) -> Path:
        """The temporary directory (auth file, statements, log); deleted by :meth:`stop`."""
        return self._live().directory

    @property
    def statements_file(self) -> Path:
        """The JSON Lines file where the filesystem backend appends stored statements."""
        return self.directory / "statements" / _STATEMENTS_FILE

    @property
    def log_path(self) -> Path:
        """The server's combined output (uvicorn and Ralph warnings, no access log).

        Known from :meth:`start` on, so a failed start can still be diagnosed; the file
        itself is deleted with the directory by :meth:`stop`.
        """
        if self._directory is None:
            raise ConfigurationError("TemporaryRalphLRS was never started")
        return self._directory / "server.log"


def _check_installed() -> None:
    """Raise :class:`LRSUnavailable` naming the first package the server cannot import."""
    for name in _REQUIRED_MODULES:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise LRSUnavailable(
                f"Ralph's LRS cannot run: the module {name!r} is not importable by "
                f"{sys.executable}; install it with: pip install 'ralph-malph[cli,lrs]' "
                "(or the 'lrs' extra of learnprivacy)"
            )


def _write_auth_file(path: Path, username: str, password: str) -> None:
    """Write Ralph's Basic-auth credentials file (its documented JSON format)."""
    import bcrypt  # Installed with ralph-malph[lrs]; only needed here.

    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=_BCRYPT_ROUNDS))
    users = [
        {
            "username": username,
            "hash": hashed.decode("ascii"),
            "scopes": ["all"],
            "agent": {
                "objectType": "Agent",
                "account": {"homePage": _AUTHORITY_HOME_PAGE, "name": username},
            },
        }
    ]
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        json.dump(users, file)


def _server_environment(directory: Path) -> dict[str, str]:
    # The caller's RALPH_* settings (another backend, forwarding to a remote LRS, Sentry)
    # must not leak into a throwaway test server, so they are all dropped.
    env = {key: value for key, value in os.environ.items() if not key.startswith("RALPH_")}
    env.update(
        RALPH_APP_DIR=str(directory / "app"),
        RALPH_AUTH_FILE=str(directory / "auth.json"),
        RALPH_HISTORY_FILE=str(directory / "history.json"),
        RALPH_RUNSERVER_BACKEND="fs",
        RALPH_RUNSERVER_AUTH_BACKENDS="basic",
        RALPH_BACKENDS__LRS__FS__DEFAULT_DIRECTORY_PATH=str(directory / "statements"),
        RALPH_BACKENDS__LRS__FS__DEFAULT_LRS_FILE=_STATEMENTS_FILE,
        PYTHONUNBUFFERED="1",
    )
    return env


def _launch(directory: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Start uvicorn on a loopback socket and return the process and its port."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # The child writes to its own copy of the log descriptor; ours is closed at once.
    with listener, (directory / "server.log").open("wb") as log:
        listener.bind(("127.0.0.1", 0))
        port: int = listener.getsockname()[1]
        args = [sys.executable, "-c", _SERVER_BOOTSTRAP, "ralph.api:app", "--no-access-log"]
        args += ["--log-level", "warning"]
        pass_fds: tuple[int, ...] = ()
        if os.name == "posix":
            # Handing the bound socket over leaves no window in which another process
            # could take the port between our choice and the server's bind.
            args += ["--fd", str(listener.fileno())]
            pass_fds = (listener.fileno(),)
        else:  # pragma: no cover - Windows cannot pass sockets to a child by descriptor.
            listener.close()
            args += ["--host", "127.0.0.1", "--port", str(port)]
        process = subprocess.Popen(  # noqa: S603 - this interpreter, fixed arguments
            args,
            cwd=directory,
            env=_server_environment(directory),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            pass_fds=pass_fds,
        )
    return process, port


def _shutdown(processes: list[subprocess.Popen[bytes]], directory: Path, timeout: float) -> None:
    """Stop the server if it runs, then delete its directory. Safe to call at exit."""
    try:
        for process in processes:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
