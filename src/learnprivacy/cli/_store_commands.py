"""Commands over a store: init, import, sweep, erase, export, audit, copy (keys: _keys.py)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.table import Table

from learnprivacy import Action
from learnprivacy._validators import is_aware
from learnprivacy.cli._app import Env, emit, pass_env, resolve_now
from learnprivacy.cli._config import load_keyring, master_key_variable, write_key_file
from learnprivacy.cli._importer import import_file
from learnprivacy.cli._progress import progress
from learnprivacy.cli._schedules import load_schedule
from learnprivacy.cli._settings import CONFIG_FILE, LANGUAGES, sample_config
from learnprivacy.errors import ConfigurationError, NotFoundError

__all__ = ["register_store_commands"]

F = TypeVar("F", bound=Callable[..., Any])


class AwareDateTime(click.ParamType):
    """An ISO 8601 date or datetime; a date means midnight UTC, a naive time means UTC."""

    name = "datetime"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """Parse the option value."""
        if isinstance(value, dt.datetime):
            return value
        try:
            parsed = dt.datetime.fromisoformat(str(value))
        except ValueError:
            self.fail("expected an ISO 8601 date such as 2026-06-15 or 2026-06-15T12:00+02:00")
        return parsed if is_aware(parsed) else parsed.replace(tzinfo=dt.UTC)


def now_option(
    help: str = "Evaluate as of this instant (ISO 8601; default: now).",
) -> Callable[[F], F]:
    """``--now``: the instant a command acts at (default: the current time)."""
    return click.option("--now", "now", type=AwareDateTime(), default=None, help=help)


@click.command()
@click.option(
    "--force", is_flag=True, help="Replace an existing key file (data becomes unreadable)."
)
@pass_env
def init(env: Env, force: bool) -> None:
    """Write a commented learnprivacy.toml, a master key file (mode 0600) and the store.

    An existing configuration file is left as it is. The key comes from
    LEARNPRIVACY_MASTER_KEY (or [keys] master_key_env) instead of a file when set.
    """
    config_path = Path(env.config_requested or env.settings.path or CONFIG_FILE)
    config_created = False
    if not config_path.exists():
        config_path.parent.mkdir(parents=True, exist_ok=True)
        config_path.write_text(sample_config(db=env.db, key_file=env.key_file), encoding="utf-8")
        config_created = True
    variable = master_key_variable(env.settings.master_key_env)
    key_path = Path(env.key_file)
    created_key = False
    if variable is None and (force or not key_path.exists()):
        write_key_file(key_path, overwrite=force)
        created_key = True
    try:
        store_cm = env.open_store()
    except BaseException:
        # A fresh key that cannot open an existing store is useless: do not leave it.
        if created_key:
            key_path.unlink(missing_ok=True)
        raise
    with store_cm as store:
        info = {
            "config": str(config_path),
            "config_created": config_created,
            "database": env.db,
            "store_id": store.store_id,
            "key_file": None if variable else str(key_path),
            "key_created": created_key,
        }

    def human() -> None:
        console = env.console
        if config_created:
            console.print(
                f"Configuration written to [bold]{config_path}[/]: fill in [controller] and "
                "[dpo] before producing registers, letters or exports."
            )
        console.print(
            f"Store ready at [bold]{env.db}[/]"
            + (
                f"; new master key written to [bold]{key_path}[/] (mode 0600)"
                if created_key
                else ""
            )
            + ".\nKeep the master key out of the database backups: "
            "whoever holds both can read them."
        )

    emit(env, info, human)


@click.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--type",
    "record_type",
    default=None,
    help="Record type of a CSV file (Learner, Progress, Invoice...); JSON files may say it.",
)
@click.option(
    "--xapi-home-page",
    default=None,
    help="The LMS home page of the actors in an xAPI statements file.",
)
@pass_env
def import_(env: Env, path: str, record_type: str | None, xapi_home_page: str | None) -> None:
    """Import learners, progress, invoices... from a CSV or JSON file (all or nothing).

    A CSV file holds one record type (--type), one record per row, the field names as
    header; nested values use dotted columns (score.raw, score.min, score.max) and an
    empty cell is a missing value. Every row is checked before anything is written.
    A JSON file of xAPI statements gives progress records of the store's learners.
    """
    with env.open_store() as store:
        counts = import_file(
            env, store, Path(path), record_type=record_type, xapi_home_page=xapi_home_page
        )
    emit(
        env,
        {"imported": counts},
        lambda: env.console.print(
            "Imported " + ", ".join(f"{n} {name}" for name, n in counts.items()) + "."
        ),
    )


@click.command()
@click.option("--dry-run", is_flag=True, help="Report what would happen, change nothing.")
@click.option(
    "--schedule",
    "schedule_path",
    default=None,
    help="Schedule JSON file (default: [policy] of the configuration).",
)
@click.option(
    "--compact/--no-compact",
    default=True,
    show_default=True,
    help="After erasing anything, compact the data keys (learnprivacy keys compact), so "
    "that key-database backups taken before open nothing of what was erased; the "
    "application may keep writing meanwhile.",
)
@now_option()
@pass_env
def sweep(
    env: Env, dry_run: bool, schedule_path: str | None, compact: bool, now: dt.datetime | None
) -> None:
    """Apply the retention schedule: erase, anonymise or restrict what has expired."""
    schedule = load_schedule(schedule_path) if schedule_path else env.settings.schedule()
    label = "Planning (dry run)" if dry_run else "Sweeping"
    with env.open_store() as store, progress(env, label, unit="rows") as bar:
        report = store.sweep(
            schedule, now=resolve_now(now), dry_run=dry_run, progress=bar, compact=compact
        )
        epoch = store.key_epoch_status()["epoch"]
    data = sweep_data(report)
    data["key_epoch"] = epoch
    emit(env, data, lambda: print_sweep(env, data))


def sweep_data(report: Any) -> dict[str, Any]:
    """The JSON form of a SweepReport."""
    return {
        "dry_run": report.dry_run,
        "now": report.now.isoformat(),
        "erased": report.erased,
        "anonymised": report.anonymised,
        "restricted": report.restricted,
        "review": report.review,
        "kept": report.kept,
        "shredded_keys": report.shredded,
        "by_type": {k: dict(v) for k, v in report.by_type.items()},
        "folded": report.folded,
    }


def print_sweep(env: Env, data: dict[str, Any]) -> None:
    """Render a sweep report as a table."""
    title = "Retention sweep" + (" (dry run: nothing changed)" if data["dry_run"] else "")
    table = Table(title=f"{title} as of {data['now'][:10]}", title_justify="left")
    columns = (Action.ERASE, Action.ANONYMISE, Action.RESTRICT, Action.REVIEW, Action.KEEP)
    table.add_column("record type")
    for action in columns:
        table.add_column(action.done, justify="right")
    # by_type counts by action value (erase, keep...); the report's totals by past tense.
    for name, counts in sorted(data["by_type"].items()):
        table.add_row(name, *(str(counts.get(a.value, 0)) for a in columns))
    table.add_row("[bold]total[/]", *(f"[bold]{data[a.done]}[/]" for a in columns))
    env.console.print(table)
    _print_unfolded(env, data)


@click.command()
@click.argument("learner_ids", metavar="LEARNER_ID...", nargs=-1, required=True)
@now_option()
@pass_env
def erase(env: Env, learner_ids: tuple[str, ...], now: dt.datetime | None) -> None:
    """Erase learners (GDPR Art. 17); records under a legal minimum are restricted.

    Each learner is erased in its own transaction. An unknown learner is an error
    (exit 3) and stops before anything is erased: nothing to erase is not an erasure.
    """
    at = resolve_now(now)
    schedule = env.settings.schedule()
    with env.open_store() as store:
        for learner_id in learner_ids:
            if next(store.iter_records_of(learner_id, include_restricted=True), None) is None:
                raise NotFoundError("no such learner in the store")
        reports = []
        with progress(env, "Erasing", total=len(learner_ids), unit="learners") as bar:
            for learner_id in learner_ids:
                reports.append(
                    erasure_data(store.erase_subject(learner_id, now=at, schedule=schedule))
                )
                bar.advance(1)
    if len(reports) == 1:
        emit(env, reports[0], lambda: print_erasure(env, reports[0]))
        return

    def human() -> None:
        for data in reports:
            print_erasure(env, data)

    emit(env, reports, human)


def erasure_data(report: Any) -> dict[str, Any]:
    """The JSON form of an ErasureReport (record ids are not personal values)."""
    return {
        "subject_ref": report.subject_ref,
        "erased": report.erased,
        "restricted": report.restricted,
        "shredded_scopes": list(report.shredded_scopes),
        "kept_scopes": list(report.kept_scopes),
        "folded": report.folded,
        "outcomes": [
            {
                "record_type": o.record_type,
                "record_id": o.record_id,
                "action": o.action.value,
                "article": o.article,
                "due_at": o.due_at.isoformat() if o.due_at else None,
            }
            for o in report.outcomes
        ],
    }


def print_erasure(env: Env, data: dict[str, Any]) -> None:
    """Render an erasure report: one line per record with its outcome and article."""
    table = Table(
        title=f"Erasure: {data['erased']} erased, {data['restricted']} restricted",
        title_justify="left",
    )
    for column in ("record", "outcome", "article", "kept until"):
        table.add_column(column)
    for o in data["outcomes"]:
        action = Action(o["action"])
        style = "red" if action is Action.ERASE else "yellow"
        table.add_row(
            f"{o['record_type']} {o['record_id']}",
            f"[{style}]{action.done}[/]",
            o["article"],
            (o["due_at"] or "")[:10],
        )
    env.console.print(table)
    env.console.print(
        f"Keys shredded for scopes: {', '.join(data['shredded_scopes']) or 'none'}; "
        f"kept: {', '.join(data['kept_scopes']) or 'none'}."
    )
    _print_unfolded(env, data)


def _print_unfolded(env: Env, data: dict[str, Any]) -> None:
    """Say so when erased rows' old pages are still in SQLite's write-ahead log."""
    if not data.get("folded", True):
        env.console.print(
            "[yellow]Another connection's open read kept the erased rows' old pages in "
            "the database's write-ahead log: they leave it at the next erasure, sweep or "
            "store opening.[/]"
        )


@click.command()
@click.argument("learner_id")
@click.option("--out", required=True, type=click.Path(dir_okay=True), help="Directory or .zip.")
@click.option(
    "--scope",
    type=click.Choice(["access", "portability"]),
    default="access",
    show_default=True,
    help="access: everything (Art. 15); portability: consent/contract data (Art. 20).",
)
@click.option("--bom", is_flag=True, help="Start CSV files with a UTF-8 BOM (spreadsheets).")
@click.option("--overwrite", is_flag=True, help="Replace an existing package at --out.")
@click.option(
    "--language",
    type=click.Choice(LANGUAGES),
    default=None,
    help="Language of the learner's page (default: the first of [policy] languages).",
)
@click.option(
    "--timezone",
    "timezone",
    default=None,
    help="Time zone of the dates on the learner's page (default: [policy] timezone).",
)
@now_option()
@pass_env
def export(
    env: Env,
    learner_id: str,
    out: str,
    scope: str,
    bom: bool,
    overwrite: bool,
    language: str | None,
    timezone: str | None,
    now: dt.datetime | None,
) -> None:
    """Export a learner's data package (JSON, CSV, xAPI, HTML page, manifest).

    The package's index.html names the controller and DPO of the configuration: the
    command refuses to run until [controller] is filled in.
    """
    from learnprivacy._documents import check_timezone
    from learnprivacy.export import export_subject
    from learnprivacy.providers import PrivacyManager, StoreProvider

    settings = env.settings
    controller = settings.require_controller()
    if Path(out).exists() and not overwrite:
        raise ConfigurationError(f"{out} already exists: pass --overwrite to replace it")
    with env.open_store() as store, progress(env, "Exporting", unit="records") as bar:
        manager = PrivacyManager(
            providers=[StoreProvider(store, schedule=settings.schedule())], discover=False
        )
        result = export_subject(
            manager,
            learner_id,
            out,
            scope=scope,
            now=resolve_now(now),
            csv_bom=bom,
            overwrite=overwrite,
            controller=controller,
            language=language or settings.language,
            timezone=check_timezone(timezone) if timezone else settings.timezone,
            xapi_profile=settings.xapi_profile(),
            progress=bar,
        )
    files = result.manifest.get("files", [])
    data = {"path": str(result.path), "scope": scope, "files": files}
    emit(
        env,
        data,
        lambda: env.console.print(
            f"Wrote [bold]{result.path}[/] ({scope}): {len(files)} files, "
            f"{sum(int(f.get('records', 0) or 0) for f in files)} records."
        ),
    )


@click.group()
def audit() -> None:
    """The tamper-evident audit log."""


@audit.command("verify")
@pass_env
def audit_verify(env: Env) -> None:
    """Check the audit log's hash chain; exit 6 naming the first bad entry if broken."""
    with env.open_store() as store, env.err.status("Verifying the audit chain..."):
        store.audit.verify()
        count = sum(1 for _ in store.audit.entries())
    emit(
        env,
        {"verified": True, "entries": count},
        lambda: env.console.print(f"Audit chain intact: {count} entries verified."),
    )


