"""A French engineering school running Moodle (JUNIA's published platform policies).

Source: ``seeds/000_1c49f1355f48d45f.txt``, lines 102-218: the data protection policy and
the cookie policy of the school's Moodle platform.

- Everything is kept at most 5 years after the last connection (line 153), written as
  Moodle's data registry writes it: ``P5Y``.
- Cookies live at most 13 months (lines 153, 208, 214); the cookie consent is valid
  6 months (line 189).
- The lawful basis the school states is consent (line 121).
"""

from __future__ import annotations

import datetime as dt

from learnprivacy.basis import LawfulBasis
from learnprivacy.records import (
    AccessEvent,
    Certificate,
    Consent,
    Funding,
    Learner,
    Progress,
)
from learnprivacy.retention import Period, RetentionRule, Schedule, Trigger

__all__ = [
    "AFTER_LAST_CONNECTION",
    "CONSENT_VALIDITY",
    "COOKIE_LIFETIME",
    "COOKIE_PURPOSES",
    "MOODLE_RETENTION_PERIOD",
    "SCHEDULE",
    "consent_needs_renewal",
    "cookie_consent",
]

# Line 153: « cette durée n'excédant pas 5 ans après la fin de la dernière connexion à la
# plateforme ». Moodle stores the period as an ISO 8601 duration in its data registry.
MOODLE_RETENTION_PERIOD = "P5Y"

# Line 189: « Ce consentement aura une durée de validité de 6 mois ».
CONSENT_VALIDITY = Period.parse("P6M")

# Line 153: « (sauf les cookies pour lesquels la durée de conservation est de 13 mois) »;
# lines 208 and 214: « Ces cookies ont une durée de vie maximale de 13 mois ».
COOKIE_LIFETIME = Period.parse("P13M")

#: The consent purposes of the cookie banner: service/personalisation (line 199) and
#: audience measurement (line 210). Technical cookies need no consent (line 197).
COOKIE_PURPOSES = ("service-cookies", "audience-cookies")

# Line 121: the school collects data « sur la base légale de votre consentement ».
# Moodle records a user who never logged in with lastaccess = 0, which the Moodle adapter
# reads as "no last activity": such an account counts from its creation.
AFTER_LAST_CONNECTION = RetentionRule(
    Period.parse(MOODLE_RETENTION_PERIOD),
    Trigger.LAST_ACTIVITY,
    fallback=Trigger.CREATED,
    purpose="training",
    basis=LawfulBasis.CONSENT,
)


def _cookie_rule(purpose: str) -> RetentionRule:
    # The record of a cookie choice lives as long as the cookie it governs.
    return RetentionRule(
        COOKIE_LIFETIME,
        Trigger.CONSENT_GIVEN,
        where={"purpose": purpose},
        purpose=purpose,
        basis=LawfulBasis.CONSENT,
    )


#: The school's retention schedule. Line 125 (attendance and funding documents sent to
#: OPCO, region, employer) and line 135 (logins) fall under the same 5-year ceiling.
SCHEDULE = Schedule(
    {
        Learner: AFTER_LAST_CONNECTION,
        Progress: AFTER_LAST_CONNECTION,
        Certificate: AFTER_LAST_CONNECTION,
        AccessEvent: AFTER_LAST_CONNECTION,
        Funding: AFTER_LAST_CONNECTION,
        Consent: [_cookie_rule(purpose) for purpose in COOKIE_PURPOSES],
    },
    name="engineering-school-moodle",
)


def cookie_consent(
    *, consent_id: str, learner_id: str, purpose: str, given_at: dt.datetime, proof: str
) -> Consent:
    """A cookie consent as the banner records it: valid 6 months from ``given_at``."""
    return Consent(
        id=consent_id,
        learner_id=learner_id,
        purpose=purpose,
        given_at=given_at,
        expires_at=CONSENT_VALIDITY.add_to(given_at),
        proof=proof,
    )


def consent_needs_renewal(consent: Consent, now: dt.datetime) -> bool:
    """Whether the banner must ask again: the consent lapsed, or was withdrawn."""
    return not consent.is_active(now)
