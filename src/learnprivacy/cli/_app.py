"""The command group, global options, output and the error-to-exit-code policy."""

from __future__ import annotations

import datetime as dt
import enum
import importlib
import inspect
import json
import sys
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

import attrs
import click
from rich.console import Console

from learnprivacy import errors
from learnprivacy.cli._settings import Settings

if TYPE_CHECKING:
    from learnprivacy.store import Store

__all__ = [
    "EXIT_CODES",
    "CommandFailed",
    "Env",
    "HelpGroup",
    "LazyCommand",
    "LearnPrivacyGroup",
    "emit",
    "fail",
    "pass_env",
    "report_error",
    "resolve_now",
    "short_help",
    "values_of",
]

#: Exit codes, documented in ``learnprivacy --help`` and docs/cli.md.
EXIT_CODES: dict[str, int] = {
    "ok": 0,
    "unexpected error (run with --debug for the traceback)": 1,
    "usage error": 2,
    "invalid input or configuration, or not found": 3,
    "refused by policy (retention minimum, hold, request state)": 4,
    "cryptographic failure (wrong master key, shredded key, bad token)": 5,
    "audit log tampered": 6,
    "a privacy provider failed": 7,
    "sweep targets missed or check failed": 8,
    "a request step failed (the request is FAILED; `requests retry` runs it again)": 9,
}

_ORDER: tuple[tuple[type[BaseException], int], ...] = (
    (errors.AuditTampered, 6),
    (errors.ProviderError, 7),
    (errors.CryptoError, 5),
    (errors.PolicyError, 4),
    (errors.ValidationError, 3),
    (errors.ConfigurationError, 3),
    (errors.NotFoundError, 3),
    (errors.IntegrityError, 3),
    (errors.LearnPrivacyError, 1),
)


@attrs.define
class Env:
    """What every command receives: the configuration, global options and the consoles."""

    settings: Settings
    json: bool
    debug: bool
    console: Console = attrs.field(factory=lambda: Console(highlight=False))
    err: Console = attrs.field(factory=lambda: Console(stderr=True, highlight=False))
    #: The ``--config`` value as given (``init`` writes the file there).
    config_requested: str | None = None

    @property
    def db(self) -> str:
        """The store URL (``--db``, ``LEARNPRIVACY_DB``, ``[store] url``)."""
        return self.settings.store_url

    @property
    def key_file(self) -> str:
        """The master key file (``--key-file``, ``[keys] master_key_file``)."""
        return self.settings.key_file

    def open_store(self) -> Store:
        """Open the configured store with the configured master key."""
        from learnprivacy.cli._config import open_store

        return open_store(
            self.db,
            self.key_file,
            keys_url=self.settings.keys_url,
            master_key_env=self.settings.master_key_env,
        )


pass_env = click.make_pass_decorator(Env)


def exit_code_for(exc: BaseException) -> int:
    """The documented exit code for an error raised by the library."""
    for cls, code in _ORDER:
        if isinstance(exc, cls):
            return code
    return 1


def short_help(command: click.Command) -> str:
    """The summary of ``command`` in a command list: its whole first paragraph.

    click cuts summaries at the first full stop followed by a space, which turns
    "Erase a learner (GDPR Art. 17); ..." into "Erase a learner (GDPR Art.".
    """
    if command.short_help:
        return command.short_help
    text = inspect.cleandoc(command.help or "")
    first = text.split("\n\n", 1)[0]
    return " ".join(first.split())


class HelpGroup(click.Group):
    """A command group whose command list shows whole summaries."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List the subcommands with :func:`short_help`, never cut."""
        rows = []
        for name in self.list_commands(ctx):
            summary = self._summary(ctx, name)
            if summary is not None:
                rows.append((name, summary))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def _summary(self, ctx: click.Context, name: str) -> str | None:
        """The summary of subcommand ``name`` in the list; ``None`` leaves it out."""
        command = self.get_command(ctx, name)
        if command is None or command.hidden:
            return None
        return short_help(command)


@attrs.frozen
class LazyCommand:
    """A subcommand known by name and summary, imported only when it runs.

    ``target`` is ``"module:attribute"``; ``help`` is the summary shown by ``--help``
    (a test checks that it equals the command's own).
    """

    target: str
    help: str

    def load(self) -> click.Command:
        """Import the command's module and return the command."""
        module, _, attribute = self.target.partition(":")
        command = getattr(importlib.import_module(module), attribute)
        if not isinstance(command, click.Command):  # pragma: no cover - a table typo
            raise TypeError(f"{self.target} is not a click command")
        return command


