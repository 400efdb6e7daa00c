"""Privacy on a Django project's own models (optional extra ``learnprivacy[django]``).

::

    # settings.py
    INSTALLED_APPS = [..., "learnprivacy.django"]
    DATABASES = {"default": {...}, "learnprivacy_keys": {...}}      # keys apart from data
    DATABASE_ROUTERS = ["learnprivacy.django.KeysRouter"]
    LEARNPRIVACY = {"MASTER_KEY_ENV": "LEARNPRIVACY_MASTER_KEY", "KEYS": "learnprivacy_keys"}

    # models.py
    from learnprivacy.django import Privacy, personal, not_personal

    class Profile(models.Model):
        user = not_personal(models.OneToOneField(User, on_delete=models.CASCADE),
                            description="Account")
        phone = personal(models.CharField(max_length=40), category=DataCategory.CONTACT,
                         description="Phone", blind_index=True)
        privacy = Privacy(subject="user", purpose="accounts", basis=LawfulBasis.CONTRACT,
                          activity="user__last_login")

    Profile.objects.filter(phone=lp_lookup("+33 6 12 34 56 78"))

Importing this package imports Django; ``import learnprivacy`` does not. See
``docs/howto-django.md``.
"""

from learnprivacy.django._bind import Privacy, declare
from learnprivacy.django._privacy import get_privacy, prepare_keys
from learnprivacy.django._router import KeysRouter
from learnprivacy.django.fields import lp_lookup, not_personal, personal

__all__ = [
    "KeysRouter",
    "Privacy",
    "declare",
    "get_privacy",
    "lp_lookup",
    "not_personal",
    "personal",
    "prepare_keys",
]
