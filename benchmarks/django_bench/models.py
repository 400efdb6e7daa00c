"""The same profile four ways: plain fields, learnprivacy, django-cryptography, Fernet."""

from django.db import models
from django_cryptography.fields import encrypt
from encrypted_fields.fields import EncryptedCharField

from learnprivacy import DataCategory, LawfulBasis
from learnprivacy.django import Privacy, not_personal, personal


class PlainProfile(models.Model):
    """Four personal values in clear: the floor."""

    learner = models.IntegerField()
    email = models.CharField(max_length=120)
    name = models.CharField(max_length=120)
    phone = models.CharField(max_length=40)
    city = models.CharField(max_length=80)


class LpProfile(models.Model):
    """learnprivacy: per-learner keys, values bound to (table, key, field)."""

    learner = models.IntegerField()
    email = personal(
        models.CharField(max_length=120), category=DataCategory.CONTACT, description="E-mail"
    )
    name = personal(
        models.CharField(max_length=120), category=DataCategory.IDENTITY, description="Name"
    )
    phone = personal(
        models.CharField(max_length=40), category=DataCategory.CONTACT, description="Phone"
    )
    city = personal(
        models.CharField(max_length=80), category=DataCategory.CONTACT, description="City"
    )

    privacy = Privacy(subject="learner", purpose="accounts", basis=LawfulBasis.CONTRACT)


class CryptographyProfile(models.Model):
    """django-cryptography's encrypt(): one application key for every value."""

    learner = models.IntegerField()
    email = encrypt(models.CharField(max_length=120))
    name = encrypt(models.CharField(max_length=120))
    phone = encrypt(models.CharField(max_length=40))
    city = encrypt(models.CharField(max_length=80))


class FernetProfile(models.Model):
    """django-fernet-encrypted-fields: Fernet under one application key."""

    learner = models.IntegerField()
    email = EncryptedCharField(max_length=120)
    name = EncryptedCharField(max_length=120)
    phone = EncryptedCharField(max_length=40)
    city = EncryptedCharField(max_length=80)


__all__ = ["CryptographyProfile", "FernetProfile", "LpProfile", "PlainProfile", "not_personal"]
