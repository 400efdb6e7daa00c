"""``learnprivacy demo``: the whole story on an embedded SQLite database, in seconds.

A seeded synthetic training organisation is stored encrypted; the processing register is
printed; a retention sweep runs dry then for real; one learner's data is exported; another
learner's erasure request goes through the request workflow (erased vs restricted records,
with their articles); the audit chain is verified. Everything lands in one folder.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from pathlib import Path
from typing import Any

import click
from rich.panel import Panel
from rich.table import Table

from learnprivacy import Controller, Hosting, SubProcessor, Transfer
from learnprivacy.cli._app import Env, pass_env
from learnprivacy.cli._config import write_key_file
from learnprivacy.cli._progress import progress
from learnprivacy.cli._store_commands import AwareDateTime, print_sweep, sweep_data

__all__ = ["demo", "example_controller"]

_DEMO_NOW = dt.datetime(2026, 6, 15, 9, 0, tzinfo=dt.UTC)


def example_controller() -> Controller:
    """A training organisation hosted in France, as several of the real policies describe."""
    from learnprivacy import Safeguard

    return Controller(
        name="Example Formation SAS",
        address="12 rue de l'Exemple, 75011 Paris, France",
        contact="privacy@example.org",
        dpo="dpo@example.org",
        hosting=Hosting(provider="Example Cloud", country="FR", details="ISO 27001 datacentre"),
        sub_processors=(
            SubProcessor(name="Example Video", service="video-conferencing", country="FR"),
            SubProcessor(name="Example Mail", service="transactional e-mail", country="IE"),
        ),
        transfers=(
            Transfer(
                recipient="Example Support Desk",
                country="CH",
                safeguard=Safeguard.ADEQUACY_DECISION,
                details="support tickets",
            ),
        ),
        security_measures=(
            "field-level encryption with per-learner keys",
            "role-based access",
            "tamper-evident audit log",
        ),
    )


def _step(env: Env, number: int, title: str, why: str) -> None:
    env.console.print()
    env.console.rule(f"[bold]{number}. {title}", align="left")
    env.console.print(f"[dim]{why}[/]")


@click.command()
@click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder to write into (default: a new temporary folder).",
)
@click.option("--learners", default=1_000, show_default=True, help="How many learners.")
@click.option("--seed", default=7, show_default=True, help="Seed of the synthetic data.")
@click.option(
    "--now",
    "now",
    type=AwareDateTime(),
    default=_DEMO_NOW.isoformat(),
    show_default=True,
    help="The date the story happens on.",
)
@pass_env
def demo(env: Env, folder: str | None, learners: int, seed: int, now: dt.datetime) -> None:
    """Run the whole story on an embedded SQLite database (writes only to one folder)."""
    from learnprivacy.crypto import Keyring
    from learnprivacy.store import Store
    from learnprivacy.synthetic import generate_organisation

    started = time.perf_counter()
    out = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="learnprivacy-demo-"))
    out.mkdir(parents=True, exist_ok=True)
    db_path = out / "lms.db"
    if db_path.exists():
        raise click.UsageError(f"{db_path} exists already: give an empty --dir")
    key = write_key_file(out / "master.key", overwrite=True)
    console = env.console
    console.print(
        Panel.fit(
            "[bold]learnprivacy demo[/] — a training organisation keeps its learning records "
            f"lawfully.\nStory date: {now:%Y-%m-%d}. Everything is written to [bold]{out}[/].",
            border_style="cyan",
        )
    )

    _step(
        env,
        1,
        "Store the organisation's records, encrypted",
        "Personal fields become AES-256-GCM tokens under one data key per learner and "
        "scope; the master key stays outside the database.",
    )
    org = generate_organisation(now=now, seed=seed, learners=learners)
    records = list(org.records())
    store = Store(
        f"sqlite:///{db_path}",
        keyring=Keyring.from_master_key(key),
        actor="demo",
        clock=lambda: now,
    )
    with (
        store,
        progress(env, "Encrypting and storing", total=len(records), unit="records") as bar,
    ):
        for start in range(0, len(records), 2_000):
            chunk = records[start : start + 2_000]
            store.add_all(chunk)
            bar.advance(len(chunk))
    _counts_table(env, org.counts())
    sample = org.learners[0]
    raw = db_path.read_bytes()
    console.print(
        f"Learner {sample.id}'s e-mail in the database file: "
        + (
            "[red]FOUND IN CLEAR[/]"
            if sample.email.encode() in raw
            else "[green]not in clear (encrypted)[/]"
        )
    )

    with Store(
        f"sqlite:///{db_path}",
        keyring=Keyring.from_master_key(key),
        actor="demo",
        clock=lambda: now,
    ) as store:
        _story(env, store, org, out, now)
    console.print(f"\n[bold green]Done[/] in {time.perf_counter() - started:.1f} s.")


def _counts_table(env: Env, counts: dict[str, int]) -> None:
    table = Table(title="Stored records", title_justify="left")
    table.add_column("record type")
    table.add_column("count", justify="right")
    for name, count in counts.items():
        table.add_row(name, f"{count:,}")
    env.console.print(table)


def _story(env: Env, store: Any, org: Any, out: Path, now: dt.datetime) -> None:
    from learnprivacy.basis import LawfulBasis
    from learnprivacy.cli._schedules import default_schedule, schedule_rows
    from learnprivacy.export import export_subject
    from learnprivacy.providers import PrivacyManager, StoreProvider

    console = env.console
    schedule = default_schedule()
    manager = PrivacyManager(providers=[StoreProvider(store, schedule=schedule)], discover=False)

    _step(
        env,
        2,
        "The record of processing (GDPR Art. 30)",
        "Generated from the metadata every provider declares; written as Markdown and HTML.",
    )
    register = manager.register(example_controller(), as_of=now.date())
    (out / "register.md").write_text(register.to_markdown(), encoding="utf-8")
    (out / "register.html").write_text(register.to_html(), encoding="utf-8")
    table = Table(title="Processing activities", title_justify="left")
    for column in ("purpose", "lawful basis", "retention", "data"):
        table.add_column(column)
    for row in register.to_dict().get("activities", []):
        bases = [LawfulBasis.from_moodle(code) for code in row.get("bases", [])]
        table.add_row(
            str(row.get("purpose", "")),
            ", ".join(f"{b.name.lower().replace('_', ' ')} ({b.article})" for b in bases),
            "; ".join(str(r) for r in row.get("retention", [])),
            ", ".join(str(c) for c in row.get("categories", [])),
        )
    console.print(table)

    _step(env, 3, "The retention schedule", "From the promises of real LMS privacy policies.")
    table = Table(title_justify="left")
    for column in ("record type", "kept for", "after", "then", "legal minimum"):
        table.add_column(column)
    for row in schedule_rows(schedule):
        table.add_row(
            row["record_type"], row["period"], row["trigger"], row["action"], row["legal_minimum"]
        )
    console.print(table)

    _step(
        env,
        4,
        f"Retention sweep as of {now:%Y-%m-%d}",
        "A dry run first (nothing changes), then for real; legal minimums are never cut.",
    )
    dry = store.sweep(schedule, now=now, dry_run=True)
    print_sweep(env, sweep_data(dry))
    real = store.sweep(schedule, now=now)
    print_sweep(env, sweep_data(real))
    again = store.sweep(schedule, now=now)
    console.print(
        f"Run again: {again.erased + again.anonymised + again.restricted} changes "
        "(sweeps are idempotent)."
    )

    active = [lea for lea in org.learners if store.query(type(lea), id=lea.id)]
    exported = next(lea for lea in active if any(c.learner_id == lea.id for c in org.certificates))
    _step(
        env,
        5,
        f"Access export for learner {exported.id} (GDPR Art. 15)",
        "JSON per record type, CSV, xAPI statements, a readable index.html and a manifest "
        "with SHA-256 hashes; nothing is opened.",
    )
    # The learner's page (index.html) speaks French, in the learner's time zone.
    package = export_subject(
        manager,
        exported.id,
        out / f"export-{exported.id}.zip",
        now=now,
        controller=example_controller(),
        language="fr",
        timezone="Europe/Paris",
    )
    table = Table(title=str(package.path), title_justify="left")
    table.add_column("file")
    table.add_column("records", justify="right")
    for entry in package.manifest["files"]:
        table.add_row(entry["path"], str(entry.get("records", "")))
    console.print(table)

    erased_id = _erasure_request(env, store, manager, org, out, now, active, exported.id)

    _step(
        env,
        7,
        "Audit chain",
        "Every destructive action was logged first, hash-chained, "
        "with pseudonymous subject references only.",
    )
    store.audit.verify()
    entries = len(store.audit)
    console.print(f"[green]Audit chain intact[/]: {entries:,} entries verified.")

    console.print()
    console.rule("[bold]Where everything was written", align="left")
    for name, what in (
        ("lms.db", "the SQLite store (personal fields encrypted)"),
        ("master.key", "the master key (mode 0600) — keep it out of backups of lms.db"),
        ("register.md / register.html", "the Art. 30 record of processing"),
        (package.path.name, f"learner {exported.id}'s access export"),
        (f"erasure-{erased_id}.md", f"the answer to learner {erased_id}'s erasure request"),
    ):
        console.print(f"  {out / name.split(' ')[0]}  [dim]{what}[/]")


def _erasure_request(
    env: Env,
    store: Any,
    manager: Any,
    org: Any,
    out: Path,
    now: dt.datetime,
    active: list[Any],
    exclude: str,
) -> str:
    from learnprivacy.cli._schedules import default_schedule
    from learnprivacy.requests import (
        Channel,
        ProofMethod,
        RequestBook,
        Requester,
        RequesterRole,
        RequestExecutor,
        RequestType,
        render_letter,
        store_audit_sink,
    )
    from learnprivacy.requests.sql import SQLBackend

    learner = next(
        lea
        for lea in active
        if lea.id != exclude
        and any(i.learner_id == lea.id for i in org.invoices)
        and any(p.learner_id == lea.id for p in org.progress)
    )
    _step(
        env,
        6,
        f"Erasure request from learner {learner.id} (GDPR Art. 17)",
        "Received, identity checked, executed: contract data is erased and its keys "
        "shredded; invoices and funder files stay, restricted, until their legal "
        "retention ends (Art. 17(3)(b)).",
    )
    book = RequestBook(SQLBackend(store, cipher=store.cipher), audit_sink=store_audit_sink(store))
    executor = RequestExecutor(
        book, store=store, manager=manager, schedule=default_schedule(), export_dir=out
    )
    request = book.receive(
        type=RequestType.ERASURE,
        learner_id=learner.id,
        received_at=now,
        channel=Channel.EMAIL,
        requester=Requester(
            role=RequesterRole.SUBJECT, name=f"{learner.given_name} {learner.family_name}"
        ),
    )
    book.verify_identity(request.id, method=ProofMethod.AUTHENTICATED_SESSION, now=now)
    done = executor.execute(request.id, now=now)
    table = Table(
        title=f"Request {done.id}: {done.state.value}, answered "
        f"{now:%Y-%m-%d}, due by {done.due_at:%Y-%m-%d}",
        title_justify="left",
    )
    for column in ("record", "outcome", "article"):
        table.add_column(column)
    # The executor first takes an inventory (outcome "kept"); show what erasure did.
    for step in done.steps:
        for outcome in step.records:
            if outcome.action.value == "kept":
                continue
            colour = "red" if outcome.action.value == "erased" else "yellow"
            table.add_row(
                f"{outcome.record_type} {outcome.record_id}",
                f"[{colour}]{outcome.action.done}[/]",
                outcome.article,
            )
    env.console.print(table)
    letter = render_letter(
        done,
        example_controller(),
        now=now,
        language="en",
        format="md",
    )
    (out / f"erasure-{learner.id}.md").write_text(letter, encoding="utf-8")
    still = store.records_of(learner.id, include_restricted=True)
    env.console.print(
        f"Left for learner {learner.id}: "
        + ", ".join(sorted({type(r).__name__ for r in still}))
        + " (restricted)."
    )
    return str(learner.id)
