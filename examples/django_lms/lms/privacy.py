"""The example LMS's retention schedule and controller (named in settings.LEARNPRIVACY)."""

from django.contrib.auth.models import User

from learnprivacy import Controller, LawfulBasis
from learnprivacy.retention import Action, Period, RetentionRule, Schedule, Trigger
from lms.models import (
    Certificate,
    Consent,
    Enrolment,
    ForumPost,
    Invoice,
    NewsletterSubscription,
    Profile,
)

SCHEDULE = Schedule(
    {
        User: RetentionRule(Period.parse("P5Y"), Trigger.LAST_ACTIVITY),
        Profile: RetentionRule(Period.parse("P5Y"), Trigger.LAST_ACTIVITY),
        Enrolment: RetentionRule(Period.parse("P18M"), Trigger.LAST_ACTIVITY),
        ForumPost: RetentionRule(Period.parse("P2Y"), Trigger.CREATED),
        # Anonymised in place after five years: the course keeps its certificate count.
        Certificate: RetentionRule(Period.parse("P5Y"), Trigger.CREATED, action=Action.ANONYMISE),
        Invoice: RetentionRule(Period.parse("P10Y"), Trigger.CREATED, minimum=True),
        # Kept while the consent stands (the sweep ends it when the consent ends), and
        # three years at most.
        NewsletterSubscription: RetentionRule(
            Period.parse("P3Y"),
            Trigger.CREATED,
            purpose="newsletter",
            basis=LawfulBasis.CONSENT,
        ),
        # The proof of consent, five years after it was given.
        Consent: RetentionRule(Period.parse("P5Y"), Trigger.CREATED),
    }
)

CONTROLLER = Controller(
    name="Example Learning SAS",
    address="1 rue de l'Exemple, 75001 Paris",
    contact="privacy@example.org",
    # The example LMS sends nothing to anyone outside the company: no mailer, funder or
    # LRS is wired in. Declared, the register says so for each purpose; a recipient
    # outside added for one of them would be listed in its gaps.
    internal_only=(
        "accounts",
        "learning",
        "forum",
        "billing",
        "consent-management",
        "newsletter",
    ),
)
