"""The response letter of a request, in French or English, as Markdown or HTML.

The letter is written from the Jinja2 templates ``letter.md`` and ``letter.html`` of
:mod:`learnprivacy._documents`; every sentence comes from the message catalogue (French
and English complete), dates are formatted by Babel in the letter's language. This module
chooses the sentences; every value is escaped for the output format (Jinja2's autoescape
for HTML, Markdown escaping for Markdown), so a requester called ``<script>`` or ``*Ana*``
reads as written.

The letter goes to the requester and speaks of the subject's own records. It names the
requester, never anyone else: an executor designated in a directive is mentioned, not
named; rectified values and the proof of identity are not repeated.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from learnprivacy._controller import Controller
from learnprivacy._documents import N_, escape_markdown
from learnprivacy._validators import require_aware
from learnprivacy._vocabulary import Action, Article
from learnprivacy.errors import ValidationError
from learnprivacy.requests._model import SubjectRequest
from learnprivacy.requests._params import (
    ObjectionParams,
    PostMortemDirective,
    WithdrawConsentParams,
)
from learnprivacy.requests._vocabulary import RequestState, RequestType

if TYPE_CHECKING:
    from learnprivacy._documents import Renderer

__all__ = ["LANGUAGES", "render_letter"]

#: The languages letters can be written in.
LANGUAGES = ("fr", "en")

Language = Literal["fr", "en"]
Format = Literal["md", "html"]


_TYPES = {
    "access": N_("access to your personal data (GDPR Art. 15)"),
    "portability": N_("portability of your personal data (GDPR Art. 20)"),
    "rectification": N_("rectification of your personal data (GDPR Art. 16)"),
    "erasure": N_("erasure of your personal data (GDPR Art. 17)"),
    "restriction": N_("restriction of the processing of your personal data (GDPR Art. 18)"),
    "objection": N_("objection to the processing of your personal data (GDPR Art. 21)"),
    "withdraw_consent": N_("withdrawal of your consent (GDPR Art. 7(3))"),
    "post_mortem_directive": N_(
        "directives on the fate of your data after your death "
        "(Loi Informatique et Libertés, art. 85)"
    ),
}
_STATES = {
    "received": N_("We have received your request. We will answer it by %(due)s at the latest."),
    "awaiting_identity": N_(
        "Before we can act on your request, we need to make sure it comes from you (or from "
        "a person entitled to act for you). Please send us a proof of identity through one of "
        "the channels below; we check it and do not keep a copy. We will answer by %(due)s at "
        "the latest."
    ),
    "in_progress": N_(
        "Your request is being processed. We will answer it by %(due)s at the latest."
    ),
    "failed": N_(
        "We have not been able to complete your request yet: a step of the processing "
        "failed. We are correcting it and will answer by %(due)s at the latest."
    ),
    "cancelled": N_("As you asked, we have closed your request without acting on it."),
}
_GROUNDS = {
    "manifestly_unfounded": N_("the request is manifestly unfounded"),
    "excessive": N_("the request is excessive, in particular because of its repetitive character"),
    "identity_not_established": N_(
        "we could not establish that the request comes from the data subject or from a "
        "person entitled to act for them"
    ),
    "rights_of_others": N_(
        "giving you access would disclose personal data of another person, who does not "
        "consent to it"
    ),
    "legal_restriction": N_("a restriction provided by law applies to your request"),
}
_COMPLETED = {
    "access": N_(
        "Please find a copy of your personal data in the enclosed package, with the "
        "purposes, lawful bases and retention periods of each kind of data."
    ),
    "portability": N_(
        "Please find the data you provided to us in the enclosed package, in a structured, "
        "commonly used and machine-readable format (JSON, CSV, xAPI), which you may transmit "
        "to another controller."
    ),
    "rectification": N_(
        "We have rectified your data as you asked. The records concerned are listed below."
    ),
    "erasure": N_(
        "We have erased your personal data. The data we must keep by law is no longer used "
        "for anything but that obligation (its processing is restricted) and will be erased "
        "when the legal period ends. The outcome for each record is listed below."
    ),
    "restriction": N_(
        "We have restricted the processing of your data: it is kept but no longer used, "
        "except with your consent or for legal claims. The records concerned are listed below."
    ),
    "access_none": N_("We hold no personal data about you."),
    "portability_none": N_("We hold no personal data about you."),
}
_ACTIONS = {
    "exported": N_("copied into the package"),
    "erased": N_("erased"),
    "anonymised": N_("anonymised"),
    "restricted": N_("kept, processing restricted"),
    "rectified": N_("rectified"),
    "consent_withdrawn": N_("consent withdrawn (kept as proof)"),
    "objection_upheld": N_("processing stopped"),
    "kept": N_("kept"),
}
_NOTIFICATIONS = {
    "sent": N_("informed"),
    "failed": N_("could not be reached yet; we will try again"),
    "no_notifier": N_("to be informed by other means"),
}
_NOTES: dict[str, str] = {
    Article.ART_16: N_("rectified as you asked"),
    Article.ART_17_1: N_("no legal obligation requires us to keep it"),
    Article.ART_17_1_B: N_("only your withdrawn consent allowed us to keep it"),
    Article.ART_17_3_B: N_("kept to comply with a legal obligation, processing restricted"),
    Article.ART_17_3_E: N_(
        "kept for the establishment, exercise or defence of legal claims, processing restricted"
    ),
    Article.ART_21_1: N_("processing for this purpose stopped"),
    Article.ART_21_3: N_("no longer processed for direct marketing"),
    Article.ART_7_3: N_("consent withdrawn; the record is kept as proof"),
}


class _Text:
    """Translated sentences with their values escaped for one output format."""

    def __init__(self, fmt: Renderer, format: Format) -> None:
        self.fmt = fmt
        self.html = format == "html"

    def value(self, text: object) -> Any:
        """A value as the template must receive it: raw for HTML (autoescaped), escaped
        for Markdown."""
        flat = " ".join(str(text).split())
        return flat if self.html else escape_markdown(flat)

    def say(self, message: str, **values: object) -> Any:
        """``message`` translated, its values escaped; safe to place in the template."""
        return self.fill(self.fmt.gettext(message), **values)

    def fill(self, translated: str, **values: object) -> Any:
        """An already translated sentence with its values escaped."""
        if self.html:
            from markupsafe import escape

            # escape() gives Markup, whose % escapes every value; the sentence is ours.
            return escape(translated) % {k: str(v) for k, v in values.items()}
        return translated % {
            k: escape_markdown(" ".join(str(v).split())) for k, v in values.items()
        }

    def date(self, moment: dt.datetime) -> str:
        """A date as letters write it (``1er juin 2026``, ``1 June 2026``)."""
        text = self.fmt.date(moment.date())
        if self.fmt.language == "fr" and moment.day == 1:
            # French writes the first of the month as an ordinal.
            text = "1er" + text[1:]
        return text

    def article(self, article: str) -> str:
        """``"GDPR Art. 17(1)"`` in the letter's language (``"RGPD, art. 17(1)"``)."""
        prefix = "GDPR Art. "
        if article.startswith(prefix):
            return self.fmt.gettext("GDPR Art. %(reference)s") % {
                "reference": article[len(prefix) :]
            }
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
    from learnprivacy._documents import renderer

    if language not in LANGUAGES:
        raise ValidationError("language must be 'fr' or 'en'", field="language")
    if format not in ("md", "html"):
        raise ValidationError("format must be 'md' or 'html'", field="format")
    require_aware(now, "now")
    fmt = renderer(language)
    text = _Text(fmt, format)
    due = text.date(request.due_at)
    blocks: list[dict[str, Any]] = []
    extension = request.extension
    if extension is not None:
        blocks.append(
            {
                "kind": "p",
                "text": text.fill(
                    fmt.plural(
                        "We have extended the time to answer by %(num)s month, until %(due)s "
                        "(GDPR Art. 12(3)), for the following reasons: %(reasons)s. We informed "
                        "you of it on %(informed)s.",
                        "We have extended the time to answer by %(num)s months, until %(due)s "
                        "(GDPR Art. 12(3)), for the following reasons: %(reasons)s. We informed "
                        "you of it on %(informed)s.",
                        extension.months,
                    ),
                    num=fmt.number(extension.months),
                    due=due,
                    reasons=_sentence(extension.reasons),
                    informed=text.date(extension.subject_informed_at),
                ),
            }
        )
    blocks += _state_blocks(request, text, due)
    authority = controller.authority
    if format == "html":
        from markupsafe import Markup

        link: Any = Markup('<a href="{0}">{0}</a>').format(authority.complaint_url)
    else:
        link = authority.complaint_url
    remedy = controller.judicial_remedy or fmt.gettext(
        "you may also bring proceedings before the competent court (GDPR Art. 79)."
    )
    return fmt.render(
        f"letter.{format}",
        controller_name=text.value(controller.name),
        controller_contact=text.value(controller.reply_to),
        date=text.value(text.date(now)),
        addressee=text.value(request.requester.name),
        reference=text.value(request.id),
        type_label=text.value(fmt.gettext(_TYPES[request.type.value])),
        received=text.value(text.date(request.received_at)),
        blocks=blocks,
        authority_name=text.value(authority.name),
        authority_short_name=text.value(authority.short_name),
        authority_address=text.value(authority.address),
        # A URL is left unescaped in Markdown, where escaping its dots would show.
        authority_complaint_url=authority.complaint_url,
        authority_link=link,
        judicial_remedy=text.value(remedy),
    )


