"""What every seed module declares besides its schedule: the promises it keeps, with their
source, who receives what, and the Art. 30 register generated from the module.

A :class:`Promise` ties one sentence of a published policy (seed file, line, and a quote
that must appear on that line) to the code that keeps it and the test that fails when it
is broken. ``tests/test_policy_conformance.py`` checks every quote against the seed text
and that every named test exists; ``docs/policies.md`` is generated from the promises
(``python -m examples.policies``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from learnprivacy import Controller, DataCategory, LawfulBasis
from learnprivacy.export.reports import ReportProfile
from learnprivacy.providers import MetadataCollection, Register
from learnprivacy.providers._store import store_metadata
from learnprivacy.records._base import record_types as all_record_types
from learnprivacy.requests import ProofMethod, RequestBook
from learnprivacy.requests._vocabulary import IDENTITY_PROOFS
from learnprivacy.retention import Schedule

__all__ = ["REPORT_FIELDS", "Disclosure", "Gap", "Promise", "Rights", "build_register", "reported"]

#: The fields of each record type a policy lets a recipient's report carry: what was
#: learnt and certified, and the funding file; never a contact detail.
REPORT_FIELDS: Mapping[str, tuple[str, ...]] = {
    "Progress": ("course_id", "status", "recorded_at", "score", "time_spent"),
    "Certificate": ("course_id", "kind", "issued_at"),
    "Funding": ("funder", "dossier_reference", "opened_at", "closed_at", "amount"),
}


def reported(*record_types: str) -> dict[str, tuple[str, ...]]:
    """The report fields (:data:`REPORT_FIELDS`) of ``record_types``, in that order."""
    return {name: REPORT_FIELDS[name] for name in record_types}


@attrs.frozen(kw_only=True)
class Promise:
    """One promise of a policy: where it is written, how it is kept, which test checks it.

    ``quote`` is a fragment of the seed's line ``line``, copied exactly (French), so a
    wrong citation fails the conformance test. ``test`` is ``file::function``.
    """

    promise: str
    seed: str
    line: int
    quote: str
    enforced_by: str
    test: str


@attrs.frozen(kw_only=True)
class Gap:
    """A promise of a policy that no code of the library can keep or check: what it is,
    where it is written (``quote`` on ``line``, checked like a :class:`Promise`'s) and
    why it stays with the people running the platform. ``docs/policies.md`` lists them
    under each policy, so none is left out silently."""

    promise: str
    seed: str
    line: int
    quote: str
    why: str


@attrs.frozen(kw_only=True)
class Disclosure:
    """A recipient the policy names, the widest report it may receive, and why.

    ``internal`` marks a recipient inside the controller (its trainers, a department):
    no third party, so a purpose shared internally only may have it.
    """

    profile: ReportProfile
    purpose: str
    basis: LawfulBasis
    categories: tuple[DataCategory, ...]
    internal: bool = False


@attrs.frozen(kw_only=True)
class Rights:
    """How the policy has data-subject requests handled: which proofs of identity it
    asks of a learner asking for themselves, and whose public holidays its one-month
    deadlines roll over. :meth:`book` is the request book that keeps to it."""

    identity_proofs: frozenset[ProofMethod] = IDENTITY_PROOFS
    #: "FR" or "BE": the country's public holidays.
    calendar: str = "FR"

    def book(self, backend: Any = None, **options: Any) -> RequestBook:
        """A :class:`RequestBook` with this policy's identity proofs and calendar."""
        return RequestBook(
            backend, calendar=self.calendar, identity_proofs=self.identity_proofs, **options
        )


def build_register(
    controller: Controller,
    schedule: Schedule,
    *,
    disclosures: Mapping[str, Disclosure] | None = None,
    extra: Iterable[MetadataCollection] = (),
    as_of: dt.date | None = None,
    internal_only: Iterable[str] = (),
    null_reasons: Mapping[str, str] | None = None,
    purposes: Mapping[str, str] | None = None,
    record_types: Iterable[str] | None = None,
) -> Register:
    """The Art. 30 register of a seed module: the store's records under its schedule
    (purposes, bases, retention, every exported field), each recipient with the fields
    the policy lets it receive, and any extra collections (cookies, newsletter).
    ``internal_only``: the purposes the policy promises to share with no third party
    (an external recipient for one of them is listed in the register's gaps);
    ``null_reasons``: components that keep no personal data, and why; ``purposes``: the
    purpose of each record type (by class name) that no rule of ``schedule`` names;
    ``record_types``: the store's record types the controller keeps (all by default),
    the others left out of the register; a type the schedule has a rule for stays in."""
    kept = None
    if record_types is not None:
        ruled = [cls.__name__ for cls in all_record_types() if schedule.rules_for(cls)]
        kept = [*record_types, *ruled]
    store = store_metadata(
        MetadataCollection("learnprivacy_store"),
        schedule,
        dict(purposes or {}),
        record_types=kept,
    )
    shared = MetadataCollection("policy_recipients")
    for name, disclosure in (disclosures or {}).items():
        profile = disclosure.profile
        fields = {
            f"{type_name}.{field}": f"{type_name} {field}"
            for type_name, names in profile.fields.items()
            for field in names
        }
        shared.add_external_location_link(
            name,
            fields,
            profile.description or f"Reports sent to {name}",
            purpose=disclosure.purpose,
            basis=disclosure.basis,
            categories=disclosure.categories,
            recipient=name,
            internal=disclosure.internal,
        )
    return Register.build(
        controller,
        [store, shared, *extra],
        as_of=as_of,
        internal_only=internal_only,
        null_reasons=null_reasons,
    )
