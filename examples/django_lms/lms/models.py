"""The example LMS's own models: profiles, courses, enrolments, forum posts, invoices.

Personal fields are declared where they are defined and stored encrypted; the user model
(``auth.User``, which the project does not own) is declared with the documented recipe.
"""

from django.conf import settings
from django.contrib.auth.models import User
from django.db import models

from learnprivacy import DataCategory, LawfulBasis
from learnprivacy.django import Privacy, declare, not_personal, personal

declare(
    User,
    Privacy(
        subject="id",
        purpose="accounts",
        basis=LawfulBasis.CONTRACT,
        activity="last_login",
        created="date_joined",
        description="User accounts",
    ),
    personal={
        "username": (DataCategory.IDENTITY, "User name"),
        "email": (DataCategory.CONTACT, "E-mail address"),
        "first_name": (DataCategory.IDENTITY, "Given name"),
        "last_name": (DataCategory.IDENTITY, "Family name"),
    },
    clear={"date_joined": "Account created", "last_login": "Last login"},
)


class Profile(models.Model):
    """A learner's contact details."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    phone = personal(
        models.CharField(max_length=40),
        category=DataCategory.CONTACT,
        description="Phone",
        blind_index=True,
    )
    city = personal(
        models.CharField(max_length=80, blank=True),
        category=DataCategory.CONTACT,
        description="City",
    )
    birth_date = personal(
        models.DateField(null=True, blank=True),
        category=DataCategory.IDENTITY,
        description="Date of birth",
    )
    joined = not_personal(models.DateTimeField(), description="Joined")

    privacy = Privacy(
        subject="user", purpose="accounts", basis=LawfulBasis.CONTRACT, activity="user__last_login"
    )


class Course(models.Model):
    """A course: no personal data."""

    code = models.CharField(max_length=32, unique=True)
    title = models.CharField(max_length=200)


class Enrolment(models.Model):
    """A learner enrolled in a course."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    course = not_personal(models.ForeignKey(Course, on_delete=models.CASCADE), description="Course")
    enrolled_at = not_personal(models.DateTimeField(), description="Enrolled on")
    grade = personal(
        models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True),
        category=DataCategory.ASSESSMENT,
        description="Final grade",
    )
    progressed_at = not_personal(
        models.DateTimeField(null=True, blank=True), description="Last progress recorded"
    )
    tutor = not_personal(
        models.ForeignKey(
            settings.AUTH_USER_MODEL,
            null=True,
            blank=True,
            on_delete=models.SET_NULL,
            related_name="tutored_enrolments",
        ),
        description="Tutor's account",
    )

    # The learner's progress counts as activity: a sweep takes the latest of every
    # declared activity date of the learner's rows (here, and the account's last login).
    privacy = Privacy(
        subject="user",
        purpose="learning",
        basis=LawfulBasis.CONTRACT,
        activity="progressed_at",
        created="enrolled_at",
    )


class ForumPost(models.Model):
    """A message in a course forum."""

    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    course = not_personal(models.ForeignKey(Course, on_delete=models.CASCADE), description="Course")
    body = personal(
        models.TextField(), category=DataCategory.COMMUNICATION, description="Post text"
    )
    posted_at = not_personal(models.DateTimeField(), description="Posted on")

    privacy = Privacy(
        subject="author", purpose="forum", basis=LawfulBasis.CONTRACT, created="posted_at"
    )


class Certificate(models.Model):
    """A course certificate. Past its period it is anonymised, not deleted: the course
    keeps its count of certificates, without the learner nor the name printed on it."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.CASCADE)
    course = not_personal(models.ForeignKey(Course, on_delete=models.CASCADE), description="Course")
    holder_name = personal(
        models.CharField(max_length=200, null=True, blank=True),
        category=DataCategory.IDENTITY,
        description="Name printed on the certificate",
        blind_index=True,
    )
    issued_at = not_personal(models.DateTimeField(), description="Issued on")

    privacy = Privacy(
        subject="user", purpose="learning", basis=LawfulBasis.CONTRACT, created="issued_at"
    )


class Invoice(models.Model):
    """An invoice: kept ten years under the accounting law, even when erasure is asked."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    billing_name = personal(
        models.CharField(max_length=200), category=DataCategory.BILLING, description="Billed to"
    )
    amount = not_personal(
        models.DecimalField(max_digits=10, decimal_places=2), description="Amount"
    )
    issued_at = not_personal(models.DateTimeField(), description="Issued on")

    privacy = Privacy(
        subject="user", purpose="billing", basis=LawfulBasis.LEGAL_OBLIGATION, created="issued_at"
    )


class Consent(models.Model):
    """A learner's consent to one purpose: given, possibly withdrawn, possibly expiring.

    Named by ``LEARNPRIVACY["CONSENTS"]``: sweeps end what rested on a consent that ended.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    purpose = not_personal(models.CharField(max_length=64), description="Purpose consented to")
    given_at = not_personal(models.DateTimeField(), description="Given on")
    withdrawn_at = not_personal(
        models.DateTimeField(null=True, blank=True), description="Withdrawn on"
    )
    expires_at = not_personal(models.DateTimeField(null=True, blank=True), description="Expires on")

    privacy = Privacy(
        subject="user",
        purpose="consent-management",
        basis=LawfulBasis.LEGAL_OBLIGATION,
        created="given_at",
    )


class NewsletterSubscription(models.Model):
    """A subscription to the newsletter, on the learner's consent."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    address = personal(
        models.EmailField(), category=DataCategory.CONTACT, description="Newsletter address"
    )
    subscribed_at = not_personal(models.DateTimeField(), description="Subscribed on")

    privacy = Privacy(
        subject="user", purpose="newsletter", basis=LawfulBasis.CONSENT, created="subscribed_at"
    )
