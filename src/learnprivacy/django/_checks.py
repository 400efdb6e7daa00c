"""System checks (``manage.py check``): declarations, undeclared personal-looking fields,
and the key store's place.

* ``learnprivacy.E001``: a model's ``Privacy(...)`` declaration failed its check (an
  undeclared field, a missing subject...); the message names the table and the field.
* ``learnprivacy.E002``: ``LEARNPRIVACY["KEYS"]`` is missing from ``DATABASES``, is the
  default database, or points at the same database as another alias.
* ``learnprivacy.E003``: ``learnprivacy.django.KeysRouter`` is not in
  ``DATABASE_ROUTERS``.
* ``learnprivacy.W001``: a field whose name says it holds personal data (``email``,
  ``name``, ``phone``, ``address``, ``ip``...) is declared neither ``personal`` nor
  ``not_personal``.
"""

from __future__ import annotations

import re
from itertools import pairwise
from typing import Any

from django.core import checks

from learnprivacy.django._bind import errors
from learnprivacy.django.fields import BlindIndexField, declaration_of

__all__ = ["PERSONAL_NAMES", "looks_personal"]

#: Words that, as a whole field name or one of its ``_``-separated parts, say that a
#: field probably holds personal data.
PERSONAL_NAMES = frozenset(
    """email mail e_mail name firstname lastname surname forename fullname username
    nickname phone mobile telephone tel fax address street city postcode zipcode zip
    ip ipaddress birth birthday birthdate dob ssn nin passport iban bic card gender
    location latitude longitude avatar photo displayname cellphone addr postalcode ipv4
    ipv6 useragent birthplace socialsecurity nationalid sex ethnicity religion
    nationality health disability salary""".split()
)


#: The words of a field name: ``_``-separated parts, camelCase humps, digits apart.
_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


def _singular(word: str) -> str:
    if word.endswith("es") and word[:-2] in PERSONAL_NAMES:
        return word[:-2]
    return word[:-1] if word.endswith("s") else word


def looks_personal(name: str) -> bool:
    """Whether a field named ``name`` looks like it holds personal data.

    The name is read as words, whatever its style: ``email``, ``user_email``,
    ``contactEmail``, ``phoneNumber``, ``IPAddress``, ``emails``, ``home_addresses``,
    ``email2``. A word, its singular, or two neighbouring words joined (``first_name``,
    ``zipCode``, ``e_mail``) is looked up in :data:`PERSONAL_NAMES`.
    """
    words = [w.lower() for w in _WORDS.findall(name)]
    words += [a + b for a, b in pairwise(words)]
    return any(w in PERSONAL_NAMES or _singular(w) in PERSONAL_NAMES for w in words)


def _checked_models(app_configs: Any) -> list[Any]:
    from django.apps import apps
    from django.conf import settings

    configs = app_configs if app_configs is not None else apps.get_app_configs()
    user_model = getattr(settings, "AUTH_USER_MODEL", "auth.User").lower()
    found = []
    for config in configs:
        for model in config.get_models():
            label = model._meta.label_lower
            if config.name == "learnprivacy.django":
                continue
            # Django's own apps hold no learner data except the user model.
            if config.name.startswith("django.") and label != user_model:
                continue
            found.append(model)
    return found


@checks.register("learnprivacy")
def check_declarations(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E001 for failed declarations, W001 for undeclared personal-looking fields."""
    from learnprivacy.django._bind import _declared

    messages: list[checks.CheckMessage] = []
    failed = errors()
    for model in _checked_models(app_configs):
        if model in failed:
            messages.append(
                checks.Error(
                    failed[model],
                    hint="Declare every field personal(...) or not_personal(...).",
                    obj=model,
                    id="learnprivacy.E001",
                )
            )
            continue
        declared = _declared.get(model)
        foreign = None if declared is None else declared[1]
        if declared is not None and foreign is None:
            # Privacy(...) on the model: its check (E001) wants every field declared.
            continue
        # Declared with declare() (a model the project does not own, such as auth.User):
        # a field left out of it is neither exported nor blanked by erasure.
        named = set(foreign or ())
        for field in model._meta.concrete_fields:
            if field.primary_key or isinstance(field, BlindIndexField):
                continue
            if declaration_of(field) is not None or {field.name, field.attname} & named:
                continue
            # The column too: a field may take a personal name only in the database
            # (``db_column="email"``).
            if looks_personal(field.name) or looks_personal(field.column):
                hint = (
                    "Name it in declare(..., personal={...}) or clear={...}."
                    if declared is not None
                    else "Wrap it in personal(...) (stored encrypted) or "
                    "not_personal(...), and give the model a Privacy(...) declaration."
                )
                messages.append(
                    checks.Warning(
                        f"{model._meta.db_table}.{field.column} looks like personal data "
                        "and is not declared",
                        hint=hint,
                        obj=field,
                        id="learnprivacy.W001",
                    )
                )
    return messages


@checks.register("learnprivacy", checks.Tags.database)
def check_key_store(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E002 when the key store shares the data's database; E003 without the router."""
    from django.conf import settings

    from learnprivacy.django._settings import keys_alias

    messages: list[checks.CheckMessage] = []
    alias = keys_alias()
    databases = settings.DATABASES
    if alias not in databases or alias == "default":
        messages.append(
            checks.Error(
                f'LEARNPRIVACY["KEYS"] is {alias!r}: it must name a DATABASES alias of its '
                "own, not the default database",
                id="learnprivacy.E002",
            )
        )
    else:
        target = _identity(databases[alias])
        for other, config in databases.items():
            if other != alias and _identity(config) == target:
                messages.append(
                    checks.Error(
                        f"the key store's database {alias!r} is the same database as {other!r}: "
                        "keys must live apart from data",
                        id="learnprivacy.E002",
                    )
                )
    routers = [
        r if isinstance(r, str) else type(r).__module__ + "." + type(r).__name__
        for r in getattr(settings, "DATABASE_ROUTERS", [])
    ]
    if not any(r.endswith("KeysRouter") for r in routers):
        messages.append(
            checks.Error(
                'DATABASE_ROUTERS must include "learnprivacy.django.KeysRouter"',
                id="learnprivacy.E003",
            )
        )
    return messages


def _identity(config: Any) -> tuple[Any, ...]:
    name = config.get("NAME")
    if name in (None, "", ":memory:"):
        return (object(),)
    return (config.get("ENGINE"), config.get("HOST") or "", config.get("PORT") or "", str(name))
