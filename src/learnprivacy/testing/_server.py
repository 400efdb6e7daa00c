"""The lifecycle the throwaway test servers share (PostgreSQL, MariaDB, Ralph LRS).

Each server starts into a temporary directory it owns and must be gone afterwards, however
the test ended: a context manager, an idempotent :meth:`ThrowawayServer.stop`, and a
``weakref.finalize`` registered *before* anything can fail, so that a failed start cleans
up and a forgotten stop still happens at interpreter exit. What differs (how to launch a
server, what "up" means, where its log is) is the subclass's.
"""

from __future__ import annotations

import subprocess
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Self

from learnprivacy.errors import ConfigurationError
from learnprivacy.testing._postgres_host import read_from, tail

__all__ = ["LoopbackDatabaseServer", "ThrowawayServer"]


class ThrowawayServer(ABC):
    """A server for tests: started by :meth:`start` or ``with``, stopped by :meth:`stop`.

    :meth:`stop` is idempotent and also runs at interpreter exit.
    """

    #: The error a start that ran out of time is reported as (with the log's tail).
    start_error: ClassVar[type[Exception]]
    _finalizer: weakref.finalize[..., Any] | None = None
    _start_timeout: float

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """True between a successful :meth:`start` and :meth:`stop`."""
        return self._up() and self._finalizer is not None and self._finalizer.alive

    def start(self) -> Self:
        """Start the server and wait until it is ready; on any failure, clean up first.

        Raises the server's *Unavailable* error when it cannot run here (a fixture skips),
        its *StartError* when it failed to start (with the tail of its log), and
        :class:`~learnprivacy.errors.ConfigurationError` when already started.
        """
        if self._finalizer is not None and self._finalizer.alive:
            raise ConfigurationError(f"{type(self).__name__} is already started")
        try:
            self._launch()
        except subprocess.TimeoutExpired as exc:
            log = self._log_tail()
            self.stop()
            raise self.start_error(
                f"{Path(str(exc.cmd[0])).name} did not finish within {exc.timeout:.0f}s\n"
                f"--- server log tail ---\n{log}"
            ) from exc
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server and delete its directory. Does nothing when not running."""
        self._forget()
        if self._finalizer is not None:
            self._finalizer()

    def _clean_up_with(self, function: Callable[..., Any], *args: Any) -> None:
        """Register what stops the server and removes its directory (call it before
        anything in :meth:`_launch` can fail)."""
        self._finalizer = weakref.finalize(self, function, *args)

    def _poll(self, ready: Callable[[], object], *, failing: str, longest: float) -> None:
        """Call ``ready`` until it no longer raises ``OSError``, waiting 20 ms, then twice
        as long each time up to ``longest`` seconds; past the start timeout, raise
        :attr:`start_error`: "``failing`` within N s", the error's type and the log's tail.
        Any other error of ``ready`` ends the wait at once."""
        deadline = time.monotonic() + self._start_timeout
        delay = 0.02
        while True:
            try:
                ready()
            except OSError as exc:
                if time.monotonic() > deadline:
                    raise self.start_error(
                        f"{failing} within {self._start_timeout}s ({type(exc).__name__})"
                        f"\n--- server log tail ---\n{self._log_tail()}"
                    ) from exc
                time.sleep(delay)
                delay = min(delay * 2, longest)
            else:
                return

    @abstractmethod
    def _launch(self) -> None:
        """Create the directory, :meth:`_clean_up_with`, start and wait until ready."""

    @abstractmethod
    def _up(self) -> bool:
        """Whether the launched server is there (a port known, a process alive)."""

    @abstractmethod
    def _forget(self) -> None:
        """Drop what only a running server has (its port, its process handle)."""

    @abstractmethod
    def _log_tail(self) -> str:
        """The end of the server's log, for error messages (usable while starting)."""


class LoopbackDatabaseServer(ThrowawayServer):
    """A database server on a loopback port, with its data and log in one directory
    (PostgreSQL, MariaDB): what knowing the port and the directory gives."""

    _port: int | None = None
    _directory: Path | None = None

    def _up(self) -> bool:
        return self._port is not None

    def _forget(self) -> None:
        self._port = None

    def _log_tail(self) -> str:
        # Usable while starting, before the properties that need a running server are.
        if self._directory is None:
            return "(no log)"
        return tail(read_from(self._directory / "server.log", 0))

    def _not_running(self) -> ConfigurationError:
        return ConfigurationError(f"{type(self).__name__} is not running: call start() first")

    @property
    def host(self) -> str:
        """Always ``127.0.0.1``: the server listens on loopback only."""
        return "127.0.0.1"

    @property
    def port(self) -> int:
        """The TCP port the server listens on."""
        if self._port is None or not self.running:
            raise self._not_running()
        return self._port

    @property
    def directory(self) -> Path:
        """The temporary directory (data directory, socket, log); deleted by :meth:`stop`."""
        if self._directory is None or not self.running:
            raise self._not_running()
        return self._directory

    @property
    def log_path(self) -> Path:
        """The server log file."""
        return self.directory / "server.log"
