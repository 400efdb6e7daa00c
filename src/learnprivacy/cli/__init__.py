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

from learnprivacy.cli._app import EXIT_CODES, Env, LazyCommand, LearnPrivacyGroup
from learnprivacy.cli._settings import (
    CONFIG_ENV,
    CONFIG_FILE,
    DEFAULT_DB,
    DEFAULT_KEY_FILE,
    Settings,
    find_config,
    load_settings,
)

# The command line is a program, not an API: ``main`` is its entry point
# (``learnprivacy = "learnprivacy.cli:main"``), documented in docs/cli.md.
__all__: list[str] = []

_STORE = "learnprivacy.cli._store_commands"
_REGISTER = "learnprivacy.cli._register_commands"

#: The subcommands, imported only when they run (``--help`` shows these summaries; a test
#: checks that each equals the command's own).
COMMANDS: dict[str, LazyCommand] = {
    "audit": LazyCommand(f"{_STORE}:audit", "The tamper-evident audit log."),
    "copy": LazyCommand(
        f"{_STORE}:copy_command",
        "Copy the store to another database (e.g. SQLite to PostgreSQL), then verify it.",
    ),
    "demo": LazyCommand(
        "learnprivacy.cli._demo:demo",
        "Run the whole story on an embedded SQLite database (writes only to one folder).",
    ),
    "erase": LazyCommand(
        f"{_STORE}:erase",
        "Erase learners (GDPR Art. 17); records under a legal minimum are restricted.",
    ),
    "export": LazyCommand(
        f"{_STORE}:export",
        "Export a learner's data package (JSON, CSV, xAPI, HTML page, manifest).",
    ),
    "import": LazyCommand(
        f"{_STORE}:import_",
        "Import learners, progress, invoices... from a CSV or JSON file (all or nothing).",
    ),
    "init": LazyCommand(
        f"{_STORE}:init",
        "Write a commented learnprivacy.toml, a master key file (mode 0600) and the store.",
    ),
    "keys": LazyCommand(
        "learnprivacy.cli._keys:keys",
        "The key database and the master key: rotate, back up, status.",
    ),
    "migrate-encrypt": LazyCommand(
        "learnprivacy.cli._migrate_encrypt:migrate_encrypt_command",
        "Encrypt the plaintext personal columns of an application's tables, in place.",
    ),
    "moodle": LazyCommand(f"{_REGISTER}:moodle", "Work with a Moodle site's database (read-only)."),
    "register": LazyCommand(
        f"{_REGISTER}:register",
        "Print the GDPR Art. 30 record of processing built from every provider's metadata.",
    ),
    "requests": LazyCommand(
        "learnprivacy.cli._requests:requests_group",
        "Data-subject requests: receive, verify identity, execute, answer.",
    ),
    "sweep": LazyCommand(
        f"{_STORE}:sweep",
        "Apply the retention schedule: erase, anonymise or restrict what has expired.",
    ),
}

_EPILOG = "Exit codes:\n\n" + "\n\n".join(f"{code}  {text}" for text, code in EXIT_CODES.items())


@click.group(cls=LearnPrivacyGroup, epilog=_EPILOG, lazy=COMMANDS)
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
