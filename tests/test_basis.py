"""The GDPR vocabulary: lawful bases, special-category conditions, data categories."""

from __future__ import annotations

import pytest

import learnprivacy as lp
from learnprivacy.basis import DataCategory, LawfulBasis, SpecialCategoryCondition
from learnprivacy.errors import LearnPrivacyError, UnknownCodeError, ValidationError


@pytest.mark.parametrize(
    ("member", "code", "article"),
    [
        (LawfulBasis.CONSENT, "gdpr_art_6_1_a", "Art. 6(1)(a)"),
        (LawfulBasis.CONTRACT, "gdpr_art_6_1_b", "Art. 6(1)(b)"),
        (LawfulBasis.LEGAL_OBLIGATION, "gdpr_art_6_1_c", "Art. 6(1)(c)"),
        (LawfulBasis.VITAL_INTERESTS, "gdpr_art_6_1_d", "Art. 6(1)(d)"),
        (LawfulBasis.PUBLIC_TASK, "gdpr_art_6_1_e", "Art. 6(1)(e)"),
        (LawfulBasis.LEGITIMATE_INTERESTS, "gdpr_art_6_1_f", "Art. 6(1)(f)"),
    ],
)
def test_lawful_basis_codes_and_articles(member: LawfulBasis, code: str, article: str) -> None:
    """Each basis has Moodle's registry code and its article, and the code maps back."""
    assert member.moodle_code == code
    assert member.article == article
    assert LawfulBasis.from_moodle(code) is member
    assert LawfulBasis.from_moodle(code.upper() + " ") is member


def test_contract_examples_from_design() -> None:
    """The two lines of the public contract hold through the top-level package."""
    assert lp.LawfulBasis.CONTRACT.moodle_code == "gdpr_art_6_1_b"
    assert lp.LawfulBasis.from_moodle("gdpr_art_6_1_c") is lp.LawfulBasis.LEGAL_OBLIGATION


@pytest.mark.parametrize(
    "code", ["", "gdpr_art_6_1_g", "gdpr_art_9_2_a", "6_1_b", "gdpr_art_6_1_", None, 3]
)
def test_unknown_lawful_basis_code_raises_typed_error(code: object) -> None:
    """Unknown or malformed codes raise UnknownCodeError (a ValidationError and LookupError)."""
    with pytest.raises(UnknownCodeError) as info:
        LawfulBasis.from_moodle(code)  # type: ignore[arg-type]
    assert isinstance(info.value, ValidationError)
    assert isinstance(info.value, LookupError)
    assert isinstance(info.value, LearnPrivacyError)


def test_special_category_conditions_cover_a_to_j() -> None:
    """Art. 9(2)(a)..(j) all exist with Moodle codes that round-trip."""
    letters = [m.letter for m in SpecialCategoryCondition]
    assert letters == list("abcdefghij")
    for member in SpecialCategoryCondition:
        assert member.moodle_code == f"gdpr_art_9_2_{member.letter}"
        assert member.article == f"Art. 9(2)({member.letter})"
        assert SpecialCategoryCondition.from_moodle(member.moodle_code) is member
    with pytest.raises(UnknownCodeError):
        SpecialCategoryCondition.from_moodle("gdpr_art_6_1_a")


def test_parse_moodle_lawfulbases_list() -> None:
    """Moodle stores several bases comma-separated; all are parsed, order kept."""
    assert LawfulBasis.parse_moodle_list("gdpr_art_6_1_b,gdpr_art_6_1_c") == (
        LawfulBasis.CONTRACT,
        LawfulBasis.LEGAL_OBLIGATION,
    )
    with pytest.raises(UnknownCodeError):
        LawfulBasis.parse_moodle_list("gdpr_art_6_1_b,bogus")


def test_portability_and_erasure_follow_the_articles() -> None:
    """Art. 20 covers consent and contract only; Art. 17(3)(b) exempts legal obligation."""
    assert {b for b in LawfulBasis if b.portable} == {LawfulBasis.CONSENT, LawfulBasis.CONTRACT}
    assert not LawfulBasis.LEGAL_OBLIGATION.erasable_on_request
    assert LawfulBasis.CONSENT.erasable_on_request


def test_data_category_parse() -> None:
    """Categories parse case-insensitively; unknown names raise a typed error."""
    assert DataCategory.parse(" Technical_Log ") is DataCategory.TECHNICAL_LOG
    for name in ("identity", "contact", "account", "learning", "billing", "funding"):
        assert DataCategory.parse(name).value == name
    with pytest.raises(UnknownCodeError):
        DataCategory.parse("shoe-size")
