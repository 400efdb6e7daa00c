"""The response letter of a request, in French or English, as Markdown or HTML.

The wording lives in package data (``templates/<language>/letter.md``, ``letter.html``
and ``phrases.json``), filled with :class:`string.Template`; this module only chooses the
sentences and escapes every value for the output format, so a requester called
``<script>`` or ``*Ana*`` reads as written.

The letter goes to the requester and speaks of the subject's own records. It names the
requester, never anyone else: an executor designated in a directive is mentioned, not
named; rectified values and the proof of identity are not repeated.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from importlib import resources
from string import Template
from typing import Any, Literal

from learnprivacy._controller import Controller
from learnprivacy._validators import require_aware
from learnprivacy.errors import ValidationError
from learnprivacy.requests._model import SubjectRequest
from learnprivacy.requests._params import (
    ObjectionParams,
    PostMortemDirective,
    WithdrawConsentParams,
)
from learnprivacy.requests._vocabulary import RequestState, RequestType

__all__ = ["LANGUAGES", "render_letter"]

#: The languages letters can be written in.
LANGUAGES = ("fr", "en")

Language = Literal["fr", "en"]
Format = Literal["md", "html"]

# Characters that start inline markup anywhere, and block markup at the start of a line.
_MARKDOWN_INLINE = re.compile(r"([\\`*_\[\]<>|~])")
_MARKDOWN_BLOCK = re.compile(r"^([#+\-=]|\d+(?=[.)]))")


@cache
def _phrases(language: str) -> Mapping[str, Any]:
    data = resources.files("learnprivacy.requests").joinpath("templates", language, "phrases.json")
    loaded: Mapping[str, Any] = json.loads(data.read_text(encoding="utf-8"))
    return loaded


@cache
def _skeleton(language: str, format: str) -> Template:
    data = resources.files("learnprivacy.requests").joinpath(
        "templates", language, f"letter.{format}"
    )
    return Template(data.read_text(encoding="utf-8"))


def _escape_markdown(text: str) -> str:
    # Line breaks would end a table row or start a heading: a letter value is one line.
    flat = _MARKDOWN_INLINE.sub(r"\\\1", " ".join(text.split()))
    # "# x", "- x" or "1. x" at the start of a line would open a heading or a list.
    return _MARKDOWN_BLOCK.sub(_escape_marker, flat)


def _escape_marker(match: re.Match[str]) -> str:
    marker = match.group(1)
    # A list number is escaped by its dot ("1\\. x"), a symbol by itself ("\\# x").
    return marker + "\\" if marker.isdigit() else "\\" + marker


def _escape_html(text: str) -> str:
    return html.escape(" ".join(text.split()), quote=True)


class _Writer:
    """Format-specific pieces: escaping, paragraphs, tables, lists."""

    def __init__(self, format: Format) -> None:
        self.format = format
        self.escape: Callable[[str], str] = _escape_markdown if format == "md" else _escape_html

    def paragraph(self, text: str) -> str:
        return f"{text}\n\n" if self.format == "md" else f"<p>{text}</p>\n"

    def heading(self, text: str) -> str:
        return f"### {text}\n\n" if self.format == "md" else f"<h3>{text}</h3>\n"

    def table(self, header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
        if self.format == "md":
            lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            lines += ["| " + " | ".join(row) + " |" for row in rows]
            return "\n".join(lines) + "\n\n"
        head = "".join(f"<th>{cell}</th>" for cell in header)
        body = "".join(
            "<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>\n" for row in rows
        )
        return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>\n"

    def items(self, entries: Sequence[str]) -> str:
        if self.format == "md":
            return "".join(f"- {entry}\n" for entry in entries) + "\n"
        return "<ul>\n" + "".join(f"<li>{entry}</li>\n" for entry in entries) + "</ul>\n"


def _date(moment: dt.datetime, phrases: Mapping[str, Any]) -> str:
    day = phrases.get("day_one", "1") if moment.day == 1 else str(moment.day)
    return Template(phrases["date"]).substitute(
        day=day, month=phrases["months"][moment.month - 1], year=moment.year
    )


def _article(article: str, phrases: Mapping[str, Any]) -> str:
    """``"GDPR Art. 17(1)"`` in the letter's language (``"RGPD, art. 17(1)"``)."""
    prefix = "GDPR Art. "
    if article.startswith(prefix):
        return str(phrases["article_prefix"]) + article[len(prefix) :]
    return article


def _sentence(text: str) -> str:
    # Free text written by the controller is set inside a sentence that brings its own
    # final full stop.
    return text.strip().rstrip(".")


