"""Response letters: French and English, Markdown and HTML, at every state, safely escaped."""

from __future__ import annotations

import datetime as dt

import attrs
import pytest

from learnprivacy import APD_GBA, Action, Controller
from learnprivacy.errors import ValidationError
from learnprivacy.requests import (
    Channel,
    DeathAction,
    Executor,
    PostMortemDirective,
    ProofMethod,
    RefusalGrounds,
    RequestBook,
    Requester,
    RequestType,
    SubjectRequest,
    render_letter,
)
from learnprivacy.requests._model import Failure
from learnprivacy.requests._outcomes import (
    NotificationOutcome,
    NotificationStatus,
    RecordOutcome,
    StepResult,
)
from tests import INVOICE_KEPT, PageReader, assert_says, erase_store_step, receive_request

UTC = dt.UTC
T = dt.datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
ACME = Controller(name="Acme Formation", contact="dpo@acme.example")


def started(
    book: RequestBook, kind: RequestType = RequestType.ERASURE, **kw: object
) -> SubjectRequest:
    """A request in progress from Ana."""
    ana = Requester.subject("Ana Silva")
    request = receive_request(book, kind, **{"received_at": T, "requester": ana, **kw})
    return book.verify_identity(request, method=ProofMethod.AUTHENTICATED_SESSION, now=T)


def completed_erasure(book: RequestBook) -> SubjectRequest:
    """An erasure with per-record outcomes and a notified recipient."""
    request = started(book)
    request = book.record_step(
        request,
        erase_store_step(
            T,
            RecordOutcome(
                record_type="Progress",
                record_id="P1",
                action=Action.ERASE,
                article="GDPR Art. 17(1)",
            ),
            INVOICE_KEPT,
        ),
        now=T,
    )
    request = book.record_step(
        request,
        StepResult(
            name="notify:lms/employer",
            completed_at=T,
            notifications=(
                NotificationOutcome(
                    location="employer", component="lms", status=NotificationStatus.SENT
                ),
            ),
        ),
        now=T,
    )
    return book.complete(request, now=T + dt.timedelta(days=9))


def test_french_erasure_letter_lists_outcomes_articles_and_remedies() -> None:
    """The French letter: dates in French, each record with its article, CNIL, court."""
    letter = render_letter(completed_erasure(RequestBook()), ACME, now=T + dt.timedelta(days=9))
    assert_says(
        letter,
        "Le 10 mars 2026",
        "Le 1er mars 2026, nous avons reçu votre demande d’effacement",
        "| Progress P1 | effacé | RGPD, art. 17(1) |",
        "| Invoice I1 | conservé, traitement limité | RGPD, art. 17(3)(b) |",
        "employer: informé",
        "Commission nationale de l'informatique et des libertés (CNIL)",
        "https://www.cnil.fr/fr/plaintes",
        "juridiction compétente",
        "Ana Silva",
    )


def test_english_html_letter_is_well_formed() -> None:
    """The HTML letter balances its tags and has the outcome table."""
    letter = render_letter(
        completed_erasure(RequestBook()), ACME, now=T, language="en", format="html"
    )
    assert PageReader(letter).balanced
    assert "<td>Invoice I1</td><td>kept, processing restricted</td>" in letter
    assert 'lang="en"' in letter


def test_refusal_letter_gives_reason_and_complaint_route() -> None:
    """A refusal states the grounds, the article, the reason, and where to complain."""
    book = RequestBook()
    request = receive_request(
        book,
        RequestType.ACCESS,
        received_at=T,
        channel=Channel.POST,
        requester=Requester.subject("Ana Silva"),
    )
    refused = book.refuse(
        request,
        grounds=RefusalGrounds.EXCESSIVE,
        reason="Twelve identical requests in one month.",
        now=T,
    )
    belgian = Controller(name="Job Access", contact="info@job-access.example", authority=APD_GBA)
    letter = render_letter(refused, belgian, now=T, language="en")
    assert_says(
        letter,
        "the request is excessive",
        "(GDPR Art. 12(5))",
        "Our reasons: Twelve identical requests in one month.",
        "APD/GBA",
        "autoriteprotectiondonnees.be",
        "competent court",
    )