def _state_blocks(request: SubjectRequest, text: _Text, due: str) -> list[dict[str, Any]]:
    state = request.state
    if state is RequestState.REFUSED and request.refusal is not None:
        refusal = request.refusal
        return [
            {
                "kind": "p",
                "text": text.say(
                    "We will not act on your request, on the following grounds: "
                    "%(grounds)s (%(article)s).",
                    grounds=text.fmt.gettext(_GROUNDS[refusal.grounds.value]),
                    article=text.article(refusal.grounds.article),
                ),
            },
            {
                "kind": "p",
                "text": text.say("Our reasons: %(reason)s.", reason=_sentence(refusal.reason)),
            },
        ]
    if state is not RequestState.COMPLETED:
        return [{"kind": "p", "text": text.say(_STATES[state.value], due=due)}]
    return _completed_blocks(request, text)


def _completed_blocks(request: SubjectRequest, text: _Text) -> list[dict[str, Any]]:
    gettext: Callable[[str], str] = text.fmt.gettext
    params = request.params
    if request.type is RequestType.OBJECTION:
        assert isinstance(params, ObjectionParams)  # guaranteed by the request type
        if request.compelling_grounds is not None:
            opening = text.say(
                "We have examined your objection to the processing for the purpose "
                '"%(purpose)s". We have compelling legitimate grounds for the processing which '
                "override your interests, rights and freedoms (GDPR Art. 21(1)): %(grounds)s.",
                purpose=params.purpose,
                grounds=_sentence(request.compelling_grounds),
            )
        else:
            opening = text.say(
                'We have stopped processing your data for the purpose "%(purpose)s". The '
                "records concerned are listed below.",
                purpose=params.purpose,
            )
    elif request.type is RequestType.WITHDRAW_CONSENT:
        assert isinstance(params, WithdrawConsentParams)  # guaranteed by the request type
        # Say what was done: erased, or anonymised where the policy keeps statistics.
        if any(o.action is Action.ANONYMISE for o in request.record_outcomes):
            opening = text.say(
                'Your consent for "%(purpose)s" is withdrawn. The withdrawal does not affect '
                "the lawfulness of processing carried out before it. The data that only this "
                "consent allowed us to keep are erased, or anonymised where our policy keeps "
                "anonymous statistics only; the outcome for each record is listed below.",
                purpose=params.purpose,
            )
        else:
            opening = text.say(
                'Your consent for "%(purpose)s" is withdrawn. The withdrawal does not affect '
                "the lawfulness of processing carried out before it. We have erased the data "
                "that only this consent allowed us to keep; the outcome for each record is "
                "listed below.",
                purpose=params.purpose,
            )
    elif request.type is RequestType.POST_MORTEM_DIRECTIVE:
        assert isinstance(params, PostMortemDirective)  # guaranteed by the request type
        message = (
            N_(
                "We have registered your directives on the fate of your personal data after "
                "your death. You may change or revoke them at any time. You have designated a "
                "person to carry them out."
            )
            if params.executor is not None
            else N_(
                "We have registered your directives on the fate of your personal data after "
                "your death. You may change or revoke them at any time."
            )
        )
        opening = text.say(message)
    elif request.type in (RequestType.ACCESS, RequestType.PORTABILITY) and not any(
        step.artifact for step in request.steps
    ):
        opening = text.say(_COMPLETED[f"{request.type.value}_none"])
    else:
        opening = text.say(_COMPLETED[request.type.value])
    blocks: list[dict[str, Any]] = [{"kind": "p", "text": opening}]
    for step in request.steps:
        digest = step.facts.get("sha256")
        if digest:
            blocks.append(
                {
                    "kind": "p",
                    "text": text.say("Package fingerprint (SHA-256): %(sha256)s", sha256=digest),
                }
            )
    outcomes = request.record_outcomes
    if outcomes and request.type not in (RequestType.ACCESS, RequestType.PORTABILITY):
        blocks.append({"kind": "h", "text": text.value(gettext("What was done, record by record"))})
        header = [gettext("Record"), gettext("Outcome"), gettext("Article"), gettext("Note")]
        rows = [
            [
                text.value(f"{o.record_type} {o.record_id}"),
                text.value(gettext(_ACTIONS[o.action.done])),
                text.value(text.article(o.article)),
                text.value(gettext(_NOTES[o.article]) if o.article in _NOTES else o.reason or ""),
            ]
            for o in outcomes
        ]
        blocks.append({"kind": "table", "header": [text.value(h) for h in header], "rows": rows})
    notifications = request.notifications
    if notifications:
        blocks.append(
            {"kind": "h", "text": text.value(gettext("Recipients informed (GDPR Art. 19)"))}
        )
        blocks.append(
            {
                "kind": "list",
                "entries": [_notified(text, gettext, n) for n in notifications],
            }
        )
    return blocks


def _notified(text: _Text, gettext: Any, notification: Any) -> Any:
    """One recipient's line; an LRS's says how many of its statements it withdrew."""
    status = gettext(_NOTIFICATIONS[notification.status.value])
    details = notification.details
    if "voided" in details and "found" in details:
        return text.say(
            "%(recipient)s: %(status)s; %(voided)s of %(found)s learning records withdrawn "
            "(xAPI statements voided)",
            recipient=notification.location,
            status=status,
            voided=details["voided"],
            found=details["found"],
        )
    return text.say("%(recipient)s: %(status)s", recipient=notification.location, status=status)