def render_letter(
    request: SubjectRequest,
    controller: Controller,
    *,
    now: dt.datetime,
    language: Language = "fr",
    format: Format = "md",
) -> str:
    """The letter answering ``request`` at ``now``, from ``controller``.

    It says when the request was received and when the answer is due, any extension
    and its reasons, what was done (per record, with the article) or why nothing was
    done, which recipients were told (Art. 19), and how to complain to the supervisory
    authority or go to court. Works at every state: an open request gets an
    acknowledgement.
    """
    if language not in LANGUAGES:
        raise ValidationError("language must be 'fr' or 'en'", field="language")
    if format not in ("md", "html"):
        raise ValidationError("format must be 'md' or 'html'", field="format")
    require_aware(now, "now")
    phrases = _phrases(language)
    writer = _Writer(format)
    esc = writer.escape
    due = esc(_date(request.due_at, phrases))
    body = ""
    extension = request.extension
    if extension is not None:
        body += writer.paragraph(
            Template(phrases["extension"]).substitute(
                months=extension.months,
                due=due,
                reasons=esc(_sentence(extension.reasons)),
                informed=esc(_date(extension.subject_informed_at, phrases)),
            )
        )
    body += _state_section(request, phrases, writer, due)
    authority = controller.authority
    values = {
        "controller_name": esc(controller.name),
        "controller_contact": esc(controller.reply_to),
        "date": esc(_date(now, phrases)),
        "addressee": esc(request.requester.name),
        "reference": esc(request.id),
        "type_label": esc(phrases["type"][request.type.value]),
        "received": esc(_date(request.received_at, phrases)),
        "body": body,
        "authority_name": esc(authority.name),
        "authority_short_name": esc(authority.short_name),
        "authority_address": esc(authority.address),
        # A URL is left unescaped in Markdown, where escaping its dots would show.
        "authority_complaint_url": (
            authority.complaint_url if format == "md" else esc(authority.complaint_url)
        ),
        "judicial_remedy": esc(controller.judicial_remedy or phrases["judicial_remedy"]),
    }
    return _skeleton(language, format).substitute(values)


def _state_section(
    request: SubjectRequest, phrases: Mapping[str, Any], writer: _Writer, due: str
) -> str:
    esc = writer.escape
    state = request.state
    if state is RequestState.REFUSED and request.refusal is not None:
        refusal = request.refusal
        text = writer.paragraph(
            Template(phrases["state"]["refused"]).substitute(
                grounds=esc(phrases["grounds"][refusal.grounds.value]),
                article=esc(refusal.grounds.article),
            )
        )
        return text + writer.paragraph(
            Template(phrases["refusal_reason"]).substitute(reason=esc(_sentence(refusal.reason)))
        )
    if state is not RequestState.COMPLETED:
        return writer.paragraph(Template(phrases["state"][state.value]).substitute(due=due))
    return _completed_section(request, phrases, writer)


def _completed_section(request: SubjectRequest, phrases: Mapping[str, Any], writer: _Writer) -> str:
    esc = writer.escape
    completed = phrases["completed"]
    params = request.params
    if request.type is RequestType.OBJECTION:
        assert isinstance(params, ObjectionParams)  # guaranteed by the request type
        if request.compelling_grounds is not None:
            text = Template(completed["objection_overridden"]).substitute(
                purpose=esc(params.purpose), grounds=esc(_sentence(request.compelling_grounds))
            )
        else:
            text = Template(completed["objection_upheld"]).substitute(purpose=esc(params.purpose))
    elif request.type is RequestType.WITHDRAW_CONSENT:
        assert isinstance(params, WithdrawConsentParams)  # guaranteed by the request type
        text = Template(completed["withdraw_consent"]).substitute(purpose=esc(params.purpose))
    elif request.type is RequestType.POST_MORTEM_DIRECTIVE:
        assert isinstance(params, PostMortemDirective)  # guaranteed by the request type
        executor = phrases["executor_designated"] if params.executor is not None else ""
        text = Template(completed["post_mortem_directive"]).substitute(executor=executor)
    elif request.type in (RequestType.ACCESS, RequestType.PORTABILITY) and not any(
        step.artifact for step in request.steps
    ):
        text = completed[f"{request.type.value}_none"]
    else:
        text = completed[request.type.value]
    section = writer.paragraph(text)
    for step in request.steps:
        digest = step.facts.get("sha256")
        if digest:
            section += writer.paragraph(Template(phrases["package"]).substitute(sha256=esc(digest)))
    outcomes = request.record_outcomes
    if outcomes and request.type not in (RequestType.ACCESS, RequestType.PORTABILITY):
        section += writer.heading(esc(phrases["outcomes_title"]))
        rows = [
            [
                esc(f"{o.record_type} {o.record_id}"),
                esc(phrases["actions"][o.action.done]),
                esc(_article(o.article, phrases)),
                esc(phrases["notes"].get(o.article) or o.reason or ""),
            ]
            for o in outcomes
        ]
        section += writer.table([esc(h) for h in phrases["outcomes_header"]], rows)
    notifications = request.notifications
    if notifications:
        section += writer.heading(esc(phrases["recipients_title"]))
        section += writer.items(
            [
                f"{esc(n.location)}: {esc(phrases['notifications'][n.status.value])}"
                for n in notifications
            ]
        )
    return section