def test_extension_and_open_states() -> None:
    """Acknowledgements give the (extended) due date and the extension's reasons."""
    book = RequestBook()
    request = book.request_identity(
        receive_request(book, RequestType.PORTABILITY, received_at=T),
        now=T,
    )
    waiting = render_letter(request, ACME, now=T)
    assert "justificatif d’identité" in waiting
    assert "1er avril 2026" in waiting
    reasons = "the number of systems to search"
    request = book.extend(request, months=2, reasons=reasons, subject_informed_at=T, now=T)
    letter = render_letter(request, ACME, now=T, language="en")
    assert "until 1 June 2026" in letter
    assert f"for the following reasons: {reasons}." in letter
    assert "by 1 June 2026 at the latest" in letter


def test_failed_request_letter_does_not_claim_completion() -> None:
    """A failed request's letter says it is not complete yet, with the deadline."""
    book = RequestBook()
    failed = book.fail(started(book), Failure(step="erase_providers", error="x", at=T), now=T)
    letter = render_letter(failed, ACME, now=T, language="en")
    assert "have not been able to complete" in letter
    assert "We have erased" not in letter


def test_values_are_escaped() -> None:
    """A requester name with markup reads as text in both formats."""
    book = RequestBook()
    request = started(book, requester=Requester.subject("<script>alert(1)</script> *Ana* | # x"))
    html_letter = render_letter(request, ACME, now=T, format="html")
    assert PageReader(html_letter).scripts == 0
    assert "&lt;script&gt;" in html_letter
    markdown = render_letter(request, ACME, now=T)
    assert "\\<script\\>" in markdown
    assert "\\*Ana\\*" in markdown
    assert "\\|" in markdown


def test_directive_letter_never_names_the_executor() -> None:
    """The executor is another person: the letter says one is designated, not who."""
    book = RequestBook()
    directive = PostMortemDirective(
        on_death=DeathAction.ERASE,
        executor=Executor(name="Jean Dupont", email="jean@example.org"),
        instructions="Prévenir ma sœur.",
    )
    request = book.complete(
        book.record_step(
            started(book, RequestType.POST_MORTEM_DIRECTIVE, params=directive),
            StepResult(name="register_directive", completed_at=T),
            now=T,
        ),
        now=T,
    )
    for language in ("fr", "en"):
        for form in ("md", "html"):
            letter = render_letter(request, ACME, now=T, language=language, format=form)  # type: ignore[arg-type]
            for value in ("Jean", "Dupont", "jean@", "sœur"):
                assert value not in letter
    assert "désigné une personne" in render_letter(request, ACME, now=T)


def test_judicial_remedy_can_name_the_court() -> None:
    """The controller can replace the default sentence on going to court."""
    controller = Controller(
        name="Acme", contact="dpo@acme.example", judicial_remedy="le tribunal judiciaire de Lille."
    )
    letter = render_letter(started(RequestBook()), controller, now=T)
    assert "le tribunal judiciaire de Lille." in letter


def test_unknown_language_or_format() -> None:
    """Only fr/en and md/html exist."""
    request = started(RequestBook())
    with pytest.raises(ValidationError):
        render_letter(request, ACME, now=T, language="de")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        render_letter(request, ACME, now=T, format="pdf")  # type: ignore[arg-type]


def test_one_controller_for_register_and_letters() -> None:
    """The register's Controller signs letters; its DPO is the reply-to address when declared."""
    from examples.policies.belgian_b2b_lms import CONTROLLER as JOB_ACCESS

    from learnprivacy.providers import Register

    # The Belgian policy's controller (contact info@job-access.be), with a DPO declared.
    org = attrs.evolve(JOB_ACCESS, dpo="dpo@job-access.be")
    assert Register.build(org, []).controller is org
    letter = render_letter(started(RequestBook()), org, now=T)
    assert "dpo@job-access.be" in letter
    assert "info@job-access.be" not in letter
    assert APD_GBA.short_name in letter
    without_dpo = Controller(name="X", address="Y", contact="info@example.org")
    assert without_dpo.reply_to == "info@example.org"
    assert "info@example.org" in render_letter(started(RequestBook()), without_dpo, now=T)
