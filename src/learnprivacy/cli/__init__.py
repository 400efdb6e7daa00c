"""The ``learnprivacy`` command.

Global options come before the command: ``learnprivacy --db URL --json sweep --dry-run``.
The database URL and the key file can also come from ``LEARNPRIVACY_DB`` and
``LEARNPRIVACY_KEY_FILE``; ``LEARNPRIVACY_MASTER_KEY`` (base64) replaces the key file.

Errors are one line on stderr (``error: Type: message``) and a documented exit code;
``--debug`` adds the traceback.
"""

from __future__ import annotations

import click

from learnprivacy.cli._app import EXIT_CODES, Env, LearnPrivacyGroup
from learnprivacy.cli._config import DEFAULT_DB, DEFAULT_KEY_FILE

__all__ = ["EXIT_CODES", "main"]

_EPILOG = "Exit codes:\n\n" + "\n\n".join(f"{code}  {text}" for text, code in EXIT_CODES.items())


@click.group(cls=LearnPrivacyGroup, epilog=_EPILOG)
@click.version_option(package_name="learnprivacy")
@click.option(
    "--db",
    envvar="LEARNPRIVACY_DB",
    default=DEFAULT_DB,
    show_default=True,
    help="Store URL (sqlite:///file.db or postgresql+psycopg://...).",
)
@click.option(
    "--key-file",
    envvar="LEARNPRIVACY_KEY_FILE",
    default=DEFAULT_KEY_FILE,
    show_default=True,
    help="Master key file (ignored when LEARNPRIVACY_MASTER_KEY is set).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")
@click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
@click.pass_context
def main(ctx: click.Context, db: str, key_file: str, as_json: bool, debug: bool) -> None:
    """Keep learning records lawfully: retention, erasure, exports, requests, registers."""
    ctx.obj = Env(db=db, key_file=key_file, json=as_json, debug=debug)


def _register_commands() -> None:
    from learnprivacy.cli._demo import demo
    from learnprivacy.cli._register_commands import register_register_commands
    from learnprivacy.cli._requests import requests_group
    from learnprivacy.cli._store_commands import register_store_commands

    main.add_command(demo)
    main.add_command(requests_group)
    register_store_commands(main)
    register_register_commands(main)


_register_commands()
