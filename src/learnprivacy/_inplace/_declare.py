"""What an application declares on its own models: the table's privacy and each column's.

These declarations are ORM-independent. ``learnprivacy.sqlalchemy`` and
``learnprivacy.django`` attach them to columns and model classes in their own way
(SQLAlchemy ``Column.info``, Django field attributes) and hand them to
:func:`learnprivacy._inplace.build_spec`, which checks them and derives everything else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import attrs

from learnprivacy.basis import DataCategory, LawfulBasis
from learnprivacy.errors import ConfigurationError
from learnprivacy.records._fields import FieldInfo

__all__ = ["INFO_KEY", "ColumnPrivacy", "Privacy", "default_scope"]

#: The key under which a column's :class:`ColumnPrivacy` is kept (``Column.info``).
INFO_KEY = "learnprivacy"

# One key scope per lawful basis by default: erasing a learner's contract data then
# destroys the "contract" keys while "legal" keys, protecting records a legal minimum
# keeps, stay alive until their own retention ends.
_SCOPES = {
    LawfulBasis.CONSENT: "consent",
    LawfulBasis.CONTRACT: "contract",
    LawfulBasis.LEGAL_OBLIGATION: "legal",
    LawfulBasis.PUBLIC_TASK: "legal",
    LawfulBasis.VITAL_INTERESTS: "vital",
    LawfulBasis.LEGITIMATE_INTERESTS: "legitimate",
}


def default_scope(basis: LawfulBasis) -> str:
    """The key scope of a table processed under ``basis`` when it names none."""
    return _SCOPES[basis]


def _name(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and (not isinstance(value, str) or not value.isidentifier()):
        raise ConfigurationError(f"Privacy.{attribute.name} must name a column attribute")


def _text(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"Privacy.{attribute.name} must be non-empty text")


def _basis(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, LawfulBasis):
        raise ConfigurationError("Privacy.basis must be a LawfulBasis")


#: What a consent table holds, named as :class:`~learnprivacy.records.Consent` names it.
CONSENT_FIELDS = ("purpose", "given_at", "withdrawn_at", "expires_at")


def _consents(value: object) -> tuple[tuple[str, str | None], ...] | None:
    """``Privacy(consents=...)`` as ``((field, attribute or None), ...)``."""
    if value is None or value is False:
        return None
    if value is True:
        return tuple((name, name) for name in CONSENT_FIELDS)
    if not isinstance(value, Mapping) or set(value) - set(CONSENT_FIELDS):
        raise ConfigurationError(
            "Privacy.consents is True or a mapping of purpose, given_at, withdrawn_at and "
            "expires_at to the model's attributes"
        )
    merged: dict[str, object] = {name: name for name in CONSENT_FIELDS}
    merged.update(value)
    for name, attribute in merged.items():
        required = name in ("purpose", "given_at")
        named = isinstance(attribute, str) and attribute.isidentifier()
        if (attribute is None and required) or (attribute is not None and not named):
            raise ConfigurationError(f"Privacy.consents[{name!r}] must name a column attribute")
    return tuple((name, cast(str | None, merged[name])) for name in CONSENT_FIELDS)


@attrs.frozen(kw_only=True)
class Privacy:
    """The privacy declaration of one table: whose data it holds, why, on what basis.

    ``subject`` names the attribute holding the learner id (the primary key for the
    learners' own table, a foreign key elsewhere). ``activity`` names the date column
    that counts as the learner's last activity for retention (``Trigger.LAST_ACTIVITY``);
    ``created`` the record's own date (``Trigger.CREATED``), ``contract_end`` the end of
    the contract covering the account (``Trigger.CONTRACT_END``). ``scope`` is the key
    scope its personal values are encrypted under (by default one per lawful basis:
    ``contract``, ``consent``, ``legal``...). ``description`` is the table's summary in
    exports and in the Art. 30 register (the purpose by default).

    ``consents`` marks the table where the learners' consents are kept: ``True`` when
    its columns are named as :class:`~learnprivacy.records.Consent`'s (``purpose``,
    ``given_at``, ``withdrawn_at``, ``expires_at``), or a mapping from those names to
    the model's attributes (``None`` for a column the table lacks). Sweeps end what rests
    only on a consent once it is withdrawn or has expired, as the store's sweep does.

    ``anonymous`` is the learner id an anonymised row gets when its subject column cannot
    be ``NULL`` (a foreign key to the accounts, say): the id of a placeholder account of
    the application's (``"ghost"``), never a learner's. Without it, anonymising such a
    row is refused (:class:`~learnprivacy.errors.ConfigurationError`): the row would still
    name the learner. Rows whose learner id is their key, or part of it, cannot be
    anonymised at all: erase them.
    """

    subject: str = attrs.field(validator=_name)
    purpose: str = attrs.field(validator=_text)
    basis: LawfulBasis = attrs.field(validator=_basis)
    activity: str | None = attrs.field(default=None, validator=_name)
    created: str | None = attrs.field(default=None, validator=_name)
    contract_end: str | None = attrs.field(default=None, validator=_name)
    scope: str | None = attrs.field(default=None)
    description: str | None = attrs.field(default=None)
    consents: tuple[tuple[str, str | None], ...] | None = attrs.field(
        default=None, converter=_consents
    )
    anonymous: str | None = attrs.field(default=None)

    def __attrs_post_init__(self) -> None:
        if self.scope is not None:
            from learnprivacy.crypto._validate import check_scope

            try:
                check_scope(self.scope)
            except ValueError:
                raise ConfigurationError(
                    "Privacy.scope must match [a-z0-9][a-z0-9._-]{0,62}"
                ) from None
        if self.description is not None and not isinstance(self.description, str):
            raise ConfigurationError("Privacy.description must be text")
        if self.anonymous is not None:
            _text(self, attrs.fields(Privacy).anonymous, self.anonymous)

    @property
    def key_scope(self) -> str:
        """The key scope of the table's personal values."""
        return self.scope or default_scope(self.basis)


@attrs.frozen(kw_only=True)
class ColumnPrivacy:
    """The declaration of one column: personal or not, its category and description.

    A personal column is stored encrypted (a token bound to its table, row and column,
    under the learner's key); ``blind_index`` adds a keyed index column for exact-match
    lookups (``<column>_bidx``). ``exported`` columns go into subject exports.
    """

    personal: bool
    category: DataCategory
    description: str
    blind_index: bool = False
    exported: bool = True
    identifier: bool = False

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.category, DataCategory):
            raise ConfigurationError("a column's category must be a DataCategory")
        if not isinstance(self.description, str) or not self.description.strip():
            raise ConfigurationError("a column's description must be non-empty text")
        if self.blind_index and not self.personal:
            raise ConfigurationError("only personal columns get a blind index")

    def field_info(self, name: str) -> FieldInfo:
        """The :class:`~learnprivacy.records.FieldInfo` of the column named ``name``."""
        # Every declared fact carries over; a personal column is stored encrypted.
        return FieldInfo(name=name, encrypted=self.personal, **attrs.asdict(self, recurse=False))
