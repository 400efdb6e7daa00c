"""``MetadataCollection``: what one component declares about the personal data it handles."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypedDict, TypeVar, Unpack

from learnprivacy.basis import DataCategory, LawfulBasis
from learnprivacy.errors import ValidationError
from learnprivacy.providers._contexts import Ordered
from learnprivacy.providers._items import (
    DatabaseTable,
    ExternalLocation,
    MetadataItem,
    SubsystemLink,
    UserPreference,
)
from learnprivacy.retention import Period, Trigger

__all__ = ["MetadataCollection"]

_Item = TypeVar("_Item", bound=MetadataItem)


class RegisterFacts(TypedDict, total=False):
    """The register's facts every ``add_*`` method takes as keywords (see :class:`MetadataItem`).

    ``purpose`` plain text; ``basis`` a :class:`~learnprivacy.LawfulBasis` or its Moodle
    code; ``categories`` the :class:`~learnprivacy.DataCategory` members involved;
    ``retention`` an ISO 8601 period counted from ``retention_from``; ``summary_id`` a
    translation string identifier.
    """

    purpose: str | None
    basis: LawfulBasis | str | None
    categories: Iterable[DataCategory | str] | None
    retention: Period | str | None
    retention_from: Trigger | str | None
    summary_id: str | None


class MetadataCollection(Ordered[MetadataItem]):
    """The items a component declares, in declaration order (Moodle's ``collection``).

    A provider's ``get_metadata(collection)`` adds its items and returns the collection;
    each ``add_*`` method returns the collection too, so calls chain::

        def get_metadata(self, collection):
            return collection.add_database_table(
                "forum_posts",
                {"user_id": "The author", "message": "The text of the post"},
                "Messages posted in course forums",
                purpose="Course discussions",
                basis="gdpr_art_6_1_b",
                categories=[DataCategory.COMMUNICATION],
                retention="P18M",
            )

    The items are immutable; the collection only grows. A table serving several purposes
    is declared once per purpose; the same kind, name and purpose twice is refused.
    """

    def __init__(self, component: str) -> None:
        if not isinstance(component, str) or not component:
            raise ValidationError("a collection needs a component name", field="component")
        self._component = component
        self._held: list[MetadataItem] = []

    @property
    def component(self) -> str:
        """The component whose items these are (``"mod_forum"``)."""
        return self._component

    @property
    def items(self) -> tuple[MetadataItem, ...]:
        """Every item, in declaration order."""
        return tuple(self._held)

    def __repr__(self) -> str:
        return f"MetadataCollection({self._component!r}, items={len(self._held)})"

    def add_item(self, item: MetadataItem) -> MetadataCollection:
        """Add an item built elsewhere; the same kind, name and purpose twice is refused."""
        if not isinstance(item, MetadataItem):
            raise ValidationError("only metadata items can be added", field="item")
        for existing in self._held:
            # One table may serve several purposes (one item each), never one purpose twice.
            if (existing.kind, existing.name, existing.purpose) == (
                item.kind,
                item.name,
                item.purpose,
            ):
                raise ValidationError(
                    f"{self._component} declares {item.kind.value} {item.name!r} twice "
                    "for the same purpose",
                    field=item.name,
                )
        self._held.append(item)
        return self

    def add_database_table(
        self,
        name: str,
        fields: Mapping[str, str],
        summary: str = "",
        *,
        field_ids: Mapping[str, str] | None = None,
        **facts: Unpack[RegisterFacts],
    ) -> MetadataCollection:
        """Declare a table of the component's own storage and its personal fields."""
        return self.add_item(
            DatabaseTable(
                name=name, fields=fields, summary=summary, field_ids=field_ids or {}, **facts
            )
        )

    def add_external_location_link(
        self,
        name: str,
        fields: Mapping[str, str],
        summary: str = "",
        *,
        recipient: str | None = None,
        country: str | None = None,
        field_ids: Mapping[str, str] | None = None,
        internal: bool = False,
        **facts: Unpack[RegisterFacts],
    ) -> MetadataCollection:
        """Declare data sent outside: an employer, a funder, an LRS, a video service
        (``internal=True``: a recipient inside the controller, such as its trainers)."""
        return self.add_item(
            ExternalLocation(
                name=name,
                fields=fields,
                summary=summary,
                recipient=recipient,
                country=country,
                field_ids=field_ids or {},
                internal=internal,
                **facts,
            )
        )

    def add_subsystem_link(
        self,
        name: str,
        summary: str = "",
        *,
        fields: Mapping[str, str] | None = None,
        **facts: Unpack[RegisterFacts],
    ) -> MetadataCollection:
        """Declare that a subsystem stores data on the component's behalf."""
        return self.add_item(
            SubsystemLink(name=name, fields=fields or {}, summary=summary, **facts)
        )

    def add_user_preference(
        self, name: str, summary: str = "", **facts: Unpack[RegisterFacts]
    ) -> MetadataCollection:
        """Declare a user preference the component stores."""
        return self.add_item(UserPreference(name=name, summary=summary, **facts))

    def of_type(self, kind: type[_Item]) -> tuple[_Item, ...]:
        """The items of one type, e.g. ``collection.of_type(DatabaseTable)``."""
        return tuple(item for item in self._held if isinstance(item, kind))

    @property
    def database_tables(self) -> tuple[DatabaseTable, ...]:
        """The tables declared, in order."""
        return self.of_type(DatabaseTable)

    @property
    def external_locations(self) -> tuple[ExternalLocation, ...]:
        """The external locations declared, in order."""
        return self.of_type(ExternalLocation)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form: the component and its items."""
        return {"component": self._component, "items": [i.to_dict() for i in self._held]}
