"""The GDPR vocabulary: lawful bases, special-category conditions and data categories.

Pure: no I/O. The Moodle codes are the ones Moodle's data registry stores
(``tool_dataprivacy_purpose.lawfulbases`` / ``sensitivedatareasons``).
"""

from __future__ import annotations

import enum
import re
from typing import Self

from learnprivacy._vocabulary import Article
from learnprivacy.errors import UnknownCodeError

__all__ = ["DataCategory", "LawfulBasis", "SpecialCategoryCondition"]


class _Coded(enum.Enum):
    """An enum whose members carry a Moodle code and a GDPR article reference.

    Each subclass names its article once (see :data:`_ARTICLES`); a member's value is its
    point letter, and the article reference and Moodle code both follow from the two:
    ``Art. 6(1)`` and ``"b"`` give ``"Art. 6(1)(b)"`` and ``"gdpr_art_6_1_b"``.
    """

    @classmethod
    def _article_base(cls) -> str:
        return _ARTICLES[cls.__name__].short

    @classmethod
    def _code_prefix(cls) -> str:
        return _CODE_PREFIXES[cls.__name__]

    @property
    def letter(self) -> str:
        """The article's point letter: ``"b"`` for Art. 6(1)(b)."""
        return str(self.value)

    @property
    def moodle_code(self) -> str:
        """The code Moodle's data registry stores, e.g. ``"gdpr_art_6_1_b"``."""
        return f"{self._code_prefix()}{self.value}"

    @property
    def article(self) -> str:
        """The human reference, e.g. ``"Art. 6(1)(b)"``."""
        return f"{self._article_base()}({self.value})"

    @classmethod
    def from_moodle(cls, code: str) -> Self:
        """Return the member for a Moodle code (``"gdpr_art_6_1_b"``); unknown codes raise
        ``UnknownCodeError``."""
        if isinstance(code, str):
            normalised = code.strip().lower()
            for member in cls:
                if member.moodle_code == normalised:
                    return member
        raise UnknownCodeError(
            f"unknown {cls.__name__} code; expected one of "
            + ", ".join(m.moodle_code for m in cls),
            field=cls.__name__,
        )


class LawfulBasis(_Coded):
    """GDPR Art. 6(1) lawful bases for processing.

    >>> LawfulBasis.CONTRACT.moodle_code
    'gdpr_art_6_1_b'
    >>> LawfulBasis.from_moodle("gdpr_art_6_1_c") is LawfulBasis.LEGAL_OBLIGATION
    True
    """

    CONSENT = "a"
    CONTRACT = "b"
    LEGAL_OBLIGATION = "c"
    VITAL_INTERESTS = "d"
    PUBLIC_TASK = "e"
    LEGITIMATE_INTERESTS = "f"

    @classmethod
    def parse_moodle_list(cls, codes: str) -> tuple[LawfulBasis, ...]:
        """Parse Moodle's comma-separated ``lawfulbases`` column."""
        return tuple(cls.from_moodle(c) for c in codes.split(",") if c.strip())

    @property
    def erasable_on_request(self) -> bool:
        """Whether Art. 17(1) erasure applies (not to legal obligation or public task)."""
        return self not in (LawfulBasis.LEGAL_OBLIGATION, LawfulBasis.PUBLIC_TASK)

    @property
    def portable(self) -> bool:
        """Whether Art. 20 portability applies: consent or contract only."""
        return self in (LawfulBasis.CONSENT, LawfulBasis.CONTRACT)


class SpecialCategoryCondition(_Coded):
    """GDPR Art. 9(2) conditions for processing special categories of data."""

    EXPLICIT_CONSENT = "a"
    EMPLOYMENT_SOCIAL_SECURITY = "b"
    VITAL_INTERESTS = "c"
    NOT_FOR_PROFIT_BODY = "d"
    MADE_PUBLIC_BY_SUBJECT = "e"
    LEGAL_CLAIMS = "f"
    SUBSTANTIAL_PUBLIC_INTEREST = "g"
    HEALTH_OR_SOCIAL_CARE = "h"
    PUBLIC_HEALTH = "i"
    ARCHIVING_RESEARCH_STATISTICS = "j"


#: The article whose points each coded enum lists.
_ARTICLES = {"LawfulBasis": Article.ART_6_1, "SpecialCategoryCondition": Article.ART_9_2}
#: Moodle's code prefix of each: "Art. 6(1)" -> "gdpr_art_6_1_".
_CODE_PREFIXES = {
    name: "gdpr_art_" + "".join(f"{number}_" for number in re.findall(r"\d+", article.short))
    for name, article in _ARTICLES.items()
}


class DataCategory(enum.Enum):
    """What kind of personal data a field holds; drives registers and exports."""

    IDENTITY = "identity"
    CONTACT = "contact"
    ACCOUNT = "account"
    LEARNING = "learning"
    ASSESSMENT = "assessment"
    CERTIFICATION = "certification"
    BILLING = "billing"
    FUNDING = "funding"
    EMPLOYMENT = "employment"
    COMMUNICATION = "communication"
    TECHNICAL_LOG = "technical_log"
    CONSENT = "consent"
    PREFERENCE = "preference"
    SPECIAL = "special"
    NONE = "none"

    @classmethod
    def parse(cls, name: str) -> DataCategory:
        """Return the category named ``name`` (case-insensitive)."""
        try:
            return cls(name.strip().lower())
        except (ValueError, AttributeError):
            raise UnknownCodeError(
                "unknown data category; expected one of " + ", ".join(c.value for c in cls),
                field="DataCategory",
            ) from None