@click.command("copy")
@click.option("--to", "target", required=True, help="URL of the empty target database.")
@click.option("--batch-size", type=int, default=None, help="Rows per batch (default: the store's).")
@pass_env
def copy_command(env: Env, target: str, batch_size: int | None) -> None:
    """Copy the store to another database (e.g. SQLite to PostgreSQL), then verify it."""
    from learnprivacy.store import copy_store

    with env.err.status("Copying and verifying..."):
        report = copy_store(
            env.db,
            target,
            keyring=load_keyring(env.key_file, master_key_env=env.settings.master_key_env),
            keys=env.settings.keys_url,
            batch_size=batch_size,
        )
    data = {
        "store_id": report.store_id,
        "tables": dict(report.tables),
        "audit_entries": report.audit_entries,
        "sampled": report.sampled,
    }
    emit(
        env,
        data,
        lambda: env.console.print(
            f"Copied {sum(report.tables.values()):,} rows in {len(report.tables)} tables; "
            f"audit chain ({report.audit_entries:,} entries) verified and {report.sampled} "
            "records decrypted on the target. Point --db at the new URL."
        ),
    )


def register_store_commands(group: click.Group) -> None:
    """Add the store commands to ``group``."""
    for command in (init, import_, sweep, erase, export, audit, copy_command):
        group.add_command(command)
