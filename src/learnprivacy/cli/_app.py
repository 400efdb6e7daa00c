"""The command group, global options, output and the error-to-exit-code policy."""

from __future__ import annotations

import datetime as dt
import enum
import json
import sys
import traceback
from collections.abc import Callable
from typing import Any, NoReturn

import attrs
import click
from rich.console import Console

from learnprivacy import errors

__all__ = [
    "EXIT_CODES",
    "Env",
    "LearnPrivacyGroup",
    "emit",
    "fail",
    "pass_env",
    "resolve_now",
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
    """What every command receives: global options and the console."""

    db: str
    key_file: str
    json: bool
    debug: bool
    console: Console = attrs.field(factory=lambda: Console(highlight=False))
    err: Console = attrs.field(factory=lambda: Console(stderr=True, highlight=False))


pass_env = click.make_pass_decorator(Env)


def exit_code_for(exc: BaseException) -> int:
    """The documented exit code for an error raised by the library."""
    for cls, code in _ORDER:
        if isinstance(exc, cls):
            return code
    return 1


class LearnPrivacyGroup(click.Group):
    """A click group that turns library errors into one clear line and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; library errors become ``error: ...`` and a documented code."""
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:
            env = ctx.find_object(Env)
            if env is not None and env.debug:
                traceback.print_exc()
            name = type(exc).__name__
            # Library messages never hold personal values; other exceptions might, so only
            # their type is shown unless --debug asked for the traceback.
            text = str(exc) if isinstance(exc, errors.LearnPrivacyError) else "unexpected error"
            click.echo(f"error: {name}: {text}", err=True)
            ctx.exit(exit_code_for(exc))


def emit(env: Env, data: Any, human: Callable[[], None]) -> None:
    """Print ``data`` as JSON with ``--json``, else call ``human`` to render it."""
    if env.json:
        sys.stdout.write(json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")
    else:
        human()


def fail(message: str, code: int = 3) -> NoReturn:
    """Stop with one line on stderr and ``code``."""
    click.echo(f"error: {message}", err=True)
    raise SystemExit(code)


def resolve_now(value: dt.datetime | None) -> dt.datetime:
    """``--now`` if given, else the current time.

    The command line is the API edge: the only place that reads the clock.
    """
    return value if value is not None else dt.datetime.now(dt.UTC)


def values_of(vocabulary: type[enum.Enum]) -> list[str]:
    """The values of an enum, as ``click.Choice`` choices (one source of truth)."""
    return [str(member.value) for member in vocabulary]
