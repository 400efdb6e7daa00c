"""The controller answering requests, and the supervisory authority a subject can turn to.

A refusal or a late answer must tell the subject they may lodge a complaint with a
supervisory authority and seek a judicial remedy (Art. 12(4), 77, 79). The authority
depends on where the controller is established: the CNIL in France, the APD/GBA in
Belgium. Both are provided; any other is one :class:`SupervisoryAuthority` away.
"""

from __future__ import annotations

from typing import Any

import attrs

from learnprivacy.errors import ValidationError

__all__ = ["APD_GBA", "CNIL", "Controller", "SupervisoryAuthority"]


def _text(_instance: object, attribute: attrs.Attribute[str], value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{attribute.name} must be non-empty text", field=attribute.name)


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
    """Who answers: the organisation, how to reach its DPO, and its supervisory authority.

    ``judicial_remedy`` overrides the letters' default sentence on going to court (for
    instance to name the competent court).
    """

    name: str = attrs.field(validator=_text)
    contact: str = attrs.field(validator=_text)
    authority: SupervisoryAuthority = attrs.field(
        default=CNIL, validator=attrs.validators.instance_of(SupervisoryAuthority)
    )
    judicial_remedy: str | None = None

    @classmethod
    def from_register(
        cls,
        controller: Any,
        *,
        authority: SupervisoryAuthority = CNIL,
        judicial_remedy: str | None = None,
    ) -> Controller:
        """The letter-writing view of the register's :class:`learnprivacy.providers.Controller`.

        Letters are signed with the same name and answered at the DPO's address when one
        is declared, otherwise at the controller's contact.
        """
        contact = getattr(controller, "dpo", None) or controller.contact
        return cls(
            name=controller.name,
            contact=contact,
            authority=authority,
            judicial_remedy=judicial_remedy,
        )
