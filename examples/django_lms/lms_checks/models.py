"""Models that break the rules on purpose: the system checks must flag them.

Only installed when ``LMS_CHECKS_APP=1`` (by the test of ``manage.py check``).
"""

from django.conf import settings
from django.db import models

from learnprivacy import DataCategory, LawfulBasis
from learnprivacy.django import Privacy, declare, personal


class Contact(models.Model):
    """Personal data by name, declared nowhere."""

    email = models.EmailField()
    ip_address = models.GenericIPAddressField()
    created = models.DateTimeField()
    # Personal by name in other spellings: camelCase, plurals, a digit, the column only.
    phoneNumber = models.CharField(max_length=40)
    contactEmail = models.EmailField()
    home_addresses = models.TextField()
    email2 = models.EmailField()
    reach = models.CharField(max_length=80, db_column="mobile")
    ranking = models.IntegerField()
    # Special categories (GDPR Art. 9) and other identifying words.
    ethnicity = models.CharField(max_length=40)
    religion = models.CharField(max_length=40)
    sex = models.CharField(max_length=10)
    postal_code = models.CharField(max_length=10)
    client_ipv6 = models.GenericIPAddressField()
    birthplace = models.CharField(max_length=80)


class Note(models.Model):
    """Declared, but one field is left undeclared."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    text = personal(models.TextField(), category=DataCategory.COMMUNICATION, description="Note")
    mood = models.CharField(max_length=20)

    privacy = Privacy(subject="user", purpose="notes", basis=LawfulBasis.CONTRACT)


class Account(models.Model):
    """Declared the way a model the project does not own is (``declare()``), with one
    personal-looking field left out of the declaration."""

    username = models.CharField(max_length=150)
    email = models.EmailField()
    created = models.DateTimeField()
    is_staff = models.BooleanField(default=False)


declare(
    Account,
    Privacy(subject="id", purpose="accounts", basis=LawfulBasis.CONTRACT),
    personal={"username": (DataCategory.IDENTITY, "User name")},
    clear={"created": "Account created"},
)
