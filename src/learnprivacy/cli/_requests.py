"""``learnprivacy requests``: data-subject requests kept in the store's database."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
from rich.table import Table

from learnprivacy.cli._app import Env, emit, pass_env, resolve_now, values_of
from learnprivacy.cli._config import open_store
from learnprivacy.cli._store_commands import AwareDateTime
from learnprivacy.errors import ValidationError
from learnprivacy.requests import Channel, ProofMethod, RequestType

__all__ = ["requests_group"]


@contextmanager
def _book(env: Env, export_dir: str | None = None) -> Iterator[tuple[Any, Any]]:
    from learnprivacy.cli._schedules import default_schedule
    from learnprivacy.providers import PrivacyManager
    from learnprivacy.requests import RequestBook, RequestExecutor, store_audit_sink
    from learnprivacy.requests.sql import SQLBackend

    with open_store(env.db, env.key_file) as store:
        # Transitions go to the request's own history and to the store's audit log.
        book = RequestBook(
            SQLBackend(store, cipher=store.cipher), audit_sink=store_audit_sink(store)
        )
        executor = RequestExecutor(
            book,
            store=store,
            manager=PrivacyManager(store=store, discover=True),
            export_dir=export_dir,
            schedule=default_schedule(),
        )
        yield book, executor


def _row(request: Any, now: dt.datetime) -> dict[str, Any]:
    due = request.due_at
    return {
        "id": request.id,
        "type": request.type.value,
        "state": request.state.value,
        "received_at": request.received_at.isoformat(),
        "due_at": due.isoformat(),
        "overdue": request.is_overdue(now),
    }


@click.group("requests")
def requests_group() -> None:
    """Data-subject requests: receive, verify identity, execute, answer."""


@requests_group.command("new")
@click.argument(
    "request_type",
    type=click.Choice(values_of(RequestType)),
)
@click.argument("learner_id")
@click.option(
    "--channel",
    type=click.Choice(values_of(Channel)),
    default="email",
    show_default=True,
)
@click.option(
    "--requester-name", required=True, help="Who wrote (the letter is addressed to them)."
)
@click.option(
    "--received",
    "received",
    type=AwareDateTime(),
    default=None,
    help="When it was received (default: now).",
)
@pass_env
def requests_new(
    env: Env,
    request_type: str,
    learner_id: str,
    channel: str,
    requester_name: str,
    received: dt.datetime | None,
) -> None:
    """Record a request received from the subject (types needing parameters: use the API)."""
    from learnprivacy.requests import Requester, RequesterRole

    kind = RequestType(request_type)
    if kind in (
        RequestType.RECTIFICATION,
        RequestType.OBJECTION,
        RequestType.WITHDRAW_CONSENT,
        RequestType.POST_MORTEM_DIRECTIVE,
    ):
        raise ValidationError(
            f"{request_type} requests carry parameters: create them with the Python API",
            field="request_type",
        )
    now = resolve_now(received)
    with _book(env) as (book, _executor):
        request = book.receive(
            type=kind,
            learner_id=learner_id,
            received_at=now,
            channel=Channel(channel),
            requester=Requester(role=RequesterRole.SUBJECT, name=requester_name),
        )
        data = _row(request, now)
    emit(
        env,
        data,
        lambda: env.console.print(
            f"Request {data['id']} ({request_type}) received; answer due by {data['due_at'][:10]}."
        ),
    )


@requests_group.command("list")
@click.option("--overdue", is_flag=True, help="Only requests past their deadline.")
@click.option("--now", "now", type=AwareDateTime(), default=None)
@pass_env
def requests_list(env: Env, overdue: bool, now: dt.datetime | None) -> None:
    """List requests with their state and deadline."""
    at = resolve_now(now)
    with _book(env) as (book, _executor):
        found = book.overdue(at) if overdue else book.requests()
        rows = [_row(r, at) for r in found]

    def human() -> None:
        table = Table(title=f"{len(rows)} request(s)", title_justify="left")
        for column in ("id", "type", "state", "received", "due", ""):
            table.add_column(column)
        for r in rows:
            table.add_row(
                r["id"],
                r["type"],
                r["state"],
                r["received_at"][:10],
                r["due_at"][:10],
                "[red]overdue[/]" if r["overdue"] else "",
            )
        env.console.print(table)

    emit(env, rows, human)


@requests_group.command("show")
@click.argument("request_id")
@click.option(
    "--letter",
    type=click.Choice(["md", "html"]),
    default=None,
    help="Print the response letter instead.",
)
@click.option("--language", type=click.Choice(["fr", "en"]), default="en", show_default=True)
@click.option("--now", "now", type=AwareDateTime(), default=None)
@pass_env
def requests_show(
    env: Env, request_id: str, letter: str | None, language: str, now: dt.datetime | None
) -> None:
    """Show a request, its hash-chained history, or its response letter."""
    from learnprivacy.requests import render_letter

    at = resolve_now(now)
    with _book(env) as (book, _executor):
        request = book.get(request_id)
        if letter:
            from learnprivacy.cli._register_commands import example_controller

            text = render_letter(  # click.Choice guarantees the literal values
                request,
                example_controller(),
                now=at,
                language=language,  # type: ignore[arg-type]
                format=letter,  # type: ignore[arg-type]
            )
            click.echo(text)
            return
        history = [
            {
                "sequence": h.sequence,
                "at": h.at.isoformat(),
                "event": h.event,
                "state": h.state_after.value,
            }
            for h in book.history(request_id)
        ]
        book.verify(request_id)
        data = {**_row(request, at), "history": history}

    def human() -> None:
        env.console.print(
            f"[bold]{data['id']}[/] {data['type']} — {data['state']}, due {data['due_at'][:10]}"
        )
        for h in history:
            env.console.print(f"  {h['sequence']:>3}  {h['at'][:19]}  {h['event']} → {h['state']}")

    emit(env, data, human)


@requests_group.command("advance")
@click.argument("request_id")
@click.option(
    "--identity",
    type=click.Choice(values_of(ProofMethod)),
    default=None,
    help="How identity was established (moves the request to in_progress).",
)
@click.option(
    "--export-dir",
    default=".",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where access/portability packages go.",
)
@click.option("--now", "now", type=AwareDateTime(), default=None)
@pass_env
def requests_advance(
    env: Env, request_id: str, identity: str | None, export_dir: str, now: dt.datetime | None
) -> None:
    """Move a request one step: ask for identity, record it, or execute it."""
    from learnprivacy.requests import RequestState

    at = resolve_now(now)
    with _book(env, export_dir=export_dir) as (book, executor):
        request = book.get(request_id)
        if request.state is RequestState.RECEIVED and identity is None:
            request = book.request_identity(request_id, now=at)
        elif request.state in (RequestState.RECEIVED, RequestState.AWAITING_IDENTITY):
            if identity is None:
                raise ValidationError(
                    "say how identity was established: --identity", field="identity"
                )
            request = book.verify_identity(request_id, method=ProofMethod(identity), now=at)
        elif request.state is RequestState.IN_PROGRESS:
            request = executor.execute(request_id, now=at)
        data = _row(request, at)
    emit(env, data, lambda: env.console.print(f"Request {data['id']} is now {data['state']}."))
