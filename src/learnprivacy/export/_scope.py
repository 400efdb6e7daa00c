"""The two scopes of a subject export: access (Art. 15) and portability (Art. 20)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from learnprivacy._vocabulary import Article
from learnprivacy.basis import LawfulBasis
from learnprivacy.errors import ConfigurationError, UnknownCodeError

__all__ = ["Scope", "basis_of_row"]


class Scope(enum.Enum):
    """What a subject export contains.

    ``ACCESS`` (GDPR Art. 15): every record held about the learner, whatever its lawful
    basis. ``PORTABILITY`` (Art. 20): only data processed under consent or contract
    (:attr:`LawfulBasis.portable`): the profile, progress, certificates, consents; not
    invoices or funder files kept under legal obligation, nor security logs kept under
    legitimate interests. Rows whose lawful basis is unknown are left out of a
    portability export (the access export still has them).
    """

    ACCESS = "access"
    PORTABILITY = "portability"

    @property
    def article(self) -> str:
        """The GDPR article the scope answers."""
        return (Article.ART_15 if self is Scope.ACCESS else Article.ART_20).short

    @classmethod
    def parse(cls, value: str | Scope) -> Scope:
        """``"access"`` or ``"portability"`` (or a member)."""
        if isinstance(value, Scope):
            return value
        try:
            return cls(value)
        except ValueError:
            raise ConfigurationError("scope must be 'access' or 'portability'") from None

    def includes(self, basis: LawfulBasis | None) -> bool:
        """Whether data held on ``basis`` belongs in an export of this scope."""
        if self is Scope.ACCESS:
            return True
        return basis is not None and basis.portable


def basis_of_row(row: Mapping[str, Any], default: LawfulBasis | None) -> LawfulBasis | None:
    """The lawful basis a row states (``"contract"`` or ``"gdpr_art_6_1_b"``), else ``default``."""
    value = row.get("basis")
    if isinstance(value, LawfulBasis):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        try:
            return LawfulBasis.from_moodle(text)
        except UnknownCodeError:
            pass
        for member in LawfulBasis:
            if member.name.lower() == text:
                return member
        # A basis the row names but we cannot read is not a reason to guess one.
        return None
    return default
