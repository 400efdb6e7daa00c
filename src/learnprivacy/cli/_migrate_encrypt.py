"""``learnprivacy migrate-encrypt``: encrypt an application's plaintext columns in place."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import click

from learnprivacy._vocabulary import BATCH_SIZE
from learnprivacy.cli._app import Env, emit, fail
from learnprivacy.cli._progress import progress

__all__ = ["migrate_encrypt_command"]


def _load_base(spec: str) -> Any:
    """The object ``module:attribute`` names (the application's declarative base)."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        fail("--models must be module:Base, e.g. myapp.models:Base", code=2, kind="Usage")
    # Application modules are imported from the working directory, as Flask and Alembic do.
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        fail(f"cannot import {module_name}", code=2, kind="Usage")
    try:
        return getattr(module, attribute)
    except AttributeError:
        fail(f"{module_name} has no {attribute}", code=2, kind="Usage")


@click.command("migrate-encrypt")
@click.option("--app-db", required=True, help="URL of the application's database.")
@click.option("--models", "models_spec", required=True, help="module:Base of the models.")
@click.option("--keys", "keys_url", default=None, help="Key database URL (over [keys] url).")
@click.option("--table", "tables", multiple=True, help="Only these tables (repeatable).")
@click.option("--batch-size", default=BATCH_SIZE, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--repair-indexes",
    is_flag=True,
    help="Rewrite blind indexes that do not match their values (missing ones always are).",
)
@click.option("--component", default="lms", show_default=True, help="LearnPrivacy component.")
@click.pass_obj
def migrate_encrypt_command(
    env: Env,
    app_db: str,
    models_spec: str,
    keys_url: str | None,
    tables: tuple[str, ...],
    batch_size: int,
    repair_indexes: bool,
    component: str,
) -> None:
    """Encrypt the plaintext personal columns of an application's tables, in place.

    Each batch is one transaction and values already encrypted are skipped, so a run
    that was interrupted is simply started again. Every value is decrypted back at the
    end and every blind index recomputed from it: the command fails (exit 3) unless all
    of them open and match.
    """
    from sqlalchemy import create_engine

    from learnprivacy.cli._config import load_keyring
    from learnprivacy.sqlalchemy import LearnPrivacy, migrate_encrypt

    keys = keys_url or env.settings.keys_url
    if not keys:
        fail("the key database is needed: --keys URL or [keys] url", code=2, kind="Usage")
    base = _load_base(models_spec)
    keyring = load_keyring(env.key_file, master_key_env=env.settings.master_key_env)
    privacy = LearnPrivacy(base, keyring=keyring, keys=keys, component=component)
    models = [privacy.spec(t).model for t in tables] if tables else None
    engine = create_engine(app_db, hide_parameters=True)

    try:
        with progress(env, "Encrypting", unit="rows") as bar:

            def report(table: str, done: int, total: int) -> None:
                # One table after the other: the bar restarts for each.
                bar.describe(f"Encrypting {table}")
                bar.set(done, total)

            reports = migrate_encrypt(
                privacy,
                engine,
                models,
                batch_size=batch_size,
                progress=report,
                repair_indexes=repair_indexes,
            )
    finally:
        engine.dispose()
    data = [
        {
            "table": r.table,
            "rows": r.rows,
            "encrypted": r.encrypted,
            "batches": r.batches,
            "reindexed": r.reindexed,
            "verified": r.verified,
        }
        for r in reports
    ]

    def human() -> None:
        for r in reports:
            env.console.print(
                f"{r.table}: {r.encrypted} value(s) encrypted in {r.rows} row(s), "
                f"{r.reindexed} blind index(es) written, verified: {'yes' if r.verified else 'no'}"
            )

    emit(env, {"tables": data}, human)
