"""The controller: who answers for the processing, once for the register and the letters.

The processing register (GDPR Art. 30(1)(a), (d), (e), (g)) lists the controller's name,
contact details, DPO, hosting, sub-processors and transfers; a data-subject request's
letter is signed with the same name, answered at the DPO's address when one is declared,
and tells the subject which supervisory authority to turn to (Art. 12(4), 77, 79). One
:class:`Controller` carries all of it, so an LMS describes itself once.

Pure: attrs and the standard library only.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

import attrs

from learnprivacy._validators import require_text
from learnprivacy._vocabulary import Article
from learnprivacy.errors import ValidationError

__all__ = [
    "APD_GBA",
    "CNIL",
    "EEA_COUNTRIES",
    "Controller",
    "Hosting",
    "Safeguard",
    "SubProcessor",
    "SupervisoryAuthority",
    "Transfer",
    "country_code",
]

#: ISO 3166-1 alpha-2 codes of the European Economic Area (EU 27, Iceland, Liechtenstein,
#: Norway): data processed there is not transferred in the sense of GDPR Chapter V.
EEA_COUNTRIES = frozenset(
    "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE "
    "IS LI NO".split()
)


def country_code(value: object) -> str | None:
    """A country as given (``None`` allowed); two-letter codes are upper-cased."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("country must be a non-empty text", field="country")
    # Two-letter codes are upper-cased so that the register can check them against the EEA.
    return value.upper() if len(value) == 2 else value


def _text(instance: object, attribute: attrs.Attribute[str], value: object) -> None:
    require_text(value, f"{type(instance).__name__}.{attribute.name}")


class Safeguard(enum.Enum):
    """The ground for a transfer outside the EEA (GDPR Chapter V)."""

    ADEQUACY_DECISION = "adequacy_decision"
    STANDARD_CONTRACTUAL_CLAUSES = "standard_contractual_clauses"
    BINDING_CORPORATE_RULES = "binding_corporate_rules"
    DEROGATION = "derogation"
    NONE = "none"

    @property
    def article(self) -> str:
        """The GDPR article the safeguard rests on (``"Art. 45"``; empty for ``NONE``)."""
        article = _SAFEGUARD_ARTICLES[self]
        return article.short if article is not None else ""

    @property
    def label(self) -> str:
        """A plain-English label."""
        return self.value.replace("_", " ")


_SAFEGUARD_ARTICLES = {
    Safeguard.ADEQUACY_DECISION: Article.ART_45,
    Safeguard.STANDARD_CONTRACTUAL_CLAUSES: Article.ART_46_2_C,
    Safeguard.BINDING_CORPORATE_RULES: Article.ART_47,
    Safeguard.DEROGATION: Article.ART_49,
    Safeguard.NONE: None,
}


def _texts(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    return tuple(value)


@attrs.frozen(kw_only=True)
class Hosting:
    """Where the LMS runs: the hosting provider and its country (ISO code preferred)."""

    provider: str
    country: str = attrs.field(converter=country_code)
    details: str = ""


@attrs.frozen(kw_only=True)
class SubProcessor:
    """A processor acting for the controller (Art. 28): e-mailing, payment, video..."""

    name: str
    service: str
    country: str | None = attrs.field(default=None, converter=country_code)


@attrs.frozen(kw_only=True)
class Transfer:
    """Data leaving the EEA: to whom, where, and on what ground."""

    recipient: str
    country: str = attrs.field(converter=country_code)
    safeguard: Safeguard
    details: str = ""


def _sub_processors(items: Iterable[SubProcessor]) -> tuple[SubProcessor, ...]:
    return tuple(items)


def _transfers(items: Iterable[Transfer]) -> tuple[Transfer, ...]:
    return tuple(items)


@attrs.frozen(kw_only=True)
class SupervisoryAuthority:
    """A data protection authority: where complaints go (Art. 77)."""

    name: str = attrs.field(validator=_text)
    short_name: str = attrs.field(validator=_text)
    country: str = attrs.field(validator=_text)
    address: str = attrs.field(validator=_text)
    website: str = attrs.field(validator=_text)
    complaint_url: str = attrs.field(validator=_text)


#: The French authority (Commission nationale de l'informatique et des libertés).
CNIL = SupervisoryAuthority(
    name="Commission nationale de l'informatique et des libertés",
    short_name="CNIL",
    country="FR",
    address="3 place de Fontenoy, TSA 80715, 75334 Paris Cedex 07, France",
    website="https://www.cnil.fr",
    complaint_url="https://www.cnil.fr/fr/plaintes",
)

#: The Belgian authority (Autorité de protection des données / Gegevensbeschermingsautoriteit).
APD_GBA = SupervisoryAuthority(
    name="Autorité de protection des données / Gegevensbeschermingsautoriteit",
    short_name="APD/GBA",
    country="BE",
    address="Rue de la Presse 35, 1000 Bruxelles, Belgique",
    website="https://www.autoriteprotectiondonnees.be",
    complaint_url="https://www.autoriteprotectiondonnees.be/citoyen/agir/introduire-une-plainte",
)


@attrs.frozen(kw_only=True)
class Controller:
    """Who answers for the processing: the register's first section and the letters' signature.

    ``name`` and ``contact`` are required; ``address`` is the postal address the register
    shows. Letters are answered at :attr:`reply_to`: the DPO when one is declared,
    otherwise ``contact``. ``authority`` is where a subject may complain (the CNIL unless
    told otherwise); ``judicial_remedy`` overrides the letters' default sentence on going
    to court (for instance to name the competent court). ``internal_only`` names the
    purposes the controller shares with no third party.
    """

    name: str = attrs.field(validator=_text)
    contact: str = attrs.field(validator=_text)
    address: str = ""
    dpo: str | None = None
    representative: str | None = None
    hosting: Hosting | None = None
    sub_processors: tuple[SubProcessor, ...] = attrs.field(default=(), converter=_sub_processors)
    transfers: tuple[Transfer, ...] = attrs.field(default=(), converter=_transfers)
    data_subjects: tuple[str, ...] = attrs.field(default=("learners",), converter=_texts)
    security_measures: tuple[str, ...] = attrs.field(default=(), converter=_texts)
    authority: SupervisoryAuthority = attrs.field(
        default=CNIL, validator=attrs.validators.instance_of(SupervisoryAuthority)
    )
    judicial_remedy: str | None = None
    #: The purposes whose data go to nobody outside the controller (its own staff and
    #: users only). The register shows them as shared internally only; an external
    #: recipient declared for one is listed in its gaps (``Register.build``).
    internal_only: tuple[str, ...] = attrs.field(
        default=(), converter=_texts, validator=attrs.validators.deep_iterable(_text)
    )

    @property
    def reply_to(self) -> str:
        """Where subjects' requests are answered: the DPO if declared, else ``contact``."""
        return self.dpo or self.contact
