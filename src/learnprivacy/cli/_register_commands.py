"""``learnprivacy register`` (GDPR Art. 30) and ``learnprivacy moodle report``."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import click
from rich.markdown import Markdown

from learnprivacy import Controller, Hosting, SubProcessor, Transfer
from learnprivacy.cli._app import Env, pass_env, resolve_now
from learnprivacy.cli._progress import progress
from learnprivacy.cli._store_commands import now_option
from learnprivacy.errors import ConfigurationError

__all__ = ["controller_from_file", "register_register_commands"]


def controller_from_file(path: str) -> Controller:
    """A Controller from a JSON file with the same keys as the class."""
    from learnprivacy import Safeguard

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        hosting = data.pop("hosting", None)
        subs = data.pop("sub_processors", [])
        transfers = data.pop("transfers", [])
        return Controller(
            **data,
            hosting=Hosting(**hosting) if hosting else None,
            sub_processors=tuple(SubProcessor(**s) for s in subs),
            transfers=tuple(
                Transfer(**{**t, "safeguard": Safeguard(t["safeguard"])}) for t in transfers
            ),
        )
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise ConfigurationError(
            f"cannot read controller file {path}: {type(exc).__name__}"
        ) from None


@click.command()
@click.option(
    "--controller",
    "controller_path",
    default=None,
    help="Controller JSON file with hosting, sub-processors and transfers "
    "(default: [controller] and [dpo] of the configuration).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["markdown", "html", "csv", "json"]),
    default="markdown",
    show_default=True,
)
@click.option("--out", default=None, type=click.Path(dir_okay=False), help="Write to a file.")
@click.option(
    "--language",
    type=click.Choice(["en", "fr"]),
    default="en",
    show_default=True,
    help="Language of the headings (Markdown and HTML).",
)
@click.option(
    "--internal-only",
    "internal_only",
    multiple=True,
    metavar="PURPOSE",
    help="A purpose whose data go to nobody outside the controller. Repeat the option, or "
    "separate purposes with commas; write a purpose whose name contains a comma in double "
    "quotes, as in CSV: --internal-only '\"billing, invoices\", forum'.",
)
@pass_env
def register(
    env: Env,
    controller_path: str | None,
    fmt: str,
    out: str | None,
    language: str,
    internal_only: tuple[str, ...],
) -> None:
    """Print the GDPR Art. 30 record of processing built from every provider's metadata.

    The controller is the configuration's [controller] and [dpo] (or --controller); the
    retention comes from its [policy]. --internal-only names purposes the policy promises
    to share with nobody outside the controller, added to the controller's own: an
    external recipient declared under one is listed in the register's gaps, an internal
    one is not; a purpose no activity has is a gap too.
    """
    from learnprivacy.errors import ValidationError
    from learnprivacy.providers import PrivacyManager, StoreProvider
    from learnprivacy.providers._register import purposes_option

    try:
        purposes = purposes_option(internal_only)
    except ValidationError as exc:
        raise click.BadParameter(str(exc), param_hint="--internal-only") from None
    if controller_path:
        controller = controller_from_file(controller_path)
    else:
        controller = env.settings.require_controller()
    with env.open_store() as store:
        provider = StoreProvider(store, schedule=env.settings.schedule())
        built = PrivacyManager(providers=[provider]).register(controller, internal_only=purposes)
    if env.json:
        fmt = "json"
    text = {
        "markdown": lambda: built.to_markdown(language=language),
        "html": lambda: built.to_html(language=language),
        "csv": built.to_csv,
        "json": built.to_json,
    }[fmt]()
    if out:
        Path(out).write_text(text, encoding="utf-8")
        env.err.print(f"Register written to {out}.")
    elif fmt == "markdown" and env.console.is_terminal:
        env.console.print(Markdown(text))
    else:
        click.echo(text)


@click.group()
def moodle() -> None:
    """Work with a Moodle site's database (read-only)."""


@moodle.command("report")
@click.option("--db", "moodle_db", required=True, help="SQLAlchemy URL of the Moodle database.")
@click.option("--prefix", default="mdl_", show_default=True, help="Moodle table prefix.")
@now_option()
@click.option("--no-sweep", is_flag=True, help="Skip the learnprivacy dry-run sweep (faster).")
@pass_env
def moodle_report_command(
    env: Env, moodle_db: str, prefix: str, now: dt.datetime | None, no_sweep: bool
) -> None:
    """What the site's data registry retention means today (dry run; never writes)."""
    from learnprivacy.moodle import moodle_report

    with progress(env, "Reading the Moodle site", unit="users") as bar:
        report: Any = moodle_report(
            moodle_db, now=resolve_now(now), prefix=prefix, sweep=not no_sweep, progress=bar
        )
    if env.json:
        click.echo(json.dumps(report.to_dict(), indent=2, default=str))
    else:
        click.echo(report.to_text(), nl=False)


def register_register_commands(group: click.Group) -> None:
    """Add ``register`` and ``moodle`` to ``group``."""
    group.add_command(register)
    group.add_command(moodle)
