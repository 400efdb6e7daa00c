"""Commands over a store: init, import, sweep, erase, export, keys, audit."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.table import Table

from learnprivacy.cli._app import Env, emit, pass_env, resolve_now
from learnprivacy.cli._config import load_keyring, open_store, write_key_file
from learnprivacy.cli._importer import import_file
from learnprivacy.cli._schedules import load_schedule
from learnprivacy.errors import ValidationError

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
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


def now_option() -> Callable[[F], F]:
    """``--now``: the instant retention is evaluated at (default: the current time)."""
    return click.option(
        "--now",
        "now",
        type=AwareDateTime(),
        default=None,
        help="Evaluate as of this instant (ISO 8601; default: now).",
    )


@click.command()
@click.option(
    "--force", is_flag=True, help="Replace an existing key file (data becomes unreadable)."
)
@pass_env
def init(env: Env, force: bool) -> None:
    """Create the store and a master key file (mode 0600), or use LEARNPRIVACY_MASTER_KEY."""
    import os

    from learnprivacy.crypto import ENV_VAR

    key_path = Path(env.key_file)
    created_key = False
    if not os.environ.get(ENV_VAR) and (force or not key_path.exists()):
        write_key_file(key_path, overwrite=force)
        created_key = True
    try:
        store_cm = open_store(env.db, env.key_file)
    except BaseException:
        # A fresh key that cannot open an existing store is useless: do not leave it.
        if created_key:
            key_path.unlink(missing_ok=True)
        raise
    with store_cm as store:
        info = {
            "database": env.db,
            "store_id": store.store_id,
            "key_file": None if os.environ.get(ENV_VAR) else str(key_path),
            "key_created": created_key,
        }
    emit(
        env,
        info,
        lambda: env.console.print(
            f"Store ready at [bold]{env.db}[/]"
            + (
                f"; new master key written to [bold]{key_path}[/] (mode 0600)"
                if created_key
                else ""
            )
            + ".\nKeep the master key out of the database backups: "
            "whoever holds both can read them."
        ),
    )


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

    A JSON file of xAPI statements gives progress records of the store's learners.
    """
    with open_store(env.db, env.key_file) as store:
        counts = import_file(
            store,
            Path(path),
            record_type=record_type,
            console=env.err,
            xapi_home_page=xapi_home_page,
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
@click.option("--schedule", "schedule_path", default=None, help="Schedule JSON file.")
@now_option()
@pass_env
def sweep(env: Env, dry_run: bool, schedule_path: str | None, now: dt.datetime | None) -> None:
    """Apply the retention schedule: erase, anonymise or restrict what has expired."""
    schedule = load_schedule(schedule_path)
    status = "Planning (dry run)..." if dry_run else "Sweeping..."
    with open_store(env.db, env.key_file) as store, env.err.status(status):
        report = store.sweep(schedule, now=resolve_now(now), dry_run=dry_run)
    data = sweep_data(report)
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
    }


def print_sweep(env: Env, data: dict[str, Any]) -> None:
    """Render a sweep report as a table."""
    title = "Retention sweep" + (" (dry run: nothing changed)" if data["dry_run"] else "")
    table = Table(title=f"{title} as of {data['now'][:10]}", title_justify="left")
    actions = ("erased", "anonymised", "restricted", "review", "kept")
    table.add_column("record type")
    for action in actions:
        table.add_column(action, justify="right")
    # by_type counts by engine action (erase, keep...); columns are the outcomes.
    verbs = ("erase", "anonymise", "restrict", "review", "keep")
    for name, counts in sorted(data["by_type"].items()):
        table.add_row(name, *(str(counts.get(v, 0)) for v in verbs))
    table.add_row("[bold]total[/]", *(f"[bold]{data[a]}[/]" for a in actions))
    env.console.print(table)


