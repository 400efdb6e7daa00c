"""A seeded, reproducible synthetic training organisation, for demos, docs and benchmarks.

``generate_organisation(seed=7, learners=1_000, now=...)`` returns every record a small
training organisation would hold: learner accounts (some long inactive, some whose client
contract ended), progress with scores, certificates, invoices, funder (OPCO/CPF) files,
consents (some withdrawn or expired) and access logs. Same seed and ``now``, same records.

Names, e-mail addresses and IPs are invented (``example.org`` domains and documentation
IP ranges), so nothing here is anyone's personal data.
"""

from __future__ import annotations

import datetime as dt
import random
import unicodedata
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import attrs

from learnprivacy import records as rec
from learnprivacy._validators import require_aware
from learnprivacy.errors import ValidationError

__all__ = ["generate_organisation"]

#: First names of the generated people (French and Belgian, mixed); shared with the
#: Moodle fixture generator of ``learnprivacy.testing``.
GIVEN_NAMES = (
    "Ana Léa Hugo Inès Jules Louise Malik Nora Paul Sofia Tom Yasmine Lucas Emma Noah Chloé "
    "Adam Jade Gabriel Lina Arthur Rose Louis Zoé Maël Alice Sacha Mila Nathan Anaïs"
).split()
#: Family names of the generated people.
FAMILY_NAMES = (
    "Martin Bernard Dubois Thomas Robert Richard Petit Durand Leroy Moreau Simon Laurent "
    "Lefebvre Michel Garcia David Bertrand Roux Vincent Fournier Morel Girard Andre Mercier "
    "Dupont Lambert Bonnet Francois Martinez Peeters Janssens Maes Jacobs Mertens Willems"
).split()
_STREETS = ("rue de la Paix", "avenue Foch", "boulevard Voltaire", "rue des Écoles", "quai Ouest")
_CITIES = ("75011 Paris", "69003 Lyon", "59000 Lille", "4000 Liège", "1000 Bruxelles")
_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Firefox/128.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0",
)

#: Course ids and prices of the synthetic catalogue.
COURSES: dict[str, Decimal] = {
    "SST-2024": Decimal("390.00"),
    "EXCEL-ADV": Decimal("690.00"),
    "RGPD-101": Decimal("450.00"),
    "MANAGEMENT-1": Decimal("1290.00"),
    "HABILITATION-ELEC": Decimal("840.00"),
    "ANGLAIS-B2": Decimal("1490.00"),
}


@attrs.frozen
class Organisation:
    """Every record of a synthetic training organisation, by type."""

    learners: list[rec.Learner]
    progress: list[rec.Progress]
    certificates: list[rec.Certificate]
    invoices: list[rec.Invoice]
    fundings: list[rec.Funding]
    consents: list[rec.Consent]
    access_events: list[rec.AccessEvent]

    def records(self) -> Iterator[Any]:
        """Every record, learners first (so a store can check foreign keys)."""
        yield from self.learners
        for group in (
            self.progress,
            self.certificates,
            self.invoices,
            self.fundings,
            self.consents,
            self.access_events,
        ):
            yield from group

    def counts(self) -> dict[str, int]:
        """How many records of each type."""
        return {
            "Learner": len(self.learners),
            "Progress": len(self.progress),
            "Certificate": len(self.certificates),
            "Invoice": len(self.invoices),
            "Funding": len(self.fundings),
            "Consent": len(self.consents),
            "AccessEvent": len(self.access_events),
        }


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return folded.lower()


def _moment(rng: random.Random, start: dt.datetime, end: dt.datetime) -> dt.datetime:
    seconds = max(0, int((end - start).total_seconds()))
    return start + dt.timedelta(seconds=rng.randint(0, seconds))


def generate_organisation(
    *, now: dt.datetime, seed: int = 7, learners: int = 1_000, years: int = 8
) -> Organisation:
    """Generate a reproducible organisation whose history spans ``years`` before ``now``."""
    require_aware(now, "now")
    if learners < 0 or years < 1:
        raise ValidationError("learners must be >= 0 and years >= 1", field="learners")
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not security
    start = now - dt.timedelta(days=365 * years)
    org = Organisation([], [], [], [], [], [], [])
    courses = list(COURSES)
    for n in range(1, learners + 1):
        _learner(rng, org, n, start, now, courses)
    return org