class _LazyCommands(dict[str, click.Command]):
    """``Group.commands`` that imports a lazy command's module on first access.

    Iterating (or ``items()``) loads every command, so code walking ``group.commands``
    sees them all; ``--help`` never iterates it (see :meth:`LearnPrivacyGroup.list_commands`).
    """

    def __init__(self, lazy: dict[str, LazyCommand]) -> None:
        super().__init__()
        self.lazy = lazy

    def __missing__(self, name: str) -> click.Command:
        command = self.lazy[name].load()
        self[name] = command
        return command

    def get(self, name: str, default: Any = None) -> Any:
        if name in self.lazy and not super().__contains__(name):
            return self[name]
        return super().get(name, default)

    def __contains__(self, name: object) -> bool:
        return name in self.lazy or super().__contains__(name)

    def loaded(self, name: str) -> click.Command | None:
        """The command if it was imported already, without importing it."""
        return super().get(name)

    def loaded_names(self) -> set[str]:
        """The names of the commands imported (or added) so far."""
        return set(super().keys())

    def _load_all(self) -> None:
        for name in self.lazy:
            if not super().__contains__(name):
                self[name] = self.lazy[name].load()


def _loading_all(name: str) -> Any:
    """The ``dict`` method ``name``, after loading every lazy command."""
    method = getattr(dict, name)

    def loading(self: _LazyCommands) -> Any:
        self._load_all()
        return method(self)

    loading.__name__ = name
    return loading


# Every way of walking the whole mapping sees every command.
for _name in ("__iter__", "__len__", "keys", "items", "values"):
    setattr(_LazyCommands, _name, _loading_all(_name))
del _name


def report_error(env: Env | None, kind: str, message: str, code: int) -> None:
    """Write one error: a line on stderr, or a JSON object on stdout under ``--json``."""
    if env is not None and env.json:
        body = {"error": {"type": kind, "message": message, "exit_code": code}}
        sys.stdout.write(json.dumps(body, ensure_ascii=False) + "\n")
    else:
        click.echo(f"error: {kind}: {message}", err=True)


class CommandFailed(click.ClickException):
    """A command ran but what it was asked for did not happen (a step failed)."""

    def __init__(self, message: str, *, code: int, kind: str = "Failed") -> None:
        super().__init__(message)
        self.exit_code = code
        self.kind = kind


class LearnPrivacyGroup(HelpGroup):
    """A click group that turns library errors into one clear line and an exit code.

    Its subcommands can be :class:`LazyCommand` entries (``lazy=``): their modules are
    imported only when the command runs, so ``learnprivacy --help`` stays fast.
    """

    def __init__(self, *args: Any, lazy: dict[str, LazyCommand] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        commands = _LazyCommands(dict(lazy or {}))
        commands.update(self.commands)
        self.commands = commands

    @property
    def lazy(self) -> dict[str, LazyCommand]:
        """The lazily imported subcommands, by name."""
        commands = self.commands
        return commands.lazy if isinstance(commands, _LazyCommands) else {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every subcommand name, without importing the lazy ones."""
        commands = self.commands
        if isinstance(commands, _LazyCommands):
            return sorted(set(commands.lazy) | commands.loaded_names())
        return sorted(commands)

    def _summary(self, ctx: click.Context, name: str) -> str | None:
        """A lazy subcommand not yet imported shows its table summary."""
        commands = self.commands
        loaded = commands.loaded(name) if isinstance(commands, _LazyCommands) else None
        if loaded is None and name in self.lazy:
            return self.lazy[name].help
        return super()._summary(ctx, name)

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; library errors become ``error: ...`` and a documented code.

        Under ``--json`` the error is a JSON object on stdout instead
        (``{"error": {"type", "message", "exit_code"}}``).
        """
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort):
            raise
        except CommandFailed as exc:
            report_error(ctx.find_object(Env), exc.kind, exc.message, exc.exit_code)
            ctx.exit(exc.exit_code)
        except click.ClickException as exc:
            env = ctx.find_object(Env)
            if env is None or not env.json:
                raise
            report_error(env, type(exc).__name__, exc.format_message(), exc.exit_code)
            ctx.exit(exc.exit_code)
        except Exception as exc:
            env = ctx.find_object(Env)
            if env is not None and env.debug:
                traceback.print_exc()
            name = type(exc).__name__
            # Library messages never hold personal values; other exceptions might, so only
            # their type is shown unless --debug asked for the traceback.
            text = str(exc) if isinstance(exc, errors.LearnPrivacyError) else "unexpected error"
            report_error(env, name, text, exit_code_for(exc))
            ctx.exit(exit_code_for(exc))


def emit(env: Env, data: Any, human: Callable[[], None]) -> None:
    """Print ``data`` as JSON with ``--json``, else call ``human`` to render it."""
    if env.json:
        sys.stdout.write(json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")
    else:
        human()


def fail(message: str, code: int = 3, *, kind: str = "Failed") -> NoReturn:
    """Stop with the reason (one line on stderr, or JSON under ``--json``) and ``code``."""
    raise CommandFailed(message, code=code, kind=kind)


def resolve_now(value: dt.datetime | None) -> dt.datetime:
    """``--now`` if given, else the current time.

    The command line is the API edge: the only place that reads the clock.
    """
    return value if value is not None else dt.datetime.now(dt.UTC)


def values_of(vocabulary: type[enum.Enum]) -> list[str]:
    """The values of an enum, as ``click.Choice`` choices (one source of truth)."""
    return [str(member.value) for member in vocabulary]
