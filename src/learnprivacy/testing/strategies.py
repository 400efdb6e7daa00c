"""Hypothesis strategies for every learnprivacy record, valid by construction.

Registered through hypothesis' ``hypothesis`` entry point, so ``st.from_type(Learner)``
works in any test suite that has learnprivacy installed::

    from hypothesis import given, strategies as st
    from learnprivacy.records import Learner

    @given(st.from_type(Learner))
    def test_learner_repr_is_redacted(learner): ...

Every datetime is timezone-aware; ids are short printable strings.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from learnprivacy import records as rec
from learnprivacy.basis import LawfulBasis

__all__ = [
    "aware_datetimes",
    "identifiers",
    "records_of_learner",
]

_MIN = dt.datetime(2000, 1, 1)
_MAX = dt.datetime(2040, 12, 31)

_TIMEZONES = st.sampled_from(
    [
        dt.UTC,
        dt.timezone(dt.timedelta(hours=1)),
        dt.timezone(dt.timedelta(hours=2)),
        dt.timezone(dt.timedelta(hours=-5)),
        dt.timezone(dt.timedelta(hours=5, minutes=30)),
    ]
)


def aware_datetimes(
    min_value: dt.datetime = _MIN, max_value: dt.datetime = _MAX
) -> st.SearchStrategy[dt.datetime]:
    """Timezone-aware datetimes (fixed offsets, whole seconds) between two naive bounds."""
    return st.datetimes(min_value=min_value, max_value=max_value, timezones=_TIMEZONES).map(
        lambda d: d.replace(microsecond=0)
    )


def identifiers(prefix: str = "") -> st.SearchStrategy[str]:
    """Short printable ids such as ``L3f9a``."""
    return st.text("abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=12).map(
        lambda s: prefix + s
    )


_WORD = st.text(
    st.characters(whitelist_categories=("Lu", "Ll"), max_codepoint=0x24F), min_size=2, max_size=12
)
_TEXT = st.text(
    st.characters(whitelist_categories=("Lu", "Ll", "Nd", "Zs"), max_codepoint=0x24F),
    min_size=3,
    max_size=40,
).filter(lambda s: s.strip() != "")
_EMAILS = st.builds(
    lambda local, domain, tld: f"{local}@{domain}.{tld}",
    st.text("abcdefghijklmnopqrstuvwxyz0123456789._-", min_size=1, max_size=20).filter(
        lambda s: s[0].isalnum()
    ),
    st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=20),
    st.sampled_from(["org", "fr", "be", "com", "ch"]),
)
_IPS = st.one_of(
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(str),
)


def _later_or_none(start: dt.datetime) -> st.SearchStrategy[dt.datetime | None]:
    return st.none() | st.integers(min_value=0, max_value=3_000).map(
        lambda days: start + dt.timedelta(days=days)
    )


@st.composite
def learners(draw: st.DrawFn, *, learner_id: str | None = None) -> rec.Learner:
    """Learners whose dates are consistent (last activity and contract end after creation)."""
    created = draw(aware_datetimes(max_value=dt.datetime(2035, 1, 1)))
    return rec.Learner(
        id=learner_id if learner_id is not None else draw(identifiers("L")),
        username=draw(_WORD),
        email=draw(_EMAILS),
        given_name=draw(_WORD),
        family_name=draw(_WORD),
        created_at=created,
        last_activity_at=draw(_later_or_none(created)),
        organisation_id=draw(st.none() | identifiers("O")),
        contract_end_at=draw(_later_or_none(created)),
    )


@st.composite
def scores(draw: st.DrawFn) -> rec.Score:
    """Scores with ``min < max`` and ``raw`` in range."""
    low = draw(st.integers(-100, 100))
    high = draw(st.integers(low + 1, low + 1_000))
    return rec.Score(raw=draw(st.integers(low, high)), min=low, max=high)


def _learner_id(learner_id: str | None) -> st.SearchStrategy[str]:
    return st.just(learner_id) if learner_id is not None else identifiers("L")


def progress(learner_id: str | None = None) -> st.SearchStrategy[rec.Progress]:
    """Progress records, optionally for a given learner."""
    return st.builds(
        rec.Progress,
        id=identifiers("P"),
        learner_id=_learner_id(learner_id),
        course_id=identifiers("C"),
        status=st.sampled_from(rec.ProgressStatus),
        recorded_at=aware_datetimes(),
        score=st.none() | scores(),
        time_spent=st.none() | st.integers(0, 10**6).map(lambda s: dt.timedelta(seconds=s)),
        activity_id=st.none() | identifiers("A"),
    )


def certificates(learner_id: str | None = None) -> st.SearchStrategy[rec.Certificate]:
    """Certificates, optionally for a given learner."""
    return st.builds(
        rec.Certificate,
        id=identifiers("CERT"),
        learner_id=_learner_id(learner_id),
        course_id=identifiers("C"),
        issued_at=aware_datetimes(),
        verification_code=st.text("ABCDEFGHJKLMNPQRSTUVWXYZ23456789", min_size=8, max_size=16),
        kind=st.sampled_from(rec.CertificateKind),
    )


def invoices(learner_id: str | None = None) -> st.SearchStrategy[rec.Invoice]:
    """Invoices with two-decimal amounts in a few currencies."""
    return st.builds(
        rec.Invoice,
        id=identifiers("INV"),
        learner_id=_learner_id(learner_id),
        billing_name=_TEXT,
        billing_address=_TEXT,
        amount=st.integers(0, 10**8).map(lambda cents: Decimal(cents).scaleb(-2)),
        issued_at=aware_datetimes(),
        currency=st.sampled_from(["EUR", "CHF", "USD", "GBP"]),
        funder=st.sampled_from(rec.Funder),
    )


@st.composite
def consents(draw: st.DrawFn, *, learner_id: str | None = None) -> rec.Consent:
    """Consents, some withdrawn, some expiring."""
    given = draw(aware_datetimes(max_value=dt.datetime(2035, 1, 1)))
    expires = draw(
        st.none() | st.integers(1, 1_000).map(lambda days: given + dt.timedelta(days=days))
    )
    return rec.Consent(
        id=draw(identifiers("CONS")),
        learner_id=draw(_learner_id(learner_id)),
        purpose=draw(st.sampled_from(["newsletter", "analytics-cookies", "b2c-marketing"])),
        given_at=given,
        withdrawn_at=draw(_later_or_none(given)),
        expires_at=expires,
        proof=draw(st.none() | _TEXT),
    )


@st.composite
def fundings(draw: st.DrawFn, *, learner_id: str | None = None) -> rec.Funding:
    """Funder files, open or closed."""
    opened = draw(aware_datetimes(max_value=dt.datetime(2035, 1, 1)))
    return rec.Funding(
        id=draw(identifiers("F")),
        learner_id=draw(_learner_id(learner_id)),
        funder=draw(st.sampled_from(rec.Funder)),
        dossier_reference=draw(_TEXT),
        opened_at=opened,
        closed_at=draw(_later_or_none(opened)),
        amount=draw(st.none() | st.integers(0, 10**7).map(lambda c: Decimal(c).scaleb(-2))),
    )


def access_events(learner_id: str | None = None) -> st.SearchStrategy[rec.AccessEvent]:
    """Login/logout events with IPv4/IPv6 addresses."""
    return st.builds(
        rec.AccessEvent,
        id=identifiers("E"),
        learner_id=_learner_id(learner_id),
        kind=st.sampled_from(rec.AccessKind),
        at=aware_datetimes(),
        ip=st.none() | _IPS,
        user_agent=st.none() | _TEXT,
    )


@st.composite
def records_of_learner(draw: st.DrawFn, *, max_each: int = 3) -> tuple[rec.Learner, list[Any]]:
    """A learner and a list of records of every type that belong to them (unique ids)."""
    learner = draw(learners())
    out: list[Any] = []
    for make in (progress, certificates, invoices, access_events):
        out += draw(st.lists(make(learner.id), max_size=max_each, unique_by=lambda r: r.id))
    for make_c in (consents, fundings):
        out += draw(
            st.lists(make_c(learner_id=learner.id), max_size=max_each, unique_by=lambda r: r.id)
        )
    return learner, out


#: The strategy for each record type, as registered with ``st.register_type_strategy``.
STRATEGIES: dict[type[Any], st.SearchStrategy[Any]] = {
    rec.Learner: learners(),
    rec.Progress: progress(),
    rec.Certificate: certificates(),
    rec.Invoice: invoices(),
    rec.Consent: consents(),
    rec.Funding: fundings(),
    rec.AccessEvent: access_events(),
    rec.Score: scores(),
    LawfulBasis: st.sampled_from(LawfulBasis),
}
