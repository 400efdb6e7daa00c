"""``learnprivacy requests``: data-subject requests kept in the store's database."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
from rich.table import Table

from learnprivacy.cli._app import (
    EXIT_CODES,
    Env,
    HelpGroup,
    emit,
    fail,
    pass_env,
    resolve_now,
    values_of,
)
from learnprivacy.cli._store_commands import AwareDateTime, now_option
from learnprivacy.errors import NotFoundError, ValidationError
from learnprivacy.requests import Channel, ProofMethod, RequestType

__all__ = ["requests_group"]

#: ``--now``: when the step is recorded (the clock, read once, without it).
_NOW = now_option("Act as of this instant (ISO 8601; default: now).")


@contextmanager
def _book(env: Env, export_dir: str | None = None) -> Iterator[tuple[Any, Any]]:
    from learnprivacy.providers import PrivacyManager
    from learnprivacy.requests import RequestBook, RequestExecutor, store_audit_sink
    from learnprivacy.requests.sql import SQLBackend

    with env.open_store() as store:
        # Transitions go to the request's own history and to the store's audit log.
        book = RequestBook(
            SQLBackend(store, cipher=store.cipher), audit_sink=store_audit_sink(store)
        )
        executor = RequestExecutor(
            book,
            store=store,
            manager=PrivacyManager(store=store, discover=True),
            export_dir=export_dir,
            schedule=env.settings.schedule(),
            recipients=env.settings.recipients_for_requests(),
        )
        yield book, executor


#: Exit code of a request whose step failed.
FAILED_EXIT = EXIT_CODES[
    "a request step failed (the request is FAILED; `requests retry` runs it again)"
]
#: The shortest id prefix shown in lists (longer when two requests share it).
_SHORT = 8


def resolve_id(book: Any, given: str) -> str:
    """The id of the one request ``given`` names: its whole id, or a unique prefix."""
    if book.get(given) is not None:
        return given
    matches = [r.id for r in book.requests() if r.id.startswith(given)]
    if len(matches) == 1:
        return str(matches[0])
    if not matches:
        raise NotFoundError("no request with this id or id prefix")
    raise ValidationError(
        f"the prefix matches {len(matches)} requests: give more characters",
        field="request_id",
    )


def short_ids(ids: list[str]) -> dict[str, str]:
    """For each id, its shortest prefix of at least 8 characters no other id shares."""
    out = {}
    for request_id in ids:
        size = min(_SHORT, len(request_id))
        while size < len(request_id) and any(
            other != request_id and other.startswith(request_id[:size]) for other in ids
        ):
            size += 1
        out[request_id] = request_id[:size]
    return out


def _failure_reason(request: Any) -> str:
    failure = request.failure
    if failure is None:
        return "the request failed"
    where = f" ({failure.component})" if failure.component else ""
    return f"step {failure.step}{where} failed: {failure.error}"


def _row(request: Any, now: dt.datetime) -> dict[str, Any]:
    due = request.due_at
    row = {
        "id": request.id,
        "type": request.type.value,
        "state": request.state.value,
        "received_at": request.received_at.isoformat(),
        "due_at": due.isoformat(),
        "overdue": request.is_overdue(now),
    }
    if request.failure is not None:
        row["failure"] = {
            "step": request.failure.step,
            "component": request.failure.component,
            "error": request.failure.error,
        }
    if request.retry_of is not None:
        row["retry_of"] = request.retry_of
    return row


@click.group("requests", cls=HelpGroup)
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
@_NOW
@pass_env
def requests_list(env: Env, overdue: bool, now: dt.datetime | None) -> None:
    """List requests with their state and deadline."""
    at = resolve_now(now)
    with _book(env) as (book, _executor):
        found = book.overdue(at) if overdue else book.requests()
        rows = [_row(r, at) for r in found]

    def human() -> None:
        shown = short_ids([r["id"] for r in rows])
        table = Table(title=f"{len(rows)} request(s)", title_justify="left")
        table.add_column("id", no_wrap=True)
        for column in ("type", "state", "received", "due", ""):
            table.add_column(column)
        for r in rows:
            table.add_row(
                shown[r["id"]],
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
@click.option(
    "--language",
    type=click.Choice(["fr", "en"]),
    default=None,
    help="Language of the letter (default: the first of [policy] languages).",
)
@_NOW
@pass_env
def requests_show(
    env: Env, request_id: str, letter: str | None, language: str | None, now: dt.datetime | None
) -> None:
    """Show a request, its hash-chained history, or its response letter.

    The letter is signed by the configuration's [controller] and names its DPO and
    supervisory authority: the command refuses to write one until they are configured.
    """
    from learnprivacy.requests import render_letter

    at = resolve_now(now)
    with _book(env) as (book, _executor):
        request_id = resolve_id(book, request_id)
        request = book.current(request_id)
        if letter:
            settings = env.settings
            signer = settings.require_controller()
            chosen = language or (settings.language if settings.language in ("fr", "en") else "en")
            text = render_letter(  # click.Choice guarantees the literal values
                request,
                signer,
                now=at,
                language=chosen,  # type: ignore[arg-type]
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
        if request.failure is not None:
            env.console.print(f"  [red]{_failure_reason(request)}[/]")
        for h in history:
            env.console.print(f"  {h['sequence']:>3}  {h['at'][:19]}  {h['event']} → {h['state']}")

    emit(env, data, human)


export_dir_option = click.option(
    "--export-dir",
    default=".",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where access/portability packages go.",
)


@requests_group.command("advance")
@click.argument("request_id")
@click.option(
    "--identity",
    type=click.Choice(values_of(ProofMethod)),
    default=None,
    help="How identity was established (moves the request to in_progress).",
)
@export_dir_option
@_NOW
@pass_env
def requests_advance(
    env: Env, request_id: str, identity: str | None, export_dir: str, now: dt.datetime | None
) -> None:
    """Move a request one step: ask for identity, record it, or execute it.

    A step that fails leaves the request FAILED and exits 9 with the step, the component
    and the reason; `requests retry` runs it again once the cause is fixed.
    """
    from learnprivacy.requests import RequestState

    at = resolve_now(now)
    with _book(env, export_dir=export_dir) as (book, executor):
        request_id = resolve_id(book, request_id)
        request = book.current(request_id)
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
        elif request.state is RequestState.FAILED:
            fail(
                f"request {request.id} has failed ({_failure_reason(request)}); "
                "run `learnprivacy requests retry` once the cause is fixed",
                FAILED_EXIT,
                kind="RequestFailed",
            )
        data = _row(request, at)
    _report(env, request, data)


def _report(env: Env, request: Any, data: dict[str, Any]) -> None:
    """Print the request's new state; a FAILED request exits 9 with its reason."""
    from learnprivacy.requests import RequestState

    if request.state is RequestState.FAILED:
        fail(
            f"request {request.id} FAILED: {_failure_reason(request)}; fix the cause, then "
            f"run `learnprivacy requests retry {request.id}`",
            FAILED_EXIT,
            kind="RequestFailed",
        )
    emit(env, data, lambda: env.console.print(f"Request {data['id']} is now {data['state']}."))


@requests_group.command("retry")
@click.argument("request_id")
@export_dir_option
@_NOW
@pass_env
def requests_retry(env: Env, request_id: str, export_dir: str, now: dt.datetime | None) -> None:
    """Run a FAILED request again: a new request "ID-retry", same deadline, same identity.

    Steps that completed are not redone; when the identity was verified the retry is
    executed at once. Exit 9 again if a step still fails.
    """
    from learnprivacy.requests import RequestState

    at = resolve_now(now)
    with _book(env, export_dir=export_dir) as (book, executor):
        request_id = resolve_id(book, request_id)
        retry = book.retry(request_id, now=at)
        if retry.state is RequestState.IN_PROGRESS:
            retry = executor.execute(retry.id, now=at)
        data = _row(retry, at)
    _report(env, retry, data)