@click.command()
@click.argument("learner_id")
@now_option()
@pass_env
def erase(env: Env, learner_id: str, now: dt.datetime | None) -> None:
    """Erase a learner (GDPR Art. 17); records under a legal minimum are restricted."""
    with open_store(env.db, env.key_file) as store:
        report = store.erase_subject(learner_id, now=resolve_now(now), schedule=load_schedule(None))
    data = erasure_data(report)
    emit(env, data, lambda: print_erasure(env, data))


def erasure_data(report: Any) -> dict[str, Any]:
    """The JSON form of an ErasureReport (record ids are not personal values)."""
    return {
        "subject_ref": report.subject_ref,
        "erased": report.erased,
        "restricted": report.restricted,
        "shredded_scopes": list(report.shredded_scopes),
        "kept_scopes": list(report.kept_scopes),
        "outcomes": [
            {
                "record_type": o.record_type,
                "record_id": o.record_id,
                "outcome": o.outcome,
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
        style = "red" if o["outcome"] == "erased" else "yellow"
        table.add_row(
            f"{o['record_type']} {o['record_id']}",
            f"[{style}]{o['outcome']}[/]",
            o["article"],
            (o["due_at"] or "")[:10],
        )
    env.console.print(table)
    env.console.print(
        f"Keys shredded for scopes: {', '.join(data['shredded_scopes']) or 'none'}; "
        f"kept: {', '.join(data['kept_scopes']) or 'none'}."
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
@now_option()
@pass_env
def export(
    env: Env, learner_id: str, out: str, scope: str, bom: bool, now: dt.datetime | None
) -> None:
    """Export a learner's data package (JSON, CSV, xAPI, HTML, manifest)."""
    from learnprivacy.export import export_subject

    with open_store(env.db, env.key_file) as store:
        result = export_subject(
            store, learner_id, out, scope=scope, now=resolve_now(now), csv_bom=bom
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
def keys() -> None:
    """Master key management."""


@keys.command("rotate")
@pass_env
def keys_rotate(env: Env) -> None:
    """Rewrap every data key under a new master key, then replace the key file."""
    import os

    from learnprivacy.crypto import ENV_VAR

    if os.environ.get(ENV_VAR):
        raise ValidationError(
            f"the master key comes from {ENV_VAR}: rotate it in your secret manager", field=ENV_VAR
        )
    key_path = Path(env.key_file)
    keyring_check = load_keyring(env.key_file)  # fails early on an unreadable key file
    del keyring_check
    new_path = key_path.with_name(key_path.name + ".new")
    new_key = write_key_file(new_path, overwrite=True)
    with open_store(env.db, env.key_file) as store:
        key_id = store.keyring.rotate(new_key)
    # The data keys are rewrapped: only now may the old master key file go.
    os.replace(new_path, key_path)
    emit(
        env,
        {"master_key_id": key_id, "key_file": str(key_path)},
        lambda: env.console.print(
            f"Master key rotated (new key id {key_id}); {key_path} replaced."
        ),
    )


@click.group()
def audit() -> None:
    """The tamper-evident audit log."""


@audit.command("verify")
@pass_env
def audit_verify(env: Env) -> None:
    """Check the audit log's hash chain; exit 6 naming the first bad entry if broken."""
    with open_store(env.db, env.key_file) as store:
        store.audit.verify()
        count = sum(1 for _ in store.audit.entries())
    emit(
        env,
        {"verified": True, "entries": count},
        lambda: env.console.print(f"Audit chain intact: {count} entries verified."),
    )


@click.command("copy")
@click.option("--to", "target", required=True, help="URL of the empty target database.")
@click.option("--batch-size", default=5_000, show_default=True, help="Rows per batch.")
@pass_env
def copy_command(env: Env, target: str, batch_size: int) -> None:
    """Copy the store to another database (e.g. SQLite to PostgreSQL), then verify it."""
    from learnprivacy.store import copy_store

    with env.err.status("Copying and verifying..."):
        report = copy_store(
            env.db, target, keyring=load_keyring(env.key_file), batch_size=batch_size
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
    for command in (init, import_, sweep, erase, export, keys, audit, copy_command):
        group.add_command(command)
