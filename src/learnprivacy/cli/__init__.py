"""The ``learnprivacy`` command.

Every command reads ``learnprivacy.toml`` (in the working directory, or ``--config`` /
``LEARNPRIVACY_CONFIG``; ``learnprivacy init`` writes a commented one). Global options come
before the command: ``learnprivacy --db URL --json sweep --dry-run``; ``--db`` and
``--key-file`` (or ``LEARNPRIVACY_DB``, ``LEARNPRIVACY_KEY_FILE``) override the file, and
``LEARNPRIVACY_MASTER_KEY`` (base64) replaces the key file.

Errors are one line on stderr (``error: Type: message``), or a JSON object on stdout under
``--json``, and a documented exit code; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import click

from learnprivacy.cli._app import EXIT_CODES, Env, LearnPrivacyGroup
from learnprivacy.cli._settings import (
    CONFIG_ENV,
    CONFIG_FILE,
    DEFAULT_DB,
    DEFAULT_KEY_FILE,
    Settings,
    find_config,
    load_settings,
)

__all__ = ["EXIT_CODES", "main"]

_EPILOG = "Exit codes:\n\n" + "\n\n".join(f"{code}  {text}" for text, code in EXIT_CODES.items())


@click.group(cls=LearnPrivacyGroup, epilog=_EPILOG)
@click.version_option(package_name="learnprivacy")
@click.option(
    "--config",
    "config_path",
    envvar=CONFIG_ENV,
    default=None,
    type=click.Path(dir_okay=False),
    help=f"Configuration file (default: ./{CONFIG_FILE} when present).",
)
@click.option(
    "--db",
    envvar="LEARNPRIVACY_DB",
    default=None,
    help=f"Store URL, over [store] url (default: {DEFAULT_DB}).",
)
@click.option(
    "--key-file",
    envvar="LEARNPRIVACY_KEY_FILE",
    default=None,
    help=f"Master key file, over [keys] master_key_file (default: {DEFAULT_KEY_FILE}).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")
@click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
@click.pass_context
def main(
    ctx: click.Context,
    config_path: str | None,
    db: str | None,
    key_file: str | None,
    as_json: bool,
    debug: bool,
) -> None:
    """Keep learning records lawfully: retention, erasure, exports, requests, registers."""
    # The environment exists before the file is read, so a bad file is reported in the
    # format asked for (a JSON object under --json).
    env = ctx.obj = Env(settings=Settings(), json=as_json, debug=debug)
    env.config_requested = config_path
    # `init` creates the file named by --config; every other command needs it to exist.
    found = find_config(config_path, must_exist=ctx.invoked_subcommand != "init")
    env.settings = load_settings(found, db=db, key_file=key_file)


def _register_commands() -> None:
    from learnprivacy.cli._demo import demo
    from learnprivacy.cli._migrate_encrypt import migrate_encrypt_command
    from learnprivacy.cli._register_commands import register_register_commands
    from learnprivacy.cli._requests import requests_group
    from learnprivacy.cli._store_commands import register_store_commands

    main.add_command(demo)
    main.add_command(migrate_encrypt_command)
    main.add_command(requests_group)
    register_store_commands(main)
    register_register_commands(main)


_register_commands()