def _learner(
    rng: random.Random,
    org: Organisation,
    n: int,
    start: dt.datetime,
    now: dt.datetime,
    courses: list[str],
) -> None:
    lid = f"L{n:05d}"
    given, family = rng.choice(GIVEN_NAMES), rng.choice(FAMILY_NAMES)
    created = _moment(rng, start, now - dt.timedelta(days=7))
    # A third of the accounts went quiet long ago: they are what retention is about.
    quiet = rng.random() < 0.35
    last_seen_end = created + dt.timedelta(days=rng.randint(10, 300)) if quiet else now
    last_activity = _moment(rng, created, min(last_seen_end, now))
    b2b = rng.random() < 0.6
    contract_end = None
    if b2b and rng.random() < 0.3:
        contract_end = _moment(rng, created, now + dt.timedelta(days=365))
    org.learners.append(
        rec.Learner(
            id=lid,
            username=_ascii(f"{given}.{family}{n}"),
            email=_ascii(f"{given}.{family}.{n}@example.org"),
            given_name=given,
            family_name=family,
            created_at=created,
            last_activity_at=last_activity,
            organisation_id=f"ORG{rng.randint(1, 40):03d}" if b2b else None,
            contract_end_at=contract_end,
        )
    )
    for k, course in enumerate(rng.sample(courses, rng.randint(1, 3)), start=1):
        _enrolment(rng, org, lid, f"{given} {family}", k, course, created, last_activity, b2b)
    if rng.random() < 0.5:
        given_at = _moment(rng, created, last_activity)
        withdrawn = _moment(rng, given_at, last_activity) if rng.random() < 0.2 else None
        org.consents.append(
            rec.Consent(
                id=f"{lid}-CONS1",
                learner_id=lid,
                purpose=rng.choice(("newsletter", "analytics-cookies")),
                given_at=given_at,
                withdrawn_at=withdrawn,
                expires_at=given_at + dt.timedelta(days=182),
                proof=f"web form v3, checkbox ticked, session {rng.getrandbits(32):08x}",
            )
        )
    for e in range(rng.randint(1, 6)):
        org.access_events.append(
            rec.AccessEvent(
                id=f"{lid}-E{e + 1}",
                learner_id=lid,
                kind=rec.AccessKind.LOGIN if e % 3 else rec.AccessKind.LOGOUT,
                at=_moment(rng, created, last_activity),
                ip=f"198.51.100.{rng.randint(1, 254)}",
                user_agent=rng.choice(_AGENTS),
            )
        )


def _enrolment(
    rng: random.Random,
    org: Organisation,
    lid: str,
    full_name: str,
    k: int,
    course: str,
    created: dt.datetime,
    last_activity: dt.datetime,
    b2b: bool,
) -> None:
    started = _moment(rng, created, last_activity)
    finished = _moment(rng, started, last_activity)
    raw = rng.randint(4, 20)
    status = rng.choice(
        (
            rec.ProgressStatus.PASSED,
            rec.ProgressStatus.PASSED,
            rec.ProgressStatus.FAILED,
            rec.ProgressStatus.IN_PROGRESS,
        )
    )
    org.progress.append(
        rec.Progress(
            id=f"{lid}-P{k}",
            learner_id=lid,
            course_id=course,
            status=status,
            recorded_at=finished,
            score=None
            if status is rec.ProgressStatus.IN_PROGRESS
            else rec.Score(raw=raw, min=0, max=20),
            time_spent=dt.timedelta(minutes=rng.randint(30, 2_400)),
        )
    )
    if status is rec.ProgressStatus.PASSED:
        org.certificates.append(
            rec.Certificate(
                id=f"{lid}-CERT{k}",
                learner_id=lid,
                course_id=course,
                issued_at=finished,
                verification_code=f"{rng.getrandbits(40):010X}",
                kind=rec.CertificateKind.CERTIFICATE,
            )
        )
    funder = (
        rng.choice((rec.Funder.OPCO, rec.Funder.EMPLOYER, rec.Funder.CPF))
        if b2b
        else rec.Funder.SELF
    )
    org.invoices.append(
        rec.Invoice(
            id=f"{lid}-INV{k}",
            learner_id=lid,
            billing_name=full_name if funder is rec.Funder.SELF else f"Client {rng.randint(1, 40)}",
            billing_address=f"{rng.randint(1, 120)} {rng.choice(_STREETS)}, {rng.choice(_CITIES)}",
            amount=COURSES[course],
            issued_at=started,
            funder=funder,
        )
    )
    if funder in (rec.Funder.OPCO, rec.Funder.CPF):
        org.fundings.append(
            rec.Funding(
                id=f"{lid}-F{k}",
                learner_id=lid,
                funder=funder,
                dossier_reference=f"{funder.value.upper()}-{rng.randint(10**6, 10**7 - 1)}",
                opened_at=started,
                closed_at=finished if finished > started else None,
                amount=COURSES[course],
            )
        )
